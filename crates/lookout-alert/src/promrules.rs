//! `lookout alerts export-rules`: the same rules as a Prometheus rules file over lookout's
//! `/metrics` names, for people who alert in Prometheus.
//!
//! What cannot be said in PromQL the same way is written as a YAML comment instead of a
//! wrong rule: hysteresis (`clear`) is dropped (Prometheus has no clear level), and figures
//! or matchers `/metrics` does not carry (disk busy %, restarting, Docker labels) are skipped.

use std::fmt::Write as _;

use crate::figure::{Figure, Scope};
use crate::rule::{Op, Rule};

/// The PromQL selector for a figure on today's `/metrics`, with `{MATCH}` where the
/// instance matcher goes; `None` when `/metrics` lacks the figure.
fn figure_expr(f: Figure) -> Option<&'static str> {
    Some(match f {
        Figure::HostCpuUsage => r#"lookout_host_cpu_usage_percent{cpu="total"}"#,
        Figure::HostCpuIowait => r#"lookout_host_cpu_mode_percent{mode="iowait"}"#,
        Figure::HostMemoryUsed => {
            r#"100 * lookout_host_memory_bytes{kind="used"} / ignoring(kind) lookout_host_memory_bytes{kind="total"}"#
        }
        Figure::HostSwapUsed => {
            r#"100 * lookout_host_memory_bytes{kind="swap_used"} / ignoring(kind) lookout_host_memory_bytes{kind="swap_total"}"#
        }
        Figure::HostLoad1 => r#"lookout_host_load{period="1m"}"#,
        Figure::HostLoad5 => r#"lookout_host_load{period="5m"}"#,
        Figure::HostLoad15 => r#"lookout_host_load{period="15m"}"#,
        Figure::FsUsed => {
            r#"100 * lookout_host_filesystem_bytes{kind="used"MATCH} / ignoring(kind) (lookout_host_filesystem_bytes{kind="used"MATCH} + ignoring(kind) lookout_host_filesystem_bytes{kind="available"MATCH})"#
        }
        Figure::NetRx => r#"rate(lookout_host_network_bytes_total{direction="rx"MATCH}[1m])"#,
        Figure::NetTx => r#"rate(lookout_host_network_bytes_total{direction="tx"MATCH}[1m])"#,
        Figure::DiskRead => r#"rate(lookout_host_disk_bytes_total{direction="read"MATCH}[1m])"#,
        Figure::DiskWrite => r#"rate(lookout_host_disk_bytes_total{direction="write"MATCH}[1m])"#,
        Figure::DockerUp => "lookout_docker_up",
        Figure::ContainerCpu => "lookout_container_cpu_percent{MATCH}",
        Figure::ContainerMemoryUsed => "lookout_container_memory_used_bytes{MATCH}",
        Figure::ContainerMemoryPercent => {
            "100 * lookout_container_memory_used_bytes{MATCH} / lookout_container_memory_limit_bytes{MATCH}"
        }
        Figure::ContainerPids => "lookout_container_pids{MATCH}",
        Figure::ContainerRunning => "lookout_container_running{MATCH}",
        Figure::GpuUtilization => "DCGM_FI_DEV_GPU_UTIL{MATCH}",
        Figure::GpuMemoryUsed => "100 * DCGM_FI_DEV_FB_USED{MATCH} / DCGM_FI_DEV_FB_TOTAL{MATCH}",
        Figure::GpuTemperature => "DCGM_FI_DEV_GPU_TEMP{MATCH}",
        Figure::GpuPower => "DCGM_FI_DEV_POWER_USAGE{MATCH}",
        Figure::DiskBusy | Figure::ContainerRestarting => return None,
    })
}

/// The `/metrics` label a rule's `match.name` pattern applies to.
fn name_label(scope: Scope) -> &'static str {
    match scope {
        Scope::Filesystem => "mountpoint",
        Scope::Interface | Scope::Disk => "device",
        Scope::Container => "name",
        Scope::Gpu => "modelName",
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
            r#"avg_over_time((lookout_container_cpu_percent{name=~"web-.*\\.x"})[1m:]) > 80"#
        );
        let mut fs = rule("Disk", "host.filesystem.used_percent", ">", 90.0);
        fs.matcher = Some(InstanceMatch {
            name: Some("/".into()),
            labels: Default::default(),
        });
        assert!(rule_expr(&fs)
            .unwrap()
            .contains(r#"{kind="used",mountpoint=~"/"}"#));
        assert!(rule_expr(&rule("B", "host.disk.busy_percent", ">", 1.0)).is_err());
        let y = prometheus_rules_yaml(&[rule("B", "host.disk.busy_percent", ">", 1.0)]);
        assert!(y.contains("rules: []"), "{y}");
    }
}
