//! End to end over real HTTP: engine + `WorkClient` against work-sim on 127.0.0.1, with
//! scripted or seeded behaviour. Real clock, so timing assertions keep generous margins.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lookout_hedge::http::{ClientOptions, WorkClient};
use lookout_hedge::sim::{SimBehavior, SimStats, WorkSim, WorkSimConfig};
use lookout_hedge::{
    AttemptOutcome, HedgeCounters, HedgeOutcome, HedgePolicy, Hedger, Observer, OutcomeKind,
};

use SimBehavior::{Fail, Hang, InvalidJson, Ok as Good};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

struct Sim {
    sim: WorkSim,
    url: String,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Sim {
    async fn start(cfg: WorkSimConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let sim = WorkSim::new(cfg).expect("sim config");
        let task = tokio::spawn(sim.clone().serve(listener));
        Self {
            sim,
            url: format!("http://{addr}/api/work"),
            task,
        }
    }

    /// Waits (bounded) until the simulator has no request in flight.
    async fn settle(&self) -> SimStats {
        for _ in 0..200 {
            let s = self.sim.stats();
            if s.in_flight == 0 {
                return s;
            }
            tokio::time::sleep(ms(10)).await;
        }
        self.sim.stats()
    }
}

fn client(url: &str) -> WorkClient {
    let _ = rustls::crypto::ring::default_provider().install_default();
    WorkClient::new(url, &ClientOptions::default()).expect("client")
}

fn scripted(script: Vec<SimBehavior>) -> WorkSimConfig {
    WorkSimConfig {
        script,
        ..Default::default()
    }
}

#[tokio::test]
async fn hedge_wins_and_losers_connections_are_dropped() {
    let sim = Sim::start(scripted(vec![Hang, Good { latency_ms: 40 }, Hang])).await;
    let c = client(&sim.url);
    let h = Hedger::new(HedgePolicy::default()).expect("policy");
    let t = Instant::now();
    let r = h.run(Some(ms(3000)), |_| c.call()).await;
    let took = t.elapsed();
    assert_eq!(r.kind(), OutcomeKind::Success, "{r:?}");
    assert!(matches!(
        r.outcome,
        HedgeOutcome::Success {
            value: 40,
            winner: 2 | 3
        }
    ));
    assert!(took >= ms(340) && took < ms(1000), "took {took:?}");
    assert_eq!(r.cancelled(), 2);
    // The upstream saw both losers' connections go away.
    let s = sim.settle().await;
    assert_eq!(s.received, 3);
    assert_eq!(s.served, 1);
    assert_eq!(s.cancelled, 2, "{s:?}");
    assert_eq!(s.in_flight, 0);
}

#[tokio::test]
async fn early_500_fires_hedges_at_once() {
    let sim = Sim::start(scripted(vec![
        Fail { latency_ms: 10 },
        Good { latency_ms: 30 },
        Good { latency_ms: 30 },
    ]))
    .await;
    let c = client(&sim.url);
    let h = Hedger::new(HedgePolicy::default()).expect("policy");
    let r = h.run(Some(ms(3000)), |_| c.call()).await;
    assert_eq!(r.kind(), OutcomeKind::Success);
    assert!(
        r.elapsed < ms(250),
        "did not wait for the 300 ms delay: {:?}",
        r.elapsed
    );
    assert_eq!(
        r.attempts[0].outcome,
        AttemptOutcome::Failed("upstream answered HTTP 500".into())
    );
}

#[tokio::test]
async fn status_200_with_invalid_body_is_a_failure() {
    let script = (0..3)
        .map(|v| InvalidJson {
            latency_ms: 5,
            variant: v,
        })
        .collect();
    let sim = Sim::start(scripted(script)).await;
    let c = client(&sim.url);
    let r = Hedger::new(HedgePolicy::default())
        .expect("policy")
        .run(Some(ms(3000)), |_| c.call())
        .await;
    assert_eq!(r.kind(), OutcomeKind::AllFailed);
    for a in &r.attempts {
        match &a.outcome {
            AttemptOutcome::Failed(m) => assert!(m.contains("body invalid"), "{m}"),
            o => panic!("unexpected {o:?}"),
        }
    }
}

#[tokio::test]
async fn deadline_answers_in_time_and_cancels_all() {
    let sim = Sim::start(scripted(vec![Hang, Hang, Hang])).await;
    let c = client(&sim.url);
    let t = Instant::now();
    let r = Hedger::new(HedgePolicy::default())
        .expect("policy")
        .run(Some(ms(450)), |_| c.call())
        .await;
    let took = t.elapsed();
    assert_eq!(r.kind(), OutcomeKind::DeadlineExceeded);
    assert!(took >= ms(450) && took < ms(700), "took {took:?}");
    assert_eq!(r.attempts_fired(), 3);
    let s = sim.settle().await;
    assert_eq!((s.cancelled, s.in_flight), (3, 0), "{s:?}");
}

#[tokio::test]
async fn timeout_below_delay_sends_one_request() {
    let sim = Sim::start(scripted(vec![Hang])).await;
    let c = client(&sim.url);
    let r = Hedger::new(HedgePolicy::default())
        .expect("policy")
        .run(Some(ms(150)), |_| c.call())
        .await;
    assert_eq!(r.kind(), OutcomeKind::DeadlineExceeded);
    let s = sim.settle().await;
    assert_eq!((s.received, s.cancelled), (1, 1));
}

#[tokio::test]
async fn one_pooled_client_reuses_its_connection() {
    let script = vec![Good { latency_ms: 1 }; 20];
    let sim = Sim::start(scripted(script)).await;
    let c = client(&sim.url);
    let h = Hedger::new(HedgePolicy::default()).expect("policy");
    for _ in 0..20 {
        let r = h.run(Some(ms(2000)), |_| c.call()).await;
        assert_eq!(r.winner(), Some(1));
    }
    let s = sim.settle().await;
    assert_eq!(s.served, 20);
    assert_eq!(
        s.connections, 1,
        "keep-alive: one connection for sequential calls"
    );
}

#[tokio::test]
async fn unreachable_upstream_is_all_failed_fast() {
    // Bind then drop to get a port with (very likely) nobody listening.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port");
    let c = client(&format!("http://{addr}/api/work"));
    let r = Hedger::new(HedgePolicy::default())
        .expect("policy")
        .run(Some(ms(2000)), |_| c.call())
        .await;
    assert_eq!(r.kind(), OutcomeKind::AllFailed);
    assert_eq!(
        r.attempts_fired(),
        3,
        "connection refused fires the hedges at once"
    );
    assert!(r.elapsed < ms(300));
}

/// Fixed seed, flaky upstream: hedging answers (almost) every call in time, and no request
/// is left behind on the upstream.
#[tokio::test]
async fn seeded_flaky_upstream() {
    let cfg = WorkSimConfig {
        seed: 2024,
        latency_min_ms: 20,
        latency_max_ms: 120,
        fail_rate: 0.2,
        invalid_json_rate: 0.1,
        hang_rate: 0.05,
        ..Default::default()
    };
    let sim = Sim::start(cfg).await;
    let c = client(&sim.url);
    let counters = Arc::new(HedgeCounters::default());
    let h = Hedger::new(HedgePolicy {
        delay: ms(60),
        ..Default::default()
    })
    .expect("policy")
    .with_observer(counters.clone() as Arc<dyn Observer>);
    let calls = 40;
    let mut ok = 0;
    for _ in 0..calls {
        let t = Instant::now();
        let r = h.run(Some(ms(800)), |_| c.call()).await;
        assert!(t.elapsed() < ms(900), "answered late: {:?}", t.elapsed());
        if let HedgeOutcome::Success { value, .. } = r.outcome {
            assert!((20..=120).contains(&value));
            ok += 1;
        }
    }
    // P(all three fail) ≈ 0.35³ ≈ 4 %, versus 35 % failures for a single call.
    assert!(ok >= 34, "only {ok}/{calls} succeeded");
    let s = sim.settle().await;
    let c = counters.snapshot();
    assert_eq!(s.in_flight, 0, "{s:?}");
    // An attempt cancelled while still connecting never reaches the upstream; every one
    // that did was either answered or seen cancelled there, none is left running.
    assert!(s.received <= c.attempts_fired, "{s:?} {c:?}");
    assert_eq!(s.received, s.served + s.cancelled);
    assert!(s.cancelled > 0 && s.cancelled <= c.cancelled, "{s:?} {c:?}");
}
