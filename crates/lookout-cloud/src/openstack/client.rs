//! The HTTP side of the OpenStack backend: Keystone v3 password auth with a token cache,
//! endpoints from the service catalog, bounded timeouts, and upstream errors turned into
//! [`CloudError`]s that carry the upstream status and message.
//!
//! Tokens and passwords are never logged: the cache is keyed by a SHA-256 of the credential
//! set, and no `Debug` here prints a token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::error::{CloudError, CloudResult};
use crate::model::CloudEnv;

/// A token is used until this long before Keystone says it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(120);
/// Credential sets cached at most (expired ones go first, then all).
const MAX_SESSIONS: usize = 1024;

/// One catalog endpoint.
#[derive(Debug, Clone)]
struct Endpoint {
    service_type: String,
    interface: String,
    region: Option<String>,
    url: String,
}

/// A Keystone token with its catalog.
pub struct Session {
    token: String,
    /// `…/v3` of the credential set.
    pub identity_url: String,
    pub user_id: String,
    pub project_id: Option<String>,
    catalog: Vec<Endpoint>,
    valid_until: Instant,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("token", &"<redacted>")
            .field("user_id", &self.user_id)
            .field("project_id", &self.project_id)
            .finish_non_exhaustive()
    }
}

/// The answer of a successful call.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub request_id: Option<String>,
    pub body: Value,
}

/// Keystone, Nova and Heat over HTTP.
pub struct OsClient {
    http: reqwest::Client,
    region: Option<String>,
    cache: Mutex<HashMap<[u8; 32], Arc<Session>>>,
    /// The Keystone URLs a `cloud_env` may name (normalised by [`normalise_auth_url`]);
    /// `None` allows any.
    allowed_auth_urls: Option<Vec<String>>,
}

/// The config key that lists the Keystone URLs `cloud_env.auth_url` may name.
pub const ALLOWED_AUTH_URLS_KEY: &str = "concertim.openstack.allowed_auth_urls";

/// `auth_url` as compared with the allow-list: `…/v3`, scheme and host lower-case, default
/// port dropped. `None` when it is not an http(s) URL.
pub fn normalise_auth_url(auth_url: &str) -> Option<String> {
    let url = reqwest::Url::parse(&identity_base(auth_url)).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    Some(url.as_str().trim_end_matches('/').to_string())
}

/// `auth_url` as given (with or without `/v3`, trailing slash or not) → `…/v3`.
pub fn identity_base(auth_url: &str) -> String {
    let u = auth_url.trim().trim_end_matches('/');
    if u.ends_with("/v3") {
        u.to_string()
    } else {
        format!("{u}/v3")
    }
}

/// Percent-encodes a query value (key pair names may hold spaces and `@`).
pub fn enc(s: &str) -> String {
    crate::ids::percent_encode(s)
}

/// One path segment of an upstream URL: `.`, `..`, empty and over-long are refused, the
/// rest percent-encoded (see [`crate::ids`]). Every id in a path goes through here.
pub fn seg(s: &str) -> CloudResult<String> {
    crate::ids::segment(s)
}

fn cache_key(env: &CloudEnv) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [
        Some(identity_base(&env.auth_url)),
        env.user_id.clone(),
        env.username.clone(),
        env.user_domain_name.clone(),
        Some(env.password.clone()),
        env.project_id.clone(),
        env.project_name.clone(),
        env.project_domain_name.clone(),
    ] {
        match part {
            Some(p) => {
                h.update([1u8]);
                h.update((p.len() as u64).to_le_bytes());
                h.update(p.as_bytes());
            }
            None => h.update([0u8]),
        }
    }
    h.finalize().into()
}

/// The Keystone v3 password-auth body of a credential set.
pub fn auth_body(env: &CloudEnv) -> Value {
    let user_domain = env.user_domain_name.as_deref().unwrap_or("Default");
    let user = match (&env.user_id, &env.username) {
        (Some(id), _) => json!({"id": id, "password": env.password}),
        (None, Some(name)) => {
            json!({"name": name, "domain": {"name": user_domain}, "password": env.password})
        }
        (None, None) => json!({"password": env.password}),
    };
    let project_domain = env.project_domain_name.as_deref().unwrap_or("Default");
    let scope = match (&env.project_id, &env.project_name) {
        (Some(id), _) => Some(json!({"project": {"id": id}})),
        (None, Some(name)) => {
            Some(json!({"project": {"name": name, "domain": {"name": project_domain}}}))
        }
        (None, None) => None,
    };
    let mut auth = json!({"identity": {"methods": ["password"], "password": {"user": user}}});
    if let Some(s) = scope {
        auth["scope"] = s;
    }
    json!({ "auth": auth })
}

