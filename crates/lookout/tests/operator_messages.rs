//! What an operator sees when the configuration, the command line or the machine is not as
//! lookout needs: each case runs the real binary and checks the exact message.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_lookout");

/// `lookout ARGS` in `dir` with only the given environment (nothing inherited but PATH), run
/// to its end or killed after `limit`.
fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    finish(cmd.spawn().expect("spawn lookout"), limit)
}

fn finish(mut child: std::process::Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn canonical(p: &Path) -> String {
    p.canonicalize().expect("canonical").display().to_string()
}

const QUICK: Duration = Duration::from_secs(20);

#[test]
fn unknown_keys_are_refused_with_the_key_and_where_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let file = dir.path().join("lookout.toml");

    std::fs::write(&file, "[sampling]\nintervall_ms = 500\n").unwrap();
    let o = run_in(dir.path(), &["serve", "--data-dir", data], &[], QUICK);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "lookout: configuration: unknown key `sampling.intervall_ms` in {}; did you mean `sampling.interval_ms`?\n",
            canonical(&file)
        )
    );

    std::fs::write(&file, "[smaple]\ninterval_ms = 500\n").unwrap();
    // Named by LOOKOUT_CONFIG (itself no configuration key), from another directory.
    let o = run_in(
        Path::new("/"),
        &["--data-dir", data],
        &[("LOOKOUT_CONFIG", file.to_str().unwrap())],
        QUICK,
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "lookout: configuration: unknown key `smaple` in {}; known keys here: listen, http, data_dir, \
             sampling, host, tls, auth, limits, log, smart, concertim, store, alerts, export, fleet\n",
            file.display()
        )
    );

    std::fs::remove_file(&file).unwrap();
    let o = run_in(
        dir.path(),
        &["serve", "--data-dir", data],
        &[("LOOKOUT_SAMPLING__INTERVALL_MS", "500")],
        QUICK,
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "lookout: configuration: unknown key LOOKOUT_SAMPLING__INTERVALL_MS in the environment; \
         did you mean LOOKOUT_SAMPLING__INTERVAL_MS?\n"
    );

    let o = run_in(
        dir.path(),
        &["serve", "--data-dir", data],
        &[("LOOKOUT_SAMPLING__INTERVAL_MS", "often")],
        QUICK,
    );
    let msg = stderr(&o);
    assert_eq!(
        msg,
        "lookout: configuration: invalid value for LOOKOUT_SAMPLING__INTERVAL_MS in the environment: \
         expected u64, found string \"often\"\n"
    );
    assert!(
        !msg.contains("default."),
        "figment's profile name leaked: {msg}"
    );
    assert!(!Path::new(data).exists(), "nothing is created on a refusal");
}

