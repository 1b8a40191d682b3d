//! Sensor families of `/metrics`, named and labelled as node_exporter's hwmon and
//! thermal_zone collectors name them (`node_hwmon_temp_celsius{chip,sensor}`, …), so
//! dashboards and alert rules written for node_exporter read lookout's unchanged.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use lookout_probe::sensors::{HwmonSensor, SensorKind};
use lookout_probe::Snapshot;

use super::encode::{gauges, Labels};

/// The sensors of the latest snapshot, written at scrape time.
#[derive(Debug)]
pub struct SensorCollector(pub Arc<Snapshot>);

/// node_exporter's type prefix and unit suffix of a kind: `temp` / `celsius`, …
fn names(kind: SensorKind) -> (&'static str, &'static str, &'static str) {
    match kind {
        SensorKind::Temperature => ("temp", "celsius", "temperature"),
        SensorKind::Fan => ("fan", "rpm", "fan speed"),
        SensorKind::Voltage => ("in", "volts", "voltage"),
    }
}

type Pick = fn(&HwmonSensor) -> Option<f64>;

fn labels(s: &HwmonSensor) -> Labels<'_> {
    vec![("chip", s.chip.as_str()), ("sensor", s.sensor.as_str())]
}

impl Collector for SensorCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let sensors = &self.0.host.sensors;
        for kind in [
            SensorKind::Temperature,
            SensorKind::Fan,
            SensorKind::Voltage,
        ] {
            let (ty, unit, what) = names(kind);
            let of_kind: Vec<&HwmonSensor> =
                sensors.hwmon.iter().filter(|s| s.kind == kind).collect();
            let elements: [(&str, Pick); 4] = [
                ("", |s| Some(s.value)),
                ("_min", |s| s.min),
                ("_max", |s| s.max),
                ("_crit", |s| s.crit),
            ];
            for (element, pick) in elements {
                let rows: Vec<(Labels, f64)> = of_kind
                    .iter()
                    .filter_map(|s| pick(s).map(|v| (labels(s), v)))
                    .collect();
                let name = format!("node_hwmon_{ty}{element}_{unit}");
                let help = match element {
                    "" => format!("Hardware monitor for {what} (input)"),
                    other => format!("Hardware monitor for {what} ({})", &other[1..]),
                };
                gauges(&mut e, &name, &help, &rows)?;
            }
        }

        let mut chips: Vec<(Labels, i64)> = Vec::new();
        for s in &sensors.hwmon {
            if let Some(name) = &s.chip_name {
                if !chips.iter().any(|(l, _)| l[0].1 == s.chip) {
                    chips.push((vec![("chip", s.chip.as_str()), ("chip_name", name)], 1));
                }
            }
        }
        gauges(
            &mut e,
            "node_hwmon_chip_names",
            "Annotation metric for human-readable chip names",
            &chips,
        )?;
        let label_rows: Vec<(Labels, i64)> = sensors
            .hwmon
            .iter()
            .filter_map(|s| {
                let label = s.label.as_deref()?;
                Some((
                    vec![
                        ("chip", s.chip.as_str()),
                        ("label", label),
                        ("sensor", s.sensor.as_str()),
                    ],
                    1,
                ))
            })
            .collect();
        gauges(
            &mut e,
            "node_hwmon_sensor_label",
            "Label for given chip and sensor",
            &label_rows,
        )?;

        let zones: Vec<(Labels, f64)> = sensors
            .thermal_zones
            .iter()
            .map(|z| {
                (
                    vec![("type", z.zone_type.as_str()), ("zone", z.zone.as_str())],
                    z.temp_celsius,
                )
            })
            .collect();
        gauges(
            &mut e,
            "node_thermal_zone_temp",
            "Zone temperature in Celsius",
            &zones,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use lookout_probe::{ContainersView, HostSnapshot, Snapshot};

    use crate::metrics::{Format, HttpMetrics};

    /// The captured sysfs tree of the probe's tests, through the whole exposition.
    #[test]
    fn node_exporter_names_for_a_captured_tree() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../lookout-probe/tests/fixtures/sysfs-node-exporter");
        let host = HostSnapshot {
            sensors: lookout_probe::sensors::read(&root),
            ..Default::default()
        };
        let s = Arc::new(Snapshot {
            taken_at_ms: 1,
            tick: 1,
            host,
            containers: ContainersView::Unavailable {
                reason: "off".into(),
            },
            gpu: Default::default(),
            processes: None,
        });
        let text = HttpMetrics::new().render(Some(s), Format::PrometheusText);
        for line in [
            "# TYPE node_hwmon_temp_celsius gauge",
            "node_hwmon_temp_celsius{chip=\"platform_coretemp_1\",sensor=\"temp1\"} 55.0",
            "node_hwmon_temp_crit_celsius{chip=\"platform_coretemp_1\",sensor=\"temp1\"} 100.0",
            "node_hwmon_temp_max_celsius{chip=\"platform_coretemp_1\",sensor=\"temp5\"} 84.0",
            "node_hwmon_fan_rpm{chip=\"nct6779\",sensor=\"fan2\"} 1098.0",
            "node_hwmon_fan_min_rpm{chip=\"nct6779\",sensor=\"fan2\"} 0.0",
            "node_hwmon_in_volts{chip=\"nct6779\",sensor=\"in0\"} 0.792",
            "node_hwmon_in_max_volts{chip=\"nct6779\",sensor=\"in0\"} 1.744",
            "node_hwmon_chip_names{chip=\"platform_coretemp_1\",chip_name=\"coretemp\"} 1",
            "node_hwmon_sensor_label{chip=\"platform_coretemp_1\",label=\"Physical id 0\",sensor=\"temp1\"} 1",
            "node_thermal_zone_temp{type=\"cpu-thermal\",zone=\"0\"} 12.376",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("node_hwmon_fan_crit"));
    }
}
