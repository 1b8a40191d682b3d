//! The HTTP client towards an engine (receiver or PromQL API): TLS settings, timeouts, and
//! the credentials every request carries. One keep-alive client per engine.

use std::time::Duration;

use base64::Engine as _;
use reqwest::header::{HeaderValue, AUTHORIZATION};

use crate::config::{AuthSettings, TlsSettings};

/// A configured client and the `Authorization` value every request carries.
#[derive(Clone)]
pub struct EngineClient {
    pub client: reqwest::Client,
    auth: Option<HeaderValue>,
}

impl std::fmt::Debug for EngineClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineClient")
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl EngineClient {
    /// `what` names the configuration section in errors (`export.remote_write`, `fleet`).
    pub fn new(
        what: &str,
        auth: &AuthSettings,
        tls: &TlsSettings,
        timeout: Duration,
    ) -> Result<Self, String> {
        let mut b = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            // An engine never redirects a write or a query; following one would resend
            // the credentials elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(4);
        if let Some(path) = &tls.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("{what}.tls.ca_file {}: {e}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("{what}.tls.ca_file {}: {e}", path.display()))?;
            b = b.tls_certs_only(certs);
        }
        match (&tls.cert_file, &tls.key_file) {
            (Some(cert), Some(key)) => {
                let mut pem = std::fs::read(cert)
                    .map_err(|e| format!("{what}.tls.cert_file {}: {e}", cert.display()))?;
                pem.extend(
                    std::fs::read(key)
                        .map_err(|e| format!("{what}.tls.key_file {}: {e}", key.display()))?,
                );
                let id = reqwest::Identity::from_pem(&pem)
                    .map_err(|e| format!("{what}.tls.cert_file/key_file: {e}"))?;
                b = b.identity(id);
            }
            (None, None) => {}
            _ => return Err(format!("{what}.tls: cert_file and key_file go together")),
        }
        if tls.insecure_skip_verify {
            tracing::warn!(
                section = what,
                "TLS certificate checks are OFF towards the engine"
            );
            b = b.tls_danger_accept_invalid_certs(true);
        }
        let client = b.build().map_err(|e| format!("{what}: HTTP client: {e}"))?;
        Ok(Self {
            client,
            auth: authorization(what, auth)?,
        })
    }

    /// A request with the credentials set.
    pub fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let r = self.client.request(method, url);
        match &self.auth {
            Some(v) => r.header(AUTHORIZATION, v.clone()),
            None => r,
        }
    }
}

fn authorization(what: &str, a: &AuthSettings) -> Result<Option<HeaderValue>, String> {
    let raw = match (&a.bearer_token, &a.username) {
        (Some(t), _) => format!("Bearer {}", t.trim()),
        (None, Some(u)) => {
            let pair = format!("{u}:{}", a.password.as_deref().unwrap_or(""));
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        }
        (None, None) => return Ok(None),
    };
    let mut v = HeaderValue::from_str(&raw)
        .map_err(|_| format!("{what}.auth: credentials hold characters a header cannot"))?;
    v.set_sensitive(true);
    Ok(Some(v))
}

/// The error's causes on one line (reqwest's top-level message alone says little).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_and_bearer_headers() {
        let basic = authorization(
            "x",
            &AuthSettings {
                username: Some("u".into()),
                password: Some("p".into()),
                ..Default::default()
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!(basic.to_str().unwrap(), "Basic dTpw");
        assert!(basic.is_sensitive());
        let bearer = authorization(
            "x",
            &AuthSettings {
                bearer_token: Some("tok\n".into()),
                ..Default::default()
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!(bearer.to_str().unwrap(), "Bearer tok");
    }
}
