//! Thin reqwest adapter: one attempt at the upstream `GET …/api/work`.
//!
//! Only `200` with a body `{"time": <integer>}` is a success: the status *and* the body are
//! checked, because the upstream is known to answer 200 with garbage. Build one
//! [`WorkClient`] at start-up and share it (it is a cheap `Clone` over one pooled,
//! keep-alive `reqwest::Client`); a client per request would pay a TCP handshake per attempt.
//!
//! With the workspace's reqwest (`rustls-no-provider`) the process must install a rustls
//! crypto provider before [`WorkClient::new`], e.g.
//! `rustls::crypto::ring::default_provider().install_default()`.

use std::error::Error as _;
use std::time::Duration;

use reqwest::{header, StatusCode, Url};

use crate::HedgeError;

/// Largest upstream body read; a real answer is ~20 bytes, anything bigger is not one.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Connection settings of the pooled client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// Limit for establishing one TCP (+TLS) connection.
    pub connect_timeout: Duration,
    /// How long an idle pooled connection is kept for reuse.
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per upstream host.
    pub pool_max_idle_per_host: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 256,
        }
    }
}

/// The upstream `/api/work` endpoint behind one pooled HTTP client.
#[derive(Debug, Clone)]
pub struct WorkClient {
    client: reqwest::Client,
    url: Url,
}

impl WorkClient {
    /// Builds the one pooled keep-alive client for `url` (`http` or `https`).
    pub fn new(url: &str, opts: &ClientOptions) -> Result<Self, HedgeError> {
        let client = reqwest::Client::builder()
            .connect_timeout(opts.connect_timeout)
            .pool_idle_timeout(opts.pool_idle_timeout)
            .pool_max_idle_per_host(opts.pool_max_idle_per_host)
            .tcp_nodelay(true)
            // A redirect would be an upstream misconfiguration; never follow it silently.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| HedgeError::Client(chain(&e)))?;
        Self::with_client(client, url)
    }

    /// Uses an existing client (e.g. one shared with other upstream calls).
    pub fn with_client(client: reqwest::Client, url: &str) -> Result<Self, HedgeError> {
        let url = Url::parse(url).map_err(|e| HedgeError::Client(format!("url {url:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HedgeError::Client(format!(
                "url {url}: scheme must be http or https"
            )));
        }
        Ok(Self { client, url })
    }

    /// The upstream URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// One attempt: `GET url`, success only for `200` + `{"time": <integer>}`.
    ///
    /// Cancel-safe: dropping the future aborts the request (HTTP/1: the connection is
    /// closed, which is how the upstream learns the attempt lost).
    pub async fn call(&self) -> Result<i64, HedgeError> {
        let mut resp = self
            .client
            .get(self.url.clone())
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| HedgeError::UpstreamTransport(chain(&e)))?;
        let status = resp.status();
        let mut body = Vec::new();
        // Read (bounded) even on error statuses so the connection can go back to the pool.
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| HedgeError::UpstreamTransport(chain(&e)))?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(match status {
                    StatusCode::OK => {
                        HedgeError::UpstreamBody(format!("larger than {MAX_BODY_BYTES} bytes"))
                    }
                    s => HedgeError::UpstreamStatus(s.as_u16()),
                });
            }
            body.extend_from_slice(&chunk);
        }
        if status != StatusCode::OK {
            return Err(HedgeError::UpstreamStatus(status.as_u16()));
        }
        parse_work_body(&body)
    }
}

/// Parses an upstream body; only a JSON object whose `time` is an integer is valid.
pub fn parse_work_body(body: &[u8]) -> Result<i64, HedgeError> {
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| HedgeError::UpstreamBody(format!("not JSON: {e}")))?;
    let time = v
        .as_object()
        .ok_or_else(|| HedgeError::UpstreamBody("not a JSON object".into()))?
        .get("time")
        .ok_or_else(|| HedgeError::UpstreamBody("no \"time\" field".into()))?;
    time.as_i64().ok_or_else(|| {
        let mut shown = time.to_string();
        shown.truncate(64);
        HedgeError::UpstreamBody(format!("\"time\" is not an integer: {shown}"))
    })
}

/// An error and its sources on one line (reqwest's own message hides the cause).
fn chain(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn body_validation() {
        assert_eq!(parse_work_body(br#"{"time": 250}"#), Ok(250));
        assert_eq!(parse_work_body(br#"{"time": -3, "x": 1}"#), Ok(-3));
        for bad in [
            &br#"{"time": 2.5}"#[..],
            br#"{"time": "250"}"#,
            br#"{"time": null}"#,
            br#"{"time": 18446744073709551615}"#,
            br#"{}"#,
            br#"[250]"#,
            br#"250"#,
            br#"{"time": 25"#,
            b"",
            b"<html>oops</html>",
        ] {
            assert!(
                matches!(parse_work_body(bad), Err(HedgeError::UpstreamBody(_))),
                "{:?} accepted",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn url_must_be_http() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let opts = ClientOptions::default();
        assert!(WorkClient::new("ftp://x/api/work", &opts).is_err());
        assert!(WorkClient::new("not a url", &opts).is_err());
        let c = WorkClient::new("http://127.0.0.1:1/api/work", &opts).expect("client");
        assert_eq!(c.url().as_str(), "http://127.0.0.1:1/api/work");
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_work_body(&bytes);
        }

        #[test]
        fn any_integer_roundtrips(n: i64) {
            prop_assert_eq!(parse_work_body(format!("{{\"time\":{n}}}").as_bytes()), Ok(n));
        }
    }
}
