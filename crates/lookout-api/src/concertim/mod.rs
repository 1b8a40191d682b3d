//! The `concertim` profile: the routes the Concertim UI calls to manage its cloud, on their
//! own listener (see docs/architecture.md, "Concertim profile"). Auth is `Authorization: Bearer <JWT>` (HS256, `exp`
//! required); `GET /` answers `Running` without it. Every failure is
//! `{"success": false, "error": "<Kind>", "message": "…"}` with a fitting 4xx/5xx; a missing
//! or mistyped field is named in `message`.
//!
//! The domain lives in `lookout-cloud` behind [`CloudBackend`]; this module only reads
//! bodies, calls the backend and shapes replies.

pub mod fields;
mod orders;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use lookout_cloud::{
    CloudBackend, CloudError, JwtVerifier, NewKeyPair, NewUser, PowerAction, Role, TargetKind,
    TeamRole, UserChanges,
};

use fields::{cloud_env, opt_int, opt_str, path_id, req_id, req_money, req_obj, req_str};

/// What the Concertim routes need.
#[derive(Clone)]
pub struct ConcertimState {
    pub backend: Arc<dyn CloudBackend>,
    pub jwt: JwtVerifier,
    pub body_limit_bytes: usize,
    pub request_timeout: Duration,
}

/// A failure, answered as `{"success": false, "error", "message"}`.
#[derive(Debug)]
pub struct ConcertimError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl From<CloudError> for ConcertimError {
    fn from(e: CloudError) -> Self {
        Self {
            status: StatusCode::from_u16(e.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

impl ConcertimError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
        }
    }
}

impl IntoResponse for ConcertimError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), kind = self.kind, message = %self.message, "concertim request failed");
        }
        let mut r = (
            self.status,
            Json(json!({"success": false, "error": self.kind, "message": self.message})),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"concertim\""),
            );
        }
        r
    }
}

type Reply = Result<(StatusCode, Json<Value>), ConcertimError>;

fn ok(status: StatusCode, v: Value) -> Reply {
    Ok((status, Json(v)))
}

/// The Concertim router: every §5 route, JWT auth, limits and JSON errors.
pub fn router(state: ConcertimState) -> Router {
    let limit = state.body_limit_bytes;
    Router::new()
        .route("/", get(running))
        .route(
            "/user",
            post(create_user).patch(update_user).delete(delete_user),
        )
        .route("/team", post(create_team).delete(delete_team))
        // The UI's delete_team_job.rb sends DELETE to `/delete_team` in some versions.
        .route("/delete_team", axum::routing::delete(delete_team))
        .route(
            "/team_role",
            post(create_team_role)
                .patch(update_team_role)
                .delete(delete_team_role),
        )
        .route("/update_status/{kind}/{id}", post(update_status))
        .route(
            "/key_pairs",
            post(create_key_pair)
                .get(list_key_pairs)
                .delete(delete_key_pair),
        )
        .route("/get_draft_invoice", post(draft_invoice))
        .route("/list_paginated_invoices", post(list_invoices))
        .route("/get_account_invoice", post(get_invoice))
        .route("/credits", post(add_credits))
        .route("/get_credits", post(get_credits))
        .route("/create_order", post(orders::create_order))
        .route(
            "/delete_order",
            post(orders::delete_order).delete(orders::delete_order),
        )
        .route("/add_order_tag", post(orders::add_order_tag))
        .route("/statistics", get(statistics))
        .route("/team/limits", get(team_limits))
        .route("/team/{project_id}/quotas", get(team_quotas))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(middleware::from_fn_with_state(state.clone(), bound))
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn(headers))
        .with_state(state)
}

async fn running() -> &'static str {
    "Running\n"
}

async fn not_found() -> ConcertimError {
    ConcertimError::new(StatusCode::NOT_FOUND, "InvalidAPICall", "no such route")
}

