//! deepseek-watch: probes DeepSeek on a schedule, records every result in
//! SQLite, and tells its users the moment the service is usable again.
//!
//! Data flows one way: [`config`] -> [`schedule`] -> [`probe`] ->
//! [`result::ProbeResult`] -> [`store`]. The binary in `main.rs` only parses
//! arguments and maps outcomes to exit codes; everything else lives here.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod event;
pub mod logging;
pub mod notify;
pub mod outage;
pub mod probe;
pub mod result;
pub mod schedule;
pub mod scheduler;
pub mod service;
pub mod store;
pub mod tz;
