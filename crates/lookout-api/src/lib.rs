//! # lookout-api
//!
//! The HTTP surface of lookout: the native `/api/v1`, the compatibility profiles of the
//! services lookout replaces (`iotconnect`, `docker-stats`), auth, the one error mapping,
//! OpenAPI and its offline docs page, and Prometheus metrics.
//!
//! Handlers only read the latest [`lookout_probe::Snapshot`]; nothing here reads `/proc` or
//! waits for the Docker engine on the request path (control actions excepted).
//! Must never depend on listeners, TLS, configuration files or the sampler loop: the
//! `lookout` binary owns those and hands this crate an [`AppState`].

pub mod access;
pub mod auth;
pub mod concertim;
pub mod dashboard;
pub mod error;
pub mod fsutil;
pub mod gpu_usage;
pub mod metrics;
pub mod openapi_complete;
pub mod profiles;
pub mod routes;
pub mod smart;
pub mod state;
pub mod throttle;

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

pub use error::ApiError;
pub use state::{ApiConfig, AppState};

#[derive(OpenApi)]
#[openapi(
    info(title = "lookout", description = "A secure, fast HTTP API over a machine, its containers and its cloud."),
    modifiers(&SecuritySchemes),
    tags(
        (name = "host", description = "Host figures from the latest sample"),
        (name = "containers", description = "Docker containers: figures and control"),
        (name = "gpu", description = "NVIDIA GPUs through NVML: load, memory, processes and their containers"),
        (name = "iotconnect", description = "Compatibility profile of the iotconnect service"),
        (name = "docker-stats", description = "Compatibility profile of the docker-stats service"),
        (name = "ops", description = "Health, readiness, metrics"),
        (name = "smart", description = "Hedged calls to a slow, unreliable upstream"),
        (name = "history", description = "Stored history: points, summaries, series"),
        (name = "perf-history", description = "Compatibility profile of the perf-history service"),
        (name = "alerts", description = "Threshold alerts: active, history, rules (admin to change), silences"),
        (name = "dashboard", description = "Browser sessions and the live stream of the web dashboard"),
        (name = "fleet", description = "Every host's figures, read from a PromQL engine that the hosts push to ([fleet] query_url)"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new("api_key"))),
        );
    }
}

/// Every documented route, with its OpenAPI document. The auth tests enumerate the document
/// this returns, so a route registered here is a route those tests call.
pub fn api_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::native::router())
        .merge(routes::gpu::router())
        .merge(routes::processes::router())
        .merge(profiles::iotconnect::router())
        .merge(profiles::docker_stats::router())
        .merge(routes::ops::router())
        .merge(profiles::smart::router())
        .merge(routes::history::router())
        .merge(profiles::perf_history::router())
        .merge(routes::alerts::router())
        .merge(routes::fleet::router())
        .merge(dashboard::router())
        .split_for_parts()
}

/// The OpenAPI document alone (for `lookout openapi` and tests), for the default limits.
pub fn openapi() -> utoipa::openapi::OpenApi {
    completed(api_routes().1, &ApiConfig::default())
}

/// The route attributes' document completed with the error answers, descriptions and
/// parameter constraints the middleware and parsers apply (see [`openapi_complete`]).
fn completed(doc: utoipa::openapi::OpenApi, config: &ApiConfig) -> utoipa::openapi::OpenApi {
    let Ok(mut value) = serde_json::to_value(&doc) else {
        return doc;
    };
    openapi_complete::complete(&mut value, config);
    serde_json::from_value(value).unwrap_or(doc)
}

/// The complete application: routes, docs, auth, limits, metrics, security headers.
pub fn app(state: AppState) -> Router {
    let (routes, api) = api_routes();
    let api = completed(api, &state.config);
    let body_limit = state.config.body_limit_bytes;
    routes
        .merge(SwaggerUi::new("/docs").url("/openapi.json", api))
        .merge(dashboard::pages())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Layers run bottom-up on the way in: compression → observe → headers → limits →
        // auth → handler.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            access::authorize,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), bound_request))
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(compression())
        .with_state(state)
}

/// gzip or br when the client's `Accept-Encoding` asks, for JSON, `/metrics` and pages alike.
/// tower-http's default predicate leaves out answers under 32 bytes, images and
/// `text/event-stream` (a compressor would hold back each event of the dashboard's live
/// stream until its buffer fills); answers that already carry a `Content-Encoding` (the
/// dashboard's pre-compressed assets) pass as they are.
fn compression() -> tower_http::compression::CompressionLayer {
    tower_http::compression::CompressionLayer::new()
        .gzip(true)
        .br(true)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn method_not_allowed() -> Response {
    let mut r = ApiError::BadRequest("method not allowed on this route".into()).into_response();
    *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    r
}

/// Bounds every request: declared body size, and total handling time.
async fn bound_request(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if matches!(declared, Some(n) if n > state.config.body_limit_bytes) {
        let mut r = ApiError::BadRequest(format!(
            "request body larger than {} bytes",
            state.config.body_limit_bytes
        ))
        .into_response();
        *r.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
        return r;
    }
    let limit = state.config.request_timeout;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::Timeout(format!("request took longer than {} ms", limit.as_millis()))
            .into_response(),
    }
}

/// A 413 is sent before the body was read, so the connection's byte stream is no longer at a
/// request boundary: say `Connection: close`, or a client that pools connections sends its
/// next request on one the server is closing (seen as a broken pipe under test).
pub(crate) fn close_if_body_unread(resp: &mut Response) {
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    close_if_body_unread(&mut resp);
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    // Data is never a document: a JSON answer opened in a browser may run and embed nothing.
    // (The dashboard and /docs pages set or need their own policy, so only JSON gets this.)
    let is_json = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        h.entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(HeaderValue::from_static(
                "default-src 'none'; frame-ancestors 'none'",
            ));
    }
    resp
}

/// Counts every request by method and route template and records its latency. Both labels
/// come from fixed sets (see [`metrics::method_label`]): this runs before auth, so anything
/// taken from the request as sent would let anyone grow `/metrics` without limit.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = metrics::method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| metrics::UNMATCHED_ROUTE.to_owned());
    let resp = next.run(req).await;
    state.metrics.observe(
        method,
        &route,
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}
