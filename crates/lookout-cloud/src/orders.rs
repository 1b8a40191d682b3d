//! Cluster orders: what the cluster builder opens for each cluster it builds
//! (`POST /create_order`), cancels when the build fails (`/delete_order`) and tags with the
//! Heat stack it made (`POST /add_order_tag`, `openstack_stack_id`). In the original service
//! an order is a Kill Bill subscription and a tag is a custom field on it
//! (concertim-openstack-service `conser/modules/clients/billing/killbill/client.py`); here both
//! live in the ledger's store, next to the accounts they belong to. Cancelled orders are kept
//! (Kill Bill keeps cancelled subscriptions): their tags still name the rack of past costs.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;

use crate::error::{CloudError, CloudResult};
use crate::local::Db;

/// The tag naming the Heat stack (rack) an order pays for, as the cluster builder sets it.
pub const STACK_ID_TAG: &str = "openstack_stack_id";
/// The tag naming the stack's name, where a client sets it.
pub const STACK_NAME_TAG: &str = "openstack_stack_name";
/// Most tags one order may carry (Kill Bill has no limit; a bound keeps the row small).
pub const MAX_TAGS_PER_ORDER: i64 = 64;
/// Most orders an account may hold open at once (one per cluster; a bound on a client loop).
pub const MAX_OPEN_ORDERS: i64 = 10_000;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS cloud_orders (
        id VARCHAR(64) PRIMARY KEY,
        team_id VARCHAR(64) NOT NULL,
        billing_acct_id VARCHAR(64) NOT NULL,
        state VARCHAR(16) NOT NULL,
        created_at BIGINT NOT NULL,
        cancelled_at BIGINT)",
    "CREATE TABLE IF NOT EXISTS cloud_order_tags (
        id VARCHAR(64) PRIMARY KEY,
        order_id VARCHAR(64) NOT NULL,
        name VARCHAR(255) NOT NULL,
        value VARCHAR(255) NOT NULL,
        created_at BIGINT NOT NULL,
        UNIQUE (order_id, name))",
];

/// Creates the order tables where they are missing.
pub async fn ensure_schema(db: &Db) -> CloudResult<()> {
    for ddl in SCHEMA {
        sqlx::query(sqlx::AssertSqlSafe(ddl.to_string()))
            .execute(&db.pool)
            .await?;
    }
    Ok(())
}

/// `ACTIVE` until cancelled (Kill Bill's subscription states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum OrderState {
    Active,
    Cancelled,
}

impl OrderState {
    fn as_str(self) -> &'static str {
        match self {
            OrderState::Active => "ACTIVE",
            OrderState::Cancelled => "CANCELLED",
        }
    }
}

/// An order as `create_order` answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Order {
    pub order_id: String,
    pub billing_acct_id: String,
    pub state: OrderState,
    pub tags: BTreeMap<String, String>,
}

/// A tag as `add_order_tag` answers it: the shape of a Kill Bill custom field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderTag {
    #[serde(rename = "customFieldId")]
    pub id: String,
    #[serde(rename = "objectId")]
    pub order_id: String,
    #[serde(rename = "objectType")]
    pub object_type: &'static str,
    pub name: String,
    pub value: String,
}

/// The stack an order's tags name, for billing a rack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderStack {
    pub order_id: String,
    pub stack_id: String,
    pub stack_name: Option<String>,
}

fn check_tag(field: &str, v: &str) -> CloudResult<()> {
    crate::ids::check(field, v)
}

/// Opens an order on the team's account.
pub async fn create(
    db: &Db,
    team_id: &str,
    acct: &str,
    id: String,
    now_s: i64,
) -> CloudResult<Order> {
    let open = sqlx::query(
        db.sql("SELECT COUNT(*) FROM cloud_orders WHERE team_id = ? AND state = 'ACTIVE'"),
    )
    .bind(team_id.to_string())
    .fetch_one(&db.pool)
    .await?
    .try_get::<i64, _>(0)?;
    if open >= MAX_OPEN_ORDERS {
        return Err(CloudError::Conflict(format!(
            "account {acct} already has {open} open orders (at most {MAX_OPEN_ORDERS})"
        )));
    }
    sqlx::query(db.sql(
        "INSERT INTO cloud_orders (id, team_id, billing_acct_id, state, created_at) \
         VALUES (?, ?, ?, ?, ?)",
    ))
    .bind(id.clone())
    .bind(team_id.to_string())
    .bind(acct.to_string())
    .bind(OrderState::Active.as_str())
    .bind(now_s)
    .execute(&db.pool)
    .await?;
    Ok(Order {
        order_id: id,
        billing_acct_id: acct.to_string(),
        state: OrderState::Active,
        tags: BTreeMap::new(),
    })
}

