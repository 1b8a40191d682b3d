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

mod admin;
mod capacity;
pub mod db;
pub mod devices;
mod identity;
mod keypairs;
mod orders;
mod storage;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use rand::Rng;
use sqlx::Row;

use lookout_probe::docker::ContainerControl;
use lookout_probe::Snapshot;

use crate::backend::{BoxFuture, CloudBackend};
use crate::error::{CloudError, CloudResult};
use crate::ledger::{build_invoice, Grant, InvoiceInput, Line};
use crate::metering::{period_of, Meter, PriceList, ResourceKind, Usage, UsageKey};
use crate::model::*;
use crate::money::Money;

pub use admin::AdminPrincipal;
pub use capacity::Quotas;
pub use db::Db;
pub use devices::DockerDevices;
use identity::TeamRow;
pub use identity::{hash_password, verify_password};

/// Milliseconds since the Unix epoch; replaceable in tests.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Settings of the local backend.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// `sqlite://…` (default: `<data_dir>/cloud.db`), `postgres://…` or `mysql://…`.
    pub store_url: String,
    pub prices: PriceList,
}

pub struct LocalBackend {
    db: Db,
    prices: PriceList,
    devices: DockerDevices,
    meter: Mutex<Meter>,
    /// Held while usage moves from the meter to the store, and while an invoice reads both.
    ledger_lock: tokio::sync::Mutex<()>,
    clock: Clock,
    /// The operator-set admin principal, if any (see [`admin`]).
    admin: Option<AdminPrincipal>,
    /// Per-team quotas `GET /team/limits` reports (see [`capacity`]).
    quotas: Quotas,
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

fn today(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
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
            admin: None,
            quotas: Quotas::default(),
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
        env: &'a CloudEnv,
        user: NewUser,
    ) -> BoxFuture<'a, CloudResult<CreatedUser>> {
        Box::pin(async move {
            self.check_admin_route(env).await?;
            self.do_create_user(user).await
        })
    }

    fn update_user<'a>(
        &'a self,
        env: &'a CloudEnv,
        user_id: &'a str,
        changes: UserChanges,
    ) -> BoxFuture<'a, CloudResult<Vec<String>>> {
        Box::pin(async move {
            self.check_admin_route(env).await?;
            self.do_update_user(user_id, changes).await
        })
    }

    fn delete_user<'a>(
        &'a self,
        env: &'a CloudEnv,
        user_id: &'a str,
    ) -> BoxFuture<'a, CloudResult<()>> {
        Box::pin(async move {
            self.check_admin_route(env).await?;
            self.do_delete_user(user_id).await
        })
    }

    fn create_team<'a>(
        &'a self,
        env: &'a CloudEnv,
        name: &'a str,
    ) -> BoxFuture<'a, CloudResult<CreatedTeam>> {
        Box::pin(async move {
            self.check_admin_route(env).await?;
            self.do_create_team(name).await
        })
    }

    fn delete_team<'a>(
        &'a self,
        env: &'a CloudEnv,
        project_id: &'a str,
        billing_acct_id: &'a str,
    ) -> BoxFuture<'a, CloudResult<()>> {
        Box::pin(async move {
            self.check_admin_route(env).await?;
            self.do_delete_team(project_id, billing_acct_id).await
        })
    }

    fn add_team_role<'a>(
        &'a self,
        env: &'a CloudEnv,
        role: TeamRole,
    ) -> BoxFuture<'a, CloudResult<()>> {
        Box::pin(async move {
            self.check_admin_route(env).await?;
            self.do_add_role(role).await
        })
    }

    fn remove_team_role<'a>(
        &'a self,
        env: &'a CloudEnv,
        role: TeamRole,
    ) -> BoxFuture<'a, CloudResult<()>> {
        Box::pin(async move {
            self.check_admin_route(env).await?;
            self.do_remove_role(role).await
        })
    }

    fn change_team_role<'a>(
        &'a self,
        env: Option<&'a CloudEnv>,
        project_id: &'a str,
        user_id: &'a str,
        current: Role,
        new: Role,
    ) -> BoxFuture<'a, CloudResult<()>> {
        Box::pin(async move {
            if let Some(env) = env {
                self.check_admin_route(env).await?;
            }
            self.do_change_role(project_id, user_id, current, new).await
        })
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

    fn statistics<'a>(&'a self) -> BoxFuture<'a, CloudResult<serde_json::Value>> {
        Box::pin(self.do_statistics())
    }

    fn team_limits<'a>(
        &'a self,
        env: &'a CloudEnv,
    ) -> BoxFuture<'a, CloudResult<serde_json::Value>> {
        Box::pin(self.do_team_limits(env))
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
