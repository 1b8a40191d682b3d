//! The environment as container platforms pass it: `NAME_FILE=/run/secrets/x` stands for
//! `NAME=<the file's content>` (the Docker-secrets convention, so a secret never sits in the
//! environment itself), and an empty `LOOKOUT_*` value counts as unset (compose passes every
//! optional setting, set or not). lookout honours both itself, so `docker exec lookout lookout
//! token create` sees the same configuration as the server the entrypoint started.

use std::path::Path;

use anyhow::{Context, Result};

/// A secret from `name`, or from the file `name_FILE` names; `None` when neither is set (or
/// either is empty). The file's trailing newline is not part of the secret.
pub fn secret(name: &str) -> Result<Option<String>> {
    if let Some(v) = std::env::var(name).ok().filter(|v| !v.trim().is_empty()) {
        return Ok(Some(v));
    }
    let file_var = format!("{name}_FILE");
    match std::env::var_os(&file_var).filter(|p| !p.is_empty()) {
        Some(path) => {
            read_secret(&file_var, Path::new(&path)).map(|v| Some(v).filter(|v| !v.is_empty()))
        }
        None => Ok(None),
    }
}

fn read_secret(var: &str, path: &Path) -> Result<String> {
    let raw = std::fs::read_to_string(path)
        .with_context(|| format!("{var}={}: cannot read the file", path.display()))?;
    Ok(raw.trim_end_matches(['\n', '\r']).to_owned())
}

/// Configuration keys given through `LOOKOUT_<KEY>_FILE`, as (dotted key, file content);
/// `skip` names keys read on their own (e.g. `token`).
pub fn config_files(skip: &[&str]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (var, path) in std::env::vars_os() {
        let Some(var) = var.to_str() else { continue };
        let Some(key) = file_key(var) else { continue };
        if path.is_empty() || skip.contains(&key.as_str()) {
            continue;
        }
        let value = read_secret(var, Path::new(&path))?;
        out.push((key, value));
    }
    Ok(out)
}

/// `LOOKOUT_STORE__URL_FILE` → `store.url`; `None` for anything else.
fn file_key(var: &str) -> Option<String> {
    let rest = var.strip_prefix("LOOKOUT_")?;
    let key = rest.strip_suffix("_FILE")?;
    (!key.is_empty()).then(|| key.to_ascii_lowercase().replace("__", "."))
}

/// Is the environment key (after the `LOOKOUT_` prefix) one that the plain environment
/// provider must leave alone: a `_FILE` indirection, or a variable set to nothing?
pub fn handled_elsewhere(key_after_prefix: &str) -> bool {
    let lower = key_after_prefix.to_ascii_lowercase();
    if lower.ends_with("_file") {
        return true;
    }
    std::env::vars_os().any(|(k, v)| {
        v.is_empty()
            && k.to_str()
                .and_then(|k| k.strip_prefix("LOOKOUT_"))
                .is_some_and(|k| k.eq_ignore_ascii_case(key_after_prefix))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_keys() {
        assert_eq!(
            file_key("LOOKOUT_STORE__URL_FILE").as_deref(),
            Some("store.url")
        );
        assert_eq!(
            file_key("LOOKOUT_CONCERTIM__OPENSTACK__PASSWORD_FILE").as_deref(),
            Some("concertim.openstack.password")
        );
        assert_eq!(file_key("LOOKOUT_TOKEN_FILE").as_deref(), Some("token"));
        assert_eq!(file_key("LOOKOUT__FILE"), None);
        assert_eq!(file_key("LOOKOUT_STORE__URL"), None);
        assert_eq!(file_key("JWT_SECRET_FILE"), None);
    }
}
