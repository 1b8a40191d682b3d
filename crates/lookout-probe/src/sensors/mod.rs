//! Temperatures, fans and voltages from `<sys_root>/class/hwmon` and the thermal zones of
//! `<sys_root>/class/thermal`, with their labels and thresholds.
//!
//! Read every `every_ticks` ticks (some hwmon drivers answer slowly, e.g. those that ask an
//! embedded controller or a disk); a host without any sensors (VMs, containers without
//! `/sys` mounted) gets empty lists.

#![forbid(unsafe_code)]

pub mod parse;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use utoipa::ToSchema;

use parse::Attribute;
pub use parse::SensorKind;

/// Most hwmon chips and sensors per chip read (a bound against a misbehaving driver).
const MAX_CHIPS: usize = 256;
const MAX_SENSORS_PER_CHIP: usize = 256;
const MAX_ZONES: usize = 256;

/// One hwmon reading with its thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HwmonSensor {
    /// `<chip>/<sensor>`: names this reading across ticks and restarts.
    pub id: String,
    /// node_exporter's chip label: `<bus type>_<device>` (e.g. `platform_coretemp_0`), else the driver's name.
    pub chip: String,
    /// The driver's `name` file (e.g. `coretemp`, `nvme`, `nct6779`).
    pub chip_name: Option<String>,
    /// The sysfs sensor name, e.g. `temp1`, `fan2`, `in0`.
    pub sensor: String,
    pub kind: SensorKind,
    /// The driver's label, e.g. `Package id 0`, `Composite`.
    pub label: Option<String>,
    /// °C for temperatures, RPM for fans, volts for voltages.
    pub value: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub crit: Option<f64>,
}

/// A kernel thermal zone.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ThermalZone {
    /// The zone number (`thermal_zone<N>`).
    pub zone: String,
    /// The zone's type, e.g. `x86_pkg_temp`, `acpitz`, `cpu-thermal`.
    #[serde(rename = "type")]
    pub zone_type: String,
    pub temp_celsius: f64,
}

/// Every sensor of the host; empty where none are exposed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct Sensors {
    pub hwmon: Vec<HwmonSensor>,
    pub thermal_zones: Vec<ThermalZone>,
}

impl Sensors {
    /// The highest temperature of any sensor or zone, °C.
    pub fn max_temperature(&self) -> Option<f64> {
        self.hwmon
            .iter()
            .filter(|s| s.kind == SensorKind::Temperature)
            .map(|s| s.value)
            .chain(self.thermal_zones.iter().map(|z| z.temp_celsius))
            .fold(None, |acc: Option<f64>, v| {
                Some(acc.map_or(v, |a| a.max(v)))
            })
    }
}

fn read_text(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Reads every sensor under `sys_root` now.
pub fn read(sys_root: &Path) -> Sensors {
    Sensors {
        hwmon: read_hwmon(&sys_root.join("class/hwmon")),
        thermal_zones: read_thermal(&sys_root.join("class/thermal")),
    }
}

fn sorted_entries(dir: &Path, limit: usize) -> Vec<(String, std::path::PathBuf)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<_> = rd
        .flatten()
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
        .take(limit * 16)
        .collect();
    v.sort();
    v
}

fn read_hwmon(class: &Path) -> Vec<HwmonSensor> {
    let mut out = Vec::new();
    for (dir_name, dir) in sorted_entries(class, MAX_CHIPS).into_iter().take(MAX_CHIPS) {
        if !dir_name.starts_with("hwmon") {
            continue;
        }
        let name_file = read_text(&dir.join("name"));
        let device = std::fs::canonicalize(dir.join("device")).ok();
        let chip = parse::chip_name(
            device.as_deref().and_then(Path::to_str),
            name_file.as_deref(),
            &dir_name,
        );
        let chip_name = name_file.as_deref().and_then(parse::parse_text);
        let mut sensors = read_chip(&dir, &chip, &chip_name);
        if sensors.is_empty() {
            // Older drivers keep their files in the device directory.
            sensors = read_chip(&dir.join("device"), &chip, &chip_name);
        }
        out.extend(sensors);
    }
    out
}

