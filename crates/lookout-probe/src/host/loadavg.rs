//! The one-line files: `/proc/loadavg`, `/proc/uptime` and the hostname.

use crate::LoadAverage;

/// `"1.05 0.50 0.19 1/101 7627"` → the three averages. None unless all three are finite,
/// non-negative numbers: Rust's float parser accepts "NaN" and "inf", which would poison JSON.
pub fn parse_loadavg(text: &str) -> Option<LoadAverage> {
    let mut f = text.split_ascii_whitespace().map(parse_non_negative);
    Some(LoadAverage {
        one: f.next()??,
        five: f.next()??,
        fifteen: f.next()??,
    })
}

/// `"2564.11 4927.69"` → seconds since boot (the first figure; the second is idle time summed
/// over CPUs).
pub fn parse_uptime(text: &str) -> Option<f64> {
    text.split_ascii_whitespace()
        .next()
        .and_then(parse_non_negative)
}

/// The hostname file ends in a newline; an empty name is reported as absent.
pub fn parse_hostname(text: &str) -> Option<&str> {
    let name = text.trim();
    (!name.is_empty()).then_some(name)
}

fn parse_non_negative(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn real_files() {
        let l = parse_loadavg(include_str!("../../tests/fixtures/host/loadavg")).unwrap();
        assert!(l.one >= 0.0 && l.five >= 0.0 && l.fifteen >= 0.0);
        let u = parse_uptime(include_str!("../../tests/fixtures/host/uptime")).unwrap();
        assert!(u > 0.0);
        assert_eq!(
            parse_hostname(include_str!("../../tests/fixtures/host/hostname")),
            Some("vm")
        );
    }

    #[test]
    fn known_values() {
        assert_eq!(
            parse_loadavg("1.05 0.50 0.19 1/101 7627\n"),
            Some(LoadAverage {
                one: 1.05,
                five: 0.5,
                fifteen: 0.19
            })
        );
        assert_eq!(parse_uptime("2564.11 4927.69\n"), Some(2564.11));
    }

    #[test]
    fn odd_input() {
        assert_eq!(parse_loadavg(""), None);
        assert_eq!(parse_loadavg("1.0 2.0"), None);
        assert_eq!(parse_loadavg("NaN 1 1"), None);
        assert_eq!(parse_loadavg("1 inf 1"), None);
        assert_eq!(parse_loadavg("1 1 -1"), None);
        assert_eq!(parse_uptime("abc"), None);
        assert_eq!(parse_uptime(""), None);
        assert_eq!(parse_hostname(" \n"), None);
        assert_eq!(parse_hostname("  box-1 \n"), Some("box-1"));
    }

    proptest! {
        #[test]
        fn never_panic(s in "\\PC*") {
            if let Some(l) = parse_loadavg(&s) {
                prop_assert!(l.one.is_finite() && l.five.is_finite() && l.fifteen.is_finite());
            }
            if let Some(u) = parse_uptime(&s) {
                prop_assert!(u.is_finite() && u >= 0.0);
            }
            let _ = parse_hostname(&s);
        }
    }
}