async fn state_of(db: &Db, order_id: &str) -> CloudResult<OrderState> {
    let row = sqlx::query(db.sql("SELECT state FROM cloud_orders WHERE id = ?"))
        .bind(order_id.to_string())
        .fetch_optional(&db.pool)
        .await?
        .ok_or_else(|| CloudError::NotFound(format!("no order {order_id:?}")))?;
    Ok(match row.try_get::<String, _>(0)?.as_str() {
        "ACTIVE" => OrderState::Active,
        _ => OrderState::Cancelled,
    })
}

/// Cancels an order. Cancelling a cancelled order succeeds again: the cluster builder
/// deletes after a failed build and may repeat the call.
pub async fn cancel(db: &Db, order_id: &str, now_s: i64) -> CloudResult<()> {
    if state_of(db, order_id).await? == OrderState::Cancelled {
        return Ok(());
    }
    sqlx::query(db.sql(
        "UPDATE cloud_orders SET state = 'CANCELLED', cancelled_at = ? WHERE id = ? \
         AND state = 'ACTIVE'",
    ))
    .bind(now_s)
    .bind(order_id.to_string())
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Sets a tag on an order (a second value for the same name replaces the first).
pub async fn tag(
    db: &Db,
    order_id: &str,
    name: &str,
    value: &str,
    id: String,
    now_s: i64,
) -> CloudResult<OrderTag> {
    check_tag("tag.tag_name", name)?;
    check_tag("tag.tag_value", value)?;
    state_of(db, order_id).await?;
    let mut tx = db.pool.begin().await?;
    let existing =
        sqlx::query(db.sql("SELECT id FROM cloud_order_tags WHERE order_id = ? AND name = ?"))
            .bind(order_id.to_string())
            .bind(name.to_string())
            .fetch_optional(&mut *tx)
            .await?;
    let tag_id = match existing {
        Some(r) => {
            let tag_id: String = r.try_get(0)?;
            sqlx::query(db.sql("UPDATE cloud_order_tags SET value = ? WHERE id = ?"))
                .bind(value.to_string())
                .bind(tag_id.clone())
                .execute(&mut *tx)
                .await?;
            tag_id
        }
        None => {
            let n = sqlx::query(db.sql("SELECT COUNT(*) FROM cloud_order_tags WHERE order_id = ?"))
                .bind(order_id.to_string())
                .fetch_one(&mut *tx)
                .await?
                .try_get::<i64, _>(0)?;
            if n >= MAX_TAGS_PER_ORDER {
                return Err(CloudError::Conflict(format!(
                    "order {order_id} already has {n} tags (at most {MAX_TAGS_PER_ORDER})"
                )));
            }
            sqlx::query(db.sql(
                "INSERT INTO cloud_order_tags (id, order_id, name, value, created_at) \
                 VALUES (?, ?, ?, ?, ?)",
            ))
            .bind(id.clone())
            .bind(order_id.to_string())
            .bind(name.to_string())
            .bind(value.to_string())
            .bind(now_s)
            .execute(&mut *tx)
            .await?;
            id
        }
    };
    tx.commit().await?;
    Ok(OrderTag {
        id: tag_id,
        order_id: order_id.to_string(),
        object_type: "SUBSCRIPTION",
        name: name.to_string(),
        value: value.to_string(),
    })
}

/// The stacks a team's orders are tagged with (cancelled ones too: past costs keep their rack).
pub async fn stacks_of_team(db: &Db, team_id: &str) -> CloudResult<Vec<OrderStack>> {
    let rows = sqlx::query(db.sql(
        "SELECT o.id, t.name, t.value FROM cloud_orders o JOIN cloud_order_tags t \
         ON t.order_id = o.id WHERE o.team_id = ? AND t.name IN (?, ?) ORDER BY o.created_at",
    ))
    .bind(team_id.to_string())
    .bind(STACK_ID_TAG)
    .bind(STACK_NAME_TAG)
    .fetch_all(&db.pool)
    .await?;
    let mut by_order: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for r in rows {
        let (oid, name, value): (String, String, String) =
            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
        if !by_order.contains_key(&oid) {
            order.push(oid.clone());
        }
        let e = by_order.entry(oid).or_default();
        if name == STACK_ID_TAG {
            e.0 = Some(value);
        } else {
            e.1 = Some(value);
        }
    }
    Ok(order
        .into_iter()
        .filter_map(|oid| {
            let (id, name) = by_order.remove(&oid)?;
            Some(OrderStack {
                order_id: oid,
                stack_id: id?,
                stack_name: name,
            })
        })
        .collect())
}
