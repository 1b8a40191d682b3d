//! Against the real Docker engine: lifecycle comes from its event stream (a container run or
//! removed is seen within a second, with no listing), and the cgroup reader finds the
//! running container's cgroup and reads its figures. Skips, saying so, without an engine.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lookout_probe::cgroup::CgroupProbe;
use lookout_probe::docker::engine::EngineWatch;

const IMAGE: &str = "lookout-test/busybox:latest";

fn docker(args: &[&str]) -> Option<std::process::Output> {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()
}

/// The engine answers and the test image exists (built by scripts/make-test-image.sh).
fn ready() -> bool {
    let ok = |args: &[&str]| docker(args).is_some_and(|o| o.status.success());
    if !ok(&["info", "--format", "{{.ServerVersion}}"]) {
        eprintln!("SKIPPED: engine events: no Docker engine answers");
        return false;
    }
    if !ok(&["image", "inspect", IMAGE]) {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/make-test-image.sh"
        );
        let built = Command::new("bash").arg(script).status();
        if !built.is_ok_and(|s| s.success()) {
            eprintln!("SKIPPED: engine events: cannot build {IMAGE}");
            return false;
        }
    }
    true
}

/// Removes the container even when an assertion fails.
struct Cleanup(String);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.0]);
    }
}

async fn wait_for(
    watch: &mut EngineWatch,
    limit: Duration,
    mut done: impl FnMut(&[lookout_probe::docker::engine::Meta]) -> bool,
) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        let list = watch.containers().await.expect("engine answers");
        if done(&list) {
            return Some(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_and_rm_are_seen_within_a_second_and_cgroup_figures_are_read() {
    if !ready() {
        return;
    }
    let name = format!("lk-cg-events-{}", std::process::id());
    let _cleanup = Cleanup(name.clone());
    let mut watch = EngineWatch::new(None);
    watch.containers().await.expect("connects to the engine");
    let generation = watch.generation();

    let out = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        "lookout.test=1",
        IMAGE,
        "sleep",
        "120",
    ])
    .expect("docker run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let seen = wait_for(&mut watch, Duration::from_secs(5), |l| {
        l.iter().any(|m| m.id == id && m.state == "running")
    })
    .await;
    eprintln!("run seen after {seen:?}");
    let seen = seen.expect("the run was never seen");
    assert!(seen <= Duration::from_secs(1), "run seen after {seen:?}");
    assert!(watch.generation() > generation);
    let list = watch.containers().await.expect("engine answers");
    let meta = list.iter().find(|m| m.id == id).expect("listed");
    assert_eq!(meta.name, name);
    assert_eq!(meta.image, IMAGE);
    assert_eq!(
        meta.labels.get("lookout.test").map(String::as_str),
        Some("1")
    );
    assert!(meta
        .status(meta.started_at.unwrap_or(0) + 3)
        .starts_with("Up "));

    // The cgroup reader finds it (any layout) and reads figures from it; CPU % needs a
    // second reading.
    let mut probe = CgroupProbe::new("/sys/fs/cgroup".into(), "/proc".into());
    let first = probe.sample(true);
    let c = first
        .iter()
        .find(|c| c.cref.id == id)
        .unwrap_or_else(|| panic!("cgroup of {id} not found among {} containers", first.len()));
    assert_eq!(c.cref.runtime.as_str(), "docker");
    assert!(c.cgroup_path.contains(&id), "{}", c.cgroup_path);
    assert_eq!(c.figures.pids, Some(1), "sleep is the only process");
    assert!(c.figures.memory_used.is_some_and(|m| m > 0));
    assert!(c.figures.cpu_percent.is_none());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = probe.sample(false);
    let c = second
        .iter()
        .find(|c| c.cref.id == id)
        .expect("still there");
    let cpu = c.figures.cpu_percent.expect("CPU % from two readings");
    assert!((0.0..5.0).contains(&cpu), "idle sleep at {cpu}%");

    let out = docker(&["rm", "-f", &name]).expect("docker rm");
    assert!(out.status.success());
    let gone = wait_for(&mut watch, Duration::from_secs(5), |l| {
        !l.iter().any(|m| m.id == id)
    })
    .await;
    eprintln!("rm seen after {gone:?}");
    let gone = gone.expect("the removal was never seen");
    assert!(gone <= Duration::from_secs(1), "rm seen after {gone:?}");
    // Its cgroup is gone too, and the reader drops it.
    assert!(!probe.sample(true).iter().any(|c| c.cref.id == id));
}

#[tokio::test]
async fn an_engine_that_is_not_there_is_an_error_not_a_list() {
    let dir = std::env::temp_dir().join(format!("lk-cg-nosock-{}", std::process::id()));
    let mut watch = EngineWatch::new(Some(format!("unix://{}/podman.sock", dir.display())));
    assert!(watch.containers().await.is_err());
}
