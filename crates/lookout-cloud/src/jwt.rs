//! A small HS256-only JWT verifier (RFC 7519 / 7515) for the Concertim listener.
//!
//! Refuses every `alg` but `HS256` (so `none` and algorithm-confusion tricks fail), needs a
//! numeric `exp` in the future, honours `nbf` and `iat`, and compares the MAC in constant
//! time. The [`ClaimPolicy`] bounds a token's lifetime (the Concertim UI signs `exp = now +
//! 60`, so a token valid for days is a leaked or forged one), allows a little clock skew, and
//! checks `aud` and `iss` where configured.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused. The text is safe to show: it never contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("token is not a JWT (header.payload.signature)")]
    Malformed,
    #[error("token algorithm {0:?} is not accepted (only HS256)")]
    Algorithm(String),
    #[error("token signature is invalid")]
    Signature,
    #[error("token has no numeric `exp` claim")]
    MissingExp,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token lifetime is longer than the {0} s allowed")]
    LifetimeTooLong(i64),
    #[error("token audience does not match")]
    Audience,
    #[error("token issuer does not match")]
    Issuer,
}

/// Shortest HS256 secret accepted (RFC 7518 §3.2: a key as long as the hash output).
pub const MIN_SECRET_BYTES: usize = 32;

/// Claims every token must satisfy beyond its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPolicy {
    /// Longest `exp - now` (and `exp - iat` when `iat` is present), seconds.
    pub max_lifetime_s: i64,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, seconds.
    pub leeway_s: i64,
    /// When set, `aud` (a string or an array of strings) must contain it.
    pub audience: Option<String>,
    /// When set, `iss` must equal it.
    pub issuer: Option<String>,
}

impl Default for ClaimPolicy {
    fn default() -> Self {
        Self {
            max_lifetime_s: 3600,
            leeway_s: 30,
            audience: None,
            issuer: None,
        }
    }
}

/// Verifies tokens signed with one shared secret.
#[derive(Clone)]
pub struct JwtVerifier {
    secret: Vec<u8>,
    policy: ClaimPolicy,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtVerifier { secret: <redacted> }")
    }
}

impl JwtVerifier {
    /// `None` for an empty secret: a listener must not accept tokens signed with nothing.
    /// (The listener refuses secrets under [`MIN_SECRET_BYTES`] at start-up, with its message.)
    pub fn new(secret: impl Into<Vec<u8>>) -> Option<Self> {
        let secret = secret.into();
        (!secret.is_empty()).then_some(Self {
            secret,
            policy: ClaimPolicy::default(),
        })
    }

    /// Replaces the default claim policy.
    pub fn with_policy(mut self, policy: ClaimPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Checks `token` at `now` (Unix seconds) and returns its claims.
    pub fn verify_at(&self, token: &str, now: i64) -> Result<serde_json::Value, JwtError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let header: serde_json::Value = decode_json(h)?;
        let alg = header
            .get("alg")
            .and_then(|a| a.as_str())
            .ok_or(JwtError::Malformed)?;
        if alg != "HS256" {
            return Err(JwtError::Algorithm(alg.chars().take(16).collect()));
        }
        if header.get("crit").is_some() {
            return Err(JwtError::Malformed);
        }
        let sig = URL_SAFE_NO_PAD
            .decode(s.trim_end_matches('='))
            .map_err(|_| JwtError::Malformed)?;
        let mut mac = HmacSha256::new_from_slice(&self.secret).map_err(|_| JwtError::Signature)?;
        mac.update(h.as_bytes());
        mac.update(b".");
        mac.update(p.as_bytes());
        // `verify_slice` compares in constant time.
        mac.verify_slice(&sig).map_err(|_| JwtError::Signature)?;
        let claims: serde_json::Value = decode_json(p)?;
        self.check_claims(&claims, now)?;
        Ok(claims)
    }

    fn check_claims(&self, claims: &serde_json::Value, now: i64) -> Result<(), JwtError> {
        let policy = &self.policy;
        let (now, leeway) = (now as f64, policy.leeway_s as f64);
        let number = |name: &str| -> Result<Option<f64>, JwtError> {
            match claims.get(name) {
                None => Ok(None),
                Some(v) => v.as_f64().map(Some).ok_or(JwtError::Malformed),
            }
        };
        let exp = claims
            .get("exp")
            .and_then(|e| e.as_f64())
            .ok_or(JwtError::MissingExp)?;
        if exp + leeway <= now {
            return Err(JwtError::Expired);
        }
        if exp - now > policy.max_lifetime_s as f64 + leeway {
            return Err(JwtError::LifetimeTooLong(policy.max_lifetime_s));
        }
        if let Some(nbf) = number("nbf")? {
            if nbf - leeway > now {
                return Err(JwtError::NotYetValid);
            }
        }
        if let Some(iat) = number("iat")? {
            if iat - leeway > now {
                return Err(JwtError::NotYetValid);
            }
            if exp - iat > policy.max_lifetime_s as f64 {
                return Err(JwtError::LifetimeTooLong(policy.max_lifetime_s));
            }
        }
        if let Some(want) = &policy.audience {
            let matches = match claims.get("aud") {
                Some(serde_json::Value::String(a)) => a == want,
                Some(serde_json::Value::Array(list)) => {
                    list.iter().any(|a| a.as_str() == Some(want.as_str()))
                }
                _ => false,
            };
            if !matches {
                return Err(JwtError::Audience);
            }
        }
        if let Some(want) = &policy.issuer {
            if claims.get("iss").and_then(|i| i.as_str()) != Some(want.as_str()) {
                return Err(JwtError::Issuer);
            }
        }
        Ok(())
    }

