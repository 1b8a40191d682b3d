//! The OpenAPI document against the router it describes: every route the router serves is
//! in the document, every answer the router gives (no token, too small a scope, a parameter
//! outside its documented constraints, a good request) has its status documented with a
//! description and, for errors, a body; and each documented constraint is one the server
//! really enforces (a value outside it gets the documented 400, a value inside it does not).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::Value;
use tokio::sync::{watch, Notify};
use tower::ServiceExt;

use lookout_api::auth::{Scope, SharedTokens, TokenSet};
use lookout_api::{ApiConfig, AppState};
use lookout_probe::docker::{BoxFuture, ContainerAction, ContainerControl};
use lookout_probe::{ContainersView, HostSnapshot, ProbeError, Snapshot};

struct NoopControl;

impl ContainerControl for NoopControl {
    fn act<'a>(&'a self, _: &'a str, _: ContainerAction) -> BoxFuture<'a, Result<(), ProbeError>> {
        Box::pin(async { Ok(()) })
    }
}

const READ: &str = "lk_read-token-for-openapi-tests";
const ADMIN: &str = "lk_admin-token-for-openapi-tests";

fn app() -> axum::Router {
    // The smart upstream's HTTP client needs a TLS provider, as in the binary.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let snapshot = Snapshot {
        taken_at_ms: 1,
        tick: 1,
        host: HostSnapshot::default(),
        containers: ContainersView::Available { containers: vec![] },
        gpu: Default::default(),
        processes: None,
    };
    let (tx, rx) = watch::channel(Some(Arc::new(snapshot)));
    std::mem::forget(tx);
    let tokens = TokenSet::default()
        .with_static("reader", READ, Scope::Read)
        .with_static("admin", ADMIN, Scope::Admin);
    let state = AppState::new(
        rx,
        SharedTokens::new(tokens),
        Arc::new(NoopControl),
        ApiConfig::default(),
        Arc::new(Notify::new()),
    )
    // Nothing listens there: calls fail fast, but parameters are parsed first.
    .with_smart("http://127.0.0.1:9/api/work", Default::default())
    .expect("smart");
    lookout_api::app(state)
}

/// The document as `GET /openapi.json` serves it.
async fn served_document(app: &axum::Router) -> Value {
    let (status, body) = call(app, &Method::GET, "/openapi.json", Some(ADMIN)).await;
    assert_eq!(status, 200);
    serde_json::from_slice(&body).expect("document is JSON")
}

async fn call(
    app: &axum::Router,
    method: &Method,
    uri: &str,
    token: Option<&str>,
) -> (u16, Vec<u8>) {
    let mut req = Request::builder().method(method.clone()).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let mut body = Body::empty();
    if method == Method::POST && uri.starts_with("/api/v1/session") {
        req = req.header("content-type", "application/json");
        body = Body::from("{}");
    }
    let resp = app
        .clone()
        .oneshot(req.body(body).expect("request"))
        .await
        .expect("answer");
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 22)
        .await
        .unwrap_or_default();
    (status, bytes.to_vec())
}

struct Operation {
    method: Method,
    path: String,
    op: Value,
}

