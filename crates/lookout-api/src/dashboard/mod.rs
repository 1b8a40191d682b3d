//! The live web dashboard: the page and its assets (embedded, gzip-compressed once at start,
//! named by content hash), browser sessions, and the live server-sent-events stream.
//!
//! Routes: `GET /` and `GET /assets/{file}` (public), `POST /api/v1/session` (sign-in, public,
//! rate-limited on failure), `GET`/`DELETE /api/v1/session`, `GET /api/v1/stream` (SSE).

pub mod session;
pub mod stream;

use std::collections::HashMap;
use std::io::Write;
use std::sync::OnceLock;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Principal, Scope};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use session::SessionAuth;

pub use session::Dashboard;

/// The page's Content-Security-Policy: nothing inline, nothing from another origin.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

// ---------------------------------------------------------------------------------------------
// Assets

struct Asset {
    content_type: &'static str,
    raw: Bytes,
    gzip: Bytes,
}

struct Assets {
    index: Asset,
    /// Hashed file name (`app.3f2a….js`) → asset.
    by_name: HashMap<String, Asset>,
}

/// Dependencies before their dependants: `@name@` in an asset (the page, or a module's
/// `import`) becomes the hashed path of an asset listed before it.
const SOURCES: &[(&str, &str, &[u8])] = &[
    (
        "alerts.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/alerts.js"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/app.js"),
    ),
    (
        "fleet.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/fleet.js"),
    ),
    (
        "processes.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/processes.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/app.css"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_bytes!("../../assets/icon.svg"),
    ),
];
const INDEX: &[u8] = include_bytes!("../../assets/index.html");

fn gzip(data: &[u8]) -> Bytes {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(data);
    Bytes::from(enc.finish().unwrap_or_default())
}

fn hashed_name(name: &str, data: &[u8]) -> String {
    let digest = hex::encode(Sha256::digest(data));
    match name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.{}.{ext}", &digest[..12]),
        None => format!("{name}.{}", &digest[..12]),
    }
}

/// `data` with every `@name@` of an earlier asset replaced by its hashed path (unchanged, and
/// not copied, when it names none).
fn link(data: &'static [u8], paths: &[(String, String)]) -> Bytes {
    let text = match std::str::from_utf8(data) {
        Ok(t) if paths.iter().any(|(p, _)| t.contains(p.as_str())) => t,
        _ => return Bytes::from_static(data),
    };
    let mut out = text.to_owned();
    for (placeholder, path) in paths {
        out = out.replace(placeholder, path);
    }
    Bytes::from(out)
}

fn assets() -> &'static Assets {
    static ASSETS: OnceLock<Assets> = OnceLock::new();
    ASSETS.get_or_init(|| {
        let mut index = String::from_utf8_lossy(INDEX).into_owned();
        let mut by_name = HashMap::new();
        let mut paths: Vec<(String, String)> = Vec::new();
        for (name, content_type, data) in SOURCES {
            let data = link(data, &paths);
            let hashed = hashed_name(name, &data);
            paths.push((format!("@{name}@"), format!("/assets/{hashed}")));
            by_name.insert(
                hashed,
                Asset {
                    content_type,
                    gzip: gzip(&data),
                    raw: data,
                },
            );
        }
        for (placeholder, path) in &paths {
            index = index.replace(placeholder, path);
        }
        Assets {
            index: Asset {
                content_type: "text/html; charset=utf-8",
                gzip: gzip(index.as_bytes()),
                raw: Bytes::from(index),
            },
            by_name,
        }
    })
}

/// (file name, raw bytes, gzip bytes) of every asset, the page first (for tests and benches).
pub fn asset_sizes() -> Vec<(String, usize, usize)> {
    let a = assets();
    let mut out = vec![("/".to_string(), a.index.raw.len(), a.index.gzip.len())];
    for (name, asset) in &a.by_name {
        out.push((name.clone(), asset.raw.len(), asset.gzip.len()));
    }
    out
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| {
            let mut parts = e.trim().split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

/// Headers every dashboard response carries on top of the app-wide ones.
fn harden(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), interest-cohort=()"),
    );
}

