//! End-to-end tests of the Concertim profile on the OpenStack backend, against real OpenStack
//! services on 127.0.0.1 (Keystone, Placement, Glance, Nova with the fake virt driver on
//! MariaDB, RabbitMQ, a Neutron stand-in, Heat). `scripts/test-openstack.sh` starts that lab
//! once (scripts/openstack-lab.sh), exports `LOOKOUT_TEST_OPENSTACK_*` and runs these with
//! `--ignored`; plain `cargo test` lists them as ignored.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const IGNORE: &str =
    "needs the OpenStack lab: scripts/test-openstack.sh brings it up and runs these";

struct Lab {
    auth_url: String,
    admin_user: String,
    admin_password: String,
    admin_project: String,
    region: String,
    image_id: String,
}

fn lab() -> Lab {
    let v = |k: &str| {
        std::env::var(format!("LOOKOUT_TEST_OPENSTACK_{k}")).unwrap_or_else(|_| {
            panic!(
                "LOOKOUT_TEST_OPENSTACK_{k} is not set: run scripts/test-openstack.sh ({IGNORE})"
            )
        })
    };
    Lab {
        auth_url: v("AUTH_URL"),
        admin_user: v("ADMIN_USER"),
        admin_password: v("ADMIN_PASSWORD"),
        admin_project: v("ADMIN_PROJECT"),
        region: v("REGION"),
        image_id: v("IMAGE_ID"),
    }
}

fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}{:x}", n % 0xffff_ffff_ffff)
}

/// lookout with the Concertim listener on the OpenStack backend.
struct OsLookout {
    _lookout: Lookout,
    base: String,
}

impl OsLookout {
    fn start(lab: &Lab, extra: &[(&str, &str)]) -> Self {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut env: Vec<(&str, &str)> = vec![
            ("JWT_SECRET", CONCERTIM_SECRET),
            ("LOOKOUT_CONCERTIM__HTTP", "true"),
            ("LOOKOUT_CONCERTIM__LISTEN", &listen),
            ("LOOKOUT_CONCERTIM__BACKEND", "openstack"),
            ("LOOKOUT_CONCERTIM__REGION", &lab.region),
            ("LOOKOUT_CONCERTIM__OPENSTACK__AUTH_URL", &lab.auth_url),
            ("LOOKOUT_CONCERTIM__OPENSTACK__USERNAME", &lab.admin_user),
            (
                "LOOKOUT_CONCERTIM__OPENSTACK__PASSWORD",
                &lab.admin_password,
            ),
            (
                "LOOKOUT_CONCERTIM__OPENSTACK__PROJECT_NAME",
                &lab.admin_project,
            ),
            // High prices so that seconds of usage show in minor units.
            ("LOOKOUT_CONCERTIM__PRICES__CPU_CORE_HOUR", "\"1000\""),
            ("LOOKOUT_CONCERTIM__PRICES__MEMORY_GB_HOUR", "\"100\""),
            ("LOOKOUT_CONCERTIM__PRICES__RUNNING_HOUR", "\"10\""),
        ];
        env.extend_from_slice(extra);
        let lookout = Lookout::start(false, &env, &["--concertim"]);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&listen).is_err() {
            assert!(
                Instant::now() < deadline,
                "concertim listener did not start; log:\n{}",
                lookout.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            _lookout: lookout,
            base: format!("http://{listen}"),
        }
    }

    async fn call(&self, c: &reqwest::Client, m: Method, path: &str, body: Value) -> (u16, Value) {
        let tok = concertim_token();
        concertim_call(c, m, &format!("{}{path}", self.base), Some(&tok), &body).await
    }
}

/// A Keystone token straight from the lab (for checks and set-up behind lookout's back).
async fn ks_token(c: &reqwest::Client, lab: &Lab, project: Value) -> (String, Value) {
    let r = c
        .post(format!("{}/auth/tokens", lab.auth_url))
        .json(&json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": lab.admin_user, "domain": {"id": "default"}, "password": lab.admin_password}}},
            "scope": {"project": project}}}))
        .send()
        .await
        .expect("keystone");
    assert_eq!(r.status().as_u16(), 201, "admin login");
    let tok = r
        .headers()
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body: Value = r.json().await.expect("token body");
    (tok, body)
}

async fn admin_token(c: &reqwest::Client, lab: &Lab) -> (String, Value) {
    ks_token(
        c,
        lab,
        json!({"name": lab.admin_project, "domain": {"id": "default"}}),
    )
    .await
}

