//! The local backend: needs no cloud. Identity (users, teams with billing accounts, roles),
//! key pairs, metered usage, credits and invoices live in lookout's SQL store; devices and
//! racks are Docker containers (see [`devices`]).
//!
//! `cloud_env` on this backend: routes acting *as* a user (key pairs, power actions) resolve
//! `user_id` (or `username`) to a local user and check `password` against its PBKDF2 hash;
//! power actions also need `project_id` (or `project_name`) to name a team in which that user
//! holds `admin` or `member`. Administrative routes (users, teams, roles) are authorised by
//! the listener's JWT; their `cloud_env` is checked for shape only, since the operator's cloud
//! credentials name no local user.

pub mod db;
pub mod devices;
mod orders;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use rand::Rng;
use sqlx::Row;

use lookout_probe::docker::ContainerControl;
use lookout_probe::Snapshot;

use crate::backend::{BoxFuture, CloudBackend};
use crate::error::{CloudError, CloudResult};
use crate::keys;
use crate::ledger::{build_invoice, Grant, InvoiceInput, Line};
use crate::metering::{period_of, Meter, PriceList, ResourceKind, Usage, UsageKey};
use crate::model::*;
use crate::money::Money;

pub use db::Db;
pub use devices::DockerDevices;

/// OWASP's current count for PBKDF2-HMAC-SHA256 (Password Storage Cheat Sheet). Hashes stored
/// with fewer rounds still verify (the count is part of the stored hash). ring's PBKDF2 is
/// used because its hash is assembly: a generic Rust one takes ~10 s per hash unoptimised.
const PBKDF2_ROUNDS: std::num::NonZeroU32 = match std::num::NonZeroU32::new(600_000) {
    Some(n) => n,
    None => panic!("non-zero"),
};

/// Milliseconds since the Unix epoch; replaceable in tests.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Settings of the local backend.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// `sqlite://…` (default: `<data_dir>/cloud.db`), `postgres://…` or `mysql://…`.
    pub store_url: String,
    pub prices: PriceList,
}

#[derive(Debug, Clone)]
struct UserRow {
    id: String,
    password_hash: String,
}

#[derive(Debug, Clone)]
struct TeamRow {
    id: String,
    billing_acct_id: String,
}

pub struct LocalBackend {
    db: Db,
    prices: PriceList,
    devices: DockerDevices,
    meter: Mutex<Meter>,
    /// Held while usage moves from the meter to the store, and while an invoice reads both.
    ledger_lock: tokio::sync::Mutex<()>,
    clock: Clock,
    /// Signalled after credits, orders or invoices change (the Concertim push listens).
    changes: Arc<tokio::sync::Notify>,
}

fn new_id() -> String {
    hex::encode(rand::rng().random::<[u8; 16]>())
}

/// A UUID-shaped random id (Kill Bill's account ids look like this).
fn new_uuid() -> String {
    let b: [u8; 16] = rand::rng().random();
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

pub fn hash_password(password: &str) -> String {
    let salt: [u8; 16] = rand::rng().random();
    let mut out = [0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        PBKDF2_ROUNDS,
        &salt,
        password.as_bytes(),
        &mut out,
    );
    format!(
        "pbkdf2-sha256${PBKDF2_ROUNDS}${}${}",
        hex::encode(salt),
        hex::encode(out)
    )
}

pub fn verify_password(password: &str, stored: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some("pbkdf2-sha256"), Some(rounds), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Ok(rounds), Ok(salt), Ok(hash)) =
        (rounds.parse::<u32>(), hex::decode(salt), hex::decode(hash))
    else {
        return false;
    };
    if rounds == 0 || rounds > 10_000_000 || hash.len() != 32 {
        return false;
    }
    let Some(rounds) = std::num::NonZeroU32::new(rounds) else {
        return false;
    };
    // Compares in constant time.
    ring::pbkdf2::verify(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        &salt,
        password.as_bytes(),
        &hash,
    )
    .is_ok()
}

/// True for a stored hash made with fewer rounds than [`PBKDF2_ROUNDS`].
fn needs_rehash(stored: &str) -> bool {
    stored
        .split('$')
        .nth(1)
        .and_then(|r| r.parse::<u32>().ok())
        .is_some_and(|rounds| rounds < PBKDF2_ROUNDS.get())
}

fn today(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// Nova's rule for key pair names: letters, digits, space, `_ - . @`, 1–255 characters.
fn check_key_name(name: &str) -> CloudResult<()> {
    let ok = !name.trim().is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '-' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(CloudError::invalid(
            "key_pair.name",
            "must be 1-255 letters, digits, spaces or _ - . @",
        ))
    }
}

