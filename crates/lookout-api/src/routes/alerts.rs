//! `/api/v1/alerts`: active alerts, their history, rules (change with scope `admin`) and
//! silences. Handlers only read the alert service's memory or its small files; evaluation
//! happens on the alert task, never here.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use lookout_alert::{
    ActiveAlert, AlertService, Rule, RuleEntry, ServiceError, Silence, SilenceRequest, Transition,
};

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(active))
        .routes(routes!(history))
        .routes(routes!(list_rules, create_rule))
        .routes(routes!(update_rule, delete_rule))
        .routes(routes!(list_silences, create_silence))
        .routes(routes!(delete_silence))
}

fn service(state: &AppState) -> Result<&AlertService, ApiError> {
    state.alerts.as_ref().ok_or_else(|| {
        ApiError::Unavailable("alerting is turned off ([alerts] enabled = false)".into())
    })
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(e) => ApiError::BadRequest(e.to_string()),
            ServiceError::NotFound(m) => ApiError::NotFound(m),
            ServiceError::Conflict(m) => ApiError::Conflict(m),
            ServiceError::Io(m) => ApiError::Internal(m),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ActiveResponse {
    /// Alerts now pending or firing, with whether a silence covers them.
    pub alerts: Vec<ActiveAlert>,
}

#[derive(Serialize, ToSchema)]
pub struct AlertHistoryResponse {
    /// State changes, newest first.
    pub transitions: Vec<Transition>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// How many transitions, newest first (1..=10000, default 100).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct RulesResponse {
    pub rules: Vec<RuleEntry>,
}

#[derive(Serialize, ToSchema)]
pub struct RuleResponse {
    pub rule: Rule,
}

#[derive(Serialize, ToSchema)]
pub struct SilencesResponse {
    pub silences: Vec<Silence>,
}

#[derive(Serialize, ToSchema)]
pub struct SilenceResponse {
    pub silence: Silence,
}

#[derive(Serialize, ToSchema)]
pub struct DeletedResponse {
    pub deleted: String,
}

/// Alerts now pending or firing.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", security(("bearer" = [])),
    responses((status = 200, body = ActiveResponse), (status = 401, body = ErrorBody),
              (status = 503, description = "Alerting turned off", body = ErrorBody)))]
async fn active(State(state): State<AppState>) -> Result<Json<ActiveResponse>, ApiError> {
    Ok(Json(ActiveResponse {
        alerts: service(&state)?.active(),
    }))
}

/// State changes (pending, firing, resolved, inactive), newest first, kept on disk across restarts.
#[utoipa::path(get, path = "/api/v1/alerts/history", operation_id = "alert_history", tag = "alerts", security(("bearer" = [])), params(HistoryQuery),
    responses((status = 200, body = AlertHistoryResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
async fn history(
    State(state): State<AppState>,
    q: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AlertHistoryResponse>, ApiError> {
    let Query(q) = q?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::BadRequest("limit: must be 1..=10000".into()));
    }
    Ok(Json(AlertHistoryResponse {
        transitions: service(&state)?.history(limit)?,
    }))
}

/// Every rule: from the config file (`source: config`, read-only here) and from this API.
#[utoipa::path(get, path = "/api/v1/alerts/rules", tag = "alerts", security(("bearer" = [])),
    responses((status = 200, body = RulesResponse), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn list_rules(State(state): State<AppState>) -> Result<Json<RulesResponse>, ApiError> {
    Ok(Json(RulesResponse {
        rules: service(&state)?.rules(),
    }))
}

fn rule_from_body(
    body: Result<Json<serde_json::Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Rule, ApiError> {
    let Json(v) = body?;
    Rule::from_json(v).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// Adds a rule (scope `admin`). It is validated (400 naming the field), saved, and evaluated from the next sample on.
#[utoipa::path(post, path = "/api/v1/alerts/rules", tag = "alerts", security(("bearer" = [])), request_body = Rule,
    responses((status = 201, body = RuleResponse), (status = 400, description = "Invalid rule; the message names the field", body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, description = "A rule of that name exists", body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn create_rule(
    State(state): State<AppState>,
    body: Result<Json<serde_json::Value>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<RuleResponse>), ApiError> {
    let svc = service(&state)?;
    let rule = rule_from_body(body)?;
    svc.create_rule(rule.clone())?;
    tracing::info!(rule = %rule.name, "alert rule created");
    Ok((StatusCode::CREATED, Json(RuleResponse { rule })))
}

/// Replaces an API rule (scope `admin`); config-file rules answer 409.
#[utoipa::path(put, path = "/api/v1/alerts/rules/{name}", tag = "alerts", security(("bearer" = [])), request_body = Rule,
    params(("name" = String, Path, description = "Rule name")),
    responses((status = 200, body = RuleResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn update_rule(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<serde_json::Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<RuleResponse>, ApiError> {
    let svc = service(&state)?;
    let rule = rule_from_body(body)?;
    if rule.name != name {
        return Err(ApiError::BadRequest(format!(
            "name: {:?} differs from the rule in the path ({name:?})",
            rule.name
        )));
    }
    svc.update_rule(&name, rule.clone())?;
    tracing::info!(rule = %name, "alert rule updated");
    Ok(Json(RuleResponse { rule }))
}

/// Deletes an API rule (scope `admin`); its alerts resolve at the next sample.
#[utoipa::path(delete, path = "/api/v1/alerts/rules/{name}", tag = "alerts", security(("bearer" = [])),
    params(("name" = String, Path, description = "Rule name")),
    responses((status = 200, body = DeletedResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, description = "A config-file rule", body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn delete_rule(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<DeletedResponse>, ApiError> {
    service(&state)?.delete_rule(&name)?;
    tracing::info!(rule = %name, "alert rule deleted");
    Ok(Json(DeletedResponse { deleted: name }))
}

/// Silences not yet expired.
#[utoipa::path(get, path = "/api/v1/alerts/silences", tag = "alerts", security(("bearer" = [])),
    responses((status = 200, body = SilencesResponse), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn list_silences(State(state): State<AppState>) -> Result<Json<SilencesResponse>, ApiError> {
    Ok(Json(SilencesResponse {
        silences: service(&state)?.silences(),
    }))
}

/// Silences matching alerts for a time (scope `admin`): they are still evaluated and listed, but send nothing.
#[utoipa::path(post, path = "/api/v1/alerts/silences", tag = "alerts", security(("bearer" = [])), request_body = SilenceRequest,
    responses((status = 201, body = SilenceResponse), (status = 400, description = "Invalid silence; the message names the field", body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn create_silence(
    State(state): State<AppState>,
    body: Result<Json<SilenceRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<SilenceResponse>), ApiError> {
    let svc = service(&state)?;
    let Json(req) = body?;
    let silence = svc.add_silence(req)?;
    tracing::info!(silence = %silence.id, "alert silence created");
    Ok((StatusCode::CREATED, Json(SilenceResponse { silence })))
}

/// Ends a silence (scope `admin`).
#[utoipa::path(delete, path = "/api/v1/alerts/silences/{id}", tag = "alerts", security(("bearer" = [])),
    params(("id" = String, Path, description = "Silence id")),
    responses((status = 200, body = DeletedResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn delete_silence(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DeletedResponse>, ApiError> {
    service(&state)?.delete_silence(&id)?;
    Ok(Json(DeletedResponse { deleted: id }))
}
