//! Property tests of the parsers that take outside input in this crate: the Authorization
//! header (through the real router), the JSON bodies of the Concertim routes, and the history
//! query parameters. Arbitrary input never panics and is never answered with a 5xx; where a
//! value round-trips, it does. Cases: PROPTEST_CASES (default 256).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use proptest::prelude::*;
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};
use tower::ServiceExt;

use lookout_api::auth::{Scope, SharedTokens, TokenSet};
use lookout_api::concertim::fields;
use lookout_api::routes::history::{parse_time, window};
use lookout_api::{ApiConfig, AppState};
use lookout_probe::docker::{BoxFuture, ContainerAction, ContainerControl};
use lookout_probe::{ContainersView, HostSnapshot, ProbeError, Snapshot};

const TOKEN: &str = "lk_props-token-0123456789abcdef0123456789";

struct NoControl;
impl ContainerControl for NoControl {
    fn act<'a>(&'a self, _: &'a str, _: ContainerAction) -> BoxFuture<'a, Result<(), ProbeError>> {
        Box::pin(async {
            Err(ProbeError::Parse {
                what: "control",
                detail: "no engine in this test".into(),
            })
        })
    }
}

fn app() -> axum::Router {
    let snapshot = Snapshot {
        taken_at_ms: 1,
        tick: 1,
        host: HostSnapshot::default(),
        containers: ContainersView::Available { containers: vec![] },
        gpu: Default::default(),
        processes: None,
    };
    let (tx, rx) = watch::channel(Some(Arc::new(snapshot)));
    std::mem::forget(tx);
    let tokens = TokenSet::default().with_static("reader", TOKEN, Scope::Read);
    lookout_api::app(AppState::new(
        rx,
        SharedTokens::new(tokens),
        Arc::new(NoControl),
        ApiConfig::default(),
        Arc::new(Notify::new()),
    ))
}

/// One runtime and one router for all cases (building them per case costs seconds).
fn shared() -> &'static (tokio::runtime::Runtime, axum::Router) {
    static SHARED: std::sync::OnceLock<(tokio::runtime::Runtime, axum::Router)> =
        std::sync::OnceLock::new();
    SHARED.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        (rt, app())
    })
}

