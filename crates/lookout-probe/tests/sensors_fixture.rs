//! Sensors read from a sysfs tree captured from real hosts (node_exporter's fixture,
//! tests/fixtures/README.md): chip names, labels, units and thresholds as node_exporter
//! reports them for the same tree.

use std::path::Path;

use lookout_probe::sensors::{self, SensorKind};

fn fixture() -> sensors::Sensors {
    sensors::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sysfs-node-exporter"))
}

#[test]
fn coretemp_package_and_cores() {
    let s = fixture();
    let core: Vec<_> = s
        .hwmon
        .iter()
        .filter(|x| x.chip == "platform_coretemp_1")
        .collect();
    assert_eq!(core.len(), 5, "{core:#?}");
    let pkg = core[0];
    assert_eq!(pkg.sensor, "temp1");
    assert_eq!(pkg.kind, SensorKind::Temperature);
    assert_eq!(pkg.label.as_deref(), Some("Physical id 0"));
    assert_eq!(pkg.chip_name.as_deref(), Some("coretemp"));
    assert_eq!(pkg.value, 55.0);
    assert_eq!(pkg.max, Some(84.0));
    assert_eq!(pkg.crit, Some(100.0));
    assert_eq!(core[4].label.as_deref(), Some("Core 3"));
    assert_eq!(core[4].value, 50.0);
}

#[test]
fn super_io_fans_and_voltages() {
    let s = fixture();
    let nct: Vec<_> = s.hwmon.iter().filter(|x| x.chip == "nct6779").collect();
    // Temperatures first, then fans, then voltages; alarms, beeps and pwm files are not readings.
    let names: Vec<_> = nct.iter().map(|x| x.sensor.as_str()).collect();
    assert_eq!(names, ["fan2", "in0", "in1"]);
    assert_eq!(nct[0].kind, SensorKind::Fan);
    assert_eq!(nct[0].value, 1098.0);
    assert_eq!(nct[0].min, Some(0.0));
    assert_eq!(nct[1].kind, SensorKind::Voltage);
    assert_eq!(nct[1].value, 0.792);
    assert_eq!(nct[1].max, Some(1.744));
    assert_eq!(nct[2].value, 1.024);
    assert_eq!(nct[2].crit, None);
}

#[test]
fn thermal_zone() {
    let s = fixture();
    assert_eq!(s.thermal_zones.len(), 1);
    let z = &s.thermal_zones[0];
    assert_eq!(z.zone, "0");
    assert_eq!(z.zone_type, "cpu-thermal");
    assert_eq!(z.temp_celsius, 12.376);
    assert_eq!(s.max_temperature(), Some(55.0));
}

#[test]
fn a_host_without_sensors_has_empty_lists() {
    let s = sensors::read(Path::new("/nonexistent-sys"));
    assert!(s.hwmon.is_empty() && s.thermal_zones.is_empty());
    assert_eq!(s.max_temperature(), None);
}

#[test]
fn this_machines_sys_reads_without_error() {
    // Whatever this machine has (often nothing in a VM): every reading must be finite.
    let s = sensors::read(Path::new("/sys"));
    assert!(s.hwmon.iter().all(|x| x.value.is_finite()));
    assert!(s.thermal_zones.iter().all(|z| z.temp_celsius.is_finite()));
}
