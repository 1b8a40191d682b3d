//! One tick: read the host and the containers into a [`Snapshot`].

use std::time::Instant;

use crate::cgroup::path::Runtime;
use crate::cgroup::{CgroupContainer, CgroupProbe};
use crate::containers::{merge, EngineAnswer};
use crate::docker::engine::EngineWatch;
use crate::gpu::{GpuProbe, GpuView};
use crate::host::{HostPaths, HostProbe};
use crate::procs::{ProcessLimits, ProcessProbe, ProcessTable};
use crate::sensors::{SensorProbe, Sensors};
use crate::{ContainersView, HostSnapshot, Snapshot};

/// Owns the probes and their previous readings; the caller decides when to tick.
pub struct Sampler {
    paths: HostPaths,
    host: Option<HostProbe>,
    engines: Option<Engines>,
    tick: u64,
    last_host_error: Option<String>,
    /// `None` only while a GPU task holds it.
    gpu: Option<GpuSlot>,
    /// Processes and sensors, read on their own blocking thread beside the host's; `None`
    /// while that task holds them.
    extras: Option<Extras>,
}

/// The slower, optional readers: each off when `None`.
#[derive(Debug, Default)]
struct Extras {
    processes: Option<ProcessProbe>,
    sensors: Option<SensorProbe>,
}

impl Extras {
    fn sample(&mut self, now_ms: i64) -> (Option<std::sync::Arc<ProcessTable>>, Sensors) {
        let processes = self
            .processes
            .as_mut()
            .map(|p| p.tick(Instant::now(), now_ms));
        let sensors = self.sensors.as_mut().map(|s| s.tick()).unwrap_or_default();
        (processes, sensors)
    }
}

/// The container engines (Docker, and Podman where its socket is) and the cgroup reader.
struct Engines {
    docker: EngineWatch,
    podman: Option<EngineWatch>,
    /// `None` only while a blocking task holds it.
    cgroups: Option<CgroupProbe>,
    /// The engines' change count at the last walk of the cgroup tree.
    seen_generation: u64,
    /// A running container had no cgroup last tick: walk the tree again.
    rescan: bool,
}

impl Engines {
    fn new(paths: &HostPaths) -> Self {
        let podman = crate::docker::podman_endpoint().map(|p| {
            tracing::info!(socket = %p, "Podman containers followed through {p}");
            EngineWatch::new(Some(p))
        });
        Self {
            docker: EngineWatch::new(None),
            podman,
            cgroups: Some(CgroupProbe::new(
                paths.sys_root.join("fs/cgroup"),
                paths.proc_root.clone(),
            )),
            seen_generation: 0,
            rescan: true,
        }
    }

    fn generation(&self) -> u64 {
        self.docker.generation()
            + self
                .podman
                .as_ref()
                .map(EngineWatch::generation)
                .unwrap_or(0)
    }

    async fn answers(&mut self) -> Vec<EngineAnswer> {
        let mut out = vec![EngineAnswer {
            runtime: Runtime::Docker,
            containers: self.docker.containers().await,
        }];
        if let Some(p) = &mut self.podman {
            out.push(EngineAnswer {
                runtime: Runtime::Podman,
                containers: p.containers().await,
            });
        }
        out
    }
}

/// NVML's state across ticks: initialised lazily on the first tick's blocking thread.
enum GpuSlot {
    Pending,
    Ready(Box<GpuProbe>),
    /// Not monitored, and why (logged once when it was decided).
    Off(String),
}