fn check_text(field: &str, v: &str, max: usize) -> CloudResult<()> {
    if v.trim().is_empty() {
        return Err(CloudError::invalid(field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(CloudError::invalid(
            field,
            format!("is longer than {max} characters"),
        ));
    }
    Ok(())
}

fn check_email(field: &str, v: &str) -> CloudResult<()> {
    check_text(field, v, 255)?;
    match v.split_once('@') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() && !v.contains(char::is_whitespace) => {
            Ok(())
        }
        _ => Err(CloudError::invalid(field, "is not an email address")),
    }
}

impl LocalBackend {
    /// The store this backend keeps identity and the ledger in (for a backend that shares it).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Opens the store and builds the backend. Power actions go through `control`.
    pub async fn open(
        cfg: LocalConfig,
        control: Arc<dyn ContainerControl>,
        clock: Option<Clock>,
    ) -> CloudResult<Self> {
        let db = Db::open(&cfg.store_url).await?;
        crate::orders::ensure_schema(&db).await?;
        Ok(Self {
            db,
            prices: cfg.prices,
            devices: DockerDevices::new(control),
            meter: Mutex::new(Meter::new()),
            ledger_lock: tokio::sync::Mutex::new(()),
            clock: clock.unwrap_or_else(|| Arc::new(crate::now_ms)),
            changes: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// Signalled after each change of credits, orders or invoices.
    pub fn changes(&self) -> Arc<tokio::sync::Notify> {
        self.changes.clone()
    }

    pub fn prices(&self) -> &PriceList {
        &self.prices
    }

    fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    // ---------------------------------------------------------------- metering

    /// Adds the usage of the interval ending at `snapshot` (cheap: memory only).
    pub fn observe(&self, snapshot: &Snapshot) {
        self.meter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .observe(snapshot);
    }

    /// Adds usage to a line directly (tests and replays).
    pub fn record_usage(&self, key: UsageKey, usage: &Usage) {
        self.meter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(key, usage);
    }

    /// Moves metered usage into the store. On failure the usage stays in memory.
    pub async fn flush_usage(&self) -> CloudResult<()> {
        let _g = self.ledger_lock.lock().await;
        self.flush_locked().await
    }

    async fn flush_locked(&self) -> CloudResult<()> {
        let lines = self
            .meter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if lines.is_empty() {
            return Ok(());
        }
        match self.persist(&lines).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.meter
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .restore(lines);
                Err(e)
            }
        }
    }

    async fn persist(&self, lines: &BTreeMap<UsageKey, Usage>) -> CloudResult<()> {
        let mut tx = self.db.pool.begin().await?;
        for (k, u) in lines {
            let updated = sqlx::query(self.db.sql(
                "UPDATE cloud_usage SET cpu_core_ms = cpu_core_ms + ?, mem_mib_ms = mem_mib_ms + ?, \
                 running_ms = running_ms + ?, disk_gib_ms = disk_gib_ms + ?, resource_name = ? \
                 WHERE team_id = ? AND period = ? AND kind = ? AND resource_id = ?",
            ))
            .bind(u.cpu_core_ms)
            .bind(u.mem_mib_ms)
            .bind(u.running_ms)
            .bind(u.disk_gib_ms)
            .bind(k.resource_name.clone())
            .bind(k.team.clone())
            .bind(k.period.clone())
            .bind(k.kind.as_str())
            .bind(k.resource_id.clone())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated == 0 {
                sqlx::query(self.db.sql(
                    "INSERT INTO cloud_usage (team_id, period, kind, resource_id, resource_name, \
                     cpu_core_ms, mem_mib_ms, running_ms, disk_gib_ms) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ))
                .bind(k.team.clone())
                .bind(k.period.clone())
                .bind(k.kind.as_str())
                .bind(k.resource_id.clone())
                .bind(k.resource_name.clone())
                .bind(u.cpu_core_ms)
                .bind(u.mem_mib_ms)
                .bind(u.running_ms)
                .bind(u.disk_gib_ms)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Commits the invoice of every finished month that has usage or credits and no invoice
    /// yet, oldest first. Returns how many were committed.
    pub async fn close_periods(&self) -> CloudResult<usize> {
        let _g = self.ledger_lock.lock().await;
        self.flush_locked().await?;
        let current = period_of(self.now_ms());
        let mut candidates = std::collections::BTreeSet::new();
        for sql in [
            "SELECT DISTINCT team_id, period FROM cloud_usage WHERE period < ?",
            "SELECT DISTINCT team_id, period FROM cloud_credits WHERE period < ?",
        ] {
            let rows = sqlx::query(self.db.sql(sql))
                .bind(current.clone())
                .fetch_all(&self.db.pool)
                .await?;
            for r in rows {
                candidates.insert((r.try_get::<String, _>(1)?, r.try_get::<String, _>(0)?));
            }
        }
        let mut committed = 0;
        for (period, team_id) in candidates {
            let Some(team) = self.team_by_id(&team_id).await? else {
                continue; // the team was deleted: nobody to bill
            };
            let exists = sqlx::query(
                self.db
                    .sql("SELECT id FROM cloud_invoices WHERE team_id = ? AND period = ?"),
            )
            .bind(team.id.clone())
            .bind(period.clone())
            .fetch_optional(&self.db.pool)
            .await?;
            if exists.is_some() {
                continue;
            }
            let number = sqlx::query(
                self.db
                    .sql("SELECT COUNT(*) FROM cloud_invoices WHERE team_id = ?"),
            )
            .bind(team.id.clone())
            .fetch_one(&self.db.pool)
            .await?
            .try_get::<i64, _>(0)?
                + 1;
            let inv = self
                .invoice_for(
                    &team,
                    &period,
                    InvoiceStatus::Committed,
                    new_uuid(),
                    Some(number),
                    false,
                )
                .await?;
            let items = serde_json::to_string(&inv.items)
                .map_err(|e| CloudError::Internal(format!("encoding invoice items: {e}")))?;
            sqlx::query(self.db.sql(
                "INSERT INTO cloud_invoices (id, team_id, invoice_number, period, invoice_date, \
                 target_date, amount_minor, credit_adj_minor, balance_minor, currency, items_json, \
                 created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ))
            .bind(inv.invoice_id.clone())
            .bind(team.id.clone())
            .bind(number)
            .bind(period.clone())
            .bind(inv.invoice_date.clone())
            .bind(inv.target_date.clone())
            .bind(inv.amount.minor())
            .bind(inv.credit_adj.minor())
            .bind(inv.balance.minor())
            .bind(inv.currency.clone())
            .bind(items)
            .bind(self.now_ms() / 1000)
            .execute(&self.db.pool)
            .await?;
            tracing::info!(team = %team.id, %period, amount = %inv.amount, "invoice committed");
            committed += 1;
        }
        if committed > 0 {
            self.changes.notify_one();
        }
        Ok(committed)
    }

    /// Builds the invoice of `team` for `period` from the store (plus, for the draft, usage
    /// still in memory). Call with `ledger_lock` held.
    async fn invoice_for(
        &self,
        team: &TeamRow,
        period: &str,
        status: InvoiceStatus,
        invoice_id: String,
        number: Option<i64>,
        include_pending: bool,
    ) -> CloudResult<Invoice> {
        let rows = sqlx::query(self.db.sql(
            "SELECT kind, resource_id, resource_name, cpu_core_ms, mem_mib_ms, running_ms, \
             disk_gib_ms FROM cloud_usage WHERE team_id = ? AND period = ?",
        ))
        .bind(team.id.clone())
        .bind(period.to_string())
        .fetch_all(&self.db.pool)
        .await?;
        let mut lines: BTreeMap<(ResourceKind, String), Line> = BTreeMap::new();
        for r in rows {
            let kind =
                ResourceKind::parse(&r.try_get::<String, _>(0)?).unwrap_or(ResourceKind::Device);
            let id: String = r.try_get(1)?;
            lines.insert(
                (kind.clone(), id.clone()),
                Line {
                    kind,
                    resource_id: id,
                    resource_name: r.try_get(2)?,
                    usage: Usage {
                        cpu_core_ms: r.try_get(3)?,
                        mem_mib_ms: r.try_get(4)?,
                        running_ms: r.try_get(5)?,
                        disk_gib_ms: r.try_get(6)?,
                    },
                },
            );
        }
        if include_pending {
            let meter = self.meter.lock().unwrap_or_else(PoisonError::into_inner);
            for (k, u) in meter.pending() {
                if k.team != team.id || k.period != period {
                    continue;
                }
                lines
                    .entry((k.kind.clone(), k.resource_id.clone()))
                    .or_insert_with(|| Line {
                        kind: k.kind.clone(),
                        resource_id: k.resource_id.clone(),
                        resource_name: k.resource_name.clone(),
                        usage: Usage::default(),
                    })
                    .usage
                    .add(u);
            }
        }
        let (granted, used, grants_in_period) = self.credit_state(&team.id, Some(period)).await?;
        Ok(build_invoice(InvoiceInput {
            invoice_id,
            invoice_number: number,
            account_id: team.billing_acct_id.clone(),
            period: period.to_string(),
            status,
            prices: &self.prices,
            lines: lines.into_values().collect(),
            grants_in_period,
            available_credits: granted.saturating_add(used),
            stack_names: self.stack_names(&team.id).await?,
        }))
    }

    /// (all credits granted, credits used on committed invoices (≤ 0), grants of `period`).
    async fn credit_state(
        &self,
        team_id: &str,
        period: Option<&str>,
    ) -> CloudResult<(Money, Money, Vec<Grant>)> {
        let rows = sqlx::query(self.db.sql(
            "SELECT id, amount_minor, period, created_at FROM cloud_credits WHERE team_id = ? \
             ORDER BY created_at",
        ))
        .bind(team_id.to_string())
        .fetch_all(&self.db.pool)
        .await?;
        let mut granted = Money::ZERO;
        let mut grants = Vec::new();
        for r in rows {
            let amount = Money(r.try_get::<i64, _>(1)?);
            granted = granted.saturating_add(amount);
            if Some(r.try_get::<String, _>(2)?.as_str()) == period {
                grants.push(Grant {
                    id: r.try_get(0)?,
                    amount,
                    date: today(r.try_get::<i64, _>(3)?.saturating_mul(1000)),
                });
            }
        }
        let rows = sqlx::query(
            self.db
                .sql("SELECT credit_adj_minor FROM cloud_invoices WHERE team_id = ?"),
        )
        .bind(team_id.to_string())
        .fetch_all(&self.db.pool)
        .await?;
        let mut used = Money::ZERO;
        for r in rows {
            used = used.saturating_add(Money(r.try_get::<i64, _>(0)?));
        }
        Ok((granted, used, grants))
    }

    // ---------------------------------------------------------------- identity

    async fn user_by(&self, column: &str, value: &str) -> CloudResult<Option<UserRow>> {
        let sql = match column {
            "id" => "SELECT id, password_hash FROM cloud_users WHERE id = ?",
            _ => "SELECT id, password_hash FROM cloud_users WHERE username = ?",
        };
        let row = sqlx::query(self.db.sql(sql))
            .bind(value.to_string())
            .fetch_optional(&self.db.pool)
            .await?;
        row.map(|r| {
            Ok(UserRow {
                id: r.try_get(0)?,
                password_hash: r.try_get(1)?,
            })
        })
        .transpose()
    }

    async fn team_by_id(&self, id: &str) -> CloudResult<Option<TeamRow>> {
        self.team_where(
            "SELECT id, billing_acct_id FROM cloud_teams WHERE id = ?",
            id,
        )
        .await
    }

    async fn team_where(&self, sql: &str, v: &str) -> CloudResult<Option<TeamRow>> {
        let row = sqlx::query(self.db.sql(sql))
            .bind(v.to_string())
            .fetch_optional(&self.db.pool)
            .await?;
        row.map(|r| {
            Ok(TeamRow {
                id: r.try_get(0)?,
                billing_acct_id: r.try_get(1)?,
            })
        })
        .transpose()
    }

    async fn team_by_account(&self, billing_acct_id: &str) -> CloudResult<TeamRow> {
        self.team_where(
            "SELECT id, billing_acct_id FROM cloud_teams WHERE billing_acct_id = ?",
            billing_acct_id,
        )
        .await?
        .ok_or_else(|| CloudError::NotFound(format!("no billing account {billing_acct_id:?}")))
    }

    /// The local user `cloud_env` names, with its password checked.
    async fn caller(&self, env: &CloudEnv) -> CloudResult<UserRow> {
        let refused = || {
            CloudError::Unauthenticated(
                "cloud_env: no such user, or the password does not match".into(),
            )
        };
        let user = match (&env.user_id, &env.username) {
            (Some(id), _) => self.user_by("id", id).await?,
            (None, Some(name)) => self.user_by("username", name).await?,
            (None, None) => return Err(CloudError::missing("cloud_env.user_id")),
        }
        .ok_or_else(refused)?;
        let (hash, pw) = (user.password_hash.clone(), env.password.clone());
        let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &hash))
            .await
            .unwrap_or(false);
        if !ok {
            return Err(refused());
        }
        if needs_rehash(&user.password_hash) {
            self.rehash(&user, env.password.clone()).await;
        }
        Ok(user)
    }

    /// Stores a verified password again at today's round count (a hash from an older
    /// version used fewer). Best effort: the caller is already authenticated.
    async fn rehash(&self, user: &UserRow, password: String) {
        let Ok(hash) = tokio::task::spawn_blocking(move || hash_password(&password)).await else {
            return;
        };
        // Only if unchanged meanwhile: a concurrent password change wins.
        let done = sqlx::query(
            self.db
                .sql("UPDATE cloud_users SET password_hash = ? WHERE id = ? AND password_hash = ?"),
        )
        .bind(hash)
        .bind(user.id.clone())
        .bind(user.password_hash.clone())
        .execute(&self.db.pool)
        .await;
        if let Err(e) = done {
            tracing::warn!(error = %e, "could not store a stronger password hash");
        }
    }

    /// The team `cloud_env` is scoped to, and the caller's roles in it.
    async fn scoped_team(
        &self,
        env: &CloudEnv,
        user: &UserRow,
    ) -> CloudResult<(TeamRow, Vec<Role>)> {
        let team = match (&env.project_id, &env.project_name) {
            (Some(id), _) => self.team_by_id(id).await?,
            (None, Some(name)) => {
                self.team_where(
                    "SELECT id, billing_acct_id FROM cloud_teams WHERE name = ?",
                    name,
                )
                .await?
            }
            (None, None) => return Err(CloudError::missing("cloud_env.project_id")),
        }
        .ok_or_else(|| {
            CloudError::Unauthenticated("cloud_env: the project names no team".into())
        })?;
        let rows = sqlx::query(
            self.db
                .sql("SELECT role FROM cloud_team_roles WHERE team_id = ? AND user_id = ?"),
        )
        .bind(team.id.clone())
        .bind(user.id.clone())
        .fetch_all(&self.db.pool)
        .await?;
        let mut roles = Vec::new();
        for r in rows {
            if let Ok(role) = Role::parse("role", &r.try_get::<String, _>(0)?) {
                roles.push(role);
            }
        }
        Ok((team, roles))
    }

    async fn do_create_user(&self, u: NewUser) -> CloudResult<CreatedUser> {
        check_text("username", &u.username, 255)?;
        check_text("name", &u.name, 255)?;
        check_email("email", &u.email)?;
        check_text("password", &u.password, 4096)?;
        if self.user_by("username", &u.username).await?.is_some() {
            return Err(CloudError::Conflict(format!(
                "a user named {:?} already exists",
                u.username
            )));
        }
        let id = new_id();
        let pw = u.password.clone();
        let hash = tokio::task::spawn_blocking(move || hash_password(&pw))
            .await
            .map_err(|e| CloudError::Internal(e.to_string()))?;
        let r = sqlx::query(self.db.sql(
            "INSERT INTO cloud_users (id, username, name, email, password_hash, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        ))
        .bind(id.clone())
        .bind(u.username.clone())
        .bind(u.name)
        .bind(u.email)
        .bind(hash)
        .bind(self.now_ms() / 1000)
        .execute(&self.db.pool)
        .await;
        match r {
            Ok(_) => Ok(CreatedUser {
                username: u.username,
                user_cloud_id: id,
            }),
            Err(e) => Err(match CloudError::from(e) {
                CloudError::Conflict(_) => {
                    CloudError::Conflict(format!("a user named {:?} already exists", u.username))
                }
                other => other,
            }),
        }
    }

    async fn do_update_user(&self, id: &str, c: UserChanges) -> CloudResult<Vec<String>> {
        if self.user_by("id", id).await?.is_none() {
            return Err(CloudError::NotFound(format!("no user {id:?}")));
        }
        let mut changed = Vec::new();
        if let Some(email) = c.email {
            check_email("user_info.new_data.email", &email)?;
            sqlx::query(self.db.sql("UPDATE cloud_users SET email = ? WHERE id = ?"))
                .bind(email)
                .bind(id.to_string())
                .execute(&self.db.pool)
                .await?;
            changed.push("email".to_string());
        }
        if let Some(pw) = c.password {
            check_text("user_info.new_data.password", &pw, 4096)?;
            let hash = tokio::task::spawn_blocking(move || hash_password(&pw))
                .await
                .map_err(|e| CloudError::Internal(e.to_string()))?;
            sqlx::query(
                self.db
                    .sql("UPDATE cloud_users SET password_hash = ? WHERE id = ?"),
            )
            .bind(hash)
            .bind(id.to_string())
            .execute(&self.db.pool)
            .await?;
            changed.push("password".to_string());
        }
        Ok(changed)
    }

    async fn do_delete_user(&self, id: &str) -> CloudResult<()> {
        let mut tx = self.db.pool.begin().await?;
        let n = sqlx::query(self.db.sql("DELETE FROM cloud_users WHERE id = ?"))
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(CloudError::NotFound(format!("no user {id:?}")));
        }
        // As Keystone does: a deleted user's role assignments and key pairs go with it.
        for sql in [
            "DELETE FROM cloud_team_roles WHERE user_id = ?",
            "DELETE FROM cloud_key_pairs WHERE user_id = ?",
        ] {
            sqlx::query(self.db.sql(sql))
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn do_create_team(&self, name: &str) -> CloudResult<CreatedTeam> {
        check_text("name", name, 255)?;
        let exists = self
            .team_where(
                "SELECT id, billing_acct_id FROM cloud_teams WHERE name = ?",
                name,
            )
            .await?;
        if exists.is_some() {
            return Err(CloudError::Conflict(format!(
                "a team named {name:?} already exists"
            )));
        }
        let team = CreatedTeam {
            project_id: new_id(),
            billing_acct_id: new_uuid(),
        };
        sqlx::query(self.db.sql(
            "INSERT INTO cloud_teams (id, name, billing_acct_id, created_at) VALUES (?, ?, ?, ?)",
        ))
        .bind(team.project_id.clone())
        .bind(name.to_string())
        .bind(team.billing_acct_id.clone())
        .bind(self.now_ms() / 1000)
        .execute(&self.db.pool)
        .await
        .map_err(|e| match CloudError::from(e) {
            CloudError::Conflict(_) => {
                CloudError::Conflict(format!("a team named {name:?} already exists"))
            }
            other => other,
        })?;
        Ok(team)
    }

    async fn do_delete_team(&self, project_id: &str, billing: &str) -> CloudResult<()> {
        let mut tx = self.db.pool.begin().await?;
        let row = sqlx::query(
            self.db
                .sql("SELECT billing_acct_id FROM cloud_teams WHERE id = ?"),
        )
        .bind(project_id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| CloudError::NotFound(format!("no team {project_id:?}")))?;
        if row.try_get::<String, _>(0)? != billing {
            return Err(CloudError::invalid(
                "team_info.billing_acct_id",
                "is not the billing account of this team",
            ));
        }
        // As Keystone does when a project is deleted: its role assignments go with it (the UI's
        // delete_team_job.rb never removes them first). Usage, credits, orders and invoices
        // stay, keyed by the team id, as the ledger's history.
        sqlx::query(
            self.db
                .sql("DELETE FROM cloud_team_roles WHERE team_id = ?"),
        )
        .bind(project_id.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query(self.db.sql("DELETE FROM cloud_teams WHERE id = ?"))
            .bind(project_id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn check_role_target(&self, project_id: &str, user_id: &str) -> CloudResult<()> {
        if self.team_by_id(project_id).await?.is_none() {
            return Err(CloudError::NotFound(format!("no team {project_id:?}")));
        }
        if self.user_by("id", user_id).await?.is_none() {
            return Err(CloudError::NotFound(format!("no user {user_id:?}")));
        }
        Ok(())
    }

    async fn has_role(&self, project_id: &str, user_id: &str, role: Role) -> CloudResult<bool> {
        Ok(sqlx::query(self.db.sql(
            "SELECT role FROM cloud_team_roles WHERE team_id = ? AND user_id = ? AND role = ?",
        ))
        .bind(project_id.to_string())
        .bind(user_id.to_string())
        .bind(role.as_str())
        .fetch_optional(&self.db.pool)
        .await?
        .is_some())
    }

    async fn do_add_role(&self, r: TeamRole) -> CloudResult<()> {
        self.check_role_target(&r.project_id, &r.user_id).await?;
        if self.has_role(&r.project_id, &r.user_id, r.role).await? {
            return Err(CloudError::Conflict(format!(
                "user {} already has role {} in team {}",
                r.user_id,
                r.role.as_str(),
                r.project_id
            )));
        }
        sqlx::query(self.db.sql(
            "INSERT INTO cloud_team_roles (team_id, user_id, role, created_at) VALUES (?, ?, ?, ?)",
        ))
        .bind(r.project_id)
        .bind(r.user_id)
        .bind(r.role.as_str())
        .bind(self.now_ms() / 1000)
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    async fn do_remove_role(&self, r: TeamRole) -> CloudResult<()> {
        self.check_role_target(&r.project_id, &r.user_id).await?;
        let n = sqlx::query(
            self.db
                .sql("DELETE FROM cloud_team_roles WHERE team_id = ? AND user_id = ? AND role = ?"),
        )
        .bind(r.project_id.clone())
        .bind(r.user_id.clone())
        .bind(r.role.as_str())
        .execute(&self.db.pool)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(CloudError::NotFound(format!(
                "user {} has no role {} in team {}",
                r.user_id,
                r.role.as_str(),
                r.project_id
            )));
        }
        Ok(())
    }

    async fn do_change_role(
        &self,
        project: &str,
        user: &str,
        cur: Role,
        new: Role,
    ) -> CloudResult<()> {
        self.check_role_target(project, user).await?;
        if !self.has_role(project, user, cur).await? {
            return Err(CloudError::NotFound(format!(
                "user {user} has no role {} in team {project}",
                cur.as_str()
            )));
        }
        if cur == new {
            return Ok(());
        }
        let mut tx = self.db.pool.begin().await?;
        sqlx::query(
            self.db
                .sql("DELETE FROM cloud_team_roles WHERE team_id = ? AND user_id = ? AND role = ?"),
        )
        .bind(project.to_string())
        .bind(user.to_string())
        .bind(cur.as_str())
        .execute(&mut *tx)
        .await?;
        let has_new = sqlx::query(self.db.sql(
            "SELECT role FROM cloud_team_roles WHERE team_id = ? AND user_id = ? AND role = ?",
        ))
        .bind(project.to_string())
        .bind(user.to_string())
        .bind(new.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        if !has_new {
            sqlx::query(self.db.sql(
                "INSERT INTO cloud_team_roles (team_id, user_id, role, created_at) VALUES (?, ?, ?, ?)",
            ))
            .bind(project.to_string())
            .bind(user.to_string())
            .bind(new.as_str())
            .bind(self.now_ms() / 1000)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    // ---------------------------------------------------------------- key pairs

    async fn do_create_key(&self, env: &CloudEnv, k: NewKeyPair) -> CloudResult<KeyPairCreated> {
        let user = self.caller(env).await?;
        check_key_name(&k.name)?;
        let exists = sqlx::query(
            self.db
                .sql("SELECT id FROM cloud_key_pairs WHERE user_id = ? AND name = ?"),
        )
        .bind(user.id.clone())
        .bind(k.name.clone())
        .fetch_optional(&self.db.pool)
        .await?;
        if exists.is_some() {
            return Err(CloudError::Conflict(format!(
                "a key pair named {:?} already exists",
                k.name
            )));
        }
        let made = match k
            .public_key
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(pk) => keys::import(pk, &k.name)?,
            None => {
                let kind = keys::KeyKind::from_request(k.key_type.as_deref())?;
                let name = k.name.clone();
                tokio::task::spawn_blocking(move || keys::generate(kind, &name))
                    .await
                    .map_err(|e| CloudError::Internal(e.to_string()))??
            }
        };
        let id = new_id();
        sqlx::query(self.db.sql(
            "INSERT INTO cloud_key_pairs (id, user_id, name, key_type, public_key, fingerprint, \
             created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(id.clone())
        .bind(user.id)
        .bind(k.name.clone())
        .bind(made.algorithm.clone())
        .bind(made.public_key.clone())
        .bind(made.fingerprint.clone())
        .bind(self.now_ms() / 1000)
        .execute(&self.db.pool)
        .await
        .map_err(|e| match CloudError::from(e) {
            CloudError::Conflict(_) => {
                CloudError::Conflict(format!("a key pair named {:?} already exists", k.name))
            }
            other => other,
        })?;
        Ok(KeyPairCreated {
            id,
            name: k.name,
            private_key: made.private_key,
            public_key: made.public_key,
            fingerprint: made.fingerprint,
        })
    }

    async fn do_list_keys(&self, env: &CloudEnv) -> CloudResult<Vec<KeyPairInfo>> {
        let user = self.caller(env).await?;
        let rows = sqlx::query(self.db.sql(
            "SELECT id, name, public_key, fingerprint, key_type FROM cloud_key_pairs \
             WHERE user_id = ? ORDER BY name",
        ))
        .bind(user.id)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(KeyPairInfo {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    public_key: r.try_get(2)?,
                    fingerprint: r.try_get(3)?,
                    key_type: r.try_get(4)?,
                })
            })
            .collect()
    }

    async fn do_delete_key(&self, env: &CloudEnv, name: &str) -> CloudResult<()> {
        let user = self.caller(env).await?;
        let n = sqlx::query(
            self.db
                .sql("DELETE FROM cloud_key_pairs WHERE user_id = ? AND name = ?"),
        )
        .bind(user.id)
        .bind(name.to_string())
        .execute(&self.db.pool)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(CloudError::NotFound(format!("no key pair named {name:?}")));
        }
        Ok(())
    }

    // ---------------------------------------------------------------- devices

    async fn do_update_status(
        &self,
        env: &CloudEnv,
        kind: TargetKind,
        id: &str,
        action: PowerAction,
    ) -> CloudResult<StatusChange> {
        let user = self.caller(env).await?;
        let (team, roles) = self.scoped_team(env, &user).await?;
        if roles.is_empty() {
            return Err(CloudError::Forbidden(
                "the user has no role in this team".into(),
            ));
        }
        if !roles
            .iter()
            .any(|r| matches!(r, Role::Admin | Role::Member))
        {
            return Err(CloudError::Forbidden(
                "watchers cannot change the state of devices".into(),
            ));
        }
        match kind {
            TargetKind::Device => self.devices.act_on_device(&team.id, id, action).await,
            TargetKind::Rack => self.devices.act_on_rack(&team.id, id, action).await,
        }
    }

    // ---------------------------------------------------------------- billing

    async fn do_draft(&self, acct: &str) -> CloudResult<Invoice> {
        let team = self.team_by_account(acct).await?;
        let _g = self.ledger_lock.lock().await;
        let period = period_of(self.now_ms());
        self.invoice_for(
            &team,
            &period,
            InvoiceStatus::Draft,
            format!("draft-{period}"),
            None,
            true,
        )
        .await
    }

    fn row_to_invoice(&self, r: &sqlx::any::AnyRow, acct: &str) -> CloudResult<Invoice> {
        let items: Vec<InvoiceItem> = serde_json::from_str(&r.try_get::<String, _>(9)?)
            .map_err(|e| CloudError::Internal(format!("stored invoice items: {e}")))?;
        let amount = Money(r.try_get::<i64, _>(5)?);
        let credit_adj = Money(r.try_get::<i64, _>(6)?);
        let _period: String = r.try_get(2)?;
        Ok(Invoice {
            invoice_id: r.try_get(0)?,
            account_id: acct.to_string(),
            invoice_number: Some(r.try_get::<i64, _>(1)?),
            invoice_date: r.try_get(3)?,
            target_date: r.try_get(4)?,
            amount,
            credit_adj,
            refund_adj: Money::ZERO,
            balance: Money(r.try_get::<i64, _>(7)?),
            currency: r.try_get(8)?,
            status: InvoiceStatus::Committed,
            draft: false,
            items,
        })
    }

    async fn do_list_invoices(
        &self,
        acct: &str,
        offset: i64,
        limit: i64,
    ) -> CloudResult<InvoicePage> {
        if offset < 0 {
            return Err(CloudError::invalid("invoices.offset", "must be 0 or more"));
        }
        if !(1..=1000).contains(&limit) {
            return Err(CloudError::invalid(
                "invoices.limit",
                "must be between 1 and 1000",
            ));
        }
        let team = self.team_by_account(acct).await?;
        let total = sqlx::query(
            self.db
                .sql("SELECT COUNT(*) FROM cloud_invoices WHERE team_id = ?"),
        )
        .bind(team.id.clone())
        .fetch_one(&self.db.pool)
        .await?
        .try_get::<i64, _>(0)?;
        let rows = sqlx::query(self.db.sql(
            "SELECT id, invoice_number, period, invoice_date, target_date, amount_minor, \
             credit_adj_minor, balance_minor, currency, items_json FROM cloud_invoices \
             WHERE team_id = ? ORDER BY invoice_number DESC LIMIT ? OFFSET ?",
        ))
        .bind(team.id)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.db.pool)
        .await?;
        let invoices = rows
            .iter()
            .map(|r| self.row_to_invoice(r, acct))
            .collect::<CloudResult<Vec<_>>>()?;
        Ok(InvoicePage {
            total_invoices: total,
            invoices,
        })
    }

    async fn do_get_invoice(&self, acct: &str, id: &str) -> CloudResult<Invoice> {
        let team = self.team_by_account(acct).await?;
        let row = sqlx::query(self.db.sql(
            "SELECT id, invoice_number, period, invoice_date, target_date, amount_minor, \
             credit_adj_minor, balance_minor, currency, items_json FROM cloud_invoices \
             WHERE team_id = ? AND id = ?",
        ))
        .bind(team.id)
        .bind(id.to_string())
        .fetch_optional(&self.db.pool)
        .await?
        .ok_or_else(|| CloudError::NotFound(format!("no invoice {id:?} for this account")))?;
        self.row_to_invoice(&row, acct)
    }

    async fn do_add_credits(&self, acct: &str, amount: Money) -> CloudResult<Money> {
        if amount <= Money::ZERO {
            return Err(CloudError::invalid("credits.amount", "must be more than 0"));
        }
        let team = self.team_by_account(acct).await?;
        let now = self.now_ms();
        sqlx::query(self.db.sql(
            "INSERT INTO cloud_credits (id, team_id, amount_minor, period, created_at) \
             VALUES (?, ?, ?, ?, ?)",
        ))
        .bind(new_id())
        .bind(team.id)
        .bind(amount.minor())
        .bind(period_of(now))
        .bind(now / 1000)
        .execute(&self.db.pool)
        .await?;
        self.changes.notify_one();
        Ok(amount)
    }

    async fn do_get_credits(&self, acct: &str) -> CloudResult<Money> {
        let draft = self.do_draft(acct).await?;
        let team = self.team_by_account(acct).await?;
        let (granted, used, _) = self.credit_state(&team.id, None).await?;
        // As the original: the account's credit balance less the running draft's amount.
        Ok(granted.saturating_add(used).saturating_sub(draft.amount))
    }
}

impl CloudBackend for LocalBackend {
    fn name(&self) -> &'static str {
        "local"
    }

    fn create_user<'a>(
        &'a self,
        _env: &'a CloudEnv,
        user: NewUser,
    ) -> BoxFuture<'a, CloudResult<CreatedUser>> {
        Box::pin(self.do_create_user(user))
    }

    fn update_user<'a>(
        &'a self,
        _env: &'a CloudEnv,
        user_id: &'a str,
        changes: UserChanges,
    ) -> BoxFuture<'a, CloudResult<Vec<String>>> {
        Box::pin(self.do_update_user(user_id, changes))
    }

    fn delete_user<'a>(
        &'a self,
        _env: &'a CloudEnv,
        user_id: &'a str,
    ) -> BoxFuture<'a, CloudResult<()>> {
        Box::pin(self.do_delete_user(user_id))
    }

    fn create_team<'a>(
        &'a self,
        _env: &'a CloudEnv,
        name: &'a str,
    ) -> BoxFuture<'a, CloudResult<CreatedTeam>> {
        Box::pin(self.do_create_team(name))
    }

    fn delete_team<'a>(
        &'a self,
        _env: &'a CloudEnv,
        project_id: &'a str,
        billing_acct_id: &'a str,
    ) -> BoxFuture<'a, CloudResult<()>> {
        Box::pin(self.do_delete_team(project_id, billing_acct_id))
    }

    fn add_team_role<'a>(
        &'a self,
        _env: &'a CloudEnv,
        role: TeamRole,
    ) -> BoxFuture<'a, CloudResult<()>> {
        Box::pin(self.do_add_role(role))
    }

    fn remove_team_role<'a>(
        &'a self,
        _env: &'a CloudEnv,
        role: TeamRole,
    ) -> BoxFuture<'a, CloudResult<()>> {
        Box::pin(self.do_remove_role(role))
    }

    fn change_team_role<'a>(
        &'a self,
        _env: Option<&'a CloudEnv>,
        project_id: &'a str,
        user_id: &'a str,
        current: Role,
        new: Role,
    ) -> BoxFuture<'a, CloudResult<()>> {
        Box::pin(self.do_change_role(project_id, user_id, current, new))
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
        Box::pin(self.do_draft(acct))
    }

    fn list_invoices<'a>(
        &'a self,
        acct: &'a str,
        offset: i64,
        limit: i64,
    ) -> BoxFuture<'a, CloudResult<InvoicePage>> {
        Box::pin(self.do_list_invoices(acct, offset, limit))
    }

    fn get_invoice<'a>(
        &'a self,
        acct: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, CloudResult<Invoice>> {
        Box::pin(self.do_get_invoice(acct, id))
    }

    fn add_credits<'a>(
        &'a self,
        acct: &'a str,
        amount: Money,
    ) -> BoxFuture<'a, CloudResult<Money>> {
        Box::pin(self.do_add_credits(acct, amount))
    }

    fn get_credits<'a>(&'a self, acct: &'a str) -> BoxFuture<'a, CloudResult<Money>> {
        Box::pin(self.do_get_credits(acct))
    }

    fn create_order<'a>(
        &'a self,
        acct: &'a str,
    ) -> BoxFuture<'a, CloudResult<crate::orders::Order>> {
        Box::pin(self.do_create_order(acct))
    }

    fn delete_order<'a>(&'a self, order_id: &'a str) -> BoxFuture<'a, CloudResult<()>> {
        Box::pin(self.do_delete_order(order_id))
    }

    fn add_order_tag<'a>(
        &'a self,
        order_id: &'a str,
        name: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, CloudResult<crate::orders::OrderTag>> {
        Box::pin(self.do_add_order_tag(order_id, name, value))
    }
}

