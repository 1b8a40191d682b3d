//! The Concertim UI's identity-side requests replayed against the real lookout binary on the
//! local backend and the real Docker engine, as the UI's source sends them, and the answers
//! parsed as its Ruby code parses them. Each test names the file it was taken from, in
//! `openflighthpc/concertim-ct-visualisation-app` (files read at the commits noted):
//! - `app/jobs/get_cloud_stats_job.rb` (06515f9): `GET /statistics`, no body;
//! - `app/jobs/get_team_limits_job.rb` (82bf259) and `app/presenters/limits_presenter.rb`
//!   (70f094e): `GET /team/limits` with a JSON body, the admin's `cloud_env` for root;
//! - `app/jobs/request_status_change_job.rb` (49340ea): `POST /update_status/<type>/<id>`,
//!   the admin's id with its dashes stripped for root;
//! - `app/jobs/create_key_pair_job.rb` (1f5e71c): `POST /key_pairs` with `key_type`.
//!
//! The UI signs its JWTs with `{exp, iat, jti}`; so do these tests.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const AUTH_URL: &str = "http://keystone.invalid:5000/v3";
/// The admin the UI's Cloud Environment page names (a Keystone-style id with dashes).
const ADMIN_ID: &str = "5d1c0e2a-7b3f-4c1d-9e8a-0123456789ab";
const ADMIN_PW: &str = "admin-foreign-password";
const IDLE: &str = "trap 'exit 0' TERM; while :; do sleep 1; done";

/// A token as the UI makes one: `exp`, `iat` and a random `jti`.
fn ui_token() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    lookout_cloud::jwt::sign_hs256(
        CONCERTIM_SECRET.as_bytes(),
        &json!({"exp": now + 60, "iat": now, "jti": format!("{:x}", rand_u64())}),
    )
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id() as u64);
    h.finish()
}

/// lookout with an admin principal and quotas, as an operator would set them.
fn start() -> ConcertimLookout {
    ConcertimLookout::start_with(&[
        ("LOOKOUT_CONCERTIM__ADMIN_USER_ID", ADMIN_ID),
        ("CONCERTIM_ADMIN_PASSWORD", ADMIN_PW),
        ("LOOKOUT_CONCERTIM__QUOTAS__CORES", "8"),
        ("LOOKOUT_CONCERTIM__QUOTAS__RAM_MB", "2048"),
        ("LOOKOUT_CONCERTIM__QUOTAS__INSTANCES", "5"),
        ("LOOKOUT_CONCERTIM__QUOTAS__VOLUMES", "3"),
        ("LOOKOUT_CONCERTIM__QUOTAS__GIGABYTES", "-1"),
    ])
}

struct Ui<'a> {
    c: reqwest::Client,
    cm: &'a ConcertimLookout,
}

impl Ui<'_> {
    async fn call(&self, m: Method, path: &str, body: Value) -> (u16, Value) {
        concertim_call(&self.c, m, &self.cm.url(path), Some(&ui_token()), &body).await
    }

    async fn act(&self, env: &Value, kind: &str, id: &str, action: &str) -> (u16, Value) {
        let path = format!("/update_status/{kind}/{id}");
        self.call(
            Method::POST,
            &path,
            json!({"cloud_env": env, "action": action}),
        )
        .await
    }

    /// A member of a new team: (cloud_env, project_id).
    async fn member_of_new_team(&self, user: &str, team: &str) -> (Value, String) {
        let root = root_env("admin-project");
        let (s, b) = self
            .call(Method::POST, "/user", json!({"cloud_env": root, "username": user, "name": user, "email": format!("{user}@example.com"), "password": format!("{user}-pw")}))
            .await;
        assert_eq!(s, 201, "{b}");
        let uid = b["user_cloud_id"].as_str().unwrap().to_string();
        let (s, b) = self
            .call(
                Method::POST,
                "/team",
                json!({"cloud_env": root, "name": team}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        let project = b["project_id"].as_str().unwrap().to_string();
        let (s, b) = self
            .call(Method::POST, "/team_role", json!({"cloud_env": root, "team_role": {"project_id": project, "user_id": uid, "role": "member"}}))
            .await;
        assert_eq!(s, 201, "{b}");
        let env = json!({"auth_url": AUTH_URL, "user_id": uid, "password": format!("{user}-pw"), "project_id": project});
        (env, project)
    }
}

/// The admin's `cloud_env` as `request_status_change_job.rb` builds it for a root user.
fn root_env(project_id: &str) -> Value {
    json!({"auth_url": AUTH_URL, "user_id": ADMIN_ID.replace('-', ""), "password": ADMIN_PW, "project_id": project_id})
}

fn docker_out(args: &[&str]) -> (bool, String) {
    let o = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("docker");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).trim().to_string(),
    )
}