fn endpoint(token_body: &Value, ty: &str) -> String {
    token_body["token"]["catalog"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["type"] == ty)
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .find(|e| e["interface"] == "public")
        .and_then(|e| e["url"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no {ty} endpoint"))
}

async fn os_req(
    c: &reqwest::Client,
    m: Method,
    url: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = c
        .request(m, url)
        .header("X-Auth-Token", token)
        .header("OpenStack-API-Version", "compute 2.92");
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.expect("openstack request");
    let s = r.status().as_u16();
    let t = r.text().await.unwrap_or_default();
    (s, serde_json::from_str(&t).unwrap_or(Value::Null))
}

/// The admin's `cloud_env` as the UI sends it: ids.
fn env_ids(lab: &Lab, user_id: &str, project_id: &str) -> Value {
    json!({"auth_url": lab.auth_url, "user_id": user_id, "password": lab.admin_password, "project_id": project_id})
}

/// The admin's `cloud_env` with names.
fn env_names(lab: &Lab) -> Value {
    json!({"auth_url": lab.auth_url, "username": lab.admin_user, "password": lab.admin_password,
           "project_name": lab.admin_project, "user_domain_name": "Default", "project_domain_name": "Default"})
}

async fn wait_for<F, Fut>(what: &str, secs: u64, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the OpenStack lab: scripts/test-openstack.sh brings it up and runs these"]
async fn keystone_auth_users_teams_and_roles() {
    let lab = lab();
    let c = client();
    let cm = OsLookout::start(&lab, &[]);
    let (atok, abody) = admin_token(&c, &lab).await;
    let admin_id = abody["token"]["user"]["id"].as_str().unwrap().to_string();
    let admin_project = abody["token"]["project"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ks = &lab.auth_url;

    // Every credential shape is accepted; a wrong password is a 401 JSON.
    let uname = unique("u");
    for env in [env_ids(&lab, &admin_id, &admin_project), env_names(&lab)] {
        let (s, b) = cm
            .call(&c, Method::GET, "/key_pairs", json!({"cloud_env": env}))
            .await;
        assert_eq!(s, 200, "{b}");
    }
    let mut bad = env_ids(&lab, &admin_id, &admin_project);
    bad["password"] = json!("wrong");
    let (s, b) = cm
        .call(
            &c,
            Method::POST,
            "/user",
            json!({"cloud_env": bad, "username": uname,
        "name": "N", "email": "n@example.com", "password": "pw-1"}),
        )
        .await;
    assert_eq!(s, 401, "{b}");
    assert_eq!(b["success"], false);
    assert!(
        b["message"]
            .as_str()
            .unwrap_or_default()
            .contains("keystone"),
        "{b}"
    );

    let env = env_ids(&lab, &admin_id, &admin_project);
    // User: created as CM_<username> in domain default.
    let (s, b) = cm
        .call(
            &c,
            Method::POST,
            "/user",
            json!({"cloud_env": env, "username": uname,
        "name": "Nora", "email": "nora@example.com", "password": "pw-1"}),
        )
        .await;
    assert!(s == 200 || s == 201, "{s} {b}");
    let uid = b["user_cloud_id"]
        .as_str()
        .expect("user_cloud_id")
        .to_string();
    let (s, u) = os_req(&c, Method::GET, &format!("{ks}/users/{uid}"), &atok, None).await;
    assert_eq!(s, 200);
    assert_eq!(u["user"]["name"], format!("CM_{uname}"));
    assert_eq!(u["user"]["domain_id"], "default");
    assert_eq!(u["user"]["email"], "nora@example.com");

    // Update email and password: Keystone has them.
    let (s, b) = cm.call(&c, Method::PATCH, "/user", json!({"cloud_env": env,
        "user_info": {"cloud_user_id": uid, "new_data": {"email": "nora2@example.com", "password": "pw-2"}}})).await;
    assert!(s == 200 || s == 201, "{s} {b}");
    let (_, u) = os_req(&c, Method::GET, &format!("{ks}/users/{uid}"), &atok, None).await;
    assert_eq!(u["user"]["email"], "nora2@example.com");
    let r = c
        .post(format!("{ks}/auth/tokens"))
        .json(&json!({"auth": {"identity": {"methods": ["password"],
        "password": {"user": {"id": uid, "password": "pw-2"}}}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "the new password logs in");

    // Team: project CM_<name>, admin → admin, concertim → watcher, a billing account.
    let tname = unique("t");
    let (s, b) = cm
        .call(
            &c,
            Method::POST,
            "/team",
            json!({"cloud_env": env, "name": tname}),
        )
        .await;
    assert!(s == 200 || s == 201, "{s} {b}");
    let pid = b["project_id"].as_str().expect("project_id").to_string();
    let acct = b["billing_acct_id"]
        .as_str()
        .expect("billing_acct_id")
        .to_string();
    let (s, p) = os_req(
        &c,
        Method::GET,
        &format!("{ks}/projects/{pid}"),
        &atok,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(p["project"]["name"], format!("CM_{tname}"));
    let assignments = |pid: String| {
        let c = c.clone();
        let atok = atok.clone();
        let ks = ks.clone();
        async move {
            let (_, a) = os_req(
                &c,
                Method::GET,
                &format!("{ks}/role_assignments?scope.project.id={pid}&include_names=true"),
                &atok,
                None,
            )
            .await;
            a["role_assignments"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|x| {
                    (
                        x["user"]["name"].as_str().unwrap_or_default().to_string(),
                        x["role"]["name"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let a = assignments(pid.clone()).await;
    assert!(
        a.contains(&(lab.admin_user.clone(), "admin".into())),
        "{a:?}"
    );
    assert!(a.contains(&("concertim".into(), "watcher".into())), "{a:?}");
    let (s, b) = cm
        .call(
            &c,
            Method::POST,
            "/get_draft_invoice",
            json!({"invoice": {"billing_acct_id": acct}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");

    // Team roles: grant, change, revoke — each visible in Keystone's role assignments.
    let cm_user = format!("CM_{uname}");
    let (s, b) = cm
        .call(
            &c,
            Method::POST,
            "/team_role",
            json!({"cloud_env": env,
        "team_role": {"project_id": pid, "user_id": uid, "role": "member"}}),
        )
        .await;
    assert!(s == 200 || s == 201, "{s} {b}");
    assert!(assignments(pid.clone())
        .await
        .contains(&(cm_user.clone(), "member".into())));
    let (s, b) = cm.call(&c, Method::PATCH, "/team_role", json!({"cloud_env": env,
        "team_role": {"project_id": pid, "user_id": uid, "current_role": "member", "new_role": "admin"}})).await;
    assert!(s == 200 || s == 201, "{s} {b}");
    let a = assignments(pid.clone()).await;
    assert!(a.contains(&(cm_user.clone(), "admin".into())), "{a:?}");
    assert!(!a.contains(&(cm_user.clone(), "member".into())), "{a:?}");
    let (s, b) = cm
        .call(
            &c,
            Method::DELETE,
            "/team_role",
            json!({"cloud_env": env,
        "team_role": {"project_id": pid, "user_id": uid, "role": "admin"}}),
        )
        .await;
    assert!(s == 200 || s == 201, "{s} {b}");
    assert!(!assignments(pid.clone())
        .await
        .iter()
        .any(|(u, _)| u == &cm_user));

    // Keystone's own errors come back with their status and message.
    let (s, b) = cm
        .call(
            &c,
            Method::DELETE,
            "/user",
            json!({"cloud_env": env,
        "user_info": {"cloud_user_id": "no-such-user"}}),
        )
        .await;
    assert_eq!(s, 404, "{b}");
    assert!(
        b["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("keystone:"),
        "{b}"
    );

    // Delete user and team: gone from Keystone.
    let (s, b) = cm
        .call(
            &c,
            Method::DELETE,
            "/user",
            json!({"cloud_env": env, "user_info": {"cloud_user_id": uid}}),
        )
        .await;
    assert!(s == 200 || s == 201, "{s} {b}");
    let (s, _) = os_req(&c, Method::GET, &format!("{ks}/users/{uid}"), &atok, None).await;
    assert_eq!(s, 404);
    let (s, b) = cm
        .call(
            &c,
            Method::DELETE,
            "/team",
            json!({"cloud_env": env,
        "team_info": {"project_id": pid, "billing_acct_id": acct}}),
        )
        .await;
    assert!(s == 200 || s == 201, "{s} {b}");
    let (s, _) = os_req(
        &c,
        Method::GET,
        &format!("{ks}/projects/{pid}"),
        &atok,
        None,
    )
    .await;
    assert_eq!(s, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the OpenStack lab: scripts/test-openstack.sh brings it up and runs these"]
async fn missing_users_and_roles_are_named() {
    let lab = lab();
    let c = client();
    let cm = OsLookout::start(
        &lab,
        &[(
            "LOOKOUT_CONCERTIM__OPENSTACK__CONCERTIM_USER",
            "nobody-here",
        )],
    );
    let (atok, _) = admin_token(&c, &lab).await;
    let tname = unique("t");
    let (s, b) = cm
        .call(
            &c,
            Method::POST,
            "/team",
            json!({"cloud_env": env_names(&lab), "name": tname}),
        )
        .await;
    assert!(s >= 500, "{s} {b}");
    let m = b["message"].as_str().unwrap_or_default();
    assert!(m.contains("nobody-here"), "{b}");
    // Nothing was left behind in Keystone.
    let (_, p) = os_req(
        &c,
        Method::GET,
        &format!("{}/projects?name=CM_{tname}", lab.auth_url),
        &atok,
        None,
    )
    .await;
    assert_eq!(p["projects"].as_array().map(Vec::len), Some(0), "{p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the OpenStack lab: scripts/test-openstack.sh brings it up and runs these"]
async fn a_failed_team_creation_is_rolled_back() {
    let lab = lab();
    let c = client();
    let cm = OsLookout::start(&lab, &[]);
    let (atok, _) = admin_token(&c, &lab).await;
    let ks = &lab.auth_url;
    let env = env_names(&lab);
    let tname = unique("rb");
    let (s, b) = cm
        .call(
            &c,
            Method::POST,
            "/team",
            json!({"cloud_env": env, "name": tname}),
        )
        .await;
    assert!(s == 200 || s == 201, "{s} {b}");
    let pid = b["project_id"].as_str().unwrap().to_string();
    // The project goes behind lookout's back; its ledger row stays, so the next creation of
    // the same team fails at its last step (the billing account) after Keystone made the
    // project and the grants: all of that must be undone.
    let (s, _) = os_req(
        &c,
        Method::PATCH,
        &format!("{ks}/projects/{pid}"),
        &atok,
        Some(json!({"project": {"enabled": false}})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = os_req(
        &c,
        Method::DELETE,
        &format!("{ks}/projects/{pid}"),
        &atok,
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, b) = cm
        .call(
            &c,
            Method::POST,
            "/team",
            json!({"cloud_env": env, "name": tname}),
        )
        .await;
    assert_eq!(s, 409, "{b}");
    let (_, p) = os_req(
        &c,
        Method::GET,
        &format!("{ks}/projects?name=CM_{tname}"),
        &atok,
        None,
    )
    .await;
    assert_eq!(
        p["projects"].as_array().map(Vec::len),
        Some(0),
        "rolled back: {p}"
    );
    // Neither the token nor a password is ever logged.
    let logs = cm._lookout.logs();
    assert!(!logs.contains(&lab.admin_password), "password in the log");
    assert!(!logs.contains(&atok), "token in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the OpenStack lab: scripts/test-openstack.sh brings it up and runs these"]
async fn nova_key_pairs() {
    let lab = lab();
    let c = client();
    let cm = OsLookout::start(&lab, &[]);
    let (atok, abody) = admin_token(&c, &lab).await;
    let nova = endpoint(&abody, "compute");
    let env = env_names(&lab);

    // Generated by lookout: the private key comes back once, the public half is in Nova.
    let name = unique("gen-");
    let (s, b) = cm
        .call(
            &c,
            Method::POST,
            "/key_pairs",
            json!({"cloud_env": env, "key_pair": {"name": name}}),
        )
        .await;
    assert!(s == 200 || s == 201, "{s} {b}");
    let kp = &b["key_pair"];
    assert!(
        kp["private_key"]
            .as_str()
            .unwrap_or_default()
            .contains("PRIVATE KEY"),
        "{b}"
    );
    let (s, n) = os_req(
        &c,
        Method::GET,
        &format!("{nova}/os-keypairs/{name}"),
        &atok,
        None,
    )
    .await;
    assert_eq!(s, 200, "{n}");
    assert_eq!(
        n["keypair"]["public_key"].as_str().map(str::trim),
        kp["public_key"].as_str().map(str::trim)
    );
    assert_eq!(n["keypair"]["fingerprint"], kp["fingerprint"]);

    // Imported: no private key.
    let made = lookout_cloud::keys::generate(lookout_cloud::keys::KeyKind::Ed25519, "t").unwrap();
    let iname = unique("imp-");
    let (s, b) = cm
        .call(
            &c,
            Method::POST,
            "/key_pairs",
            json!({"cloud_env": env,
        "key_pair": {"name": iname, "public_key": made.public_key}}),
        )
        .await;
    assert!(s == 200 || s == 201, "{s} {b}");
    assert!(b["key_pair"]["private_key"].is_null(), "{b}");

    let (s, b) = cm
        .call(&c, Method::GET, "/key_pairs", json!({"cloud_env": env}))
        .await;
    assert_eq!(s, 200, "{b}");
    let names: Vec<&str> = b["key_pairs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["name"].as_str())
        .collect();
    assert!(
        names.contains(&name.as_str()) && names.contains(&iname.as_str()),
        "{b}"
    );

    // Duplicate → Nova's 409 passed on.
    let (s, b) = cm
        .call(
            &c,
            Method::POST,
            "/key_pairs",
            json!({"cloud_env": env,
        "key_pair": {"name": iname, "public_key": made.public_key}}),
        )
        .await;
    assert_eq!(s, 409, "{b}");
    assert!(
        b["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("nova:"),
        "{b}"
    );

    for n in [&name, &iname] {
        let (s, b) = cm
            .call(
                &c,
                Method::DELETE,
                "/key_pairs",
                json!({"cloud_env": env, "keypair_name": n}),
            )
            .await;
        assert!(s == 200 || s == 201, "{s} {b}");
        let (s, _) = os_req(
            &c,
            Method::GET,
            &format!("{nova}/os-keypairs/{n}"),
            &atok,
            None,
        )
        .await;
        assert_eq!(s, 404);
    }
    let (s, b) = cm
        .call(
            &c,
            Method::DELETE,
            "/key_pairs",
            json!({"cloud_env": env, "keypair_name": name}),
        )
        .await;
    assert_eq!(s, 404, "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the OpenStack lab: scripts/test-openstack.sh brings it up and runs these"]
async fn server_power_actions_and_usage_invoice() {
    let lab = lab();
    let c = client();
    let cm = OsLookout::start(&lab, &[]);
    let (atok, abody) = admin_token(&c, &lab).await;
    let nova = endpoint(&abody, "compute");
    let env_admin = env_names(&lab);

    // A team, and a server in its project (booted behind lookout's back, as Heat would).
    let (s, b) = cm
        .call(
            &c,
            Method::POST,
            "/team",
            json!({"cloud_env": env_admin, "name": unique("srv")}),
        )
        .await;
    assert!(s == 200 || s == 201, "{s} {b}");
    let pid = b["project_id"].as_str().unwrap().to_string();
    let acct = b["billing_acct_id"].as_str().unwrap().to_string();
    let (ptok, _) = ks_token(&c, &lab, json!({"id": pid})).await;
    let flavor = unique("f");
    let (s, f) = os_req(
        &c,
        Method::POST,
        &format!("{nova}/flavors"),
        &atok,
        Some(json!({"flavor": {"name": flavor, "ram": 512, "vcpus": 2, "disk": 1}})),
    )
    .await;
    assert_eq!(s, 200, "{f}");
    let fid = f["flavor"]["id"].as_str().unwrap().to_string();
    let (s, sv) = os_req(&c, Method::POST, &format!("{nova}/servers"), &ptok,
        Some(json!({"server": {"name": "vm1", "imageRef": lab.image_id, "flavorRef": fid, "networks": "none"}}))).await;
    assert_eq!(s, 202, "{sv}");
    let sid = sv["server"]["id"].as_str().unwrap().to_string();
    let status = |want: &'static str| {
        let (c, nova, ptok, sid) = (c.clone(), nova.clone(), ptok.clone(), sid.clone());
        move || {
            let (c, nova, ptok, sid) = (c.clone(), nova.clone(), ptok.clone(), sid.clone());
            async move {
                let (s, v) = os_req(
                    &c,
                    Method::GET,
                    &format!("{nova}/servers/{sid}"),
                    &ptok,
                    None,
                )
                .await;
                if want == "GONE" {
                    return s == 404;
                }
                let st = v["server"]["status"].as_str().unwrap_or_default();
                assert_ne!(st, "ERROR", "{v}");
                st == want && v["server"]["OS-EXT-STS:task_state"].is_null()
            }
        }
    };
    wait_for("ACTIVE", 60, status("ACTIVE")).await;

    // Power actions as a member of the team's project, through lookout.
    let env_team = json!({"auth_url": lab.auth_url, "username": lab.admin_user, "password": lab.admin_password, "project_id": pid});
    for (action, want) in [
        ("off", "SHUTOFF"),
        ("on", "ACTIVE"),
        ("suspend", "SUSPENDED"),
        ("resume", "ACTIVE"),
    ] {
        let (s, b) = cm
            .call(
                &c,
                Method::POST,
                &format!("/update_status/devices/{sid}"),
                json!({"cloud_env": env_team, "action": action}),
            )
            .await;
        assert!(s == 200 || s == 201 || s == 202, "{action}: {s} {b}");
        assert_eq!(b["cloud_response"]["submitted"], true, "{b}");
        let ids = b["cloud_response"]["request_ids"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            ids.iter()
                .any(|i| i.as_str().unwrap_or_default().starts_with("req-")),
            "{b}"
        );
        wait_for(want, 60, status(want)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The draft invoice carries the server's usage, rated with the price list.
    let (s, b) = cm
        .call(
            &c,
            Method::POST,
            "/get_draft_invoice",
            json!({"invoice": {"billing_acct_id": acct}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let inv = &b["draft_invoice"];
    let items: Vec<Value> = inv["items"]
        .as_object()
        .map(|m| m.values().cloned().collect())
        .unwrap_or_default();
    let item = items
        .iter()
        .find(|i| i["device_id"] == sid.as_str() || i.to_string().contains(&sid))
        .unwrap_or_else(|| panic!("no item for the server: {inv}"));
    assert!(
        item["usage"]["cpu_core_hours"].as_f64().unwrap_or(0.0) > 0.0,
        "{item}"
    );
    assert!(inv["amount"].as_f64().unwrap_or(0.0) > 0.0, "{inv}");

    // Destroy.
    let (s, b) = cm
        .call(
            &c,
            Method::POST,
            &format!("/update_status/instances/{sid}"),
            json!({"cloud_env": env_team, "action": "destroy"}),
        )
        .await;
    assert!(s == 200 || s == 201 || s == 202, "{s} {b}");
    wait_for("deleted", 60, status("GONE")).await;
    // Unknown server: Nova's 404 passed on.
    let (s, b) = cm
        .call(
            &c,
            Method::POST,
            &format!("/update_status/devices/{sid}"),
            json!({"cloud_env": env_team, "action": "on"}),
        )
        .await;
    assert_eq!(s, 404, "{b}");

    let _ = os_req(
        &c,
        Method::DELETE,
        &format!("{nova}/flavors/{fid}"),
        &atok,
        None,
    )
    .await;
    let (s, b) = cm
        .call(
            &c,
            Method::DELETE,
            "/team",
            json!({"cloud_env": env_admin,
        "team_info": {"project_id": pid, "billing_acct_id": acct}}),
        )
        .await;
    assert!(s == 200 || s == 201, "{s} {b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the OpenStack lab: scripts/test-openstack.sh brings it up and runs these"]
async fn heat_rack_suspend_resume_destroy() {
    let lab = lab();
    assert_eq!(
        std::env::var("LOOKOUT_TEST_OPENSTACK_HEAT").as_deref(),
        Ok("1"),
        "the lab's Heat did not come up"
    );
    let c = client();
    let cm = OsLookout::start(&lab, &[]);
    let (atok, abody) = admin_token(&c, &lab).await;
    let heat = endpoint(&abody, "orchestration");
    let sname = unique("rack");
    let (s, b) = os_req(
        &c,
        Method::POST,
        &format!("{heat}/stacks"),
        &atok,
        Some(json!({
        "stack_name": sname,
        "template": {"heat_template_version": "2018-08-31",
            "resources": {"r": {"type": "OS::Heat::RandomString", "properties": {"length": 8}}}}})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let stack_id = b["stack"]["id"].as_str().unwrap().to_string();
    let state = |want: &'static str| {
        let (c, heat, atok, sname, id) = (
            c.clone(),
            heat.clone(),
            atok.clone(),
            sname.clone(),
            stack_id.clone(),
        );
        move || {
            let (c, heat, atok, sname, id) = (
                c.clone(),
                heat.clone(),
                atok.clone(),
                sname.clone(),
                id.clone(),
            );
            async move {
                let (s, v) = os_req(
                    &c,
                    Method::GET,
                    &format!("{heat}/stacks/{sname}/{id}"),
                    &atok,
                    None,
                )
                .await;
                let st = v["stack"]["stack_status"].as_str().unwrap_or_default();
                assert!(!st.ends_with("FAILED"), "{v}");
                (want == "GONE" && (s == 404 || st == "DELETE_COMPLETE")) || st == want
            }
        }
    };
    wait_for("CREATE_COMPLETE", 60, state("CREATE_COMPLETE")).await;
    let env = env_names(&lab);
    for (action, want) in [
        ("suspend", "SUSPEND_COMPLETE"),
        ("resume", "RESUME_COMPLETE"),
        ("destroy", "GONE"),
    ] {
        let (s, b) = cm
            .call(
                &c,
                Method::POST,
                &format!("/update_status/racks/{stack_id}"),
                json!({"cloud_env": env, "action": action}),
            )
            .await;
        assert!(s == 200 || s == 201 || s == 202, "{action}: {s} {b}");
        assert_eq!(b["cloud_response"]["submitted"], true, "{b}");
        wait_for(want, 60, state(want)).await;
    }
    let (s, b) = cm
        .call(
            &c,
            Method::POST,
            "/update_status/racks/no-such-stack",
            json!({"cloud_env": env, "action": "suspend"}),
        )
        .await;
    assert_eq!(s, 404, "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the OpenStack lab: scripts/test-openstack.sh brings it up and runs these"]
async fn statistics_quotas_limits_and_unreachable_clouds() {
    let lab = lab();
    let c = client();
    // Two clouds that fail: nothing listens on one, the other accepts and never answers.
    // Both are on the operator's allow-list, or lookout would refuse them before calling.
    let closed = free_port();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let allowed = format!(
        "[\"{}\",\"http://127.0.0.1:{closed}/v3\",\"http://127.0.0.1:{port}/v3\"]",
        lab.auth_url
    );
    let cm = OsLookout::start(
        &lab,
        &[
            ("LOOKOUT_CONCERTIM__OPENSTACK__TIMEOUT_MS", "1500"),
            ("LOOKOUT_CONCERTIM__OPENSTACK__ALLOWED_AUTH_URLS", &allowed),
        ],
    );
    let (_, abody) = admin_token(&c, &lab).await;
    let admin_project = abody["token"]["project"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let env = env_names(&lab);

    // get_cloud_stats_job.rb: a GET with no body; the service's own credentials answer.
    let (s, b) = cm.call(&c, Method::GET, "/statistics", Value::Null).await;
    assert_eq!(s, 200, "{b}");
    assert!(b["stats"]["total_vcpus"].as_i64().unwrap_or(0) >= 1, "{b}");
    for k in ["used_vcpus", "running_vms"] {
        assert!(b["stats"][k].is_i64(), "{k}: {b}");
    }
    for k in [
        "total_ram",
        "used_ram",
        "total_disk_space",
        "used_disk_space",
    ] {
        assert!(b["stats"][k].is_number(), "{k}: {b}");
    }
    let (s, b) = cm
        .call(
            &c,
            Method::GET,
            &format!("/team/{admin_project}/quotas"),
            json!({"cloud_env": env}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert!(b["quotas"]["compute"]["cores"].is_i64(), "{b}");
    let (s, b) = cm
        .call(&c, Method::GET, "/team/limits", json!({"cloud_env": env}))
        .await;
    assert_eq!(s, 200, "{b}");
    // limits_presenter.rb reads one flat object (Nova's and Cinder's absolute limits).
    for k in [
        "maxTotalCores",
        "totalCoresUsed",
        "maxTotalRAMSize",
        "totalRAMUsed",
        "maxTotalInstances",
        "totalInstancesUsed",
    ] {
        assert!(b["limits"][k].is_i64(), "{k}: {b}");
    }
    // The lab has no Cinder: a volume action names the missing service.
    let (s, b) = cm
        .call(
            &c,
            Method::POST,
            "/update_status/volumes/vol-1",
            json!({"cloud_env": env, "action": "destroy"}),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["error"], "MissingCloudService", "{b}");
    assert!(
        b["message"].as_str().unwrap_or("").contains("Cinder"),
        "{b}"
    );

    // Nothing listens: 502 at once.
    let t = Instant::now();
    let (s, b) = cm.call(&c, Method::GET, "/key_pairs", json!({"cloud_env":
        {"auth_url": format!("http://127.0.0.1:{closed}/v3"), "username": "x", "password": "y", "project_name": "z"}})).await;
    assert_eq!(s, 502, "{b}");
    assert_eq!(b["success"], false);
    assert!(t.elapsed() < Duration::from_secs(5));
    // Accepts but never answers: 504 within the configured bound.
    let t = Instant::now();
    let (s, b) = cm.call(&c, Method::GET, "/key_pairs", json!({"cloud_env":
        {"auth_url": format!("http://127.0.0.1:{port}/v3"), "username": "x", "password": "y", "project_name": "z"}})).await;
    assert_eq!(s, 504, "{b}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the OpenStack lab: scripts/test-openstack.sh brings it up and runs these"]
async fn tokens_are_cached_per_credential_set() {
    let lab = lab();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let os = lookout_cloud::openstack::OsClient::new(
        Some(lab.region.clone()),
        Duration::from_secs(5),
        Duration::from_secs(30),
    )
    .unwrap();
    let env = lookout_cloud::CloudEnv {
        auth_url: lab.auth_url.clone(),
        username: Some(lab.admin_user.clone()),
        password: lab.admin_password.clone(),
        project_name: Some(lab.admin_project.clone()),
        ..Default::default()
    };
    let a = os.session(&env).await.unwrap();
    let b = os.session(&env).await.unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&a, &b),
        "the second call reuses the token"
    );
    assert_eq!(os.cached_sessions(), 1);
    let mut other = env.clone();
    other.project_name = None;
    other.project_id = a.project_id.clone();
    let c = os.session(&other).await.unwrap();
    assert!(!std::sync::Arc::ptr_eq(&a, &c));
    assert_eq!(os.cached_sessions(), 2);
    assert!(os
        .endpoint(&a, "compute")
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    let mut wrong = env.clone();
    wrong.password = "nope".into();
    let e = os.session(&wrong).await.unwrap_err();
    assert_eq!(e.http_status(), 401);
    assert_eq!(os.cached_sessions(), 2);
}

/// Needs no lab: the local backend answers team quotas (an admin page the UI no longer
/// links) with 501 JSON; statistics and limits are in concertim_ui_identity.rs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extras_are_501_on_the_local_backend() {
    let cm = ConcertimLookout::start();
    let c = client();
    let tok = concertim_token();
    let env = json!({"cloud_env": {"auth_url": "http://127.0.0.1:9/v3", "user_id": "u", "password": "p", "project_id": "p"}});
    for path in ["/team/abc/quotas"] {
        let (s, b) = concertim_call(&c, Method::GET, &cm.url(path), Some(&tok), &env).await;
        assert_eq!(s, 501, "{path}: {b}");
        assert_eq!(b["error"], "NotImplemented", "{b}");
    }
}

/// The billing side on OpenStack (concertim_ui_billing.rs has the sources): the cluster
/// builder's order routes, an order tagged with a real Heat stack (the sync reads the stack's
/// resources through Heat without a warning), and DELETE /team with a role still assigned
/// (Keystone drops the assignments with the project).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the OpenStack lab: scripts/test-openstack.sh brings it up and runs these"]
async fn orders_stack_costs_and_team_deletion_with_roles() {
    let lab = lab();
    let c = client();
    let cm = OsLookout::start(&lab, &[]);
    let (atok, abody) = admin_token(&c, &lab).await;
    let env = env_names(&lab);
    let (s, b) = cm
        .call(
            &c,
            Method::POST,
            "/team",
            json!({"cloud_env": env, "name": unique("orders")}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let pid = b["project_id"].as_str().unwrap().to_string();
    let acct = b["billing_acct_id"].as_str().unwrap().to_string();
    let (s, b) = cm
        .call(
            &c,
            Method::POST,
            "/user",
            json!({"cloud_env": env, "username": unique("o"),
            "name": "O", "email": "o@example.com", "password": "o-pw-1"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let uid = b["user_cloud_id"].as_str().unwrap().to_string();
    let (s, b) = cm
        .call(
            &c,
            Method::POST,
            "/team_role",
            json!({"cloud_env": env,
            "team_role": {"project_id": pid, "user_id": uid, "role": "member"}}),
        )
        .await;
    assert_eq!(s, 201, "{b}");

    // A stack to tag the order with (the cluster builder's `openstack_stack_id`).
    let heat = endpoint(&abody, "orchestration");
    let (s, b) = os_req(
        &c,
        Method::POST,
        &format!("{heat}/stacks"),
        &atok,
        Some(json!({"stack_name": unique("ordered"), "template": {"heat_template_version": "2018-08-31",
            "resources": {"r": {"type": "OS::Heat::RandomString", "properties": {"length": 8}}}}})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let stack_id = b["stack"]["id"].as_str().unwrap().to_string();

    let (s, b) = cm
        .call(
            &c,
            Method::POST,
            "/create_order",
            json!({"order": {"billing_account_id": acct}}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let order = b["order_id"].as_str().unwrap().to_string();
    for (k, v) in [
        ("openstack_stack_id", stack_id.as_str()),
        ("openstack_stack_name", "Lab rack"),
    ] {
        let (s, b) = cm
            .call(
                &c,
                Method::POST,
                "/add_order_tag",
                json!({"tag": {"order_id": order, "tag_name": k, "tag_value": v}}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
    }
    // The draft syncs usage from Nova and reads the tagged stack's servers from Heat.
    let (s, b) = cm
        .call(
            &c,
            Method::POST,
            "/get_draft_invoice",
            json!({"invoice": {"billing_acct_id": acct}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let logs = cm._lookout.logs();
    assert!(
        !logs.contains("heat: stacks of the team's orders not read"),
        "{logs}"
    );
    let (s, b) = cm
        .call(
            &c,
            Method::POST,
            "/delete_order",
            json!({"order": {"order_id": order}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");

    // DELETE /team with the member role still assigned: 200, and the project is gone.
    let (s, b) = cm
        .call(
            &c,
            Method::DELETE,
            "/team",
            json!({"cloud_env": env,
            "team_info": {"project_id": pid, "billing_acct_id": acct}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, _) = os_req(
        &c,
        Method::GET,
        &format!("{}/projects/{pid}", lab.auth_url),
        &atok,
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = os_req(
        &c,
        Method::GET,
        &format!("{}/role_assignments?scope.project.id={pid}", lab.auth_url),
        &atok,
        None,
    )
    .await;
    assert!(s == 200 || s == 404);
    let _ = os_req(
        &c,
        Method::DELETE,
        &format!("{heat}/stacks/{stack_id}"),
        &atok,
        None,
    )
    .await;
    let _ = cm
        .call(
            &c,
            Method::DELETE,
            "/user",
            json!({"cloud_env": env, "user_info": {"cloud_user_id": uid}}),
        )
        .await;
}
