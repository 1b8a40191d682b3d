//! Against the real Docker engine: a CPU burner, a container holding a known amount of memory
//! and an idle one. lookout's figures must agree with `docker stats --no-stream`, control
//! actions must change the real containers, and losing the daemon must be survived.

mod common;

use std::time::Duration;

use common::*;

/// CPU % may differ by this many points from the CLI's: the two read over different windows.
const CPU_TOLERANCE_POINTS: f64 = 12.0;
/// Memory may differ by this share (the CLI rounds to 4 significant digits; pages move).
const MEMORY_TOLERANCE: f64 = 0.05;

fn find<'a>(list: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    list.as_array()?.iter().find(|c| c["name"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_agree_with_docker_stats() {
    if !docker_ready("docker figures test") {
        return;
    }
    let cpu = TestContainer::run("lk-cpu", &["--cpus", "0.5"], "while :; do :; done");
    let mem = TestContainer::run(
        "lk-mem",
        &["--tmpfs", "/data:size=256m"],
        "dd if=/dev/zero of=/data/fill bs=1M count=96 2>/dev/null; sleep 3600",
    );
    let idle = TestContainer::run("lk-idle", &[], "sleep 3600");
    let lk = Lookout::start(false, &[], &[]);
    let c = client();

    // Let two stats documents arrive for every container (one per second) and the burner settle.
    let list = eventually(Duration::from_secs(20), || async {
        let (status, body) = get(&c, &lk.url("/api/v1/containers"), ADMIN_TOKEN).await;
        let list = body["containers"].clone();
        let ready = status == 200
            && [&cpu.name, &mem.name, &idle.name].iter().all(|n| {
                find(&list, n)
                    .map(|x| x["cpu_percent"].is_number())
                    .unwrap_or(false)
            });
        ready.then_some(list)
    })
    .await
    .unwrap_or_else(|| panic!("containers never showed CPU figures; log:\n{}", lk.logs()));
    let _ = list;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let cli = docker_cli_stats(&[&cpu.name, &mem.name, &idle.name]);
    let (_, body) = get(&c, &lk.url("/api/v1/containers"), ADMIN_TOKEN).await;
    let list = &body["containers"];
    let ours = |name: &str| {
        let x = find(list, name).unwrap_or_else(|| panic!("{name} missing from {list}"));
        (
            x["cpu_percent"].as_f64().unwrap(),
            x["memory_used_bytes"].as_f64().unwrap() / 1_048_576.0,
        )
    };
    for name in [&cpu.name, &mem.name, &idle.name] {
        let (our_cpu, our_mem) = ours(name);
        let (cli_cpu, cli_mem) = cli[name.as_str()];
        eprintln!("{name}: lookout cpu {our_cpu:.2}% mem {our_mem:.2} MiB | docker stats cpu {cli_cpu:.2}% mem {cli_mem:.2} MiB");
        assert!(
            (our_cpu - cli_cpu).abs() <= CPU_TOLERANCE_POINTS,
            "{name}: cpu {our_cpu} vs cli {cli_cpu}"
        );
        let allowed = (cli_mem * MEMORY_TOLERANCE).max(1.0);
        assert!(
            (our_mem - cli_mem).abs() <= allowed,
            "{name}: mem {our_mem} vs cli {cli_mem}"
        );
    }
    // Absolute anchors, independent of the CLI: quota of half a core, 96 MiB held in tmpfs.
    let (burn, _) = ours(&cpu.name);
    assert!((38.0..=62.0).contains(&burn), "burner at {burn}%");
    let (_, held) = ours(&mem.name);
    assert!(
        (95.0..=110.0).contains(&held),
        "memory holder at {held} MiB"
    );
    let (idle_cpu, _) = ours(&idle.name);
    assert!(idle_cpu < 2.0, "idle at {idle_cpu}%");

    // docker-stats profile: same figures, MiB, two decimals, running containers only.
    let (status, stats) =
        get_anonymous(&c, &lk.url(&format!("/stats?api_key={ADMIN_TOKEN}"))).await;
    assert_eq!(status, 200, "{stats}");
    let row = find(&stats, &mem.name).expect("mem in /stats");
    let mib = row["memoryUsage"].as_f64().unwrap();
    assert!((mib - held).abs() < 5.0, "/stats memory {mib} vs {held}");
    assert_eq!((mib * 100.0).round() / 100.0, mib, "two decimals");
    assert!(row["cpuUsage"].is_number());

    // iotconnect profile: the Engine's raw stats document, keyed by name.
    let (status, raw) = get(&c, &lk.url("/data/containers/stats"), ADMIN_TOKEN).await;
    assert_eq!(status, 200);
    let doc = &raw[&cpu.name];
    assert_eq!(doc["name"], format!("/{}", cpu.name));
    assert!(
        doc["cpu_stats"]["cpu_usage"]["total_usage"]
            .as_u64()
            .unwrap()
            > 0,
        "{doc}"
    );
    assert!(doc["memory_stats"]["usage"].is_u64());
    assert!(doc["precpu_stats"].is_object());
    let (status, cpu_body) = get(&c, &lk.url("/data/cpu"), ADMIN_TOKEN).await;
    assert_eq!(status, 200);
    // Half a core busy on this host: host-wide CPU is at least that share of all cores.
    assert!(
        cpu_body["cpu_percent"].as_f64().unwrap() > 0.0,
        "{cpu_body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_actions_change_real_containers() {
    if !docker_ready("docker control test") {
        return;
    }
    let target = TestContainer::run(
        "lk-ctl",
        &[],
        "trap 'exit 0' TERM; while :; do sleep 1; done",
    );
    let lk = Lookout::start(false, &[], &[]);
    let c = client();
    let reader = {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
            .args([
                "token",
                "create",
                "--name",
                "viewer",
                "--scope",
                "read",
                "--data-dir",
            ])
            .arg(lk.data_dir.path())
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let seen = eventually(Duration::from_secs(15), || async {
        let (s, _) = get(
            &c,
            &lk.url(&format!("/api/v1/containers/{}", target.name)),
            ADMIN_TOKEN,
        )
        .await;
        (s == 200).then_some(())
    })
    .await;
    assert!(seen.is_some(), "container never listed");

    // The token file is re-read within seconds: the new read token works, but cannot act.
    let denied = eventually(Duration::from_secs(10), || async {
        let (s, body) = post(
            &c,
            &lk.url(&format!("/api/v1/containers/{}/stop", target.name)),
            &reader,
        )
        .await;
        (s == 403).then_some(body)
    })
    .await;
    assert!(denied.is_some(), "read token was not refused with 403");
    assert_eq!(target.inspect("{{.State.Running}}"), "true");

    let act = |action: &'static str| {
        let c = c.clone();
        let url = lk.url(&format!("/api/v1/containers/{}/{action}", &target.id[..12]));
        async move { post(&c, &url, ADMIN_TOKEN).await }
    };
    let (s, body) = act("stop").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(target.inspect("{{.State.Running}}"), "false");
    let (s, body) = act("stop").await;
    assert_eq!(s, 409, "stopping a stopped container: {body}");
    let (s, _) = act("start").await;
    assert_eq!(s, 200);
    assert_eq!(target.inspect("{{.State.Running}}"), "true");
    let (s, body) = act("unpause").await;
    assert_eq!(s, 409, "unpausing a running container: {body}");
    assert!(body["error"]["message"].is_string());
    let (s, _) = act("pause").await;
    assert_eq!(s, 200);
    assert_eq!(target.inspect("{{.State.Status}}"), "paused");
    let (s, _) = act("unpause").await;
    assert_eq!(s, 200);
    assert_eq!(target.inspect("{{.State.Status}}"), "running");
    let before = target.inspect("{{.State.StartedAt}}");
    let (s, _) = act("restart").await;
    assert_eq!(s, 200);
    assert_ne!(
        target.inspect("{{.State.StartedAt}}"),
        before,
        "restart did not restart"
    );

    // The snapshot follows: the list shows the state the engine has.
    let running = eventually(Duration::from_secs(5), || async {
        let (_, body) = get(
            &c,
            &lk.url(&format!("/api/v1/containers/{}", target.name)),
            ADMIN_TOKEN,
        )
        .await;
        (body["container"]["state"] == "running").then_some(())
    })
    .await;
    assert!(running.is_some());

    let r = c
        .delete(lk.url(&format!("/api/v1/containers/{}", target.name)))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(!target.exists(), "container still exists after DELETE");
    let (s, body) = post(
        &c,
        &lk.url("/api/v1/containers/no-such-container-here/start"),
        ADMIN_TOKEN,
    )
    .await;
    assert_eq!(s, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
}

/// A unix-socket proxy to the real daemon that the test can cut and restore, standing in for
/// "the daemon went away" without stopping the machine's engine.
struct SocketProxy {
    path: std::path::PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl SocketProxy {
    fn start(path: &std::path::Path) -> Self {
        let _ = std::fs::remove_file(path);
        let listener = tokio::net::UnixListener::bind(path).expect("bind proxy socket");
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    break;
                };
                conns.spawn(async move {
                    if let Ok(mut outbound) =
                        tokio::net::UnixStream::connect("/var/run/docker.sock").await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self {
            path: path.to_path_buf(),
            task,
        }
    }

    /// Drops the listener and every open connection (the JoinSet aborts them).
    fn cut(self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_losing_and_regaining_the_daemon() {
    if !docker_ready("docker loss test") {
        return;
    }
    let _idle = TestContainer::run("lk-loss", &[], "sleep 3600");
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("docker.sock");
    let proxy = SocketProxy::start(&sock);
    let docker_host = format!("unix://{}", sock.display());
    let lk = Lookout::start(false, &[("DOCKER_HOST", &docker_host)], &[]);
    let c = client();

    let up = eventually(Duration::from_secs(15), || async {
        let (s, _) = get(&c, &lk.url("/api/v1/containers"), ADMIN_TOKEN).await;
        (s == 200).then_some(())
    })
    .await;
    assert!(
        up.is_some(),
        "containers never available through the proxy; log:\n{}",
        lk.logs()
    );

    proxy.cut();
    let down = eventually(Duration::from_secs(15), || async {
        let (s, body) = get(&c, &lk.url("/api/v1/containers"), ADMIN_TOKEN).await;
        (s == 503).then_some(body)
    })
    .await
    .expect("containers route never reported the daemon down");
    assert_eq!(down["error"]["code"], "docker_unavailable");
    let (s, _) = get_anonymous(&c, &lk.url(&format!("/stats?api_key={ADMIN_TOKEN}"))).await;
    assert_eq!(
        s, 503,
        "docker-stats must not answer 200 [] when the daemon is down"
    );
    let (s, body) = get(&c, &lk.url("/data/containers/stats"), ADMIN_TOKEN).await;
    assert_eq!(s, 503);
    assert!(body["message"].is_string());
    // Host figures keep flowing.
    let (s, cpu) = get(&c, &lk.url("/data/cpu"), ADMIN_TOKEN).await;
    assert_eq!(s, 200, "{cpu}");
    let (s, ready) = get(&c, &lk.url("/readyz"), ADMIN_TOKEN).await;
    assert_eq!(s, 200);
    assert!(
        ready["docker"].as_str().unwrap().starts_with("down"),
        "{ready}"
    );

    let _proxy = SocketProxy::start(&sock);
    let back = eventually(Duration::from_secs(20), || async {
        let (s, body) = get(&c, &lk.url("/api/v1/containers"), ADMIN_TOKEN).await;
        (s == 200).then_some(body)
    })
    .await;
    assert!(
        back.is_some(),
        "lookout did not reconnect; log:\n{}",
        lk.logs()
    );
    let logs = lk.logs();
    assert_eq!(
        logs.matches("docker engine unreachable").count(),
        1,
        "the outage is logged once, not every tick:\n{logs}"
    );
}

/// A crash-looping container's restart count comes from the engine (its restart policy's
/// `RestartCount`, re-read on the engine's events) and agrees with `docker inspect`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_count_follows_the_engine() {
    if !docker_ready("docker restart-count test") {
        return;
    }
    let lk = Lookout::start(false, &[], &[]);
    let looping = TestContainer::run(
        "lk-restarts",
        &["--restart", "on-failure:3"],
        "sleep 0.3; exit 3",
    );
    let c = client();
    // Docker backs off between restarts (100 ms, doubling): three restarts take about 2 s.
    let counted = eventually(Duration::from_secs(40), || async {
        let (s, b) = get(
            &c,
            &lk.url(&format!("/api/v1/containers/{}", looping.name)),
            ADMIN_TOKEN,
        )
        .await;
        let n = b["container"]["restart_count"].as_u64()?;
        (s == 200 && n >= 2).then_some(n)
    })
    .await;
    let engine: u64 = looping.inspect("{{.RestartCount}}").parse().unwrap_or(0);
    let counted = counted.unwrap_or_else(|| {
        panic!(
            "restart_count never reached 2 (engine says {engine}); log:\n{}",
            lk.logs()
        )
    });
    assert!(counted <= engine, "lookout {counted} > engine {engine}");
}
