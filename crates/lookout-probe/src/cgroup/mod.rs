//! Containers read straight from their cgroups, the way cAdvisor does: the engine is asked
//! only for names, labels and lifecycle ([`crate::docker`]), and each tick costs a few file
//! reads per container instead of one engine stats stream per container.
//!
//! - [`path`]: which container a cgroup path names (Docker's two layouts, Podman,
//!   containerd, Kubernetes, systemd scopes);
//! - [`files`]: pure parsers, one per cgroup file, v1 and v2;
//! - [`reader`]: finds the containers' cgroups under the host's cgroup mount and turns two
//!   readings into `docker stats` figures.

pub mod files;
pub mod path;
pub mod reader;

pub use reader::{CgroupContainer, CgroupProbe};