#[test]
fn log_level_warning_means_warn_and_a_bad_level_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port().to_string();
    let missing_socket = format!("unix://{}/no-docker.sock", dir.path().display());
    let args = [
        "--http",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--data-dir",
        data.to_str().unwrap(),
    ];
    // Docker is pointed at nothing, so lookout has a warning to log in its first second.
    let env = [
        ("LOOKOUT_TOKEN", ADMIN_TOKEN),
        ("LOOKOUT_LOG__FORMAT", "json"),
        ("LOOKOUT_LOG__LEVEL", "warning"),
        ("DOCKER_HOST", missing_socket.as_str()),
    ];
    let o = run_in(dir.path(), &args, &env, Duration::from_secs(8));
    let log = stderr(&o);
    assert!(
        log.contains("\"level\":\"WARN\"") && log.contains("docker engine unreachable"),
        "no warning logged at log.level = warning:\n{log}"
    );
    assert!(
        !log.contains("\"level\":\"INFO\""),
        "INFO logged at warning:\n{log}"
    );

    let env = [("LOOKOUT_LOG__LEVEL", "warnig")];
    let o = run_in(dir.path(), &args, &env, QUICK);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "lookout: configuration: log.level: `warnig` is not a level; use one of off, error, warn, info, \
         debug, trace (or `warning`), optionally per target as in `lookout=debug,info`\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_takes_host_names_and_bare_ports_and_serve_flags_need_no_subcommand() {
    let c = client();
    for (listen, logged) in [
        ("localhost:{port}", "127.0.0.1:{port}"),
        (":{port}", "0.0.0.0:{port}"),
    ] {
        let port = free_port().to_string();
        let listen = listen.replace("{port}", &port);
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(BIN)
            // No `serve`: its flags work on `lookout` itself.
            .args(["--http", "--listen", &listen, "--data-dir"])
            .arg(dir.path())
            .env("LOOKOUT_TOKEN", ADMIN_TOKEN)
            .env("LOOKOUT_LOG__FORMAT", "json")
            .env("LOOKOUT_SAMPLING__DOCKER", "false")
            .env_remove("LOOKOUT_CONFIG")
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}/healthz");
        let ok = eventually(Duration::from_secs(20), || async {
            let r = c.get(&url).send().await.ok()?;
            r.status().is_success().then_some(())
        })
        .await;
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        assert!(ok.is_some(), "--listen {listen}: {}", stderr(&out));
        let expected = format!("\"listen\":\"{}\"", logged.replace("{port}", &port));
        assert!(
            stderr(&out).contains(&expected),
            "--listen {listen} should log {expected}: {}",
            stderr(&out)
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let o = run_in(dir.path(), &["--listen", "localhost"], &[], QUICK);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with(
            "error: invalid value 'localhost' for '--listen <LISTEN>': `localhost`: expected HOST:PORT, \
             e.g. 127.0.0.1:8443, localhost:8443 or :8443 (all interfaces)\n"
        ),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_port_in_use_is_an_error_before_any_serving_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let o = run_in(
        dir.path(),
        &[
            "--http",
            "--listen",
            &addr,
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[
            ("LOOKOUT_TOKEN", ADMIN_TOKEN),
            ("LOOKOUT_LOG__FORMAT", "json"),
        ],
        QUICK,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        format!("lookout: cannot listen on {addr}: Address already in use (os error 98)\n")
    );
    assert!(!data.exists(), "nothing is set up before the port is held");
}

#[test]
fn a_reader_that_goes_away_ends_output_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let created = run_in(
        dir.path(),
        &["token", "create", "--name", "a", "--data-dir", data],
        &[],
        QUICK,
    );
    assert!(created.status.success(), "{}", stderr(&created));
    for args in [vec!["openapi"], vec!["token", "list", "--data-dir", data]] {
        // The reading end is closed before lookout writes: every write meets EPIPE.
        let mut child = Command::new(BIN)
            .args(&args)
            .env_remove("LOOKOUT_CONFIG")
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = child.wait().unwrap();
        assert!(
            status.success(),
            "{args:?} with a closed stdout: {status}, {err}"
        );
        assert_eq!(err, "", "{args:?} with a closed stdout");
    }
    // And as typed in a shell.
    let o = Command::new("bash")
        .args(["-c", "set -o pipefail; \"$0\" openapi | head -1"])
        .arg(BIN)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "{\n");
    assert_eq!(stderr(&o), "");
}

/// Runs `lookout` as an unprivileged user: as root through `setpriv` as nobody (65534), else
/// as is. None (after a SKIPPED line) when root and `setpriv` is missing.
fn unprivileged(test: &str) -> Option<Command> {
    let root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    if !root {
        return Some(Command::new(BIN));
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        skipped(
            test,
            "running as root without setpriv (util-linux) to drop privileges",
        );
        return None;
    }
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
    Some(c)
}

/// A directory the unprivileged user may enter, owned by it (`mine`) or not.
fn shared_dir(mine: bool) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    if mine {
        let _ = Command::new("chown").arg("65534").arg(dir.path()).status();
    }
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_socket_problems_name_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("docker.sock");
    let host = format!("unix://{}", missing.display());
    let lk = Lookout::start(false, &[("DOCKER_HOST", &host)], &[]);
    let c = client();
    let body = eventually(Duration::from_secs(15), || async {
        let (s, body) = get(&c, &lk.url("/api/v1/containers"), ADMIN_TOKEN).await;
        (s == 503).then_some(body)
    })
    .await
    .expect("503 while the socket is missing");
    assert_eq!(
        body["error"]["message"],
        format!(
            "docker engine unavailable: docker engine: no Docker socket at {}: is the engine running? \
             (DOCKER_HOST names another endpoint)",
            missing.display()
        )
    );

    // A socket lookout may not open: the engine's, as seen by a user outside its group.
    let Some(mut cmd) = unprivileged("docker permission test") else {
        return;
    };
    let sockdir = shared_dir(false);
    let sock = sockdir.path().join("docker.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    let data = shared_dir(true);
    let port = free_port();
    let child = cmd
        .args([
            "--http",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data.path())
        .env("LOOKOUT_TOKEN", ADMIN_TOKEN)
        .env("LOOKOUT_LOG__FORMAT", "json")
        .env("DOCKER_HOST", format!("unix://{}", sock.display()))
        .env_remove("LOOKOUT_CONFIG")
        .current_dir(data.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = stderr(&finish(child, Duration::from_secs(5)));
    let gid = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&sock).unwrap().gid()
    };
    let expected = format!(
        "docker engine: permission denied on the Docker socket {}: run lookout as root or as a user in \
         the socket's group (gid {gid}), or turn container sampling off with sampling.docker = false",
        sock.display()
    );
    assert!(log.contains(&expected), "expected {expected:?} in:\n{log}");
    assert!(!log.contains("hyper"), "{log}");
}

