//! # lookout-cloud
//!
//! The cloud domain behind the Concertim profile: users, teams (each with a billing account),
//! team roles, SSH key pairs, devices and racks with their power actions, metering of usage,
//! rating with a price list into exact money, and an invoice ledger with credits.
//!
//! Every cloud implements [`CloudBackend`]; [`local::LocalBackend`] needs no cloud at all (the
//! Docker engine holds the devices, lookout's SQL store holds identity and billing), and the
//! OpenStack backend plugs into the same trait. [`jwt`] verifies the tokens the listener
//! accepts.
//!
//! Must never depend on HTTP frameworks: errors carry a kind and a status number, and the
//! `lookout-api` crate maps them to responses.

pub mod backend;
pub mod error;
pub mod ids;
pub mod jwt;
pub mod keys;
pub mod ledger;
pub mod local;
pub mod metering;
pub mod model;
pub mod money;
pub mod openstack;
pub mod orders;
pub mod push;

pub use backend::{BoxFuture, CloudBackend};
pub use error::{CloudError, CloudResult};
pub use jwt::JwtVerifier;
pub use metering::PriceList;
pub use model::*;
pub use money::{Money, Price};
pub use openstack::{OpenStackBackend, OpenStackConfig};

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    now_ms() / 1000
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
