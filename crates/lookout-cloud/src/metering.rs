//! Metering and rating, pure: usage accumulated from lookout's own snapshots, rated with a
//! price list into exact money.
//!
//! Between two snapshots `dt` apart, a container labelled `lookout.team=<project_id>` adds
//! `cpu% / 100 × dt` core-milliseconds, `memory_used × dt` MiB-milliseconds and, while
//! running, `dt` running milliseconds (the right-endpoint rule: the figures of the later
//! snapshot cover the interval). Gaps longer than [`MAX_GAP_MS`] (lookout was stopped) are not
//! billed. Usage is kept per team, calendar month (UTC) and rack — the compose project or
//! `lookout.rack` label — or, for a container in no rack, per device.

use std::collections::{BTreeMap, HashMap};

use lookout_probe::{ContainerStats, Snapshot};

use crate::money::{div_round, Money, Price, NANOS_PER_MINOR};

/// Label naming the team (project id) a container belongs to.
pub const TEAM_LABEL: &str = "lookout.team";
/// Label naming the rack a container belongs to.
pub const RACK_LABEL: &str = "lookout.rack";
/// Docker Compose's project label: a compose project is a rack.
pub const COMPOSE_PROJECT_LABEL: &str = "com.docker.compose.project";
/// Longest interval between two snapshots that is billed.
pub const MAX_GAP_MS: i64 = 60_000;

const MS_PER_HOUR: i128 = 3_600_000;
const MIB_PER_GIB: i128 = 1024;

/// Which rack a container belongs to, if any (`lookout.rack` wins over the compose project).
pub fn rack_of(c: &ContainerStats) -> Option<&str> {
    c.labels
        .get(RACK_LABEL)
        .or_else(|| c.labels.get(COMPOSE_PROJECT_LABEL))
        .map(String::as_str)
        .filter(|s| !s.is_empty())
}

/// The team a container belongs to, if any.
pub fn team_of(c: &ContainerStats) -> Option<&str> {
    c.labels
        .get(TEAM_LABEL)
        .map(String::as_str)
        .filter(|s| !s.is_empty())
}

/// Accumulated usage, in integer units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub cpu_core_ms: i64,
    pub mem_mib_ms: i64,
    pub running_ms: i64,
    /// GiB-milliseconds of allocated disk (an OpenStack flavour's `local_gb`; containers have
    /// no fixed disk size, so the local backend leaves it 0).
    pub disk_gib_ms: i64,
}

impl Usage {
    pub fn is_zero(&self) -> bool {
        *self == Usage::default()
    }

    pub fn add(&mut self, o: &Usage) {
        self.cpu_core_ms = self.cpu_core_ms.saturating_add(o.cpu_core_ms);
        self.mem_mib_ms = self.mem_mib_ms.saturating_add(o.mem_mib_ms);
        self.running_ms = self.running_ms.saturating_add(o.running_ms);
        self.disk_gib_ms = self.disk_gib_ms.saturating_add(o.disk_gib_ms);
    }

    pub fn cpu_core_hours(&self) -> f64 {
        self.cpu_core_ms as f64 / MS_PER_HOUR as f64
    }

    pub fn memory_gb_hours(&self) -> f64 {
        self.mem_mib_ms as f64 / (MS_PER_HOUR * MIB_PER_GIB) as f64
    }

    pub fn running_hours(&self) -> f64 {
        self.running_ms as f64 / MS_PER_HOUR as f64
    }

    pub fn disk_gb_hours(&self) -> f64 {
        self.disk_gib_ms as f64 / MS_PER_HOUR as f64
    }
}

/// What a usage line is billed against.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceKind {
    Rack,
    Device,
}

impl ResourceKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ResourceKind::Rack => "rack",
            ResourceKind::Device => "device",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "rack" => Some(ResourceKind::Rack),
            "device" => Some(ResourceKind::Device),
            _ => None,
        }
    }
}

/// One usage line: a team's rack or device in one month.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UsageKey {
    pub team: String,
    /// `YYYY-MM` (UTC).
    pub period: String,
    pub kind: ResourceKind,
    /// Rack name, or the container's id.
    pub resource_id: String,
    /// Rack name, or the container's name.
    pub resource_name: String,
}

/// `YYYY-MM` of a Unix time in milliseconds (UTC).
pub fn period_of(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}", t.year(), u8::from(t.month()))
}

