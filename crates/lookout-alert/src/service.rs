//! The running alert service: rules (file + API), the engine behind a mutex, silences,
//! history, and the evaluator task that follows the sampler's snapshots.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use utoipa::ToSchema;

use lookout_probe::Snapshot;
use lookout_util::clock::now_ms;

use crate::alert::{Alert, AlertState, Transition};
use crate::config::AlertsConfig;
use crate::engine::Engine;
use crate::persist::{load_json, save_json, History};
use crate::rule::{compile_all, Rule, RuleError};
use crate::silence::{is_silenced, Silence, SilenceRequest};

const RULES_FILE: &str = "alert-rules.json";
const SILENCES_FILE: &str = "alert-silences.json";
const STATE_FILE: &str = "alert-state.json";
const HISTORY_FILE: &str = "alert-history.jsonl";
/// Rules the API may hold, so a client cannot make every tick slow.
pub const MAX_API_RULES: usize = 5_000;
pub const MAX_SILENCES: usize = 1_000;

/// Why a service call failed; the API maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Invalid(#[from] RuleError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Io(String),
}

/// Where a rule comes from: the config file (read-only here) or the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RuleSource {
    Config,
    Api,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RuleEntry {
    pub source: RuleSource,
    pub rule: Rule,
}

/// An active alert and whether a silence covers it now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActiveAlert {
    #[serde(flatten)]
    pub alert: Alert,
    pub silenced: bool,
}

struct Shared {
    dir: PathBuf,
    config_rules: Vec<Rule>,
    api_rules: Mutex<Vec<Rule>>,
    engine: Mutex<Engine>,
    silences: Mutex<Vec<Silence>>,
    history: History,
    /// Transitions for the notifier (unbounded: they are few, and evaluation must never wait).
    notify: mpsc::UnboundedSender<Transition>,
    last_eval_ns: AtomicU64,
    generator_url: String,
}

