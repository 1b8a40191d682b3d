//! Response compression as a client negotiates it: gzip or br for JSON and `/metrics` when
//! `Accept-Encoding` asks (and the body decodes to the same answer), nothing when it does not,
//! and never for the dashboard's live event stream.

use std::io::Read;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request};
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

const TOKEN: &str = "lk_compression-test-token-0123456789";

fn app() -> axum::Router {
    let host = HostSnapshot {
        hostname: "compressible-host".into(),
        ..HostSnapshot::default()
    };
    let snapshot = Snapshot {
        taken_at_ms: 1,
        tick: 1,
        host,
        containers: ContainersView::Available { containers: vec![] },
        gpu: Default::default(),
        processes: None,
    };
    let (tx, rx) = watch::channel(Some(Arc::new(snapshot)));
    std::mem::forget(tx);
    let state = AppState::new(
        rx,
        SharedTokens::new(TokenSet::default().with_static("t", TOKEN, Scope::Admin)),
        Arc::new(NoopControl),
        ApiConfig::default(),
        Arc::new(Notify::new()),
    );
    lookout_api::app(state)
}

/// (Content-Encoding, Content-Type, decoded body) of one GET.
async fn get(
    app: &axum::Router,
    path: &str,
    accept_encoding: Option<&str>,
) -> (String, String, String) {
    let mut req = Request::get(path).header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    if let Some(e) = accept_encoding {
        req = req.header(header::ACCEPT_ENCODING, e);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("answer");
    assert_eq!(resp.status(), 200, "{path}");
    let h = |name| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (encoding, content_type) = (h(header::CONTENT_ENCODING), h(header::CONTENT_TYPE));
    let raw = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .expect("body");
    let mut text = String::new();
    match encoding.as_str() {
        "gzip" => {
            flate2::read::GzDecoder::new(&raw[..])
                .read_to_string(&mut text)
                .expect("valid gzip");
        }
        "br" => {
            brotli::Decompressor::new(&raw[..], 4096)
                .read_to_string(&mut text)
                .expect("valid brotli");
        }
        "" => text = String::from_utf8(raw.to_vec()).expect("utf-8"),
        other => panic!("unexpected encoding {other}"),
    }
    (encoding, content_type, text)
}

#[tokio::test]
async fn json_and_metrics_are_compressed_when_asked() {
    let app = app();
    for path in ["/api/v1/host", "/metrics", "/openapi.json"] {
        let (enc, _, plain) = get(&app, path, None).await;
        assert_eq!(enc, "", "{path}: not compressed unless asked");
        for (ask, want) in [("gzip", "gzip"), ("br", "br"), ("gzip;q=0.5, br", "br")] {
            let (enc, _, text) = get(&app, path, Some(ask)).await;
            assert_eq!(enc, want, "{path} with Accept-Encoding: {ask}");
            if path == "/metrics" {
                // Process figures move between two scrapes; the families stay.
                assert!(
                    text.contains("lookout_host_memory_total_bytes 0\n"),
                    "{text}"
                );
            } else {
                assert_eq!(text, plain, "{path} decodes to the same answer");
            }
        }
    }
    let (_, _, host) = get(&app, "/api/v1/host", Some("gzip")).await;
    assert!(host.contains("compressible-host"), "{host}");
}

#[tokio::test]
async fn the_live_stream_is_never_compressed() {
    let app = app();
    let req = Request::get("/api/v1/stream")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::ACCEPT, "text/event-stream")
        .header(header::ACCEPT_ENCODING, "gzip, br")
        .body(Body::empty())
        .expect("request");
    let resp = app.oneshot(req).await.expect("answer");
    assert_eq!(resp.status(), 200);
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    assert!(
        resp.headers().get(header::CONTENT_ENCODING).is_none(),
        "SSE must stay uncompressed"
    );
}
