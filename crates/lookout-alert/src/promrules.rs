//! `lookout alerts export-rules`: the same rules as a Prometheus rules file over lookout's
//! `/metrics` names, for people who alert in Prometheus.
//!
//! What cannot be said in PromQL the same way is written as a YAML comment instead of a
//! wrong rule: hysteresis (`clear`) is dropped (Prometheus has no clear level), and figures
//! or matchers `/metrics` does not carry (disk busy %, restarting, Docker labels) are skipped.

use std::fmt::Write as _;

use crate::figure::{Figure, Scope};
use crate::rule::{Op, Rule};

/// The PromQL selector for a figure on `/metrics` (names in docs/metrics.md), with `{MATCH}` where the
/// instance matcher goes; `None` when `/metrics` lacks the figure.
fn figure_expr(f: Figure) -> Option<&'static str> {
    Some(match f {
        // lookout's usage counts every mode but idle and iowait as busy.
        Figure::HostCpuUsage => {
            r#"100 * (1 - sum without (cpu, mode) (rate(lookout_host_cpu_seconds_total{mode=~"idle|iowait"}[1m])) / count without (cpu, mode) (lookout_host_cpu_seconds_total{mode="idle"}))"#
        }
        Figure::HostCpuIowait => {
            r#"100 * sum without (cpu, mode) (rate(lookout_host_cpu_seconds_total{mode="iowait"}[1m])) / count without (cpu, mode) (lookout_host_cpu_seconds_total{mode="idle"})"#
        }
        Figure::HostMemoryUsed => {
            "100 * lookout_host_memory_used_bytes / lookout_host_memory_total_bytes"
        }
        Figure::HostSwapUsed => "100 * lookout_host_swap_used_bytes / lookout_host_swap_total_bytes",
        Figure::HostLoad1 => "lookout_host_load1",
        Figure::HostLoad5 => "lookout_host_load5",
        Figure::HostLoad15 => "lookout_host_load15",
        Figure::FsUsed => {
            "100 * lookout_host_filesystem_used_bytes{MATCH} / (lookout_host_filesystem_used_bytes{MATCH} + lookout_host_filesystem_avail_bytes{MATCH})"
        }
        Figure::NetRx => "rate(lookout_host_network_receive_bytes_total{MATCH}[1m])",
        Figure::NetTx => "rate(lookout_host_network_transmit_bytes_total{MATCH}[1m])",
        Figure::DiskRead => "rate(lookout_host_disk_read_bytes_total{MATCH}[1m])",
        Figure::DiskWrite => "rate(lookout_host_disk_written_bytes_total{MATCH}[1m])",
        Figure::DockerUp => "lookout_docker_up",
        // Percent of one CPU, as `docker stats` shows it.
        Figure::ContainerCpu => "100 * rate(lookout_container_cpu_usage_seconds_total{MATCH}[1m])",
        Figure::ContainerMemoryUsed => "lookout_container_memory_working_set_bytes{MATCH}",
        Figure::ContainerMemoryPercent => {
            "100 * lookout_container_memory_working_set_bytes{MATCH} / lookout_container_memory_limit_bytes{MATCH}"
        }
        Figure::ContainerPids => "lookout_container_pids{MATCH}",
        Figure::ContainerRunning => "lookout_container_running{MATCH}",
        Figure::GpuUtilization => "DCGM_FI_DEV_GPU_UTIL{MATCH}",
        Figure::GpuMemoryUsed => "100 * DCGM_FI_DEV_FB_USED{MATCH} / DCGM_FI_DEV_FB_TOTAL{MATCH}",
        Figure::GpuTemperature => "DCGM_FI_DEV_GPU_TEMP{MATCH}",
        Figure::GpuPower => "DCGM_FI_DEV_POWER_USAGE{MATCH}",
        Figure::HostTemperatureMax => {
            "max({__name__=~\"node_hwmon_temp_celsius|node_thermal_zone_temp\"})"
        }
        Figure::SensorTemperature => "node_hwmon_temp_celsius{MATCH}",
        Figure::SensorTemperatureToCrit => {
            "node_hwmon_temp_crit_celsius{MATCH} - on(chip, sensor) node_hwmon_temp_celsius{MATCH}"
        }
        Figure::SensorFan => "node_hwmon_fan_rpm{MATCH}",
        Figure::SensorVoltage => "node_hwmon_in_volts{MATCH}",
        Figure::DiskBusy | Figure::ContainerRestarting | Figure::ContainerRestartCount => {
            return None
        }
    })
}

/// The `/metrics` label a rule's `match.name` pattern applies to.
fn name_label(scope: Scope) -> &'static str {
    match scope {
        Scope::Filesystem => "mountpoint",
        Scope::Interface | Scope::Disk => "device",
        Scope::Container => "name",
        Scope::Gpu => "modelName",
        Scope::Sensor => "chip",
        Scope::Host => "",
    }
}

