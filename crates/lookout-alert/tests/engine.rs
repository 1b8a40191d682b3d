//! The engine over replayed snapshots: states, `for`, windows, hysteresis (no flapping),
//! container matching, restart restore. Property tests for the decisions.

use std::collections::BTreeMap;

use lookout_alert::{
    compile_all, next_phase, AlertState, Engine, InstanceMatch, Phase, Rule, Transition,
};
use lookout_probe::{ContainerStats, ContainersView, HostSnapshot, Snapshot};
use proptest::prelude::*;

fn rule(name: &str, figure: &str, op: &str, threshold: f64) -> Rule {
    serde_json::from_value(serde_json::json!({
        "name": name, "figure": figure, "op": op, "threshold": threshold
    }))
    .unwrap()
}

fn snap(t_ms: i64, cpu: f64, containers: Vec<ContainerStats>) -> Snapshot {
    let mut host = HostSnapshot {
        hostname: "h1".into(),
        ..Default::default()
    };
    host.cpu.total.usage = cpu;
    Snapshot {
        taken_at_ms: t_ms,
        tick: (t_ms / 1000) as u64,
        host,
        containers: ContainersView::Available { containers },
        gpu: Default::default(),
        processes: None,
    }
}

fn container(name: &str, cpu: f64, team: &str) -> ContainerStats {
    ContainerStats {
        id: format!("{name}-id"),
        name: name.into(),
        state: "running".into(),
        cpu_percent: Some(cpu),
        labels: [("team".to_string(), team.to_string())].into(),
        ..Default::default()
    }
}

fn engine(rules: Vec<Rule>) -> Engine {
    Engine::new(compile_all(&rules).unwrap())
}

fn states(ts: &[Transition]) -> Vec<(AlertState, AlertState)> {
    ts.iter().map(|t| (t.from, t.to)).collect()
}

#[test]
fn pending_then_firing_then_resolved() {
    let mut r = rule("CpuHigh", "host.cpu.usage_percent", ">", 90.0);
    r.for_ = Some("2s".into());
    r.summary = Some("CPU {{ $value }}% on {{ $labels.host }}".into());
    let mut e = engine(vec![r]);
    assert!(e.evaluate(&snap(0, 50.0, vec![])).is_empty());
    assert_eq!(
        states(&e.evaluate(&snap(1000, 95.0, vec![]))),
        [(AlertState::Inactive, AlertState::Pending)]
    );
    assert!(e.evaluate(&snap(2000, 96.0, vec![])).is_empty());
    let fired = e.evaluate(&snap(3000, 97.0, vec![]));
    assert_eq!(states(&fired), [(AlertState::Pending, AlertState::Firing)]);
    let a = &fired[0].alert;
    assert_eq!(a.labels["alertname"], "CpuHigh");
    assert_eq!(a.labels["host"], "h1");
    assert_eq!(a.active_since_ms, 1000);
    assert_eq!(a.fired_at_ms, Some(3000));
    assert_eq!(e.active().len(), 1);
    let resolved = e.evaluate(&snap(4000, 10.0, vec![]));
    assert_eq!(
        states(&resolved),
        [(AlertState::Firing, AlertState::Resolved)]
    );
    assert_eq!(resolved[0].alert.resolved_at_ms, Some(4000));
    assert!(e.active().is_empty());
}

#[test]
fn pending_that_ends_early_never_fires() {
    let mut r = rule("CpuHigh", "host.cpu.usage_percent", ">", 90.0);
    r.for_ = Some("5s".into());
    let mut e = engine(vec![r]);
    e.evaluate(&snap(0, 95.0, vec![]));
    let t = e.evaluate(&snap(1000, 20.0, vec![]));
    assert_eq!(states(&t), [(AlertState::Pending, AlertState::Inactive)]);
    for i in 2..10 {
        assert!(e.evaluate(&snap(i * 1000, 20.0, vec![])).is_empty());
    }
}

#[test]
fn hysteresis_keeps_a_hovering_value_from_flapping() {
    let mut r = rule("CpuHigh", "host.cpu.usage_percent", ">", 90.0);
    r.clear = Some(80.0);
    let mut e = engine(vec![r.clone()]);
    let mut without = engine(vec![rule("CpuHigh", "host.cpu.usage_percent", ">", 90.0)]);
    let (mut with_n, mut without_n) = (0, 0);
    for i in 0..100 {
        let v = if i % 2 == 0 { 91.0 } else { 89.0 };
        with_n += e.evaluate(&snap(i * 1000, v, vec![])).len();
        without_n += without.evaluate(&snap(i * 1000, v, vec![])).len();
    }
    assert_eq!(with_n, 1, "fires once and stays firing");
    assert_eq!(without_n, 100, "without a clear level it flaps every tick");
    assert_eq!(
        states(&e.evaluate(&snap(200_000, 79.0, vec![]))),
        [(AlertState::Firing, AlertState::Resolved)]
    );
}

#[test]
fn window_averages_before_comparing() {
    let mut r = rule("CpuAvg", "host.cpu.usage_percent", ">", 50.0);
    r.window = Some("3s".into());
    let mut e = engine(vec![r]);
    // One spike of 100 among zeros averages to 33: no alert.
    assert!(e.evaluate(&snap(0, 0.0, vec![])).is_empty());
    assert!(e.evaluate(&snap(1000, 0.0, vec![])).is_empty());
    assert!(e.evaluate(&snap(2000, 100.0, vec![])).is_empty());
    // Sustained load pushes the average over.
    // The window is (0s, 3s]: 0, 100, 100 average 66.7 > 50.
    let t = e.evaluate(&snap(3000, 100.0, vec![]));
    assert_eq!(states(&t), [(AlertState::Inactive, AlertState::Firing)]);
    assert!((t[0].alert.value - 200.0 / 3.0).abs() < 1e-9);
}

