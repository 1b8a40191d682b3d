//! Host families of `/metrics`, shaped as node_exporter shapes them: CPU time as per-CPU,
//! per-mode `_seconds_total` counters, one gauge per memory figure (never totals and parts
//! under one label), load as three gauges, cumulative I/O as `_total` counters.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use lookout_probe::{ContainersView, Snapshot};

use super::encode::{counter, counters, gauge, gauges, Labels};

/// The host half of the latest snapshot, written at scrape time.
#[derive(Debug)]
pub struct HostCollector(pub Arc<Snapshot>);

impl Collector for HostCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.0;
        let h = &s.host;

        let core_names: Vec<String> = h
            .cpu
            .core_times
            .iter()
            .map(|(i, _)| i.to_string())
            .collect();
        let mut cpu_rows: Vec<(Labels, f64)> = Vec::with_capacity(core_names.len() * 8);
        for ((_, times), cpu) in h.cpu.core_times.iter().zip(&core_names) {
            for (mode, seconds) in times.seconds_by_mode() {
                cpu_rows.push((vec![("cpu", cpu.as_str()), ("mode", mode)], seconds));
            }
        }
        counters(
            &mut e,
            "lookout_host_cpu_seconds",
            "Seconds each CPU spent in each mode since boot (like node_cpu_seconds_total)",
            &cpu_rows,
        )?;

        let m = &h.memory;
        for (name, help, v) in [
            (
                "lookout_host_memory_total_bytes",
                "Memory the kernel can use (MemTotal)",
                m.total,
            ),
            (
                "lookout_host_memory_available_bytes",
                "Memory available for new work without swapping (MemAvailable)",
                m.available,
            ),
            (
                "lookout_host_memory_used_bytes",
                "Memory in use: total minus available",
                m.used,
            ),
            (
                "lookout_host_memory_free_bytes",
                "Memory not used at all (MemFree)",
                m.free,
            ),
            (
                "lookout_host_memory_buffers_bytes",
                "Memory in block device buffers (Buffers)",
                m.buffers,
            ),
            (
                "lookout_host_memory_cached_bytes",
                "Memory in the page cache (Cached)",
                m.cached,
            ),
            (
                "lookout_host_swap_total_bytes",
                "Swap space (SwapTotal)",
                m.swap_total,
            ),
            (
                "lookout_host_swap_free_bytes",
                "Swap space unused (SwapFree)",
                m.swap_free,
            ),
            (
                "lookout_host_swap_used_bytes",
                "Swap space in use: total minus free",
                m.swap_used,
            ),
        ] {
            gauge(&mut e, name, help, v)?;
        }

        gauge(
            &mut e,
            "lookout_host_load1",
            "Load average over 1 minute",
            h.load.one,
        )?;
        gauge(
            &mut e,
            "lookout_host_load5",
            "Load average over 5 minutes",
            h.load.five,
        )?;
        gauge(
            &mut e,
            "lookout_host_load15",
            "Load average over 15 minutes",
            h.load.fifteen,
        )?;
        gauge(
            &mut e,
            "lookout_host_uptime_seconds",
            "Seconds since the host booted",
            h.uptime_secs,
        )?;

        let fs_rows = |pick: fn(&lookout_probe::Filesystem) -> u64| -> Vec<(Labels, u64)> {
            h.filesystems
                .iter()
                .map(|f| {
                    let labels = vec![
                        ("device", f.device.as_str()),
                        ("mountpoint", f.mount_point.as_str()),
                        ("fstype", f.fs_type.as_str()),
                    ];
                    (labels, pick(f))
                })
                .collect()
        };
        gauges(
            &mut e,
            "lookout_host_filesystem_size_bytes",
            "Filesystem size",
            &fs_rows(|f| f.size_bytes),
        )?;
        gauges(
            &mut e,
            "lookout_host_filesystem_used_bytes",
            "Filesystem space in use",
            &fs_rows(|f| f.used_bytes),
        )?;
        gauges(
            &mut e,
            "lookout_host_filesystem_avail_bytes",
            "Filesystem space available to unprivileged users",
            &fs_rows(|f| f.available_bytes),
        )?;

        let net_rows = |pick: fn(&lookout_probe::NetInterface) -> u64| -> Vec<(Labels, u64)> {
            h.network
                .iter()
                .map(|n| (vec![("device", n.name.as_str())], pick(n)))
                .collect()
        };
        for (name, help, pick) in [
            (
                "lookout_host_network_receive_bytes",
                "Bytes received on a network interface",
                (|n: &lookout_probe::NetInterface| n.rx_bytes) as fn(&_) -> u64,
            ),
            (
                "lookout_host_network_transmit_bytes",
                "Bytes sent on a network interface",
                |n| n.tx_bytes,
            ),
            (
                "lookout_host_network_receive_packets",
                "Packets received on a network interface",
                |n| n.rx_packets,
            ),
            (
                "lookout_host_network_transmit_packets",
                "Packets sent on a network interface",
                |n| n.tx_packets,
            ),
            (
                "lookout_host_network_receive_errs",
                "Receive errors on a network interface",
                |n| n.rx_errors,
            ),
            (
                "lookout_host_network_transmit_errs",
                "Transmit errors on a network interface",
                |n| n.tx_errors,
            ),
            (
                "lookout_host_network_receive_drop",
                "Received packets dropped on a network interface",
                |n| n.rx_dropped,
            ),
            (
                "lookout_host_network_transmit_drop",
                "Outgoing packets dropped on a network interface",
                |n| n.tx_dropped,
            ),
        ] {
            counters(&mut e, name, help, &net_rows(pick))?;
        }

        let disk_rows = |pick: fn(&lookout_probe::DiskIo) -> u64| -> Vec<(Labels, u64)> {
            h.disks
                .iter()
                .map(|d| (vec![("device", d.name.as_str())], pick(d)))
                .collect()
        };
        for (name, help, pick) in [
            (
                "lookout_host_disk_read_bytes",
                "Bytes read from a block device",
                (|d: &lookout_probe::DiskIo| d.read_bytes) as fn(&_) -> u64,
            ),
            (
                "lookout_host_disk_written_bytes",
                "Bytes written to a block device",
                |d| d.written_bytes,
            ),
            (
                "lookout_host_disk_reads_completed",
                "Reads completed on a block device",
                |d| d.reads_completed,
            ),
            (
                "lookout_host_disk_writes_completed",
                "Writes completed on a block device",
                |d| d.writes_completed,
            ),
        ] {
            counters(&mut e, name, help, &disk_rows(pick))?;
        }

        let docker_up = matches!(s.containers, ContainersView::Available { .. });
        gauge(
            &mut e,
            "lookout_docker_up",
            "1 when the Docker engine answered at the latest sample",
            u8::from(docker_up) as u64,
        )?;
        gauge(
            &mut e,
            "lookout_sample_timestamp_seconds",
            "When the latest sample was taken, seconds since the Unix epoch",
            s.taken_at_ms as f64 / 1000.0,
        )?;
        counter(
            &mut e,
            "lookout_samples",
            "Samples taken since lookout started",
            s.tick,
        )?;
        Ok(())
    }
}
