//! Which figure of a [`Snapshot`] a rule watches, and how to read its value for every
//! instance (the host, each mount, interface, disk, container or GPU) without allocating.

use std::collections::BTreeMap;

use lookout_probe::gpu::GpuStats;
use lookout_probe::sensors::{HwmonSensor, SensorKind};
use lookout_probe::{ContainerStats, DiskIo, Filesystem, NetInterface, Snapshot};

/// What kind of thing a figure belongs to; decides the instance labels and what `match` filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Host,
    Filesystem,
    Interface,
    Disk,
    Container,
    Gpu,
    /// One hwmon reading (`chip/sensor`).
    Sensor,
}

macro_rules! figures {
    ($( $variant:ident = $name:literal, $scope:ident, $help:literal; )*) => {
        /// Every figure a rule can watch.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Figure { $( $variant, )* }

        impl Figure {
            pub const ALL: &'static [Figure] = &[ $( Figure::$variant, )* ];
            pub fn name(self) -> &'static str { match self { $( Figure::$variant => $name, )* } }
            pub fn scope(self) -> Scope { match self { $( Figure::$variant => Scope::$scope, )* } }
            /// One line for docs and error messages.
            pub fn help(self) -> &'static str { match self { $( Figure::$variant => $help, )* } }
            pub fn parse(name: &str) -> Option<Figure> {
                match name { $( $name => Some(Figure::$variant), )* _ => None }
            }
        }
    };
}

figures! {
    HostCpuUsage = "host.cpu.usage_percent", Host, "host CPU busy %, all cores (0..100)";
    HostCpuIowait = "host.cpu.iowait_percent", Host, "host CPU iowait %";
    HostMemoryUsed = "host.memory.used_percent", Host, "host memory used % (total - available)";
    HostSwapUsed = "host.swap.used_percent", Host, "host swap used % (0 without swap)";
    HostLoad1 = "host.load1", Host, "1-minute load average";
    HostLoad5 = "host.load5", Host, "5-minute load average";
    HostLoad15 = "host.load15", Host, "15-minute load average";
    FsUsed = "host.filesystem.used_percent", Filesystem, "filesystem use % per mount point (as df)";
    NetRx = "host.network.rx_bytes_per_sec", Interface, "bytes received per second per interface";
    NetTx = "host.network.tx_bytes_per_sec", Interface, "bytes sent per second per interface";
    DiskRead = "host.disk.read_bytes_per_sec", Disk, "bytes read per second per block device";
    DiskWrite = "host.disk.written_bytes_per_sec", Disk, "bytes written per second per block device";
    DiskBusy = "host.disk.busy_percent", Disk, "share of time a block device had I/O in flight, %";
    DockerUp = "docker.up", Host, "1 when the Docker engine answers, else 0";
    ContainerCpu = "container.cpu_percent", Container, "container CPU % as docker stats (0..cores x 100)";
    ContainerMemoryUsed = "container.memory_used_bytes", Container, "container memory used, bytes";
    ContainerMemoryPercent = "container.memory_percent", Container, "container memory used, % of its limit";
    ContainerPids = "container.pids", Container, "processes in the container";
    ContainerRunning = "container.running", Container, "1 while the container's state is running, else 0";
    ContainerRestarting = "container.restarting", Container, "1 while Docker is restarting the container, else 0";
    ContainerRestartCount = "container.restart_count", Container, "times the engine restarted the container (restart policy) since it was created";
    GpuUtilization = "gpu.utilization_percent", Gpu, "GPU busy % (kernel running)";
    GpuMemoryUsed = "gpu.memory_used_percent", Gpu, "GPU memory used %";
    GpuTemperature = "gpu.temperature_celsius", Gpu, "GPU temperature, degrees Celsius";
    GpuPower = "gpu.power_watts", Gpu, "GPU power draw, watts";
    HostTemperatureMax = "host.temperature_max_celsius", Host, "hottest hwmon temperature or thermal zone of the host, degrees Celsius (absent without sensors)";
    SensorTemperature = "sensor.temperature_celsius", Sensor, "each hwmon temperature, degrees Celsius (match.name: the chip, e.g. platform_coretemp_0)";
    SensorTemperatureToCrit = "sensor.temperature_below_crit_celsius", Sensor, "degrees left before each hwmon temperature's critical threshold (sensors with one)";
    SensorFan = "sensor.fan_rpm", Sensor, "each hwmon fan, revolutions per minute";
    SensorVoltage = "sensor.voltage_volts", Sensor, "each hwmon voltage, volts";
}