/// A glob as an RE2 regular expression (Prometheus anchors `=~` at both ends).
fn glob_to_regex(glob: &str) -> String {
    let mut re = String::with_capacity(glob.len() + 8);
    for c in glob.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c if "\\.+()[]{}|^$".contains(c) => {
                re.push('\\');
                re.push(c);
            }
            c => re.push(c),
        }
    }
    re
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn q(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// The PromQL of one rule, or why it has none.
pub fn rule_expr(rule: &Rule) -> Result<String, String> {
    let c = rule.compile().map_err(|e| e.to_string())?;
    let base =
        figure_expr(c.figure).ok_or_else(|| format!("{} is not in /metrics", rule.figure))?;
    let mut matcher = String::new();
    if let Some(m) = &rule.matcher {
        if !m.labels.is_empty() {
            return Err("Docker label matchers have no /metrics label".into());
        }
        if let Some(p) = &m.name {
            let label = name_label(c.figure.scope());
            if !label.is_empty() {
                let re = glob_to_regex(p).replace('\\', "\\\\").replace('"', "\\\"");
                matcher = format!("{label}=~\"{re}\"");
            }
        }
    }
    let with_match = if base.contains("{MATCH}") {
        let inner = if matcher.is_empty() {
            String::new()
        } else {
            format!("{{{matcher}}}")
        };
        base.replace("{MATCH}", &inner)
    } else {
        let extra = if matcher.is_empty() {
            String::new()
        } else {
            format!(",{matcher}")
        };
        base.replace("MATCH", &extra)
    };
    let series = if c.window_ms > 0 {
        format!(
            "avg_over_time(({with_match})[{}:])",
            crate::duration::format_duration_ms(c.window_ms)
        )
    } else {
        with_match
    };
    let op = match c.op {
        Op::Above => ">",
        Op::Below => "<",
    };
    Ok(format!("{series} {op} {}", c.threshold))
}

/// A Prometheus rules file (one group, `lookout`) for `rules`.
pub fn prometheus_rules_yaml(rules: &[Rule]) -> String {
    let mut out = String::from(
        "# Generated by `lookout alerts export-rules`.\ngroups:\n  - name: lookout\n    rules:\n",
    );
    let mut written = 0;
    for r in rules {
        let expr = match rule_expr(r) {
            Ok(e) => e,
            Err(why) => {
                let _ = writeln!(
                    out,
                    "      # skipped {:?}: {}",
                    r.name,
                    why.replace('\n', " ")
                );
                continue;
            }
        };
        written += 1;
        let _ = writeln!(
            out,
            "      - alert: {}\n        expr: {}",
            q(&r.name),
            q(&expr)
        );
        if let Some(f) = &r.for_ {
            if let Ok(ms) = crate::duration::parse_duration_ms(f) {
                let _ = writeln!(
                    out,
                    "        for: {}",
                    crate::duration::format_duration_ms(ms)
                );
            }
        }
        if r.clear.is_some() {
            let _ = writeln!(
                out,
                "        # lookout's clear level (hysteresis) has no Prometheus equivalent"
            );
        }
        if !r.labels.is_empty() {
            out.push_str("        labels:\n");
            for (k, v) in &r.labels {
                let _ = writeln!(out, "          {k}: {}", q(v));
            }
        }
        let summary = r.summary.clone().unwrap_or_else(|| {
            format!(
                "{} {} {} ({{{{ $value }}}})",
                r.figure,
                if matches!(r.op.trim(), "<") { "<" } else { ">" },
                r.threshold
            )
        });
        let _ = writeln!(
            out,
            "        annotations:\n          summary: {}",
            q(&summary)
        );
    }
    if written == 0 {
        // An empty list is valid YAML and a valid rules file.
        out = out.replace("    rules:\n", "    rules: []\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::{rule, InstanceMatch};

    #[test]
    fn exprs_carry_match_and_window() {
        let mut r = rule("WebCpu", "container.cpu_percent", ">", 80.0);
        r.matcher = Some(InstanceMatch {
            name: Some("web-*.x".into()),
            labels: Default::default(),
        });
        r.window = Some("1m".into());
        assert_eq!(
            rule_expr(&r).unwrap(),
            r#"avg_over_time((100 * rate(lookout_container_cpu_usage_seconds_total{name=~"web-.*\\.x"}[1m]))[1m:]) > 80"#
        );
        let mut fs = rule("Disk", "host.filesystem.used_percent", ">", 90.0);
        fs.matcher = Some(InstanceMatch {
            name: Some("/".into()),
            labels: Default::default(),
        });
        assert!(rule_expr(&fs)
            .unwrap()
            .contains(r#"lookout_host_filesystem_used_bytes{mountpoint=~"/"}"#));
        assert!(rule_expr(&rule("B", "host.disk.busy_percent", ">", 1.0)).is_err());
        let y = prometheus_rules_yaml(&[rule("B", "host.disk.busy_percent", ">", 1.0)]);
        assert!(y.contains("rules: []"), "{y}");
    }
}
