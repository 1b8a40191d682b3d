//! Against a real Podman (`podman system service` on the socket in `LOOKOUT_PODMAN_HOST`,
//! started by scripts/test-podman.sh with a container named in `LOOKOUT_TEST_PODMAN_CONTAINER`):
//! the sampler lists it by name with cgroup figures beside Docker's containers, and control
//! actions reach it through Podman. Skips, saying so, when the script did not set it up.

use std::process::{Command, Stdio};
use std::time::Duration;

use lookout_probe::docker::{ContainerAction, ContainerControl, DockerControl};
use lookout_probe::host::HostPaths;
use lookout_probe::{ContainerStats, ContainersView, Sampler};

fn setup() -> Option<(String, String)> {
    let host = std::env::var("LOOKOUT_PODMAN_HOST").ok()?;
    let name = std::env::var("LOOKOUT_TEST_PODMAN_CONTAINER").ok()?;
    Some((host, name))
}

fn podman_state(name: &str) -> String {
    Command::new("podman")
        .args(["inspect", "-f", "{{.State.Status}}", name])
        .stdin(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

async fn find(sampler: &mut Sampler, name: &str) -> Option<ContainerStats> {
    match sampler.sample().await.containers {
        ContainersView::Available { containers } => containers.into_iter().find(|c| c.name == name),
        ContainersView::Unavailable { reason } => panic!("containers unavailable: {reason}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_containers_are_listed_sampled_and_controlled() {
    let Some((_host, name)) = setup() else {
        eprintln!("SKIPPED: podman: run scripts/test-podman.sh (sets LOOKOUT_PODMAN_HOST)");
        return;
    };
    let mut sampler = Sampler::new(HostPaths::default(), true).with_gpu(false);
    let _ = find(&mut sampler, &name).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let c = find(&mut sampler, &name)
        .await
        .unwrap_or_else(|| panic!("{name} not listed"));
    eprintln!(
        "podman container: runtime {:?} cgroup {:?} cpu {:?} mem {:?} pids {:?}",
        c.runtime, c.cgroup, c.cpu_percent, c.memory_used_bytes, c.pids
    );
    assert_eq!(c.state, "running");
    assert_eq!(c.runtime.as_deref(), Some("podman"));
    assert!(c.image.contains("lookout-test/busybox"), "{}", c.image);
    assert!(c.cgroup.as_deref().is_some_and(|p| p.contains("libpod")));
    assert!(c.cpu_percent.is_some_and(|p| (0.0..5.0).contains(&p)));
    assert!(c.memory_used_bytes.is_some_and(|m| m > 0));
    assert_eq!(c.pids, Some(1));

    // Control goes to Podman: Docker does not know the id.
    DockerControl
        .act(&c.id, ContainerAction::Pause)
        .await
        .expect("pause through podman");
    assert_eq!(podman_state(&name), "paused");
    // The pause event reaches the sampler.
    let mut state = String::new();
    for _ in 0..20 {
        state = find(&mut sampler, &name)
            .await
            .map(|c| c.state)
            .unwrap_or_default();
        if state == "paused" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state, "paused");
    DockerControl
        .act(&c.id, ContainerAction::Unpause)
        .await
        .expect("unpause through podman");
    assert_eq!(podman_state(&name), "running");
    let err = DockerControl
        .act(&c.id, ContainerAction::Unpause)
        .await
        .expect_err("already running");
    assert!(err.to_string().contains("not paused"), "{err}");
}
