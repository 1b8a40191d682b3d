//! Route groups. Each module is one API surface; handlers stay thin and read the snapshot.

pub mod alerts;
pub mod docker_stats;
pub mod fleet;
pub mod gpu;
pub mod history;
pub mod iotconnect;
pub mod native;
pub mod ops;
pub mod processes;
pub mod smart;
