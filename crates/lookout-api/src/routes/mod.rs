//! The native API's route groups (the compatibility profiles are in `profiles`). Each module
//! is one API surface; handlers stay thin and read the snapshot.

pub mod alerts;
pub mod fleet;
pub mod gpu;
pub mod history;
pub mod native;
pub mod ops;
pub mod processes;
