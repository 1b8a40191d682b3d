//! GPU sampling without a GPU: cgroup attribution over real `/proc/<pid>/cgroup` layouts,
//! NVML readings to records, unit handling, and the container join.

use std::path::Path;

use lookout_probe::gpu::cgroup::{container_from_cgroup_file, container_from_path, Runtime};
use lookout_probe::gpu::convert::{
    self, counter_rate, gpu_record, kbps_to_bytes_per_sec, merge_processes, milliwatts_to_watts,
    throttle_reason_names, usage_by_container, utilization_by_pid, DeviceInfo, PciePrev, RawGpu,
    RawMemory, RawPcie, RawProcess, RawUtilSample,
};
use lookout_probe::gpu::{attribute, GpuProcess, GpuView};
use lookout_probe::ContainerStats;
use proptest::prelude::*;

const DOCKER: &str = "3f1e2c0b9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";
const K8S: &str = "a7c3e9f1b2d4c6e8f0a1b3c5d7e9f1a2b4c6d8e0f2a3b5c7d9e1f3a4b6c8d0e2";
const PODMAN: &str = "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c";
const NERDCTL: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";
const POD: &str = "6f1c2a3b-4d5e-6f70-8192-a3b4c5d6e7f8";

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cgroup")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Runtime, container id, pod UID.
type Expected = (Runtime, &'static str, Option<&'static str>);