#[test]
fn unwritable_data_dir_and_store_name_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let under_file = file.join("data");
    let o = run_in(
        dir.path(),
        &[
            "--http",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            under_file.to_str().unwrap(),
        ],
        &[("LOOKOUT_TOKEN", ADMIN_TOKEN)],
        QUICK,
    );
    assert_eq!(
        stderr(&o),
        format!(
            "lookout: creating data directory {}: Not a directory (os error 20)\n",
            under_file.display()
        )
    );

    // The history database path is a directory: SQLite's "unable to open database file",
    // with the path this time. lookout still serves live figures.
    let db_dir = dir.path().join("history-dir");
    std::fs::create_dir(&db_dir).unwrap();
    let url = format!("sqlite://{}", db_dir.display());
    let lk = Lookout::start(
        false,
        &[("LOOKOUT_SAMPLING__DOCKER", "false")],
        &["--store-url", &url],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let expected = format!(
        "cannot open the SQLite database {0}: error returned from database: (code: 14) unable to open \
         database file (is {0} a file, and {1} writable by the user lookout runs as?)",
        db_dir.display(),
        dir.path().display()
    );
    while !lk.logs().contains(&expected) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        lk.logs().contains(&expected),
        "expected {expected:?} in:\n{}",
        lk.logs()
    );

    let Some(mut cmd) = unprivileged("unwritable data dir test") else {
        return;
    };
    let not_mine = shared_dir(false);
    if std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) != 0)
        .unwrap_or(false)
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(not_mine.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    let child = cmd
        .args(["--http", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(not_mine.path())
        .env("LOOKOUT_TOKEN", ADMIN_TOKEN)
        .env_remove("LOOKOUT_CONFIG")
        .current_dir("/")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let o = finish(child, QUICK);
    let uid = String::from_utf8_lossy(&Command::new("id").arg("-u").output().unwrap().stdout)
        .trim()
        .to_string();
    let uid = if uid == "0" { "65534".to_string() } else { uid };
    assert_eq!(
        stderr(&o),
        format!(
            "lookout: data directory {} is not writable: Permission denied (os error 13); make it writable \
             by uid {uid} (the user lookout runs as) or choose another with --data-dir\n",
            not_mine.path().display()
        )
    );
}

/// The Docker-secrets convention: `LOOKOUT_<KEY>_FILE` and `LOOKOUT_TOKEN_FILE` stand for the
/// file's content, and an empty `LOOKOUT_*` value counts as unset, so `docker exec` into the
/// compose container (whose environment holds both) runs commands with the server's settings.
#[test]
fn file_secrets_and_empty_values_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("token");
    std::fs::write(&secret, "lk_not_a_real_token_but_long_enough_0123456789\n").unwrap();
    let data = dir.path().join("data");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args(["token", "create", "--name", "from-exec", "--scope", "read"])
        .env("LOOKOUT_DATA_DIR", &data)
        .env("LOOKOUT_TOKEN_FILE", &secret)
        .env("LOOKOUT_STORE__URL_FILE", &secret)
        .env("LOOKOUT_CONCERTIM__OPENSTACK__AUTH_URL", "")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args(["token", "list"])
        .env("LOOKOUT_DATA_DIR", &data)
        .env("LOOKOUT_STORE__URL_FILE", dir.path().join("nope"))
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("LOOKOUT_STORE__URL_FILE=") && err.contains("cannot read the file"),
        "{err}"
    );
}
