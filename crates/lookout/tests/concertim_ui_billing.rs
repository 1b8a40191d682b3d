//! The billing side of the Concertim profile, replayed as the real clients send it and read
//! back as their code parses it. Sources (each test names its own):
//! - openflighthpc/concertim-cluster-builder `cluster_builder/middleware/middleware.py` and
//!   `cluster_builder/middleware/utils/endpoints.py` (JWT `{"exp": now + 60}`, the order
//!   bodies) and `cluster_builder/clusters.py` (get_credits → create_order → add_order_tag
//!   `openstack_stack_id`, delete_order when the build fails);
//! - openflighthpc/concertim-ct-visualisation-app `app/jobs/delete_team_job.rb`,
//!   `app/jobs/invoice_base_job.rb` + `app/models/invoice*.rb` (how an invoice is parsed),
//!   `app/controllers/api/v1/teams_controller.rb` + `app/models/team.rb` (what a team update
//!   may carry);
//! - openflighthpc/concertim-openstack-service `conser/api/api_server.py` (routes, answers),
//!   `conser/modules/handlers/billing_handler/handler.py` and
//!   `conser/modules/clients/concertim/utils/endpoints.py` (the push to Concertim).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const AUTH_URL: &str = "http://keystone.invalid:5000/v3";

fn admin_env() -> Value {
    json!({"auth_url": AUTH_URL, "user_id": "operator", "password": "operator-pw", "project_id": "admin"})
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The UI's token (ruby-jwt in `HttpRequests::Faraday::JobRunner`): `{exp, iat, jti}`.
fn ui_token() -> String {
    let n = now_s();
    lookout_cloud::jwt::sign_hs256(
        CONCERTIM_SECRET.as_bytes(),
        &json!({"exp": n + 60, "iat": n, "jti": format!("jti-{n}-{}", std::process::id())}),
    )
}

/// The cluster builder's token (middleware.py `__get_auth_token`): `{"exp": int(now + 60)}`.
fn builder_token() -> String {
    concertim_token()
}

async fn call(
    cm: &ConcertimLookout,
    token: &str,
    m: Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    concertim_call(&client(), m, &cm.url(path), Some(token), &body).await
}

/// A team made as the UI makes it; returns (project_id, billing_acct_id).
async fn new_team(cm: &ConcertimLookout, name: &str) -> (String, String) {
    let (s, b) = call(
        cm,
        &ui_token(),
        Method::POST,
        "/team",
        json!({"cloud_env": admin_env(), "name": name}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    (
        b["project_id"].as_str().unwrap().to_string(),
        b["billing_acct_id"].as_str().unwrap().to_string(),
    )
}

/// `Invoice::CostItem` as invoice_base_job.rb builds it: the class from `type`, each
/// attribute from its snake_case or camelCase key, and the model's validations
/// (`openstack_stack_id`, `openstack_stack_name` present; `amount` a decimal; dates parse).
#[derive(Debug)]
struct CostItem {
    stack_id: String,
    stack_name: String,
    amount: f64,
    item: Value,
}

fn attr<'a>(item: &'a Value, snake: &str, camel: &str) -> &'a Value {
    match &item[snake] {
        Value::Null => &item[camel],
        v => v,
    }
}

fn parse_cost_items(invoice: &Value) -> Vec<CostItem> {
    let items = invoice["items"]
        .as_object()
        .expect("items is a hash keyed by id");
    let mut out = Vec::new();
    for item in items.values() {
        let class = item["type"].as_str().expect("type");
        let class = format!("{}{}Item", &class[..1].to_uppercase(), &class[1..]);
        if class != "CostItem" {
            assert_eq!(class, "CreditsItem", "{item}");
            continue;
        }
        let stack_id = attr(item, "openstack_stack_id", "openstackStackId")
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| panic!("CostItem without openstack_stack_id: {item}"));
        let stack_name = attr(item, "openstack_stack_name", "openstackStackName")
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| panic!("CostItem without openstack_stack_name: {item}"));
        let amount = match &item["amount"] {
            Value::Number(n) => n.as_f64().unwrap(),
            Value::String(s) => s.parse().unwrap(),
            v => panic!("amount {v}"),
        };
        for d in ["start_date", "end_date"] {
            let v = item[d].as_str().unwrap_or_default();
            assert!(
                v.len() == 10 && v.as_bytes()[4] == b'-' && v.as_bytes()[7] == b'-',
                "{d} {v:?} is not a date"
            );
        }
        out.push(CostItem {
            stack_id: stack_id.to_string(),
            stack_name: stack_name.to_string(),
            amount,
            item: item.clone(),
        });
    }
    out
}

