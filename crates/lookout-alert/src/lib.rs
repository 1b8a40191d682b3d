//! Threshold alerts over lookout's snapshots (issue 18).
//!
//! The job of this crate: given the sampler's [`lookout_probe::Snapshot`]s, move every
//! (rule, instance) series through pending → firing → resolved, with `for` durations,
//! averaging windows and hysteresis, and tell people: webhooks, e-mail, Alertmanager.
//!
//! What it must never depend on: HTTP frameworks or the API crate (the API crate reads this
//! one), configuration files other than its own `[alerts]` section, the sampler loop (it
//! follows the published snapshots on its own task). The decisions ([`Engine`],
//! [`next_phase`], [`glob_match`], templates, silences) are pure and take time from the
//! snapshot, so tests replay exact sequences. I/O: [`AlertService`] keeps rules, silences,
//! firing alerts and history in the data directory; delivery (reqwest, SMTP) is behind the
//! `notify` feature.

mod alert;
mod config;
mod duration;
mod engine;
mod figure;
mod glob;
mod keys;
mod persist;
mod promrules;
mod rule;
mod service;
mod silence;
mod template;

#[cfg(feature = "notify")]
pub mod notify;

pub use alert::{fingerprint, Alert, AlertState, Transition};
pub use config::{
    AlertmanagerConfig, AlertsConfig, EmailConfig, SmtpSecurity, WebhookConfig, WebhookFormat,
};
pub use duration::{format_duration_ms, parse_duration_ms};
pub use engine::{next_phase, Engine, Phase};
pub use figure::{Figure, Scope};
pub use glob::glob_match;
pub use promrules::prometheus_rules_yaml;
pub use rule::{compile_all, CompiledRule, InstanceMatch, Op, Rule, RuleError};
pub use service::{ActiveAlert, AlertService, RuleEntry, RuleSource, ServiceError};
pub use silence::{is_silenced, Silence, SilenceRequest};
pub use template::{format_value, render};