#[test]
fn every_layout_names_its_container() {
    let cases: &[(&str, Option<Expected>)] = &[
        (
            "docker-v2-systemd.cgroup",
            Some((Runtime::Docker, DOCKER, None)),
        ),
        (
            "docker-v2-cgroupfs.cgroup",
            Some((Runtime::Docker, DOCKER, None)),
        ),
        (
            "docker-v2-systemd-in-container.cgroup",
            Some((Runtime::Docker, DOCKER, None)),
        ),
        (
            "docker-v1-cgroupfs.cgroup",
            Some((Runtime::Docker, DOCKER, None)),
        ),
        (
            "docker-v1-systemd.cgroup",
            Some((Runtime::Docker, DOCKER, None)),
        ),
        (
            "k8s-containerd-v2-systemd.cgroup",
            Some((Runtime::Containerd, K8S, Some(POD))),
        ),
        (
            "k8s-guaranteed-v2-systemd.cgroup",
            Some((Runtime::Containerd, K8S, Some(POD))),
        ),
        (
            "k8s-containerd-v1-cgroupfs.cgroup",
            Some((Runtime::Kubernetes, K8S, Some(POD))),
        ),
        (
            "k8s-crio-v2-systemd.cgroup",
            Some((Runtime::CriO, K8S, Some(POD))),
        ),
        (
            "k8s-crio-v1-systemd.cgroup",
            Some((Runtime::CriO, K8S, Some(POD))),
        ),
        (
            "k8s-docker-v1-systemd.cgroup",
            Some((Runtime::Docker, K8S, Some(POD))),
        ),
        (
            "podman-v2-rootful.cgroup",
            Some((Runtime::Podman, PODMAN, None)),
        ),
        (
            "podman-v2-rootless.cgroup",
            Some((Runtime::Podman, PODMAN, None)),
        ),
        (
            "podman-v1-cgroupfs.cgroup",
            Some((Runtime::Podman, PODMAN, None)),
        ),
        (
            "containerd-nerdctl-v2-cgroupfs.cgroup",
            Some((Runtime::Containerd, NERDCTL, None)),
        ),
        (
            "containerd-nerdctl-v2-systemd.cgroup",
            Some((Runtime::Containerd, NERDCTL, None)),
        ),
        ("podman-conmon-v2.cgroup", None),
        ("host-session-v2.cgroup", None),
        ("host-service-v2.cgroup", None),
        ("host-v1.cgroup", None),
        ("in-container-cgroupns-v2.cgroup", None),
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cgroup");
    // The `v1`/`v2` folders hold the cgroup *files* of tests/cgroup_files.rs, not paths.
    let files = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "cgroup"))
        .count();
    assert_eq!(files, cases.len(), "every fixture has a case");
    for (name, want) in cases {
        let got = container_from_cgroup_file(&fixture(name));
        match (want, got) {
            (None, None) => {}
            (Some((runtime, id, pod)), Some((c, path))) => {
                assert_eq!(c.runtime, *runtime, "{name}");
                assert_eq!(c.id, *id, "{name}");
                assert_eq!(c.pod_uid.as_deref(), *pod, "{name}");
                assert!(path.contains(id), "{name}: {path}");
            }
            (want, got) => panic!("{name}: want {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn outermost_container_wins_when_nested() {
    // kind: a pod inside a node container; the host's engine lists the node.
    let path = format!("/docker/{DOCKER}/kubepods/besteffort/pod{POD}/{K8S}");
    let c = container_from_path(&path).expect("a container");
    assert_eq!((c.runtime, c.id.as_str()), (Runtime::Docker, DOCKER));
}

#[test]
fn short_or_malformed_ids_are_not_containers() {
    for p in [
        "/docker/abc123",
        "/system.slice/docker-abc.scope",
        "/system.slice/docker.service",
        &format!("/system.slice/docker-{}.scope", &DOCKER[..63]),
        &format!("/system.slice/docker-{}z.scope", &DOCKER[..63]),
        "",
        "/",
    ] {
        assert_eq!(container_from_path(p), None, "{p}");
    }
    assert_eq!(container_from_cgroup_file("garbage\n\n::\n"), None);
}

proptest! {
    #[test]
    fn any_docker_id_round_trips(id in "[0-9a-f]{64}", prefix in "(/[a-z.]{1,12}){0,3}") {
        for text in [
            format!("0::{prefix}/system.slice/docker-{id}.scope\n"),
            format!("4:memory:{prefix}/docker/{id}\n0::/\n"),
        ] {
            let (c, _) = container_from_cgroup_file(&text).expect("found");
            prop_assert_eq!(c.id, id.clone());
            prop_assert_eq!(c.runtime, Runtime::Docker);
        }
    }

    #[test]
    fn parsing_never_panics(text in "\\PC{0,300}") {
        let _ = container_from_cgroup_file(&text);
    }

    #[test]
    fn rates_are_never_negative(prev in any::<u64>(), cur in any::<u64>(), secs in 0.0f64..10.0) {
        if let Some(r) = counter_rate(prev, cur, secs) {
            prop_assert!(r >= 0.0 && r.is_finite());
            prop_assert!(cur >= prev);
        }
    }

    #[test]
    fn mean_utilization_stays_in_range(samples in proptest::collection::vec((0u32..4, 1u64..1000, 0u32..200, 0u32..200), 0..40)) {
        let raw: Vec<RawUtilSample> = samples.iter().map(|&(pid, t, sm, mem)| RawUtilSample { pid, timestamp_us: t, sm, mem }).collect();
        for (_, (sm, mem)) in utilization_by_pid(&raw, 0) {
            prop_assert!(sm <= 100 && mem <= 100);
        }
    }
}

#[test]
fn units() {
    assert_eq!(milliwatts_to_watts(69_420), 69.42);
    assert_eq!(kbps_to_bytes_per_sec(2), 2048.0);
    assert_eq!(counter_rate(1_000, 3_000, 2.0), Some(1_000.0));
    assert_eq!(counter_rate(3_000, 1_000, 2.0), None, "counter went back");
    assert_eq!(counter_rate(1, 2, 0.0), None);
    assert_eq!(throttle_reason_names(0), Vec::<String>::new());
    assert_eq!(
        throttle_reason_names(0x1 | 0x4),
        ["gpu_idle", "sw_power_cap"]
    );
    assert_eq!(throttle_reason_names(1 << 40), ["bit_40"]);
}

fn info() -> DeviceInfo {
    DeviceInfo {
        index: 0,
        uuid: "GPU-1".into(),
        name: "NVIDIA H100 80GB HBM3".into(),
        pci_bus_id: "00000000:17:00.0".into(),
        fans: 0,
    }
}

#[test]
fn readings_become_a_record() {
    let raw = RawGpu {
        utilization: Some((87, 40)),
        memory: Some(RawMemory {
            total: 80 << 30,
            used: 20 << 30,
            free: 59 << 30,
            reserved: Some(1 << 30),
        }),
        temperature_c: Some(51),
        power_mw: Some(412_345),
        power_limit_mw: Some(700_000),
        energy_mj: Some(123_456_789),
        sm_clock_mhz: Some(1980),
        memory_clock_mhz: Some(2619),
        pcie: RawPcie::Counters {
            rx_bytes: 5_000,
            tx_bytes: 1_000,
        },
        fan_speeds: vec![],
        throttle_mask: Some(0x4),
        ecc_mode: Some((true, true)),
        ecc_counts: [Some(1), Some(0), Some(7), None],
        mig_mode: Some((0, 1)),
    };
    let prev = PciePrev {
        rx_bytes: 1_000,
        tx_bytes: 1_000,
        elapsed_secs: 2.0,
    };
    let g = gpu_record(&info(), &raw, Some(prev), vec![]);
    assert_eq!(g.utilization_gpu_percent, Some(87));
    assert_eq!(g.utilization_memory_percent, Some(40));
    let m = g.memory.expect("memory");
    assert_eq!(m.used_percent, 25.0);
    assert_eq!(m.reserved_bytes, Some(1 << 30));
    assert_eq!(g.power_draw_watts, Some(412.345));
    assert_eq!(g.power_limit_watts, Some(700.0));
    assert_eq!(g.energy_millijoules, Some(123_456_789));
    assert_eq!(g.pcie_rx_bytes_per_sec, Some(2_000.0));
    assert_eq!(g.pcie_tx_bytes_per_sec, Some(0.0));
    assert_eq!(g.fan_speed_percent, None, "no fan: null");
    assert_eq!(
        g.throttle_reasons.as_deref(),
        Some(&["sw_power_cap".to_string()][..])
    );
    let ecc = g.ecc.expect("ecc");
    assert_eq!(
        (
            ecc.volatile_corrected,
            ecc.aggregate_corrected,
            ecc.aggregate_uncorrected
        ),
        (Some(1), Some(7), None)
    );
    let mig = g.mig.expect("mig");
    assert!(!mig.enabled && mig.pending_enabled);

    // First tick: counters but no previous reading -> no rate yet. Throughput fallback in KB/s.
    let first = gpu_record(&info(), &raw, None, vec![]);
    assert_eq!(first.pcie_rx_bytes_per_sec, None);
    let old = RawGpu {
        pcie: RawPcie::ThroughputKbps { rx: 10, tx: 1 },
        fan_speeds: vec![30, 50],
        ecc_mode: Some((false, false)),
        ecc_counts: [Some(3); 4],
        ..RawGpu::default()
    };
    let g = gpu_record(&info(), &old, None, vec![]);
    assert_eq!(g.pcie_rx_bytes_per_sec, Some(10_240.0));
    assert_eq!(g.fan_speed_percent, Some(40));
    assert_eq!(
        g.ecc.expect("ecc").volatile_corrected,
        None,
        "ECC off: no counts"
    );
    assert_eq!(g.memory, None);
    // Absent fields serialise as null, not missing.
    let j = serde_json::to_value(&g).expect("json");
    assert!(j["temperature_celsius"].is_null());
    assert!(j
        .as_object()
        .expect("object")
        .contains_key("temperature_celsius"));
}

#[test]
fn processes_merge_and_carry_utilization() {
    let compute = [
        RawProcess {
            pid: 10,
            used_memory: Some(100),
        },
        RawProcess {
            pid: 11,
            used_memory: None,
        },
    ];
    let graphics = [RawProcess {
        pid: 10,
        used_memory: Some(150),
    }];
    let samples = [
        RawUtilSample {
            pid: 10,
            timestamp_us: 5,
            sm: 99,
            mem: 1,
        },
        RawUtilSample {
            pid: 10,
            timestamp_us: 20,
            sm: 80,
            mem: 10,
        },
        RawUtilSample {
            pid: 10,
            timestamp_us: 30,
            sm: 60,
            mem: 20,
        },
    ];
    let util = convert::with_idle(utilization_by_pid(&samples, 10), [10, 11]);
    assert_eq!(
        util.get(&10),
        Some(&(70, 15)),
        "samples after `since` only, averaged"
    );
    let p = merge_processes(&compute, &graphics, Some(&util));
    assert_eq!(p.len(), 2);
    assert_eq!(
        (p[0].pid, p[0].kind.as_str(), p[0].used_memory_bytes),
        (10, "compute+graphics", Some(150))
    );
    assert_eq!(p[0].sm_utilization_percent, Some(70));
    assert_eq!(
        (
            p[1].pid,
            p[1].used_memory_bytes,
            p[1].sm_utilization_percent
        ),
        (11, None, Some(0))
    );
    let p = merge_processes(&compute, &[], None);
    assert_eq!(
        p[0].sm_utilization_percent, None,
        "samples unreadable: null"
    );
}

fn process(pid: u32, container: Option<&str>, mem: u64, sm: u32) -> GpuProcess {
    let mut p = merge_processes(
        &[RawProcess {
            pid,
            used_memory: Some(mem),
        }],
        &[],
        None,
    )
    .remove(0);
    p.container_id = container.map(str::to_string);
    p.sm_utilization_percent = Some(sm);
    p
}

fn container(id: &str, name: &str) -> ContainerStats {
    ContainerStats {
        id: id.into(),
        name: name.into(),
        state: "running".into(),
        ..Default::default()
    }
}

#[test]
fn containers_get_their_summed_gpu_use() {
    let mut g0 = gpu_record(
        &info(),
        &RawGpu::default(),
        None,
        vec![
            process(1, Some(DOCKER), 100, 30),
            process(2, Some(DOCKER), 50, 20),
            process(3, None, 999, 99),
        ],
    );
    g0.index = 0;
    let mut g1 = gpu_record(
        &info(),
        &RawGpu::default(),
        None,
        vec![process(4, Some(DOCKER), 7, 5), process(5, Some(K8S), 1, 1)],
    );
    g1.index = 1;
    g1.uuid = "GPU-2".into();
    let mut view = GpuView {
        available: true,
        reason: None,
        driver_version: None,
        nvml_version: None,
        cuda_driver_version: None,
        gpus: vec![g0, g1],
    };
    let usage = usage_by_container(&view.gpus);
    let d = &usage[DOCKER];
    assert_eq!(
        (d.memory_used_bytes, d.sm_utilization_percent, d.processes),
        (157, 55.0, 3)
    );
    assert_eq!(d.devices.len(), 2);
    assert_eq!(
        (d.devices[0].memory_used_bytes, d.devices[0].pids.clone()),
        (150, vec![1, 2])
    );
    assert_eq!(d.devices[1].uuid, "GPU-2");

    let mut list = vec![
        container(DOCKER, "trainer"),
        container(&"e".repeat(64), "idle"),
    ];
    attribute(&mut view, &mut list);
    assert_eq!(list[0].gpu.as_ref().map(|g| g.memory_used_bytes), Some(157));
    assert_eq!(
        list[1].gpu.as_ref().map(|g| g.processes),
        Some(0),
        "monitored, unused: zeros"
    );
    assert_eq!(
        view.gpus[0].processes[0].container_name.as_deref(),
        Some("trainer")
    );
    assert_eq!(
        view.gpus[1].processes[1].container_name, None,
        "not in the Docker list"
    );
    assert_eq!(
        view.gpus[1].processes[1].container_id.as_deref(),
        Some(K8S),
        "raw id kept"
    );

    let mut off = GpuView::unavailable("no driver");
    let mut list = vec![container(DOCKER, "trainer")];
    attribute(&mut off, &mut list);
    assert!(list[0].gpu.is_none(), "GPUs not monitored: null");
    let j = serde_json::to_value(&off).expect("json");
    assert_eq!(j["available"], false);
    assert_eq!(j["reason"], "no driver");
    let _ = convert::memory_record(RawMemory::default());
}
