//! Series identity: a metric name plus labels, with one canonical string form.
//!
//! Canonical form: `name` or `name{k="v",k2="v2"}` with labels sorted by key, values
//! escaped as in Prometheus (`\\`, `\"`, `\n`). Names use `[A-Za-z0-9_.:-]`; label keys
//! `[A-Za-z0-9_]`. [`SeriesKey::parse`] accepts exactly what [`SeriesKey::fmt`](std::fmt::Display)
//! writes, plus whitespace around labels and single-quoted values.
//!
//! When a key is used to *query*, it acts as a selector (see [`SeriesKey::selects`]): the name
//! must be equal and every label in the query must match the series, where `id` also matches a
//! prefix of at least 4 characters. So `container.cpu_percent{id="3f2a"}` and
//! `container.cpu_percent{name="web"}` both find `container.cpu_percent{id="3f2a…",name="web"}`.

use std::collections::BTreeMap;
use std::fmt;

use crate::StoreError;

/// A metric name plus labels. Cheap to compare and hash; `Ord` is by name, then labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    name: String,
    labels: BTreeMap<String, String>,
}

const MAX_KEY_LEN: usize = 1024;

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

fn valid_label(s: &str) -> bool {
    !s.is_empty() && s.len() <= 100 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl SeriesKey {
    /// A key without labels. Panics never; an invalid name is kept as given but cannot be
    /// parsed back — use [`SeriesKey::try_new`] for external input.
    pub fn new(name: impl Into<String>) -> Self {
        SeriesKey {
            name: name.into(),
            labels: BTreeMap::new(),
        }
    }

    /// Validating constructor for names that come from outside.
    pub fn try_new(name: &str, labels: &[(&str, &str)]) -> Result<Self, StoreError> {
        if !valid_name(name) {
            return Err(StoreError::InvalidKey(format!("bad metric name {name:?}")));
        }
        let mut k = SeriesKey::new(name);
        for (l, v) in labels {
            if !valid_label(l) {
                return Err(StoreError::InvalidKey(format!("bad label name {l:?}")));
            }
            k.labels.insert((*l).to_string(), (*v).to_string());
        }
        Ok(k)
    }

    /// Adds (or replaces) a label.
    pub fn with(mut self, label: &str, value: impl Into<String>) -> Self {
        self.labels.insert(label.to_string(), value.into());
        self
    }

    /// The metric name (`host_cpu_percent`, …).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every label, sorted by name.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }

    /// The value of label `k`, if the key has it.
    pub fn label(&self, k: &str) -> Option<&str> {
        self.labels.get(k).map(String::as_str)
    }

    /// Parses the canonical string form (see the module docs).
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        let bad = |why: &str| StoreError::InvalidKey(format!("{why} in series key {s:?}"));
        if s.len() > MAX_KEY_LEN {
            return Err(bad("too long"));
        }
        let s2 = s.trim();
        let (name, rest) = match s2.find('{') {
            Some(i) => (&s2[..i], Some(&s2[i + 1..])),
            None => (s2, None),
        };
        if !valid_name(name) {
            return Err(bad("bad metric name"));
        }
        let mut key = SeriesKey::new(name);
        let Some(rest) = rest else { return Ok(key) };
        let body = rest.strip_suffix('}').ok_or_else(|| bad("missing '}'"))?;
        let mut chars = body.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
                chars.next();
            }
            if chars.peek().is_none() {
                break;
            }
            let mut label = String::new();
            while let Some(&c) = chars.peek() {
                if c == '=' || c.is_whitespace() {
                    break;
                }
                label.push(c);
                chars.next();
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.next() != Some('=') || !valid_label(&label) {
                return Err(bad("bad label"));
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            let quote = match chars.next() {
                Some(q @ ('"' | '\'')) => q,
                _ => return Err(bad("label value must be quoted")),
            };
            let mut value = String::new();
            loop {
                match chars.next() {
                    None => return Err(bad("unterminated label value")),
                    Some('\\') => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some(c @ ('\\' | '"' | '\'')) => value.push(c),
                        _ => return Err(bad("bad escape")),
                    },
                    Some(c) if c == quote => break,
                    Some(c) => value.push(c),
                }
            }
            if key.labels.insert(label, value).is_some() {
                return Err(bad("duplicate label"));
            }
            match chars.peek() {
                None | Some(',') => {}
                Some(c) if c.is_whitespace() => {}
                _ => return Err(bad("expected ','")),
            }
        }
        Ok(key)
    }

    /// True when this key, used as a query, selects `series` (see the module docs).
    pub fn selects(&self, series: &SeriesKey) -> bool {
        self.name == series.name
            && self.labels.iter().all(|(k, v)| match series.labels.get(k) {
                Some(sv) if sv == v => true,
                Some(sv) if k == "id" && v.len() >= 4 => sv.starts_with(v.as_str()),
                _ => false,
            })
    }
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if self.labels.is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, (k, v)) in self.labels.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}=\"")?;
            for c in v.chars() {
                match c {
                    '\\' => f.write_str("\\\\")?,
                    '"' => f.write_str("\\\"")?,
                    '\n' => f.write_str("\\n")?,
                    c => write!(f, "{c}")?,
                }
            }
            f.write_str("\"")?;
        }
        f.write_str("}")
    }
}

impl std::str::FromStr for SeriesKey {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SeriesKey::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn canonical_form() {
        let k = SeriesKey::new("container.cpu_percent")
            .with("name", "web")
            .with("id", "abc123");
        assert_eq!(
            k.to_string(),
            r#"container.cpu_percent{id="abc123",name="web"}"#
        );
        assert_eq!(SeriesKey::parse(&k.to_string()).unwrap(), k);
        assert_eq!(
            SeriesKey::parse("host.cpu.usage").unwrap(),
            SeriesKey::new("host.cpu.usage")
        );
        let q = SeriesKey::parse(r#"host.fs.used{ mount = '/' }"#).unwrap();
        assert_eq!(q.label("mount"), Some("/"));
        for bad in [
            "",
            "{a=\"b\"}",
            "x{a=b}",
            "x{a=\"b\"",
            "x{a=\"b\",a=\"c\"}",
            "x y",
            "x{a-b=\"c\"}",
        ] {
            assert!(SeriesKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn selectors() {
        let s = SeriesKey::new("container.cpu_percent")
            .with("id", "3f2a9bc0")
            .with("name", "web");
        assert!(SeriesKey::parse(r#"container.cpu_percent{id="3f2a"}"#)
            .unwrap()
            .selects(&s));
        assert!(SeriesKey::parse(r#"container.cpu_percent{name="web"}"#)
            .unwrap()
            .selects(&s));
        assert!(SeriesKey::parse("container.cpu_percent")
            .unwrap()
            .selects(&s));
        assert!(!SeriesKey::parse(r#"container.cpu_percent{id="3f2"}"#)
            .unwrap()
            .selects(&s));
        assert!(!SeriesKey::parse(r#"container.cpu_percent{name="we"}"#)
            .unwrap()
            .selects(&s));
        assert!(!SeriesKey::parse("container.memory_used_bytes")
            .unwrap()
            .selects(&s));
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(name in "[a-z][a-z0-9_.]{0,20}", labels in prop::collection::btree_map("[a-z_][a-z0-9_]{0,8}", "\\PC{0,12}", 0..4)) {
            let mut k = SeriesKey::new(name);
            for (l, v) in labels { k = k.with(&l, v); }
            prop_assert_eq!(SeriesKey::parse(&k.to_string()).unwrap(), k);
        }
    }
}
