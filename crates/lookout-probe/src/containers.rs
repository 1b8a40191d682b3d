//! One tick's container list: the engines' metadata joined with the cgroup readings.
//!
//! A container an engine knows gets its name, image, labels and state from it; one that no
//! reachable engine knows (a Kubernetes pod on a node without the CRI socket, a Podman
//! container with no API socket) still appears, by id and cgroup path, with its figures.

use std::collections::HashMap;
use std::sync::Arc;

use bollard::models::{
    ContainerBlkioStatEntry, ContainerBlkioStats, ContainerCpuStats, ContainerCpuUsage,
    ContainerMemoryStats, ContainerNetworkStats, ContainerPidsStats,
};

use crate::cgroup::path::Runtime;
use crate::cgroup::CgroupContainer;
use crate::docker::engine::Meta;
use crate::docker::stats::CpuReading;
use crate::{ContainerStats, ContainersView, EngineStats, ProbeError};

/// What one engine answered this tick.
pub struct EngineAnswer {
    pub runtime: Runtime,
    pub containers: Result<Vec<Meta>, ProbeError>,
}

/// The tick's list, and whether a running container has no cgroup yet (the reader should
/// walk the tree again next tick).
pub fn merge(
    engines: Vec<EngineAnswer>,
    cgroups: Vec<CgroupContainer>,
    now_secs: i64,
) -> (ContainersView, bool) {
    let docker_error = engines
        .iter()
        .find(|e| e.runtime == Runtime::Docker)
        .and_then(|e| e.containers.as_ref().err())
        .map(|e| e.to_string());
    // Docker's containers without Docker: the engine that owns them is down, which the
    // routes report as such (503) rather than as a list of nameless containers.
    if let Some(reason) = &docker_error {
        let others = cgroups.iter().any(|c| c.cref.runtime != Runtime::Docker);
        let docker_cgroups = cgroups.iter().any(|c| c.cref.runtime == Runtime::Docker);
        if docker_cgroups || !others {
            return (
                ContainersView::Unavailable {
                    reason: reason.clone(),
                },
                false,
            );
        }
    }
    let mut by_id: HashMap<String, CgroupContainer> = cgroups
        .into_iter()
        .map(|c| (c.cref.id.clone(), c))
        .collect();
    let mut missing = false;
    let mut out = Vec::new();
    let mut answered = Vec::new();
    for engine in engines {
        let Ok(metas) = engine.containers else {
            continue;
        };
        answered.push(engine.runtime);
        for meta in metas {
            let cg = by_id.remove(&meta.id);
            let live = matches!(meta.state.as_str(), "running" | "paused");
            missing |= live && cg.is_none();
            out.push(known(meta, cg, live, now_secs));
        }
    }
    for (_, cg) in by_id {
        // A cgroup of an engine that answered but does not list it: created or removed
        // between the two readings; the next tick settles it.
        if answered.contains(&cg.cref.runtime) {
            continue;
        }
        out.push(unknown(cg));
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    (ContainersView::Available { containers: out }, missing)
}

fn known(meta: Meta, cg: Option<CgroupContainer>, live: bool, now_secs: i64) -> ContainerStats {
    let status = meta.status(now_secs);
    let mut c = ContainerStats {
        name: meta.name,
        image: meta.image,
        state: meta.state,
        status,
        created: meta.created,
        labels: meta.labels,
        restart_count: Some(meta.restart_count),
        id: meta.id,
        ..Default::default()
    };
    match cg {
        Some(cg) if live => fill(&mut c, cg),
        _ if live => {}
        // A stopped container uses nothing: zeros rather than stale figures.
        _ => {
            c.cpu_percent = Some(0.0);
            c.memory_used_bytes = Some(0);
            c.memory_percent = Some(0.0);
        }
    }
    c
}

fn unknown(cg: CgroupContainer) -> ContainerStats {
    let mut c = ContainerStats {
        id: cg.cref.id.clone(),
        name: cg.cref.id.chars().take(12).collect(),
        state: "running".into(),
        ..Default::default()
    };
    if let Some(pod) = &cg.cref.pod_uid {
        c.labels
            .insert("io.kubernetes.pod.uid".into(), pod.to_string());
    }
    fill(&mut c, cg);
    c
}

fn fill(c: &mut ContainerStats, cg: CgroupContainer) {
    let f = &cg.figures;
    c.cpu_percent = f.cpu_percent;
    c.online_cpus = f.online_cpus;
    c.memory_used_bytes = f.memory_used;
    c.memory_limit_bytes = f.memory_limit;
    c.memory_percent = f.memory_percent;
    c.net_rx_bytes = f.net.map(|n| n.0);
    c.net_tx_bytes = f.net.map(|n| n.1);
    c.block_read_bytes = f.block.map(|b| b.0);
    c.block_write_bytes = f.block.map(|b| b.1);
    c.pids = f.pids;
    c.runtime = Some(cg.cref.runtime.as_str().to_string());
    c.raw_stats = Some(Arc::new(engine_document(&c.id, &c.name, &cg)));
    c.cgroup = Some(cg.cgroup_path);
}

/// The readings in the shape of the Engine's stats document, with the fields `docker stats`
/// computes from (network summed over the container's interfaces, reported as `eth0`, the
/// one interface of a container on a bridge network).
pub fn engine_document(id: &str, name: &str, cg: &CgroupContainer) -> EngineStats {
    let cpu = |r: Option<CpuReading>| {
        r.map(|r| ContainerCpuStats {
            cpu_usage: Some(ContainerCpuUsage {
                total_usage: Some(r.total_usage),
                ..Default::default()
            }),
            system_cpu_usage: Some(r.system_usage),
            online_cpus: Some(r.online_cpus),
            ..Default::default()
        })
    };
    let inactive_key = if cg.v2 {
        "inactive_file"
    } else {
        "total_inactive_file"
    };
    let f = &cg.figures;
    EngineStats {
        id: Some(id.to_string()),
        name: Some(format!("/{name}")),
        cpu_stats: cpu(cg.cpu),
        precpu_stats: Some(cpu(cg.precpu).unwrap_or_default()),
        memory_stats: Some(ContainerMemoryStats {
            usage: cg.memory_usage,
            limit: f.memory_limit,
            stats: cg
                .inactive_file
                .map(|v| HashMap::from([(inactive_key.to_string(), v)])),
            ..Default::default()
        }),
        pids_stats: Some(ContainerPidsStats {
            current: f.pids,
            ..Default::default()
        }),
        blkio_stats: Some(ContainerBlkioStats {
            io_service_bytes_recursive: f.block.map(|(r, w)| {
                vec![
                    ContainerBlkioStatEntry {
                        op: Some("read".into()),
                        value: Some(r),
                        ..Default::default()
                    },
                    ContainerBlkioStatEntry {
                        op: Some("write".into()),
                        value: Some(w),
                        ..Default::default()
                    },
                ]
            }),
            ..Default::default()
        }),
        networks: f.net.map(|(rx, tx)| {
            HashMap::from([(
                "eth0".to_string(),
                ContainerNetworkStats {
                    rx_bytes: Some(rx),
                    tx_bytes: Some(tx),
                    ..Default::default()
                },
            )])
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::path::ContainerRef;
    use crate::docker::stats::Figures;

    fn cg(runtime: Runtime, id: &str) -> CgroupContainer {
        CgroupContainer {
            cref: ContainerRef {
                runtime,
                id: id.into(),
                pod_uid: None,
            },
            cgroup_path: format!("/x/{id}"),
            figures: Figures {
                pids: Some(2),
                memory_used: Some(10),
                ..Figures::default()
            },
            cpu: None,
            precpu: None,
            memory_usage: Some(10),
            inactive_file: Some(0),
            v2: true,
        }
    }

    fn meta(id: &str, name: &str, state: &str) -> Meta {
        Meta {
            id: id.into(),
            name: name.into(),
            state: state.into(),
            ..Meta::default()
        }
    }

    fn down() -> EngineAnswer {
        EngineAnswer {
            runtime: Runtime::Docker,
            containers: Err(ProbeError::Docker("gone".into())),
        }
    }

    #[test]
    fn docker_down_with_docker_cgroups_is_unavailable() {
        let (view, _) = merge(vec![down()], vec![cg(Runtime::Docker, "a")], 0);
        assert!(matches!(view, ContainersView::Unavailable { .. }));
        let (view, _) = merge(vec![down()], vec![], 0);
        assert!(matches!(view, ContainersView::Unavailable { .. }));
    }

    #[test]
    fn engineless_containers_appear_by_id_and_cgroup() {
        let (view, _) = merge(vec![down()], vec![cg(Runtime::Kubernetes, "k8s")], 0);
        let list = view.containers().expect("available");
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].id, "k8s");
        assert_eq!(list[0].runtime.as_deref(), Some("kubernetes"));
        assert_eq!(list[0].cgroup.as_deref(), Some("/x/k8s"));
        assert_eq!(list[0].pids, Some(2));
    }

    #[test]
    fn engine_names_cgroup_figures_and_missing_cgroup_asks_for_a_walk() {
        let docker = EngineAnswer {
            runtime: Runtime::Docker,
            containers: Ok(vec![
                meta("a", "web", "running"),
                meta("b", "new", "running"),
                meta("c", "old", "exited"),
            ]),
        };
        let (view, missing) = merge(
            vec![docker],
            vec![cg(Runtime::Docker, "a"), cg(Runtime::Docker, "zz")],
            0,
        );
        assert!(missing, "b runs with no cgroup found yet");
        let list = view.containers().expect("available");
        // zz: a Docker cgroup Docker does not list (between two readings) is left out.
        let names: Vec<&str> = list.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["new", "old", "web"]);
        let web = &list[2];
        assert_eq!(web.pids, Some(2));
        let doc = web.raw_stats.as_ref().expect("engine-shaped document");
        assert_eq!(doc.name.as_deref(), Some("/web"));
        assert_eq!(list[1].memory_used_bytes, Some(0), "stopped: zeros");
    }
}
