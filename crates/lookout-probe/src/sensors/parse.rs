//! Pure parts of reading sensors from sysfs: which file is which reading, unit scaling, and
//! the chip names node_exporter's hwmon collector gives, so lookout's `/metrics` series line
//! up with node_exporter's.

/// What a hwmon sensor measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SensorKind {
    /// `temp*`, millidegrees Celsius in sysfs, degrees Celsius here.
    Temperature,
    /// `fan*`, revolutions per minute.
    Fan,
    /// `in*`, millivolts in sysfs, volts here.
    Voltage,
}

impl SensorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SensorKind::Temperature => "temperature",
            SensorKind::Fan => "fan",
            SensorKind::Voltage => "voltage",
        }
    }

    /// sysfs value → the unit shown (°C, RPM, V).
    pub fn scale(self, raw: f64) -> f64 {
        match self {
            SensorKind::Temperature | SensorKind::Voltage => raw / 1000.0,
            SensorKind::Fan => raw,
        }
    }
}

/// The attributes of a sensor lookout reads (see the kernel's
/// Documentation/hwmon/sysfs-interface.rst).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribute {
    Input,
    Label,
    Min,
    Max,
    Crit,
}

/// `temp1_input` → (Temperature, "temp1", Input). Files of other kinds and attributes
/// (`pwm1`, `temp1_crit_alarm`, `name`, …) are not sensor readings lookout shows.
pub fn classify(file: &str) -> Option<(SensorKind, &str, Attribute)> {
    let (sensor, attr) = file.split_once('_')?;
    let (kind, digits) = if let Some(d) = sensor.strip_prefix("temp") {
        (SensorKind::Temperature, d)
    } else if let Some(d) = sensor.strip_prefix("fan") {
        (SensorKind::Fan, d)
    } else if let Some(d) = sensor.strip_prefix("in") {
        (SensorKind::Voltage, d)
    } else {
        return None;
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let attr = match attr {
        "input" => Attribute::Input,
        "label" => Attribute::Label,
        "min" => Attribute::Min,
        "max" => Attribute::Max,
        "crit" => Attribute::Crit,
        _ => return None,
    };
    Some((kind, sensor, attr))
}

/// A sysfs number (an integer, possibly negative) as f64; `None` for anything else,
/// including the empty answer some drivers give for an absent reading.
pub fn parse_number(text: &str) -> Option<f64> {
    let t = text.trim();
    let v: i64 = t.parse().ok()?;
    Some(v as f64)
}

/// A label or name file's text, trimmed; `None` when empty.
pub fn parse_text(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.chars().take(128).collect())
}

/// node_exporter's `cleanMetricName`: lower case, anything outside `[a-z0-9:_]` becomes
/// `_`, leading and trailing `_` trimmed.
pub fn clean_name(s: &str) -> String {
    let mapped: String = s
        .trim()
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == ':' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    mapped.trim_matches('_').to_string()
}

/// The `chip` label node_exporter gives a hwmon directory: `<bus type>_<device>` from where
/// its `device` link resolves (stable across boots, unlike `hwmonN`), else its `name` file,
/// else the directory's own name.
pub fn chip_name(device_path: Option<&str>, name_file: Option<&str>, dir_name: &str) -> String {
    if let Some(path) = device_path {
        let path = path.trim_end_matches('/');
        let (prefix, dev) = path.rsplit_once('/').unwrap_or(("", path));
        let dev_type = prefix
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("");
        let (dev, dev_type) = (clean_name(dev), clean_name(dev_type));
        if !dev.is_empty() && !dev_type.is_empty() {
            return format!("{dev_type}_{dev}");
        }
        if !dev.is_empty() {
            return dev;
        }
    }
    if let Some(name) = name_file.map(clean_name).filter(|n| !n.is_empty()) {
        return name;
    }
    clean_name(dir_name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn files_classified() {
        assert_eq!(
            classify("temp1_input"),
            Some((SensorKind::Temperature, "temp1", Attribute::Input))
        );
        assert_eq!(
            classify("fan2_min"),
            Some((SensorKind::Fan, "fan2", Attribute::Min))
        );
        assert_eq!(
            classify("in0_max"),
            Some((SensorKind::Voltage, "in0", Attribute::Max))
        );
        assert_eq!(
            classify("temp3_label"),
            Some((SensorKind::Temperature, "temp3", Attribute::Label))
        );
        assert_eq!(classify("temp1_crit_alarm"), None);
        assert_eq!(classify("intrusion0_alarm"), None);
        assert_eq!(classify("pwm1_enable"), None);
        assert_eq!(classify("name"), None);
        assert_eq!(classify("temp_input"), None);
    }

    #[test]
    fn numbers_and_units() {
        assert_eq!(parse_number("55000\n"), Some(55000.0));
        assert_eq!(parse_number("-5000\n"), Some(-5000.0));
        assert_eq!(parse_number("\n"), None);
        assert_eq!(parse_number("N/A"), None);
        assert_eq!(SensorKind::Temperature.scale(84850.0), 84.85);
        assert_eq!(SensorKind::Voltage.scale(792.0), 0.792);
        assert_eq!(SensorKind::Fan.scale(1098.0), 1098.0);
    }

    #[test]
    fn chip_names_as_node_exporter() {
        assert_eq!(
            chip_name(
                Some("/sys/devices/platform/coretemp.1"),
                Some("coretemp"),
                "hwmon1"
            ),
            "platform_coretemp_1"
        );
        assert_eq!(
            chip_name(
                Some("/sys/devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0"),
                Some("nvme"),
                "hwmon2"
            ),
            "nvme_nvme0"
        );
        assert_eq!(chip_name(None, Some("nct6779\n"), "hwmon3"), "nct6779");
        assert_eq!(chip_name(None, None, "hwmon4"), "hwmon4");
    }

    proptest! {
        #[test]
        fn clean_names_only_hold_allowed_characters(s in ".{0,80}") {
            let c = clean_name(&s);
            prop_assert!(c.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == ':' || c == '_'));
            prop_assert!(!c.starts_with('_') && !c.ends_with('_'));
        }

        #[test]
        fn classify_never_panics(s in ".{0,40}") {
            let _ = classify(&s);
        }

        #[test]
        fn integers_round_trip(v in any::<i64>()) {
            prop_assert_eq!(parse_number(&format!("{v}\n")), Some(v as f64));
        }

        #[test]
        fn number_parser_never_panics(s in ".{0,40}") {
            let _ = parse_number(&s);
        }
    }
}