/// cluster_builder/clusters.py + middleware/utils/endpoints.py: credits, order, tag, cancel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_builder_orders_as_its_middleware_sends_them() {
    let cm = ConcertimLookout::start();
    let (_, acct) = new_team(&cm, "builders").await;
    let t = builder_token();
    let (s, b) = call(
        &cm,
        &ui_token(),
        Method::POST,
        "/credits",
        json!({"credits": {"billing_acct_id": acct, "amount": 10}}),
    )
    .await;
    assert_eq!(s, 201, "{b}");

    // GET_CREDITS: {"credits": {"billing_account_id"}}; the builder gates on credits > 0.
    let (s, b) = call(
        &cm,
        &t,
        Method::POST,
        "/get_credits",
        json!({"credits": {"billing_account_id": acct}}),
    )
    .await;
    assert!(s == 200 || s == 201, "{b}");
    assert!(b["credits"].as_f64().unwrap() > 0.0, "{b}");

    // CREATE_ORDER: {"order": {"billing_account_id"}} → api_server.py answers the order id.
    let (s, b) = call(
        &cm,
        &t,
        Method::POST,
        "/create_order",
        json!({"order": {"billing_account_id": acct}}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["success"], true);
    let order = b["order_id"].as_str().unwrap().to_string();
    assert_eq!(b["order"], order.as_str(), "{b}");
    assert_eq!(
        order.len(),
        36,
        "a UUID, as Kill Bill's subscription ids: {order}"
    );

    // ADD_ORDER_TAG: every value is a string (the template formats them).
    let (s, b) = call(&cm, &t, Method::POST, "/add_order_tag", json!({"tag": {"order_id": order, "tag_name": "openstack_stack_id", "tag_value": "0d6f2f6c-1111-4a4a-9c9c-2b2b2b2b2b2b"}})).await;
    assert_eq!(s, 201, "{b}");
    let tag = &b["tag"];
    assert_eq!(tag["objectId"], order.as_str(), "{b}");
    assert_eq!(tag["objectType"], "SUBSCRIPTION");
    assert_eq!(tag["name"], "openstack_stack_id");
    assert_eq!(tag["value"], "0d6f2f6c-1111-4a4a-9c9c-2b2b2b2b2b2b");
    assert!(tag["customFieldId"].as_str().is_some_and(|s| !s.is_empty()));
    // A second value of the same tag replaces the first (one custom field per name).
    let (s, b2) = call(
        &cm,
        &t,
        Method::POST,
        "/add_order_tag",
        json!({"tag": {"order_id": order, "tag_name": "openstack_stack_id", "tag_value": "other"}}),
    )
    .await;
    assert_eq!(s, 201, "{b2}");
    assert_eq!(b2["tag"]["customFieldId"], tag["customFieldId"]);

    // Bad input answers the profile's JSON error naming the field.
    for (body, field) in [
        (
            json!({"tag": {"order_id": order, "tag_name": "x"}}),
            "tag.tag_value",
        ),
        (
            json!({"tag": {"order_id": order, "tag_name": "..", "tag_value": "v"}}),
            "tag.tag_name",
        ),
        (
            json!({"tag": {"order_id": order, "tag_name": "x", "tag_value": "v".repeat(300)}}),
            "tag.tag_value",
        ),
        (json!({"order": {}}), "order"),
    ] {
        let path = if body.get("tag").is_some() {
            "/add_order_tag"
        } else {
            "/create_order"
        };
        let (s, b) = call(&cm, &t, Method::POST, path, body).await;
        assert_eq!(s, 400, "{b}");
        assert_eq!(b["success"], false);
        assert!(
            b["message"].as_str().unwrap().contains(field),
            "{b} should name {field}"
        );
    }
    let (s, b) = call(
        &cm,
        &t,
        Method::POST,
        "/create_order",
        json!({"order": {"billing_account_id": "no-such-account"}}),
    )
    .await;
    assert_eq!(s, 404, "{b}");
    let (s, b) = call(
        &cm,
        &t,
        Method::POST,
        "/add_order_tag",
        json!({"tag": {"order_id": "no-such-order", "tag_name": "a", "tag_value": "b"}}),
    )
    .await;
    assert_eq!(s, 404, "{b}");

    // DELETE_ORDER: POST in endpoints.py and api_server.py; DELETE accepted too. Repeating it
    // succeeds (the builder deletes after any failed build).
    let (s, b) = call(
        &cm,
        &t,
        Method::POST,
        "/delete_order",
        json!({"order": {"order_id": order}}),
    )
    .await;
    assert_eq!((s, &b), (200, &json!({"success": true, "order": order})));
    let (s, b) = call(
        &cm,
        &t,
        Method::DELETE,
        "/delete_order",
        json!({"order": {"order_id": order}}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = call(
        &cm,
        &t,
        Method::DELETE,
        "/delete_order",
        json!({"order": {"order_id": "no-such-order"}}),
    )
    .await;
    assert_eq!(s, 404, "{b}");

    // Without a token nothing happens.
    let (s, _) = concertim_call(
        &client(),
        Method::POST,
        &cm.url("/create_order"),
        None,
        &json!({"order": {"billing_account_id": acct}}),
    )
    .await;
    assert_eq!(s, 401);
}

/// app/jobs/delete_team_job.rb: the admin cloud_env and team_info, roles never removed first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_team_with_roles_still_assigned() {
    let cm = ConcertimLookout::start();
    let t = ui_token();
    let (project, acct) = new_team(&cm, "doomed").await;
    let (s, b) = call(&cm, &t, Method::POST, "/user", json!({"cloud_env": admin_env(), "username": "carol", "name": "Carol", "email": "carol@example.com", "password": "carol-pw"})).await;
    assert_eq!(s, 201, "{b}");
    let carol = b["user_cloud_id"].as_str().unwrap().to_string();
    for role in ["admin", "member"] {
        let (s, b) = call(&cm, &t, Method::POST, "/team_role", json!({"cloud_env": admin_env(), "team_role": {"project_id": project, "user_id": carol, "role": role}})).await;
        assert_eq!(s, 201, "{b}");
    }
    let (s, b) = call(
        &cm,
        &t,
        Method::POST,
        "/credits",
        json!({"credits": {"billing_acct_id": acct, "amount": 5}}),
    )
    .await;
    assert_eq!(s, 201, "{b}");

    let body = json!({
        "cloud_env": admin_env(),
        "team_info": {"billing_acct_id": acct, "project_id": project},
    });
    let (s, b) = call(&cm, &t, Method::DELETE, "/delete_team", body.clone()).await;
    assert_eq!(
        (s, &b),
        (200, &json!({"success": true})),
        "the UI retries anything else forever"
    );
    // The job succeeded once: a second try finds no team (it never comes, but must not 409).
    let (s, b) = call(&cm, &t, Method::DELETE, "/team", body).await;
    assert_eq!(s, 404, "{b}");
    // The roles went with the team: the user is free, and the team is gone for roles too.
    let (s, b) = call(&cm, &t, Method::POST, "/team_role", json!({"cloud_env": admin_env(), "team_role": {"project_id": project, "user_id": carol, "role": "member"}})).await;
    assert_eq!(s, 404, "{b}");
    let (s, b) = call(
        &cm,
        &t,
        Method::DELETE,
        "/user",
        json!({"cloud_env": admin_env(), "user_info": {"cloud_user_id": carol}}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    // The name is free again; the new team starts a ledger of its own.
    let (_, acct2) = new_team(&cm, "doomed").await;
    assert_ne!(acct2, acct);
    let (s, b) = call(
        &cm,
        &t,
        Method::POST,
        "/get_credits",
        json!({"credits": {"billing_account_id": acct2}}),
    )
    .await;
    assert_eq!((s, b["credits"].as_f64()), (200, Some(0.0)), "{b}");
}

/// app/models/invoice/cost_item.rb: one line per rack carrying its stack id and name (the
/// order's `openstack_stack_name` tag when set), one line for devices outside racks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rack_costs_as_the_ui_invoice_models_read_them() {
    if !docker_ready("concertim rack costs") {
        return;
    }
    let cm = ConcertimLookout::start();
    let (project, acct) = new_team(&cm, "racked").await;
    let team = format!("lookout.team={project}");
    let idle = "trap 'exit 0' TERM; while :; do sleep 1; done";
    let rack = format!("lk-cca-web-{}", std::process::id());
    let rack_label = format!("lookout.rack={rack}");
    let _w1 = TestContainer::run(
        "lk-cca-w1",
        &["--label", &team, "--label", &rack_label],
        idle,
    );
    let _w2 = TestContainer::run(
        "lk-cca-w2",
        &["--label", &team, "--label", &rack_label],
        idle,
    );
    let loose = TestContainer::run("lk-cca-loose", &["--label", &team], idle);

    let t = builder_token();
    let (s, b) = call(
        &cm,
        &t,
        Method::POST,
        "/create_order",
        json!({"order": {"billing_account_id": acct}}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let order = b["order_id"].as_str().unwrap().to_string();
    for (k, v) in [
        ("openstack_stack_id", rack.as_str()),
        ("openstack_stack_name", "Web cluster"),
    ] {
        let (s, b) = call(
            &cm,
            &t,
            Method::POST,
            "/add_order_tag",
            json!({"tag": {"order_id": order, "tag_name": k, "tag_value": v}}),
        )
        .await;
        assert_eq!(s, 201, "{b}");
    }

    let got = eventually(Duration::from_secs(30), || async {
        let (s, b) = call(
            &cm,
            &ui_token(),
            Method::POST,
            "/get_draft_invoice",
            json!({"invoice": {"billing_acct_id": acct}}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let items = parse_cost_items(&b["draft_invoice"]);
        let has_rack = items.iter().any(|i| i.stack_id == rack);
        let has_loose = items.iter().any(|i| {
            i.item["device_ids"]
                .as_array()
                .is_some_and(|d| d.iter().any(|d| d == loose.id.as_str()))
        });
        (has_rack && has_loose).then_some((b, items))
    })
    .await;
    let (b, items) = got.expect("the draft shows the rack and the loose device");
    assert_eq!(
        items.len(),
        2,
        "one line per rack plus one for loose devices: {b}"
    );
    let web = items.iter().find(|i| i.stack_id == rack).unwrap();
    assert_eq!(web.stack_name, "Web cluster");
    assert_eq!(web.item["description"], "Rack costs: Web cluster");
    let other = items.iter().find(|i| i.stack_id != rack).unwrap();
    assert_eq!(other.stack_id, "devices-outside-racks");
    assert_eq!(other.stack_name, "Devices outside a rack");
    let total: f64 = items.iter().map(|i| i.amount).sum();
    let amount = b["draft_invoice"]["amount"].as_f64().unwrap();
    assert!((total - amount).abs() < 1e-9, "{total} vs {amount}");
}

/// What the stand-in Concertim received.
#[derive(Default)]
struct Seen {
    sign_ins: Vec<Value>,
    patches: Vec<(String, Value)>,
    /// Fail this many PATCHes with 500 first (to see the retry).
    fail_patches: usize,
}

/// A stand-in for Concertim's own API, answering as the UI's controllers do: sign-in hands
/// the token out in `Authorization`, the team list and update need it.
async fn stand_in(project: String, seen: Arc<Mutex<Seen>>) -> String {
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::{get, patch, post};
    type St = (String, Arc<Mutex<Seen>>);
    const TOKEN: &str = "Bearer stand-in-token";
    fn authed(h: &HeaderMap) -> bool {
        h.get("authorization").and_then(|v| v.to_str().ok()) == Some(TOKEN)
    }
    let app = axum::Router::new()
        .route(
            "/users/sign_in.json",
            post(
                |State((_, seen)): State<St>, body: axum::Json<Value>| async move {
                    let ok = body["user"]["login"] == "root"
                        && body["user"]["password"] == "push-secret-pw";
                    seen.lock().unwrap().sign_ins.push(body.0);
                    if ok {
                        ([("authorization", TOKEN)], "{}").into_response()
                    } else {
                        StatusCode::UNAUTHORIZED.into_response()
                    }
                },
            ),
        )
        .route(
            "/api/v1/teams",
            get(|State((project, _)): State<St>, h: HeaderMap| async move {
                if !authed(&h) {
                    return StatusCode::UNAUTHORIZED.into_response();
                }
                axum::Json(json!([
                    {"id": 7, "name": "red", "project_id": project},
                    {"id": 8, "name": "elsewhere", "project_id": "not-in-lookout"},
                    {"id": 9, "name": "no project", "project_id": null},
                ]))
                .into_response()
            }),
        )
        .route(
            "/api/v1/teams/{id}",
            patch(
                |State((_, seen)): State<St>,
                 Path(id): Path<String>,
                 h: HeaderMap,
                 body: axum::Json<Value>| async move {
                    if !authed(&h) {
                        return StatusCode::UNAUTHORIZED.into_response();
                    }
                    let mut s = seen.lock().unwrap();
                    if s.fail_patches > 0 {
                        s.fail_patches -= 1;
                        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                    }
                    s.patches.push((id, body.0.clone()));
                    axum::Json(json!({"id": 7})).into_response()
                },
            ),
        )
        .with_state((project, seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// Parses a team update as app/models/team.rb validates it: cost and credits decimals >= 0,
/// a billing period with both ends, start today or earlier, end today or later.
fn assert_team_update(body: &Value) -> (f64, f64) {
    let t = &body["team"];
    let dec = |k: &str| -> f64 {
        match &t[k] {
            Value::String(s) => s
                .parse()
                .unwrap_or_else(|_| panic!("{k} {s:?} is not a decimal")),
            Value::Number(n) => n.as_f64().unwrap(),
            v => panic!("{k}: {v}"),
        }
    };
    let (cost, credits) = (dec("cost"), dec("credits"));
    assert!(cost >= 0.0 && credits >= 0.0, "{body}");
    let today = {
        let d = time::OffsetDateTime::now_utc().date();
        format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
    };
    let start = t["billing_period_start"].as_str().unwrap();
    let end = t["billing_period_end"].as_str().unwrap();
    assert!(
        start <= today.as_str() && end >= today.as_str() && end > start,
        "{body}"
    );
    assert!(start.ends_with("-01") && end.ends_with("-01"), "{body}");
    let allowed = [
        "cost",
        "credits",
        "billing_period_start",
        "billing_period_end",
    ];
    assert!(
        t.as_object()
            .unwrap()
            .keys()
            .all(|k| allowed.contains(&k.as_str())),
        "{body}"
    );
    (cost, credits)
}

/// billing_handler/handler.py update_team_costs_credits → PATCH /api/v1/teams/{id}: after a
/// change, retried after a failure, never with the password in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credits_and_costs_reach_a_concertim_stand_in() {
    // The team exists before the stand-in lists it: make it in a lookout sharing the store.
    let data = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", data.path().join("cloud.db").display());
    let (project, acct) = {
        let cm = ConcertimLookout::start_with(&[("LOOKOUT_CONCERTIM__STORE_URL", store.as_str())]);
        new_team(&cm, "red").await
    };
    let seen = Arc::new(Mutex::new(Seen {
        fail_patches: 1,
        ..Default::default()
    }));
    let url = stand_in(project.clone(), seen.clone()).await;
    let cm = ConcertimLookout::start_with(&[
        ("LOOKOUT_CONCERTIM__STORE_URL", store.as_str()),
        ("LOOKOUT_CONCERTIM__PUSH__URL", url.as_str()),
        ("LOOKOUT_CONCERTIM__PUSH__LOGIN", "root"),
        ("CONCERTIM_PUSH_PASSWORD", "push-secret-pw"),
        ("LOOKOUT_CONCERTIM__PUSH__EVERY_SECS", "3600"),
    ]);
    // The first PATCH fails (500); the retry after back-off lands.
    let first = eventually(Duration::from_secs(15), || async {
        seen.lock().unwrap().patches.first().cloned()
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "no team update reached the stand-in; log:\n{}",
            cm.lookout.logs()
        )
    });
    assert_eq!(
        seen.lock().unwrap().sign_ins[0],
        json!({"user": {"login": "root", "password": "push-secret-pw"}})
    );
    assert_eq!(first.0, "7", "only the team lookout knows is updated");
    let (_, credits) = assert_team_update(&first.1);
    assert_eq!(credits, 0.0);
    assert_eq!(seen.lock().unwrap().fail_patches, 0);

    // A change (credits granted) is pushed at once, not at the hour's timer.
    let (s, b) = call(
        &cm,
        &ui_token(),
        Method::POST,
        "/credits",
        json!({"credits": {"billing_acct_id": acct, "amount": 25}}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let after = eventually(Duration::from_secs(10), || async {
        let s = seen.lock().unwrap();
        s.patches
            .iter()
            .find(|(_, b)| b["team"]["credits"] == "25.00")
            .cloned()
    })
    .await;
    let (id, body) = after.expect("the new credits were not pushed");
    assert_eq!(id, "7");
    assert_eq!(assert_team_update(&body).1, 25.0);
    assert!(seen.lock().unwrap().patches.iter().all(|(id, _)| id == "7"));
    assert!(
        !cm.lookout.logs().contains("push-secret-pw"),
        "the password reached the log"
    );
}
