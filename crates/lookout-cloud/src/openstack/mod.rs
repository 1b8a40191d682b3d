//! The OpenStack backend: the Concertim routes on a real OpenStack cloud, behind the same
//! [`CloudBackend`] trait as the local backend.
//!
//! Every request's `cloud_env` is Keystone v3 password auth ([`client`]: tokens cached per
//! credential set until shortly before expiry, endpoints from the catalog). Users are
//! Keystone users `CM_<username>` in domain `default`; a team is a project `CM_<name>` with
//! the admin user as `admin` and the `concertim` user as `watcher`, plus a billing account in
//! lookout's ledger (the local backend's store, shared). Key pairs are Nova key pairs (lookout
//! generates the pair when no public key is given); devices are Nova servers; racks are Heat
//! stacks. Usage is metered from Nova's `os-simple-tenant-usage` (server hours × flavour) and
//! rated with the same price list and ledger as the local backend, so invoices read the same.

pub mod client;
mod stacks;

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use sqlx::Row;

use lookout_probe::docker::ContainerControl;

use crate::backend::{BoxFuture, CloudBackend};
use crate::error::{CloudError, CloudResult};
use crate::keys;
use crate::local::{Db, LocalBackend, LocalConfig};
use crate::metering::{period_of, PriceList};
use crate::model::*;
use crate::money::Money;

pub use client::{OsClient, Session};

/// Nova microversion for key pairs (import only: generation is gone at 2.92).
const KEYPAIR_MV: &str = "2.92";

/// Settings of the OpenStack backend.
#[derive(Clone)]
pub struct OpenStackConfig {
    /// Catalog region; `None` takes the first public endpoint of each service.
    pub region: Option<String>,
    /// The user every team grants `admin` to.
    pub admin_user: String,
    /// The user every team grants `watcher` to.
    pub concertim_user: String,
    /// Credentials lookout uses where a route carries no `cloud_env` (metering for
    /// invoices, `PATCH /team_role` without one). Admin on the cloud.
    pub service: Option<CloudEnv>,
    /// The Keystone URLs a request's `cloud_env.auth_url` may name; empty: only the
    /// service credentials' `auth_url` (none at all when there are none).
    pub allowed_auth_urls: Vec<String>,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// The ledger's store (as the local backend's).
    pub store_url: String,
    pub prices: PriceList,
}

impl OpenStackConfig {
    /// The allow-list in force: the configured one, else the service credentials' URL.
    pub fn effective_allowed_auth_urls(&self) -> Vec<String> {
        if self.allowed_auth_urls.is_empty() {
            self.service.iter().map(|s| s.auth_url.clone()).collect()
        } else {
            self.allowed_auth_urls.clone()
        }
    }
}

impl std::fmt::Debug for OpenStackConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenStackConfig")
            .field("region", &self.region)
            .field("admin_user", &self.admin_user)
            .field("concertim_user", &self.concertim_user)
            .field("service", &self.service)
            .field("allowed_auth_urls", &self.allowed_auth_urls)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

pub struct OpenStackBackend {
    os: OsClient,
    cfg: OpenStackConfig,
    /// Billing accounts, usage lines, credits and invoices.
    ledger: Arc<LocalBackend>,
    db: Db,
}

