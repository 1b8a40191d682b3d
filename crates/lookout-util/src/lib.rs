//! # lookout-util — the helpers every lookout crate shares
//!
//! - [`clock`]: wall-clock time as Unix milliseconds or seconds;
//! - [`fs`]: secrets on disk — atomic mode-0600 writes, advisory locks, directory watches.
//!
//! **This crate must never depend on another lookout crate, on HTTP crates or on sqlx**: it
//! sits below every other crate (see `docs/architecture.md`).

pub mod clock;
pub mod fs;
