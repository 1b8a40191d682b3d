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
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match cfg.format.as_str() {
        "json" => true,
        "human" => false,
        _ => !std::io::stderr().is_terminal(),
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
