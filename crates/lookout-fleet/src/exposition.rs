//! Reads the samples back out of lookout's own `/metrics` text (Prometheus text format
//! 0.0.4, as prometheus-client writes it), so the push sends exactly the figures a scrape
//! sees, under the same names, without a second encoder of those figures.

/// One sample line: metric name, labels in the order written, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// Every sample line of `text`; comment lines and lines that do not parse are skipped
/// (the text is lookout's own, so a skip is a bug the tests catch, never outside input).
pub fn parse(text: &str) -> Vec<Row> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Row> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let mut labels = Vec::new();
    let mut rest = &line[name_end..];
    if let Some(after) = rest.strip_prefix('{') {
        rest = parse_labels(after, &mut labels)?;
    }
    // `value [timestamp]`: lookout never writes timestamps, the first field is the value.
    let value = parse_value(rest.split_whitespace().next()?)?;
    Some(Row {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Reads `a="x",b="y"}` and returns what follows the closing brace.
fn parse_labels<'a>(mut s: &'a str, out: &mut Vec<(String, String)>) -> Option<&'a str> {
    loop {
        s = s.trim_start_matches(',');
        if let Some(rest) = s.strip_prefix('}') {
            return Some(rest);
        }
        let eq = s.find('=')?;
        let name = s[..eq].trim().to_owned();
        s = s[eq + 1..].strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '"' => break i,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        };
        out.push((name, value));
        s = &s[end + 1..];
    }
}

fn parse_value(v: &str) -> Option<f64> {
    match v {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        v => v.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_labels_escapes_and_specials() {
        let text = "# HELP x help\n# TYPE x gauge\nx 1.5\n\
                    y_total{a=\"q\\\"uote\",b=\"back\\\\slash\\nline\"} 7\n\
                    h_bucket{le=\"+Inf\"} 3\nz NaN\n";
        let rows = parse(text);
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].name, "x");
        assert_eq!(rows[0].value, 1.5);
        assert_eq!(
            rows[1].labels,
            vec![
                ("a".to_owned(), "q\"uote".to_owned()),
                ("b".to_owned(), "back\\slash\nline".to_owned())
            ]
        );
        assert_eq!(rows[2].labels[0].1, "+Inf");
        assert!(rows[3].value.is_nan());
    }

    #[test]
    fn reads_what_prometheus_client_writes() {
        use prometheus_client::encoding::EncodeLabelSet;
        use prometheus_client::metrics::{counter::Counter, family::Family, histogram::Histogram};
        #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
        struct L {
            route: String,
        }
        let mut reg = prometheus_client::registry::Registry::default();
        let c = Family::<L, Counter>::default();
        reg.register("reqs", "help", c.clone());
        c.get_or_create(&L {
            route: "/a,\"b\"".into(),
        })
        .inc_by(3);
        let h = Histogram::new([0.5, 1.0]);
        h.observe(0.7);
        reg.register("lat", "help", h);
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &reg).unwrap();
        let rows = parse(&text);
        let reqs = rows.iter().find(|r| r.name == "reqs_total").unwrap();
        assert_eq!(reqs.value, 3.0);
        assert_eq!(reqs.labels[0].1, "/a,\"b\"");
        assert!(rows
            .iter()
            .any(|r| r.name == "lat_bucket" && r.value == 1.0));
        assert!(rows.iter().any(|r| r.name == "lat_count" && r.value == 1.0));
    }
}