/// Cheap to clone; every clone is the same service.
#[derive(Clone)]
pub struct AlertService(Arc<Shared>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl AlertService {
    /// Loads the rules (config file first, then `alert-rules.json`), silences and the alerts
    /// that were firing at the last stop. Returns the receiving end of the notification feed.
    pub fn open(
        cfg: &AlertsConfig,
        data_dir: &Path,
        default_url: &str,
    ) -> Result<(Self, mpsc::UnboundedReceiver<Transition>), String> {
        let api_rules: Vec<Rule> = load_json(&data_dir.join(RULES_FILE))?;
        let mut all = cfg.rules.clone();
        all.extend(api_rules.iter().cloned());
        let compiled = compile_all(&all).map_err(|(i, e)| {
            let (place, n) = if i < cfg.rules.len() {
                ("[[alerts.rules]]", i)
            } else {
                (RULES_FILE, i - cfg.rules.len())
            };
            format!("{place} rule #{} ({:?}): {e}", n + 1, all[i].name)
        })?;
        let mut engine = Engine::new(compiled);
        let restored: Vec<Alert> = load_json(&data_dir.join(STATE_FILE))?;
        engine.restore(restored);
        let silences: Vec<Silence> = load_json(&data_dir.join(SILENCES_FILE))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let base = cfg
            .external_url
            .as_deref()
            .unwrap_or(default_url)
            .trim_end_matches('/');
        Ok((
            Self(Arc::new(Shared {
                dir: data_dir.to_owned(),
                config_rules: cfg.rules.clone(),
                api_rules: Mutex::new(api_rules),
                engine: Mutex::new(engine),
                silences: Mutex::new(silences),
                history: History::new(data_dir.join(HISTORY_FILE), cfg.history_max_bytes),
                notify: tx,
                last_eval_ns: AtomicU64::new(0),
                generator_url: format!("{base}/api/v1/alerts"),
            })),
            rx,
        ))
    }

    /// `generatorURL` of the alerts (Alertmanager links back to it).
    pub fn generator_url(&self) -> &str {
        &self.0.generator_url
    }

    /// One evaluation pass: records the transitions (history, firing set) and hands them to
    /// the notifier without waiting. Called from the evaluator task, never a request.
    pub fn evaluate(&self, snap: &Snapshot) -> Vec<Transition> {
        let start = std::time::Instant::now();
        let (mut transitions, active) = {
            let mut engine = lock(&self.0.engine);
            let t = engine.evaluate(snap);
            let active = if t.is_empty() {
                None
            } else {
                Some(engine.active())
            };
            (t, active)
        };
        self.0
            .last_eval_ns
            .store(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        let Some(active) = active else {
            return transitions;
        };
        {
            let silences = lock(&self.0.silences);
            for t in &mut transitions {
                t.silenced = is_silenced(&silences, &t.alert.labels, t.at_ms);
            }
        }
        if let Err(e) = self.0.history.append(&transitions) {
            tracing::error!(error = %e, "alert history could not be written");
        }
        let firing: Vec<&Alert> = active
            .iter()
            .filter(|a| a.state == AlertState::Firing)
            .collect();
        if let Err(e) = save_json(&self.0.dir.join(STATE_FILE), &firing) {
            tracing::error!(error = %e, "firing alerts could not be saved");
        }
        for t in &transitions {
            tracing::info!(alert = %t.alert.rule, series = %t.alert.series, from = t.from.as_str(),
                to = t.to.as_str(), value = t.alert.value, silenced = t.silenced, "alert state changed");
            let _ = self.0.notify.send(t.clone());
        }
        transitions
    }

    /// Evaluates every snapshot the sampler publishes until `stop`.
    pub async fn run_evaluator(
        self,
        mut snapshots: watch::Receiver<Option<Arc<Snapshot>>>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                changed = snapshots.changed() => if changed.is_err() { return },
                _ = stop.changed() => return,
            }
            let snap = snapshots.borrow_and_update().clone();
            if let Some(snap) = snap {
                self.evaluate(&snap);
            }
        }
    }

    /// Nanoseconds the last evaluation pass took.
    pub fn last_eval_ns(&self) -> u64 {
        self.0.last_eval_ns.load(Ordering::Relaxed)
    }

    pub fn rules(&self) -> Vec<RuleEntry> {
        let api = lock(&self.0.api_rules);
        self.0
            .config_rules
            .iter()
            .map(|r| RuleEntry {
                source: RuleSource::Config,
                rule: r.clone(),
            })
            .chain(api.iter().map(|r| RuleEntry {
                source: RuleSource::Api,
                rule: r.clone(),
            }))
            .collect()
    }

    /// Applies `change` to the API rules; validates the whole set, then saves and swaps it in.
    fn change_rules(
        &self,
        change: impl FnOnce(&mut Vec<Rule>) -> Result<(), ServiceError>,
    ) -> Result<(), ServiceError> {
        let mut api = lock(&self.0.api_rules);
        let mut next = api.clone();
        change(&mut next)?;
        if next.len() > MAX_API_RULES {
            return Err(ServiceError::Conflict(format!(
                "at most {MAX_API_RULES} rules"
            )));
        }
        let mut all = self.0.config_rules.clone();
        all.extend(next.iter().cloned());
        let compiled = compile_all(&all).map_err(|(_, e)| ServiceError::Invalid(e))?;
        save_json(&self.0.dir.join(RULES_FILE), &next).map_err(ServiceError::Io)?;
        lock(&self.0.engine).set_rules(compiled);
        *api = next;
        Ok(())
    }

    fn is_config_rule(&self, name: &str) -> bool {
        self.0.config_rules.iter().any(|r| r.name == name)
    }

    pub fn create_rule(&self, rule: Rule) -> Result<(), ServiceError> {
        rule.compile()?;
        if self.is_config_rule(&rule.name) {
            return Err(ServiceError::Conflict(format!(
                "rule {:?} exists in the config file",
                rule.name
            )));
        }
        self.change_rules(|rules| {
            if rules.iter().any(|r| r.name == rule.name) {
                return Err(ServiceError::Conflict(format!(
                    "rule {:?} exists; PUT updates it",
                    rule.name
                )));
            }
            rules.push(rule);
            Ok(())
        })
    }

    pub fn update_rule(&self, name: &str, rule: Rule) -> Result<(), ServiceError> {
        rule.compile()?;
        if self.is_config_rule(name) {
            return Err(ServiceError::Conflict(format!(
                "rule {name:?} comes from the config file; edit it there"
            )));
        }
        self.change_rules(|rules| {
            let slot = rules
                .iter_mut()
                .find(|r| r.name == name)
                .ok_or_else(|| ServiceError::NotFound(format!("no API rule named {name:?}")))?;
            *slot = rule;
            Ok(())
        })
    }

    pub fn delete_rule(&self, name: &str) -> Result<(), ServiceError> {
        if self.is_config_rule(name) {
            return Err(ServiceError::Conflict(format!(
                "rule {name:?} comes from the config file; remove it there"
            )));
        }
        self.change_rules(|rules| {
            let before = rules.len();
            rules.retain(|r| r.name != name);
            if rules.len() == before {
                return Err(ServiceError::NotFound(format!(
                    "no API rule named {name:?}"
                )));
            }
            Ok(())
        })
    }

    pub fn active(&self) -> Vec<ActiveAlert> {
        let alerts = lock(&self.0.engine).active();
        let silences = lock(&self.0.silences);
        let now = now_ms();
        alerts
            .into_iter()
            .map(|a| ActiveAlert {
                silenced: is_silenced(&silences, &a.labels, now),
                alert: a,
            })
            .collect()
    }

    /// Firing alerts no silence covers (what Alertmanager is re-sent).
    pub fn firing_unsilenced(&self) -> Vec<Alert> {
        self.active()
            .into_iter()
            .filter(|a| !a.silenced && a.alert.state == AlertState::Firing)
            .map(|a| a.alert)
            .collect()
    }

    pub fn is_silenced(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        is_silenced(&lock(&self.0.silences), labels, now_ms())
    }

    pub fn history(&self, limit: usize) -> Result<Vec<Transition>, ServiceError> {
        self.0
            .history
            .read_newest(limit)
            .map_err(|e| ServiceError::Io(e.to_string()))
    }

    /// Silences not yet expired (expired ones are dropped from the file as they are seen).
    pub fn silences(&self) -> Vec<Silence> {
        let now = now_ms();
        lock(&self.0.silences)
            .iter()
            .filter(|s| s.ends_at_ms > now)
            .cloned()
            .collect()
    }

    pub fn add_silence(&self, req: SilenceRequest) -> Result<Silence, ServiceError> {
        let now = now_ms();
        let id = format!("{:016x}", rand_id());
        let s = req.into_silence(id, now)?;
        let mut all = lock(&self.0.silences);
        let mut next: Vec<Silence> = all.iter().filter(|x| x.ends_at_ms > now).cloned().collect();
        if next.len() >= MAX_SILENCES {
            return Err(ServiceError::Conflict(format!(
                "at most {MAX_SILENCES} silences"
            )));
        }
        next.push(s.clone());
        save_json(&self.0.dir.join(SILENCES_FILE), &next).map_err(ServiceError::Io)?;
        *all = next;
        Ok(s)
    }

    pub fn delete_silence(&self, id: &str) -> Result<(), ServiceError> {
        let mut all = lock(&self.0.silences);
        let next: Vec<Silence> = all.iter().filter(|s| s.id != id).cloned().collect();
        if next.len() == all.len() {
            return Err(ServiceError::NotFound(format!("no silence {id:?}")));
        }
        save_json(&self.0.dir.join(SILENCES_FILE), &next).map_err(ServiceError::Io)?;
        *all = next;
        Ok(())
    }

    /// How many alerts of each rule are in each state, every rule listed (0 when quiet):
    /// the figures of `lookout_alerts{alertname,state}`.
    pub fn state_counts(&self) -> Vec<(String, &'static str, u64)> {
        let mut counts: std::collections::BTreeMap<(String, &'static str), u64> =
            Default::default();
        for r in self.rules() {
            counts.insert((r.rule.name.clone(), "pending"), 0);
            counts.insert((r.rule.name, "firing"), 0);
        }
        for a in lock(&self.0.engine).active() {
            *counts.entry((a.rule, a.state.as_str())).or_default() += 1;
        }
        counts.into_iter().map(|((n, s), c)| (n, s, c)).collect()
    }
}

/// A silence id: unique enough for a handful of silences, no extra dependency.
fn rand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(now_ms());
    h.finish()
}