#[derive(Default)]
struct Parts {
    input: Option<f64>,
    label: Option<String>,
    min: Option<f64>,
    max: Option<f64>,
    crit: Option<f64>,
}

fn read_chip(dir: &Path, chip: &str, chip_name: &Option<String>) -> Vec<HwmonSensor> {
    let mut found: BTreeMap<(u8, u32, String), (SensorKind, Parts)> = BTreeMap::new();
    for (file, path) in sorted_entries(dir, MAX_SENSORS_PER_CHIP) {
        let Some((kind, sensor, attr)) = parse::classify(&file) else {
            continue;
        };
        if found.len() >= MAX_SENSORS_PER_CHIP && !found.keys().any(|k| k.2 == sensor) {
            continue;
        }
        let Some(text) = read_text(&path) else {
            continue;
        };
        let index: u32 = sensor
            .trim_start_matches(|c: char| c.is_ascii_alphabetic())
            .parse()
            .unwrap_or(0);
        let order = kind as u8;
        let (_, parts) = found
            .entry((order, index, sensor.to_string()))
            .or_insert_with(|| (kind, Parts::default()));
        let number = || parse::parse_number(&text).map(|v| kind.scale(v));
        match attr {
            Attribute::Input => parts.input = number(),
            Attribute::Label => parts.label = parse::parse_text(&text),
            Attribute::Min => parts.min = number(),
            Attribute::Max => parts.max = number(),
            Attribute::Crit => parts.crit = number(),
        }
    }
    found
        .into_iter()
        .filter_map(|((_, _, sensor), (kind, p))| {
            Some(HwmonSensor {
                id: format!("{chip}/{sensor}"),
                chip: chip.to_string(),
                chip_name: chip_name.clone(),
                sensor,
                kind,
                label: p.label,
                value: p.input?,
                min: p.min,
                max: p.max,
                crit: p.crit,
            })
        })
        .collect()
}

fn read_thermal(class: &Path) -> Vec<ThermalZone> {
    let mut zones: Vec<(u32, ThermalZone)> = sorted_entries(class, MAX_ZONES)
        .into_iter()
        .filter_map(|(name, dir)| {
            let zone = name.strip_prefix("thermal_zone")?.to_string();
            let n = zone.parse::<u32>().ok()?;
            // A zone whose sensor is off answers the read with an error: no figure.
            let temp = parse::parse_number(&read_text(&dir.join("temp"))?)? / 1000.0;
            let zone_type = read_text(&dir.join("type"))
                .and_then(|t| parse::parse_text(&t))
                .unwrap_or_default();
            Some((
                n,
                ThermalZone {
                    zone,
                    zone_type,
                    temp_celsius: temp,
                },
            ))
        })
        .take(MAX_ZONES)
        .collect();
    zones.sort_by_key(|(n, _)| *n);
    zones.into_iter().map(|(_, z)| z).collect()
}

/// Reads sensors every `every_ticks` ticks and repeats the last reading in between.
#[derive(Debug)]
pub struct SensorProbe {
    sys_root: std::path::PathBuf,
    every_ticks: u32,
    ticks_left: u32,
    last: Option<Sensors>,
}

impl SensorProbe {
    pub fn new(sys_root: &Path, every_ticks: u32) -> Self {
        Self {
            sys_root: sys_root.to_path_buf(),
            every_ticks: every_ticks.max(1),
            ticks_left: 0,
            last: None,
        }
    }

    pub fn tick(&mut self) -> Sensors {
        match &self.last {
            Some(last) if self.ticks_left > 0 => {
                self.ticks_left -= 1;
                last.clone()
            }
            _ => {
                let s = read(&self.sys_root);
                self.ticks_left = self.every_ticks - 1;
                self.last = Some(s.clone());
                s
            }
        }
    }
}
