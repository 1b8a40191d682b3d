//! The cluster builder's order routes, with the original's request and answer shapes
//! (concertim-openstack-service `conser/api/api_server.py`: `create_order`, `delete_order`,
//! `add_order_tag`; the bodies as concertim-cluster-builder
//! `cluster_builder/middleware/utils/endpoints.py` sends them).

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;

use super::fields::{self, req_id, req_obj};
use super::{json_body, ok, Body, ConcertimState, Reply};

/// `POST /create_order` `{"order": {"billing_account_id"}}` →
/// `201 {"success": true, "order_id", "order"}` (`order` is the id, as the original sends it).
pub(super) async fn create_order(State(st): State<ConcertimState>, body: Body) -> Reply {
    let v = json_body(&st, body)?;
    req_obj(&v, "order")?;
    // The cluster builder writes `billing_account_id`; the UI's other routes `billing_acct_id`.
    let acct = match fields::get(&v, "order.billing_acct_id") {
        Some(_) => req_id(&v, "order.billing_acct_id")?,
        None => req_id(&v, "order.billing_account_id")?,
    };
    let order = st.backend.create_order(&acct).await?;
    ok(
        StatusCode::CREATED,
        json!({"success": true, "order_id": order.order_id, "order": order.order_id}),
    )
}

/// `POST` or `DELETE /delete_order` `{"order": {"order_id"}}` → `{"success": true, "order"}`.
pub(super) async fn delete_order(State(st): State<ConcertimState>, body: Body) -> Reply {
    let v = json_body(&st, body)?;
    req_obj(&v, "order")?;
    let id = req_id(&v, "order.order_id")?;
    st.backend.delete_order(&id).await?;
    ok(StatusCode::OK, json!({"success": true, "order": id}))
}

/// `POST /add_order_tag` `{"tag": {"order_id", "tag_name", "tag_value"}}` →
/// `201 {"success": true, "tag": <Kill Bill custom field>}`.
pub(super) async fn add_order_tag(State(st): State<ConcertimState>, body: Body) -> Reply {
    let v = json_body(&st, body)?;
    req_obj(&v, "tag")?;
    let id = req_id(&v, "tag.order_id")?;
    let name = req_id(&v, "tag.tag_name")?;
    let value = req_id(&v, "tag.tag_value")?;
    let tag = st.backend.add_order_tag(&id, &name, &value).await?;
    ok(StatusCode::CREATED, json!({"success": true, "tag": tag}))
}
