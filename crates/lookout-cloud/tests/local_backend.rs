//! The local backend against a real SQLite store (a temporary file): identity with its
//! uniqueness and referential rules, key pairs checked by `ssh-keygen`, and the invoice
//! ledger with credits across a month end (a movable clock).

use std::process::Command;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use lookout_cloud::local::{LocalBackend, LocalConfig};
use lookout_cloud::metering::{ResourceKind, Usage, UsageKey};
use lookout_cloud::*;
use lookout_probe::docker::DockerControl;

/// 2024-05-15T12:00:00Z
const MAY_15: i64 = 1_715_774_400_000;
/// 2024-06-01T00:00:10Z
const JUNE_1: i64 = 1_717_200_010_000;

struct Fixture {
    backend: LocalBackend,
    clock: Arc<AtomicI64>,
    /// Makes names unique in a shared PostgreSQL/MySQL test database.
    tag: String,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn n(&self, name: &str) -> String {
        format!("{name}{}", self.tag)
    }
}

/// SQLite always; PostgreSQL and MySQL/MariaDB when `LOOKOUT_TEST_POSTGRES_URL` /
/// `LOOKOUT_TEST_MYSQL_URL` are set (`eval "$(scripts/test-services.sh)"`).
fn stores(test: &str) -> Vec<Option<String>> {
    let mut v = vec![None];
    for var in ["LOOKOUT_TEST_POSTGRES_URL", "LOOKOUT_TEST_MYSQL_URL"] {
        match std::env::var(var) {
            Ok(url) if !url.is_empty() => v.push(Some(url)),
            _ => skipped(test, &format!("{var} not set (scripts/test-services.sh)")),
        }
    }
    v
}

async fn fixture(url: Option<String>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicI64::new(MAY_15));
    let c = clock.clone();
    let tag = format!(
        "-{}-{}",
        std::process::id(),
        lookout_cloud::now_ms() % 1_000_000_007
    );
    let backend = LocalBackend::open(
        LocalConfig {
            store_url: url
                .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("cloud.db").display())),
            prices: PriceList {
                currency: "GBP".into(),
                cpu_core_hour: Price::parse("0.04").unwrap(),
                memory_gb_hour: Price::parse("0.01").unwrap(),
                running_hour: Price::parse("0.005").unwrap(),
                disk_gb_hour: Price::parse("0.0001").unwrap(),
            },
        },
        Arc::new(DockerControl),
        Some(Arc::new(move || c.load(Ordering::SeqCst))),
    )
    .await
    .unwrap();
    Fixture {
        backend,
        clock,
        tag,
        _dir: dir,
    }
}

fn admin_env() -> CloudEnv {
    CloudEnv {
        auth_url: "http://keystone.invalid:5000/v3".into(),
        user_id: Some("operator".into()),
        password: "x".into(),
        ..Default::default()
    }
}

fn user_env(user_id: &str, password: &str, project: Option<&str>) -> CloudEnv {
    CloudEnv {
        auth_url: "http://keystone.invalid:5000/v3".into(),
        user_id: Some(user_id.into()),
        password: password.into(),
        project_id: project.map(String::from),
        ..Default::default()
    }
}

fn new_user(name: &str) -> NewUser {
    NewUser {
        username: name.into(),
        name: format!("{name} person"),
        email: format!("{name}@example.com"),
        password: "pw-1".into(),
    }
}

#[tokio::test]
async fn users_teams_and_roles_keep_their_rules() {
    for url in stores("users_teams_and_roles_keep_their_rules") {
        users_teams_and_roles_keep_their_rules_on(url).await;
    }
}

