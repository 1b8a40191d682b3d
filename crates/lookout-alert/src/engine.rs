//! The evaluation engine: one pass over a snapshot moves every (rule, instance) series
//! through inactive → pending → firing → resolved. Pure and synchronous: time is the
//! snapshot's own timestamp, so tests replay any sequence exactly.

use std::collections::{BTreeMap, HashMap, VecDeque};

use lookout_probe::Snapshot;

use crate::alert::{fingerprint, Alert, AlertState, Transition};
use crate::figure::{for_each_key, for_each_value, Instance, Scope};
use crate::keys::{IdMap, KeyId, Keys};
use crate::rule::CompiledRule;

/// Where one series stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Inactive,
    Pending { since_ms: i64 },
    Firing { since_ms: i64, fired_ms: i64 },
}

/// The state machine, with hysteresis: an inactive series starts when the value *breaches*
/// the threshold; a pending or firing one ends only when the value *clears* (is back past the
/// clear level), so a value hovering between the two never flaps.
pub fn next_phase(rule: &CompiledRule, phase: Phase, value: f64, now_ms: i64) -> Phase {
    match phase {
        Phase::Inactive if rule.breaches(value) => {
            if rule.for_ms == 0 {
                Phase::Firing {
                    since_ms: now_ms,
                    fired_ms: now_ms,
                }
            } else {
                Phase::Pending { since_ms: now_ms }
            }
        }
        Phase::Inactive => Phase::Inactive,
        _ if rule.clears(value) => Phase::Inactive,
        Phase::Pending { since_ms } if now_ms.saturating_sub(since_ms) >= rule.for_ms as i64 => {
            Phase::Firing {
                since_ms,
                fired_ms: now_ms,
            }
        }
        held => held,
    }
}

/// The samples of an averaging window.
#[derive(Debug, Default)]
struct Window {
    samples: VecDeque<(i64, f64)>,
    sum: f64,
}

impl Window {
    fn push(&mut self, now_ms: i64, v: f64, window_ms: u64) -> f64 {
        self.samples.push_back((now_ms, v));
        self.sum += v;
        let oldest = now_ms - window_ms as i64;
        while let Some(&(t, old)) = self.samples.front() {
            if t > oldest || self.samples.len() == 1 {
                break;
            }
            self.sum -= old;
            self.samples.pop_front();
        }
        self.sum / self.samples.len() as f64
    }
}

#[derive(Debug)]
struct Series {
    phase: Phase,
    window: Window,
    /// Evaluation pass that last saw this series.
    seen: u64,
    /// Present while pending or firing.
    alert: Option<Alert>,
}

struct RuleState {
    rule: CompiledRule,
    /// Keyed by the instance's interned key (see [`Keys`]); each entry holds its id.
    series: IdMap<Series>,
}

/// Every rule's series. Not shared: the owner wraps it in a mutex.
pub struct Engine {
    rules: Vec<RuleState>,
    pass: u64,
    /// Alerts of rules that were removed or changed, resolved at the next pass.
    orphans: Vec<Alert>,
    keys: Keys,
    /// This pass's instance ids per scope, by position (reused between passes).
    scope_ids: [Vec<KeyId>; Scope::ALL.len()],
}

fn new_alert(
    rule: &CompiledRule,
    inst: &Instance<'_>,
    host: &str,
    value: f64,
    since_ms: i64,
) -> Alert {
    let mut labels = inst.labels(host);
    for (k, v) in &rule.rule.labels {
        labels.insert(k.clone(), v.clone());
    }
    labels.insert("alertname".into(), rule.rule.name.clone());
    let mut annotations = BTreeMap::new();
    let summary = match &rule.rule.summary {
        Some(t) => crate::template::render(t, value, &labels),
        None => format!(
            "{} {} {} ({}){}",
            rule.rule.figure,
            rule.op.symbol(),
            crate::template::format_value(rule.threshold),
            crate::template::format_value(value),
            match inst.key() {
                "" => String::new(),
                k => format!(" on {k}"),
            }
        ),
    };
    annotations.insert("summary".into(), summary);
    annotations.insert("description".into(), rule.figure.help().to_owned());
    Alert {
        rule: rule.rule.name.clone(),
        fingerprint: fingerprint(&labels),
        series: inst.key().to_owned(),
        state: AlertState::Pending,
        labels,
        annotations,
        value,
        active_since_ms: since_ms,
        fired_at_ms: None,
        resolved_at_ms: None,
    }
}

