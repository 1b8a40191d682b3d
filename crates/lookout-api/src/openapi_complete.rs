//! Completes the OpenAPI document the route attributes produce, from the rules the middleware
//! and extractors actually apply, so no route can forget them:
//! - every response has a description (OpenAPI requires one);
//! - every error answer a route can give is listed with the body its profile sends:
//!   401 where a token is checked, 403 where the scope or a session's CSRF token can be
//!   refused, 400 where a query, path or body can be malformed, 404 where a path names a
//!   thing, 413 where a body is taken, 503 where figures, the Docker engine, the history
//!   store or the upstream may be missing, 504 everywhere (the request time limit);
//! - parameters carry the constraints their parsers enforce (enum, pattern, bounds).
//!
//! Works on the JSON form of the document: the rules are about names and status codes, and
//! the JSON keeps them readable.

use axum::http::Method;
use serde_json::{json, Map, Value};

use crate::access::{required_access, Access};
use crate::auth::Scope;
use crate::state::ApiConfig;

/// Tags whose routes need the latest sample, the Docker engine, the history store or the
/// smart upstream, any of which may be missing (503).
const MAY_BE_UNAVAILABLE: &[&str] = &[
    "host",
    "containers",
    "gpu",
    "iotconnect",
    "docker-stats",
    "history",
    "perf-history",
    "smart",
    "fleet",
];

/// Parameters whose parsers answer 400 for a value outside their constraints.
pub const VALIDATED: &[&str] = &["from", "to", "step", "timeout", "series", "action"];

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

/// An RFC 3339 time or seconds since the epoch, as `parse_time` accepts them.
const TIME_PATTERN: &str = r"^\s*([0-9]{1,11}(\.[0-9]+)?|[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2}))\s*$";

/// The constraints of a parameter, by name, as the handlers' parsers enforce them.
fn constraints(name: &str, config: &ApiConfig) -> Option<Value> {
    Some(match name {
        "from" | "to" => json!({"type": "string", "maxLength": 64, "pattern": TIME_PATTERN}),
        "step" => json!({"type": "number", "format": "double", "exclusiveMinimum": 0}),
        "timeout" => json!({
            "type": "integer", "format": "int64", "minimum": 1,
            "maximum": config.request_timeout.as_millis() as u64,
        }),
        "series" => json!({
            "type": "string", "minLength": 1, "maxLength": 1024,
            "pattern": r"^\s*[A-Za-z0-9_.:-]{1,200}(\{.*\})?\s*$",
        }),
        "action" => {
            json!({"type": "string", "enum": ["start", "stop", "restart", "pause", "unpause"]})
        }
        "id" => json!({"type": "string", "minLength": 1, "pattern": "^[^/]+$"}),
        "api_key" => json!({"type": "string", "minLength": 1}),
        // A fleet host label value (lookout-fleet's MAX_HOST_BYTES).
        "host" => json!({"type": "string", "minLength": 1, "maxLength": 256}),
        _ => return None,
    })
}

fn error_schema(path: &str) -> Value {
    if path.starts_with("/data/") {
        json!({"$ref": "#/components/schemas/MessageError"})
    } else if path == "/stats" {
        json!({"$ref": "#/components/schemas/KeyError"})
    } else {
        json!({"$ref": "#/components/schemas/ErrorBody"})
    }
}

fn default_description(status: &str) -> &'static str {
    match status {
        "200" => "Success",
        "204" => "Done; no body",
        "400" => "A parameter or the body is malformed or out of range",
        "401" => "Missing, malformed, unknown or revoked token",
        "403" => "The token lacks the scope this route needs (or a session's CSRF token is missing)",
        "404" => "No such thing",
        "406" => "Not acceptable",
        "409" => "The request does not fit the current state",
        "413" => "Body larger than limits.body_bytes",
        "429" => "Too many attempts; retry later",
        "502" => "The upstream failed",
        "503" => "Not ready: no sample yet, or the Docker engine, history store, upstream or fleet engine is unavailable",
        "504" => "The request took longer than limits.request_timeout_ms",
        _ => "Answer",
    }
}

/// Completes `doc` in place (see the module comment).
pub fn complete(doc: &mut Value, config: &ApiConfig) {
    add_error_schemas(doc);
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        for method in METHODS {
            if let Some(op) = item.get_mut(*method).and_then(Value::as_object_mut) {
                complete_operation(path, method, op, config);
            }
        }
    }
}

fn complete_operation(path: &str, method: &str, op: &mut Map<String, Value>, config: &ApiConfig) {
    let secured = op
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    let http_method =
        Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap_or(Method::GET);
    let needs = required_access(&http_method, path, false);
    let mutating = method != "get";
    let has_body = op.contains_key("requestBody");
    let tags: Vec<String> = op
        .get("tags")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();

    let mut may_be_malformed = has_body;
    if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
        for p in params.iter_mut() {
            let name = p
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let location = p.get("in").and_then(Value::as_str).unwrap_or("").to_owned();
            if let Some(schema) = constraints(&name, config) {
                p["schema"] = schema;
            }
            // Only these are parsed and refused with a 400; `id` is looked up (404) and
            // `api_key` / `Accept` are read as they come.
            if VALIDATED.contains(&name.as_str()) && location != "header" {
                may_be_malformed = true;
            }
        }
    }

    let responses = op
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    let Some(responses) = responses else { return };
    let mut add = |status: &str| {
        responses.entry(status).or_insert_with(|| json!({}));
    };
    if secured && path != "/stats" {
        add("401");
    }
    if path == "/stats" {
        add("403");
    }
    if secured && (matches!(needs, Access::Needs(s) if s > Scope::Read) || mutating) {
        add("403");
    }
    if may_be_malformed {
        add("400");
    }
    if path.contains('{') {
        add("404");
    }
    if has_body {
        add("413");
    }
    if tags
        .iter()
        .any(|t| MAY_BE_UNAVAILABLE.contains(&t.as_str()))
    {
        add("503");
    }
    add("504");

    for (status, response) in responses.iter_mut() {
        let Some(r) = response.as_object_mut() else {
            continue;
        };
        let described = r
            .get("description")
            .and_then(Value::as_str)
            .is_some_and(|d| !d.trim().is_empty());
        if !described {
            r.insert("description".into(), default_description(status).into());
        }
        let is_error = status.starts_with('4') || status.starts_with('5');
        if is_error && !r.contains_key("content") {
            r.insert(
                "content".into(),
                json!({"application/json": {"schema": error_schema(path)}}),
            );
        }
    }
}

/// The error bodies of the compatibility profiles, next to the native `ErrorBody`.
fn add_error_schemas(doc: &mut Value) {
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    schemas.insert(
        "MessageError".into(),
        json!({
            "type": "object", "required": ["message"],
            "description": "Error body of the iotconnect profile",
            "properties": {"message": {"type": "string"}},
        }),
    );
    schemas.insert(
        "KeyError".into(),
        json!({
            "type": "object", "required": ["error"],
            "description": "Error body of the docker-stats profile",
            "properties": {"error": {"type": "string"}},
        }),
    );
}
