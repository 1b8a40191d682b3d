//! The JWT verifier takes its input from anyone who can reach the Concertim listener:
//! arbitrary input never panics and is never accepted, a token signed with the secret comes
//! back with its claims, and any change to a signed token is refused.
//! Cases: PROPTEST_CASES (default 256).

use lookout_cloud::jwt::{sign_hs256, sign_with_header};
use lookout_cloud::JwtVerifier;
use proptest::prelude::*;
use serde_json::json;

const SECRET: &[u8] = b"jwt-props-secret-0123456789abcdef";
const NOW: i64 = 1_800_000_000;

fn verifier() -> JwtVerifier {
    JwtVerifier::new(SECRET).expect("secret")
}

/// Strings shaped like tokens: three dot-separated parts of base64url-ish text, or anything.
fn token_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_=+/-]{0,40}\\.[A-Za-z0-9_=+/-]{0,40}\\.[A-Za-z0-9_=+/-]{0,40}",
        "\\PC{0,120}",
        "[.]{0,5}",
    ]
}

proptest! {
    #[test]
    fn arbitrary_tokens_are_refused_without_panicking(token in token_like()) {
        prop_assert!(verifier().verify_at(&token, NOW).is_err());
    }

    #[test]
    fn arbitrary_json_parts_are_refused_without_panicking(
        header in "\\PC{0,60}", payload in "\\PC{0,60}", sig in "[A-Za-z0-9_-]{0,50}"
    ) {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let token = format!("{}.{}.{}", b64.encode(header), b64.encode(payload), sig);
        prop_assert!(verifier().verify_at(&token, NOW).is_err());
    }

    #[test]
    fn signed_claims_come_back(sub in "\\PC{0,30}", n in any::<i32>(), ttl in 1i64..3600) {
        let claims = json!({"exp": NOW + ttl, "sub": sub, "n": n});
        let token = sign_hs256(SECRET, &claims);
        prop_assert_eq!(verifier().verify_at(&token, NOW).unwrap(), claims);
    }

    #[test]
    fn any_change_to_a_signed_token_is_refused(at in any::<prop::sample::Index>(), with in any::<u8>()) {
        let token = sign_hs256(SECRET, &json!({"exp": NOW + 60, "role": "admin"}));
        let mut bytes = token.clone().into_bytes();
        let i = at.index(bytes.len());
        let replacement = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."[with as usize % 65];
        prop_assume!(bytes[i] != replacement);
        bytes[i] = replacement;
        let changed = String::from_utf8(bytes).unwrap();
        // A change inside the last base64 character's padding bits can decode to the same
        // bytes; such a token is the same token, not a forgery.
        let same = {
            use base64::Engine;
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let parts = |t: &str| t.split('.').map(|p| b64.decode(p).ok()).collect::<Vec<_>>();
            parts(&changed) == parts(&token)
        };
        prop_assume!(!same);
        prop_assert!(verifier().verify_at(&changed, NOW).is_err());
    }

    #[test]
    fn other_algorithms_and_other_secrets_are_refused(alg in "[A-Za-z0-9]{0,8}", other in "[a-z]{1,20}") {
        prop_assume!(alg != "HS256");
        let claims = json!({"exp": NOW + 60});
        let t = sign_with_header(SECRET, &json!({"alg": alg, "typ": "JWT"}), &claims);
        prop_assert!(verifier().verify_at(&t, NOW).is_err());
        prop_assume!(other.as_bytes() != SECRET);
        let t = sign_hs256(other.as_bytes(), &claims);
        prop_assert!(verifier().verify_at(&t, NOW).is_err());
    }
}