async fn method_not_allowed() -> ConcertimError {
    ConcertimError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "InvalidAPICall",
        "method not allowed on this route",
    )
}

/// `Authorization: Bearer <JWT>` on every route but `GET /`.
async fn authenticate(State(st): State<ConcertimState>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/" && matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let refused = |m: &str| {
        ConcertimError::new(StatusCode::UNAUTHORIZED, "AuthenticationFailed", m).into_response()
    };
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return refused("Authorization header is missing");
    };
    let Some(token) = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty())
    else {
        return refused("Authorization header must be `Bearer <JWT>`");
    };
    match st.jwt.verify(token) {
        Ok(_) => next.run(req).await,
        Err(e) => refused(&e.to_string()),
    }
}

/// Declared body size and total time, both answered in this profile's error shape.
async fn bound(State(st): State<ConcertimState>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if matches!(declared, Some(n) if n > st.body_limit_bytes) {
        return too_large(st.body_limit_bytes).into_response();
    }
    match tokio::time::timeout(st.request_timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ConcertimError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "Timeout",
            format!(
                "request took longer than {} ms",
                st.request_timeout.as_millis()
            ),
        )
        .into_response(),
    }
}

fn too_large(limit: usize) -> ConcertimError {
    ConcertimError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "PayloadTooLarge",
        format!("request body larger than {limit} bytes"),
    )
}

async fn headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    crate::close_if_body_unread(&mut resp);
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The body as a JSON object (size-limited by the layer above).
fn json_body(
    st: &ConcertimState,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Value, ConcertimError> {
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(st.body_limit_bytes)
        } else {
            ConcertimError::new(e.status(), "InvalidArguments", e.body_text())
        }
    })?;
    Ok(fields::body(&bytes)?)
}

type Body = Result<Bytes, axum::extract::rejection::BytesRejection>;

async fn create_user(State(st): State<ConcertimState>, body: Body) -> Reply {
    let v = json_body(&st, body)?;
    let env = cloud_env(&v)?;
    let user = NewUser {
        username: req_str(&v, "username")?,
        name: req_str(&v, "name")?,
        email: req_str(&v, "email")?,
        password: req_str(&v, "password")?,
    };
    let made = st.backend.create_user(&env, user).await?;
    ok(
        StatusCode::CREATED,
        json!({"success": true, "username": made.username, "user_cloud_id": made.user_cloud_id}),
    )
}

async fn update_user(State(st): State<ConcertimState>, body: Body) -> Reply {
    let v = json_body(&st, body)?;
    let env = cloud_env(&v)?;
    let id = req_id(&v, "user_info.cloud_user_id")?;
    req_obj(&v, "user_info.new_data")?;
    let changes = UserChanges {
        email: opt_str(&v, "user_info.new_data.email")?,
        password: opt_str(&v, "user_info.new_data.password")?,
    };
    let changed = st.backend.update_user(&env, &id, changes).await?;
    // The original listed (object, id, field) triples.
    let updated: Vec<Value> = changed
        .iter()
        .map(|f| json!(["cloud_user", id, f]))
        .collect();
    ok(StatusCode::OK, json!({"success": true, "updated": updated}))
}

async fn delete_user(State(st): State<ConcertimState>, body: Body) -> Reply {
    let v = json_body(&st, body)?;
    let env = cloud_env(&v)?;
    let id = req_id(&v, "user_info.cloud_user_id")?;
    st.backend.delete_user(&env, &id).await?;
    ok(StatusCode::OK, json!({"success": true}))
}

async fn create_team(State(st): State<ConcertimState>, body: Body) -> Reply {
    let v = json_body(&st, body)?;
    let env = cloud_env(&v)?;
    let name = req_str(&v, "name")?;
    let t = st.backend.create_team(&env, &name).await?;
    ok(
        StatusCode::CREATED,
        json!({"success": true, "project_id": t.project_id, "billing_acct_id": t.billing_acct_id}),
    )
}