fn end(mut alert: Alert, from: AlertState, at_ms: i64) -> Transition {
    let to = if from == AlertState::Firing {
        alert.resolved_at_ms = Some(at_ms);
        AlertState::Resolved
    } else {
        AlertState::Inactive
    };
    alert.state = to;
    Transition {
        at_ms,
        from,
        to,
        silenced: false,
        alert,
    }
}

impl Engine {
    pub fn new(rules: Vec<CompiledRule>) -> Self {
        Self {
            rules: rules
                .into_iter()
                .map(|rule| RuleState {
                    rule,
                    series: IdMap::default(),
                })
                .collect(),
            pass: 0,
            orphans: Vec::new(),
            keys: Keys::default(),
            scope_ids: Default::default(),
        }
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Replaces the rules. A rule whose definition is unchanged keeps its state; the alerts of
    /// a removed or changed rule end at the next pass (resolved, so receivers hear of it).
    pub fn set_rules(&mut self, rules: Vec<CompiledRule>) {
        let mut old: HashMap<String, RuleState> = self
            .rules
            .drain(..)
            .map(|r| (r.rule.rule.name.clone(), r))
            .collect();
        for rule in rules {
            let series = match old.remove(&rule.rule.name) {
                Some(prev) if prev.rule.rule == rule.rule => prev.series,
                Some(prev) => {
                    self.orphan(prev);
                    IdMap::default()
                }
                None => IdMap::default(),
            };
            self.rules.push(RuleState { rule, series });
        }
        for (_, prev) in old {
            self.orphan(prev);
        }
    }

    fn orphan(&mut self, prev: RuleState) {
        for (id, s) in prev.series {
            self.keys.release(id);
            self.orphans.extend(s.alert);
        }
    }

    /// Takes back alerts that were firing before a restart, so their resolution is not lost:
    /// the next pass resolves them if the figure is back to normal or the instance is gone.
    pub fn restore(&mut self, alerts: Vec<Alert>) {
        for a in alerts {
            if a.state != AlertState::Firing {
                continue;
            }
            let Some(rs) = self.rules.iter_mut().find(|r| r.rule.rule.name == a.rule) else {
                self.orphans.push(a);
                continue;
            };
            let phase = Phase::Firing {
                since_ms: a.active_since_ms,
                fired_ms: a.fired_at_ms.unwrap_or(a.active_since_ms),
            };
            let id = self.keys.intern(&a.series, self.pass);
            if rs.series.contains_key(&id) {
                continue;
            }
            self.keys.hold(id);
            rs.series.insert(
                id,
                Series {
                    phase,
                    window: Window::default(),
                    seen: 0,
                    alert: Some(a),
                },
            );
        }
    }

    /// One pass over a snapshot; returns the state changes in rule order.
    pub fn evaluate(&mut self, snap: &Snapshot) -> Vec<Transition> {
        self.pass += 1;
        let Engine {
            rules,
            pass,
            orphans,
            keys,
            scope_ids,
        } = self;
        let pass = *pass;
        let now = snap.taken_at_ms;
        let host = snap.host.hostname.as_str();
        let mut out = Vec::new();
        for a in orphans.drain(..) {
            let from = a.state;
            out.push(end(a, from, now));
        }
        // Every instance's key, interned once for all rules.
        for scope in Scope::ALL {
            let ids = &mut scope_ids[scope.index()];
            ids.clear();
            for_each_key(scope, snap, |k| ids.push(keys.intern(k, pass)));
        }
        let docker_down = snap.containers.containers().is_none();
        let gpus_down = !snap.gpu.available;
        for RuleState { rule, series } in rules.iter_mut() {
            // An engine or driver that does not answer this tick says nothing about its
            // containers or GPUs: hold their alerts instead of resolving them all.
            let scope = rule.figure.scope();
            let unknown = match scope {
                Scope::Container => docker_down,
                Scope::Gpu => gpus_down,
                _ => false,
            };
            if unknown {
                continue;
            }
            let ids = &scope_ids[scope.index()];
            for_each_value(rule.figure, snap, |inst, pos, raw| {
                if !rule.covers(&inst) {
                    return;
                }
                let Some(&id) = ids.get(pos) else {
                    return;
                };
                let s = match series.get_mut(&id) {
                    Some(s) => s,
                    // Inactive series without a window keep no state: nothing to allocate.
                    None if rule.window_ms == 0 && !rule.breaches(raw) => return,
                    None => {
                        keys.hold(id);
                        series.entry(id).or_insert(Series {
                            phase: Phase::Inactive,
                            window: Window::default(),
                            seen: 0,
                            alert: None,
                        })
                    }
                };
                s.seen = pass;
                let value = if rule.window_ms == 0 {
                    raw
                } else {
                    s.window.push(now, raw, rule.window_ms)
                };
                let next = next_phase(rule, s.phase, value, now);
                if let Some(a) = &mut s.alert {
                    a.value = value;
                }
                match (s.phase, next) {
                    (Phase::Inactive, Phase::Inactive) => {}
                    (Phase::Inactive, Phase::Pending { since_ms }) => {
                        let a = new_alert(rule, &inst, host, value, since_ms);
                        out.push(Transition {
                            at_ms: now,
                            from: AlertState::Inactive,
                            to: AlertState::Pending,
                            silenced: false,
                            alert: a.clone(),
                        });
                        s.alert = Some(a);
                    }
                    (from, Phase::Firing { since_ms, fired_ms })
                        if !matches!(from, Phase::Firing { .. }) =>
                    {
                        let mut a = s
                            .alert
                            .take()
                            .unwrap_or_else(|| new_alert(rule, &inst, host, value, since_ms));
                        a.state = AlertState::Firing;
                        a.fired_at_ms = Some(fired_ms);
                        let from = if from == Phase::Inactive {
                            AlertState::Inactive
                        } else {
                            AlertState::Pending
                        };
                        out.push(Transition {
                            at_ms: now,
                            from,
                            to: AlertState::Firing,
                            silenced: false,
                            alert: a.clone(),
                        });
                        s.alert = Some(a);
                    }
                    (from, Phase::Inactive) => {
                        if let Some(a) = s.alert.take() {
                            let from = if matches!(from, Phase::Firing { .. }) {
                                AlertState::Firing
                            } else {
                                AlertState::Pending
                            };
                            out.push(end(a, from, now));
                        }
                    }
                    _ => {}
                }
                s.phase = next;
            });
            // Instances gone (container removed, value missing) end their alerts.
            series.retain(|&id, s| {
                if s.seen == pass && (s.alert.is_some() || rule.window_ms > 0) {
                    return true;
                }
                if s.seen != pass {
                    if let Some(a) = s.alert.take() {
                        let from = a.state;
                        out.push(end(a, from, now));
                    }
                }
                keys.release(id);
                false
            });
        }
        keys.sweep(pass);
        out
    }

    /// Alerts now pending or firing.
    pub fn active(&self) -> Vec<Alert> {
        self.rules
            .iter()
            .flat_map(|r| r.series.values().filter_map(|s| s.alert.clone()))
            .collect()
    }
}
