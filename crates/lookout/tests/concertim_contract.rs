//! Contract tests of the Concertim profile against the real lookout binary: requests exactly
//! as the Concertim UI sends them (a JWT with `exp = now + 60`, `cloud_env` as
//! `{auth_url, user_id, password, project_id}`, the bodies docs/compatibility.md lists) and the fields it
//! reads back (`user_cloud_id`, `project_id` + `billing_acct_id`, `key_pair.private_key` and
//! `fingerprint`, `draft_invoice`, `total_invoices` + `invoices`, `message` on errors).

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const AUTH_URL: &str = "http://keystone.invalid:5000/v3";

fn admin_env() -> Value {
    json!({"auth_url": AUTH_URL, "user_id": "operator", "password": "operator-pw", "project_id": "admin"})
}

fn assert_error(status: u16, body: &Value, want: u16, mentions: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["success"], false, "{body}");
    assert!(body["error"].is_string(), "{body}");
    let m = body["message"].as_str().unwrap_or_default();
    assert!(
        m.contains(mentions),
        "message {m:?} should mention {mentions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_and_root_is_open() {
    let cm = ConcertimLookout::start();
    let c = client();
    let r = c.get(cm.url("/")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap().trim(), "Running");

    let body = json!({"cloud_env": admin_env()});
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let secret = CONCERTIM_SECRET.as_bytes();
    let expired = lookout_cloud::jwt::sign_hs256(secret, &json!({"exp": now - 120}));
    let wrong = lookout_cloud::jwt::sign_hs256(b"not-the-secret", &json!({"exp": now + 60}));
    let no_exp = lookout_cloud::jwt::sign_hs256(secret, &json!({"sub": "concertim"}));
    let none = {
        let t = lookout_cloud::jwt::sign_with_header(
            b"",
            &json!({"alg": "none", "typ": "JWT"}),
            &json!({"exp": now + 60}),
        );
        format!("{}.", t.rsplit_once('.').unwrap().0)
    };
    let hs384 = lookout_cloud::jwt::sign_with_header(
        secret,
        &json!({"alg": "HS384"}),
        &json!({"exp": now + 60}),
    );
    for (what, token, mention) in [
        ("missing", None, "missing"),
        ("expired", Some(expired.as_str()), "expired"),
        ("wrong secret", Some(wrong.as_str()), "signature"),
        ("no exp", Some(no_exp.as_str()), "exp"),
        ("alg none", Some(none.as_str()), "algorithm"),
        ("alg HS384", Some(hs384.as_str()), "algorithm"),
        ("garbage", Some("abc.def"), "JWT"),
    ] {
        let (s, b) = concertim_call(&c, Method::GET, &cm.url("/key_pairs"), token, &body).await;
        assert_error(s, &b, 401, mention);
        let _ = what;
    }
    // A good token gets past auth (and then fails on the unknown cloud user, as it should).
    let (s, b) = concertim_call(
        &c,
        Method::GET,
        &cm.url("/key_pairs"),
        Some(&concertim_token()),
        &body,
    )
    .await;
    assert_error(s, &b, 401, "cloud_env");
    // Unknown routes answer the profile's JSON too, after auth.
    let (s, b) = concertim_call(
        &c,
        Method::POST,
        &cm.url("/nowhere"),
        Some(&concertim_token()),
        &json!({}),
    )
    .await;
    assert_error(s, &b, 404, "route");
    // The token never reaches the log.
    assert!(!cm.lookout.logs().contains(&expired));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_keys_and_billing_as_the_ui_uses_them() {
    let cm = ConcertimLookout::start();
    let c = client();
    let t = concertim_token();
    let call = |m: Method, path: &str, body: Value| {
        let c = c.clone();
        let url = cm.url(path);
        let t = t.clone();
        async move { concertim_call(&c, m, &url, Some(&t), &body).await }
    };

    // Users.
    let (s, b) = call(
        Method::POST,
        "/user",
        json!({
        "cloud_env": admin_env(), "username": "alice", "name": "Alice A",
        "email": "alice@example.com", "password": "alice-pw"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["success"], true);
    assert_eq!(b["username"], "alice");
    let alice = b["user_cloud_id"].as_str().unwrap().to_string();
    let (s, b) = call(
        Method::POST,
        "/user",
        json!({
        "cloud_env": admin_env(), "username": "alice", "name": "Again",
        "email": "a2@example.com", "password": "x"}),
    )
    .await;
    assert_error(s, &b, 409, "alice");
    let (s, b) = call(
        Method::POST,
        "/user",
        json!({
        "cloud_env": admin_env(), "username": "bob", "name": "Bob", "password": "x"}),
    )
    .await;
    assert_error(s, &b, 400, "email");
    let (s, b) = call(Method::POST, "/user", json!({
        "cloud_env": admin_env(), "username": 7, "name": "Bob", "email": "b@x.org", "password": "x"})).await;
    assert_error(s, &b, 400, "username");
    let (s, b) = call(Method::POST, "/user", json!({"username": "bob"})).await;
    assert_error(s, &b, 400, "cloud_env");
    let (s, b) = call(
        Method::POST,
        "/user",
        json!({"cloud_env": {"auth_url": AUTH_URL, "user_id": "op"}, "username": "bob"}),
    )
    .await;
    assert_error(s, &b, 400, "cloud_env.password");

    // Teams and roles.
    let (s, b) = call(
        Method::POST,
        "/team",
        json!({"cloud_env": admin_env(), "name": "red"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let project = b["project_id"].as_str().unwrap().to_string();
    let billing = b["billing_acct_id"].as_str().unwrap().to_string();
    let role = |r: &str| json!({"cloud_env": admin_env(), "team_role": {"project_id": project, "user_id": alice, "role": r}});
    let (s, b) = call(Method::POST, "/team_role", role("member")).await;
    assert_eq!((s, &b), (201, &json!({"success": true})));
    let (s, b) = call(Method::POST, "/team_role", role("owner")).await;
    assert_error(s, &b, 400, "team_role.role");
    let (s, b) = call(Method::POST, "/team_role", json!({"cloud_env": admin_env(), "team_role": {"project_id": project, "user_id": "ghost", "role": "member"}})).await;
    assert_error(s, &b, 404, "ghost");
    let (s, b) = call(Method::PATCH, "/team_role", json!({"team_role": {"project_id": project, "user_id": alice, "current_role": "member", "new_role": "admin"}})).await;
    assert_eq!(s, 200, "{b}");
    // Deleting a team with roles still assigned is covered in concertim_ui_billing.rs.

    // The user's own cloud_env, as the UI builds it.
    let env = json!({"auth_url": AUTH_URL, "user_id": alice, "password": "alice-pw", "project_id": project});
    // Key pairs: the UI always sends key_type and public_key (null when generating).
    let (s, b) = call(Method::POST, "/key_pairs", json!({"cloud_env": env, "key_pair": {"name": "laptop", "key_type": "ssh", "public_key": null}})).await;
    assert_eq!(s, 201, "{b}");
    let kp = &b["key_pair"];
    let private = kp["private_key"].as_str().unwrap();
    assert!(private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
    let fingerprint = kp["fingerprint"].as_str().unwrap().to_string();
    assert!(fingerprint.starts_with("SHA256:"));
    let public = kp["public_key"].as_str().unwrap().to_string();
    if std::process::Command::new("ssh-keygen")
        .arg("-?")
        .output()
        .is_ok()
    {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.pub");
        std::fs::write(&p, format!("{public}\n")).unwrap();
        let out = std::process::Command::new("ssh-keygen")
            .arg("-l")
            .arg("-f")
            .arg(&p)
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .nth(1),
            Some(fingerprint.as_str())
        );
    } else {
        skipped(
            "identity_keys_and_billing_as_the_ui_uses_them (ssh-keygen part)",
            "ssh-keygen missing (openssh-client)",
        );
    }
    let (s, b) = call(
        Method::POST,
        "/key_pairs",
        json!({"cloud_env": env, "key_pair": {"name": "imported", "public_key": public}}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["key_pair"]["private_key"], Value::Null);
    assert_eq!(b["key_pair"]["fingerprint"], fingerprint.as_str());
    let (s, b) = call(
        Method::POST,
        "/key_pairs",
        json!({"cloud_env": env, "key_pair": {"name": "laptop"}}),
    )
    .await;
    assert_error(s, &b, 409, "laptop");
    let (s, b) = call(
        Method::POST,
        "/key_pairs",
        json!({"cloud_env": env, "key_pair": {"key_type": "ssh"}}),
    )
    .await;
    assert_error(s, &b, 400, "key_pair.name");
    let (s, b) = call(Method::GET, "/key_pairs", json!({"cloud_env": env})).await;
    assert_eq!(s, 200, "{b}");
    let names: Vec<&str> = b["key_pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["imported", "laptop"]);
    assert!(
        b["key_pairs"][0].get("private_key").is_none(),
        "private keys are never kept"
    );
    let (s, b) = call(
        Method::DELETE,
        "/key_pairs",
        json!({"cloud_env": env, "keypair_name": "laptop"}),
    )
    .await;
    assert_eq!((s, &b["key_pair_name"]), (200, &json!("laptop")));
    let wrong_pw =
        json!({"auth_url": AUTH_URL, "user_id": alice, "password": "nope", "project_id": project});
    let (s, b) = call(Method::GET, "/key_pairs", json!({"cloud_env": wrong_pw})).await;
    assert_error(s, &b, 401, "password");

    // Billing.
    let (s, b) = call(
        Method::POST,
        "/get_draft_invoice",
        json!({"invoice": {"billing_acct_id": billing}}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let d = &b["draft_invoice"];
    for f in [
        "invoice_id",
        "account_id",
        "invoice_date",
        "target_date",
        "amount",
        "balance",
        "credit_adj",
        "currency",
        "status",
        "items",
    ] {
        assert!(d.get(f).is_some(), "draft_invoice lacks {f}: {d}");
    }
    assert_eq!(d["account_id"], billing.as_str());
    assert_eq!(d["status"], "DRAFT");
    assert_eq!(d["currency"], "GBP");
    let (s, b) = call(
        Method::POST,
        "/credits",
        json!({"credits": {"billing_acct_id": billing, "amount": 12.5}}),
    )
    .await;
    assert_eq!((s, &b["credits"]), (201, &json!(12.5)), "{b}");
    let (s, b) = call(
        Method::POST,
        "/credits",
        json!({"credits": {"billing_acct_id": billing, "amount": "lots"}}),
    )
    .await;
    assert_error(s, &b, 400, "credits.amount");
    let (s, b) = call(
        Method::POST,
        "/credits",
        json!({"credits": {"billing_acct_id": billing, "amount": -1}}),
    )
    .await;
    assert_error(s, &b, 400, "credits.amount");
    let (s, b) = call(
        Method::POST,
        "/get_credits",
        json!({"credits": {"billing_account_id": billing}}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert!(b["credits"].as_f64().unwrap() <= 12.5);
    let (s, b) = call(
        Method::POST,
        "/list_paginated_invoices",
        json!({"invoices": {"billing_acct_id": billing, "offset": 0, "limit": 10}}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["total_invoices"], 0);
    assert_eq!(b["invoices"], json!([]));
    let (s, b) = call(
        Method::POST,
        "/list_paginated_invoices",
        json!({"invoices": {"billing_acct_id": billing, "limit": "ten"}}),
    )
    .await;
    assert_error(s, &b, 400, "invoices.limit");
    let (s, b) = call(
        Method::POST,
        "/get_account_invoice",
        json!({"invoice": {"billing_acct_id": billing, "invoice_id": "nope"}}),
    )
    .await;
    assert_error(s, &b, 404, "nope");
    let (s, b) = call(
        Method::POST,
        "/get_account_invoice",
        json!({"invoice": {"billing_acct_id": billing}}),
    )
    .await;
    assert_error(s, &b, 400, "invoice.invoice_id");
    let (s, b) = call(
        Method::POST,
        "/get_draft_invoice",
        json!({"invoice": {"billing_acct_id": "unknown"}}),
    )
    .await;
    assert_error(s, &b, 404, "unknown");

    // Power actions: validated before anything is touched.
    let (s, b) = call(
        Method::POST,
        "/update_status/racks/r1",
        json!({"cloud_env": env, "action": "on"}),
    )
    .await;
    assert_error(s, &b, 400, "racks");
    let (s, b) = call(
        Method::POST,
        "/update_status/volumes/v1",
        json!({"cloud_env": env, "action": "on"}),
    )
    .await;
    assert_error(s, &b, 400, "volumes");
    let (s, b) = call(
        Method::POST,
        "/update_status/devices/d1",
        json!({"cloud_env": env}),
    )
    .await;
    assert_error(s, &b, 400, "action");

    // Body problems.
    let r = c
        .post(cm.url("/team"))
        .bearer_auth(&t)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let big = "x".repeat(200_000);
    let (s, b) = call(
        Method::POST,
        "/team",
        json!({"cloud_env": admin_env(), "name": big}),
    )
    .await;
    assert_error(s, &b, 413, "larger");

    // Tear down in the order the rules demand.
    let (s, _) = call(Method::DELETE, "/team_role", json!({"cloud_env": admin_env(), "team_role": {"project_id": project, "user_id": alice, "role": "admin"}})).await;
    assert_eq!(s, 200);
    let (s, b) = call(Method::DELETE, "/team", json!({"cloud_env": admin_env(), "team_info": {"project_id": project, "billing_acct_id": billing}})).await;
    assert_eq!((s, &b), (200, &json!({"success": true})));
    let (s, b) = call(Method::PATCH, "/user", json!({"cloud_env": admin_env(), "user_info": {"cloud_user_id": alice, "new_data": {"email": "alice@new.example"}}})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["updated"], json!([["cloud_user", alice, "email"]]));
    let (s, b) = call(
        Method::DELETE,
        "/user",
        json!({"cloud_env": admin_env(), "user_info": {"cloud_user_id": alice}}),
    )
    .await;
    assert_eq!((s, &b), (200, &json!({"success": true})));
    let (s, b) = call(
        Method::DELETE,
        "/user",
        json!({"cloud_env": admin_env(), "user_info": {"cloud_user_id": alice}}),
    )
    .await;
    assert_error(s, &b, 404, &alice);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_speaks_tls_13_by_default() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let lk = Lookout::start(
        false,
        &[
            ("JWT_SECRET", CONCERTIM_SECRET),
            ("LOOKOUT_CONCERTIM__LISTEN", &listen),
        ],
        &["--concertim"],
    );
    let c = client();
    let ok = eventually(std::time::Duration::from_secs(20), || async {
        let r = c.get(format!("https://{listen}/")).send().await.ok()?;
        (r.status().as_u16() == 200).then_some(r.text().await.ok()?)
    })
    .await;
    assert_eq!(
        ok.as_deref().map(str::trim),
        Some("Running"),
        "{}",
        lk.logs()
    );
    // Plain HTTP on the TLS port gets no answer.
    let plain = c.get(format!("http://{listen}/")).send().await;
    assert!(plain.map(|r| r.status().as_u16() != 200).unwrap_or(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_no_listener() {
    // Enabled without a secret: lookout refuses to start rather than accept any token.
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args(["serve", "--http", "--concertim", "--listen"])
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("JWT_SECRET")
        .env_remove("LOOKOUT_CONFIG")
        .env("LOOKOUT_TOKEN", ADMIN_TOKEN)
        .env(
            "LOOKOUT_CONCERTIM__LISTEN",
            format!("127.0.0.1:{}", free_port()),
        )
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("JWT_SECRET"));
}
