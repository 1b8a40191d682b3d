//! Configuration errors as an operator needs them: the key as they wrote it (`sampling.interval_ms`
//! in the file, `LOOKOUT_SAMPLING__INTERVAL_MS` in the environment), where it came from, and for
//! a misspelt key the name that was probably meant. figment's own rendering prefixes keys with
//! its internal profile (`default.sampling…`), which names nothing the operator wrote.

use figment::error::{Error, Kind};
use figment::Source;

/// Every problem in `err`, one per line.
pub fn describe(err: Error) -> String {
    err.into_iter()
        .map(|e| describe_one(&e))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where a value came from.
enum Origin {
    File(String),
    Env,
    Flags,
}

fn origin(e: &Error) -> Origin {
    match &e.metadata {
        Some(md) => match &md.source {
            Some(Source::File(path)) => Origin::File(path.display().to_string()),
            _ if md.name.contains("environment") => Origin::Env,
            _ => Origin::Flags,
        },
        None => Origin::Flags,
    }
}

fn env_name(path: &[String]) -> String {
    format!("LOOKOUT_{}", path.join("__").to_ascii_uppercase())
}

fn describe_one(e: &Error) -> String {
    let origin = origin(e);
    let key_of = |path: &[String]| match origin {
        Origin::Env => env_name(path),
        _ => format!("`{}`", path.join(".")),
    };
    let place = match &origin {
        Origin::File(p) => format!("in {p}"),
        Origin::Env => "in the environment".to_string(),
        Origin::Flags => "on the command line".to_string(),
    };
    let detail = match &e.kind {
        Kind::UnknownField(field, expected) => {
            // figment's path stops at the table holding the unknown key.
            let mut path = e.path.clone();
            if path.last() != Some(field) {
                path.push(field.clone());
            }
            let hint = match suggestion(field, expected) {
                Some(meant) => {
                    let mut p = path.clone();
                    if let Some(last) = p.last_mut() {
                        *last = meant.to_string();
                    }
                    format!("did you mean {}?", key_of(&p))
                }
                None => format!("known keys here: {}", expected.join(", ")),
            };
            return format!(
                "configuration: unknown key {} {place}; {hint}",
                key_of(&path)
            );
        }
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            format!("expected {expected}, found {actual}")
        }
        Kind::UnknownVariant(actual, expected) => {
            format!("`{actual}` is not one of {}", expected.join(", "))
        }
        Kind::Message(m) => m.clone(),
        other => other.to_string(),
    };
    if e.path.is_empty() {
        format!("configuration: invalid value {place}: {detail}")
    } else {
        format!(
            "configuration: invalid value for {} {place}: {detail}",
            key_of(&e.path)
        )
    }
}

/// The expected key closest to a misspelt one (at most two edits away).
fn suggestion<'a>(field: &str, expected: &[&'a str]) -> Option<&'a str> {
    expected
        .iter()
        .map(|e| (edit_distance(field, e), *e))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, e)| e)
}

/// Levenshtein distance, transpositions counted as one edit (`smaple` is one from `sample`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("intervall_ms", "interval_ms"), 1);
        assert_eq!(edit_distance("smaple", "sample"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(suggestion("smaple", &["sampling", "smart"]), None);
        assert_eq!(
            suggestion("intervall_ms", &["interval_ms", "docker"]),
            Some("interval_ms")
        );
    }
}