fn serve(asset: &Asset, req_headers: &HeaderMap, cache: &'static str) -> Response {
    let gz = accepts_gzip(req_headers);
    let mut resp = Response::new(Body::from(if gz {
        asset.gzip.clone()
    } else {
        asset.raw.clone()
    }));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    if gz {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    harden(h);
    resp
}

async fn index(headers: HeaderMap) -> Response {
    serve(&assets().index, &headers, "no-cache")
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    match assets().by_name.get(&file) {
        Some(a) => serve(a, &headers, "public, max-age=31536000, immutable"),
        None => ApiError::NotFound("no such asset".into()).into_response(),
    }
}

/// The page and its assets (public; not part of the API document).
pub fn pages() -> Router<AppState> {
    // Compress once, now, rather than on the first request.
    let _ = assets();
    Router::new()
        .route("/", get(index))
        .route("/assets/{file}", get(asset))
}

/// The documented API routes of the dashboard.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sign_in, current_session, sign_out))
        .routes(routes!(live_stream))
}

// ---------------------------------------------------------------------------------------------
// Sessions

#[derive(Deserialize, ToSchema)]
pub struct SignIn {
    /// A lookout token (`lk_…`), exchanged once for a session cookie.
    pub token: String,
}

/// Who the caller is. Not signed in: `{"signed_in": false}` and nothing else.
#[derive(Serialize, ToSchema)]
pub struct SessionInfo {
    pub signed_in: bool,
    /// The token's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `read`, `control` or `admin`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub scope: Option<Scope>,
    /// Send as `X-CSRF-Token` on every state-changing request made with the cookie.
    /// Absent when the request was authenticated by a Bearer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf: Option<String>,
    /// When the session ends (ms since the epoch); absent for a Bearer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<i64>,
}

impl SessionInfo {
    fn signed_out() -> Self {
        Self {
            signed_in: false,
            name: None,
            scope: None,
            csrf: None,
            expires_at_ms: None,
        }
    }
}

/// Sign in: exchanges a token for a session cookie (`HttpOnly`, `Secure`, `SameSite=Strict`).
#[utoipa::path(post, path = "/api/v1/session", tag = "dashboard", request_body = SignIn,
    responses((status = 200, body = SessionInfo, description = "Signed in; the cookie is set"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 429, body = ErrorBody, description = "Too many failed attempts from this address"),
              (status = 503, body = ErrorBody, description = "Every session slot is taken")))]
async fn sign_in(
    State(state): State<AppState>,
    peer: Option<Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    body: Result<Json<SignIn>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let d = &state.dashboard;
    let token = body.token.trim();
    let principal = if token.is_empty() || token.len() > 512 {
        None
    } else {
        state.tokens.current().verify(token)
    };
    // The throttle only meters failures (per client address, shared with the Bearer check):
    // a valid token always signs in, so a guesser who drains it cannot lock real users out.
    // Checking a token is one SHA-256 and a constant-time compare, so verifying before
    // refusing costs nothing worth saving.
    let Some(principal) = principal else {
        let client = crate::throttle::ClientKey::of(peer.map(|Extension(c)| c.0));
        if let Err(wait) = state.auth_failures.record_failure(client) {
            tracing::debug!("dashboard sign-in refused: unknown token (rate limited)");
            return crate::throttle::too_many_failures(wait);
        }
        tracing::info!("dashboard sign-in refused: unknown token");
        return ApiError::Unauthorized("that token is not valid (or has been revoked)".into())
            .into_response();
    };
    tracing::info!(name = %principal.name, scope = %principal.scope, "dashboard sign-in");
    let Some(s) = d.sessions.create(principal.clone()) else {
        return ApiError::Unavailable(
            "too many dashboard sessions are open; try again later".into(),
        )
        .into_response();
    };
    let mut resp = Json(SessionInfo {
        signed_in: true,
        name: Some(principal.name),
        scope: Some(principal.scope),
        csrf: Some(s.csrf),
        expires_at_ms: Some(s.expires_at_ms),
    })
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&s.cookie_value)) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// Who this request is: scope, and the session's CSRF token (so a reloaded page can act).
/// Without a live session cookie (or a token) the answer is `{"signed_in": false}`, not an
/// error: the page asks this before anyone has signed in.
#[utoipa::path(get, path = "/api/v1/session", tag = "dashboard", security((), ("bearer" = [])),
    responses((status = 200, body = SessionInfo, description = "Who the caller is; `signed_in: false` without a live session or token"),
              (status = 401, body = ErrorBody, description = "An `Authorization` header was sent and its token is not valid")))]
