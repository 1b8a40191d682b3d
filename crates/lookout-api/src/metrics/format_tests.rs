//! The exposition as a scraper reads it: format negotiation, family names and shapes, and
//! that every sample belongs to the family its HELP/TYPE lines announce.

use std::sync::Arc;

use lookout_probe::gpu::convert::{
    gpu_record, merge_processes, DeviceInfo, RawGpu, RawMemory, RawProcess,
};
use lookout_probe::gpu::GpuView;
use lookout_probe::host::cpu::CpuTimes;
use lookout_probe::{ContainerStats, ContainersView, HostSnapshot, NetInterface, Snapshot};

use super::{Format, HttpMetrics};

fn snapshot(containers: ContainersView, gpu: GpuView) -> Arc<Snapshot> {
    let mut host = HostSnapshot::default();
    let times = CpuTimes {
        user: 250,
        idle: 1000,
        ..CpuTimes::default()
    };
    host.cpu.core_times = vec![(0, times), (2, times)];
    host.memory.total = 8 << 30;
    host.memory.available = 6 << 30;
    host.network = vec![NetInterface {
        name: "eth\"0".into(),
        rx_bytes: 10,
        tx_bytes: 20,
        rx_packets: 1,
        tx_packets: 2,
        rx_errors: 0,
        tx_errors: 0,
        rx_dropped: 0,
        tx_dropped: 0,
        rx_bytes_per_sec: 0.0,
        tx_bytes_per_sec: 0.0,
        rx_packets_per_sec: 0.0,
        tx_packets_per_sec: 0.0,
    }];
    Arc::new(Snapshot {
        taken_at_ms: 1_700_000_000_500,
        tick: 3,
        host,
        containers,
        gpu,
        processes: None,
    })
}

fn render(s: Arc<Snapshot>, format: Format) -> String {
    HttpMetrics::new().render(Some(s), format)
}

#[test]
fn accept_header_picks_the_format_as_client_libraries_do() {
    assert_eq!(Format::negotiate(None), Format::PrometheusText);
    assert_eq!(Format::negotiate(Some("*/*")), Format::PrometheusText);
    assert_eq!(
        Format::negotiate(Some("text/plain;version=0.0.4;q=1,*/*;q=0.1")),
        Format::PrometheusText
    );
    // What Prometheus 2.x/3.x sends.
    assert_eq!(
        Format::negotiate(Some("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")),
        Format::OpenMetrics
    );
    assert_eq!(
        Format::negotiate(Some("application/openmetrics-text; q=0, text/plain")),
        Format::PrometheusText
    );
}

