//! Logs through tracing: human on a terminal, JSON otherwise, optionally also to daily files.
//! Nothing logs tokens, passwords or `api_key` values: the request path is logged without its
//! query string and no header is ever logged.

use std::io::IsTerminal;

use anyhow::Result;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

use crate::config::LogConfig;

pub fn init(cfg: &LogConfig) -> Result<Option<WorkerGuard>> {
    let level =
        level_filter(&cfg.level).map_err(|e| anyhow::anyhow!("configuration: log.level: {e}"))?;
    let filter = match EnvFilter::try_from_default_env() {
        Ok(f) => f,
        Err(_) => EnvFilter::try_new(&level)
            .map_err(|e| anyhow::anyhow!("configuration: log.level: `{}`: {e}", cfg.level))?,
    };
    let json = match cfg.format.as_str() {
        "json" => true,
        "human" => false,
        "auto" => !std::io::stderr().is_terminal(),
        other => {
            anyhow::bail!("configuration: log.format: `{other}` is not one of auto, human, json")
        }
    };
    let console = if json {
        fmt::layer().json().with_writer(std::io::stderr).boxed()
    } else {
        fmt::layer().with_writer(std::io::stderr).boxed()
    };
    let (file_layer, guard) = match &cfg.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            let (writer, guard) = tracing_appender::non_blocking(tracing_appender::rolling::daily(
                dir,
                "lookout.log",
            ));
            (
                Some(fmt::layer().json().with_writer(writer).boxed()),
                Some(guard),
            )
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(console)
        .with(file_layer)
        .try_init()
        .ok();
    Ok(guard)
}

const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// One level name, as tracing spells it; `warning` (syslog's and Python's word) is `warn`.
fn level_name(raw: &str) -> Option<&'static str> {
    let l = raw.trim().to_ascii_lowercase();
    let l = if l == "warning" {
        "warn".to_string()
    } else {
        l
    };
    LEVELS.iter().copied().find(|x| *x == l)
}

/// `log.level` as a tracing filter. A bare word must be a level: tracing would read `warning`
/// or `debgu` as a target name and log nothing at all, silently.
pub fn level_filter(raw: &str) -> std::result::Result<String, String> {
    let mut out = Vec::new();
    for directive in raw.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let fixed = match directive.rsplit_once('=') {
            Some((target, level)) => match level_name(level) {
                Some(l) => format!("{target}={l}"),
                None => return Err(bad_level(level)),
            },
            None => match level_name(directive) {
                Some(l) => l.to_string(),
                None => return Err(bad_level(directive)),
            },
        };
        out.push(fixed);
    }
    if out.is_empty() {
        return Err("empty; use a level such as `info`".into());
    }
    Ok(out.join(","))
}

fn bad_level(level: &str) -> String {
    format!(
        "`{level}` is not a level; use one of {} (or `warning`), optionally per target as in `lookout=debug,info`",
        LEVELS.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(level_filter("warning").unwrap(), "warn");
        assert_eq!(level_filter("WARN").unwrap(), "warn");
        assert_eq!(
            level_filter("lookout=debug, info").unwrap(),
            "lookout=debug,info"
        );
        assert_eq!(
            level_filter("lookout_api::access=warning").unwrap(),
            "lookout_api::access=warn"
        );
        assert_eq!(
            level_filter("warnig").unwrap_err(),
            "`warnig` is not a level; use one of off, error, warn, info, debug, trace (or `warning`), optionally per target as in `lookout=debug,info`"
        );
        assert!(level_filter("lookout=loud").is_err());
        assert!(level_filter(" ").is_err());
    }
}
