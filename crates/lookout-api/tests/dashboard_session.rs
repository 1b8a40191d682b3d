//! The dashboard's sign-in, session cookie, CSRF check, sign-out and asset serving, through
//! the whole application router (auth middleware included).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use tokio::sync::{watch, Notify};
use tower::ServiceExt;

use lookout_api::auth::{Scope, SharedTokens, TokenSet};
use lookout_api::{ApiConfig, AppState};
use lookout_probe::docker::{BoxFuture, ContainerAction, ContainerControl};
use lookout_probe::{ContainersView, HostSnapshot, ProbeError, Snapshot};

struct NoControl;
impl ContainerControl for NoControl {
    fn act<'a>(&'a self, _: &'a str, _: ContainerAction) -> BoxFuture<'a, Result<(), ProbeError>> {
        Box::pin(async { Ok(()) })
    }
}

const READ: &str = "lk_read-token-for-dashboard-tests";
const CONTROL: &str = "lk_control-token-for-dashboard-tests";

fn app() -> axum::Router {
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
        .with_static("operator", CONTROL, Scope::Control);
    lookout_api::app(AppState::new(
        rx,
        SharedTokens::new(tokens),
        Arc::new(NoControl),
        ApiConfig::default(),
        Arc::new(Notify::new()),
    ))
}

async fn send(
    app: &axum::Router,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<serde_json::Value>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    // As the listener does: the peer address is what the failed-auth throttle keys on.
    let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 40000));
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .extension(axum::extract::ConnectInfo(peer));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = match body {
        Some(b) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 22).await.unwrap();
    (parts.status, parts.headers, bytes.to_vec())
}

async fn sign_in(app: &axum::Router, token: &str) -> (String, String) {
    let (status, headers, body) = send(
        app,
        Method::POST,
        "/api/v1/session",
        &[],
        Some(serde_json::json!({ "token": token })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let set = headers[header::SET_COOKIE].to_str().unwrap().to_string();
    for part in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Max-Age=",
        "Path=/",
    ] {
        assert!(set.contains(part), "{set}");
    }
    let cookie = set.split(';').next().unwrap().to_string();
    let info: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(!String::from_utf8_lossy(&body).contains(token));
    (cookie, info["csrf"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn session_cookie_csrf_and_sign_out() {
    let app = app();
    // A wrong token: 401 JSON, no cookie.
    let (status, headers, _) = send(
        &app,
        Method::POST,
        "/api/v1/session",
        &[],
        Some(serde_json::json!({ "token": "lk_wrong" })),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.get(header::SET_COOKIE).is_none());

    let (cookie, csrf) = sign_in(&app, READ).await;
    let c = [("cookie", cookie.as_str())];
    let (status, _, body) = send(&app, Method::GET, "/api/v1/session", &c, None).await;
    assert_eq!(status, StatusCode::OK);
    let info: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(info["signed_in"], true);
    assert_eq!(info["scope"], "read");
    assert_eq!(info["csrf"], csrf.as_str());
    let (status, _, _) = send(&app, Method::GET, "/api/v1/host", &c, None).await;
    assert_eq!(status, StatusCode::OK, "the cookie authenticates reads");
    // A state-changing request by cookie needs the CSRF header, and then the scope.
    let (status, _, body) = send(&app, Method::POST, "/api/v1/containers/x/stop", &c, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(String::from_utf8_lossy(&body).contains("CSRF"));
    let with = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let (status, _, body) =
        send(&app, Method::POST, "/api/v1/containers/x/stop", &with, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(String::from_utf8_lossy(&body).contains("control"));
    // Sign-out needs the CSRF header too, then the cookie is dead.
    let (status, _, _) = send(&app, Method::DELETE, "/api/v1/session", &c, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, headers, _) = send(&app, Method::DELETE, "/api/v1/session", &with, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let (status, _, _) = send(&app, Method::GET, "/api/v1/host", &c, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // "Who am I" with the dead cookie: not signed in, said without an error status (the page
    // asks this on every load; a 401 would be a console error before anyone signs in).
    let (status, _, body) = send(&app, Method::GET, "/api/v1/session", &c, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(String::from_utf8_lossy(&body), r#"{"signed_in":false}"#);

    // A control session passes CSRF and scope (404: the container is unknown).
    let (cookie, csrf) = sign_in(&app, CONTROL).await;
    let with = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let (status, _, _) = send(&app, Method::POST, "/api/v1/containers/x/stop", &with, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let wrong = [("cookie", cookie.as_str()), ("x-csrf-token", "0000")];
    let (status, _, _) = send(
        &app,
        Method::POST,
        "/api/v1/containers/x/stop",
        &wrong,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn json_answers_carry_a_deny_all_policy() {
    let app = app();
    for (path, auth) in [("/api/v1/host", Some(READ)), ("/api/v1/host", None)] {
        let bearer = auth.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .as_deref()
            .map(|b| vec![("authorization", b)])
            .unwrap_or_default();
        let (_, h, _) = send(&app, Method::GET, path, &headers, None).await;
        assert!(h[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        assert_eq!(
            h[header::CONTENT_SECURITY_POLICY],
            "default-src 'none'; frame-ancestors 'none'"
        );
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
}

#[tokio::test]
async fn page_and_assets_are_public_hardened_and_compressed() {
    let app = app();
    let gz = [("accept-encoding", "gzip, br")];
    let (status, headers, body) = send(&app, Method::GET, "/", &gz, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert!(body.len() > 100);
    let (_, _, html) = send(&app, Method::GET, "/", &[], None).await;
    let html = String::from_utf8(html).unwrap();
    let js = html
        .split('"')
        .find(|s| s.starts_with("/assets/app.") && s.ends_with(".js"))
        .expect("hashed script link");
    let (status, headers, _) = send(&app, Method::GET, js, &gz, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
    assert!(headers[header::CACHE_CONTROL]
        .to_str()
        .unwrap()
        .contains("immutable"));
    let (status, _, _) = send(&app, Method::GET, "/assets/app.000000000000.js", &[], None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The live stream is not public, and says what it needs.
    let (status, _, _) = send(&app, Method::GET, "/api/v1/stream", &[], None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let auth = format!("Bearer {READ}");
    let (status, _, _) = send(
        &app,
        Method::GET,
        "/api/v1/stream",
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE);
}

#[tokio::test]
async fn a_guesser_cannot_lock_out_a_valid_token() {
    let app = app();
    let mut statuses = Vec::new();
    for i in 0..40 {
        let (status, _, body) = send(
            &app,
            Method::POST,
            "/api/v1/session",
            &[],
            Some(serde_json::json!({ "token": format!("lk_wrong-{i}") })),
        )
        .await;
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v["error"]["message"].is_string(), "JSON error body");
        statuses.push(status);
    }
    assert_eq!(statuses[0], StatusCode::UNAUTHORIZED);
    assert_eq!(statuses[39], StatusCode::TOO_MANY_REQUESTS);
    // The bucket is empty, and the right token still signs in at once.
    let (cookie, csrf) = sign_in(&app, READ).await;
    assert!(!cookie.is_empty() && !csrf.is_empty());
}