/// One instance of a figure in a snapshot.
#[derive(Debug, Clone, Copy)]
pub enum Instance<'a> {
    Host(&'a str),
    Filesystem(&'a Filesystem),
    Interface(&'a NetInterface),
    Disk(&'a DiskIo),
    Container(&'a ContainerStats),
    Gpu(&'a GpuStats),
    Sensor(&'a HwmonSensor),
}

impl<'a> Instance<'a> {
    /// Tells instances of one figure apart (stable across ticks): mount point, interface,
    /// device, container name or GPU UUID; empty for the host.
    pub fn key(&self) -> &'a str {
        match self {
            Instance::Host(_) => "",
            Instance::Filesystem(f) => &f.mount_point,
            Instance::Interface(i) => &i.name,
            Instance::Disk(d) => &d.name,
            Instance::Container(c) => &c.name,
            Instance::Gpu(g) => &g.uuid,
            Instance::Sensor(x) => &x.id,
        }
    }

    /// What a rule's `match.name` pattern is compared with.
    pub fn match_name(&self) -> &'a str {
        match self {
            Instance::Gpu(g) => &g.name,
            Instance::Sensor(x) => &x.chip,
            other => other.key(),
        }
    }

    /// Docker labels (containers only).
    pub fn docker_labels(&self) -> Option<&'a BTreeMap<String, String>> {
        match self {
            Instance::Container(c) => Some(&c.labels),
            _ => None,
        }
    }

    /// The labels an alert on this instance carries (built only when an alert changes state).
    pub fn labels(&self, host: &str) -> BTreeMap<String, String> {
        let mut l = BTreeMap::new();
        l.insert("host".to_owned(), host.to_owned());
        match self {
            Instance::Host(_) => {}
            Instance::Filesystem(f) => {
                l.insert("mountpoint".into(), f.mount_point.clone());
                l.insert("device".into(), f.device.clone());
            }
            Instance::Interface(i) => {
                l.insert("interface".into(), i.name.clone());
            }
            Instance::Disk(d) => {
                l.insert("device".into(), d.name.clone());
            }
            Instance::Container(c) => {
                l.insert("container".into(), c.name.clone());
                l.insert("image".into(), c.image.clone());
            }
            Instance::Gpu(g) => {
                l.insert("gpu".into(), g.index.to_string());
                l.insert("gpu_uuid".into(), g.uuid.clone());
                l.insert("gpu_name".into(), g.name.clone());
            }
            Instance::Sensor(x) => {
                l.insert("chip".into(), x.chip.clone());
                l.insert("sensor".into(), x.sensor.clone());
                if let Some(label) = &x.label {
                    l.insert("label".into(), label.clone());
                }
            }
        }
        l
    }
}

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

impl Scope {
    /// Every scope, in the order of [`Scope::index`].
    pub const ALL: [Scope; 7] = [
        Scope::Host,
        Scope::Filesystem,
        Scope::Interface,
        Scope::Disk,
        Scope::Container,
        Scope::Gpu,
        Scope::Sensor,
    ];

    /// A dense index, for per-scope tables.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Calls `f` with the key of every instance of `scope` in `s`, in the order in which
/// [`for_each_value`] numbers them.
pub fn for_each_key<'a>(scope: Scope, s: &'a Snapshot, mut f: impl FnMut(&'a str)) {
    let h = &s.host;
    match scope {
        Scope::Host => f(Instance::Host(&h.hostname).key()),
        Scope::Filesystem => h.filesystems.iter().for_each(|x| f(&x.mount_point)),
        Scope::Interface => h.network.iter().for_each(|x| f(&x.name)),
        Scope::Disk => h.disks.iter().for_each(|x| f(&x.name)),
        Scope::Container => s
            .containers
            .containers()
            .unwrap_or(&[])
            .iter()
            .for_each(|x| f(&x.name)),
        Scope::Gpu => s.gpu.gpus.iter().for_each(|x| f(&x.uuid)),
        Scope::Sensor => h.sensors.hwmon.iter().for_each(|x| f(&x.id)),
    }
}

/// Calls `f` with every instance of `figure` in `s` that has a value this tick, its position
/// among the instances of its scope (see [`for_each_key`]) and the value.
pub fn for_each_value<'a>(
    figure: Figure,
    s: &'a Snapshot,
    mut f: impl FnMut(Instance<'a>, usize, f64),
) {
    let h = &s.host;
    let host = Instance::Host(&h.hostname);
    match figure {
        Figure::HostCpuUsage => f(host, 0, h.cpu.total.usage),
        Figure::HostCpuIowait => f(host, 0, h.cpu.total.iowait),
        Figure::HostMemoryUsed => f(host, 0, h.memory.used_percent),
        Figure::HostSwapUsed => {
            let m = &h.memory;
            let pct = if m.swap_total == 0 {
                0.0
            } else {
                m.swap_used as f64 / m.swap_total as f64 * 100.0
            };
            f(host, 0, pct)
        }
        Figure::HostLoad1 => f(host, 0, h.load.one),
        Figure::HostLoad5 => f(host, 0, h.load.five),
        Figure::HostLoad15 => f(host, 0, h.load.fifteen),
        Figure::DockerUp => f(host, 0, flag(s.containers.containers().is_some())),
        Figure::FsUsed => h
            .filesystems
            .iter()
            .enumerate()
            .for_each(|(i, x)| f(Instance::Filesystem(x), i, x.used_percent)),
        Figure::NetRx => h
            .network
            .iter()
            .enumerate()
            .for_each(|(i, x)| f(Instance::Interface(x), i, x.rx_bytes_per_sec)),
        Figure::NetTx => h
            .network
            .iter()
            .enumerate()
            .for_each(|(i, x)| f(Instance::Interface(x), i, x.tx_bytes_per_sec)),
        Figure::DiskRead => h
            .disks
            .iter()
            .enumerate()
            .for_each(|(i, x)| f(Instance::Disk(x), i, x.read_bytes_per_sec)),
        Figure::DiskWrite => h
            .disks
            .iter()
            .enumerate()
            .for_each(|(i, x)| f(Instance::Disk(x), i, x.written_bytes_per_sec)),
        Figure::DiskBusy => h
            .disks
            .iter()
            .enumerate()
            .for_each(|(i, x)| f(Instance::Disk(x), i, x.busy_percent)),
        Figure::ContainerCpu
        | Figure::ContainerMemoryUsed
        | Figure::ContainerMemoryPercent
        | Figure::ContainerPids
        | Figure::ContainerRunning
        | Figure::ContainerRestarting
        | Figure::ContainerRestartCount => {
            for (i, c) in s.containers.containers().unwrap_or(&[]).iter().enumerate() {
                let v = match figure {
                    Figure::ContainerCpu => c.cpu_percent,
                    Figure::ContainerMemoryUsed => c.memory_used_bytes.map(|b| b as f64),
                    Figure::ContainerMemoryPercent => c.memory_percent,
                    Figure::ContainerPids => c.pids.map(|p| p as f64),
                    Figure::ContainerRunning => Some(flag(c.state == "running")),
                    Figure::ContainerRestartCount => c.restart_count.map(|n| n as f64),
                    _ => Some(flag(c.state == "restarting")),
                };
                if let Some(v) = v {
                    f(Instance::Container(c), i, v)
                }
            }
        }
        Figure::GpuUtilization
        | Figure::GpuMemoryUsed
        | Figure::GpuTemperature
        | Figure::GpuPower => {
            for (i, g) in s.gpu.gpus.iter().enumerate() {
                let v = match figure {
                    Figure::GpuUtilization => g.utilization_gpu_percent.map(f64::from),
                    Figure::GpuMemoryUsed => g.memory.as_ref().map(|m| m.used_percent),
                    Figure::GpuTemperature => g.temperature_celsius.map(f64::from),
                    _ => g.power_draw_watts,
                };
                if let Some(v) = v {
                    f(Instance::Gpu(g), i, v)
                }
            }
        }
        Figure::HostTemperatureMax => {
            if let Some(t) = h.sensors.max_temperature() {
                f(host, 0, t)
            }
        }
        Figure::SensorTemperature
        | Figure::SensorTemperatureToCrit
        | Figure::SensorFan
        | Figure::SensorVoltage => {
            let kind = match figure {
                Figure::SensorFan => SensorKind::Fan,
                Figure::SensorVoltage => SensorKind::Voltage,
                _ => SensorKind::Temperature,
            };
            // Numbered among all readings, as `for_each_key` lists them.
            for (i, x) in h.sensors.hwmon.iter().enumerate() {
                if x.kind != kind {
                    continue;
                }
                let v = match figure {
                    Figure::SensorTemperatureToCrit => x.crit.map(|c| c - x.value),
                    _ => Some(x.value),
                };
                if let Some(v) = v {
                    f(Instance::Sensor(x), i, v)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_figure_name_parses_back() {
        for f in Figure::ALL {
            assert_eq!(Figure::parse(f.name()), Some(*f));
        }
        assert_eq!(Figure::parse("host.cpu"), None);
    }

    /// Sensor figures read the captured sysfs tree of the probe's tests.
    #[test]
    fn sensor_figures_from_a_captured_tree() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../lookout-probe/tests/fixtures/sysfs-node-exporter");
        let s = Snapshot {
            taken_at_ms: 0,
            tick: 1,
            host: lookout_probe::HostSnapshot {
                hostname: "h".into(),
                sensors: lookout_probe::sensors::read(&root),
                ..Default::default()
            },
            containers: lookout_probe::ContainersView::Unavailable {
                reason: "off".into(),
            },
            gpu: Default::default(),
            processes: None,
        };
        let collect = |fig| {
            let mut v = Vec::new();
            for_each_value(fig, &s, |i, _, x| v.push((i.key().to_string(), x)));
            v
        };
        assert_eq!(collect(Figure::HostTemperatureMax), [(String::new(), 55.0)]);
        let temps = collect(Figure::SensorTemperature);
        assert_eq!(temps.len(), 5);
        assert_eq!(temps[0], ("platform_coretemp_1/temp1".to_string(), 55.0));
        assert_eq!(
            collect(Figure::SensorTemperatureToCrit)[0],
            ("platform_coretemp_1/temp1".to_string(), 45.0)
        );
        assert_eq!(
            collect(Figure::SensorFan),
            [("nct6779/fan2".to_string(), 1098.0)]
        );
        assert_eq!(collect(Figure::SensorVoltage).len(), 2);
        let mut labels = None;
        for_each_value(Figure::SensorTemperature, &s, |i, _, _| {
            labels.get_or_insert_with(|| i.labels("h"));
        });
        let labels = labels.unwrap();
        assert_eq!(labels["label"], "Physical id 0");
        assert_eq!(labels["chip"], "platform_coretemp_1");
    }
}
