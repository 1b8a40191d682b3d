//! Pushes each team's credits and running cost to Concertim's own API, as the original's
//! billing handler does (concertim-openstack-service
//! `conser/modules/handlers/billing_handler/handler.py`, `update_team_costs_credits`): the UI
//! shows the figures and gates "Create cluster" on the credits.
//!
//! The calls are the original's (`conser/modules/clients/concertim/utils/endpoints.py`):
//! `POST /users/sign_in.json {"user": {"login", "password"}}` answers the token in its
//! `Authorization` header; `GET /api/v1/teams` lists the teams with their `project_id`;
//! `PATCH /api/v1/teams/{id} {"team": {"cost", "credits", "billing_period_start",
//! "billing_period_end"}}` sets the figures (the UI's `Api::V1::TeamsController` lets a root
//! user change exactly those). Runs on a timer and after each ledger change, off the request
//! path; a failure is retried with back-off and never reaches an API caller.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::Row;
use tokio::sync::Notify;

use crate::backend::CloudBackend;
use crate::error::{CloudError, CloudResult};
use crate::ledger::period_bounds;
use crate::local::Db;
use crate::metering::period_of;
use crate::money::Money;

/// Most teams one push reads from Concertim (a bound on what a misbehaving peer can send).
const MAX_TEAMS: usize = 100_000;
/// Most bytes of one Concertim answer read.
const MAX_BODY_BYTES: usize = 16 << 20;
/// Shortest wait before retrying a failed push.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// Where and as whom to push.
#[derive(Clone)]
pub struct PushConfig {
    /// Concertim's base URL, e.g. `https://concertim.example:443`.
    pub url: String,
    /// A root user of Concertim (only root may set a team's cost and credits).
    pub login: String,
    /// Never logged.
    pub password: String,
    /// Seconds between pushes when nothing changes.
    pub every: Duration,
    /// Bound of each call.
    pub timeout: Duration,
}

impl std::fmt::Debug for PushConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushConfig")
            .field("url", &self.url)
            .field("login", &self.login)
            .field("password", &"<redacted>")
            .field("every", &self.every)
            .finish()
    }
}

/// What one team gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamFigures {
    pub cost: Money,
    pub credits: Money,
    pub period_start: String,
    pub period_end: String,
}

impl TeamFigures {
    /// The body of `PATCH /api/v1/teams/{id}`. Figures are decimal text, as the original
    /// sends them (it formats every field into a string); Rails reads them as decimals.
    pub fn body(&self) -> Value {
        json!({"team": {
            "cost": self.cost.to_string(),
            "credits": self.credits.to_string(),
            "billing_period_start": self.period_start,
            "billing_period_end": self.period_end,
        }})
    }
}

/// `YYYY-MM-01` of the month and of the month after, as the original's billing period.
pub fn billing_period(now_ms: i64) -> (String, String) {
    let period = period_of(now_ms);
    let (start, last) = period_bounds(&period);
    let end = time::Date::parse(
        &last,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
    .and_then(|d| d.next_day())
    .map(|d| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()))
    .unwrap_or_else(|| last.clone());
    (start, end)
}

pub struct ConcertimPush {
    cfg: PushConfig,
    http: reqwest::Client,
    db: Db,
    backend: Arc<dyn CloudBackend>,
    token: tokio::sync::Mutex<Option<String>>,
}

fn upstream(message: String) -> CloudError {
    CloudError::Status {
        status: 502,
        kind: "BadGateway",
        message,
    }
}