/// A Docker volume or network made for a test, removed when dropped.
struct Made {
    kind: &'static str,
    name: String,
}

impl Made {
    fn new(kind: &'static str, name: &str, team: &str) -> Self {
        let name = format!("lk-ccb-{name}-{}", std::process::id());
        let label = format!("lookout.team={team}");
        let (ok, out) = docker_out(&[kind, "create", "--label", &label, &name]);
        assert!(ok, "docker {kind} create {name}: {out}");
        Self { kind, name }
    }

    fn exists(&self) -> bool {
        docker_out(&[self.kind, "inspect", &self.name]).0
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        let _ = docker_out(&[self.kind, "rm", &self.name]);
    }
}

/// `get_cloud_stats_job.rb`'s `format_response`, ported: every figure must be there and
/// numeric (`ceil(1)` is called on the disk and RAM figures).
fn format_stats(d: &Value) -> Vec<String> {
    let num = |k: &str| {
        d[k].as_f64()
            .unwrap_or_else(|| panic!("stats.{k} is not a number: {d}"))
    };
    let int = |k: &str| {
        d[k].as_i64()
            .unwrap_or_else(|| panic!("stats.{k} is not an integer: {d}"))
    };
    vec![
        format!("{} / {}", int("used_vcpus"), int("total_vcpus")),
        format!("{} / {}GB", num("used_disk_space"), num("total_disk_space")),
        format!("{} / {}GB", num("used_ram"), num("total_ram")),
        format!("{}", int("running_vms")),
    ]
}

/// `limits_presenter.rb`'s `grouped_limits`, ported: the fields it reads, with their types.
fn grouped_limits(o: &Value) -> Vec<String> {
    let int = |k: &str| {
        o[k].as_i64()
            .unwrap_or_else(|| panic!("limits.{k} is not an integer: {o}"))
    };
    let max = |k: &str| match int(k) {
        -1 => "No limit".to_string(),
        n => n.to_string(),
    };
    vec![
        format!("{} / {}", int("totalCoresUsed"), max("maxTotalCores")),
        format!(
            "{} / {}",
            int("totalGigabytesUsed"),
            max("maxTotalVolumeGigabytes")
        ),
        format!(
            "{} / {}",
            int("totalRAMUsed") as f64 / 1024.0,
            int("maxTotalRAMSize")
        ),
        format!(
            "{} / {}",
            int("totalInstancesUsed"),
            max("maxTotalInstances")
        ),
        format!("{} / {}", int("totalVolumesUsed"), max("maxTotalVolumes")),
    ]
}

