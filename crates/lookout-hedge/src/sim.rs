//! work-sim: a stand-in for the upstream `GET /api/work`, for demos, tests and benchmarks.
//!
//! It answers `{"time": <latency ms>}` after sleeping that latency (uniform 100–600 ms by
//! default) and misbehaves on purpose, each with its own rate: HTTP 500, 200 with an invalid
//! body, or a hang. Request number `k` (0-based, in arrival order) always behaves the same
//! for a given seed (its RNG is derived from `seed` and `k`), so runs are reproducible; a
//! `script` can pin the first requests' behaviour exactly for tests.
//!
//! `GET /api/work/stats` → `{"received","served","cancelled","in_flight","connections"}`:
//! `cancelled` counts requests whose handler was dropped before answering (the client went
//! away), which is how tests check that hedging losers are really cancelled, and
//! `connections` counts distinct client connections (to check keep-alive pooling).

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How the simulator behaves. Rates are probabilities per request, checked in the order
/// hang, fail, invalid JSON; their sum must be at most 1.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkSimConfig {
    /// Seed of the per-request RNG: same seed, same behaviour of request `k`.
    pub seed: u64,
    /// Smallest latency of the uniform distribution, in ms.
    pub latency_min_ms: u64,
    /// Largest latency of the uniform distribution, in ms (inclusive).
    pub latency_max_ms: u64,
    /// Share of requests that take `slow_ms` instead (a long tail).
    pub slow_rate: f64,
    /// Latency of a slow request, in ms.
    pub slow_ms: u64,
    /// Share answered `500` (after the drawn latency).
    pub fail_rate: f64,
    /// Share answered `200` with a body that is not `{"time": <int>}`.
    pub invalid_json_rate: f64,
    /// Share that never answer (until `hang_ms`), to exercise deadlines and cancellation.
    pub hang_rate: f64,
    /// How long a hanging request sleeps before it gives up and answers 500, in ms.
    pub hang_ms: u64,
    /// Behaviour of the first requests, by arrival order; the seeded draw after that.
    pub script: Vec<SimBehavior>,
}

impl Default for WorkSimConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            latency_min_ms: 100,
            latency_max_ms: 600,
            slow_rate: 0.0,
            slow_ms: 2000,
            fail_rate: 0.0,
            invalid_json_rate: 0.0,
            hang_rate: 0.0,
            hang_ms: 3_600_000,
            script: Vec::new(),
        }
    }
}

impl WorkSimConfig {
    /// Rejects configurations that cannot be simulated.
    pub fn validate(&self) -> io::Result<()> {
        let bad = |m: String| Err(io::Error::new(io::ErrorKind::InvalidInput, m));
        if self.latency_min_ms > self.latency_max_ms {
            return bad(format!(
                "latency min {} ms > max {} ms",
                self.latency_min_ms, self.latency_max_ms
            ));
        }
        let rates = [
            ("slow_rate", self.slow_rate),
            ("fail_rate", self.fail_rate),
            ("invalid_json_rate", self.invalid_json_rate),
            ("hang_rate", self.hang_rate),
        ];
        for (name, r) in rates {
            if !(0.0..=1.0).contains(&r) {
                return bad(format!("{name} = {r} is not in [0, 1]"));
            }
        }
        if self.fail_rate + self.invalid_json_rate + self.hang_rate > 1.0 + 1e-9 {
            return bad("fail_rate + invalid_json_rate + hang_rate > 1".into());
        }
        Ok(())
    }
}

/// What one request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimBehavior {
    /// `200 {"time": latency_ms}` after `latency_ms`.
    Ok {
        /// Delay before answering.
        latency_ms: u64,
    },
    /// `500 {"error": ...}` after `latency_ms`.
    Fail {
        /// Delay before answering.
        latency_ms: u64,
    },
    /// `200` with invalid body number `variant % 5` after `latency_ms`.
    InvalidJson {
        /// Delay before answering.
        latency_ms: u64,
        /// Which invalid body.
        variant: u8,
    },
    /// No answer for `hang_ms` (then a 500).
    Hang,
}

/// Invalid bodies served with status 200: each one a mistake a naive client would accept.
const INVALID_BODIES: [&str; 5] = [
    r#"{"time": "fast"}"#,
    r#"{"time": 12.5}"#,
    r#"{}"#,
    r#"{"time": 1"#,
    "<html>upstream error</html>",
];

