//! `lookout token create|revoke` as concurrent processes against a running server: no
//! change is lost, a created token works the moment its command returns, and a revoked one
//! is refused the moment its command returns (issue 13 finding 3, issue 14).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

/// Starts `lookout token ARGS --data-dir DIR` without waiting for it.
fn spawn_token(args: &[&str], data_dir: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_lookout"))
        .arg("token")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("LOOKOUT_TOKEN")
        .env_remove("LOOKOUT_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lookout token")
}

/// Waits for a token command; panics with its stderr when it failed; returns its stdout.
fn finish(child: Child, what: &str) -> String {
    let out = child.wait_with_output().expect("wait lookout token");
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

async fn status_with(c: &reqwest::Client, lk: &Lookout, token: &str) -> u16 {
    c.get(lk.url("/api/v1/host"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

/// A server whose first snapshot is in (so a valid token answers 200, not 503).
async fn started() -> (Lookout, reqwest::Client) {
    let lk = Lookout::start(false, &[("LOOKOUT_SAMPLING__DOCKER", "false")], &[]);
    let c = client();
    let ready = eventually(Duration::from_secs(15), || async {
        (status_with(&c, &lk, ADMIN_TOKEN).await == 200).then_some(())
    })
    .await;
    assert!(ready.is_some(), "lookout never answered 200");
    (lk, c)
}

fn stored_names(data_dir: &std::path::Path) -> Vec<String> {
    let listed = finish(spawn_token(&["list"], data_dir), "token list");
    let mut names: Vec<String> = listed
        .lines()
        .filter_map(|l| l.split('\t').next())
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_creates_are_all_stored_and_work_at_once() {
    let (lk, c) = started().await;
    let dir = lk.data_dir.path();
    let children: Vec<(String, Child)> = (0..20)
        .map(|i| {
            let name = format!("c{i:02}");
            let child = spawn_token(&["create", "--name", &name, "--scope", "read"], dir);
            (name, child)
        })
        .collect();
    let mut tokens = Vec::new();
    for (name, child) in children {
        tokens.push((name.clone(), finish(child, &format!("create {name}"))));
    }
    let mut expected: Vec<String> = tokens.iter().map(|(n, _)| n.clone()).collect();
    expected.sort();
    assert_eq!(stored_names(dir), expected, "a concurrent create was lost");
    for (name, token) in &tokens {
        assert_eq!(status_with(&c, &lk, token).await, 200, "token {name}");
    }
    let leftovers: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// A refused token: 401, or 429 once this address has failed often enough. The failed-credential
/// throttle answers only after the token failed verification (a valid token is never slowed),
/// so 429 also proves the revoked token is no longer accepted.
fn refused(status: u16) -> bool {
    status == 401 || status == 429
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revokes_racing_creates_are_never_undone() {
    let (lk, c) = started().await;
    let dir = lk.data_dir.path();
    for round in 0..3 {
        let mut doomed = Vec::new();
        for i in 0..10 {
            let name = format!("r{round}-{i}");
            let token = finish(
                spawn_token(&["create", "--name", &name], dir),
                "create before the race",
            );
            doomed.push((name, token));
        }
        // Each revoke races a create: a create that read the file before the revoke and
        // wrote it after would bring the revoked token back.
        let mut racing = Vec::new();
        for (i, (name, token)) in doomed.iter().enumerate() {
            let revoke = spawn_token(&["revoke", name], dir);
            let fresh = format!("n{round}-{i}");
            let create = spawn_token(&["create", "--name", &fresh], dir);
            racing.push((name.clone(), token.clone(), revoke, fresh, create));
        }
        let mut created = Vec::new();
        for (name, token, revoke, fresh, create) in racing {
            finish(revoke, &format!("revoke {name}"));
            // Refused the moment `token revoke` returned: no grace period.
            let status = status_with(&c, &lk, &token).await;
            assert!(
                refused(status),
                "revoked {name} still valid right after revoke returned: {status}"
            );
            created.push((fresh.clone(), finish(create, &format!("create {fresh}"))));
        }
        for (name, token) in &doomed {
            let status = status_with(&c, &lk, token).await;
            assert!(refused(status), "{name} came back: {status}");
        }
        for (name, token) in &created {
            assert_eq!(status_with(&c, &lk, token).await, 200, "{name} lost");
        }
        let names = stored_names(dir);
        assert!(
            doomed.iter().all(|(n, _)| !names.contains(n)),
            "a revoked token is stored again: {names:?}"
        );
        assert!(
            created.iter().all(|(n, _)| names.contains(n)),
            "a created token is missing: {names:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_revoke_apply_when_the_command_returns() {
    let (lk, c) = started().await;
    let dir = lk.data_dir.path();
    for round in 0..20 {
        let name = format!("now{round}");
        let token = finish(
            spawn_token(&["create", "--name", &name, "--scope", "read"], dir),
            "create",
        );
        assert_eq!(
            status_with(&c, &lk, &token).await,
            200,
            "round {round}: new token refused right after create returned"
        );
        finish(spawn_token(&["revoke", &name], dir), "revoke");
        let status = status_with(&c, &lk, &token).await;
        assert!(
            refused(status),
            "round {round}: revoked token accepted right after revoke returned: {status}"
        );
    }
}