async fn current_session(
    principal: Option<Extension<Principal>>,
    session: Option<Extension<SessionAuth>>,
) -> Json<SessionInfo> {
    let Some(Extension(p)) = principal else {
        return Json(SessionInfo::signed_out());
    };
    Json(SessionInfo {
        signed_in: true,
        name: Some(p.name),
        scope: Some(p.scope),
        csrf: session.as_ref().map(|s| s.csrf.clone()),
        expires_at_ms: session.map(|s| s.expires_at_ms),
    })
}

/// Sign out: revokes the session the cookie names (needs `X-CSRF-Token`). A request made
/// with a Bearer token has no session to end (403): revoke tokens with `lookout token revoke`.
#[utoipa::path(delete, path = "/api/v1/session", tag = "dashboard", security(("bearer" = [])),
    responses((status = 204, description = "Signed out; the cookie is cleared"),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn sign_out(
    State(state): State<AppState>,
    session: Option<Extension<SessionAuth>>,
) -> Response {
    let Some(Extension(s)) = session else {
        return ApiError::Forbidden(
            "only a browser session can be signed out; revoke tokens with `lookout token revoke`"
                .into(),
        )
        .into_response();
    };
    state.dashboard.sessions.revoke(&s.key);
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie()) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

// ---------------------------------------------------------------------------------------------
// Live stream

/// Live snapshots as server-sent events (`event: snapshot`, `data:` the snapshot JSON), one
/// per sampler tick. Send `Accept: text/event-stream`. Slow readers are dropped.
#[utoipa::path(get, path = "/api/v1/stream", tag = "dashboard", security(("bearer" = [])),
    responses((status = 200, content_type = "text/event-stream", description = "One `snapshot` event per tick"),
              (status = 401, body = ErrorBody),
              (status = 406, body = ErrorBody, description = "The client does not accept text/event-stream")))]
async fn live_stream(
    State(state): State<AppState>,
    session: Option<Extension<SessionAuth>>,
    principal: Option<Extension<Principal>>,
    req: Request,
) -> Response {
    let wants_sse = req
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"));
    if !wants_sse {
        let mut r = ApiError::BadRequest(
            "this route streams server-sent events: send `Accept: text/event-stream`".into(),
        )
        .into_response();
        *r.status_mut() = StatusCode::NOT_ACCEPTABLE;
        return r;
    }
    let d = &state.dashboard;
    let (first, rx) = d.hub.subscribe(&state.snapshot);
    // The credential is checked again every tick, so revoking it ends the stream.
    let credential = match (session, principal) {
        (Some(Extension(s)), _) => stream::Credential::Session(d.sessions.clone(), s.key),
        (None, Some(Extension(p))) => {
            stream::Credential::Token(state.tokens.clone(), p.token_sha256)
        }
        (None, None) => stream::Credential::None,
    };
    let mut resp = Response::new(stream::body(first, rx, credential));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_hashed_compressed_and_linked() {
        let a = assets();
        let html = String::from_utf8_lossy(&a.index.raw);
        assert!(!html.contains('@'), "unreplaced placeholder in index.html");
        // Linked from the page, or imported by another asset (a module's `import`).
        let texts: Vec<String> = a
            .by_name
            .values()
            .map(|x| String::from_utf8_lossy(&x.raw).into_owned())
            .chain([html.to_string()])
            .collect();
        for name in a.by_name.keys() {
            let path = format!("/assets/{name}");
            assert!(texts.iter().any(|t| t.contains(&path)), "{name} not linked");
        }
        for text in &texts {
            assert!(
                !text.contains("'@") && !text.contains("\"@"),
                "unreplaced placeholder"
            );
        }
        assert!(
            !html.contains("<script>") && !html.contains("style="),
            "inline code"
        );
        for (name, raw, gz) in asset_sizes() {
            assert!(gz < raw, "{name}: {gz} !< {raw}");
        }
    }

    #[test]
    fn gzip_negotiation() {
        let mut h = HeaderMap::new();
        assert!(!accepts_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, "br, gzip;q=0.8".parse().unwrap());
        assert!(accepts_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, "gzip;q=0".parse().unwrap());
        assert!(!accepts_gzip(&h));
    }
}
