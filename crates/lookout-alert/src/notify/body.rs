//! What each channel is sent: pure functions from a transition to a request body.

use serde_json::{json, Value};

use crate::alert::{Alert, AlertState, Transition};
use crate::config::WebhookFormat;

/// One line for people: `[FIRING] HostCpuHigh on web-1: CPU 97% …`.
pub fn headline(t: &Transition) -> String {
    let tag = match t.to {
        AlertState::Firing => "FIRING",
        AlertState::Resolved => "RESOLVED",
        AlertState::Pending => "PENDING",
        AlertState::Inactive => "INACTIVE",
    };
    let summary = t
        .alert
        .annotations
        .get("summary")
        .map(String::as_str)
        .unwrap_or("");
    format!("[{tag}] {}: {summary}", t.alert.rule)
}

/// The body and extra headers of a webhook call.
pub fn webhook_body(
    format: WebhookFormat,
    t: &Transition,
) -> (Vec<u8>, &'static str, Vec<(&'static str, String)>) {
    let text = headline(t);
    match format {
        WebhookFormat::Json => {
            let body = json!({
                "status": t.to,
                "text": text,
                "at_ms": t.at_ms,
                "from": t.from,
                "to": t.to,
                "alert": t.alert,
            });
            (body.to_string().into_bytes(), "application/json", vec![])
        }
        WebhookFormat::Slack => (
            json!({ "text": text }).to_string().into_bytes(),
            "application/json",
            vec![],
        ),
        WebhookFormat::Gotify => {
            let priority = if t.to == AlertState::Firing { 8 } else { 4 };
            let body = json!({ "title": format!("{} {}", t.alert.rule, t.to.as_str()), "message": text, "priority": priority });
            (body.to_string().into_bytes(), "application/json", vec![])
        }
        WebhookFormat::Ntfy => {
            let (priority, tags) = if t.to == AlertState::Firing {
                ("high", "rotating_light")
            } else {
                ("default", "white_check_mark")
            };
            // Header values must be visible ASCII: the rule name is, by validation.
            let headers = vec![
                ("Title", format!("{} {}", t.alert.rule, t.to.as_str())),
                ("Priority", priority.to_owned()),
                ("Tags", tags.to_owned()),
            ];
            (text.into_bytes(), "text/plain; charset=utf-8", headers)
        }
    }
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

/// One element of Alertmanager's `POST /api/v2/alerts`, as Prometheus builds it
/// (`notifier.Alert`): firing alerts end `valid_for_ms` after now unless re-sent, resolved
/// ones end when they resolved.
pub fn alertmanager_alert(a: &Alert, generator_url: &str, now_ms: i64, valid_for_ms: i64) -> Value {
    let ends = match a.resolved_at_ms {
        Some(r) => r,
        None => now_ms + valid_for_ms,
    };
    json!({
        "labels": a.labels,
        "annotations": a.annotations,
        "startsAt": rfc3339(a.active_since_ms),
        "endsAt": rfc3339(ends),
        "generatorURL": generator_url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn alert() -> Alert {
        let mut labels = BTreeMap::new();
        labels.insert("alertname".to_string(), "CpuHigh".to_string());
        Alert {
            rule: "CpuHigh".into(),
            fingerprint: "f".into(),
            series: String::new(),
            state: AlertState::Firing,
            labels,
            annotations: [("summary".to_string(), "CPU 97%".to_string())].into(),
            value: 97.0,
            active_since_ms: 1_700_000_000_000,
            fired_at_ms: Some(1_700_000_000_000),
            resolved_at_ms: None,
        }
    }

    #[test]
    fn alertmanager_body_has_prometheus_fields() {
        let v = alertmanager_alert(
            &alert(),
            "http://x/api/v1/alerts",
            1_700_000_010_000,
            240_000,
        );
        assert_eq!(v["labels"]["alertname"], "CpuHigh");
        assert_eq!(v["startsAt"], "2023-11-14T22:13:20Z");
        assert_eq!(v["endsAt"], "2023-11-14T22:17:30Z");
        assert_eq!(v["generatorURL"], "http://x/api/v1/alerts");
        let mut r = alert();
        r.resolved_at_ms = Some(1_700_000_005_000);
        assert_eq!(
            alertmanager_alert(&r, "", 0, 0)["endsAt"],
            "2023-11-14T22:13:25Z"
        );
    }

    #[test]
    fn bodies_per_format() {
        let t = Transition {
            at_ms: 1,
            from: AlertState::Pending,
            to: AlertState::Firing,
            silenced: false,
            alert: alert(),
        };
        let (b, ct, _) = webhook_body(WebhookFormat::Slack, &t);
        assert_eq!(ct, "application/json");
        assert_eq!(
            String::from_utf8(b).unwrap(),
            r#"{"text":"[FIRING] CpuHigh: CPU 97%"}"#
        );
        let (b, _, h) = webhook_body(WebhookFormat::Ntfy, &t);
        assert_eq!(b, b"[FIRING] CpuHigh: CPU 97%");
        assert_eq!(h[0], ("Title", "CpuHigh firing".to_string()));
        let (b, _, _) = webhook_body(WebhookFormat::Json, &t);
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["status"], "firing");
        assert_eq!(v["alert"]["labels"]["alertname"], "CpuHigh");
    }
}