#[test]
fn text_format_has_no_eof_and_counters_are_typed_with_total() {
    let s = snapshot(
        ContainersView::Unavailable {
            reason: "off".into(),
        },
        GpuView::unavailable("none"),
    );
    let text = render(s.clone(), Format::PrometheusText);
    assert!(!text.contains("# EOF"), "{text}");
    assert!(!text.contains("# UNIT"), "{text}");
    assert!(
        text.contains("# TYPE lookout_host_cpu_seconds_total counter\n"),
        "{text}"
    );
    assert!(
        text.contains("lookout_host_cpu_seconds_total{cpu=\"2\",mode=\"user\"} 2.5\n"),
        "{text}"
    );
    assert!(
        text.contains("lookout_host_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 10.0\n"),
        "{text}"
    );
    assert!(text.contains("# TYPE lookout_build_info gauge\n"), "{text}");
    assert!(
        text.contains(&format!(
            "lookout_build_info{{version=\"{}\"",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    assert!(
        text.contains("lookout_host_memory_total_bytes 8589934592\n"),
        "{text}"
    );
    assert!(
        text.contains("lookout_host_network_receive_bytes_total{device=\"eth\\\"0\"} 10\n"),
        "{text}"
    );
    assert!(text.contains("lookout_docker_up 0\n"), "{text}");
    assert!(text.contains("lookout_gpu_up 0\n"), "{text}");
    assert!(
        text.contains("lookout_sample_timestamp_seconds 1700000000.5\n"),
        "{text}"
    );
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(text.contains(&format!("\n{name} ")), "{name}: {text}");
    }
    assert!(
        !text.contains("kind=\""),
        "no family mixes totals and parts: {text}"
    );
    assert!(!text.contains("_percent"), "ratios, not percent: {text}");

    let om = render(s, Format::OpenMetrics);
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(
        om.contains("# TYPE lookout_host_cpu_seconds counter\n"),
        "{om}"
    );
    assert!(om.contains("# TYPE lookout_build info\n"), "{om}");
}

/// Every sample line's metric name is announced by the `# TYPE` line before it (the text
/// format's rule that `promtool check metrics` enforces), and no family is announced twice.
#[test]
fn every_sample_belongs_to_the_family_announced_before_it() {
    let c = ContainerStats {
        id: "c1".into(),
        name: "web".into(),
        image: "nginx".into(),
        state: "running".into(),
        memory_used_bytes: Some(5),
        net_rx_bytes: Some(1),
        net_tx_bytes: Some(2),
        pids: Some(3),
        ..ContainerStats::default()
    };
    let s = snapshot(
        ContainersView::Available {
            containers: vec![c],
        },
        GpuView::unavailable("none"),
    );
    let text = render(s, Format::PrometheusText);
    let mut current = String::new();
    let mut seen = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            assert!(seen.insert(name.to_owned()), "{name} announced twice");
            current = name.to_owned();
            if kind == "counter" {
                assert!(name.ends_with("_total"), "{line}");
            } else {
                assert!(!name.ends_with("_total"), "{line}");
            }
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let name = line.split(['{', ' ']).next().unwrap_or("");
        let ok = name == current
            || ["_bucket", "_sum", "_count"]
                .iter()
                .any(|s| name.strip_suffix(s) == Some(current.as_str()));
        assert!(ok, "sample {name} under family {current}");
    }
    for family in [
        "lookout_container_running",
        "lookout_container_memory_working_set_bytes",
        "lookout_container_network_receive_bytes_total",
        "lookout_container_pids",
    ] {
        assert!(seen.contains(family), "{family}: {text}");
    }
}

#[test]
fn gpu_families_keep_dcgm_names_and_units() {
    let id = "ab".repeat(32);
    let mut procs = merge_processes(
        &[RawProcess {
            pid: 7,
            used_memory: Some(3 << 20),
        }],
        &[],
        None,
    );
    procs[0].container_id = Some(id.clone());
    procs[0].sm_utilization_percent = Some(42);
    let raw = RawGpu {
        utilization: Some((88, 10)),
        memory: Some(RawMemory {
            total: 80 << 30,
            used: 512 << 20,
            free: 79 << 30,
            reserved: None,
        }),
        power_mw: Some(123_400),
        ..RawGpu::default()
    };
    let info = DeviceInfo {
        index: 0,
        uuid: "GPU-x".into(),
        name: "H100 \"SXM\"".into(),
        pci_bus_id: "0:1".into(),
        fans: 0,
    };
    let view = GpuView {
        available: true,
        reason: None,
        driver_version: Some("580".into()),
        nvml_version: None,
        cuda_driver_version: None,
        gpus: vec![gpu_record(&info, &raw, None, procs)],
    };
    let out = render(
        snapshot(
            ContainersView::Unavailable {
                reason: "off".into(),
            },
            view,
        ),
        Format::PrometheusText,
    );
    let labels = r#"gpu="0",UUID="GPU-x",modelName="H100 \"SXM\"",pci_bus_id="0:1""#;
    assert!(out.contains("lookout_gpu_up 1\n"), "{out}");
    assert!(
        out.contains(&format!("DCGM_FI_DEV_GPU_UTIL{{{labels}}} 88\n")),
        "{out}"
    );
    assert!(
        out.contains(&format!("DCGM_FI_DEV_FB_USED{{{labels}}} 512.0\n")),
        "MiB: {out}"
    );
    assert!(
        out.contains(&format!("DCGM_FI_DEV_POWER_USAGE{{{labels}}} 123.4\n")),
        "{out}"
    );
    assert!(
        !out.contains("DCGM_FI_DEV_FB_RESERVED"),
        "absent values: no family"
    );
    assert!(out.contains(&format!(
        "lookout_container_gpu_memory_bytes{{id=\"{id}\",name=\"\",gpu=\"0\",UUID=\"GPU-x\"}} 3145728\n"
    )), "{out}");
    assert!(out.contains(&format!(
        "lookout_gpu_process_sm_utilization_ratio{{{labels},pid=\"7\",container_id=\"{id}\",container=\"\"}} 0.42\n"
    )), "{out}");
}
