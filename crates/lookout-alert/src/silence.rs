//! Silences: for a time, alerts whose labels match send no notification (they are still
//! evaluated, listed and kept in history, marked `silenced`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::rule::RuleError;

/// Longest silence: a forgotten silence must not hide alerts for ever.
pub const MAX_SILENCE_MS: u64 = 30 * 86_400_000;

/// What a client sends to create a silence.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SilenceRequest {
    /// Label → pattern (`*`, `?`); an alert is silenced when every one matches. At least one,
    /// e.g. `{"alertname": "HostCpuHigh"}`.
    #[schema(value_type = Object)]
    pub matchers: BTreeMap<String, String>,
    /// How long, e.g. `30m`, `2h` (at most 30 days).
    pub duration: String,
    #[serde(default)]
    pub comment: String,
}

/// An active or expired silence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Silence {
    pub id: String,
    #[schema(value_type = Object)]
    pub matchers: BTreeMap<String, String>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub comment: String,
}

impl SilenceRequest {
    /// Validates the request and makes the silence, starting at `now_ms`.
    pub fn into_silence(self, id: String, now_ms: i64) -> Result<Silence, RuleError> {
        if self.matchers.is_empty() {
            return Err(RuleError::new(
                "matchers",
                "at least one label matcher, e.g. {\"alertname\": \"HostCpuHigh\"}",
            ));
        }
        if self.matchers.len() > crate::rule::MAX_LABELS {
            return Err(RuleError::new("matchers", "too many matchers"));
        }
        for (k, v) in &self.matchers {
            if k.is_empty() || k.len() > 128 || v.len() > 256 {
                return Err(RuleError::new(
                    format!("matchers.{k}"),
                    "label name 1..=128 bytes, pattern at most 256",
                ));
            }
        }
        let ms = crate::duration::parse_duration_ms(&self.duration)
            .map_err(|m| RuleError::new("duration", m))?;
        if ms == 0 || ms > MAX_SILENCE_MS {
            return Err(RuleError::new(
                "duration",
                "must be more than 0s and at most 30d",
            ));
        }
        if self.comment.len() > crate::rule::MAX_TEMPLATE_LEN {
            return Err(RuleError::new("comment", "at most 1024 bytes"));
        }
        Ok(Silence {
            id,
            matchers: self.matchers,
            starts_at_ms: now_ms,
            ends_at_ms: now_ms.saturating_add(ms as i64),
            comment: self.comment,
        })
    }
}

impl Silence {
    pub fn active_at(&self, now_ms: i64) -> bool {
        self.starts_at_ms <= now_ms && now_ms < self.ends_at_ms
    }

    /// True when every matcher matches the alert's labels.
    pub fn covers(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matchers.iter().all(|(k, pat)| {
            labels
                .get(k)
                .is_some_and(|v| crate::glob::glob_match(pat, v))
        })
    }
}

/// True when an active silence covers these labels at `now_ms`.
pub fn is_silenced(silences: &[Silence], labels: &BTreeMap<String, String>, now_ms: i64) -> bool {
    silences
        .iter()
        .any(|s| s.active_at(now_ms) && s.covers(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(m: &[(&str, &str)], d: &str) -> SilenceRequest {
        SilenceRequest {
            matchers: m
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            duration: d.into(),
            comment: String::new(),
        }
    }

    #[test]
    fn silence_covers_matching_labels_for_its_time() {
        let s = req(&[("alertname", "Cpu*")], "10m")
            .into_silence("1".into(), 1_000)
            .unwrap();
        let mut l = BTreeMap::new();
        l.insert("alertname".to_string(), "CpuHigh".to_string());
        assert!(is_silenced(std::slice::from_ref(&s), &l, 2_000));
        assert!(!is_silenced(std::slice::from_ref(&s), &l, 1_000 + 600_000));
        l.insert("alertname".to_string(), "Mem".to_string());
        assert!(!is_silenced(&[s], &l, 2_000));
    }

    #[test]
    fn bad_silences_name_the_field() {
        assert_eq!(
            req(&[], "1m")
                .into_silence("x".into(), 0)
                .unwrap_err()
                .field,
            "matchers"
        );
        assert_eq!(
            req(&[("a", "b")], "0s")
                .into_silence("x".into(), 0)
                .unwrap_err()
                .field,
            "duration"
        );
        assert_eq!(
            req(&[("a", "b")], "31d")
                .into_silence("x".into(), 0)
                .unwrap_err()
                .field,
            "duration"
        );
    }
}
