//! A simulated fleet for bench/fleet.sh: HOSTS hosts' worth of lookout-shaped series (same
//! metric and label names as `/metrics`: 4 CPUs × 8 modes, memory, 3 filesystems,
//! 2 interfaces, 10 containers, alerts, build info, sample time), pushed with remote-write
//! 1.0 through lookout-fleet's own encoder.
//!
//! `fleet_gen URL backfill HOST_COUNT SECONDS STEP_S` writes SECONDS of past history for the
//! first HOST_COUNT hosts; `fleet_gen URL live HOSTS INTERVAL_S DURATION_S` pushes every
//! host's current figures every INTERVAL_S for DURATION_S. Prints samples and bytes sent.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lookout_fleet::proto::{encode_body, Label, Sample, TimeSeries, WriteRequest};

const MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

/// A series' value from (host, unix seconds, series index).
type Value = fn(usize, f64, usize) -> f64;
type Series = (Vec<(&'static str, String)>, Value);

fn series(host: usize) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    let base = |name: &str| vec![("__name__", name.to_owned())];
    for cpu in 0..4 {
        for (m, mode) in MODES.iter().enumerate() {
            let mut l = base("lookout_host_cpu_seconds_total");
            l.push(("cpu", cpu.to_string()));
            l.push(("mode", (*mode).to_owned()));
            // Counters growing at a host-dependent busy share; `m` picks the mode's share.
            let f: fn(usize, f64, usize) -> f64 = match m {
                0 => |h, t, _| t * (0.1 + (h % 7) as f64 * 0.1),
                3 => |h, t, _| t * (0.9 - (h % 7) as f64 * 0.1),
                _ => |_, t, _| t * 0.0,
            };
            out.push((l, f));
        }
    }
    for name in [
        "lookout_host_memory_total_bytes",
        "lookout_host_memory_used_bytes",
        "lookout_host_memory_available_bytes",
        "lookout_host_memory_free_bytes",
        "lookout_host_memory_cached_bytes",
        "lookout_host_memory_buffers_bytes",
        "lookout_host_swap_total_bytes",
        "lookout_host_swap_used_bytes",
        "lookout_host_uptime_seconds",
    ] {
        let f: fn(usize, f64, usize) -> f64 = if name.ends_with("total_bytes") {
            |_, _, _| 64e9
        } else {
            |h, t, _| 8e9 + (h % 50) as f64 * 1e9 + (t / 60.0).sin() * 1e8
        };
        out.push((base(name), f));
    }
    for mount in ["/", "/var", "/data"] {
        for (name, f) in [
            (
                "lookout_host_filesystem_size_bytes",
                (|_, _, _| 1e12) as fn(usize, f64, usize) -> f64,
            ),
            ("lookout_host_filesystem_used_bytes", |h, _, _| {
                1e10 * (h % 90) as f64
            }),
            ("lookout_host_filesystem_avail_bytes", |h, _, _| {
                1e12 - 1e10 * (h % 90) as f64
            }),
        ] {
            let mut l = base(name);
            l.push(("device", format!("/dev/sd{}", &mount.len())));
            l.push(("mountpoint", mount.to_owned()));
            l.push(("fstype", "ext4".into()));
            out.push((l, f));
        }
    }
    for dev in ["eth0", "eth1"] {
        for name in [
            "lookout_host_network_receive_bytes_total",
            "lookout_host_network_transmit_bytes_total",
            "lookout_host_network_receive_packets_total",
            "lookout_host_network_transmit_packets_total",
        ] {
            let mut l = base(name);
            l.push(("device", dev.to_owned()));
            out.push((l, |h, t, _| t * 1000.0 * (1 + h % 10) as f64));
        }
    }
    for c in 0..10 {
        for name in [
            "lookout_container_running",
            "lookout_container_cpu_usage_seconds_total",
            "lookout_container_memory_working_set_bytes",
            "lookout_container_network_receive_bytes_total",
        ] {
            let mut l = base(name);
            l.push(("id", format!("{host:04x}{c:060x}")));
            l.push(("name", format!("svc-{c}-h{host}")));
            if name == "lookout_container_running" {
                l.push(("image", format!("registry.example/app-{c}:1.{}", host % 5)));
            }
            out.push((l, |_, t, _| t * 0.01));
        }
    }
    let mut l = base("lookout_alerts");
    l.push(("alertname", "HostHighCpu".into()));
    l.push(("state", "firing".into()));
    out.push((l, |h, _, _| (h % 20 == 0) as u8 as f64));
    let mut l = base("lookout_build_info");
    l.push(("version", "0.1.0".into()));
    l.push(("revision", "bench".into()));
    out.push((l, |_, _, _| 1.0));
    out.push((base("lookout_sample_timestamp_seconds"), |_, t, _| t));
    let _ = host;
    out
}

fn request(hosts: std::ops::Range<usize>, t_ms: &[i64]) -> Vec<TimeSeries> {
    let mut ts = Vec::new();
    for h in hosts {
        let host = format!("h-{h:04}");
        for (i, (labels, f)) in series(h).into_iter().enumerate() {
            let mut labels: Vec<Label> = labels
                .into_iter()
                .map(|(name, value)| Label {
                    name: name.into(),
                    value,
                })
                .collect();
            labels.push(Label {
                name: "instance".into(),
                value: host.clone(),
            });
            labels.push(Label {
                name: "job".into(),
                value: "lookout".into(),
            });
            labels.sort_by(|a, b| a.name.cmp(&b.name));
            let running = labels
                .iter()
                .any(|l| l.name == "__name__" && l.value == "lookout_container_running");
            let samples = t_ms
                .iter()
                .map(|&t| Sample {
                    value: if running {
                        1.0
                    } else {
                        f(h, t as f64 / 1000.0, i)
                    },
                    timestamp: t,
                })
                .collect();
            ts.push(TimeSeries { labels, samples });
        }
    }
    ts
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

struct Push {
    agent: ureq_like::Client,
    samples: u64,
    bytes: u64,
}

mod ureq_like {
    //! A blocking POST through a current-thread tokio runtime and reqwest.
    pub struct Client {
        rt: tokio::runtime::Runtime,
        http: reqwest::Client,
        pub url: String,
    }
    impl Client {
        pub fn new(url: String) -> Self {
            Self {
                rt: tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime"),
                http: reqwest::Client::new(),
                url,
            }
        }
        pub fn post(&self, body: Vec<u8>) -> Result<(), String> {
            self.rt.block_on(async {
                let r = self
                    .http
                    .post(&self.url)
                    .header("content-encoding", "snappy")
                    .header("content-type", "application/x-protobuf")
                    .header("x-prometheus-remote-write-version", "0.1.0")
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                if r.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("HTTP {}", r.status()))
                }
            })
        }
    }
}