/// Behaviour of request `k` (0-based arrival order): `script[k]`, else a draw from an RNG
/// seeded by `(seed, k)` only, so it does not depend on timing or on other requests.
pub fn behavior_for(cfg: &WorkSimConfig, k: u64) -> SimBehavior {
    if let Some(b) = usize::try_from(k).ok().and_then(|i| cfg.script.get(i)) {
        return *b;
    }
    let mut rng = StdRng::seed_from_u64(cfg.seed ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let roll: f64 = rng.random();
    let slow = rng.random::<f64>() < cfg.slow_rate;
    let lo = cfg.latency_min_ms.min(cfg.latency_max_ms);
    let latency_ms = if slow {
        cfg.slow_ms
    } else {
        rng.random_range(lo..=cfg.latency_max_ms.max(lo))
    };
    let variant: u8 = rng.random();
    if roll < cfg.hang_rate {
        SimBehavior::Hang
    } else if roll < cfg.hang_rate + cfg.fail_rate {
        SimBehavior::Fail { latency_ms }
    } else if roll < cfg.hang_rate + cfg.fail_rate + cfg.invalid_json_rate {
        SimBehavior::InvalidJson {
            latency_ms,
            variant,
        }
    } else {
        SimBehavior::Ok { latency_ms }
    }
}

/// Counters of the simulator (also served at `/api/work/stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Requests that reached the handler.
    pub received: u64,
    /// Requests answered (any status).
    pub served: u64,
    /// Requests whose handler was dropped before answering: the client went away.
    pub cancelled: u64,
    /// Requests being handled now.
    pub in_flight: u64,
    /// Distinct client connections (peer addresses) seen.
    pub connections: u64,
}

#[derive(Debug)]
struct SimState {
    cfg: WorkSimConfig,
    received: AtomicU64,
    served: AtomicU64,
    cancelled: AtomicU64,
    in_flight: AtomicU64,
    peers: Mutex<HashSet<SocketAddr>>,
}

/// A configured simulator; clone [`WorkSim::stats`] handles freely before serving.
#[derive(Debug, Clone)]
pub struct WorkSim {
    state: Arc<SimState>,
}

impl WorkSim {
    /// Validates `cfg` and prepares the simulator.
    pub fn new(cfg: WorkSimConfig) -> io::Result<Self> {
        cfg.validate()?;
        Ok(Self {
            state: Arc::new(SimState {
                cfg,
                received: AtomicU64::new(0),
                served: AtomicU64::new(0),
                cancelled: AtomicU64::new(0),
                in_flight: AtomicU64::new(0),
                peers: Mutex::new(HashSet::new()),
            }),
        })
    }

    /// Current counters.
    pub fn stats(&self) -> SimStats {
        let s = &self.state;
        SimStats {
            received: s.received.load(Relaxed),
            served: s.served.load(Relaxed),
            cancelled: s.cancelled.load(Relaxed),
            in_flight: s.in_flight.load(Relaxed),
            connections: s.peers.lock().unwrap_or_else(PoisonError::into_inner).len() as u64,
        }
    }

    /// The router: `GET /api/work` and `GET /api/work/stats`. Needs connect info:
    /// serve it with `into_make_service_with_connect_info::<SocketAddr>()` (as
    /// [`WorkSim::serve`] does).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/work", get(work))
            .route("/api/work/stats", get(stats))
            .with_state(self.state.clone())
    }

    /// Serves on `listener` until the task is dropped or the listener fails.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> io::Result<()> {
        let app = self
            .router()
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app).await
    }
}

/// Serves the simulator on `listener` (what `lookout work-sim --listen ADDR` runs).
pub async fn serve(listener: tokio::net::TcpListener, cfg: WorkSimConfig) -> io::Result<()> {
    WorkSim::new(cfg)?.serve(listener).await
}

/// Counts a request in flight; a drop before `finish` means the client went away.
struct InFlight<'a> {
    state: &'a SimState,
    finished: bool,
}