impl Operation {
    fn concrete(&self) -> String {
        self.path
            .replace("{id}", "some-container")
            .replace("{action}", "stop")
    }
    fn documented(&self) -> BTreeSet<u16> {
        self.op["responses"]
            .as_object()
            .map(|r| r.keys().filter_map(|k| k.parse().ok()).collect())
            .unwrap_or_default()
    }
    fn secured(&self) -> bool {
        self.op["security"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    }
    fn params(&self) -> Vec<Value> {
        self.op["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
    fn assert_documents(&self, status: u16, why: &str) {
        assert!(
            self.documented().contains(&status),
            "{} {} answered {status} ({why}), documented: {:?}",
            self.method,
            self.path,
            self.documented()
        );
    }
}

fn operations(doc: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (name, method) in [
            ("get", Method::GET),
            ("post", Method::POST),
            ("put", Method::PUT),
            ("patch", Method::PATCH),
            ("delete", Method::DELETE),
        ] {
            if let Some(op) = item.get(name) {
                out.push(Operation {
                    method,
                    path: path.clone(),
                    op: op.clone(),
                });
            }
        }
    }
    out
}

/// Routes registered on the router without `routes!` (so without an OpenAPI entry): only the
/// dashboard's page and assets may be. A new plain `.route(` fails this test.
#[test]
fn only_the_dashboard_pages_bypass_the_document() {
    let mut plain = BTreeSet::new();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![src];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src").flatten() {
            let p = entry.path();
            if p.is_dir() {
                // The Concertim routes are served by their own listener, not by `app`.
                if !p.ends_with("concertim") {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                for (i, _) in text.match_indices(".route(\"") {
                    let rest = &text[i + 8..];
                    plain.insert(rest[..rest.find('"').unwrap_or(0)].to_owned());
                }
            }
        }
    }
    let expected: BTreeSet<String> = ["/", "/assets/{file}"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(plain, expected);
}

#[tokio::test]
async fn every_route_answers_only_documented_statuses() {
    let app = app();
    let doc = served_document(&app).await;
    let ops = operations(&doc);
    assert!(ops.len() >= 30, "{} operations", ops.len());
    for op in &ops {
        let uri = op.concrete();
        // The router serves it (an unknown route answers 404 "no such route", a known one
        // with the wrong method 405).
        let (status, body) = call(&app, &op.method, &uri, Some(ADMIN)).await;
        let text = String::from_utf8_lossy(&body);
        assert!(
            status != 405 && !text.contains("no such route"),
            "{} {uri} is documented but not routed: {status} {text}",
            op.method
        );
        if op.path != "/api/v1/stream" {
            op.assert_documents(status, "admin token");
        }
        if op.secured() {
            let (status, _) = call(&app, &op.method, &uri, None).await;
            op.assert_documents(status, "no token");
            let (status, _) = call(&app, &op.method, &uri, Some("lk_not-a-token-at-all-000")).await;
            op.assert_documents(status, "unknown token");
            let (status, _) = call(&app, &op.method, &uri, Some(READ)).await;
            if op.path != "/api/v1/stream" {
                op.assert_documents(status, "read token");
            }
        }
        op.assert_documents(504, "the request time limit applies to every route");
        for (code, r) in op.op["responses"].as_object().expect("responses") {
            let d = r["description"].as_str().unwrap_or("");
            assert!(
                !d.trim().is_empty(),
                "{} {} {code}: no description",
                op.method,
                op.path
            );
            if code.starts_with('4') || code.starts_with('5') {
                assert!(
                    r["content"].is_object(),
                    "{} {} {code}: no error body",
                    op.method,
                    op.path
                );
            }
        }
    }
}

/// (bad value, good value) for every parameter the document constrains.
fn samples(name: &str) -> Option<(&'static str, &'static str)> {
    Some(match name {
        "from" => ("yesterday", "1700000000"),
        "to" => ("10%3A00", "2026-11-24T10:00:00Z"),
        "step" => ("0", "60"),
        "timeout" => ("0", "1000"),
        "series" => ("bad%20name!", "host.cpu.usage"),
        "action" => ("explode", "stop"),
        _ => return None,
    })
}

/// Checks `value` against the schema's documented constraints.
fn schema_accepts(schema: &Value, value: &str) -> bool {
    let value = value.replace("%3A", ":").replace("%20", " ");
    if let Some(list) = schema["enum"].as_array() {
        return list.iter().any(|v| v.as_str() == Some(value.as_str()));
    }
    if let Some(p) = schema["pattern"].as_str() {
        return regex::Regex::new(p)
            .expect("pattern compiles")
            .is_match(&value);
    }
    let Ok(n) = value.parse::<f64>() else {
        return false;
    };
    let above = |k: &str, strict: bool| {
        schema[k]
            .as_f64()
            .is_none_or(|m| if strict { n > m } else { n >= m })
    };
    above("exclusiveMinimum", true)
        && above("minimum", false)
        && schema["maximum"].as_f64().is_none_or(|m| n <= m)
}

#[tokio::test]
async fn documented_constraints_are_the_ones_the_server_enforces() {
    let app = app();
    let doc = served_document(&app).await;
    let mut checked = 0;
    for op in operations(&doc) {
        for p in op.params() {
            let name = p["name"].as_str().unwrap_or("");
            let Some((bad, good)) = samples(name) else {
                continue;
            };
            let schema = &p["schema"];
            assert!(
                !schema_accepts(schema, bad),
                "{} {}: {name}={bad} passes {schema}",
                op.method,
                op.path
            );
            assert!(
                schema_accepts(schema, good),
                "{} {}: {name}={good} fails {schema}",
                op.method,
                op.path
            );
            let with = |v: &str| {
                if p["in"] == "path" {
                    op.path
                        .replace("{id}", "some-container")
                        .replace(&format!("{{{name}}}"), v)
                } else {
                    let mut q = format!("{}?{name}={v}", op.concrete());
                    if name != "series" && op.params().iter().any(|x| x["name"] == "series") {
                        q.push_str("&series=host.cpu.usage");
                    }
                    q
                }
            };
            let (status, body) = call(&app, &op.method, &with(bad), Some(ADMIN)).await;
            assert_eq!(
                status,
                400,
                "{} {} {name}={bad}: {}",
                op.method,
                op.path,
                String::from_utf8_lossy(&body)
            );
            op.assert_documents(400, name);
            let (status, body) = call(&app, &op.method, &with(good), Some(ADMIN)).await;
            assert_ne!(
                status,
                400,
                "{} {} {name}={good}: {}",
                op.method,
                op.path,
                String::from_utf8_lossy(&body)
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 20,
        "only {checked} constrained parameters checked"
    );
}

/// Operation ids name generated clients' functions: two alike make the document invalid
/// (openapi-spec-validator refuses it) and one client function shadow another.
#[tokio::test]
async fn operation_ids_are_unique() {
    let doc = served_document(&app()).await;
    let mut seen = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if let Some(id) = op["operationId"].as_str() {
                assert!(
                    seen.insert(id.to_string()),
                    "operationId {id:?} again at {method} {path}"
                );
            }
        }
    }
    assert!(!seen.is_empty());
}
