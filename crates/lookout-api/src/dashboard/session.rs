//! Browser sessions: a lookout token is presented once at sign-in and exchanged for a random
//! 256-bit session id carried in an `HttpOnly; Secure; SameSite=Strict` cookie.
//!
//! Only the SHA-256 of each id is kept in memory, so a memory dump does not yield a usable
//! cookie. The CSRF token is derived from the id (SHA-256 of a domain tag and the id): it needs
//! no storage, cannot be computed without the cookie, and does not reveal it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::auth::Principal;

/// Name of the session cookie. `__Host-` makes browsers insist on `Secure`, `Path=/` and no
/// `Domain`, so no sibling host can plant or read it.
pub const COOKIE: &str = "__Host-lookout_session";
/// Header a cookie-authenticated state-changing request must carry.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lives after sign-in (absolute, not sliding).
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Most sessions one token may hold; signing in again with it ends its own oldest session, so
/// no token holder can sign anyone else out.
pub const MAX_SESSIONS_PER_TOKEN: usize = 16;
/// Most sessions held at once (a memory bound). When full, sign-in is refused (503) rather
/// than ending another token's session.
pub const MAX_SESSIONS: usize = 10_000;

/// The hash a session is known by on the server.
pub type SessionKey = [u8; 32];

#[derive(Debug, Clone)]
struct Entry {
    principal: Principal,
    expires: Instant,
    expires_at_ms: i64,
}

/// A freshly created session: what goes in the cookie and what the page is told.
#[derive(Debug)]
pub struct NewSession {
    pub cookie_value: String,
    pub csrf: String,
    pub expires_at_ms: i64,
}

/// The session a request was authenticated by (put in the request's extensions).
#[derive(Debug, Clone)]
pub struct SessionAuth {
    pub key: SessionKey,
    pub csrf: String,
    pub expires_at_ms: i64,
}

#[derive(Debug, Default)]
pub struct SessionStore {
    map: Mutex<HashMap<SessionKey, Entry>>,
}

fn key_of(id: &str) -> SessionKey {
    Sha256::digest(id.as_bytes()).into()
}

/// The CSRF token of a session id.
pub fn csrf_of(id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"lookout-csrf-v1\0");
    h.update(id.as_bytes());
    hex::encode(h.finalize())
}

/// Constant-time comparison of a presented CSRF token with the expected one.
pub fn csrf_matches(expected: &str, presented: &str) -> bool {
    expected.len() == presented.len() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

impl SessionStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionKey, Entry>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Creates a session for a verified principal; `None` when every session slot is held.
    pub fn create(&self, principal: Principal) -> Option<NewSession> {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let expires_at_ms = lookout_util::clock::now_secs()
            .saturating_add(SESSION_TTL.as_secs() as i64)
            .saturating_mul(1000);
        let now = Instant::now();
        let mut map = self.lock();
        map.retain(|_, e| e.expires > now);
        let mut own = 0;
        let mut own_oldest: Option<(SessionKey, Instant)> = None;
        for (k, e) in map
            .iter()
            .filter(|(_, e)| e.principal.token_sha256 == principal.token_sha256)
        {
            own += 1;
            if own_oldest.is_none_or(|(_, at)| e.expires < at) {
                own_oldest = Some((*k, e.expires));
            }
        }
        if own >= MAX_SESSIONS_PER_TOKEN {
            if let Some((k, _)) = own_oldest {
                map.remove(&k);
            }
        }
        if map.len() >= MAX_SESSIONS {
            return None;
        }
        map.insert(
            key_of(&id),
            Entry {
                principal,
                expires: now + SESSION_TTL,
                expires_at_ms,
            },
        );
        Some(NewSession {
            csrf: csrf_of(&id),
            cookie_value: id,
            expires_at_ms,
        })
    }

    /// The live session a cookie value names, if any.
    pub fn lookup(&self, id: &str) -> Option<(Principal, SessionAuth)> {
        if id.is_empty() || id.len() > 128 {
            return None;
        }
        let key = key_of(id);
        let mut map = self.lock();
        let entry = map.get(&key)?;
        if entry.expires <= Instant::now() {
            map.remove(&key);
            return None;
        }
        Some((
            entry.principal.clone(),
            SessionAuth {
                key,
                csrf: csrf_of(id),
                expires_at_ms: entry.expires_at_ms,
            },
        ))
    }

    /// True while the session exists and has not expired (checked by live streams each tick).
    pub fn is_live(&self, key: &SessionKey) -> bool {
        self.lock()
            .get(key)
            .is_some_and(|e| e.expires > Instant::now())
    }

    /// Ends every session whose token is no longer in `tokens` (revoked), so its live
    /// stream stops at the next tick and its cookie stops working.
    pub fn retain_tokens(&self, tokens: &crate::auth::TokenSet) -> usize {
        let mut map = self.lock();
        let before = map.len();
        map.retain(|_, e| tokens.verify_hash(&e.principal.token_sha256).is_some());
        before - map.len()
    }

    /// Ends a session (sign-out).
    pub fn revoke(&self, key: &SessionKey) -> bool {
        self.lock().remove(key).is_some()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The value of the session cookie in a `Cookie` header, if present.
pub fn cookie_value(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim())
}

/// `Set-Cookie` for a new session.
pub fn set_cookie(value: &str) -> String {
    format!(
        "{COOKIE}={value}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
        SESSION_TTL.as_secs()
    )
}

/// `Set-Cookie` that clears the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0")
}