impl<'a> InFlight<'a> {
    fn new(state: &'a SimState) -> Self {
        state.in_flight.fetch_add(1, Relaxed);
        Self {
            state,
            finished: false,
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.state.in_flight.fetch_sub(1, Relaxed);
        if self.finished {
            self.state.served.fetch_add(1, Relaxed);
        } else {
            self.state.cancelled.fetch_add(1, Relaxed);
        }
    }
}

async fn work(
    State(state): State<Arc<SimState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    let k = state.received.fetch_add(1, Relaxed);
    state
        .peers
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(peer);
    let mut guard = InFlight::new(&state);
    let sleep = |ms: u64| tokio::time::sleep(Duration::from_millis(ms));
    let (status, body) = match behavior_for(&state.cfg, k) {
        SimBehavior::Ok { latency_ms } => {
            sleep(latency_ms).await;
            (StatusCode::OK, format!("{{\"time\": {latency_ms}}}"))
        }
        SimBehavior::Fail { latency_ms } => {
            sleep(latency_ms).await;
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"error": "simulated failure"}"#.to_owned(),
            )
        }
        SimBehavior::InvalidJson {
            latency_ms,
            variant,
        } => {
            sleep(latency_ms).await;
            let body = INVALID_BODIES[usize::from(variant) % INVALID_BODIES.len()];
            (StatusCode::OK, body.to_owned())
        }
        SimBehavior::Hang => {
            sleep(state.cfg.hang_ms).await;
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"error": "simulated hang ended"}"#.to_owned(),
            )
        }
    };
    guard.finished = true;
    drop(guard);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn stats(State(state): State<Arc<SimState>>) -> Response {
    let s = WorkSim { state }.stats();
    let body = serde_json::json!({
        "received": s.received,
        "served": s.served,
        "cancelled": s.cancelled,
        "in_flight": s.in_flight,
        "connections": s.connections,
    });
    axum::Json(body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_per_request() {
        let cfg = WorkSimConfig {
            seed: 42,
            fail_rate: 0.3,
            hang_rate: 0.1,
            invalid_json_rate: 0.1,
            ..Default::default()
        };
        for k in 0..100 {
            assert_eq!(behavior_for(&cfg, k), behavior_for(&cfg, k));
        }
        let other = WorkSimConfig {
            seed: 43,
            ..cfg.clone()
        };
        assert!((0..100).any(|k| behavior_for(&cfg, k) != behavior_for(&other, k)));
    }

    #[test]
    fn rates_and_latencies_are_respected() {
        let cfg = WorkSimConfig {
            seed: 7,
            fail_rate: 0.2,
            invalid_json_rate: 0.1,
            hang_rate: 0.05,
            ..Default::default()
        };
        let n = 20_000;
        let (mut ok, mut fail, mut inv, mut hang) = (0, 0, 0, 0);
        for k in 0..n {
            match behavior_for(&cfg, k) {
                SimBehavior::Ok { latency_ms } => {
                    assert!((100..=600).contains(&latency_ms));
                    ok += 1;
                }
                SimBehavior::Fail { .. } => fail += 1,
                SimBehavior::InvalidJson { .. } => inv += 1,
                SimBehavior::Hang => hang += 1,
            }
        }
        let share = |c: i32| f64::from(c) / n as f64;
        assert!((share(fail) - 0.2).abs() < 0.02, "fail {}", share(fail));
        assert!((share(inv) - 0.1).abs() < 0.02, "invalid {}", share(inv));
        assert!((share(hang) - 0.05).abs() < 0.01, "hang {}", share(hang));
        assert!((share(ok) - 0.65).abs() < 0.02, "ok {}", share(ok));
    }

    #[test]
    fn script_comes_first() {
        let cfg = WorkSimConfig {
            script: vec![SimBehavior::Hang, SimBehavior::Fail { latency_ms: 3 }],
            ..Default::default()
        };
        assert_eq!(behavior_for(&cfg, 0), SimBehavior::Hang);
        assert_eq!(behavior_for(&cfg, 1), SimBehavior::Fail { latency_ms: 3 });
        assert!(matches!(behavior_for(&cfg, 2), SimBehavior::Ok { .. }));
    }

    #[test]
    fn invalid_configs_rejected() {
        let bad = [
            WorkSimConfig {
                latency_min_ms: 10,
                latency_max_ms: 5,
                ..Default::default()
            },
            WorkSimConfig {
                fail_rate: 1.5,
                ..Default::default()
            },
            WorkSimConfig {
                hang_rate: f64::NAN,
                ..Default::default()
            },
            WorkSimConfig {
                fail_rate: 0.6,
                hang_rate: 0.6,
                ..Default::default()
            },
        ];
        for c in bad {
            assert!(WorkSim::new(c).is_err());
        }
        assert!(WorkSim::new(WorkSimConfig::default()).is_ok());
    }

    #[test]
    fn invalid_bodies_are_really_invalid() {
        #[cfg(feature = "http")]
        for b in INVALID_BODIES {
            assert!(crate::http::parse_work_body(b.as_bytes()).is_err(), "{b}");
        }
    }
}
