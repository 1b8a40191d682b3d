//! What an id or a name taken from a request must be before it goes anywhere near a URL or
//! a store: not empty, not `.` or `..` (a URL parser would resolve them and turn
//! `POST …/servers/{id}/action` into `POST …/v2.1/action`), no control characters, and
//! bounded. Both backends' ids go through this at the listener, and every upstream URL
//! segment goes through [`segment`] again.

use crate::error::{CloudError, CloudResult};

/// Longest id or name accepted (Nova and Keystone ids are 36 or 64; names up to 255).
pub const MAX_ID_BYTES: usize = 255;

/// Checks one id or name from a request; the error names `field`.
pub fn check(field: &str, value: &str) -> CloudResult<()> {
    if value.trim().is_empty() {
        return Err(CloudError::invalid(field, "must not be empty"));
    }
    if value == "." || value == ".." {
        return Err(CloudError::invalid(field, "must not be `.` or `..`"));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(CloudError::invalid(
            field,
            format!("is longer than {MAX_ID_BYTES} bytes"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(CloudError::invalid(
            field,
            "must not hold control characters",
        ));
    }
    Ok(())
}

/// Percent-encodes every byte outside RFC 3986's unreserved set.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One path segment of an upstream URL: checked as an id, then percent-encoded, so it can
/// neither leave its place in the path nor be resolved away.
pub fn segment(value: &str) -> CloudResult<String> {
    check("path segment", value)?;
    Ok(percent_encode(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dot_segments_and_empty_and_long_are_refused() {
        for bad in ["", " ", ".", "..", "a\nb"] {
            assert!(check("id", bad).is_err(), "{bad:?}");
        }
        assert!(check("id", &"x".repeat(MAX_ID_BYTES + 1)).is_err());
        assert_eq!(
            check("key_pair.name", "..").unwrap_err().to_string(),
            "field `key_pair.name` must not be `.` or `..`"
        );
        assert!(check("id", "...").is_ok());
        assert!(check("id", "my key@host").is_ok());
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("a b/c?d#e%").unwrap(), "a%20b%2Fc%3Fd%23e%25");
        assert_eq!(segment("9f1c-2e").unwrap(), "9f1c-2e");
        assert!(segment("..").is_err());
    }

    proptest! {
        /// Whatever an accepted segment holds, it stays one segment: no `/`, `?`, `#` or
        /// `%`-free dot segment survives, and decoding gives the input back.
        #[test]
        fn an_accepted_segment_stays_one_segment(s in "\\PC{0,40}|[./%]{0,4}") {
            if let Ok(enc) = segment(&s) {
                prop_assert!(!enc.contains(['/', '?', '#']));
                prop_assert!(enc != "." && enc != "..");
                let url = format!("http://h/v2.1/servers/{enc}/action");
                let parsed = reqwest::Url::parse(&url).unwrap();
                prop_assert_eq!(parsed.path_segments().unwrap().count(), 4);
                let mut bytes = Vec::new();
                let mut it = enc.bytes();
                while let Some(b) = it.next() {
                    if b == b'%' {
                        let hi = it.next().unwrap();
                        let lo = it.next().unwrap();
                        bytes.push(u8::from_str_radix(&format!("{}{}", hi as char, lo as char), 16).unwrap());
                    } else {
                        bytes.push(b);
                    }
                }
                prop_assert_eq!(String::from_utf8(bytes).unwrap(), s);
            }
        }
    }
}