/// The dashboard's server-side state, held in [`crate::AppState`].
#[derive(Default)]
pub struct Dashboard {
    pub sessions: Arc<SessionStore>,
    pub hub: super::stream::Hub,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Scope;

    fn who() -> Principal {
        Principal {
            name: "ops".into(),
            scope: Scope::Control,
            token_sha256: [7; 32],
        }
    }

    #[test]
    fn a_token_evicts_only_its_own_oldest_session() {
        let store = SessionStore::default();
        let other = Principal {
            token_sha256: [9; 32],
            ..who()
        };
        let theirs = store.create(other).unwrap();
        let first = store.create(who()).unwrap();
        for _ in 1..MAX_SESSIONS_PER_TOKEN {
            store.create(who()).unwrap();
        }
        assert!(store.lookup(&first.cookie_value).is_some());
        // One more: this token's oldest ends, the other token's session stays.
        store.create(who()).unwrap();
        assert!(store.lookup(&first.cookie_value).is_none());
        assert!(store.lookup(&theirs.cookie_value).is_some());
        assert_eq!(store.len(), MAX_SESSIONS_PER_TOKEN + 1);
    }

    #[test]
    fn revoking_the_token_ends_its_sessions() {
        let store = SessionStore::default();
        let s = store.create(who()).unwrap();
        let still = crate::auth::TokenSet::default();
        assert_eq!(store.retain_tokens(&still), 1);
        assert!(store.lookup(&s.cookie_value).is_none());
    }

    #[test]
    fn create_lookup_revoke() {
        let store = SessionStore::default();
        let s = store.create(who()).unwrap();
        assert_eq!(s.cookie_value.len(), 43, "256 bits, base64url");
        let (p, auth) = store.lookup(&s.cookie_value).expect("live");
        assert_eq!(p, who());
        assert_eq!(auth.csrf, s.csrf);
        assert!(store.is_live(&auth.key));
        assert!(store.lookup("nope").is_none());
        assert!(store.revoke(&auth.key));
        assert!(store.lookup(&s.cookie_value).is_none());
        assert!(!store.is_live(&auth.key));
    }

    #[test]
    fn only_hashes_are_kept() {
        let store = SessionStore::default();
        let s = store.create(who()).unwrap();
        let dump = format!("{:?}", store.map.lock().unwrap());
        assert!(!dump.contains(&s.cookie_value));
        assert_ne!(s.csrf, s.cookie_value);
    }

    #[test]
    fn cookie_parsing_and_csrf() {
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            format!("a=b; {COOKIE}=xyz ; c=d").parse().unwrap(),
        );
        assert_eq!(cookie_value(&h), Some("xyz"));
        assert!(csrf_matches("abc", "abc"));
        assert!(!csrf_matches("abc", "abd"));
        assert!(!csrf_matches("abc", ""));
        let c = set_cookie("v");
        for part in [
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Max-Age=",
            "Path=/",
        ] {
            assert!(c.contains(part), "{c}");
        }
    }
}