/// `get_cloud_stats_job.rb`: a GET with no body at all, and the figures of the Docker host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_are_answered_to_a_get_without_a_body() {
    if !docker_ready("concertim statistics") {
        return;
    }
    let cm = start();
    let ui = Ui {
        c: client(),
        cm: &cm,
    };
    let (_, project) = ui.member_of_new_team("stat-user", "stat-team").await;
    let label = format!("lookout.team={project}");
    let _dev = TestContainer::run(
        "lk-ccb-stat",
        &["--label", &label, "--cpus", "2", "--memory", "64m"],
        IDLE,
    );

    let r =
        ui.c.get(cm.url("/statistics"))
            .bearer_auth(ui_token())
            .send()
            .await
            .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["success"], true, "{b}");
    let lines = format_stats(&b["stats"]);
    assert_eq!(lines.len(), 4);
    let (_, ncpu) = docker_out(&["info", "--format", "{{.NCPU}}"]);
    assert_eq!(b["stats"]["total_vcpus"].as_i64(), ncpu.parse().ok(), "{b}");
    // Our container allocates 2 vCPUs and 64 MiB; others' team containers may add more.
    assert!(b["stats"]["used_vcpus"].as_i64().unwrap() >= 2, "{b}");
    assert!(b["stats"]["used_ram"].as_f64().unwrap() >= 0.06, "{b}");
    assert!(b["stats"]["running_vms"].as_i64().unwrap() >= 1, "{b}");
    assert!(
        b["stats"]["total_disk_space"].as_f64().unwrap() > 0.0,
        "{b}"
    );

    // Without a token it is still refused.
    let r = ui.c.get(cm.url("/statistics")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

/// `get_team_limits_job.rb` + `limits_presenter.rb`: a member's and root's view of a team.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_limits_are_flat_for_members_and_root() {
    if !docker_ready("concertim team limits") {
        return;
    }
    let cm = start();
    let ui = Ui {
        c: client(),
        cm: &cm,
    };
    let (member, project) = ui.member_of_new_team("lim-user", "lim-team").await;
    let (outsider, _) = ui.member_of_new_team("lim-other", "lim-other-team").await;
    let label = format!("lookout.team={project}");
    let _a = TestContainer::run(
        "lk-ccb-lim-a",
        &["--label", &label, "--cpus", "1.5", "--memory", "64m"],
        IDLE,
    );
    let b = TestContainer::run("lk-ccb-lim-b", &["--label", &label], IDLE);
    let (ok, _) = docker_out(&["stop", "-t", "1", &b.id]);
    assert!(ok);
    let _vol = Made::new("volume", "lim-vol", &project);

    let (s, body) = ui
        .call(Method::GET, "/team/limits", json!({"cloud_env": member}))
        .await;
    assert_eq!(s, 200, "{body}");
    let l = &body["limits"];
    assert_eq!(
        grouped_limits(l),
        vec!["3 / 8", "0 / No limit", "0.0625 / 2048", "2 / 5", "1 / 3"],
        "{l}"
    );

    // Root: the admin's cloud_env, scoped to the team (no dashes stripped in this job).
    let mut root = root_env(&project);
    root["user_id"] = json!(ADMIN_ID);
    let (s, rb) = ui
        .call(Method::GET, "/team/limits", json!({"cloud_env": root}))
        .await;
    assert_eq!(s, 200, "{rb}");
    assert_eq!(rb["limits"], body["limits"]);

    // The admin with a wrong password, and a user of another team, are refused.
    root["password"] = json!("wrong");
    let (s, e) = ui
        .call(Method::GET, "/team/limits", json!({"cloud_env": root}))
        .await;
    assert_eq!(s, 401, "{e}");
    let mut other = outsider.clone();
    other["project_id"] = json!(project);
    let (s, e) = ui
        .call(Method::GET, "/team/limits", json!({"cloud_env": other}))
        .await;
    assert_eq!(s, 403, "{e}");
    assert_eq!(e["success"], false);
}

/// `request_status_change_job.rb`: root acts on any team's devices with the admin's
/// `cloud_env`, under `devices` (UI before 2024-05) and `instances` (since); racks only ever
/// get `destroy`; nothing outside every team is reachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_acts_on_any_teams_devices() {
    if !docker_ready("concertim root power actions") {
        return;
    }
    let cm = start();
    let ui = Ui {
        c: client(),
        cm: &cm,
    };
    let (_, project) = ui.member_of_new_team("root-user", "root-team").await;
    let label = format!("lookout.team={project}");
    let dev = TestContainer::run("lk-ccb-root-dev", &["--label", &label], IDLE);
    let _r1 = TestContainer::run(
        "lk-ccb-root-r1",
        &["--label", &label, "--label", "lookout.rack=rk"],
        IDLE,
    );
    let untouchable = TestContainer::run("lk-ccb-root-none", &[], IDLE);
    let root = root_env("admin-project");
    let who = root.clone();

    let (s, b) = ui.act(&who, "devices", &dev.id, "off").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(dev.inspect("{{.State.Status}}"), "exited");
    let (s, b) = ui.act(&who, "instances", &dev.id, "on").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(dev.inspect("{{.State.Status}}"), "running");
    let (s, b) = ui.act(&who, "instances", &untouchable.id, "off").await;
    assert_eq!(s, 404, "{b}");
    assert_eq!(untouchable.inspect("{{.State.Status}}"), "running");
    let (s, b) = ui.act(&who, "racks", "rk", "on").await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = ui.act(&who, "racks", "rk", "destroy").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["cloud_response"]["request_ids"].as_array().map(Vec::len),
        Some(1),
        "{b}"
    );

    let mut wrong = root.clone();
    wrong["password"] = json!("nope");
    let (s, b) = ui
        .call(
            Method::POST,
            &format!("/update_status/devices/{}", dev.id),
            json!({"cloud_env": wrong, "action": "off"}),
        )
        .await;
    assert_eq!(s, 401, "{b}");
    assert_eq!(dev.inspect("{{.State.Status}}"), "running");
}