impl ConcertimPush {
    pub fn new(cfg: PushConfig, db: Db, backend: Arc<dyn CloudBackend>) -> CloudResult<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(cfg.timeout)
            .timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| CloudError::Internal(format!("concertim push client: {e}")))?;
        Ok(Self {
            cfg,
            http,
            db,
            backend,
            token: tokio::sync::Mutex::new(None),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.cfg.url.trim_end_matches('/'))
    }

    async fn read_json(r: reqwest::Response) -> CloudResult<Value> {
        let bytes = r
            .bytes()
            .await
            .map_err(|e| upstream(format!("concertim: reading the answer: {e}")))?;
        if bytes.len() > MAX_BODY_BYTES {
            return Err(upstream("concertim: answer too large".into()));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| upstream(format!("concertim: the answer is not JSON: {e}")))
    }

    async fn login(&self) -> CloudResult<String> {
        let r = self
            .http
            .post(self.url("/users/sign_in.json"))
            .header("Accept", "application/json")
            .json(&json!({"user": {"login": self.cfg.login, "password": self.cfg.password}}))
            .send()
            .await
            .map_err(|e| upstream(format!("concertim sign-in: {e}")))?;
        if !r.status().is_success() {
            return Err(upstream(format!(
                "concertim sign-in answered {}",
                r.status().as_u16()
            )));
        }
        r.headers()
            .get(reqwest::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| upstream("concertim sign-in: no Authorization header".into()))
    }

    /// A call with the current token; signs in first, and once more on a 401.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> CloudResult<Value> {
        let mut guard = self.token.lock().await;
        for attempt in 0..2 {
            let token = match guard.clone() {
                Some(t) => t,
                None => {
                    let t = self.login().await?;
                    *guard = Some(t.clone());
                    t
                }
            };
            let mut req = self
                .http
                .request(method.clone(), self.url(path))
                .header("Accept", "application/json")
                .header(reqwest::header::AUTHORIZATION, token);
            if let Some(b) = body {
                req = req.json(b);
            }
            let r = req
                .send()
                .await
                .map_err(|e| upstream(format!("concertim {path}: {e}")))?;
            if r.status() == reqwest::StatusCode::UNAUTHORIZED && attempt == 0 {
                *guard = None;
                continue;
            }
            if !r.status().is_success() {
                return Err(upstream(format!(
                    "concertim {method} {path} answered {}",
                    r.status().as_u16()
                )));
            }
            return Self::read_json(r).await;
        }
        Err(upstream(format!(
            "concertim {path}: refused the fresh token"
        )))
    }

    /// The figures of one billing account now.
    pub async fn figures(&self, acct: &str, now_ms: i64) -> CloudResult<TeamFigures> {
        let draft = self.backend.draft_invoice(acct).await?;
        // The UI refuses negative credits (`Team` validates >= 0): an overdrawn team shows 0.
        let credits = self.backend.get_credits(acct).await?.max(Money::ZERO);
        let (period_start, period_end) = billing_period(now_ms);
        Ok(TeamFigures {
            cost: draft.amount.max(Money::ZERO),
            credits,
            period_start,
            period_end,
        })
    }

    /// Pushes every team Concertim and the ledger both know. Returns how many were updated.
    pub async fn push_once(&self) -> CloudResult<usize> {
        let teams = self
            .call(reqwest::Method::GET, "/api/v1/teams", None)
            .await?;
        let teams = teams
            .as_array()
            .ok_or_else(|| upstream("concertim /api/v1/teams: not a list".into()))?;
        let rows = sqlx::query(self.db.sql("SELECT id, billing_acct_id FROM cloud_teams"))
            .fetch_all(&self.db.pool)
            .await?;
        let mut accounts = std::collections::HashMap::new();
        for r in rows {
            accounts.insert(r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?);
        }
        let now = crate::now_ms();
        let mut pushed = 0;
        for t in teams.iter().take(MAX_TEAMS) {
            let Some(project) = t["project_id"].as_str() else {
                continue;
            };
            let Some(acct) = accounts.get(project) else {
                continue;
            };
            let id = match &t["id"] {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                _ => continue,
            };
            let seg = crate::ids::segment(&id)?;
            let f = self.figures(acct, now).await?;
            self.call(
                reqwest::Method::PATCH,
                &format!("/api/v1/teams/{seg}"),
                Some(&f.body()),
            )
            .await?;
            pushed += 1;
        }
        Ok(pushed)
    }
}

/// Pushes every `cfg.every` and soon after each change `changes` signals; a failed push is
/// retried after 1 s, 2 s, 4 s … up to `every`. Never returns.
pub async fn run_push(push: Arc<ConcertimPush>, changes: Arc<Notify>) {
    let every = push.cfg.every.max(Duration::from_secs(1));
    let mut backoff = FIRST_BACKOFF;
    let mut failing = false;
    loop {
        match push.push_once().await {
            Ok(n) => {
                if failing {
                    tracing::info!(teams = n, "concertim push works again");
                }
                failing = false;
                backoff = FIRST_BACKOFF;
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = changes.notified() => {}
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "concertim push failed; retrying with back-off");
                }
                failing = true;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(every);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_is_this_month_to_the_first_of_the_next() {
        // 2024-02-10 and 2023-12-31 (UTC).
        assert_eq!(
            billing_period(1_707_523_200_000),
            ("2024-02-01".into(), "2024-03-01".into())
        );
        assert_eq!(
            billing_period(1_704_023_999_000),
            ("2023-12-01".into(), "2024-01-01".into())
        );
    }

    #[test]
    fn body_has_the_ui_fields_as_decimal_text() {
        let f = TeamFigures {
            cost: Money(1234),
            credits: Money(50),
            period_start: "2024-02-01".into(),
            period_end: "2024-03-01".into(),
        };
        let b = f.body();
        assert_eq!(b["team"]["cost"], "12.34");
        assert_eq!(b["team"]["credits"], "0.50");
        assert_eq!(b["team"]["billing_period_end"], "2024-03-01");
        let dbg = format!(
            "{:?}",
            PushConfig {
                url: "u".into(),
                login: "l".into(),
                password: "hunter2".into(),
                every: Duration::from_secs(1),
                timeout: Duration::from_secs(1)
            }
        );
        assert!(!dbg.contains("hunter2"));
    }
}
