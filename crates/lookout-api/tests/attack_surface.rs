//! What an unauthenticated caller or a token holder could do to others (issue 13), through
//! the whole application router: made-up methods must not grow `/metrics`, guessing tokens
//! is throttled per address while valid tokens pass, a Bearer stream ends when its token is
//! revoked, and one token's sign-ins never end another token's sessions.
//! (`scripts/test-attack.sh` repeats these against a running binary, with real clients.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use futures_util::StreamExt;
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

const READ: &str = "lk_read-token-for-attack-tests-0123456789";
const OTHER: &str = "lk_other-token-for-attack-tests-0123456789";

type Snapshots = watch::Sender<Option<Arc<Snapshot>>>;

fn snapshot(tick: u64) -> Option<Arc<Snapshot>> {
    Some(Arc::new(Snapshot {
        taken_at_ms: tick as i64 * 1000,
        tick,
        host: HostSnapshot::default(),
        containers: ContainersView::Available { containers: vec![] },
        gpu: Default::default(),
        processes: None,
    }))
}

fn tokens() -> TokenSet {
    TokenSet::default()
        .with_static("reader", READ, Scope::Read)
        .with_static("other", OTHER, Scope::Read)
}

fn app() -> (axum::Router, SharedTokens, Snapshots) {
    let (tx, rx) = watch::channel(snapshot(1));
    let shared = SharedTokens::new(tokens());
    let state = AppState::new(
        rx,
        shared.clone(),
        Arc::new(NoControl),
        ApiConfig::default(),
        Arc::new(Notify::new()),
    );
    (lookout_api::app(state), shared, tx)
}

fn request(method: &str, path: &str, peer: [u8; 4], headers: &[(&str, &str)]) -> Request<Body> {
    let mut req = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(path)
        .extension(ConnectInfo(SocketAddr::from((peer, 50000))));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(Body::empty()).unwrap()
}

async fn send(
    app: &axum::Router,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 64 << 20).await.unwrap();
    (parts.status, parts.headers, bytes.to_vec())
}

async fn metrics(app: &axum::Router) -> String {
    let bearer = format!("Bearer {READ}");
    let (status, _, body) = send(
        app,
        request(
            "GET",
            "/metrics",
            [127, 0, 0, 1],
            &[("authorization", &bearer)],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    String::from_utf8(body).unwrap()
}

#[tokio::test]
async fn made_up_methods_and_paths_do_not_grow_metrics() {
    let (app, _, _tx) = app();
    // Warm every label a normal client creates, then measure.
    for _ in 0..2 {
        send(&app, request("FOO", "/api/v1/host", [10, 1, 0, 1], &[])).await;
        send(&app, request("GET", "/no/such/path", [10, 1, 0, 1], &[])).await;
        metrics(&app).await;
    }
    let before = metrics(&app).await.len();
    for i in 0..2000 {
        let method = format!("M{i}{}", "X".repeat(i % 200));
        let path = format!("/made-up/{i}");
        let (status, _, _) = send(&app, request(&method, &path, [10, 1, 0, 1], &[])).await;
        assert!(status.is_client_error(), "{method} {path}: {status}");
    }
    let after = metrics(&app).await;
    assert!(
        after.len() <= before + 512,
        "/metrics grew from {before} to {} bytes",
        after.len()
    );
    assert!(!after.contains("M1999") && !after.contains("/made-up/"));
    assert!(after.contains("method=\"other\"") && after.contains("route=\"unmatched\""));
}

#[tokio::test]
async fn guessing_is_throttled_per_address_and_valid_tokens_pass() {
    let (app, _, _tx) = app();
    let guesser = [10, 2, 0, 1];
    let mut statuses = Vec::new();
    for i in 0..40 {
        let bearer = format!("Bearer lk_guess-{i}");
        let (status, headers, body) = send(
            &app,
            request(
                "GET",
                "/api/v1/host",
                guesser,
                &[("authorization", &bearer)],
            ),
        )
        .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["error"]["code"], "rate_limited");
            let wait: u64 = headers[header::RETRY_AFTER]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&wait), "Retry-After {wait}");
        }
        statuses.push(status);
    }
    let unauthorized = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!(
        unauthorized,
        lookout_api::throttle::BURST as usize,
        "{statuses:?}"
    );
    assert_eq!(statuses[39], StatusCode::TOO_MANY_REQUESTS);
    // The guesser's own valid token is never slowed, nor is anyone else.
    let bearer = format!("Bearer {READ}");
    let (status, _, _) = send(
        &app,
        request(
            "GET",
            "/api/v1/host",
            guesser,
            &[("authorization", &bearer)],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(
        &app,
        request(
            "GET",
            "/api/v1/host",
            [10, 2, 0, 2],
            &[("authorization", "Bearer lk_guess")],
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "another address has its own budget"
    );
    // Unknown session cookies are guesses too.
    let (status, _, _) = send(
        &app,
        request(
            "GET",
            "/api/v1/host",
            guesser,
            &[("cookie", "__Host-lookout_session=guessed")],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_bearer_stream_ends_when_its_token_is_revoked() {
    let (app, tokens, tx) = app();
    let bearer = format!("Bearer {READ}");
    let resp = app
        .clone()
        .oneshot(request(
            "GET",
            "/api/v1/stream",
            [127, 0, 0, 1],
            &[("authorization", &bearer), ("accept", "text/event-stream")],
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body().into_data_stream();
    async fn next(body: &mut axum::body::BodyDataStream) -> Option<String> {
        tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .expect("stream stalled")
            .map(|r| String::from_utf8_lossy(&r.unwrap()).into_owned())
    }
    assert!(next(&mut body).await.unwrap().starts_with("retry:"));
    assert!(next(&mut body).await.unwrap().contains("id: 1\n"));
    tx.send(snapshot(2)).unwrap();
    assert!(next(&mut body).await.unwrap().contains("id: 2\n"));
    // Revoked (the token file no longer holds it): the next tick ends the stream.
    tokens.replace(TokenSet::default().with_static("other", OTHER, Scope::Read));
    tx.send(snapshot(3)).unwrap();
    assert_eq!(next(&mut body).await, None, "the stream outlived its token");
}

async fn sign_in(app: &axum::Router, token: &str) -> String {
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/session")
        .header(header::CONTENT_TYPE, "application/json")
        .extension(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 50000))))
        .body(Body::from(
            serde_json::json!({ "token": token }).to_string(),
        ))
        .unwrap();
    let (status, headers, _) = send(app, req).await;
    assert_eq!(status, StatusCode::OK);
    let cookie = headers[header::SET_COOKIE].to_str().unwrap();
    cookie.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn one_token_cannot_sign_out_another() {
    let (app, _, _tx) = app();
    let theirs = sign_in(&app, OTHER).await;
    let first_mine = sign_in(&app, READ).await;
    for _ in 0..(lookout_api::dashboard::session::MAX_SESSIONS_PER_TOKEN * 3) {
        sign_in(&app, READ).await;
    }
    // A route that needs a session (the session probe answers 200 `signed_in: false`).
    let with_cookie =
        |cookie: &str| request("GET", "/api/v1/host", [127, 0, 0, 1], &[("cookie", cookie)]);
    let (status, _, _) = send(&app, with_cookie(&theirs)).await;
    assert_eq!(status, StatusCode::OK, "another token's session was ended");
    let (status, _, _) = send(&app, with_cookie(&first_mine)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the token's own oldest session ends first"
    );
}
