//! Shell-style patterns for container names and label values: `*` any run, `?` one character.

/// True when `text` matches `pattern` in full. Iterative with one backtrack point, so a
/// pattern of many stars costs O(len(pattern) × len(text)) at worst, never exponential.
/// Runs on every (rule, container) pair each tick, so ASCII (the usual case) allocates nothing.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    if pattern.is_ascii() && text.is_ascii() {
        return match_units(pattern.as_bytes(), text.as_bytes(), b'*', b'?');
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    match_units(&p, &t, '*', '?')
}

fn match_units<T: PartialEq + Copy>(p: &[T], t: &[T], star_unit: T, any: T) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        // A star is a wildcard even where the text has a literal '*'.
        if pi < p.len() && p[pi] == star_unit {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == any || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == star_unit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        assert!(glob_match("web-*", "web-1"));
        assert!(glob_match("web-*", "web-"));
        assert!(!glob_match("web-*", "db-1"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("*-busy-*", "lookout-busy-7"));
        assert!(!glob_match("abc", "abcd"));
        assert!(glob_match("caf?-*", "café-1"));
    }

    proptest! {
        #[test]
        fn literal_matches_only_itself(a in "[a-z0-9-]{0,12}", b in "[a-z0-9-]{0,12}") {
            prop_assert_eq!(glob_match(&a, &b), a == b);
        }

        #[test]
        fn star_prefix_is_starts_with(a in "[a-z]{0,6}", b in "[a-z]{0,10}") {
            prop_assert_eq!(glob_match(&format!("{a}*"), &b), b.starts_with(&a));
        }

        #[test]
        fn star_alone_matches_all(b in ".{0,20}") {
            prop_assert!(glob_match("*", &b));
        }
    }
}