async fn delete_team(State(st): State<ConcertimState>, body: Body) -> Reply {
    let v = json_body(&st, body)?;
    let env = cloud_env(&v)?;
    let project = req_id(&v, "team_info.project_id")?;
    let billing = req_id(&v, "team_info.billing_acct_id")?;
    st.backend.delete_team(&env, &project, &billing).await?;
    ok(StatusCode::OK, json!({"success": true}))
}

fn team_role(v: &Value, role_field: &str) -> Result<TeamRole, ConcertimError> {
    Ok(TeamRole {
        project_id: req_id(v, "team_role.project_id")?,
        user_id: req_id(v, "team_role.user_id")?,
        role: Role::parse(role_field, &req_str(v, role_field)?)?,
    })
}

async fn create_team_role(State(st): State<ConcertimState>, body: Body) -> Reply {
    let v = json_body(&st, body)?;
    let env = cloud_env(&v)?;
    let r = team_role(&v, "team_role.role")?;
    st.backend.add_team_role(&env, r).await?;
    ok(StatusCode::CREATED, json!({"success": true}))
}

async fn delete_team_role(State(st): State<ConcertimState>, body: Body) -> Reply {
    let v = json_body(&st, body)?;
    let env = cloud_env(&v)?;
    let r = team_role(&v, "team_role.role")?;
    st.backend.remove_team_role(&env, r).await?;
    ok(StatusCode::OK, json!({"success": true}))
}

async fn update_team_role(State(st): State<ConcertimState>, body: Body) -> Reply {
    let v = json_body(&st, body)?;
    // §5 lists no cloud_env here; one that is sent is still checked.
    let env = if fields::get(&v, "cloud_env").is_some() {
        Some(cloud_env(&v)?)
    } else {
        None
    };
    let project = req_id(&v, "team_role.project_id")?;
    let user = req_id(&v, "team_role.user_id")?;
    let current = Role::parse(
        "team_role.current_role",
        &req_str(&v, "team_role.current_role")?,
    )?;
    let new = Role::parse("team_role.new_role", &req_str(&v, "team_role.new_role")?)?;
    st.backend
        .change_team_role(env.as_ref(), &project, &user, current, new)
        .await?;
    ok(StatusCode::OK, json!({"success": true}))
}

async fn update_status(
    State(st): State<ConcertimState>,
    Path((kind, id)): Path<(String, String)>,
    body: Body,
) -> Reply {
    let kind = TargetKind::parse(&kind)?;
    let id = path_id("id", id)?;
    let v = json_body(&st, body)?;
    let env = cloud_env(&v)?;
    let action = PowerAction::parse(kind, &req_str(&v, "action")?)?;
    let done = st.backend.update_status(&env, kind, &id, action).await?;
    ok(
        StatusCode::OK,
        json!({"success": true, "cloud_response": {"submitted": done.submitted, "request_ids": done.request_ids}}),
    )
}

async fn create_key_pair(State(st): State<ConcertimState>, body: Body) -> Reply {
    let v = json_body(&st, body)?;
    let env = cloud_env(&v)?;
    req_obj(&v, "key_pair")?;
    let key = NewKeyPair {
        name: req_id(&v, "key_pair.name")?,
        key_type: opt_str(&v, "key_pair.key_type")?,
        public_key: opt_str(&v, "key_pair.public_key")?,
    };
    let k = st.backend.create_key_pair(&env, key).await?;
    ok(
        StatusCode::CREATED,
        json!({"success": true, "key_pair": {
            "id": k.id, "name": k.name, "private_key": k.private_key,
            "public_key": k.public_key, "fingerprint": k.fingerprint,
        }}),
    )
}

async fn list_key_pairs(State(st): State<ConcertimState>, body: Body) -> Reply {
    let v = json_body(&st, body)?;
    let env = cloud_env(&v)?;
    let keys = st.backend.list_key_pairs(&env).await?;
    ok(StatusCode::OK, json!({"success": true, "key_pairs": keys}))
}

