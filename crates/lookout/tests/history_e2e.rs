//! History through the real binary: perf-history and native routes, `kill -9` recovery on the
//! embedded store, and the same routes on a real PostgreSQL and MariaDB via `--store-url`.

mod common;

use std::time::Duration;

use common::*;

async fn summary_count(c: &reqwest::Client, lk: &Lookout) -> u64 {
    let (s, body) = get(
        c,
        &lk.url("/api/v1/history/summary?series=host.cpu.usage&from=0"),
        ADMIN_TOKEN,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    body["count"].as_u64().unwrap()
}

/// Epoch seconds a few minutes ago: a window short enough for 1-second steps.
fn recent() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 300
}

async fn check_routes(c: &reqwest::Client, lk: &Lookout) {
    let from = recent();
    let samples = eventually(Duration::from_secs(20), || async {
        let (s, body) = get(c, &lk.url(&format!("/cpu?step=1&from={from}")), ADMIN_TOKEN).await;
        (s == 200 && body.as_array().map(|a| a.len() >= 3).unwrap_or(false)).then_some(body)
    })
    .await
    .unwrap_or_else(|| panic!("no cpu history; log:\n{}", lk.logs()));
    let row = &samples[0];
    let taken_at = row["taken_at"].as_str().unwrap();
    assert_eq!(taken_at.len(), 19, "YYYY-MM-DD HH:MM:SS: {taken_at}");
    assert!(row["usage"].is_number());
    let (s, avg) = get(c, &lk.url("/cpu_average"), ADMIN_TOKEN).await;
    assert_eq!(s, 200, "{avg}");
    let v = avg["cpu_avg_usage"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&v));
    let (s, mem) = get(c, &lk.url("/memory_average"), ADMIN_TOKEN).await;
    assert_eq!(s, 200, "{mem}");
    assert!(mem["memory_avg_free_space"].as_f64().unwrap() > 0.0);
    assert!(mem["memory_avg_used_space"].as_f64().unwrap() > 0.0);
    let (s, disk) = get(c, &lk.url("/storage_average"), ADMIN_TOKEN).await;
    assert_eq!(s, 200, "{disk}");
    let (s, rows) = get(
        c,
        &lk.url(&format!("/memory?step=1&from={from}")),
        ADMIN_TOKEN,
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        rows[0]["free_space"].is_u64() && rows[0]["used_space"].is_u64(),
        "{rows}"
    );
    let (s, rows) = get(
        c,
        &lk.url(&format!("/storage?step=1&from={from}")),
        ADMIN_TOKEN,
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        rows.as_array().map(|a| !a.is_empty()).unwrap_or(false),
        "{rows}"
    );

    let (s, h) = get(
        c,
        &lk.url(&format!(
            "/api/v1/history?series=host.memory.used&step=1&from={from}"
        )),
        ADMIN_TOKEN,
    )
    .await;
    assert_eq!(s, 200, "{h}");
    let p = &h["points"][0];
    assert!(p["min"].as_f64().unwrap() <= p["avg"].as_f64().unwrap());
    assert!(p["avg"].as_f64().unwrap() <= p["max"].as_f64().unwrap());
    let (s, list) = get(c, &lk.url("/api/v1/series"), ADMIN_TOKEN).await;
    assert_eq!(s, 200);
    assert!(list["series"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["key"] == "host.cpu.usage"));
    for bad in [
        "/api/v1/history?series=host.cpu.usage&from=10&to=5",
        "/api/v1/history?from=0",
        "/api/v1/history?series=host.cpu.usage&step=-1",
        "/cpu?from=tomorrow",
    ] {
        let (s, body) = get(c, &lk.url(bad), ADMIN_TOKEN).await;
        assert_eq!(s, 400, "{bad}: {body}");
        assert!(body["error"]["message"].is_string());
    }
    let (s, _) = get(
        c,
        &lk.url("/api/v1/history?series=no.such.series"),
        ADMIN_TOKEN,
    )
    .await;
    assert_eq!(s, 404);
    // `from=0` is documented as "all time": every row held, one a minute by default.
    let (s, rows) = get(c, &lk.url("/cpu?from=0"), ADMIN_TOKEN).await;
    assert_eq!(s, 200, "/cpu?from=0: {rows}");
    assert!(!rows.as_array().unwrap().is_empty(), "{rows}");
    let (s, rows) = get(c, &lk.url("/memory?from=0"), ADMIN_TOKEN).await;
    assert_eq!(s, 200, "/memory?from=0: {rows}");
}

