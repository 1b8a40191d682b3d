//! # lookout-fleet
//!
//! Many hosts in one view without a home-made cluster: each lookout pushes its `/metrics`
//! figures to any Prometheus remote-write receiver ([`push`]), and a hub lookout reads every
//! host back through the engine's standard PromQL HTTP API ([`promql`], [`hosts`]).

pub mod config;
pub mod exposition;
pub mod http;
pub mod proto;
pub mod push;
pub mod queue;
pub mod stats;

pub use config::{ExportConfig, FleetConfig, RemoteWriteConfig};
pub use stats::PushStats;
pub mod history;
pub mod overview;
pub mod promql;
pub mod reader;
pub mod search;

pub use promql::QueryError;
pub use reader::Fleet;
