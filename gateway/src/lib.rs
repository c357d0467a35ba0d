//! Sluice: an identity-aware gateway that puts sandboxed WebAssembly policy in
//! the data path between AI agents and the systems they use.

pub mod admin;
pub mod audit;
pub mod cmd;
pub mod config;
pub mod http;
pub mod identity;
pub mod plugins;
pub mod postgres;
pub mod recording;
pub mod sql;
pub mod telemetry;
pub mod tls;
pub mod workers;