/// A store holding a minute answers 1-second rows over the default 7-day window: the point
/// limit counts the data held, not the window's width (604,800 one-second steps).
async fn fine_steps_over_a_young_store(c: &reqwest::Client, lk: &Lookout) {
    for path in [
        "/cpu?step=1",
        "/storage?step=1",
        "/api/v1/history?series=host.cpu.usage&step=1&from=0",
    ] {
        let (s, body) = get(c, &lk.url(path), ADMIN_TOKEN).await;
        assert_eq!(s, 200, "{path}: {body}");
        let rows = body.as_array().or(body["points"].as_array()).unwrap();
        assert!(!rows.is_empty(), "{path}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_history_survives_kill_9() {
    let env = [
        ("LOOKOUT_STORE__FLUSH_INTERVAL_S", "1"),
        ("LOOKOUT_SAMPLING__DOCKER", "false"),
    ];
    let mut lk = Lookout::start(false, &env, &[]);
    let c = client();
    check_routes(&c, &lk).await;
    fine_steps_over_a_young_store(&c, &lk).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = summary_count(&c, &lk).await;
    let _ = std::process::Command::new("kill")
        .args(["-9", &lk.child.id().to_string()])
        .status();
    let _ = lk.child.wait();

    // Restart on the same data directory: what was flushed is there, at most ~1 s lost.
    let data = lk.data_dir.path().to_path_buf();
    let port = free_port();
    let mut again = std::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args([
            "serve",
            "--http",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(&data)
        .env("LOOKOUT_TOKEN", ADMIN_TOKEN)
        .env("LOOKOUT_SAMPLING__DOCKER", "false")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url =
        format!("http://127.0.0.1:{port}/api/v1/history/summary?series=host.cpu.usage&from=0");
    let after = eventually(Duration::from_secs(15), || async {
        // Connection refused until the restarted server listens.
        let r = c.get(&url).bearer_auth(ADMIN_TOKEN).send().await.ok()?;
        let body: serde_json::Value = r.json().await.ok()?;
        body["count"].as_u64()
    })
    .await;
    let _ = again.kill();
    let _ = again.wait();
    let after = after.expect("restarted lookout answers history");
    // One flush interval (1 s) plus the tick in flight may be lost; samples taken after the
    // restart only add to the count.
    assert!(
        after + 3 >= before,
        "lost too much: {before} before kill -9, {after} after"
    );
}

async fn server_backed(env_var: &str, name: &str) {
    let Ok(url) = std::env::var(env_var) else {
        skipped(
            &format!("{name} history e2e"),
            &format!("{env_var} not set (scripts/test.sh starts the server and sets it)"),
        );
        return;
    };
    let env = [
        ("LOOKOUT_STORE__FLUSH_INTERVAL_S", "1"),
        ("LOOKOUT_SAMPLING__DOCKER", "false"),
    ];
    let lk = Lookout::start(false, &env, &["--store-url", &url]);
    let c = client();
    check_routes(&c, &lk).await;
    let (_, ready) = get(&c, &lk.url("/readyz"), ADMIN_TOKEN).await;
    assert_eq!(ready["store"], "ok", "{ready}");
    assert!(
        !lk.logs().contains(url.split('@').next().unwrap_or("x:y")),
        "the store URL (with its password) reached the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_history_through_the_binary() {
    server_backed("LOOKOUT_TEST_POSTGRES_URL", "postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_history_through_the_binary() {
    server_backed("LOOKOUT_TEST_MYSQL_URL", "mariadb").await;
}