#[test]
fn container_rules_cover_later_containers_by_name_and_label() {
    let mut r = rule("BusyWeb", "container.cpu_percent", ">", 50.0);
    r.matcher = Some(InstanceMatch {
        name: Some("web-*".into()),
        labels: [("team".to_string(), "ops".to_string())].into(),
    });
    let mut e = engine(vec![r]);
    assert!(e
        .evaluate(&snap(0, 0.0, vec![container("db-1", 99.0, "ops")]))
        .is_empty());
    // A container that appears later and matches is covered.
    let t = e.evaluate(&snap(
        1000,
        0.0,
        vec![
            container("db-1", 99.0, "ops"),
            container("web-7", 99.0, "ops"),
            container("web-8", 99.0, "dev"),
        ],
    ));
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].alert.labels["container"], "web-7");
    // The container goes away: its alert resolves.
    let t = e.evaluate(&snap(2000, 0.0, vec![]));
    assert_eq!(states(&t), [(AlertState::Firing, AlertState::Resolved)]);
}

#[test]
fn docker_down_holds_container_alerts() {
    let mut e = engine(vec![rule("Busy", "container.cpu_percent", ">", 50.0)]);
    assert_eq!(
        e.evaluate(&snap(0, 0.0, vec![container("c", 99.0, "x")]))
            .len(),
        1
    );
    let mut down = snap(1000, 0.0, vec![]);
    down.containers = ContainersView::Unavailable {
        reason: "down".into(),
    };
    assert!(e.evaluate(&down).is_empty());
    assert_eq!(e.active().len(), 1);
}

#[test]
fn restored_firing_alert_resolves_after_restart() {
    let mut e = engine(vec![rule("CpuHigh", "host.cpu.usage_percent", ">", 90.0)]);
    let fired = e.evaluate(&snap(0, 95.0, vec![]));
    let saved = serde_json::to_string(&e.active()).unwrap();
    // A new process: same rules, the saved firing set.
    let mut after = engine(vec![rule("CpuHigh", "host.cpu.usage_percent", ">", 90.0)]);
    after.restore(serde_json::from_str(&saved).unwrap());
    let t = after.evaluate(&snap(5000, 10.0, vec![]));
    assert_eq!(states(&t), [(AlertState::Firing, AlertState::Resolved)]);
    assert_eq!(t[0].alert.fingerprint, fired[0].alert.fingerprint);
    assert_eq!(t[0].alert.active_since_ms, 0);
}

#[test]
fn changed_rule_resolves_its_old_alerts() {
    let mut e = engine(vec![rule("CpuHigh", "host.cpu.usage_percent", ">", 90.0)]);
    e.evaluate(&snap(0, 95.0, vec![]));
    e.set_rules(compile_all(&[rule("CpuHigh", "host.cpu.usage_percent", ">", 99.0)]).unwrap());
    let t = e.evaluate(&snap(1000, 95.0, vec![]));
    assert_eq!(states(&t), [(AlertState::Firing, AlertState::Resolved)]);
}

fn labels_of(t: &Transition) -> &BTreeMap<String, String> {
    &t.alert.labels
}

proptest! {
    /// A value that never leaves (clear, threshold] after firing never resolves, and a series
    /// fires at most once per excursion below the clear level.
    #[test]
    fn firing_count_bounded_by_clear_crossings(values in proptest::collection::vec(0.0f64..100.0, 1..200), threshold in 20.0f64..90.0, margin in 0.0f64..20.0) {
        let mut r = rule("P", "host.cpu.usage_percent", ">", threshold);
        r.clear = Some(threshold - margin);
        let c = compile_all(&[r.clone()]).unwrap().remove(0);
        let mut e = engine(vec![r]);
        let mut fired = 0;
        let mut clear_crossings = 0;
        let mut phase = Phase::Inactive;
        for (i, v) in values.iter().enumerate() {
            let ts = e.evaluate(&snap(i as i64 * 1000, *v, vec![]));
            let next = next_phase(&c, phase, *v, i as i64 * 1000);
            if matches!(phase, Phase::Firing { .. }) && *v <= threshold - margin { clear_crossings += 1; }
            if matches!(phase, Phase::Firing { .. }) && *v > threshold - margin {
                prop_assert!(matches!(next, Phase::Firing { .. }), "firing above the clear level must hold");
            }
            phase = next;
            fired += ts.iter().filter(|t| t.to == AlertState::Firing).count();
            for t in &ts { prop_assert_eq!(&labels_of(t)["alertname"], "P"); }
        }
        prop_assert!(fired <= clear_crossings + 1);
    }

    /// `for` is honoured: no alert fires before the condition has held that long.
    #[test]
    fn never_fires_before_for(values in proptest::collection::vec(0.0f64..100.0, 1..100), for_s in 0u64..10) {
        let mut r = rule("F", "host.cpu.usage_percent", ">", 50.0);
        r.for_ = Some(format!("{for_s}s"));
        let mut e = engine(vec![r]);
        for (i, v) in values.iter().enumerate() {
            for t in e.evaluate(&snap(i as i64 * 1000, *v, vec![])) {
                if t.to == AlertState::Firing {
                    prop_assert!(t.at_ms - t.alert.active_since_ms >= for_s as i64 * 1000);
                }
            }
        }
    }
}