/// Feeds the meter from snapshots and, every `flush_every`, moves usage to the store and
/// commits the invoices of finished months. Ends when `snapshots` closes.
pub async fn run_meter(
    backend: Arc<LocalBackend>,
    mut snapshots: tokio::sync::mpsc::Receiver<Arc<Snapshot>>,
    flush_every: std::time::Duration,
) {
    let mut timer = tokio::time::interval(flush_every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            s = snapshots.recv() => match s {
                Some(s) => backend.observe(&s),
                None => break,
            },
            _ = timer.tick() => {
                match backend.close_periods().await {
                    Ok(_) if failing => {
                        tracing::info!("cloud ledger reachable again");
                        failing = false;
                    }
                    Ok(_) => {}
                    Err(e) if !failing => {
                        tracing::warn!(error = %e, "cloud ledger: usage kept in memory, retrying");
                        failing = true;
                    }
                    Err(_) => {}
                }
            }
        }
    }
    if let Err(e) = backend.flush_usage().await {
        tracing::warn!(error = %e, "cloud ledger: final flush failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords() {
        let h = hash_password("correct horse");
        assert!(h.starts_with("pbkdf2-sha256$600000$"), "{h}");
        assert!(!needs_rehash(&h));
        assert!(verify_password("correct horse", &h));
        // A hash of an older version (20,000 rounds) still verifies, and is marked for rehash.
        let salt = [7u8; 16];
        let mut out = [0u8; 32];
        let rounds = std::num::NonZeroU32::new(20_000).unwrap();
        ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            rounds,
            &salt,
            b"correct horse",
            &mut out,
        );
        let old = format!(
            "pbkdf2-sha256$20000${}${}",
            hex::encode(salt),
            hex::encode(out)
        );
        assert!(verify_password("correct horse", &old));
        assert!(!verify_password("wrong", &old));
        assert!(needs_rehash(&old));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "garbage"));
    }
}
