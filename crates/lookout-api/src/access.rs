//! Who may call what. One middleware guards every route, so a route added later is
//! protected by default: only the paths listed as public here answer without a token.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::{Principal, Scope};
use crate::error::ApiError;
use crate::state::AppState;

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    Needs(Scope),
    /// Answers without credentials; a valid session cookie (or token) is identified. Only
    /// "who am I" (`GET /api/v1/session`): a page that is not signed in asks it first, and a
    /// 401 there would be an error in every browser console for an expected state.
    Identify,
}

/// The access policy. Everything not named here needs at least `read`.
pub fn required_access(method: &Method, path: &str, public_docs: bool) -> Access {
    if path == "/healthz" {
        return Access::Public;
    }
    // The dashboard's page and assets, and its sign-in (which checks the token it is given).
    if path == "/" || path.starts_with("/assets/") {
        return Access::Public;
    }
    if path == "/api/v1/session" {
        return match *method {
            Method::POST => Access::Public,
            Method::GET | Method::HEAD => Access::Identify,
            _ => Access::Needs(Scope::Read),
        };
    }
    if public_docs && (path == "/openapi.json" || path == "/docs" || path.starts_with("/docs/")) {
        return Access::Public;
    }
    let mutating = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if path.starts_with("/api/v1/containers") && mutating {
        return Access::Needs(Scope::Control);
    }
    if mutating {
        // Any other state-changing route is admin-only until it is given a narrower scope.
        return Access::Needs(Scope::Admin);
    }
    Access::Needs(Scope::Read)
}

/// The compatibility profile a path belongs to decides the shape of an auth failure,
/// because existing clients read `message` (iotconnect) or `error` (docker-stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    IotConnect,
    DockerStats,
    Native,
}

fn profile_of(path: &str) -> Profile {
    if path.starts_with("/data/") {
        Profile::IotConnect
    } else if path == "/stats" {
        Profile::DockerStats
    } else {
        Profile::Native
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Denied {
    Missing,
    Malformed,
    Invalid,
    Scope(Scope),
    /// A cookie-authenticated state-changing request without the session's CSRF token.
    Csrf,
}

impl Denied {
    fn message(self) -> String {
        match self {
            Denied::Missing => "Authorization header is missing or invalid".into(),
            Denied::Malformed => "Authorization header must be `Bearer <token>`".into(),
            Denied::Invalid => "token is invalid".into(),
            Denied::Scope(s) => format!("this token lacks the `{s}` scope"),
            Denied::Csrf => "missing or wrong X-CSRF-Token header for this session".into(),
        }
    }
}

fn deny(profile: Profile, why: Denied) -> Response {
    let status = match why {
        Denied::Scope(_) | Denied::Csrf => StatusCode::FORBIDDEN,
        _ => StatusCode::UNAUTHORIZED,
    };
    let mut resp = match profile {
        Profile::IotConnect => {
            (status, axum::Json(json!({ "message": why.message() }))).into_response()
        }
        // The original answered 403 with this exact text for any key problem.
        Profile::DockerStats => (
            StatusCode::FORBIDDEN,
            axum::Json(json!({ "error": "Unauthorized. Invalid API key." })),
        )
            .into_response(),
        Profile::Native => match why {
            Denied::Scope(_) | Denied::Csrf => ApiError::Forbidden(why.message()).into_response(),
            _ => ApiError::Unauthorized(why.message()).into_response(),
        },
    };
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"lookout\""),
        );
    }
    resp
}

/// The presented token: `Authorization: Bearer <token>` (scheme case-insensitive, RFC 6750),
/// or `api_key=` in the query on the docker-stats route, which its clients send.
fn presented_token(req: &Request, profile: Profile) -> Result<&str, Denied> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| Denied::Malformed)?;
        let (scheme, rest) = value.split_once(' ').ok_or(Denied::Malformed)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Denied::Malformed);
        }
        let token = rest.trim();
        if token.is_empty() || token.contains(' ') {
            return Err(Denied::Malformed);
        }
        return Ok(token);
    }
    if profile == Profile::DockerStats {
        if let Some(q) = req.uri().query() {
            for pair in q.split('&') {
                if let Some(v) = pair.strip_prefix("api_key=") {
                    return Ok(v);
                }
            }
        }
    }
    Err(Denied::Missing)
}

/// The principal of a valid session cookie, with the CSRF check for state-changing methods.
fn session_principal(
    state: &AppState,
    req: &Request,
) -> Result<
    (
        crate::auth::Principal,
        crate::dashboard::session::SessionAuth,
    ),
    Denied,
