//! SQL text shared by lookout's stores (history here, identity and billing in `lookout-cloud`).

/// Renumbers `?` placeholders as `$1, $2, …`, the form PostgreSQL wants. Statements are
/// written once with `?` (SQLite and MySQL) and passed through this for PostgreSQL. Every
/// caller passes constant statement text: values are bound, never spliced, so a `?` inside a
/// string literal cannot occur.
pub fn numbered_placeholders(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    let mut n = 0;
    for c in s.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order() {
        assert_eq!(
            numbered_placeholders("UPDATE t SET a = ?, b = ? WHERE c = ?"),
            "UPDATE t SET a = $1, b = $2 WHERE c = $3"
        );
        assert_eq!(numbered_placeholders("SELECT 1"), "SELECT 1");
    }
}