/// `request_status_change_job.rb` for volumes and networks (UI since 2024-05): destroy only,
/// the team's own only, a network in use is a conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_and_networks_are_destroyed_within_the_team() {
    if !docker_ready("concertim volumes and networks") {
        return;
    }
    let cm = start();
    let ui = Ui {
        c: client(),
        cm: &cm,
    };
    let (member, project) = ui.member_of_new_team("vn-user", "vn-team").await;
    let (_, other_project) = ui.member_of_new_team("vn-other", "vn-other-team").await;
    let vol = Made::new("volume", "vn-vol", &project);
    let theirs = Made::new("volume", "vn-theirs", &other_project);
    let net = Made::new("network", "vn-net", &project);
    let busy = Made::new("network", "vn-busy", &project);
    let label = format!("lookout.team={project}");
    let _user = TestContainer::run(
        "lk-ccb-vn-c",
        &["--label", &label, "--network", &busy.name],
        IDLE,
    );
    let who = member.clone();

    let (s, b) = ui.act(&who, "volumes", &vol.name, "off").await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = ui.act(&who, "volumes", &theirs.name, "destroy").await;
    assert_eq!(s, 404, "{b}");
    assert!(theirs.exists());
    let (s, b) = ui.act(&who, "volumes", &vol.name, "destroy").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["cloud_response"]["submitted"], true);
    assert!(!vol.exists());
    let (s, b) = ui.act(&who, "networks", &busy.name, "destroy").await;
    assert_eq!(s, 409, "{b}");
    assert!(busy.exists());
    let (s, b) = ui.act(&who, "networks", &net.name, "destroy").await;
    assert_eq!(s, 200, "{b}");
    assert!(!net.exists());
    let (s, b) = ui.act(&who, "networks", "..", "destroy").await;
    assert!(s == 404 || s == 400, "{s} {b}");
}

/// `create_key_pair_job.rb`: `{name, key_type, public_key: null}` as the job always sends
/// it (the private key read back from `key_pair.private_key`); the admin principal has
/// key pairs of its own, as a Keystone admin does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_types_and_the_admins_key_pairs() {
    let cm = start();
    let ui = Ui {
        c: client(),
        cm: &cm,
    };
    let (member, _) = ui.member_of_new_team("key-user", "key-team").await;
    let (s, b) = ui
        .call(
            Method::POST,
            "/key_pairs",
            json!({"cloud_env": member, "key_pair": {"name": "k-rsa", "key_type": "rsa", "public_key": null}}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let pk = b["key_pair"]["private_key"].as_str().unwrap_or_default();
    assert!(pk.contains("BEGIN"), "{b}");
    assert!(
        b["key_pair"]["public_key"]
            .as_str()
            .unwrap_or_default()
            .starts_with("ssh-rsa "),
        "{b}"
    );
    let (s, b) = ui
        .call(
            Method::POST,
            "/key_pairs",
            json!({"cloud_env": member, "key_pair": {"name": "k-x509", "key_type": "x509", "public_key": null}}),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(
        b["message"].as_str().unwrap_or_default().contains("x509"),
        "{b}"
    );

    let root = root_env("admin-project");
    let (s, b) = ui
        .call(
            Method::POST,
            "/key_pairs",
            json!({"cloud_env": root, "key_pair": {"name": "root-key", "key_type": "ssh", "public_key": null}}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = ui
        .call(Method::GET, "/key_pairs", json!({"cloud_env": root}))
        .await;
    assert_eq!(s, 200, "{b}");
    let names: Vec<&str> = b["key_pairs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["name"].as_str())
        .collect();
    assert_eq!(names, vec!["root-key"], "{b}");
}
