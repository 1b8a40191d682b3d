//! # lookout
//!
//! The binary: command line, configuration, listeners (TLS 1.3), the sampler loop and
//! graceful shutdown. Thin on purpose: what it serves lives in `lookout-api`, what it
//! samples in `lookout-probe`.

mod alerts;
mod concertim;
mod concertim_push;
mod config;
mod config_error;
mod conn_limit;
mod data_dir;
mod env_secrets;
mod fleet;
mod listen;
mod logging;
mod serve;
mod tls;
mod work_sim;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use lookout_api::auth::{Scope, TokenFile};

#[derive(Parser)]
#[command(
    name = "lookout",
    version,
    about = "A secure, fast HTTP API over a machine, its containers and its cloud.",
    long_about = "A secure, fast HTTP API over a machine, its containers and its cloud.\n\n\
Without a subcommand, `lookout` runs `lookout serve` on embedded defaults: HTTPS (TLS 1.3 only) on \
127.0.0.1:8443 with a self-signed certificate kept in the data directory, and an admin token printed \
once on first start.\n\n\
Configuration: defaults < lookout.toml (or --config) < LOOKOUT_* environment (nested keys joined by \
`__`, e.g. LOOKOUT_SAMPLING__INTERVAL_MS) < flags. LOOKOUT_TOKEN adds one static admin token.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// `serve`'s flags, accepted without the subcommand since `serve` is the default.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(clap::Args, Default, Clone)]
struct ServeArgs {
    /// Address to listen on: IP:PORT, HOST:PORT (resolved at start) or :PORT (all IPv4
    /// interfaces) [default: 127.0.0.1:8443]
    #[arg(long, value_parser = listen::parse)]
    listen: Option<SocketAddr>,
    /// Serve plain HTTP instead of TLS (behind a reverse proxy only)
    #[arg(long)]
    http: bool,
    /// Directory for the certificate, token hashes and history
    #[arg(long, env = "LOOKOUT_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Configuration file (TOML) [default: ./lookout.toml if present]
    #[arg(long, env = "LOOKOUT_CONFIG")]
    config: Option<PathBuf>,
    /// History database: postgres://…, mysql://… (MariaDB too) or sqlite://PATH [default: SQLite in the data directory]
    #[arg(long)]
    store_url: Option<String>,
    /// Also serve the Concertim routes ([concertim] listen, default 127.0.0.1:42356; needs JWT_SECRET)
    #[arg(long)]
    concertim: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Sample the host and containers and serve the API (the default)
    Serve(ServeArgs),
    /// Manage API tokens (stored hashed in the data directory)
    Token {
        #[command(subcommand)]
        action: TokenAction,
        /// Directory holding tokens.json
        #[arg(long, global = true, env = "LOOKOUT_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Configuration file, to find the data directory
        #[arg(long, global = true, env = "LOOKOUT_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Alert rules: `export-rules` writes them as a Prometheus rules file
    Alerts {
        #[command(subcommand)]
        action: AlertsAction,
        /// Directory holding alert-rules.json
        #[arg(long, global = true, env = "LOOKOUT_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Configuration file with [[alerts.rules]]
        #[arg(long, global = true, env = "LOOKOUT_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Concertim profile tools: `hash-password` reads a password on stdin and prints the
    /// PBKDF2 hash `[concertim] admin_password` accepts
    Concertim {
        #[command(subcommand)]
        action: ConcertimAction,
    },
    /// Print the OpenAPI document
    Openapi,
    /// Serve a stand-in upstream `GET /api/work` (for demos, tests and benchmarks of /api/smart)
    WorkSim(WorkSimArgs),
}

#[derive(clap::Args)]
struct WorkSimArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8089")]
    listen: SocketAddr,
    /// Seed of the per-request random draw (same seed, same behaviour)
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Smallest latency, ms (uniform distribution)
    #[arg(long, default_value_t = 100)]
    latency_min_ms: u64,
    /// Largest latency, ms
    #[arg(long, default_value_t = 600)]
    latency_max_ms: u64,
    /// Share of requests answered 500
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
    /// Share answered 200 with a body that is not {"time": <int>}
    #[arg(long, default_value_t = 0.0)]
    invalid_json_rate: f64,
    /// Share that hang (never answer in practice)
    #[arg(long, default_value_t = 0.0)]
    hang_rate: f64,
}

#[derive(Subcommand)]
enum AlertsAction {
    /// Write every rule (config file and API) as a Prometheus rules file (`promtool check rules`)
    ExportRules {
        /// Output file [default: stdout]
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ConcertimAction {
    /// Hash the password read on stdin (its first line) for `[concertim] admin_password`
    HashPassword,
}

#[derive(Subcommand)]
enum TokenAction {
    /// Create a token and print it once
    Create {
        #[arg(long)]
        name: String,
        /// read | control | admin
        #[arg(long, default_value = "read")]
        scope: Scope,
    },
    /// List token names and scopes (never the tokens)
    List,
    /// Revoke a token by name
    Revoke { name: String },
}

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve(cli.serve)) {
        Command::Serve(args) => serve_command(args),
        Command::Token {
            action,
            data_dir,
            config,
        } => token_command(action, data_dir, config),
        Command::Alerts {
            action: AlertsAction::ExportRules { output },
            data_dir,
            config,
        } => config::load(&config::Overrides {
            config_file: config,
            data_dir,
            ..Default::default()
        })
        .and_then(|cfg| alerts::export_rules(&cfg, output)),
        Command::WorkSim(a) => work_sim_command(a),
        Command::Concertim {
            action: ConcertimAction::HashPassword,
        } => concertim::hash_password_command(),
        Command::Openapi => match lookout_api::openapi().to_pretty_json() {
            Ok(json) => print_out(&format!("{json}\n")),
            Err(e) => Err(anyhow::anyhow!(e)),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lookout: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve_command(args: ServeArgs) -> anyhow::Result<()> {
    let cfg = config::load(&config::Overrides {
        config_file: args.config,
        listen: args.listen,
        http: args.http,
        data_dir: args.data_dir,
        concertim: args.concertim,
        store_url: args.store_url,
    })?;
    let _guard = logging::init(&cfg.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get().min(4)))
        .max_blocking_threads(8)
        .enable_all()
        .build()?;
    runtime.block_on(serve::run(cfg))
}

/// Writes to stdout; a reader that went away (`lookout openapi | head -1`) ends the command
/// quietly, as it does for any Unix filter, instead of a panic.
fn print_out(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn work_sim_command(a: WorkSimArgs) -> anyhow::Result<()> {
    let _guard = logging::init(&config::LogConfig::default())?;
    let cfg = work_sim::WorkSimConfig {
        seed: a.seed,
        latency_min_ms: a.latency_min_ms,
        latency_max_ms: a.latency_max_ms,
        fail_rate: a.fail_rate,
        invalid_json_rate: a.invalid_json_rate,
        hang_rate: a.hang_rate,
        ..Default::default()
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(work_sim::run(a.listen, cfg))
}

fn token_command(
    action: TokenAction,
    data_dir: Option<PathBuf>,
    config_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let cfg = config::load(&config::Overrides {
        config_file,
        data_dir,
        ..Default::default()
    })?;
    let file = TokenFile::new(cfg.data_dir.join("tokens.json"));
    match action {
        TokenAction::Create { name, scope } => {
            let token = file.create(&name, scope)?;
            eprintln!("created token {name:?} with scope {scope}; it is shown once, store it now:");
            print_out(&format!("{token}\n"))?;
        }
        TokenAction::List => {
            let tokens = file.load()?;
            if tokens.is_empty() {
                eprintln!("no tokens in {}", file.path().display());
            }
            let mut listing = String::new();
            for t in tokens {
                let created = time::OffsetDateTime::from_unix_timestamp(t.created_at)
                    .ok()
                    .and_then(|d| {
                        d.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .unwrap_or_default();
                listing.push_str(&format!("{}\t{}\t{}\n", t.name, t.scope, created));
            }
            print_out(&listing)?;
        }
        TokenAction::Revoke { name } => {
            file.revoke(&name)?;
            eprintln!("revoked {name:?}; a running lookout refuses it from now on");
        }
    }
    Ok(())
}
