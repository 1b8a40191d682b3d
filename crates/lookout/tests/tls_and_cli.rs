//! The binary as an operator meets it: first start (certificate, admin token printed once),
//! TLS 1.3 only, token commands, graceful stop.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

fn lookout(args: &[&str], data_dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("LOOKOUT_TOKEN")
        .output()
        .expect("run lookout")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls13_only_with_a_kept_self_signed_certificate() {
    let mut lk = Lookout::start(true, &[("LOOKOUT_SAMPLING__DOCKER", "false")], &[]);
    let c = client();
    let ok = c
        .get(lk.url("/healthz"))
        .send()
        .await
        .expect("TLS 1.3 handshake");
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(ok.version(), reqwest::Version::HTTP_2, "ALPN offers h2");
    let hsts = ok
        .headers()
        .get("strict-transport-security")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(hsts.starts_with("max-age="), "HSTS on direct TLS: {hsts:?}");

    let _ = rustls::crypto::ring::default_provider().install_default();
    let old = reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .tls_version_max(reqwest::tls::Version::TLS_1_2)
        .build()
        .unwrap();
    let refused = old.get(lk.url("/healthz")).send().await;
    assert!(refused.is_err(), "a TLS 1.2-only client was served");

    let cert = lk.data_dir.path().join("tls/cert.pem");
    let key = lk.data_dir.path().join("tls/key.pem");
    let history = lk.data_dir.path().join("history.db");
    let first = std::fs::read(&cert).unwrap();
    use std::os::unix::fs::PermissionsExt;
    for p in [&cert, &key, &history] {
        assert_eq!(
            std::fs::metadata(p).unwrap().permissions().mode() & 0o777,
            0o600,
            "{}",
            p.display()
        );
    }
    let status = lk.terminate();
    assert!(
        status.success(),
        "SIGTERM should stop lookout cleanly, got {status}"
    );
    assert!(lk.logs().contains("shutting down"));

    // A second start on the same data directory reuses the certificate.
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(lk.data_dir.path())
        .env("LOOKOUT_TOKEN", ADMIN_TOKEN)
        .env("LOOKOUT_SAMPLING__DOCKER", "false")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("https://127.0.0.1:{port}/data/cpu");
    let answered = eventually(Duration::from_secs(15), || async {
        c.get(&url)
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16())
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(answered, Some(200));
    assert_eq!(
        first,
        std::fs::read(&cert).unwrap(),
        "certificate was regenerated"
    );
}

#[test]
fn weak_static_token_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args([
            "serve",
            "--http",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .env("LOOKOUT_TOKEN", "a")
        .env("LOOKOUT_SAMPLING__DOCKER", "false")
        .output()
        .expect("run lookout");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started with LOOKOUT_TOKEN=a");
    assert!(
        stderr.contains("LOOKOUT_TOKEN is 1 bytes") && stderr.contains("at least 32"),
        "{stderr}"
    );
}

#[test]
fn first_start_prints_an_admin_token_once_and_tokens_are_managed_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let run = |port: u16| {
        let child = Command::new(env!("CARGO_BIN_EXE_lookout"))
            .args([
                "serve",
                "--http",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(dir.path())
            .env_remove("LOOKOUT_TOKEN")
            .env("LOOKOUT_SAMPLING__DOCKER", "false")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let first = run(port);
    let token = first
        .split_whitespace()
        .find(|w| w.starts_with("lk_"))
        .unwrap_or_else(|| panic!("no token printed on first start: {first}"))
        .to_string();
    let second = run(free_port());
    assert!(
        !second.contains("lk_"),
        "a token was printed again: {second}"
    );
    let stored = std::fs::read_to_string(dir.path().join("tokens.json")).unwrap();
    assert!(!stored.contains(&token[3..]), "the token itself was stored");

    let created = lookout(
        &["token", "create", "--name", "grafana", "--scope", "read"],
        dir.path(),
    );
    assert!(created.status.success());
    let listed =
        String::from_utf8_lossy(&lookout(&["token", "list"], dir.path()).stdout).to_string();
    assert!(
        listed.contains("admin\tadmin") && listed.contains("grafana\tread"),
        "{listed}"
    );
    assert!(
        !listed.contains("lk_"),
        "token list printed a token: {listed}"
    );
    let dup = lookout(&["token", "create", "--name", "grafana"], dir.path());
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    assert!(lookout(&["token", "revoke", "grafana"], dir.path())
        .status
        .success());
    let listed =
        String::from_utf8_lossy(&lookout(&["token", "list"], dir.path()).stdout).to_string();
    assert!(!listed.contains("grafana"));
    let bad_scope = lookout(
        &["token", "create", "--name", "x", "--scope", "root"],
        dir.path(),
    );
    assert!(!bad_scope.status.success());
}

#[test]
fn openapi_document_lists_every_profile() {
    let out = Command::new(env!("CARGO_BIN_EXE_lookout"))
        .arg("openapi")
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/api/v1/host",
        "/api/v1/containers/{id}",
        "/data/cpu",
        "/data/containers/stats",
        "/stats",
        "/metrics",
        "/healthz",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    assert!(doc["components"]["schemas"]["HostSnapshot"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_metrics_and_readiness_over_http() {
    let lk = Lookout::start(false, &[("LOOKOUT_SAMPLING__DOCKER", "false")], &[]);
    let c = client();
    let r = c
        .get(lk.url("/docs/"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("swagger"), "docs page");
    assert!(
        !html.contains("https://"),
        "the docs page must not load anything from the internet"
    );
    let r = c.get(lk.url("/docs/")).send().await.unwrap();
    assert_eq!(
        r.status().as_u16(),
        401,
        "docs need a token unless auth.public_docs"
    );
    let ready = eventually(Duration::from_secs(10), || async {
        let (s, body) = get(&c, &lk.url("/readyz"), ADMIN_TOKEN).await;
        (s == 200).then_some(body)
    })
    .await
    .expect("ready");
    assert_eq!(ready["ready"], true);
    let _ = get(&c, &lk.url("/data/cpu"), ADMIN_TOKEN).await;
    let text = c
        .get(lk.url("/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "# TYPE lookout_host_cpu_seconds_total counter",
        "lookout_host_cpu_seconds_total{cpu=\"0\",mode=\"idle\"}",
        "lookout_host_memory_total_bytes ",
        "lookout_build_info{version=",
        "process_resident_memory_bytes ",
        "lookout_docker_up 0",
        "lookout_http_requests_total{method=\"GET\",route=\"/data/cpu\",status=\"200\"} 1",
        "lookout_http_request_duration_seconds_bucket",
    ] {
        assert!(
            text.contains(needle),
            "{needle} missing from /metrics:\n{text}"
        );
    }
    let logs = lk.logs();
    assert!(!logs.contains(ADMIN_TOKEN), "a token reached the log");
}

#[test]
fn a_client_trickling_headers_is_cut_off() {
    use std::io::{Read, Write};
    let lk = Lookout::start(false, &[("LOOKOUT_SAMPLING__DOCKER", "false")], &[]);
    let addr = lk.base.trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    // The server must close (possibly after a 408) well before our 20 s read timeout.
    let r = s.read_to_end(&mut buf);
    assert!(r.is_ok(), "connection was not closed by the server: {r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_token_ends_its_dashboard_sessions() {
    let lk = Lookout::start(false, &[("LOOKOUT_SAMPLING__DOCKER", "false")], &[]);
    let out = Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args([
            "token",
            "create",
            "--name",
            "browser",
            "--scope",
            "read",
            "--data-dir",
        ])
        .arg(lk.data_dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "token create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let c = client();
    // The running server picks the new token up within seconds.
    let cookie = eventually(Duration::from_secs(10), || async {
        let r = c
            .post(lk.url("/api/v1/session"))
            .json(&serde_json::json!({ "token": token }))
            .send()
            .await
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        let set = r.headers().get("set-cookie")?.to_str().ok()?.to_string();
        Some(set.split(';').next()?.to_string())
    })
    .await
    .unwrap_or_else(|| panic!("not signed in; log:\n{}", lk.logs()));
    let with_cookie = |path: &str| c.get(lk.url(path)).header("cookie", cookie.clone()).send();
    assert_eq!(
        with_cookie("/api/v1/host").await.unwrap().status().as_u16(),
        200
    );
    assert!(lookout(&["token", "revoke", "browser"], lk.data_dir.path())
        .status
        .success());
    let ended = eventually(Duration::from_secs(10), || async {
        let s = with_cookie("/api/v1/host").await.ok()?.status().as_u16();
        (s == 401).then_some(())
    })
    .await;
    assert!(ended.is_some(), "the session outlived its revoked token");
}
