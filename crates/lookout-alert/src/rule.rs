//! A rule as people write it (config file or API), its validation with errors that name the
//! field, and its compiled form the engine evaluates.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::duration::parse_duration_ms;
use crate::figure::{Figure, Scope};

/// Longest rule name, label, template: rules come from the API, so every input is bounded.
pub const MAX_NAME_LEN: usize = 128;
pub const MAX_TEMPLATE_LEN: usize = 1024;
pub const MAX_LABELS: usize = 32;
/// Longest averaging window, so a window's samples stay bounded (1 h at 1 s sampling).
pub const MAX_WINDOW_MS: u64 = 3_600_000;

/// One alert rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique name; becomes the `alertname` label. Letters, digits, `_`, `-`, `.`.
    pub name: String,
    /// The figure watched, e.g. `host.cpu.usage_percent`, `container.cpu_percent`
    /// (the list is in docs/alerts.md).
    pub figure: String,
    /// `>` (fires above the threshold) or `<` (fires below it).
    pub op: String,
    pub threshold: f64,
    /// Hysteresis: once pending or firing, the alert clears only when the figure is back past
    /// this value (at or below it for `>`, at or above it for `<`). Default: the threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear: Option<f64>,
    /// How long the condition must hold before the alert fires, e.g. `30s`; default `0s`.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    /// Compare the average over this window (e.g. `1m`) instead of the latest value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// Extra labels every alert of this rule carries, e.g. `severity = "page"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = Object)]
    pub labels: BTreeMap<String, String>,
    /// Text of the `summary` annotation; `{{ $value }}` and `{{ $labels.NAME }}` are filled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Which instances the rule covers (all when absent); containers that appear later match too.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub matcher: Option<InstanceMatch>,
}

/// Instance filter: by name pattern and, for containers, by Docker label.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceMatch {
    /// Pattern (`*`, `?`) on the container name, mount point, interface, disk or GPU name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Docker labels the container must carry; values are patterns (`*` for any value).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = Object)]
    pub labels: BTreeMap<String, String>,
}

/// A rule that cannot work, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RuleError {
    pub field: String,
    pub message: String,
}

impl RuleError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Above,
    Below,
}

impl Op {
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Above => ">",
            Op::Below => "<",
        }
    }
}

/// A validated rule in the form the engine evaluates every tick.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    pub rule: Rule,
    pub figure: Figure,
    pub op: Op,
    pub threshold: f64,
    pub clear: f64,
    pub for_ms: u64,
    pub window_ms: u64,
}

impl CompiledRule {
    /// True when `v` crosses the threshold (an inactive series starts pending).
    pub fn breaches(&self, v: f64) -> bool {
        match self.op {
            Op::Above => v > self.threshold,
            Op::Below => v < self.threshold,
        }
    }

    /// True when `v` is back past the clear level (a pending or firing series ends).
    pub fn clears(&self, v: f64) -> bool {
        match self.op {
            Op::Above => v <= self.clear,
            Op::Below => v >= self.clear,
        }
    }