    /// Checks `token` now.
    pub fn verify(&self, token: &str) -> Result<serde_json::Value, JwtError> {
        self.verify_at(token, crate::now_secs())
    }
}

fn decode_json(part: &str) -> Result<serde_json::Value, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| JwtError::Malformed)?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)?;
    if v.is_object() {
        Ok(v)
    } else {
        Err(JwtError::Malformed)
    }
}

/// Signs `claims` with HS256 (for tests and tools; the server only verifies).
pub fn sign_hs256(secret: &[u8], claims: &serde_json::Value) -> String {
    sign_with_header(
        secret,
        &serde_json::json!({"alg": "HS256", "typ": "JWT"}),
        claims,
    )
}

/// Signs with an arbitrary header (tests use it to forge `alg` values).
pub fn sign_with_header(
    secret: &[u8],
    header: &serde_json::Value,
    claims: &serde_json::Value,
) -> String {
    let h = URL_SAFE_NO_PAD.encode(header.to_string());
    let p = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(h.as_bytes());
    mac.update(b".");
    mac.update(p.as_bytes());
    let s = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{h}.{p}.{s}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;

    fn v() -> JwtVerifier {
        JwtVerifier::new("s3cret").unwrap()
    }

    #[test]
    fn accepts_a_fresh_token() {
        let t = sign_hs256(b"s3cret", &json!({"exp": NOW + 60}));
        assert!(v().verify_at(&t, NOW).is_ok());
    }

    #[test]
    fn refuses_bad_tokens() {
        let exp = json!({"exp": NOW + 60});
        assert_eq!(
            v().verify_at(&sign_hs256(b"s3cret", &json!({"exp": NOW - 31})), NOW),
            Err(JwtError::Expired)
        );
        assert_eq!(
            v().verify_at(&sign_hs256(b"other", &exp), NOW),
            Err(JwtError::Signature)
        );
        assert_eq!(
            v().verify_at(&sign_hs256(b"s3cret", &json!({"sub": "x"})), NOW),
            Err(JwtError::MissingExp)
        );
        assert_eq!(
            v().verify_at(&sign_hs256(b"s3cret", &json!({"exp": "soon"})), NOW),
            Err(JwtError::MissingExp)
        );
        let none = sign_with_header(b"", &json!({"alg": "none"}), &exp);
        let unsigned = format!("{}.", none.rsplit_once('.').unwrap().0);
        assert!(matches!(
            v().verify_at(&unsigned, NOW),
            Err(JwtError::Algorithm(_))
        ));
        let hs512 = sign_with_header(b"s3cret", &json!({"alg": "HS512"}), &exp);
        assert!(matches!(
            v().verify_at(&hs512, NOW),
            Err(JwtError::Algorithm(_))
        ));
        assert_eq!(v().verify_at("abc", NOW), Err(JwtError::Malformed));
        assert_eq!(v().verify_at("a.b.c.d", NOW), Err(JwtError::Malformed));
        assert_eq!(
            v().verify_at(
                &sign_hs256(b"s3cret", &json!({"exp": NOW + 60, "nbf": NOW + 31})),
                NOW
            ),
            Err(JwtError::NotYetValid)
        );
        assert!(JwtVerifier::new("").is_none());
    }

    #[test]
    fn clock_skew_is_tolerated_within_the_leeway() {
        let t = |c| sign_hs256(b"s3cret", &c);
        assert!(v().verify_at(&t(json!({"exp": NOW - 29})), NOW).is_ok());
        assert!(v()
            .verify_at(&t(json!({"exp": NOW + 60, "nbf": NOW + 29})), NOW)
            .is_ok());
        assert_eq!(
            v().verify_at(&t(json!({"exp": NOW + 60, "iat": NOW + 45})), NOW),
            Err(JwtError::NotYetValid)
        );
    }

    #[test]
    fn lifetime_is_capped() {
        let t = |c| sign_hs256(b"s3cret", &c);
        assert!(v().verify_at(&t(json!({"exp": NOW + 3600})), NOW).is_ok());
        assert_eq!(
            v().verify_at(&t(json!({"exp": NOW + 86_400 * 365})), NOW),
            Err(JwtError::LifetimeTooLong(3600))
        );
        // Issued long ago with a long life, though only a minute is left: still refused.
        assert_eq!(
            v().verify_at(&t(json!({"exp": NOW + 60, "iat": NOW - 7200})), NOW),
            Err(JwtError::LifetimeTooLong(3600))
        );
        assert!(v()
            .verify_at(&t(json!({"exp": NOW + 60, "iat": NOW})), NOW)
            .is_ok());
    }

    #[test]
    fn audience_and_issuer_when_configured() {
        let strict = v().with_policy(ClaimPolicy {
            audience: Some("lookout".into()),
            issuer: Some("concertim-ui".into()),
            ..ClaimPolicy::default()
        });
        let t = |c| sign_hs256(b"s3cret", &c);
        let good = json!({"exp": NOW + 60, "aud": ["x", "lookout"], "iss": "concertim-ui"});
        assert!(strict.verify_at(&t(good), NOW).is_ok());
        assert_eq!(
            strict.verify_at(&t(json!({"exp": NOW + 60, "iss": "concertim-ui"})), NOW),
            Err(JwtError::Audience)
        );
        assert_eq!(
            strict.verify_at(
                &t(json!({"exp": NOW + 60, "aud": "lookout", "iss": "someone"})),
                NOW
            ),
            Err(JwtError::Issuer)
        );
        // Unconfigured: neither claim is required.
        assert!(v().verify_at(&t(json!({"exp": NOW + 60})), NOW).is_ok());
    }
}