impl GpuSlot {
    fn sample(&mut self, proc_root: &std::path::Path) -> GpuView {
        if matches!(self, GpuSlot::Pending) {
            *self = match GpuProbe::init() {
                Ok(p) => {
                    tracing::info!(
                        gpus = p.devices().len(),
                        "GPUs monitored through NVML: {}",
                        p.devices()
                            .iter()
                            .map(|d| format!("{} {}", d.index, d.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    GpuSlot::Ready(Box::new(p))
                }
                Err(reason) => {
                    tracing::info!(reason = %reason, "GPUs are not monitored: {reason}");
                    GpuSlot::Off(reason)
                }
            };
        }
        match self {
            GpuSlot::Ready(p) => p.sample(proc_root),
            GpuSlot::Off(reason) => GpuView::unavailable(reason.clone()),
            GpuSlot::Pending => GpuView::default(),
        }
    }
}

impl Sampler {
    /// `docker: false` skips the engine entirely (containers reported as unavailable).
    pub fn new(paths: HostPaths, docker: bool) -> Self {
        Self {
            host: Some(HostProbe::new(paths.clone())),
            engines: docker.then(|| Engines::new(&paths)),
            paths,
            tick: 0,
            last_host_error: None,
            gpu: Some(GpuSlot::Pending),
            extras: Some(Extras::default()),
        }
    }

    /// Samples the process table within `limits` (off unless called).
    pub fn with_processes(mut self, limits: ProcessLimits) -> Self {
        if let Some(x) = self.extras.as_mut() {
            x.processes = Some(ProcessProbe::new(
                &self.paths.proc_root,
                &self.paths.root_fs,
                limits,
            ));
        }
        self
    }

    /// Reads hwmon and thermal-zone sensors every `every_ticks` ticks (off unless called).
    pub fn with_sensors(mut self, every_ticks: u32) -> Self {
        if let Some(x) = self.extras.as_mut() {
            x.sensors = Some(SensorProbe::new(&self.paths.sys_root, every_ticks));
        }
        self
    }

    /// `false` turns GPU sampling off (on by default; NVML is loaded on the first tick).
    pub fn with_gpu(mut self, enabled: bool) -> Self {
        if !enabled {
            self.gpu = Some(GpuSlot::Off("GPU sampling is disabled".into()));
        }
        self
    }

    /// Takes one sample. The host is read on a blocking thread (statvfs on a dead network
    /// mount can hang) while the engine is listed; neither failure stops the other.
    pub async fn sample(&mut self) -> Snapshot {
        let taken_at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let host_task = self.host.take().map(|mut probe| {
            tokio::task::spawn_blocking(move || {
                let r = probe.sample(Instant::now());
                (probe, r)
            })
        });
        // NVML calls block in the driver: their own blocking thread, beside the host's.
        let gpu_task = match self.gpu.take() {
            Some(GpuSlot::Off(reason)) => {
                self.gpu = Some(GpuSlot::Off(reason));
                None
            }
            Some(mut slot) => {
                let proc_root = self.paths.proc_root.clone();
                Some(tokio::task::spawn_blocking(move || {
                    let view = slot.sample(&proc_root);
                    (slot, view)
                }))
            }
            None => None,
        };
        let extras_task = self.extras.take().map(|mut x| {
            tokio::task::spawn_blocking(move || {
                let r = x.sample(taken_at_ms);
                (x, r)
            })
        });
        // The cgroup files on a blocking thread too, beside the engines' answers.
        let cgroup_task = self.engines.as_mut().and_then(|e| {
            let generation = e.generation();
            let rescan = e.rescan || generation != e.seen_generation;
            e.seen_generation = generation;
            e.cgroups.take().map(|mut probe| {
                tokio::task::spawn_blocking(move || {
                    let v = probe.sample(rescan);
                    (probe, v)
                })
            })
        });
        let answers = match &mut self.engines {
            Some(e) => Some(e.answers().await),
            None => None,
        };
        let cgroups: Vec<CgroupContainer> = match cgroup_task {
            Some(task) => match task.await {
                Ok((probe, v)) => {
                    if let Some(e) = &mut self.engines {
                        e.cgroups = Some(probe);
                    }
                    v
                }
                Err(e) => {
                    tracing::error!(error = %e, "cgroup sampling task panicked");
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        if let Some(e) = &mut self.engines {
            if e.cgroups.is_none() {
                e.cgroups = Some(CgroupProbe::new(
                    self.paths.sys_root.join("fs/cgroup"),
                    self.paths.proc_root.clone(),
                ));
            }
        }
        let mut containers = match answers {
            Some(answers) => {
                let (view, missing) = merge(answers, cgroups, taken_at_ms / 1000);
                if let Some(e) = &mut self.engines {
                    e.rescan = missing;
                }
                view
            }
            None => ContainersView::Unavailable {
                reason: "docker sampling is disabled".into(),
            },
        };
        let host = match host_task {
            Some(task) => match task.await {
                Ok((probe, result)) => {
                    self.host = Some(probe);
                    match result {
                        Ok(h) => {
                            self.last_host_error = None;
                            h
                        }
                        Err(e) => {
                            let msg = e.to_string();
                            // Log a persistent failure once, not every second.
                            if self.last_host_error.as_deref() != Some(msg.as_str()) {
                                tracing::warn!(error = %msg, "host sampling failed");
                                self.last_host_error = Some(msg);
                            }
                            HostSnapshot::default()
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "host sampling task panicked");
                    HostSnapshot::default()
                }
            },
            None => HostSnapshot::default(),
        };
        let (processes, sensors) = match extras_task {
            Some(task) => match task.await {
                Ok((x, r)) => {
                    self.extras = Some(x);
                    r
                }
                Err(e) => {
                    tracing::error!(error = %e, "process/sensor sampling task panicked; both are off");
                    self.extras = Some(Extras::default());
                    (None, Sensors::default())
                }
            },
            None => (None, Sensors::default()),
        };
        let mut host = host;
        host.sensors = sensors;
        if self.host.is_none() {
            // The probe was lost with a panicked task: start over (rates restart at 0).
            tracing::warn!("recreating the host probe");
            self.host = Some(HostProbe::new(self.paths.clone()));
        }
        let mut gpu = match gpu_task {
            Some(task) => match task.await {
                Ok((slot, view)) => {
                    self.gpu = Some(slot);
                    view
                }
                Err(e) => {
                    tracing::error!(error = %e, "GPU sampling task panicked; GPUs are no longer monitored");
                    self.gpu = Some(GpuSlot::Off("GPU sampling failed".into()));
                    GpuView::unavailable("GPU sampling failed")
                }
            },
            None => match &self.gpu {
                Some(GpuSlot::Off(reason)) => GpuView::unavailable(reason.clone()),
                _ => GpuView::default(),
            },
        };
        if let ContainersView::Available { containers } = &mut containers {
            crate::gpu::attribute(&mut gpu, containers);
        }
        self.tick += 1;
        Snapshot {
            taken_at_ms,
            tick: self.tick,
            host,
            containers,
            gpu,
            processes,
        }
    }
}