    /// True when the rule covers this instance.
    pub fn covers(&self, inst: &crate::figure::Instance<'_>) -> bool {
        let Some(m) = &self.rule.matcher else {
            return true;
        };
        if let Some(p) = &m.name {
            if !crate::glob::glob_match(p, inst.match_name()) {
                return false;
            }
        }
        if m.labels.is_empty() {
            return true;
        }
        let Some(have) = inst.docker_labels() else {
            return false;
        };
        m.labels
            .iter()
            .all(|(k, pat)| have.get(k).is_some_and(|v| crate::glob::glob_match(pat, v)))
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Prometheus label names: `[a-zA-Z_][a-zA-Z0-9_]*`, and `__` is reserved.
fn valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with("__")
        && s.len() <= MAX_NAME_LEN
}

/// Labels lookout sets itself; a rule may not override them.
const RESERVED_LABELS: &[&str] = &["alertname", "host"];

impl Rule {
    /// Checks every field and compiles the rule, or names the first field at fault.
    pub fn compile(&self) -> Result<CompiledRule, RuleError> {
        if !valid_name(&self.name) {
            return Err(RuleError::new(
                "name",
                format!("must be 1..={MAX_NAME_LEN} letters, digits, '_', '-' or '.'"),
            ));
        }
        let figure = Figure::parse(&self.figure).ok_or_else(|| {
            let known: Vec<&str> = Figure::ALL.iter().map(|f| f.name()).collect();
            RuleError::new(
                "figure",
                format!(
                    "unknown figure {:?}; known: {}",
                    self.figure,
                    known.join(", ")
                ),
            )
        })?;
        let op = match self.op.trim() {
            ">" => Op::Above,
            "<" => Op::Below,
            other => {
                return Err(RuleError::new(
                    "op",
                    format!("{other:?} is not a condition: use \">\" or \"<\""),
                ))
            }
        };
        if !self.threshold.is_finite() {
            return Err(RuleError::new("threshold", "must be a finite number"));
        }
        let clear = self.clear.unwrap_or(self.threshold);
        if !clear.is_finite() {
            return Err(RuleError::new("clear", "must be a finite number"));
        }
        match op {
            Op::Above if clear > self.threshold => {
                return Err(RuleError::new(
                    "clear",
                    format!(
                        "with \">\" the clear level must be at or below the threshold ({})",
                        self.threshold
                    ),
                ))
            }
            Op::Below if clear < self.threshold => {
                return Err(RuleError::new(
                    "clear",
                    format!(
                        "with \"<\" the clear level must be at or above the threshold ({})",
                        self.threshold
                    ),
                ))
            }
            _ => {}
        }
        let for_ms = match &self.for_ {
            Some(t) => parse_duration_ms(t).map_err(|m| RuleError::new("for", m))?,
            None => 0,
        };
        let window_ms = match &self.window {
            Some(t) => parse_duration_ms(t).map_err(|m| RuleError::new("window", m))?,
            None => 0,
        };
        if window_ms > MAX_WINDOW_MS {
            return Err(RuleError::new("window", "must be at most 1h"));
        }
        if self.labels.len() > MAX_LABELS {
            return Err(RuleError::new(
                "labels",
                format!("at most {MAX_LABELS} labels"),
            ));
        }
        for (k, v) in &self.labels {
            if !valid_label_name(k) || RESERVED_LABELS.contains(&k.as_str()) {
                return Err(RuleError::new(
                    format!("labels.{k}"),
                    "label names are [a-zA-Z_][a-zA-Z0-9_]*, not starting with __, and not alertname or host",
                ));
            }
            if v.len() > MAX_TEMPLATE_LEN {
                return Err(RuleError::new(format!("labels.{k}"), "value too long"));
            }
        }
        if let Some(s) = &self.summary {
            if s.len() > MAX_TEMPLATE_LEN {
                return Err(RuleError::new(
                    "summary",
                    format!("at most {MAX_TEMPLATE_LEN} bytes"),
                ));
            }
            crate::template::check(s).map_err(|m| RuleError::new("summary", m))?;
        }
        if let Some(m) = &self.matcher {
            if let Some(p) = &m.name {
                if p.is_empty() || p.len() > MAX_NAME_LEN * 2 {
                    return Err(RuleError::new(
                        "match.name",
                        "pattern must be 1..=256 bytes",
                    ));
                }
            }
            if !m.labels.is_empty() && figure.scope() != Scope::Container {
                return Err(RuleError::new(
                    "match.labels",
                    "only container figures have Docker labels",
                ));
            }
            if m.labels.len() > MAX_LABELS {
                return Err(RuleError::new("match.labels", "too many labels"));
            }
        }
        Ok(CompiledRule {
            rule: self.clone(),
            figure,
            op,
            threshold: self.threshold,
            clear,
            for_ms,
            window_ms,
        })
    }
}

/// Checks a whole rule set: each rule, and that names are unique.
pub fn compile_all(rules: &[Rule]) -> Result<Vec<CompiledRule>, (usize, RuleError)> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(rules.len());
    for (i, r) in rules.iter().enumerate() {
        let c = r.compile().map_err(|e| (i, e))?;
        if !seen.insert(r.name.clone()) {
            return Err((
                i,
                RuleError::new("name", format!("{:?} is used by another rule", r.name)),
            ));
        }
        out.push(c);
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) fn rule(name: &str, figure: &str, op: &str, threshold: f64) -> Rule {
    Rule {
        name: name.into(),
        figure: figure.into(),
        op: op.into(),
        threshold,
        clear: None,
        for_: None,
        window: None,
        labels: BTreeMap::new(),
        summary: None,
        matcher: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(r: &Rule) -> String {
        r.compile().unwrap_err().field
    }

    #[test]
    fn bad_rules_name_their_field() {
        let ok = rule("CpuHigh", "host.cpu.usage_percent", ">", 90.0);
        assert!(ok.compile().is_ok());
        assert_eq!(
            field_of(&Rule {
                name: "bad name".into(),
                ..ok.clone()
            }),
            "name"
        );
        assert_eq!(
            field_of(&Rule {
                figure: "host.cpu".into(),
                ..ok.clone()
            }),
            "figure"
        );
        assert_eq!(
            field_of(&Rule {
                op: ">=".into(),
                ..ok.clone()
            }),
            "op"
        );
        assert_eq!(
            field_of(&Rule {
                threshold: f64::NAN,
                ..ok.clone()
            }),
            "threshold"
        );
        assert_eq!(
            field_of(&Rule {
                clear: Some(95.0),
                ..ok.clone()
            }),
            "clear"
        );
        assert_eq!(
            field_of(&Rule {
                for_: Some("10".into()),
                ..ok.clone()
            }),
            "for"
        );
        assert_eq!(
            field_of(&Rule {
                window: Some("2h".into()),
                ..ok.clone()
            }),
            "window"
        );
        let mut labels = BTreeMap::new();
        labels.insert("alertname".into(), "x".into());
        assert_eq!(
            field_of(&Rule {
                labels,
                ..ok.clone()
            }),
            "labels.alertname"
        );
        assert_eq!(
            field_of(&Rule {
                summary: Some("{{ $nope }}".into()),
                ..ok.clone()
            }),
            "summary"
        );
        let m = InstanceMatch {
            name: None,
            labels: [("a".to_string(), "b".to_string())].into(),
        };
        assert_eq!(
            field_of(&Rule {
                matcher: Some(m),
                ..ok.clone()
            }),
            "match.labels"
        );
    }

    #[test]
    fn duplicate_names_refused() {
        let a = rule("A", "host.load1", ">", 1.0);
        let err = compile_all(&[a.clone(), a]).unwrap_err();
        assert_eq!(err.0, 1);
        assert_eq!(err.1.field, "name");
    }

    #[test]
    fn rule_reads_from_toml_like_json() {
        let r: Rule = serde_json::from_str(
            r#"{"name":"x","figure":"container.cpu_percent","op":">","threshold":50,"for":"5s",
                "match":{"name":"web-*","labels":{"team":"ops"}}}"#,
        )
        .unwrap();
        let c = r.compile().unwrap();
        assert_eq!(c.for_ms, 5000);
        assert!(serde_json::from_str::<Rule>(
            r#"{"name":"x","figure":"f","op":">","threshold":1,"bogus":1}"#
        )
        .is_err());
    }
}

/// Expected JSON type of each field, so a wrong type is refused naming the field (serde's own
/// message gives only a line and column).
const FIELD_TYPES: &[(&str, &str)] = &[
    ("name", "string"),
    ("figure", "string"),
    ("op", "string"),
    ("threshold", "number"),
    ("clear", "number"),
    ("for", "string"),
    ("window", "string"),
    ("labels", "object"),
    ("summary", "string"),
    ("match", "object"),
];

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

impl Rule {
    /// Reads and validates a rule from a JSON document (an API body), naming the field at fault.
    pub fn from_json(v: serde_json::Value) -> Result<Rule, RuleError> {
        let obj = v
            .as_object()
            .ok_or_else(|| RuleError::new("body", "must be a JSON object (a rule)"))?;
        for (k, val) in obj {
            let Some((_, want)) = FIELD_TYPES.iter().find(|(f, _)| f == k) else {
                let known: Vec<&str> = FIELD_TYPES.iter().map(|(f, _)| *f).collect();
                return Err(RuleError::new(
                    k.as_str(),
                    format!("unknown field; known: {}", known.join(", ")),
                ));
            };
            let optional = !matches!(k.as_str(), "name" | "figure" | "op" | "threshold");
            if json_kind(val) != *want && !(optional && val.is_null()) {
                return Err(RuleError::new(
                    k.as_str(),
                    format!("must be a {want}, not a {}", json_kind(val)),
                ));
            }
        }
        for required in ["name", "figure", "op", "threshold"] {
            if !obj.contains_key(required) {
                return Err(RuleError::new(required, "is required"));
            }
        }
        let rule: Rule = serde_json::from_value(v).map_err(|e| {
            let msg = e.to_string();
            let field = ["labels", "match"]
                .into_iter()
                .find(|f| msg.contains("map") || msg.contains(f))
                .unwrap_or("body");
            RuleError::new(field, msg)
        })?;
        rule.compile()?;
        Ok(rule)
    }
}

#[cfg(test)]
mod json_tests {
    use super::*;

    #[test]
    fn json_errors_name_the_field() {
        let e = |v: serde_json::Value| Rule::from_json(v).unwrap_err().field;
        assert_eq!(
            e(serde_json::json!({"name":"a","figure":"host.load1","op":">","threshold":"x"})),
            "threshold"
        );
        assert_eq!(
            e(serde_json::json!({"name":"a","figure":"host.load1","op":">"})),
            "threshold"
        );
        assert_eq!(
            e(
                serde_json::json!({"name":"a","figure":"host.load1","op":">","threshold":1,"bogus":2})
            ),
            "bogus"
        );
        assert_eq!(e(serde_json::json!([1])), "body");
        assert_eq!(
            e(serde_json::json!({"name":"a","figure":"nope","op":">","threshold":1})),
            "figure"
        );
        assert!(Rule::from_json(serde_json::json!({"name":"a","figure":"host.load1","op":">","threshold":1,"clear":null})).is_ok());
    }
}
