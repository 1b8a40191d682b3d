//! # lookout-probe
//!
//! Reads the machine into plain sample types ([`model`]): the host from `/proc` and `statvfs`
//! (under a configurable proc/sys root, so a container can read its host), and every
//! container from its cgroup, named by its engine (Docker, Podman) from the engine's events. Rates and percentages are pure functions over two
//! readings, tested on their own.
//!
//! Must never depend on HTTP, storage or configuration crates: it produces samples, others
//! serve and keep them.

pub mod cgroup;
pub mod containers;
pub mod docker;
pub mod gpu;
pub mod host;
pub mod model;
pub mod procs;
pub mod sampler;
pub mod sensors;

pub use model::*;
pub use sampler::Sampler;

/// Errors from reading the machine.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {what}: {detail}")]
    Parse { what: &'static str, detail: String },
    #[error("docker engine: {0}")]
    Docker(String),
    #[error("no such container: {0}")]
    NoSuchContainer(String),
    #[error("{0}")]
    Conflict(String),
}
