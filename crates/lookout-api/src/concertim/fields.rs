//! Reading request bodies field by field, so a missing or mistyped field is answered with a
//! 4xx that names it (`team_role.project_id`), never with a panic or a 500.

use serde_json::Value;

use lookout_cloud::{CloudEnv, CloudError, CloudResult, Money};

/// Parses a body as a JSON object.
pub fn body(bytes: &[u8]) -> CloudResult<Value> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(CloudError::MissingField(
            "request body is empty; a JSON object is required".into(),
        ));
    }
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| CloudError::InvalidField(format!("request body is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(CloudError::InvalidField(
            "request body must be a JSON object".into(),
        ));
    }
    Ok(v)
}

/// The value at a dotted path, `None` when absent or null.
pub fn get<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = root;
    for part in path.split('.') {
        cur = cur.as_object()?.get(part)?;
    }
    (!cur.is_null()).then_some(cur)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Checks every parent of `path` is an object, so `team_role: "x"` says `team_role` is wrong.
fn check_parents(root: &Value, path: &str) -> CloudResult<()> {
    let mut cur = root;
    let mut walked = String::new();
    let parts: Vec<&str> = path.split('.').collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(part);
        match cur.as_object().and_then(|o| o.get(*part)) {
            None | Some(Value::Null) => return Err(CloudError::missing(&walked)),
            Some(v @ Value::Object(_)) => cur = v,
            Some(v) => {
                return Err(CloudError::invalid(
                    &walked,
                    format!("must be an object, not {}", type_name(v)),
                ))
            }
        }
    }
    Ok(())
}

pub fn req_obj<'a>(root: &'a Value, path: &str) -> CloudResult<&'a Value> {
    check_parents(root, path)?;
    match get(root, path) {
        None => Err(CloudError::missing(path)),
        Some(v @ Value::Object(_)) => Ok(v),
        Some(v) => Err(CloudError::invalid(
            path,
            format!("must be an object, not {}", type_name(v)),
        )),
    }
}

pub fn opt_str(root: &Value, path: &str) -> CloudResult<Option<String>> {
    check_parents(root, path).or_else(|e| match e {
        CloudError::MissingField(_) => Ok(()),
        other => Err(other),
    })?;
    match get(root, path) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(CloudError::invalid(
            path,
            format!("must be a string, not {}", type_name(v)),
        )),
    }
}

pub fn req_str(root: &Value, path: &str) -> CloudResult<String> {
    check_parents(root, path)?;
    match opt_str(root, path)? {
        Some(s) if !s.trim().is_empty() => Ok(s),
        Some(_) => Err(CloudError::invalid(path, "must not be empty")),
        None => Err(CloudError::missing(path)),
    }
}

/// A required id or name that may end up in a URL path or a store key: also refused when
/// it is `.`, `..`, over-long or holds control characters (see [`lookout_cloud::ids`]).
pub fn req_id(root: &Value, path: &str) -> CloudResult<String> {
    let s = req_str(root, path)?;
    lookout_cloud::ids::check(path, &s)?;
    Ok(s)
}

/// An id taken from the request path (`/update_status/{kind}/{id}`), checked as [`req_id`].
pub fn path_id(field: &str, value: String) -> CloudResult<String> {
    lookout_cloud::ids::check(field, &value)?;
    Ok(value)
}

/// An optional non-negative integer (a number, or a string of digits as the original accepted).
pub fn opt_int(root: &Value, path: &str) -> CloudResult<Option<i64>> {
    match get(root, path) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| CloudError::invalid(path, "must be an integer")),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| CloudError::invalid(path, "must be an integer")),
        Some(v) => Err(CloudError::invalid(
            path,
            format!("must be an integer, not {}", type_name(v)),
        )),
    }
}

pub fn req_money(root: &Value, path: &str) -> CloudResult<Money> {
    check_parents(root, path)?;
    let v = get(root, path).ok_or_else(|| CloudError::missing(path))?;
    Money::from_json(v).map_err(|why| CloudError::invalid(path, why))
}

/// `cloud_env`: Keystone v3 password auth. Needs `auth_url`, `password`, and `user_id` or
/// `username`; `project_id`/`project_name` and the domain names are optional here (the
/// routes that need a project say so).
pub fn cloud_env(root: &Value) -> CloudResult<CloudEnv> {
    req_obj(root, "cloud_env")?;
    let env = CloudEnv {
        auth_url: req_str(root, "cloud_env.auth_url")?,
        user_id: opt_str(root, "cloud_env.user_id")?.filter(|s| !s.is_empty()),
        username: opt_str(root, "cloud_env.username")?.filter(|s| !s.is_empty()),
        password: req_str(root, "cloud_env.password")?,
        project_id: opt_str(root, "cloud_env.project_id")?.filter(|s| !s.is_empty()),
        project_name: opt_str(root, "cloud_env.project_name")?.filter(|s| !s.is_empty()),
        user_domain_name: opt_str(root, "cloud_env.user_domain_name")?,
        project_domain_name: opt_str(root, "cloud_env.project_domain_name")?,
    };
    if env.user_id.is_none() && env.username.is_none() {
        return Err(CloudError::missing("cloud_env.user_id"));
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_the_field() {
        let v = json!({"team_role": {"project_id": 3}, "x": "s"});
        assert_eq!(
            req_str(&v, "team_role.project_id").unwrap_err().to_string(),
            "field `team_role.project_id` must be a string, not a number"
        );
        assert_eq!(
            req_str(&v, "team_role.user_id").unwrap_err().to_string(),
            "missing required field `team_role.user_id`"
        );
        assert_eq!(
            req_str(&v, "x.y").unwrap_err().to_string(),
            "field `x` must be an object, not a string"
        );
        assert_eq!(
            req_str(&v, "cloud_env.auth_url").unwrap_err().to_string(),
            "missing required field `cloud_env`"
        );
        assert!(body(b"[1]").is_err());
        assert!(body(b"").is_err());
        let env = json!({"cloud_env": {"auth_url": "u", "password": "p"}});
        assert!(cloud_env(&env)
            .unwrap_err()
            .to_string()
            .contains("cloud_env.user_id"));
    }
}
