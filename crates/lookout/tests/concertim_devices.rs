//! Power actions of the Concertim profile on real Docker containers (the local test image):
//! device actions change real container state, rack actions act on every member, and a team
//! cannot touch another team's container. The meter bills what the containers use.

mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const AUTH_URL: &str = "http://keystone.invalid:5000/v3";
/// Exits at once on SIGTERM, so `off` does not wait out the stop grace period.
const IDLE: &str = "trap 'exit 0' TERM; while :; do sleep 1; done";

struct Api<'a> {
    c: reqwest::Client,
    cm: &'a ConcertimLookout,
    token: String,
}

impl Api<'_> {
    async fn call(&self, m: Method, path: &str, body: Value) -> (u16, Value) {
        concertim_call(&self.c, m, &self.cm.url(path), Some(&self.token), &body).await
    }

    /// A user who is a member of a new team; returns (cloud_env, project_id, billing_acct_id).
    async fn member_of_new_team(&self, user: &str, team: &str) -> (Value, String, String) {
        let admin = json!({"auth_url": AUTH_URL, "user_id": "operator", "password": "pw", "project_id": "admin"});
        let (s, b) = self
            .call(Method::POST, "/user", json!({"cloud_env": admin, "username": user, "name": user, "email": format!("{user}@example.com"), "password": format!("{user}-pw")}))
            .await;
        assert_eq!(s, 201, "{b}");
        let uid = b["user_cloud_id"].as_str().unwrap().to_string();
        let (s, b) = self
            .call(
                Method::POST,
                "/team",
                json!({"cloud_env": admin, "name": team}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        let project = b["project_id"].as_str().unwrap().to_string();
        let billing = b["billing_acct_id"].as_str().unwrap().to_string();
        let (s, b) = self
            .call(Method::POST, "/team_role", json!({"cloud_env": admin, "team_role": {"project_id": project, "user_id": uid, "role": "member"}}))
            .await;
        assert_eq!(s, 201, "{b}");
        let env = json!({"auth_url": AUTH_URL, "user_id": uid, "password": format!("{user}-pw"), "project_id": project});
        (env, project, billing)
    }

    async fn act(&self, env: &Value, kind: &str, id: &str, action: &str) -> (u16, Value) {
        self.call(
            Method::POST,
            &format!("/update_status/{kind}/{id}"),
            json!({"cloud_env": env, "action": action}),
        )
        .await
    }
}

fn state(c: &TestContainer) -> String {
    c.inspect("{{.State.Status}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_actions_change_real_containers_within_the_team() {
    if !docker_ready("concertim power actions") {
        return;
    }
    let cm = ConcertimLookout::start();
    let api = Api {
        c: client(),
        cm: &cm,
        token: concertim_token(),
    };
    let (red, red_project, red_billing) = api.member_of_new_team("alice", "red").await;
    let (blue, blue_project, _) = api.member_of_new_team("bob", "blue").await;
    let team = |p: &str| format!("lookout.team={p}");
    let red_label = team(&red_project);
    let blue_label = team(&blue_project);
    let dev = TestContainer::run("cm-dev", &["--label", &red_label], IDLE);
    let web1 = TestContainer::run(
        "cm-web1",
        &["--label", &red_label, "--label", "lookout.rack=web"],
        IDLE,
    );
    let web2 = TestContainer::run(
        "cm-web2",
        &["--label", &red_label, "--label", "lookout.rack=web"],
        IDLE,
    );
    let other = TestContainer::run(
        "cm-blue",
        &["--label", &blue_label, "--label", "lookout.rack=web"],
        IDLE,
    );

    // A device: off → stopped, on → running, suspend → paused, resume → running.
    let (s, b) = api.act(&red, "devices", &dev.id, "off").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["cloud_response"]["submitted"], true);
    assert_eq!(b["cloud_response"]["request_ids"], json!([dev.id]));
    assert_eq!(state(&dev), "exited");
    let (s, b) = api.act(&red, "devices", &dev.name, "off").await;
    assert_eq!(s, 409, "{b}");
    assert!(b["message"].as_str().unwrap().contains("stopped"), "{b}");
    let (s, b) = api.act(&red, "instances", &dev.name, "on").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(state(&dev), "running");
    let (s, _) = api.act(&red, "devices", &dev.id, "suspend").await;
    assert_eq!(s, 200);
    assert_eq!(state(&dev), "paused");
    let (s, _) = api.act(&red, "devices", &dev.id, "resume").await;
    assert_eq!(s, 200);
    assert_eq!(state(&dev), "running");
    let (s, b) = api.act(&red, "devices", &dev.id, "resume").await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["success"], false);
    assert!(b["message"].as_str().unwrap().contains("not paused"), "{b}");

    // Another team's container does not exist for this team, and is left alone.
    for action in ["off", "suspend", "destroy"] {
        let (s, b) = api.act(&blue, "devices", &dev.id, action).await;
        assert_eq!(s, 404, "{b}");
    }
    assert_eq!(state(&dev), "running");
    let (s, _) = api.act(&red, "devices", &other.name, "off").await;
    assert_eq!(s, 404);
    assert_eq!(state(&other), "running");
    let (s, _) = api.act(&red, "devices", "no-such-container", "off").await;
    assert_eq!(s, 404);

    // The meter bills the team's containers: the draft shows the rack and the device.
    let billed = eventually(Duration::from_secs(20), || async {
        let (_, b) = api
            .call(
                Method::POST,
                "/get_draft_invoice",
                json!({"invoice": {"billing_acct_id": red_billing}}),
            )
            .await;
        let items = b["draft_invoice"]["items"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let rack = items
            .values()
            .any(|i| i["type"] == "cost" && i["rack_id"] == "web");
        // Devices outside a rack share one line, which lists them.
        let device = items.values().any(|i| {
            i["type"] == "cost"
                && i["device_ids"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|d| d == dev.id.as_str()))
        });
        (rack && device).then_some(b)
    })
    .await;
    assert!(billed.is_some(), "usage of the red team was not metered");

    // A rack: every member of this team's rack, none of the other team's.
    let (s, b) = api.act(&red, "racks", "web", "suspend").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["cloud_response"]["request_ids"].as_array().unwrap().len(),
        2
    );
    assert_eq!(
        (state(&web1), state(&web2)),
        ("paused".into(), "paused".into())
    );
    assert_eq!(state(&other), "running");
    let (s, b) = api.act(&red, "racks", "web", "suspend").await;
    assert_eq!(s, 409, "{b}");
    let (s, _) = api.act(&red, "racks", "web", "resume").await;
    assert_eq!(s, 200);
    assert_eq!(
        (state(&web1), state(&web2)),
        ("running".into(), "running".into())
    );
    let (s, _) = api.act(&red, "racks", "nope", "resume").await;
    assert_eq!(s, 404);
    let (s, b) = api.act(&red, "racks", "web", "destroy").await;
    assert_eq!(s, 200, "{b}");
    assert!(!web1.exists() && !web2.exists());
    assert!(other.exists());

    // Destroy a device; watchers may not act.
    let (s, _) = api.act(&red, "devices", &dev.id, "destroy").await;
    assert_eq!(s, 200);
    assert!(!dev.exists());
    let (s, b) = api.act(&blue, "racks", "web", "suspend").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(state(&other), "paused");
}
