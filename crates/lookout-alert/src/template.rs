//! Summary templates: `{{ $value }}` and `{{ $labels.NAME }}`, the subset of Prometheus'
//! template language that rules need (so the same text works after `export-rules`).

use std::collections::BTreeMap;

enum Piece<'a> {
    Text(&'a str),
    Value,
    Label(&'a str),
}

fn pieces(t: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find("{{") {
        out.push(Piece::Text(&rest[..open]));
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| "an opening {{ has no closing }}".to_string())?;
        let expr = after[..close].trim();
        if expr == "$value" {
            out.push(Piece::Value);
        } else if let Some(name) = expr.strip_prefix("$labels.") {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("{{{{ {expr} }}}}: bad label name"));
            }
            out.push(Piece::Label(name));
        } else {
            return Err(format!(
                "{{{{ {expr} }}}} is not supported: use {{{{ $value }}}} or {{{{ $labels.NAME }}}}"
            ));
        }
        rest = &after[close + 2..];
    }
    out.push(Piece::Text(rest));
    Ok(out)
}

/// Validates a template.
pub fn check(t: &str) -> Result<(), String> {
    pieces(t).map(|_| ())
}

/// A value as alerts show it: at most two decimals, no trailing zeros.
pub fn format_value(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_owned()
    }
}

/// Fills a (validated) template in; a label the alert lacks renders empty, as in Prometheus.
pub fn render(t: &str, value: f64, labels: &BTreeMap<String, String>) -> String {
    let Ok(ps) = pieces(t) else {
        return t.to_owned();
    };
    let mut out = String::with_capacity(t.len() + 16);
    for p in ps {
        match p {
            Piece::Text(s) => out.push_str(s),
            Piece::Value => out.push_str(&format_value(value)),
            Piece::Label(n) => out.push_str(labels.get(n).map(String::as_str).unwrap_or("")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_value_and_labels() {
        let mut l = BTreeMap::new();
        l.insert("container".to_string(), "web-1".to_string());
        assert_eq!(
            render(
                "CPU {{ $value }}% in {{$labels.container}}{{ $labels.none }}",
                93.456,
                &l
            ),
            "CPU 93.46% in web-1"
        );
        assert_eq!(format_value(90.0), "90");
        assert_eq!(format_value(-0.001), "0");
        assert!(check("{{ $value").is_err());
        assert!(check("{{ .Value }}").is_err());
        assert!(check("plain").is_ok());
    }
}