/// The message of an OpenStack error body: Keystone's `{"error": {"message"}}`, Nova's
/// `{"<kind>": {"message"}}`, Heat's `{"error": {"message"}, "explanation"}`. A body that is
/// not such JSON is never passed on (it could be any page the URL led to): only its absence
/// is said.
pub fn upstream_message(body: &[u8]) -> String {
    const NONE: &str = "no JSON error message in the answer";
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return NONE.into();
    };
    let found = v
        .pointer("/error/message")
        .and_then(Value::as_str)
        .or_else(|| v.get("message").and_then(Value::as_str))
        .or_else(|| {
            v.as_object()?
                .values()
                .find_map(|x| x.get("message").and_then(Value::as_str))
        })
        .or_else(|| v.get("explanation").and_then(Value::as_str));
    match found {
        Some(m) => m.chars().take(300).collect(),
        None => NONE.into(),
    }
}

/// An upstream failure status passed on with its message.
pub fn upstream_error(service: &str, status: u16, body: &[u8]) -> CloudError {
    let msg = format!("{service}: {}", upstream_message(body));
    match status {
        401 => CloudError::Unauthenticated(msg),
        400..=599 => CloudError::Status {
            status,
            kind: match status {
                400 => "BadRequest",
                403 => "Forbidden",
                404 => "NotFound",
                409 => "Conflict",
                413 => "OverLimit",
                _ if status >= 500 => "OpenStackError",
                _ => "OpenStackError",
            },
            message: msg,
        },
        _ => CloudError::Status {
            status: 502,
            kind: "BadGateway",
            message: format!("{msg} (unexpected status {status})"),
        },
    }
}

