//! What the engine reports: alerts and their state changes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where an alert stands. `inactive` appears only in history (a pending alert whose
/// condition ended before `for` ran out); `resolved` is the end of a firing alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// One alert: a rule on one instance (the host, a mount, a container, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Alert {
    /// The rule's name (also the `alertname` label).
    pub rule: String,
    /// Stable hash of the labels: the same alert has the same fingerprint across restarts.
    pub fingerprint: String,
    /// The instance key (mount point, container name, …; empty for the host).
    pub series: String,
    pub state: AlertState,
    #[schema(value_type = Object)]
    pub labels: BTreeMap<String, String>,
    /// `summary` (the rule's template, filled in) and `description`.
    #[schema(value_type = Object)]
    pub annotations: BTreeMap<String, String>,
    /// The figure's value (the window's average where the rule has a window) at the last evaluation.
    pub value: f64,
    /// When the condition started to hold (Prometheus' `activeAt`; Alertmanager's `startsAt`), ms since the epoch.
    pub active_since_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at_ms: Option<i64>,
}

/// One state change, as history keeps it and notifications carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Transition {
    /// When it happened, ms since the epoch (the sample's time).
    pub at_ms: i64,
    pub from: AlertState,
    pub to: AlertState,
    /// True when a silence covered the alert at that moment (no notification was sent).
    #[serde(default)]
    pub silenced: bool,
    pub alert: Alert,
}

/// FNV-1a over the sorted labels: stable across runs and builds (unlike `DefaultHasher`).
pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in labels {
        for b in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xfe]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}