/// Usage of one container over `dt_ms`, from the later snapshot's figures.
pub fn interval_usage(
    cpu_percent: Option<f64>,
    memory_bytes: Option<u64>,
    running: bool,
    dt_ms: i64,
) -> Usage {
    if dt_ms <= 0 {
        return Usage::default();
    }
    let cpu = cpu_percent
        .filter(|p| p.is_finite() && *p > 0.0)
        .map(|p| (p * dt_ms as f64 / 100.0).round() as i64)
        .unwrap_or(0);
    let mem = memory_bytes
        .map(|b| {
            let v = div_round(i128::from(b) * i128::from(dt_ms), 1 << 20);
            i64::try_from(v).unwrap_or(i64::MAX)
        })
        .unwrap_or(0);
    Usage {
        cpu_core_ms: cpu,
        mem_mib_ms: mem,
        running_ms: if running { dt_ms } else { 0 },
        disk_gib_ms: 0,
    }
}

/// Accumulates usage from successive snapshots. Feed it every snapshot in order.
#[derive(Debug, Default)]
pub struct Meter {
    /// container id → time of its previous sighting (ms).
    last_seen: HashMap<String, i64>,
    /// Usage not yet taken by [`Meter::take`].
    pending: BTreeMap<UsageKey, Usage>,
}

impl Meter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the usage of the interval ending at `snapshot`.
    pub fn observe(&mut self, snapshot: &Snapshot) {
        let Some(containers) = snapshot.containers.containers() else {
            // Engine unreachable: we know nothing about this interval; start afresh.
            self.last_seen.clear();
            return;
        };
        let now = snapshot.taken_at_ms;
        let mut seen = HashMap::with_capacity(self.last_seen.len());
        for c in containers {
            let Some(team) = team_of(c) else { continue };
            seen.insert(c.id.clone(), now);
            let Some(prev) = self.last_seen.get(&c.id) else {
                continue;
            };
            let dt = now - prev;
            if dt <= 0 || dt > MAX_GAP_MS {
                continue;
            }
            let live = matches!(c.state.as_str(), "running" | "paused");
            if !live {
                continue;
            }
            let u = interval_usage(c.cpu_percent, c.memory_used_bytes, c.state == "running", dt);
            self.record(container_key(c, team, now), &u);
        }
        self.last_seen = seen;
    }

    /// Adds usage to a line directly (tests, replays).
    pub fn record(&mut self, key: UsageKey, u: &Usage) {
        if u.is_zero() {
            return;
        }
        self.pending.entry(key).or_default().add(u);
    }

    /// Usage accumulated since the last take, without taking it.
    pub fn pending(&self) -> &BTreeMap<UsageKey, Usage> {
        &self.pending
    }

    /// Takes the usage accumulated so far (to be persisted).
    pub fn take(&mut self) -> BTreeMap<UsageKey, Usage> {
        std::mem::take(&mut self.pending)
    }

    /// Puts usage back (a persist that failed), adding to anything recorded meanwhile.
    pub fn restore(&mut self, lines: BTreeMap<UsageKey, Usage>) {
        for (k, u) in lines {
            self.pending.entry(k).or_default().add(&u);
        }
    }
}

fn container_key(c: &ContainerStats, team: &str, now_ms: i64) -> UsageKey {
    let (kind, id, name) = match rack_of(c) {
        Some(r) => (ResourceKind::Rack, r.to_string(), r.to_string()),
        None => (ResourceKind::Device, c.id.clone(), c.name.clone()),
    };
    UsageKey {
        team: team.to_string(),
        period: period_of(now_ms),
        kind,
        resource_id: id,
        resource_name: name,
    }
}

/// Prices per unit-hour, exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceList {
    /// ISO 4217 code shown on invoices.
    pub currency: String,
    pub cpu_core_hour: Price,
    /// Per GiB-hour of memory in use.
    pub memory_gb_hour: Price,
    /// Per hour a container is running.
    pub running_hour: Price,
    /// Per GiB-hour of allocated disk.
    pub disk_gb_hour: Price,
}

impl Default for PriceList {
    fn default() -> Self {
        Self {
            currency: "GBP".into(),
            cpu_core_hour: Price(0),
            memory_gb_hour: Price(0),
            running_hour: Price(0),
            disk_gb_hour: Price(0),
        }
    }
}

impl PriceList {
    /// The cost of `u`, rounded once to minor units (halves away from zero).
    pub fn rate(&self, u: &Usage) -> Money {
        let (num, den) = self.rate_nanos_times_den(u);
        Money(i64::try_from(div_round(num, den)).unwrap_or(i64::MAX))
    }