/// A transport failure: 504 on a timeout, 502 otherwise.
fn transport_error(service: &str, e: &reqwest::Error) -> CloudError {
    let what = e
        .url()
        .map(|u| {
            format!(
                "{}://{}",
                u.scheme(),
                u.host_str().map(|h| h.to_string()).unwrap_or_default()
                    + &u.port().map(|p| format!(":{p}")).unwrap_or_default()
            )
        })
        .unwrap_or_default();
    if e.is_timeout() {
        CloudError::Status {
            status: 504,
            kind: "GatewayTimeout",
            message: format!("{service} at {what} did not answer in time"),
        }
    } else {
        CloudError::Status {
            status: 502,
            kind: "BadGateway",
            message: format!("cannot reach {service} at {what}: {}", root_cause(e)),
        }
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

fn parse_expiry(s: &str) -> Option<Instant> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    let left = t - time::OffsetDateTime::now_utc();
    let left = Duration::try_from(left).ok()?;
    Some(Instant::now() + left.saturating_sub(EXPIRY_MARGIN))
}

impl OsClient {
    pub fn new(
        region: Option<String>,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> CloudResult<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| CloudError::Internal(format!("http client: {e}")))?;
        Ok(Self {
            http,
            region: region.filter(|r| !r.is_empty()),
            cache: Mutex::new(HashMap::new()),
            allowed_auth_urls: None,
        })
    }

    /// Only these Keystone URLs may be named by a `cloud_env` (any other is refused with
    /// 403 before any request leaves): a JWT holder cannot make lookout call other hosts.
    pub fn with_allowed_auth_urls(mut self, urls: &[String]) -> CloudResult<Self> {
        let mut allowed = Vec::new();
        for u in urls {
            allowed.push(normalise_auth_url(u).ok_or_else(|| {
                CloudError::Internal(format!(
                    "{ALLOWED_AUTH_URLS_KEY}: {u:?} is not an http:// or https:// URL"
                ))
            })?);
        }
        self.allowed_auth_urls = Some(allowed);
        Ok(self)
    }

    /// Refuses an `auth_url` outside the allow-list (403, naming the key to set).
    fn check_auth_url(&self, auth_url: &str) -> CloudResult<()> {
        let Some(normal) = normalise_auth_url(auth_url) else {
            return Err(CloudError::invalid(
                "cloud_env.auth_url",
                "must be an http:// or https:// URL",
            ));
        };
        match &self.allowed_auth_urls {
            Some(allowed) if !allowed.contains(&normal) => Err(CloudError::Forbidden(format!(
                "cloud_env.auth_url {normal} is not an allowed Keystone URL; \
                 the operator can add it to {ALLOWED_AUTH_URLS_KEY}"
            ))),
            _ => Ok(()),
        }
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Arc<Session>> {
        let mut c = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        match c.get(key) {
            Some(s) if s.valid_until > Instant::now() => Some(s.clone()),
            Some(_) => {
                c.remove(key);
                None
            }
            None => None,
        }
    }

    /// Forgets every cached session holding `token` (Keystone refused it).
    fn forget(&self, s: &Session) {
        let mut c = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        c.retain(|_, v| v.token != s.token);
    }

    /// How many sessions are cached (tests).
    pub fn cached_sessions(&self) -> usize {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// A token for `env`, from the cache while it is valid, else from Keystone.
    pub async fn session(&self, env: &CloudEnv) -> CloudResult<Arc<Session>> {
        self.check_auth_url(&env.auth_url)?;
        let key = cache_key(env);
        if let Some(s) = self.cached(&key) {
            return Ok(s);
        }
        let base = identity_base(&env.auth_url);
        let resp = self
            .http
            .post(format!("{base}/auth/tokens"))
            .json(&auth_body(env))
            .send()
            .await
            .map_err(|e| transport_error("keystone", &e))?;
        let status = resp.status().as_u16();
        let token = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| transport_error("keystone", &e))?;
        if status == 401 {
            return Err(CloudError::Unauthenticated(format!(
                "keystone refused the credentials in cloud_env: {}",
                upstream_message(&bytes)
            )));
        }
        if !(200..300).contains(&status) {
            return Err(upstream_error("keystone", status, &bytes));
        }
        let token = token.ok_or_else(|| CloudError::Status {
            status: 502,
            kind: "BadGateway",
            message: "keystone answered without X-Subject-Token".into(),
        })?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| CloudError::Status {
            status: 502,
            kind: "BadGateway",
            message: format!("keystone's token body is not JSON: {e}"),
        })?;
        let t = &v["token"];
        let mut catalog = Vec::new();
        for svc in t["catalog"].as_array().into_iter().flatten() {
            let ty = svc["type"].as_str().unwrap_or_default();
            for ep in svc["endpoints"].as_array().into_iter().flatten() {
                if let Some(url) = ep["url"].as_str() {
                    catalog.push(Endpoint {
                        service_type: ty.to_string(),
                        interface: ep["interface"].as_str().unwrap_or_default().to_string(),
                        region: ep["region_id"]
                            .as_str()
                            .or_else(|| ep["region"].as_str())
                            .map(str::to_string),
                        url: url.trim_end_matches('/').to_string(),
                    });
                }
            }
        }
        let valid_until = t["expires_at"]
            .as_str()
            .and_then(parse_expiry)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(60));
        let s = Arc::new(Session {
            token,
            identity_url: base,
            user_id: t["user"]["id"].as_str().unwrap_or_default().to_string(),
            project_id: t["project"]["id"].as_str().map(str::to_string),
            catalog,
            valid_until,
        });
        let now = Instant::now();
        if s.valid_until > now {
            let mut c = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if c.len() >= MAX_SESSIONS {
                c.retain(|_, v| v.valid_until > now);
                if c.len() >= MAX_SESSIONS {
                    c.clear();
                }
            }
            c.insert(key, s.clone());
        }
        Ok(s)
    }

    /// The public endpoint of `service_type` in the configured region (any region if none).
    pub fn endpoint(&self, s: &Session, service_type: &str) -> CloudResult<String> {
        if service_type == "identity" {
            return Ok(s.identity_url.clone());
        }
        let pick = |iface: &str| {
            s.catalog.iter().find(|e| {
                e.service_type == service_type
                    && e.interface == iface
                    && match (&self.region, &e.region) {
                        (Some(want), Some(have)) => want == have,
                        (Some(_), None) => false,
                        (None, _) => true,
                    }
            })
        };
        pick("public")
            .or_else(|| pick("internal"))
            .map(|e| e.url.clone())
            .ok_or_else(|| {
                let why = if s.project_id.is_none() {
                    " (the token has no project scope: give cloud_env.project_id or project_name)"
                } else {
                    ""
                };
                CloudError::Status {
                    status: 502,
                    kind: "BadGateway",
                    message: format!(
                        "the service catalog has no {service_type} endpoint{}{why}",
                        self.region
                            .as_ref()
                            .map(|r| format!(" in region {r}"))
                            .unwrap_or_default()
                    ),
                }
            })
    }

    /// Calls `service_type` at `path` (joined to its catalog URL). Non-2xx answers become
    /// errors with the upstream status and message.
    pub async fn call(
        &self,
        s: &Session,
        service_type: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        microversion: Option<&str>,
    ) -> CloudResult<Reply> {
        let base = self.endpoint(s, service_type)?;
        let name = match service_type {
            "identity" => "keystone",
            "compute" => "nova",
            "orchestration" => "heat",
            other => other,
        };
        let mut rb = self
            .http
            .request(method, format!("{base}{path}"))
            .header("X-Auth-Token", &s.token)
            .header("Accept", "application/json");
        if let Some(mv) = microversion {
            rb = rb
                .header("OpenStack-API-Version", format!("compute {mv}"))
                .header("X-OpenStack-Nova-API-Version", mv);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let resp = rb.send().await.map_err(|e| transport_error(name, &e))?;
        let status = resp.status().as_u16();
        let request_id = resp
            .headers()
            .get("x-openstack-request-id")
            .or_else(|| resp.headers().get("x-compute-request-id"))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = resp.bytes().await.map_err(|e| transport_error(name, &e))?;
        if !(200..300).contains(&status) {
            if status == 401 {
                self.forget(s);
            }
            return Err(upstream_error(name, status, &bytes));
        }
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Ok(Reply {
            status,
            request_id,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_base_adds_v3() {
        assert_eq!(identity_base("http://k:5000"), "http://k:5000/v3");
        assert_eq!(identity_base("http://k:5000/v3/"), "http://k:5000/v3");
    }

    #[test]
    fn auth_body_shapes() {
        let env = CloudEnv {
            auth_url: "http://k/v3".into(),
            username: Some("u".into()),
            password: "p".into(),
            project_name: Some("pr".into()),
            ..Default::default()
        };
        let b = auth_body(&env);
        assert_eq!(
            b["auth"]["identity"]["password"]["user"]["domain"]["name"],
            "Default"
        );
        assert_eq!(b["auth"]["scope"]["project"]["name"], "pr");
        let env = CloudEnv {
            auth_url: "http://k/v3".into(),
            user_id: Some("id1".into()),
            password: "p".into(),
            project_id: Some("p1".into()),
            ..Default::default()
        };
        let b = auth_body(&env);
        assert_eq!(b["auth"]["identity"]["password"]["user"]["id"], "id1");
        assert_eq!(b["auth"]["scope"]["project"]["id"], "p1");
        // Different credential sets never share a cache entry.
        let mut other = env.clone();
        other.password = "q".into();
        assert_ne!(cache_key(&env), cache_key(&other));
    }

    #[test]
    fn messages_of_each_service() {
        assert_eq!(
            upstream_message(br#"{"error": {"message": "no", "code": 404}}"#),
            "no"
        );
        assert_eq!(
            upstream_message(br#"{"itemNotFound": {"message": "gone", "code": 404}}"#),
            "gone"
        );
        // Whatever is not an OpenStack JSON error is never passed on (an internal page).
        for body in [
            &b"plain"[..],
            b"<html>internal secret</html>",
            b"{\"other\": 1}",
            b"",
        ] {
            assert_eq!(
                upstream_message(body),
                "no JSON error message in the answer"
            );
        }
        let e = upstream_error(
            "nova",
            409,
            br#"{"conflictingRequest": {"message": "busy"}}"#,
        );
        assert_eq!(e.http_status(), 409);
        assert_eq!(e.to_string(), "nova: busy");
        assert_eq!(enc("a b@c"), "a%20b%40c");
    }
}
