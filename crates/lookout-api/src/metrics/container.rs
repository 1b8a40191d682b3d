//! Container families of `/metrics`, shaped as cAdvisor shapes them: CPU time as a
//! `_seconds_total` counter, the working set as a gauge, network and block I/O as `_total`
//! counters, all labelled `id` and `name`.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use lookout_probe::{ContainerStats, Snapshot};

use super::encode::{counters, gauges, Labels};

/// The container half of the latest snapshot, written at scrape time.
#[derive(Debug)]
pub struct ContainerCollector(pub Arc<Snapshot>);

fn id_name(c: &ContainerStats) -> Labels<'_> {
    vec![("id", c.id.as_str()), ("name", c.name.as_str())]
}

/// Rows of one figure, for the containers that have it.
fn rows<V>(
    list: &[ContainerStats],
    pick: impl Fn(&ContainerStats) -> Option<V>,
) -> Vec<(Labels<'_>, V)> {
    list.iter()
        .filter_map(|c| pick(c).map(|v| (id_name(c), v)))
        .collect()
}

impl Collector for ContainerCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(list) = self.0.containers.containers() else {
            return Ok(());
        };
        let running: Vec<(Labels, u64)> = list
            .iter()
            .map(|c| {
                let mut labels = id_name(c);
                labels.push(("image", c.image.as_str()));
                (labels, u64::from(c.state == "running"))
            })
            .collect();
        gauges(
            &mut e,
            "lookout_container_running",
            "1 when the container is running",
            &running,
        )?;
        counters(
            &mut e,
            "lookout_container_cpu_usage_seconds",
            "CPU time the container used, all CPUs together (like container_cpu_usage_seconds_total)",
            &rows(list, ContainerStats::cpu_usage_seconds),
        )?;
        gauges(
            &mut e,
            "lookout_container_memory_working_set_bytes",
            "Container memory as docker stats shows it: usage minus inactive file cache",
            &rows(list, |c| c.memory_used_bytes),
        )?;
        gauges(
            &mut e,
            "lookout_container_memory_limit_bytes",
            "Container memory limit (the host's memory when none is set)",
            &rows(list, |c| c.memory_limit_bytes),
        )?;
        counters(
            &mut e,
            "lookout_container_network_receive_bytes",
            "Bytes the container received, all interfaces together",
            &rows(list, |c| c.net_rx_bytes),
        )?;
        counters(
            &mut e,
            "lookout_container_network_transmit_bytes",
            "Bytes the container sent, all interfaces together",
            &rows(list, |c| c.net_tx_bytes),
        )?;
        counters(
            &mut e,
            "lookout_container_fs_reads_bytes",
            "Bytes the container read from block devices",
            &rows(list, |c| c.block_read_bytes),
        )?;
        counters(
            &mut e,
            "lookout_container_fs_writes_bytes",
            "Bytes the container wrote to block devices",
            &rows(list, |c| c.block_write_bytes),
        )?;
        gauges(
            &mut e,
            "lookout_container_pids",
            "Processes and threads in the container",
            &rows(list, |c| c.pids),
        )?;
        Ok(())
    }
}
