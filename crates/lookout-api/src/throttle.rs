//! Failed-authentication throttle: each client address gets a small token bucket of failures
//! (a wrong Bearer token, an unknown session cookie, a wrong token at dashboard sign-in). Past
//! the burst, failures are answered 429 with `Retry-After` instead of 401.
//!
//! - Only failures are metered, and a presented token is always checked first: a valid token
//!   is never slowed, so a guesser cannot lock real clients out.
//! - Bounded memory: at most [`MAX_ADDRESSES`] buckets. Full buckets carry no information and
//!   are dropped first; when every slot holds a draining bucket, new addresses share one
//!   overflow bucket (so spreading guesses over many addresses gains nothing beyond it).
//! - IPv6 clients are keyed by their /64, the smallest block one host usually gets.
//! - Behind a reverse proxy every client has the proxy's address and shares its bucket.
//! - In-process calls carry no peer address and are not metered.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::{header, Extensions, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::error::{ErrorBody, ErrorDetail};

/// Failures one address may make in a row before being throttled.
pub const BURST: f64 = 20.0;
/// Failures per second an address earns back.
pub const REFILL_PER_SEC: f64 = 2.0;
/// Most addresses tracked at once.
pub const MAX_ADDRESSES: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(now: Instant) -> Self {
        Self {
            tokens: BURST,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let earned = now.saturating_duration_since(self.at).as_secs_f64() * REFILL_PER_SEC;
        self.tokens = (self.tokens + earned).min(BURST);
        self.at = now;
    }

    /// Takes one failure; `Err(wait)` when the bucket is empty.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / REFILL_PER_SEC,
            ))
        }
    }
}

/// The key a client is throttled by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    Addr(IpAddr),
    /// The request carried no peer address: an in-process call (tests, tools). Not metered:
    /// every listener of lookout passes the peer address.
    Unknown,
}

impl ClientKey {
    pub fn of(addr: Option<SocketAddr>) -> Self {
        match addr.map(|a| a.ip().to_canonical()) {
            Some(IpAddr::V6(v6)) => {
                let s = v6.segments();
                ClientKey::Addr(IpAddr::V6(Ipv6Addr::new(
                    s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                )))
            }
            Some(v4) => ClientKey::Addr(v4),
            None => ClientKey::Unknown,
        }
    }

    /// The peer address the listener put in the request's extensions.
    pub fn from_extensions(ext: &Extensions) -> Self {
        Self::of(ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0))
    }
}

#[derive(Debug, Default)]
struct Table {
    buckets: HashMap<ClientKey, Bucket>,
    overflow: Option<Bucket>,
}

#[derive(Debug, Default)]
pub struct FailureThrottle {
    table: Mutex<Table>,
}

impl FailureThrottle {
    /// Records one failed attempt by `client`. `Err(retry_after)` means it is over its budget
    /// and must be answered 429.
    pub fn record_failure(&self, client: ClientKey) -> Result<(), Duration> {
        if client == ClientKey::Unknown {
            return Ok(());
        }
        let now = Instant::now();
        let mut t = self
            .table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !t.buckets.contains_key(&client) && t.buckets.len() >= MAX_ADDRESSES {
            t.buckets.retain(|_, b| {
                b.refill(now);
                b.tokens < BURST
            });
        }
        if t.buckets.contains_key(&client) || t.buckets.len() < MAX_ADDRESSES {
            return t
                .buckets
                .entry(client)
                .or_insert_with(|| Bucket::full(now))
                .take(now);
        }
        t.overflow
            .get_or_insert_with(|| Bucket::full(now))
            .take(now)
    }

    /// Addresses tracked now (for tests and bounds checks).
    pub fn tracked(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .buckets
            .len()
    }
}

/// The 429 answer: JSON like every error, with whole seconds to wait in `Retry-After`.
pub fn too_many_failures(retry_after: Duration) -> Response {
    let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
    let body = ErrorBody {
        error: ErrorDetail {
            code: "rate_limited",
            message: format!("too many failed authentication attempts; retry in {secs} s"),
        },
    };
    let mut r = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> ClientKey {
        ClientKey::of(Some(s.parse().unwrap()))
    }

    #[test]
    fn burst_then_throttled_then_refills() {
        let t = FailureThrottle::default();
        let a = addr("10.0.0.1:1000");
        let allowed = (0..100).filter(|_| t.record_failure(a).is_ok()).count();
        assert_eq!(allowed, BURST as usize);
        let wait = t.record_failure(a).unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        // Another address is not affected.
        assert!(t.record_failure(addr("10.0.0.2:1000")).is_ok());
        assert!((0..100).all(|_| t.record_failure(ClientKey::Unknown).is_ok()));
        // 0.6 s later one more failure is allowed (2 per second).
        {
            let mut tab = t.table.lock().unwrap();
            let b = tab.buckets.get_mut(&a).unwrap();
            b.at = b.at.checked_sub(Duration::from_millis(600)).unwrap();
        }
        assert!(t.record_failure(a).is_ok());
        assert!(t.record_failure(a).is_err());
    }

    #[test]
    fn table_is_bounded_and_overflow_is_shared() {
        let t = FailureThrottle::default();
        for i in 0..(MAX_ADDRESSES as u32 + 500) {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            let _ = t.record_failure(ClientKey::of(Some(SocketAddr::from((ip, 1)))));
        }
        assert_eq!(t.tracked(), MAX_ADDRESSES);
        // The 500 extra addresses shared one bucket, which is now empty.
        let fresh = ClientKey::of(Some("192.168.9.9:1".parse().unwrap()));
        assert!(t.record_failure(fresh).is_err());
    }

    #[test]
    fn ipv6_is_keyed_by_its_64() {
        assert_eq!(
            addr("[2001:db8:1:2::1]:5"),
            addr("[2001:db8:1:2:ffff::9]:6")
        );
        assert_ne!(addr("[2001:db8:1:2::1]:5"), addr("[2001:db8:1:3::1]:5"));
        assert_eq!(addr("[::ffff:10.1.2.3]:5"), addr("10.1.2.3:9"));
    }

    #[test]
    fn answer_is_json_429_with_retry_after() {
        let r = too_many_failures(Duration::from_millis(300));
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    }
}
