//! The compatibility profiles: the routes of the services lookout replaces, with their paths,
//! field names, units and error shapes (see docs/compatibility.md). The native API is in
//! `routes`; the Concertim profile, on its own listener, is in `concertim`.

pub mod docker_stats;
pub mod iotconnect;
pub mod perf_history;
pub mod smart;