impl Push {
    fn send(&mut self, timeseries: Vec<TimeSeries>) {
        let n: usize = timeseries.iter().map(|t| t.samples.len()).sum();
        let body = encode_body(&WriteRequest { timeseries }).expect("snappy");
        self.bytes += body.len() as u64;
        self.samples += n as u64;
        if let Err(e) = self.agent.post(body) {
            eprintln!("push failed: {e}");
        }
    }
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().collect();
    let usage = "fleet_gen URL backfill HOSTS SECONDS STEP_S | fleet_gen URL live HOSTS INTERVAL_S DURATION_S";
    let num = |i: usize| -> u64 { args.get(i).and_then(|v| v.parse().ok()).expect(usage) };
    let (url, mode) = (
        args.get(1).expect(usage).clone(),
        args.get(2).expect(usage).clone(),
    );
    let (hosts, a, b) = (num(3) as usize, num(4), num(5));
    let mut p = Push {
        agent: ureq_like::Client::new(url),
        samples: 0,
        bytes: 0,
    };
    let started = Instant::now();
    match mode.as_str() {
        "backfill" => {
            let end = now_ms() - 60_000;
            let start = end - a as i64 * 1000;
            let times: Vec<i64> = (0..)
                .map(|i| start + i * b as i64 * 1000)
                .take_while(|t| *t <= end)
                .collect();
            for h in 0..hosts {
                for chunk in times.chunks(100) {
                    p.send(request(h..h + 1, chunk));
                }
            }
        }
        "live" => {
            let until = Instant::now() + Duration::from_secs(b);
            while Instant::now() < until {
                let tick = Instant::now();
                let t = [now_ms()];
                for first in (0..hosts).step_by(50) {
                    p.send(request(first..(first + 50).min(hosts), &t));
                }
                std::thread::sleep(Duration::from_secs(a).saturating_sub(tick.elapsed()));
            }
        }
        _ => panic!("{usage}"),
    }
    println!(
        "fleet_gen {mode}: {} samples, {} bytes on the wire ({:.2} bytes/sample), {:.1} s",
        p.samples,
        p.bytes,
        p.bytes as f64 / p.samples.max(1) as f64,
        started.elapsed().as_secs_f64()
    );
}