> {
    use crate::dashboard::session;
    let id = session::cookie_value(req.headers()).ok_or(Denied::Missing)?;
    let (session_of, auth) = state.dashboard.sessions.lookup(id).ok_or(Denied::Invalid)?;
    // The session lives only as long as its token: revoked (or re-scoped) tokens apply at once.
    let principal = state
        .tokens
        .current()
        .verify_hash(&session_of.token_sha256)
        .ok_or(Denied::Invalid)?;
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if mutating {
        let presented = req
            .headers()
            .get(session::CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !session::csrf_matches(&auth.csrf, presented) {
            return Err(Denied::Csrf);
        }
    }
    Ok((principal, auth))
}

/// Counts a failed credential against this client address: the 429 to send once it has
/// failed too often (only failures are metered, so a valid token is never slowed).
fn meter_failure(state: &AppState, req: &Request) -> Option<Response> {
    let client = crate::throttle::ClientKey::from_extensions(req.extensions());
    state
        .auth_failures
        .record_failure(client)
        .err()
        .map(crate::throttle::too_many_failures)
}

/// A wrong token or unknown session: 401, or 429 once this client address has failed too
/// often.
fn deny_guess(state: &AppState, req: &Request, profile: Profile) -> Response {
    meter_failure(state, req).unwrap_or_else(|| deny(profile, Denied::Invalid))
}

/// The auth middleware. The verified principal is put in the request's extensions.
pub async fn authorize(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| req.uri().path().to_owned());
    let need = required_access(req.method(), &path, state.config.public_docs);
    let scope = match need {
        Access::Public => return next.run(req).await,
        Access::Identify => Scope::Read,
        Access::Needs(scope) => scope,
    };
    if !state.config.auth_enabled {
        return next.run(req).await;
    }
    let profile = profile_of(&path);
    let principal = match presented_token(&req, profile) {
        Ok(token) => match state.tokens.current().verify(token) {
            Some(p) => p,
            None => return deny_guess(&state, &req, profile),
        },
        // No token: a dashboard session cookie is the alternative; a state-changing request
        // made with it must also carry the session's CSRF token.
        Err(Denied::Missing) => match session_principal(&state, &req) {
            Ok((p, session)) => {
                req.extensions_mut().insert(session);
                p
            }
            // No credentials at all: the session probe answers "signed out".
            Err(Denied::Missing) if need == Access::Identify => return next.run(req).await,
            // A cookie that no longer names a session: signed out too, but metered like any
            // other failed credential so the probe cannot be used to guess session ids.
            Err(Denied::Invalid) if need == Access::Identify => {
                if let Some(too_many) = meter_failure(&state, &req) {
                    return too_many;
                }
                return next.run(req).await;
            }
            Err(Denied::Invalid) => return deny_guess(&state, &req, profile),
            Err(why) => return deny(profile, why),
        },
        Err(why) => return deny(profile, why),
    };
    if principal.scope < scope {
        return deny(profile, Denied::Scope(scope));
    }
    req.extensions_mut().insert::<Principal>(principal);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert_eq!(
            required_access(&Method::GET, "/healthz", false),
            Access::Public
        );
        assert_eq!(
            required_access(&Method::GET, "/openapi.json", false),
            Access::Needs(Scope::Read)
        );
        assert_eq!(
            required_access(&Method::GET, "/docs/", true),
            Access::Public
        );
        assert_eq!(
            required_access(&Method::POST, "/api/v1/containers/{id}/{action}", false),
            Access::Needs(Scope::Control)
        );
        assert_eq!(
            required_access(&Method::DELETE, "/api/v1/containers/{id}", false),
            Access::Needs(Scope::Control)
        );
        assert_eq!(
            required_access(&Method::POST, "/api/v1/something-new", false),
            Access::Needs(Scope::Admin)
        );
        assert_eq!(
            required_access(&Method::GET, "/nowhere", false),
            Access::Needs(Scope::Read)
        );
        assert_eq!(required_access(&Method::GET, "/", false), Access::Public);
        assert_eq!(
            required_access(&Method::GET, "/assets/{file}", false),
            Access::Public
        );
        assert_eq!(
            required_access(&Method::POST, "/api/v1/session", false),
            Access::Public
        );
        assert_eq!(
            required_access(&Method::DELETE, "/api/v1/session", false),
            Access::Needs(Scope::Read)
        );
        assert_eq!(
            required_access(&Method::GET, "/api/v1/session", false),
            Access::Identify
        );
    }
}
