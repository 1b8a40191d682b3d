//! Test support: run the real `lookout` binary, and real Docker containers from a locally
//! built image (no registry here). Service-backed tests call [`docker_ready`] first and print
//! a `SKIPPED:` line saying why when the engine or the image is missing.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TEST_IMAGE: &str = "lookout-test/busybox:latest";
pub const ADMIN_TOKEN: &str = "lk_test-admin-token-0123456789abcdef";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A port free now and never handed out before in this test binary. The kernel may give the
/// same ephemeral port to two tests that ask at about the same time (each releases it before
/// lookout binds it); two lookouts on one port made a test talk to another test's server and
/// fail when that one stopped (`IncompleteMessage`).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

fn docker(args: &[&str]) -> std::io::Result<std::process::Output> {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
}

/// Says a service-backed test was skipped, and why, on the real stderr: libtest captures
/// `eprintln!` of passing tests, and a skip must be visible in a plain `cargo test`.
pub fn skipped(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {why}");
}

/// True when the Docker engine answers and the test image exists (built on demand from
/// Debian's static busybox when `/bin/busybox` is static). Prints why not otherwise.
pub fn docker_ready(test: &str) -> bool {
    match docker(&["info", "--format", "{{.ServerVersion}}"]) {
        Ok(o) if o.status.success() => {}
        _ => {
            skipped(
                test,
                "no Docker engine answers (scripts/test.sh runs these where one does)",
            );
            return false;
        }
    }
    if docker(&["image", "inspect", TEST_IMAGE])
        .map(|o| o.status.success())
        .unwrap_or(false)
    {
        return true;
    }
    let script = repo_root().join("scripts/make-test-image.sh");
    let built = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !built {
        skipped(
            test,
            &format!("test image {TEST_IMAGE} missing and {} failed (needs busybox-static: scripts/test.sh installs it)", script.display()),
        );
    }
    built
}

/// A container removed (forcefully) when dropped.
pub struct TestContainer {
    pub name: String,
    pub id: String,
}

impl TestContainer {
    pub fn run(name: &str, extra: &[&str], command: &str) -> Self {
        let name = format!("{name}-{}", std::process::id());
        let _ = docker(&["rm", "-f", &name]);
        let mut args = vec!["run", "-d", "--name", &name, "--label", "lookout.test=1"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[TEST_IMAGE, "sh", "-c", command]);
        let out = docker(&args).expect("docker run");
        assert!(
            out.status.success(),
            "docker run {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Self { name, id }
    }

    /// `docker inspect -f <format>` of this container.
    pub fn inspect(&self, format: &str) -> String {
        let out = docker(&["inspect", "-f", format, &self.id]).expect("docker inspect");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn exists(&self) -> bool {
        docker(&["inspect", &self.id])
            .map(|o| o.status.success())
            .unwrap_or(false)
    }
}

impl Drop for TestContainer {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.id]);
    }
}

/// `docker stats --no-stream` for the named containers: name → (CPU %, memory MiB).
pub fn docker_cli_stats(names: &[&str]) -> std::collections::HashMap<String, (f64, f64)> {
    let mut args = vec![
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}",
    ];
    args.extend_from_slice(names);
    let out = docker(&args).expect("docker stats");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let name = f.next()?.to_string();
            let cpu = f.next()?.trim_end_matches('%').parse::<f64>().ok()?;
            let mem = parse_cli_mib(f.next()?.split('/').next()?.trim())?;
            Some((name, (cpu, mem)))
        })
        .collect()
}

/// The CLI's binary units, to MiB.
pub fn parse_cli_mib(s: &str) -> Option<f64> {
    for (unit, factor) in [
        ("GiB", 1024.0),
        ("MiB", 1.0),
        ("KiB", 1.0 / 1024.0),
        ("B", 1.0 / 1_048_576.0),
    ] {
        if let Some(n) = s.strip_suffix(unit) {
            return n.trim().parse::<f64>().ok().map(|v| v * factor);
        }
    }
    None
}

/// A running `lookout serve`, killed when dropped.
pub struct Lookout {
    pub child: Child,
    pub base: String,
    pub data_dir: tempfile::TempDir,
    pub log: PathBuf,
}

impl Lookout {
    /// Starts lookout on plain HTTP (or TLS with `tls`), with [`ADMIN_TOKEN`] as LOOKOUT_TOKEN.
    pub fn start(tls: bool, env: &[(&str, &str)], extra_args: &[&str]) -> Self {
        let data_dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let log = data_dir.path().join("lookout.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lookout"));
        cmd.args(["serve", "--listen", &listen, "--data-dir"])
            .arg(data_dir.path());
        if !tls {
            cmd.arg("--http");
        }
        cmd.args(extra_args)
            .env("LOOKOUT_TOKEN", ADMIN_TOKEN)
            .env("LOOKOUT_LOG__FORMAT", "json")
            .env_remove("LOOKOUT_CONFIG")
            .current_dir(data_dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                std::fs::File::create(data_dir.path().join("stdout.log")).expect("log"),
            ))
            .stderr(Stdio::from(std::fs::File::create(&log).expect("log")));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn lookout");
        let scheme = if tls { "https" } else { "http" };
        let me = Self {
            child,
            base: format!("{scheme}://{listen}"),
            data_dir,
            log,
        };
        me.wait_ready();
        me
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(self.base.split("://").nth(1).unwrap_or_default())
                .is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("lookout did not start; log:\n{}", self.logs());
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(Instant::now() < deadline, "lookout did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Lookout {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// GET with the admin token; returns status and JSON (Null when the body is not JSON).
pub async fn get(c: &reqwest::Client, url: &str, token: &str) -> (u16, serde_json::Value) {
    let r = c.get(url).bearer_auth(token).send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// GET without any Authorization header (for `?api_key=` and public routes).
pub async fn get_anonymous(c: &reqwest::Client, url: &str) -> (u16, serde_json::Value) {
    let r = c.get(url).send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

pub async fn post(c: &reqwest::Client, url: &str, token: &str) -> (u16, serde_json::Value) {
    let r = c
        .post(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// Polls `check` until it returns Some or the timeout passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The JWT secret the Concertim tests start lookout with.
pub const CONCERTIM_SECRET: &str = "concertim-test-secret-0123456789";

/// A running lookout with the Concertim listener on (plain HTTP, a free port).
pub struct ConcertimLookout {
    pub lookout: Lookout,
    pub base: String,
}

impl ConcertimLookout {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts it with more environment (e.g. `LOOKOUT_CONCERTIM__BACKEND`).
    pub fn start_with(extra: &[(&str, &str)]) -> Self {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut env: Vec<(&str, &str)> = vec![
            ("JWT_SECRET", CONCERTIM_SECRET),
            ("LOOKOUT_CONCERTIM__HTTP", "true"),
            ("LOOKOUT_CONCERTIM__LISTEN", &listen),
        ];
        env.extend_from_slice(extra);
        let lookout = Lookout::start(false, &env, &["--concertim"]);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&listen).is_err() {
            assert!(
                Instant::now() < deadline,
                "concertim listener did not start; log:\n{}",
                lookout.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            lookout,
            base: format!("http://{listen}"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

/// A token as the Concertim UI signs it: HS256, `{"exp": now + 60}`.
pub fn concertim_token() -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
        + 60;
    lookout_cloud::jwt::sign_hs256(
        CONCERTIM_SECRET.as_bytes(),
        &serde_json::json!({ "exp": exp }),
    )
}

/// Sends a JSON body with a Bearer token (any method, GET included, as the UI does).
pub async fn concertim_call(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let mut r = c
        .request(method, url)
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}
