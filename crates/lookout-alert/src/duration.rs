//! Durations as people write them in rules: `0s`, `500ms`, `30s`, `5m`, `1h30m`, `1d`.

/// Milliseconds in `text`, or a message saying what is wrong with it.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration: write e.g. \"0s\", \"30s\", \"5m\"".into());
    }
    let mut total: u64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "{text:?} is not a duration: write e.g. \"30s\", \"5m\", \"1h30m\""
            ));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{text:?}: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit_ms = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => {
                return Err(format!(
                    "{text:?}: a unit is needed after {n} (ms, s, m, h, d)"
                ))
            }
            other => return Err(format!("{text:?}: unknown unit {other:?} (ms, s, m, h, d)")),
        };
        rest = &rest[unit_len..];
        total = n
            .checked_mul(unit_ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("{text:?}: too long"))?;
    }
    Ok(total)
}

/// The shortest text [`parse_duration_ms`] reads back as `ms` (Prometheus accepts it too).
pub fn format_duration_ms(ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let mut s = ms / 1000;
    let mut out = String::new();
    for (unit, secs) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if s >= secs {
            out.push_str(&format!("{}{unit}", s / secs));
            s %= secs;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_common_forms() {
        assert_eq!(parse_duration_ms("0s"), Ok(0));
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("1m30s"), Ok(90_000));
        assert_eq!(parse_duration_ms(" 2h "), Ok(7_200_000));
        assert!(parse_duration_ms("30").unwrap_err().contains("unit"));
        assert!(parse_duration_ms("5y")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_duration_ms("").is_err());
        assert!(parse_duration_ms("-1s").is_err());
        assert!(parse_duration_ms("99999999999999999999d").is_err());
    }

    proptest! {
        #[test]
        fn format_reads_back(ms in 0u64..10_000_000_000) {
            prop_assert_eq!(parse_duration_ms(&format_duration_ms(ms)), Ok(ms));
        }
    }
}
