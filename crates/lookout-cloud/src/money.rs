//! Exact money. Amounts are integer *minor units* (pence, cents: two decimal places) and
//! prices are integer *nano-units* of the currency per unit-hour, so no binary float ever
//! takes part in rating. Decimal text is parsed and printed digit by digit.

use std::fmt;

/// Decimal places of an amount (minor units per major unit = 100).
pub const MINOR_DIGITS: u32 = 2;
const MINOR_PER_MAJOR: i64 = 100;
/// Decimal places a price may carry.
pub const PRICE_DIGITS: u32 = 9;
/// Nano-units per minor unit.
pub const NANOS_PER_MINOR: i128 = 10_000_000;

/// An amount of money in minor units (e.g. pence). Signed: credits used are negative.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(pub i64);

impl Money {
    pub const ZERO: Money = Money(0);

    pub fn minor(self) -> i64 {
        self.0
    }

    /// Parses decimal text such as `12`, `12.5`, `-0.05`; more than two decimals is refused
    /// rather than rounded (money must not change on the way in).
    pub fn parse(s: &str) -> Result<Money, String> {
        let n = parse_decimal(s, MINOR_DIGITS)?;
        i64::try_from(n)
            .map(Money)
            .map_err(|_| format!("{s} is too large"))
    }

    /// The JSON number a client sent. Integers are exact; a float is taken by its shortest
    /// decimal text (what the client wrote, e.g. `50.5`), then parsed exactly.
    pub fn from_json(v: &serde_json::Value) -> Result<Money, String> {
        match v {
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    return i
                        .checked_mul(MINOR_PER_MAJOR)
                        .map(Money)
                        .ok_or_else(|| format!("{i} is too large"));
                }
                match n.as_f64() {
                    Some(f) if f.is_finite() => Money::parse(&format!("{f}")),
                    _ => Err("is not a finite number".into()),
                }
            }
            serde_json::Value::String(s) => Money::parse(s.trim()),
            _ => Err("must be a number".into()),
        }
    }

    /// A JSON number with the exact decimal value. `n / 100` for |n| < 2^53 is printed by
    /// serde_json (shortest round-trip) as exactly the decimal with at most two places, since
    /// two such decimals differ by far more than an ulp there.
    pub fn to_json(self) -> serde_json::Value {
        if self.0 % MINOR_PER_MAJOR == 0 {
            return serde_json::Value::from(self.0 / MINOR_PER_MAJOR);
        }
        serde_json::Number::from_f64(self.0 as f64 / MINOR_PER_MAJOR as f64)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null)
    }

    pub fn checked_add(self, o: Money) -> Option<Money> {
        self.0.checked_add(o.0).map(Money)
    }

    pub fn saturating_add(self, o: Money) -> Money {
        Money(self.0.saturating_add(o.0))
    }

    pub fn saturating_sub(self, o: Money) -> Money {
        Money(self.0.saturating_sub(o.0))
    }

    pub fn min(self, o: Money) -> Money {
        Money(self.0.min(o.0))
    }
}

impl std::ops::Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money(self.0.saturating_neg())
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        write!(
            f,
            "{sign}{}.{:02}",
            a / MINOR_PER_MAJOR as u64,
            a % MINOR_PER_MAJOR as u64
        )
    }
}

impl serde::Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

/// A price in nano-units of the currency per unit-hour (e.g. per core-hour).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Price(pub i128);

impl Price {
    /// Parses decimal text with up to nine decimals; negative prices are refused.
    pub fn parse(s: &str) -> Result<Price, String> {
        let n = parse_decimal(s, PRICE_DIGITS)?;
        if n < 0 {
            return Err(format!("price {s} is negative"));
        }
        Ok(Price(n))
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scale = 10i128.pow(PRICE_DIGITS);
        let frac = format!("{:09}", self.0 % scale);
        let frac = frac.trim_end_matches('0');
        if frac.is_empty() {
            write!(f, "{}", self.0 / scale)
        } else {
            write!(f, "{}.{frac}", self.0 / scale)
        }
    }
}

/// Parses `[-]digits[.digits]` into an integer scaled by 10^`digits`, refusing anything that
/// would need rounding, exponents, or more than 24 integer digits.
pub fn parse_decimal(s: &str, digits: u32) -> Result<i128, String> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    let ok = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !ok(int) || !ok(frac) || int.len() > 24 {
        return Err(format!("{s:?} is not a decimal number"));
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > digits as usize {
        return Err(format!("{s} has more than {digits} decimal places"));
    }
    let mut n: i128 = 0;
    for b in int.bytes() {
        n = n * 10 + i128::from(b - b'0');
    }
    let mut f: i128 = 0;
    for b in frac.bytes() {
        f = f * 10 + i128::from(b - b'0');
    }
    f *= 10i128.pow(digits - frac.len() as u32);
    let v = n * 10i128.pow(digits) + f;
    Ok(if neg { -v } else { v })
}

/// Rounds `num / den` to the nearest integer, halves away from zero. `den` > 0.
pub fn div_round(num: i128, den: i128) -> i128 {
    let q = num / den;
    let r = num % den;
    if 2 * r.abs() >= den {
        q + num.signum()
    } else {
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        assert_eq!(Money::parse("12.5").unwrap(), Money(1250));
        assert_eq!(Money::parse("-0.05").unwrap(), Money(-5));
        assert_eq!(Money::parse("7").unwrap(), Money(700));
        assert!(Money::parse("0.001").is_err());
        assert!(Money::parse("1e3").is_err());
        assert!(Money::parse("").is_err());
        assert_eq!(Money(1250).to_string(), "12.50");
        assert_eq!(Money(-5).to_string(), "-0.05");
        assert_eq!(Price::parse("0.000000001").unwrap(), Price(1));
        assert_eq!(Price::parse("0.05").unwrap().to_string(), "0.05");
        assert!(Price::parse("-1").is_err());
        assert_eq!(div_round(5, 2), 3);
        assert_eq!(div_round(-5, 2), -3);
        assert_eq!(div_round(4, 3), 1);
    }

    #[test]
    fn json_round_trip() {
        let v: serde_json::Value = serde_json::from_str("50.5").unwrap();
        assert_eq!(Money::from_json(&v).unwrap(), Money(5050));
        let v: serde_json::Value = serde_json::from_str("0.1").unwrap();
        assert_eq!(Money::from_json(&v).unwrap(), Money(10));
        assert_eq!(Money(1234).to_json().to_string(), "12.34");
        assert_eq!(Money(1200).to_json().to_string(), "12");
    }
}
