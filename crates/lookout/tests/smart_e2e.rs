//! `/api/smart` end to end: the real lookout binary hedging a real `lookout work-sim` process
//! over HTTP, with a fixed seed.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

struct Sim(Child, String);

impl Sim {
    fn start(args: &[&str]) -> Self {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_lookout"))
            .args(["work-sim", "--listen", &listen])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("work-sim");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&listen).is_err() {
            assert!(Instant::now() < deadline, "work-sim did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Sim(child, format!("http://{listen}"))
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hedges_a_flaky_upstream_within_the_timeout() {
    let sim = Sim::start(&[
        "--seed",
        "7",
        "--fail-rate",
        "0.1",
        "--invalid-json-rate",
        "0.05",
    ]);
    let upstream = format!("{}/api/work", sim.1);
    let lk = Lookout::start(
        false,
        &[
            ("LOOKOUT_SMART__UPSTREAM", upstream.as_str()),
            ("LOOKOUT_SAMPLING__DOCKER", "false"),
        ],
        &[],
    );
    let c = client();
    let timeout_ms = 1500u64;
    let mut ok = 0;
    for _ in 0..30 {
        let started = Instant::now();
        let (status, body) = get(
            &c,
            &lk.url(&format!("/api/smart?timeout={timeout_ms}")),
            ADMIN_TOKEN,
        )
        .await;
        let took = started.elapsed();
        // The answer always comes inside the caller's timeout (slack for the client's own work).
        assert!(
            took <= Duration::from_millis(timeout_ms + 30),
            "took {took:?}"
        );
        if status == 200 {
            assert!(body["time"].is_i64(), "{body}");
            assert_eq!(
                body.as_object().unwrap().len(),
                1,
                "only {{\"time\"}}: {body}"
            );
            ok += 1;
        } else {
            assert!(status == 504 || status == 502, "{status} {body}");
            assert!(body["error"]["message"].is_string());
        }
    }
    // With 15 % bad answers and two hedges, nearly every call succeeds.
    assert!(ok >= 28, "only {ok}/30 succeeded");

    // The native route explains itself.
    let (status, report) = get(&c, &lk.url("/api/v1/smart?timeout=3000"), ADMIN_TOKEN).await;
    assert_eq!(status, 200, "{report}");
    let attempts = report["attempts"].as_array().unwrap();
    assert_eq!(
        report["attempts_fired"].as_u64().unwrap() as usize,
        attempts.len()
    );
    let winner = report["winner"].as_u64().unwrap() as usize;
    assert_eq!(attempts[winner - 1]["outcome"], "won");
    assert_eq!(attempts[0]["reason"], "primary");

    // A timeout below the hedge delay: one attempt, a timeout error, within the budget.
    let started = Instant::now();
    let (status, report) = get(&c, &lk.url("/api/v1/smart?timeout=80"), ADMIN_TOKEN).await;
    assert!(started.elapsed() < Duration::from_millis(120));
    if status == 504 {
        assert_eq!(report["attempts_fired"], 1);
        assert_eq!(report["error"]["code"], "timeout");
    }

    for bad in ["0", "-1", "1.5", "soon"] {
        let (status, body) = get(
            &c,
            &lk.url(&format!("/api/smart?timeout={bad}")),
            ADMIN_TOKEN,
        )
        .await;
        assert_eq!(status, 400, "timeout={bad}: {body}");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("timeout"));
    }

    // Losers were cancelled: the upstream saw their requests dropped.
    let stats: serde_json::Value = c
        .get(format!("{}/api/work/stats", sim.1))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(stats["cancelled"].as_u64().unwrap() > 0, "{stats}");
    let metrics = c
        .get(lk.url("/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "lookout_smart_calls_total{outcome=\"success\"}",
        "lookout_smart_hedges_total",
        "lookout_smart_wins_total",
        "lookout_smart_cancellations_total",
        "lookout_smart_call_duration_seconds_bucket",
    ] {
        assert!(metrics.contains(needle), "{needle} missing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_out_of_the_box_with_the_builtin_simulator() {
    let lk = Lookout::start(false, &[("LOOKOUT_SAMPLING__DOCKER", "false")], &[]);
    let c = client();
    let (status, body) = get(&c, &lk.url("/api/smart"), ADMIN_TOKEN).await;
    assert_eq!(status, 200, "{body}");
    let t = body["time"].as_i64().unwrap();
    assert!((100..=600).contains(&t), "{t}");
    assert!(lk.logs().contains("smart: hedging upstream"));
}