async fn users_teams_and_roles_keep_their_rules_on(url: Option<String>) {
    let f = fixture(url).await;
    let b = &f.backend;
    let env = admin_env();
    let alice = b.create_user(&env, new_user(&f.n("alice"))).await.unwrap();
    assert_eq!(alice.username, f.n("alice"));
    assert_eq!(alice.user_cloud_id.len(), 32);
    let dup = b
        .create_user(&env, new_user(&f.n("alice")))
        .await
        .unwrap_err();
    assert_eq!(dup.http_status(), 409, "{dup}");
    let bad = b
        .create_user(
            &env,
            NewUser {
                email: "nope".into(),
                ..new_user(&f.n("bob"))
            },
        )
        .await
        .unwrap_err();
    assert_eq!(bad.http_status(), 400);
    assert!(bad.to_string().contains("email"));

    let team = b.create_team(&env, &f.n("red")).await.unwrap();
    assert_eq!(
        b.create_team(&env, &f.n("red"))
            .await
            .unwrap_err()
            .http_status(),
        409
    );

    let role = |user: &str, r: Role| TeamRole {
        project_id: team.project_id.clone(),
        user_id: user.into(),
        role: r,
    };
    // A role for an unknown user, or in an unknown team: 404.
    let e = b
        .add_team_role(&env, role("ghost", Role::Member))
        .await
        .unwrap_err();
    assert_eq!(e.http_status(), 404);
    assert!(e.to_string().contains("ghost"));
    let e = b
        .add_team_role(
            &env,
            TeamRole {
                project_id: "nope".into(),
                ..role(&alice.user_cloud_id, Role::Member)
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.http_status(), 404);
    b.add_team_role(&env, role(&alice.user_cloud_id, Role::Member))
        .await
        .unwrap();
    assert_eq!(
        b.add_team_role(&env, role(&alice.user_cloud_id, Role::Member))
            .await
            .unwrap_err()
            .http_status(),
        409
    );
    b.change_team_role(
        None,
        &team.project_id,
        &alice.user_cloud_id,
        Role::Member,
        Role::Admin,
    )
    .await
    .unwrap();
    assert_eq!(
        b.change_team_role(
            None,
            &team.project_id,
            &alice.user_cloud_id,
            Role::Member,
            Role::Admin
        )
        .await
        .unwrap_err()
        .http_status(),
        404
    );

    // A wrong billing account is refused; a team with members is deleted with its role
    // assignments, as Keystone deletes a project's (the UI never removes them first).
    let e = b
        .delete_team(&env, &team.project_id, "other")
        .await
        .unwrap_err();
    assert_eq!(e.http_status(), 400);
    b.delete_team(&env, &team.project_id, &team.billing_acct_id)
        .await
        .unwrap();
    assert_eq!(
        b.delete_team(&env, &team.project_id, &team.billing_acct_id)
            .await
            .unwrap_err()
            .http_status(),
        404
    );

    // Email and password change; the new password is the one that works.
    let changed = b
        .update_user(
            &env,
            &alice.user_cloud_id,
            UserChanges {
                email: Some("a@new.example".into()),
                password: Some("pw-2".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(changed, vec!["email".to_string(), "password".to_string()]);
    let old = user_env(&alice.user_cloud_id, "pw-1", None);
    assert_eq!(b.list_key_pairs(&old).await.unwrap_err().http_status(), 401);
    let new = user_env(&alice.user_cloud_id, "pw-2", None);
    assert!(b.list_key_pairs(&new).await.unwrap().is_empty());

    b.delete_user(&env, &alice.user_cloud_id).await.unwrap();
    assert_eq!(
        b.delete_user(&env, &alice.user_cloud_id)
            .await
            .unwrap_err()
            .http_status(),
        404
    );
}

/// Prints a skip on the real stderr (libtest captures `eprintln!` of passing tests).
fn skipped(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {why}");
}

fn ssh_keygen_available() -> bool {
    Command::new("ssh-keygen")
        .arg("-?")
        .output()
        .map(|_| true)
        .unwrap_or(false)
}

/// `ssh-keygen -l -f` of a public key: its SHA256 fingerprint.
fn keygen_fingerprint(dir: &std::path::Path, public_key: &str) -> String {
    let p = dir.join("k.pub");
    std::fs::write(&p, format!("{public_key}\n")).unwrap();
    let out = Command::new("ssh-keygen")
        .arg("-l")
        .arg("-f")
        .arg(&p)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

/// `ssh-keygen -y -f` of a private key: the public key it derives.
fn keygen_public_of(dir: &std::path::Path, private_key: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("k");
    std::fs::write(&p, private_key).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = Command::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(&p)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn key_pairs_are_openssh_and_fingerprinted_like_ssh_keygen() {
    for url in stores("key_pairs_are_openssh_and_fingerprinted_like_ssh_keygen") {
        key_pairs_are_openssh_and_fingerprinted_like_ssh_keygen_on(url).await;
    }
}

async fn key_pairs_are_openssh_and_fingerprinted_like_ssh_keygen_on(url: Option<String>) {
    if !ssh_keygen_available() {
        skipped(
            "key_pairs_are_openssh_and_fingerprinted_like_ssh_keygen",
            "ssh-keygen missing (Debian package openssh-client)",
        );
        return;
    }
    let f = fixture(url).await;
    let b = &f.backend;
    let tmp = tempfile::tempdir().unwrap();
    let alice = b
        .create_user(&admin_env(), new_user(&f.n("alice")))
        .await
        .unwrap();
    let bob = b
        .create_user(&admin_env(), new_user(&f.n("bob")))
        .await
        .unwrap();
    let env = user_env(&alice.user_cloud_id, "pw-1", None);
    let bob_env = user_env(&bob.user_cloud_id, "pw-1", None);

    for (name, key_type, prefix) in [
        ("default", None, "ssh-ed25519 "),
        ("nova", Some("ssh"), "ssh-ed25519 "),
        ("big", Some("rsa"), "ssh-rsa "),
    ] {
        let k = b
            .create_key_pair(
                &env,
                NewKeyPair {
                    name: name.into(),
                    key_type: key_type.map(String::from),
                    public_key: Some(String::new()),
                },
            )
            .await
            .unwrap();
        assert!(k.public_key.starts_with(prefix), "{}", k.public_key);
        let private = k
            .private_key
            .clone()
            .expect("generated keys return the private key");
        assert_eq!(keygen_fingerprint(tmp.path(), &k.public_key), k.fingerprint);
        let derived = keygen_public_of(tmp.path(), &private);
        // ssh-keygen -y prints "<alg> <base64> [comment]".
        let strip = |s: &str| s.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        assert_eq!(strip(&derived), strip(&k.public_key));
        if key_type == Some("rsa") {
            let out = Command::new("ssh-keygen")
                .arg("-l")
                .arg("-f")
                .arg(tmp.path().join("k.pub"))
                .output()
                .unwrap();
            assert!(String::from_utf8_lossy(&out.stdout).starts_with("3072 "));
        }
    }
    // Names are unique per user, not globally.
    let dup = NewKeyPair {
        name: "default".into(),
        key_type: None,
        public_key: None,
    };
    assert_eq!(
        b.create_key_pair(&env, dup.clone())
            .await
            .unwrap_err()
            .http_status(),
        409
    );
    let bobs = b.create_key_pair(&bob_env, dup).await.unwrap();

    // Import: validated, fingerprinted, no private key; never stored privately.
    let imported = b
        .create_key_pair(
            &env,
            NewKeyPair {
                name: "imported".into(),
                key_type: None,
                public_key: Some(bobs.public_key.clone()),
            },
        )
        .await
        .unwrap();
    assert!(imported.private_key.is_none());
    assert_eq!(imported.fingerprint, bobs.fingerprint);
    let e = b
        .create_key_pair(
            &env,
            NewKeyPair {
                name: "bad".into(),
                key_type: None,
                public_key: Some("ssh-ed25519 AAAAnotakey".into()),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.http_status(), 400);
    assert!(e.to_string().contains("key_pair.public_key"));

    let listed = b.list_key_pairs(&env).await.unwrap();
    let names: Vec<&str> = listed.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["big", "default", "imported", "nova"]);
    assert_eq!(b.list_key_pairs(&bob_env).await.unwrap().len(), 1);
    b.delete_key_pair(&env, "nova").await.unwrap();
    assert_eq!(
        b.delete_key_pair(&env, "nova")
            .await
            .unwrap_err()
            .http_status(),
        404
    );
    // Bob cannot delete Alice's keys: for him the name does not exist.
    assert_eq!(
        b.delete_key_pair(&bob_env, "big")
            .await
            .unwrap_err()
            .http_status(),
        404
    );
}

fn key(team: &str, period: &str, kind: ResourceKind, id: &str) -> UsageKey {
    UsageKey {
        team: team.into(),
        period: period.into(),
        kind,
        resource_id: id.into(),
        resource_name: id.into(),
    }
}

#[tokio::test]
async fn draft_credits_and_committed_invoices() {
    for url in stores("draft_credits_and_committed_invoices") {
        draft_credits_and_committed_invoices_on(url).await;
    }
}

async fn draft_credits_and_committed_invoices_on(url: Option<String>) {
    let f = fixture(url).await;
    let b = &f.backend;
    let team = b.create_team(&admin_env(), &f.n("blue")).await.unwrap();
    let acct = team.billing_acct_id.as_str();
    let hour = 3_600_000;
    // One core for 10 h in rack "web" (0.40), 2 GiB for 10 h (0.20), 10 running hours (0.05).
    b.record_usage(
        key(&team.project_id, "2024-05", ResourceKind::Rack, "web"),
        &Usage {
            cpu_core_ms: 10 * hour,
            mem_mib_ms: 2 * 1024 * 10 * hour,
            running_ms: 10 * hour,
            disk_gib_ms: 0,
        },
    );
    // Half a core for 1 h on a lone device: 0.02 + 0.005 running.
    b.record_usage(
        key(&team.project_id, "2024-05", ResourceKind::Device, "c0ffee"),
        &Usage {
            cpu_core_ms: hour / 2,
            mem_mib_ms: 0,
            running_ms: hour,
            disk_gib_ms: 0,
        },
    );
    let draft = b.draft_invoice(acct).await.unwrap();
    assert_eq!(draft.status, InvoiceStatus::Draft);
    assert_eq!(draft.amount, Money(65 + 3), "{draft:?}");
    assert_eq!(draft.balance, draft.amount);
    assert_eq!(draft.currency, "GBP");
    assert_eq!(draft.items.len(), 2);
    // Usage persisted or still in memory reads the same.
    b.flush_usage().await.unwrap();
    assert_eq!(b.draft_invoice(acct).await.unwrap().amount, Money(68));

    assert_eq!(b.add_credits(acct, Money(50)).await.unwrap(), Money(50));
    assert_eq!(
        b.add_credits(acct, Money(0))
            .await
            .unwrap_err()
            .http_status(),
        400
    );
    // Credits left = granted − draft amount (as the original computed it).
    assert_eq!(b.get_credits(acct).await.unwrap(), Money(50 - 68));
    let draft = b.draft_invoice(acct).await.unwrap();
    assert_eq!(draft.credit_adj, Money(-50));
    assert_eq!(draft.balance, Money(18));

    // Nothing of this team is committed before the month ends.
    b.close_periods().await.unwrap();
    let page = b.list_invoices(acct, 0, 100).await.unwrap();
    assert_eq!(page.total_invoices, 0);

    f.clock.store(JUNE_1, Ordering::SeqCst);
    // (≥: a shared test database may hold other runs' teams.)
    assert!(b.close_periods().await.unwrap() >= 1);
    assert_eq!(b.close_periods().await.unwrap(), 0, "committed once");
    let page = b.list_invoices(acct, 0, 100).await.unwrap();
    assert_eq!(page.total_invoices, 1);
    let inv = &page.invoices[0];
    assert_eq!(inv.status, InvoiceStatus::Committed);
    assert_eq!(inv.invoice_number, Some(1));
    assert_eq!(
        (inv.amount, inv.credit_adj, inv.balance),
        (Money(68), Money(-50), Money(18))
    );
    assert_eq!(inv.invoice_date, "2024-05-31");
    let got = b.get_invoice(acct, &inv.invoice_id).await.unwrap();
    assert_eq!(&got, inv);
    assert_eq!(
        b.get_invoice(acct, "nope").await.unwrap_err().http_status(),
        404
    );
    // June: nothing used yet, credits all spent.
    let june = b.draft_invoice(acct).await.unwrap();
    assert_eq!(june.amount, Money(0));
    assert_eq!(b.get_credits(acct).await.unwrap(), Money(0));
    // Paging.
    assert!(b
        .list_invoices(acct, 1, 100)
        .await
        .unwrap()
        .invoices
        .is_empty());
    assert_eq!(
        b.list_invoices(acct, 0, 0).await.unwrap_err().http_status(),
        400
    );
    assert_eq!(
        b.list_invoices("nope", 0, 10)
            .await
            .unwrap_err()
            .http_status(),
        404
    );

    // The JSON the UI reads: items keyed by id, with `type`.
    let v = serde_json::to_value(inv).unwrap();
    let items = v["items"].as_object().unwrap();
    assert!(items
        .values()
        .any(|i| i["type"] == "cost" && i["openstack_stack_id"] == "web"));
    assert!(items
        .values()
        .any(|i| i["type"] == "credits" && i["amount"] == -0.5));
    assert_eq!(v["amount"], 0.68);
}