    /// The exact cost of `u` as a fraction of minor units (before rounding), for tests and
    /// audits. Everything is over the common denominator MS_PER_HOUR × MIB_PER_GIB ×
    /// NANOS_PER_MINOR.
    pub fn rate_nanos_times_den(&self, u: &Usage) -> (i128, i128) {
        let num = i128::from(u.cpu_core_ms) * self.cpu_core_hour.0 * MIB_PER_GIB
            + i128::from(u.mem_mib_ms) * self.memory_gb_hour.0
            + i128::from(u.running_ms) * self.running_hour.0 * MIB_PER_GIB
            + i128::from(u.disk_gib_ms) * self.disk_gb_hour.0 * MIB_PER_GIB;
        (num, MS_PER_HOUR * MIB_PER_GIB * NANOS_PER_MINOR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_core_for_an_hour_at_a_price() {
        let p = PriceList {
            currency: "GBP".into(),
            cpu_core_hour: Price::parse("0.04").unwrap(),
            memory_gb_hour: Price::parse("0.01").unwrap(),
            running_hour: Price::parse("0.005").unwrap(),
            disk_gb_hour: Price::parse("0.0001").unwrap(),
        };
        let u = Usage {
            cpu_core_ms: 3_600_000,
            mem_mib_ms: 2 * 1024 * 3_600_000,
            running_ms: 3_600_000,
            disk_gib_ms: 0,
        };
        // 0.04 + 0.02 + 0.005 = 0.065 → 0.07 (half away from zero)
        assert_eq!(p.rate(&u), Money(7));
        // 100 GiB of disk for 20 hours at 0.0001 = 0.20 more
        let with_disk = Usage {
            disk_gib_ms: 100 * 20 * 3_600_000,
            ..u
        };
        assert_eq!(p.rate(&with_disk), Money(27));
        assert_eq!(period_of(0), "1970-01");
        assert_eq!(period_of(1_717_200_000_000), "2024-06");
    }

    fn snapshot(at: i64, containers: Vec<ContainerStats>) -> Snapshot {
        Snapshot {
            taken_at_ms: at,
            tick: 1,
            host: Default::default(),
            containers: lookout_probe::ContainersView::Available { containers },
            gpu: Default::default(),
            processes: None,
        }
    }

    fn container(id: &str, state: &str, labels: &[(&str, &str)]) -> ContainerStats {
        ContainerStats {
            id: id.into(),
            name: format!("n-{id}"),
            image: "i".into(),
            state: state.into(),
            status: String::new(),
            created: 0,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            cpu_percent: Some(100.0),
            online_cpus: Some(2),
            memory_used_bytes: Some(1 << 30),
            ..Default::default()
        }
    }

    #[test]
    fn meter_bills_labelled_containers_per_rack_or_device() {
        let t0 = 1_717_200_000_000; // 2024-06-01
        let both = |state: &str| {
            vec![
                container(
                    "a",
                    state,
                    &[(TEAM_LABEL, "t1"), (COMPOSE_PROJECT_LABEL, "web")],
                ),
                container("b", state, &[(TEAM_LABEL, "t1")]),
                container("c", state, &[]),
            ]
        };
        let mut m = Meter::new();
        m.observe(&snapshot(t0, both("running")));
        assert!(m.pending().is_empty(), "a first sighting bills nothing");
        m.observe(&snapshot(t0 + 1000, both("running")));
        m.observe(&snapshot(t0 + 2000, both("paused")));
        // A gap longer than MAX_GAP_MS (lookout was down) is not billed.
        m.observe(&snapshot(t0 + 2000 + MAX_GAP_MS + 1, both("running")));
        let lines = m.take();
        assert_eq!(lines.len(), 2);
        let rack = lines
            .iter()
            .find(|(k, _)| k.kind == ResourceKind::Rack)
            .unwrap();
        assert_eq!(rack.0.resource_id, "web");
        assert_eq!(rack.0.period, "2024-06");
        // running 1 s + paused 1 s: CPU and memory both seconds, running only the first.
        assert_eq!(rack.1.cpu_core_ms, 2000);
        assert_eq!(rack.1.mem_mib_ms, 1024 * 2000);
        assert_eq!(rack.1.running_ms, 1000);
        let dev = lines
            .iter()
            .find(|(k, _)| k.kind == ResourceKind::Device)
            .unwrap();
        assert_eq!(
            (dev.0.resource_id.as_str(), dev.0.resource_name.as_str()),
            ("b", "n-b")
        );
        assert!(m.pending().is_empty());
    }

    #[test]
    fn interval_units() {
        let u = interval_usage(Some(50.0), Some(1 << 20), true, 1000);
        assert_eq!(u.cpu_core_ms, 500);
        assert_eq!(u.mem_mib_ms, 1000);
        assert_eq!(u.running_ms, 1000);
        assert!(interval_usage(None, None, false, 1000).is_zero());
    }
}