/// `get_cloud_stats_job.rb` sends no body (and no `cloud_env`); one that is sent is ignored
/// beyond the size bound, as the original never read it.
async fn statistics(State(st): State<ConcertimState>) -> Reply {
    let stats = st.backend.statistics().await?;
    ok(StatusCode::OK, json!({"success": true, "stats": stats}))
}

async fn team_quotas(
    State(st): State<ConcertimState>,
    Path(project_id): Path<String>,
    body: Body,
) -> Reply {
    let project_id = path_id("project_id", project_id)?;
    let v = json_body(&st, body)?;
    let env = cloud_env(&v)?;
    let quotas = st.backend.team_quotas(&env, &project_id).await?;
    ok(StatusCode::OK, json!({"success": true, "quotas": quotas}))
}

async fn team_limits(State(st): State<ConcertimState>, body: Body) -> Reply {
    let v = json_body(&st, body)?;
    let env = cloud_env(&v)?;
    let limits = st.backend.team_limits(&env).await?;
    ok(StatusCode::OK, json!({"success": true, "limits": limits}))
}

async fn delete_key_pair(State(st): State<ConcertimState>, body: Body) -> Reply {
    let v = json_body(&st, body)?;
    let env = cloud_env(&v)?;
    let name = req_id(&v, "keypair_name")?;
    st.backend.delete_key_pair(&env, &name).await?;
    ok(
        StatusCode::OK,
        json!({"success": true, "key_pair_name": name}),
    )
}

async fn draft_invoice(State(st): State<ConcertimState>, body: Body) -> Reply {
    let v = json_body(&st, body)?;
    let acct = req_id(&v, "invoice.billing_acct_id")?;
    let inv = st.backend.draft_invoice(&acct).await?;
    ok(
        StatusCode::OK,
        json!({"success": true, "draft_invoice": inv}),
    )
}

async fn list_invoices(State(st): State<ConcertimState>, body: Body) -> Reply {
    let v = json_body(&st, body)?;
    req_obj(&v, "invoices")?;
    let acct = req_id(&v, "invoices.billing_acct_id")?;
    let offset = opt_int(&v, "invoices.offset")?.unwrap_or(0);
    let limit = opt_int(&v, "invoices.limit")?.unwrap_or(100);
    let page = st.backend.list_invoices(&acct, offset, limit).await?;
    ok(
        StatusCode::OK,
        json!({"success": true, "total_invoices": page.total_invoices, "invoices": page.invoices}),
    )
}

async fn get_invoice(State(st): State<ConcertimState>, body: Body) -> Reply {
    let v = json_body(&st, body)?;
    let acct = req_id(&v, "invoice.billing_acct_id")?;
    let id = req_id(&v, "invoice.invoice_id")?;
    let inv = st.backend.get_invoice(&acct, &id).await?;
    ok(StatusCode::OK, json!({"success": true, "invoice": inv}))
}

async fn add_credits(State(st): State<ConcertimState>, body: Body) -> Reply {
    let v = json_body(&st, body)?;
    let acct = req_id(&v, "credits.billing_acct_id")?;
    let amount = req_money(&v, "credits.amount")?;
    let added = st.backend.add_credits(&acct, amount).await?;
    ok(
        StatusCode::CREATED,
        json!({"success": true, "credits": added}),
    )
}

async fn get_credits(State(st): State<ConcertimState>, body: Body) -> Reply {
    let v = json_body(&st, body)?;
    // The UI sends `billing_account_id` here (and `billing_acct_id` elsewhere); take either.
    let acct = match fields::get(&v, "credits.billing_acct_id") {
        Some(_) => req_id(&v, "credits.billing_acct_id")?,
        None => req_id(&v, "credits.billing_account_id")?,
    };
    let credits = st.backend.get_credits(&acct).await?;
    ok(StatusCode::OK, json!({"success": true, "credits": credits}))
}