fn new_uuid() -> String {
    use rand::Rng;
    let h = hex::encode(rand::rng().random::<[u8; 16]>());
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn check_text(field: &str, v: &str) -> CloudResult<()> {
    if v.trim().is_empty() {
        return Err(CloudError::invalid(field, "must not be empty"));
    }
    if v.chars().count() > 200 {
        return Err(CloudError::invalid(field, "is longer than 200 characters"));
    }
    Ok(())
}

fn check_id(field: &str, v: &str) -> CloudResult<()> {
    check_text(field, v)?;
    crate::ids::check(field, v)?;
    if v.chars().any(|c| c == '/' || c.is_control()) {
        return Err(CloudError::invalid(field, "is not an id"));
    }
    Ok(())
}

fn utc(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

fn nova_time(t: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The `YYYY-MM` before `period`.
fn previous_period(period: &str) -> String {
    let (y, m) = period.split_once('-').unwrap_or(("1970", "01"));
    let (y, m) = (
        y.parse::<i32>().unwrap_or(1970),
        m.parse::<u8>().unwrap_or(1),
    );
    if m <= 1 {
        format!("{:04}-12", y - 1)
    } else {
        format!("{y:04}-{:02}", m - 1)
    }
}

/// Hours as Nova reports them → whole milliseconds (never negative).
fn hours_to_ms(h: f64) -> i64 {
    if h.is_finite() && h > 0.0 {
        (h * 3_600_000.0).round().min(i64::MAX as f64) as i64
    } else {
        0
    }
}

/// One server's usage line of `os-simple-tenant-usage`, in the ledger's integer units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUsage {
    pub instance_id: String,
    pub name: String,
    pub running_ms: i64,
    pub cpu_core_ms: i64,
    pub mem_mib_ms: i64,
    /// Flavour disk (`local_gb`) × hours, in GiB-milliseconds.
    pub disk_gib_ms: i64,
}

/// Reads `server_usages` of an `os-simple-tenant-usage` answer; several lines of one server
/// (a resize) add up.
pub fn parse_usage(v: &Value) -> Vec<ServerUsage> {
    let mut out: Vec<ServerUsage> = Vec::new();
    for s in v["tenant_usage"]["server_usages"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let Some(id) = s["instance_id"].as_str() else {
            continue;
        };
        let ms = hours_to_ms(s["hours"].as_f64().unwrap_or(0.0));
        let vcpus = s["vcpus"].as_i64().unwrap_or(0).max(0);
        let mem = s["memory_mb"].as_i64().unwrap_or(0).max(0);
        let disk = s["local_gb"].as_i64().unwrap_or(0).max(0);
        let u = ServerUsage {
            instance_id: id.to_string(),
            name: s["name"].as_str().unwrap_or(id).to_string(),
            running_ms: ms,
            cpu_core_ms: ms.saturating_mul(vcpus),
            mem_mib_ms: ms.saturating_mul(mem),
            disk_gib_ms: ms.saturating_mul(disk),
        };
        match out.iter_mut().find(|o| o.instance_id == u.instance_id) {
            Some(o) => {
                o.running_ms = o.running_ms.saturating_add(u.running_ms);
                o.cpu_core_ms = o.cpu_core_ms.saturating_add(u.cpu_core_ms);
                o.mem_mib_ms = o.mem_mib_ms.saturating_add(u.mem_mib_ms);
                o.disk_gib_ms = o.disk_gib_ms.saturating_add(u.disk_gib_ms);
            }
            None => out.push(u),
        }
    }
    out
}

impl OpenStackBackend {
    /// Opens the ledger's store and builds the backend. `control` is never used for
    /// devices here (they are Nova servers); the ledger is the local backend's.
    pub async fn open(
        cfg: OpenStackConfig,
        control: Arc<dyn ContainerControl>,
    ) -> CloudResult<Self> {
        let ledger = LocalBackend::open(
            LocalConfig {
                store_url: cfg.store_url.clone(),
                prices: cfg.prices.clone(),
            },
            control,
            None,
        )
        .await?;
        // The same pool as the ledger: one SQLite file must have one writer.
        let db = ledger.db().clone();
        let os = OsClient::new(cfg.region.clone(), cfg.connect_timeout, cfg.timeout)?
            .with_allowed_auth_urls(&cfg.effective_allowed_auth_urls())?;
        Ok(Self {
            os,
            cfg,
            ledger: Arc::new(ledger),
            db,
        })
    }

    /// The ledger (the local backend's store): closing finished months runs on it.
    pub fn ledger(&self) -> Arc<LocalBackend> {
        self.ledger.clone()
    }

    pub fn client(&self) -> &OsClient {
        &self.os
    }

    async fn session(&self, env: &CloudEnv) -> CloudResult<Arc<Session>> {
        self.os.session(env).await
    }

    fn service_env(&self) -> CloudResult<&CloudEnv> {
        self.cfg.service.as_ref().ok_or_else(|| {
            CloudError::Internal(
                "no OpenStack service credentials configured ([concertim.openstack] \
                 auth_url, username, password, project_name)"
                    .into(),
            )
        })
    }

    async fn ks(
        &self,
        s: &Session,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> CloudResult<client::Reply> {
        self.os.call(s, "identity", method, path, body, None).await
    }

    async fn find_user(&self, s: &Session, name: &str) -> CloudResult<Option<String>> {
        let r = self
            .ks(
                s,
                Method::GET,
                &format!("/users?domain_id=default&name={}", client::enc(name)),
                None,
            )
            .await?;
        Ok(r.body["users"][0]["id"].as_str().map(str::to_string))
    }

    async fn find_role(&self, s: &Session, name: &str) -> CloudResult<Option<String>> {
        let r = self
            .ks(
                s,
                Method::GET,
                &format!("/roles?name={}", client::enc(name)),
                None,
            )
            .await?;
        Ok(r.body["roles"][0]["id"].as_str().map(str::to_string))
    }

    /// Resolves role and user names; anything missing from the cloud is named in one 500.
    async fn require(
        &self,
        s: &Session,
        roles: &[&str],
        users: &[&str],
    ) -> CloudResult<(Vec<String>, Vec<String>)> {
        let mut missing = Vec::new();
        let mut role_ids = Vec::new();
        for r in roles {
            match self.find_role(s, r).await? {
                Some(id) => role_ids.push(id),
                None => missing.push(format!("role `{r}`")),
            }
        }
        let mut user_ids = Vec::new();
        for u in users {
            match self.find_user(s, u).await? {
                Some(id) => user_ids.push(id),
                None => missing.push(format!("user `{u}` (domain default)")),
            }
        }
        if !missing.is_empty() {
            return Err(CloudError::Internal(format!(
                "the OpenStack cloud lacks what lookout needs: {}",
                missing.join(", ")
            )));
        }
        Ok((role_ids, user_ids))
    }

    async fn grant(&self, s: &Session, project: &str, user: &str, role: &str) -> CloudResult<()> {
        self.ks(
            s,
            Method::PUT,
            &format!(
                "/projects/{}/users/{}/roles/{}",
                client::seg(project)?,
                client::seg(user)?,
                client::seg(role)?
            ),
            None,
        )
        .await
        .map(|_| ())
    }

    async fn revoke(&self, s: &Session, project: &str, user: &str, role: &str) -> CloudResult<()> {
        self.ks(
            s,
            Method::DELETE,
            &format!(
                "/projects/{}/users/{}/roles/{}",
                client::seg(project)?,
                client::seg(user)?,
                client::seg(role)?
            ),
            None,
        )
        .await
        .map(|_| ())
    }

    async fn has_grant(
        &self,
        s: &Session,
        project: &str,
        user: &str,
        role: &str,
    ) -> CloudResult<bool> {
        match self
            .ks(
                s,
                Method::HEAD,
                &format!(
                    "/projects/{}/users/{}/roles/{}",
                    client::seg(project)?,
                    client::seg(user)?,
                    client::seg(role)?
                ),
                None,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.http_status() == 404 => Ok(false),
            Err(e) => Err(e),
        }
    }

    // ---------------------------------------------------------------- identity

    async fn do_create_user(&self, env: &CloudEnv, u: NewUser) -> CloudResult<CreatedUser> {
        check_text("username", &u.username)?;
        check_text("password", &u.password)?;
        let s = self.session(env).await?;
        let mut user = json!({
            "name": format!("CM_{}", u.username),
            "domain_id": "default",
            "password": u.password,
            "enabled": true,
        });
        if !u.email.is_empty() {
            user["email"] = json!(u.email);
        }
        if !u.name.is_empty() {
            user["description"] = json!(u.name);
        }
        let r = self
            .ks(&s, Method::POST, "/users", Some(&json!({ "user": user })))
            .await?;
        let id = r.body["user"]["id"]
            .as_str()
            .ok_or_else(|| CloudError::Internal("keystone created a user but sent no id".into()))?;
        Ok(CreatedUser {
            username: u.username,
            user_cloud_id: id.to_string(),
        })
    }

    async fn do_update_user(
        &self,
        env: &CloudEnv,
        id: &str,
        c: UserChanges,
    ) -> CloudResult<Vec<String>> {
        check_id("user_info.cloud_user_id", id)?;
        let mut user = serde_json::Map::new();
        let mut changed = Vec::new();
        if let Some(e) = c.email {
            user.insert("email".into(), json!(e));
            changed.push("email".to_string());
        }
        if let Some(p) = c.password {
            check_text("user_info.new_data.password", &p)?;
            user.insert("password".into(), json!(p));
            changed.push("password".to_string());
        }
        if changed.is_empty() {
            return Ok(changed);
        }
        let s = self.session(env).await?;
        self.ks(
            &s,
            Method::PATCH,
            &format!("/users/{}", client::seg(id)?),
            Some(&json!({ "user": user })),
        )
        .await?;
        Ok(changed)
    }

    async fn do_delete_user(&self, env: &CloudEnv, id: &str) -> CloudResult<()> {
        check_id("user_info.cloud_user_id", id)?;
        let s = self.session(env).await?;
        self.ks(
            &s,
            Method::DELETE,
            &format!("/users/{}", client::seg(id)?),
            None,
        )
        .await
        .map(|_| ())
    }

    async fn do_create_team(&self, env: &CloudEnv, name: &str) -> CloudResult<CreatedTeam> {
        check_text("name", name)?;
        let s = self.session(env).await?;
        let (roles, users) = self
            .require(
                &s,
                &["admin", "watcher"],
                &[&self.cfg.admin_user, &self.cfg.concertim_user],
            )
            .await?;
        let project_name = format!("CM_{name}");
        let r = self
            .ks(
                &s,
                Method::POST,
                "/projects",
                Some(&json!({"project": {
                    "name": project_name,
                    "domain_id": "default",
                    "description": format!("Concertim team {name}"),
                    "enabled": true,
                }})),
            )
            .await?;
        let project_id = r.body["project"]["id"]
            .as_str()
            .ok_or_else(|| {
                CloudError::Internal("keystone created a project but sent no id".into())
            })?
            .to_string();
        let billing_acct_id = new_uuid();
        let steps = async {
            self.grant(&s, &project_id, &users[0], &roles[0]).await?;
            self.grant(&s, &project_id, &users[1], &roles[1]).await?;
            sqlx::query(self.db.sql(
                "INSERT INTO cloud_teams (id, name, billing_acct_id, created_at) VALUES (?, ?, ?, ?)",
            ))
            .bind(project_id.clone())
            .bind(project_name.clone())
            .bind(billing_acct_id.clone())
            .bind(crate::now_secs())
            .execute(&self.db.pool)
            .await?;
            Ok::<(), CloudError>(())
        };
        if let Err(e) = steps.await {
            // Roll back: the project (its grants go with it). The ledger row is the last step.
            if let Err(re) = self
                .ks(
                    &s,
                    Method::DELETE,
                    &format!("/projects/{}", client::seg(&project_id)?),
                    None,
                )
                .await
            {
                tracing::warn!(project_id, error = %re, "rolling back a team: project delete failed");
            }
            return Err(e);
        }
        Ok(CreatedTeam {
            project_id,
            billing_acct_id,
        })
    }

    async fn do_delete_team(
        &self,
        env: &CloudEnv,
        project_id: &str,
        acct: &str,
    ) -> CloudResult<()> {
        check_id("team_info.project_id", project_id)?;
        let row = sqlx::query(
            self.db
                .sql("SELECT billing_acct_id FROM cloud_teams WHERE id = ?"),
        )
        .bind(project_id.to_string())
        .fetch_optional(&self.db.pool)
        .await?;
        if let Some(row) = &row {
            if row.try_get::<String, _>(0)? != acct {
                return Err(CloudError::invalid(
                    "team_info.billing_acct_id",
                    "is not the billing account of this team",
                ));
            }
        }
        let s = self.session(env).await?;
        let path = format!("/projects/{}", client::seg(project_id)?);
        // Keystone refuses to delete an enabled project in some deployments: disable first.
        self.ks(
            &s,
            Method::PATCH,
            &path,
            Some(&json!({"project": {"enabled": false}})),
        )
        .await?;
        self.ks(&s, Method::DELETE, &path, None).await?;
        sqlx::query(self.db.sql("DELETE FROM cloud_teams WHERE id = ?"))
            .bind(project_id.to_string())
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    async fn do_role(&self, env: &CloudEnv, r: TeamRole, add: bool) -> CloudResult<()> {
        check_id("team_role.project_id", &r.project_id)?;
        check_id("team_role.user_id", &r.user_id)?;
        let s = self.session(env).await?;
        let (roles, _) = self.require(&s, &[r.role.as_str()], &[]).await?;
        if add {
            self.grant(&s, &r.project_id, &r.user_id, &roles[0]).await
        } else {
            self.revoke(&s, &r.project_id, &r.user_id, &roles[0]).await
        }
    }

    async fn do_change_role(
        &self,
        env: Option<&CloudEnv>,
        project: &str,
        user: &str,
        current: Role,
        new: Role,
    ) -> CloudResult<()> {
        check_id("team_role.project_id", project)?;
        check_id("team_role.user_id", user)?;
        let env = match env {
            Some(e) => e,
            None => self.service_env()?,
        };
        let s = self.session(env).await?;
        let (roles, _) = self
            .require(&s, &[current.as_str(), new.as_str()], &[])
            .await?;
        if !self.has_grant(&s, project, user, &roles[0]).await? {
            return Err(CloudError::NotFound(format!(
                "user {user} does not hold role {} in project {project}",
                current.as_str()
            )));
        }
        if current == new {
            return Ok(());
        }
        self.grant(&s, project, user, &roles[1]).await?;
        self.revoke(&s, project, user, &roles[0]).await
    }

    // ---------------------------------------------------------------- key pairs

    async fn do_create_key(&self, env: &CloudEnv, k: NewKeyPair) -> CloudResult<KeyPairCreated> {
        check_text("key_pair.name", &k.name)?;
        let made = match k.public_key.as_deref().filter(|p| !p.trim().is_empty()) {
            Some(p) => keys::import(p, &k.name)?,
            None => keys::generate(keys::KeyKind::from_request(k.key_type.as_deref())?, &k.name)?,
        };
        let s = self.session(env).await?;
        let r = self
            .os
            .call(
                &s,
                "compute",
                Method::POST,
                "/os-keypairs",
                Some(&json!({"keypair": {
                    "name": k.name,
                    "public_key": made.public_key,
                    "type": "ssh",
                }})),
                Some(KEYPAIR_MV),
            )
            .await?;
        let kp = &r.body["keypair"];
        Ok(KeyPairCreated {
            id: kp["name"].as_str().unwrap_or(&k.name).to_string(),
            name: kp["name"].as_str().unwrap_or(&k.name).to_string(),
            private_key: made.private_key,
            public_key: kp["public_key"]
                .as_str()
                .unwrap_or(&made.public_key)
                .to_string(),
            fingerprint: kp["fingerprint"]
                .as_str()
                .unwrap_or(&made.fingerprint)
                .to_string(),
        })
    }

    async fn do_list_keys(&self, env: &CloudEnv) -> CloudResult<Vec<KeyPairInfo>> {
        let s = self.session(env).await?;
        let r = self
            .os
            .call(
                &s,
                "compute",
                Method::GET,
                "/os-keypairs",
                None,
                Some(KEYPAIR_MV),
            )
            .await?;
        Ok(r.body["keypairs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| {
                let k = &k["keypair"];
                let name = k["name"].as_str()?;
                Some(KeyPairInfo {
                    id: name.to_string(),
                    name: name.to_string(),
                    public_key: k["public_key"].as_str().unwrap_or_default().to_string(),
                    fingerprint: k["fingerprint"].as_str().unwrap_or_default().to_string(),
                    key_type: k["type"].as_str().unwrap_or("ssh").to_string(),
                })
            })
            .collect())
    }

    async fn do_delete_key(&self, env: &CloudEnv, name: &str) -> CloudResult<()> {
        check_text("keypair_name", name)?;
        let s = self.session(env).await?;
        self.os
            .call(
                &s,
                "compute",
                Method::DELETE,
                &format!("/os-keypairs/{}", client::seg(name)?),
                None,
                Some(KEYPAIR_MV),
            )
            .await
            .map(|_| ())
    }

    // ---------------------------------------------------------------- power

    async fn do_update_status(
        &self,
        env: &CloudEnv,
        kind: TargetKind,
        id: &str,
        action: PowerAction,
    ) -> CloudResult<StatusChange> {
        check_id("id", id)?;
        let s = self.session(env).await?;
        let reply = match kind {
            TargetKind::Device => {
                let path = format!("/servers/{}", client::seg(id)?);
                // Every action but destroy is a server action named by its body's one key.
                let server_action = match action {
                    PowerAction::On => Some("os-start"),
                    PowerAction::Off => Some("os-stop"),
                    PowerAction::Suspend => Some("suspend"),
                    PowerAction::Resume => Some("resume"),
                    PowerAction::Destroy => None,
                };
                match server_action {
                    Some(a) => {
                        self.os
                            .call(
                                &s,
                                "compute",
                                Method::POST,
                                &format!("{path}/action"),
                                Some(&json!({ a: null })),
                                None,
                            )
                            .await?
                    }
                    None => {
                        self.os
                            .call(&s, "compute", Method::DELETE, &path, None, None)
                            .await?
                    }
                }
            }
            TargetKind::Volume => {
                let service = self.volume_service(&s).ok_or_else(|| {
                    missing_service("volumes", "Cinder (block-storage, volumev3)")
                })?;
                let path = format!("/volumes/{}", client::seg(id)?);
                self.os
                    .call(&s, service, Method::DELETE, &path, None, None)
                    .await?
            }
            TargetKind::Network => {
                if self.os.endpoint(&s, "network").is_err() {
                    return Err(missing_service("networks", "Neutron (network)"));
                }
                let path = format!("/v2.0/networks/{}", client::seg(id)?);
                self.os
                    .call(&s, "network", Method::DELETE, &path, None, None)
                    .await?
            }
            TargetKind::Rack => {
                // GET /stacks/<id> redirects to /stacks/<name>/<id>.
                let found = self
                    .os
                    .call(
                        &s,
                        "orchestration",
                        Method::GET,
                        &format!("/stacks/{}", client::seg(id)?),
                        None,
                        None,
                    )
                    .await?;
                let st = &found.body["stack"];
                let (Some(sid), Some(sname)) = (st["id"].as_str(), st["stack_name"].as_str())
                else {
                    return Err(CloudError::Status {
                        status: 502,
                        kind: "BadGateway",
                        message: "heat: the stack answer names no id or stack_name".into(),
                    });
                };
                let path = format!("/stacks/{}/{}", client::seg(sname)?, client::seg(sid)?);
                match action {
                    PowerAction::Suspend | PowerAction::Resume => {
                        let a = if action == PowerAction::Suspend {
                            "suspend"
                        } else {
                            "resume"
                        };
                        self.os
                            .call(
                                &s,
                                "orchestration",
                                Method::POST,
                                &format!("{path}/actions"),
                                Some(&json!({ a: null })),
                                None,
                            )
                            .await?
                    }
                    PowerAction::Destroy => {
                        self.os
                            .call(&s, "orchestration", Method::DELETE, &path, None, None)
                            .await?
                    }
                    PowerAction::On | PowerAction::Off => {
                        return Err(CloudError::InvalidCall(
                            "racks take suspend, resume or destroy".into(),
                        ))
                    }
                }
            }
        };
        Ok(StatusChange {
            submitted: true,
            request_ids: reply.request_id.into_iter().collect(),
        })
    }

    // ---------------------------------------------------------------- metering

    /// Reads a project's server usage for `period` from Nova and writes it as the period's
    /// usage lines (absolute figures, so repeating it never double-counts).
    pub async fn sync_period(
        &self,
        project_id: &str,
        period: &str,
        now_ms: i64,
    ) -> CloudResult<()> {
        let env = self.service_env()?;
        let s = self.session(env).await?;
        let start = format!("{period}-01T00:00:00");
        let (_, last) = crate::ledger::period_bounds(period);
        let end = if period == period_of(now_ms) {
            nova_time(utc(now_ms))
        } else {
            format!("{last}T23:59:59")
        };
        let r = self
            .os
            .call(
                &s,
                "compute",
                Method::GET,
                &format!(
                    "/os-simple-tenant-usage/{}?start={start}&end={end}",
                    client::seg(project_id)?
                ),
                None,
                None,
            )
            .await?;
        let servers = parse_usage(&r.body);
        // Servers of the stacks the team's orders name are billed per stack (rack); a Heat
        // that does not answer leaves them per server until the next sync.
        let stack_of = match self.server_stacks(&s, project_id).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(team = project_id, error = %e, "heat: stacks of the team's orders not read; billing its servers one by one");
                Default::default()
            }
        };
        let lines = stacks::group_by_stack(&servers, &stack_of);
        // Nova's figures are absolute for the whole period (deleted servers included), so the
        // period's lines are replaced as a whole: a server that moved into a stack leaves no
        // stale device line behind.
        let mut tx = self.db.pool.begin().await?;
        sqlx::query(
            self.db
                .sql("DELETE FROM cloud_usage WHERE team_id = ? AND period = ?"),
        )
        .bind(project_id.to_string())
        .bind(period.to_string())
        .execute(&mut *tx)
        .await?;
        for u in &lines {
            sqlx::query(self.db.sql(
                "INSERT INTO cloud_usage (team_id, period, kind, resource_id, resource_name, \
                 cpu_core_ms, mem_mib_ms, running_ms, disk_gib_ms) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ))
            .bind(project_id.to_string())
            .bind(period.to_string())
            .bind(u.kind.as_str())
            .bind(u.id.clone())
            .bind(u.name.clone())
            .bind(u.usage.cpu_core_ms)
            .bind(u.usage.mem_mib_ms)
            .bind(u.usage.running_ms)
            .bind(u.usage.disk_gib_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Syncs the running month of a team, and the month before while it has no invoice.
    pub async fn sync_usage(&self, project_id: &str) -> CloudResult<()> {
        let now = crate::now_ms();
        let current = period_of(now);
        let prev = previous_period(&current);
        let invoiced = sqlx::query(
            self.db
                .sql("SELECT id FROM cloud_invoices WHERE team_id = ? AND period = ?"),
        )
        .bind(project_id.to_string())
        .bind(prev.clone())
        .fetch_optional(&self.db.pool)
        .await?
        .is_some();
        if !invoiced {
            self.sync_period(project_id, &prev, now).await?;
        }
        self.sync_period(project_id, &current, now).await
    }

    async fn team_of_account(&self, acct: &str) -> CloudResult<Option<String>> {
        Ok(sqlx::query(
            self.db
                .sql("SELECT id FROM cloud_teams WHERE billing_acct_id = ?"),
        )
        .bind(acct.to_string())
        .fetch_optional(&self.db.pool)
        .await?
        .map(|r| r.try_get::<String, _>(0))
        .transpose()?)
    }

    /// Brings an account's usage up to date before it is read; a cloud that does not answer
    /// leaves the last synced usage (logged).
    async fn refresh_account(&self, acct: &str) {
        let Ok(Some(team)) = self.team_of_account(acct).await else {
            return;
        };
        if self.cfg.service.is_none() {
            return;
        }
        if let Err(e) = self.sync_usage(&team).await {
            tracing::warn!(team, error = %e, "openstack usage sync failed; invoice from the last synced usage");
        }
    }

    /// Syncs every team's usage, then commits finished months. Returns teams synced.
    pub async fn sync_all(&self) -> CloudResult<usize> {
        let rows = sqlx::query(self.db.sql("SELECT id FROM cloud_teams"))
            .fetch_all(&self.db.pool)
            .await?;
        let mut n = 0;
        if self.cfg.service.is_some() {
            for r in rows {
                let team: String = r.try_get(0)?;
                match self.sync_usage(&team).await {
                    Ok(()) => n += 1,
                    Err(e) => tracing::warn!(team, error = %e, "openstack usage sync failed"),
                }
            }
        }
        self.ledger.close_periods().await?;
        Ok(n)
    }

    // ---------------------------------------------------------------- extras

    /// The catalog's block-storage service type, newest name first.
    fn volume_service(&self, s: &Session) -> Option<&'static str> {
        ["block-storage", "volumev3", "volumev2", "volume"]
            .into_iter()
            .find(|t| self.os.endpoint(s, t).is_ok())
    }

    async fn compute_get(&self, env: &CloudEnv, path: &str) -> CloudResult<Value> {
        let s = self.session(env).await?;
        Ok(self
            .os
            .call(&s, "compute", Method::GET, path, None, None)
            .await?
            .body)
    }
}

/// A 400 naming the service this cloud lacks for `what`.
fn missing_service(what: &str, service: &str) -> CloudError {
    CloudError::Status {
        status: 400,
        kind: "MissingCloudService",
        message: format!(
            "this cloud's service catalog has no {service} endpoint, so {what} cannot be changed"
        ),
    }
}

/// Nova's `hypervisor_statistics` in the shape the UI reads (`get_cloud_stats_job.rb`):
/// RAM in GB as hypervisors report MB, disk in GB.
pub fn stats_of(h: &Value) -> Value {
    let n = |k: &str| h[k].as_f64().unwrap_or(0.0);
    json!({
        "total_vcpus": h["vcpus"].as_i64().unwrap_or(0),
        "used_vcpus": h["vcpus_used"].as_i64().unwrap_or(0),
        "total_ram": (n("memory_mb") / 1024.0 * 100.0).round() / 100.0,
        "used_ram": (n("memory_mb_used") / 1024.0 * 100.0).round() / 100.0,
        "total_disk_space": n("local_gb"),
        "used_disk_space": n("local_gb_used"),
        "running_vms": h["running_vms"].as_i64().unwrap_or(0),
    })
}

/// Keeps the ledger current: every `every`, syncs usage from Nova and commits finished months.
pub async fn run_openstack_meter(backend: Arc<OpenStackBackend>, every: Duration) {
    let mut timer = tokio::time::interval(every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        timer.tick().await;
        if let Err(e) = backend.sync_all().await {
            tracing::warn!(error = %e, "openstack metering failed; retrying");
        }
    }
}

impl CloudBackend for OpenStackBackend {
    fn name(&self) -> &'static str {
        "openstack"
    }

    fn create_user<'a>(
        &'a self,
        env: &'a CloudEnv,
        user: NewUser,
    ) -> BoxFuture<'a, CloudResult<CreatedUser>> {
        Box::pin(self.do_create_user(env, user))
    }

    fn update_user<'a>(
        &'a self,
        env: &'a CloudEnv,
        user_id: &'a str,
        changes: UserChanges,
    ) -> BoxFuture<'a, CloudResult<Vec<String>>> {
        Box::pin(self.do_update_user(env, user_id, changes))
    }

    fn delete_user<'a>(
        &'a self,
        env: &'a CloudEnv,
        user_id: &'a str,
    ) -> BoxFuture<'a, CloudResult<()>> {
        Box::pin(self.do_delete_user(env, user_id))
    }

    fn create_team<'a>(
        &'a self,
        env: &'a CloudEnv,
        name: &'a str,
    ) -> BoxFuture<'a, CloudResult<CreatedTeam>> {
        Box::pin(self.do_create_team(env, name))
    }

    fn delete_team<'a>(
        &'a self,
        env: &'a CloudEnv,
        project_id: &'a str,
        billing_acct_id: &'a str,
    ) -> BoxFuture<'a, CloudResult<()>> {
        Box::pin(self.do_delete_team(env, project_id, billing_acct_id))
    }

    fn add_team_role<'a>(
        &'a self,
        env: &'a CloudEnv,
        role: TeamRole,
    ) -> BoxFuture<'a, CloudResult<()>> {
        Box::pin(self.do_role(env, role, true))
    }

    fn remove_team_role<'a>(
        &'a self,
        env: &'a CloudEnv,
        role: TeamRole,
    ) -> BoxFuture<'a, CloudResult<()>> {
        Box::pin(self.do_role(env, role, false))
    }

    fn change_team_role<'a>(
        &'a self,
        env: Option<&'a CloudEnv>,
        project_id: &'a str,
        user_id: &'a str,
        current: Role,
        new: Role,
    ) -> BoxFuture<'a, CloudResult<()>> {
        Box::pin(self.do_change_role(env, project_id, user_id, current, new))
    }

    fn update_status<'a>(
        &'a self,
        env: &'a CloudEnv,
        kind: TargetKind,
        id: &'a str,
        action: PowerAction,
    ) -> BoxFuture<'a, CloudResult<StatusChange>> {
        Box::pin(self.do_update_status(env, kind, id, action))
    }

    fn create_key_pair<'a>(
        &'a self,
        env: &'a CloudEnv,
        key: NewKeyPair,
    ) -> BoxFuture<'a, CloudResult<KeyPairCreated>> {
        Box::pin(self.do_create_key(env, key))
    }

    fn list_key_pairs<'a>(
        &'a self,
        env: &'a CloudEnv,
    ) -> BoxFuture<'a, CloudResult<Vec<KeyPairInfo>>> {
        Box::pin(self.do_list_keys(env))
    }

    fn delete_key_pair<'a>(
        &'a self,
        env: &'a CloudEnv,
        name: &'a str,
    ) -> BoxFuture<'a, CloudResult<()>> {
        Box::pin(self.do_delete_key(env, name))
    }

    fn draft_invoice<'a>(&'a self, acct: &'a str) -> BoxFuture<'a, CloudResult<Invoice>> {
        Box::pin(async move {
            self.refresh_account(acct).await;
            self.ledger.draft_invoice(acct).await
        })
    }

    fn list_invoices<'a>(
        &'a self,
        acct: &'a str,
        offset: i64,
        limit: i64,
    ) -> BoxFuture<'a, CloudResult<InvoicePage>> {
        Box::pin(async move {
            self.refresh_account(acct).await;
            self.ledger.list_invoices(acct, offset, limit).await
        })
    }

    fn get_invoice<'a>(
        &'a self,
        acct: &'a str,
        invoice_id: &'a str,
    ) -> BoxFuture<'a, CloudResult<Invoice>> {
        Box::pin(async move {
            self.refresh_account(acct).await;
            self.ledger.get_invoice(acct, invoice_id).await
        })
    }

    fn add_credits<'a>(
        &'a self,
        acct: &'a str,
        amount: Money,
    ) -> BoxFuture<'a, CloudResult<Money>> {
        Box::pin(self.ledger.add_credits(acct, amount))
    }

    fn get_credits<'a>(&'a self, acct: &'a str) -> BoxFuture<'a, CloudResult<Money>> {
        Box::pin(async move {
            self.refresh_account(acct).await;
            self.ledger.get_credits(acct).await
        })
    }

    fn create_order<'a>(
        &'a self,
        acct: &'a str,
    ) -> BoxFuture<'a, CloudResult<crate::orders::Order>> {
        self.ledger.create_order(acct)
    }

    fn delete_order<'a>(&'a self, order_id: &'a str) -> BoxFuture<'a, CloudResult<()>> {
        self.ledger.delete_order(order_id)
    }

    fn add_order_tag<'a>(
        &'a self,
        order_id: &'a str,
        name: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, CloudResult<crate::orders::OrderTag>> {
        self.ledger.add_order_tag(order_id, name, value)
    }

    fn statistics<'a>(&'a self) -> BoxFuture<'a, CloudResult<Value>> {
        Box::pin(async move {
            // The UI sends no cloud_env here: the service's own (admin) credentials answer.
            let env = self.service_env()?;
            let v = self.compute_get(env, "/os-hypervisors/statistics").await?;
            Ok(stats_of(&v["hypervisor_statistics"]))
        })
    }

    fn team_quotas<'a>(
        &'a self,
        env: &'a CloudEnv,
        project_id: &'a str,
    ) -> BoxFuture<'a, CloudResult<Value>> {
        Box::pin(async move {
            check_id("project_id", project_id)?;
            let v = self
                .compute_get(
                    env,
                    &format!("/os-quota-sets/{}?usage=False", client::seg(project_id)?),
                )
                .await?;
            Ok(json!({"compute": v["quota_set"]}))
        })
    }

    fn team_limits<'a>(&'a self, env: &'a CloudEnv) -> BoxFuture<'a, CloudResult<Value>> {
        Box::pin(async move {
            let s = self.session(env).await?;
            let nova = self
                .os
                .call(&s, "compute", Method::GET, "/limits", None, None)
                .await?
                .body;
            let mut flat = nova["limits"]["absolute"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            // Cinder's figures (maxTotalVolumes, totalGigabytesUsed, …) where the catalog has
            // it; the keys do not clash with Nova's, so the UI reads one flat object.
            if let Some(service) = self.volume_service(&s) {
                let cinder = self
                    .os
                    .call(&s, service, Method::GET, "/limits", None, None)
                    .await?
                    .body;
                if let Some(abs) = cinder["limits"]["absolute"].as_object() {
                    flat.extend(abs.clone());
                }
            }
            Ok(Value::Object(flat))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_lines() {
        let v = json!({"tenant_usage": {"server_usages": [
            {"instance_id": "a", "name": "s1", "hours": 2.0, "vcpus": 2, "memory_mb": 512, "local_gb": 1},
            {"instance_id": "a", "name": "s1", "hours": 1.0, "vcpus": 4, "memory_mb": 1024, "local_gb": 1},
            {"instance_id": "b", "name": "s2", "hours": -1.0, "vcpus": 1, "memory_mb": 1},
            {"name": "no id"}
        ]}});
        let u = parse_usage(&v);
        assert_eq!(u.len(), 2);
        assert_eq!(u[0].running_ms, 3 * 3_600_000);
        assert_eq!(u[0].cpu_core_ms, 2 * 2 * 3_600_000 + 4 * 3_600_000);
        assert_eq!(u[0].mem_mib_ms, 512 * 2 * 3_600_000 + 1024 * 3_600_000);
        assert_eq!(u[0].disk_gib_ms, 3 * 3_600_000);
        assert_eq!(u[1].running_ms, 0);
        assert!(parse_usage(&json!({"tenant_usage": {}})).is_empty());
    }

    #[test]
    fn hypervisor_statistics_as_the_ui_reads_them() {
        let v = stats_of(&json!({"vcpus": 8, "vcpus_used": 3, "memory_mb": 16384,
            "memory_mb_used": 3072, "local_gb": 100, "local_gb_used": 20, "running_vms": 2}));
        assert_eq!(
            v,
            json!({"total_vcpus": 8, "used_vcpus": 3, "total_ram": 16.0, "used_ram": 3.0,
                "total_disk_space": 100.0, "used_disk_space": 20.0, "running_vms": 2})
        );
    }

    #[test]
    fn periods() {
        assert_eq!(previous_period("2026-01"), "2025-12");
        assert_eq!(previous_period("2026-11"), "2026-10");
        assert_eq!(nova_time(utc(0)), "1970-01-01T00:00:00");
    }
}
