//! Every route the router registers is called without a token, with a wrong token, and with
//! a token of too small a scope. The routes come from the router's own OpenAPI document, so a
//! route added later is covered without editing this test.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use tokio::sync::{watch, Notify};
use tower::ServiceExt;

use lookout_api::auth::{Scope, SharedTokens, TokenSet};
use lookout_api::{ApiConfig, AppState};
use lookout_probe::docker::{BoxFuture, ContainerAction, ContainerControl};
use lookout_probe::{ContainersView, HostSnapshot, ProbeError, Snapshot};

/// Records control calls; the auth layer must stop every unauthorised one before it gets here.
#[derive(Default)]
struct RecordingControl(Mutex<Vec<(String, ContainerAction)>>);

impl ContainerControl for RecordingControl {
    fn act<'a>(
        &'a self,
        id: &'a str,
        action: ContainerAction,
    ) -> BoxFuture<'a, Result<(), ProbeError>> {
        self.0.lock().unwrap().push((id.to_string(), action));
        Box::pin(async { Ok(()) })
    }
}

const READ: &str = "lk_read-token-for-tests";
const CONTROL: &str = "lk_control-token-for-tests";

fn app(control: Arc<RecordingControl>) -> axum::Router {
    let snapshot = Snapshot {
        taken_at_ms: 1,
        tick: 1,
        host: HostSnapshot::default(),
        containers: ContainersView::Available { containers: vec![] },
        gpu: Default::default(),
        processes: None,
    };
    let (_tx, rx) = watch::channel(Some(Arc::new(snapshot)));
    // Keep the sender alive for the test's duration.
    std::mem::forget(_tx);
    let tokens = TokenSet::default()
        .with_static("reader", READ, Scope::Read)
        .with_static("operator", CONTROL, Scope::Control);
    let state = AppState::new(
        rx,
        SharedTokens::new(tokens),
        control,
        ApiConfig::default(),
        Arc::new(Notify::new()),
    );
    lookout_api::app(state)
}

/// (method, concrete path) for every operation in the document.
fn every_operation() -> Vec<(Method, String)> {
    let doc = lookout_api::openapi();
    let mut out = Vec::new();
    for (path, item) in doc.paths.paths.iter() {
        let concrete = path
            .replace("{id}", "some-container")
            .replace("{action}", "stop");
        let ops = [
            (Method::GET, item.get.is_some()),
            (Method::POST, item.post.is_some()),
            (Method::PUT, item.put.is_some()),
            (Method::PATCH, item.patch.is_some()),
            (Method::DELETE, item.delete.is_some()),
        ];
        for (m, present) in ops {
            if present {
                out.push((m, concrete.clone()));
            }
        }
    }
    // The docs page and the document itself are routes too.
    out.push((Method::GET, "/openapi.json".into()));
    out.push((Method::GET, "/docs/".into()));
    out
}

async fn call(
    app: &axum::Router,
    method: &Method,
    path: &str,
    auth: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let mut req = Request::builder().method(method.clone()).uri(path);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json)
}

#[tokio::test]
async fn no_route_answers_without_a_valid_token() {
    let control = Arc::new(RecordingControl::default());
    let app = app(control.clone());
    let ops = every_operation();
    assert!(
        ops.len() >= 15,
        "expected every route in the document, got {ops:?}"
    );
    for (method, path) in &ops {
        if path == "/healthz" {
            let (status, _) = call(&app, method, path, None).await;
            assert_eq!(status, StatusCode::OK, "/healthz is the one public route");
            continue;
        }
        // Sign-in takes the token in its body: it answers without one (400 for no body).
        if path == "/api/v1/session" && method == Method::POST {
            let (status, _) = call(&app, method, path, None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "sign-in is public");
            continue;
        }
        // "Who am I" answers a caller without credentials that it is not signed in, and
        // nothing else; a wrong token is still refused.
        let anonymous_allowed = path == "/api/v1/session" && method == Method::GET;
        if anonymous_allowed {
            let (status, body) = call(&app, method, path, None).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(body, serde_json::json!({ "signed_in": false }));
        }
        let no_credentials = (!anonymous_allowed).then_some(None);
        for auth in no_credentials.into_iter().chain([
            Some("Bearer lk_wrong"),
            Some("Basic dXNlcjpwYXNz"),
            Some("Bearer"),
            Some("Bearer a b"),
        ]) {
            let (status, body) = call(&app, method, path, auth).await;
            let expected = if path == "/stats" {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::UNAUTHORIZED
            };
            assert_eq!(
                status, expected,
                "{method} {path} with {auth:?} answered {status}: {body}"
            );
            // Every refusal is JSON with the shape the route's clients read.
            if path.starts_with("/data/") {
                assert!(body["message"].is_string(), "{method} {path}: {body}");
            } else if path == "/stats" {
                assert_eq!(body["error"], "Unauthorized. Invalid API key.");
            } else {
                assert!(body["error"]["code"].is_string(), "{method} {path}: {body}");
            }
        }
    }
    assert!(
        control.0.lock().unwrap().is_empty(),
        "an unauthorised call reached the engine"
    );
}

#[tokio::test]
async fn read_scope_cannot_control_and_valid_tokens_pass() {
    let control = Arc::new(RecordingControl::default());
    let app = app(control.clone());
    for (method, path) in every_operation() {
        if path == "/api/v1/session" && method == Method::POST {
            continue; // public sign-in: the token goes in the body
        }
        let (status, body) = call(&app, &method, &path, Some(&format!("Bearer {READ}"))).await;
        if method == Method::GET {
            assert!(
                status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                "GET {path} refused a read token: {status} {body}"
            );
        } else {
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{method} {path} let a read token through: {body}"
            );
        }
    }
    assert!(control.0.lock().unwrap().is_empty());
    // A control token passes auth; the container is unknown to the snapshot, so 404 JSON.
    let (status, body) = call(
        &app,
        &Method::POST,
        "/api/v1/containers/nope/stop",
        Some(&format!("bearer {CONTROL}")),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn docker_stats_accepts_api_key_in_query() {
    let app = app(Arc::new(RecordingControl::default()));
    let (status, body) = call(&app, &Method::GET, &format!("/stats?api_key={READ}"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, serde_json::json!([]));
    let (status, _) = call(&app, &Method::GET, "/stats?api_key=123abc", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = app(Arc::new(RecordingControl::default()));
    let auth = format!("Bearer {READ}");
    let (status, body) = call(&app, &Method::GET, "/nope", Some(&auth)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let (status, body) = call(&app, &Method::PUT, "/data/cpu", Some(&auth)).await;
    assert!(
        status == StatusCode::METHOD_NOT_ALLOWED || status == StatusCode::FORBIDDEN,
        "{status}"
    );
    assert!(body.is_object());
}

#[tokio::test]
async fn bad_action_is_a_json_400() {
    let app = app(Arc::new(RecordingControl::default()));
    let (status, body) = call(
        &app,
        &Method::POST,
        "/api/v1/containers/x/explode",
        Some(&format!("Bearer {CONTROL}")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("explode"));
}