fn status_with_authorization(
    rt: &tokio::runtime::Runtime,
    app: &axum::Router,
    value: &[u8],
) -> Option<StatusCode> {
    let header = axum::http::HeaderValue::from_bytes(value).ok()?;
    let mut req = Request::get("/api/v1/host").body(Body::empty()).ok()?;
    req.headers_mut().insert("authorization", header);
    Some(rt.block_on(app.clone().oneshot(req)).ok()?.status())
}

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,20}".prop_map(Value::String),
        prop_oneof![Just("."), Just(".."), Just(""), Just(" ")].prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::hash_map(
                prop_oneof![
                    Just("cloud_env".to_string()),
                    Just("auth_url".to_string()),
                    Just("password".to_string()),
                    Just("user_id".to_string()),
                    Just("key_pair".to_string()),
                    Just("name".to_string()),
                    Just("amount".to_string()),
                    "[a-z_]{1,8}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const FIELD_PATHS: &[&str] = &[
    "cloud_env.auth_url",
    "key_pair.name",
    "keypair_name",
    "team_role.project_id",
    "credits.amount",
    "invoices.offset",
    "name",
];

proptest! {
    #[test]
    fn any_authorization_header_is_refused_or_accepted_never_5xx(value in prop::collection::vec(any::<u8>(), 0..200)) {
        let (rt, app) = shared();
        if let Some(status) = status_with_authorization(rt, app, &value) {
            let valid = std::str::from_utf8(&value).ok().and_then(|v| v.split_once(' '))
                .is_some_and(|(scheme, rest)| scheme.eq_ignore_ascii_case("bearer") && rest.trim() == TOKEN);
            if valid {
                prop_assert_eq!(status, StatusCode::OK);
            } else {
                // 429 once failed guesses are throttled; never a 5xx or a 200.
                prop_assert!(matches!(status.as_u16(), 400 | 401 | 429), "{}", status);
            }
        }
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_spaces_around_the_token_are_allowed(
        scheme in "[bB][eE][aA][rR][eE][rR]", pad in " {0,3}"
    ) {
        let (rt, app) = shared();
        let value = format!("{scheme} {pad}{TOKEN}{pad}");
        prop_assert_eq!(status_with_authorization(rt, app, value.as_bytes()), Some(StatusCode::OK));
        let wrong = format!("{scheme} {pad}{TOKEN}x");
        let refused = status_with_authorization(rt, app, wrong.as_bytes()).map(|s| s.as_u16());
        prop_assert!(matches!(refused, Some(401 | 429)), "{:?}", refused);
    }

    #[test]
    fn concertim_bodies_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = fields::body(&bytes);
    }

    #[test]
    fn concertim_fields_never_panic_and_ids_are_safe(v in json_value()) {
        let body = v.to_string();
        let parsed = fields::body(body.as_bytes());
        // Any JSON object is a body; anything else is refused with a 4xx, not a panic.
        prop_assert_eq!(parsed.is_ok(), v.is_object());
        if let Ok(parsed) = parsed {
            let _ = fields::cloud_env(&parsed);
            for path in FIELD_PATHS {
                let _ = fields::opt_str(&parsed, path);
                let _ = fields::opt_int(&parsed, path);
                let _ = fields::req_money(&parsed, path);
                let _ = fields::req_obj(&parsed, path);
                if let Ok(s) = fields::req_str(&parsed, path) {
                    prop_assert!(!s.trim().is_empty());
                }
                if let Ok(id) = fields::req_id(&parsed, path) {
                    prop_assert!(id != "." && id != ".." && id.len() <= 255);
                }
            }
        }
    }

    #[test]
    fn a_cloud_env_that_parses_has_what_keystone_needs(
        auth_url in "\\PC{0,30}", user in "\\PC{0,10}", password in "\\PC{0,10}"
    ) {
        let v = json!({"cloud_env": {"auth_url": auth_url, "username": user, "password": password}});
        if let Ok(env) = fields::cloud_env(&v) {
            prop_assert!(!env.auth_url.trim().is_empty() && !env.password.trim().is_empty());
            prop_assert!(env.username.is_some() || env.user_id.is_some());
        }
    }

    #[test]
    fn history_times_never_panic(raw in "\\PC{0,40}|[0-9eE.+-]{0,25}") {
        if let Ok(ms) = parse_time("from", &raw) {
            prop_assert!((-62_167_219_200_000..253_402_300_800_000).contains(&ms), "{}", ms);
        }
    }

    #[test]
    fn epoch_seconds_round_trip(ms in 0i64..100_000_000_000_000) {
        let text = format!("{}.{:03}", ms / 1000, ms % 1000);
        prop_assert_eq!(parse_time("to", &text).unwrap(), ms);
    }

    #[test]
    fn rfc3339_round_trips(ms in 0i64..253_402_300_799_000) {
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).unwrap();
        let text = t.format(&time::format_description::well_known::Rfc3339).unwrap();
        prop_assert_eq!(parse_time("to", &text).unwrap(), ms);
    }

    #[test]
    fn windows_are_ordered_or_refused(
        from in prop::option::of("\\PC{0,12}|[0-9.]{1,14}"),
        to in prop::option::of("\\PC{0,12}|[0-9.]{1,14}"),
        span in 0i64..1_000_000_000_000,
    ) {
        let mut q = HashMap::new();
        if let Some(f) = from { q.insert("from".to_string(), f); }
        if let Some(t) = to { q.insert("to".to_string(), t); }
        if let Ok((f, t)) = window(&q, span, 1_800_000_000_000) {
            prop_assert!(f <= t);
        }
    }
}
