//! The PostgreSQL side of the gateway.
//!
//! The listener answers the startup (TLS, the agent's token, the access
//! policy), opens the upstream connection with injected credentials, and
//! hands both to the relay, which checks, records and masks what passes.

pub mod audit_trail;
pub mod binary;
pub mod catalog;
mod checks;
pub mod errors;
pub mod frame;
pub mod handshake;
pub mod listener;
mod messages;
mod params;
pub mod parity;
mod pipeline;
mod recorded;
pub mod relay;
mod results;
pub mod rows;
mod selections;
mod settings;
pub mod startup;
mod statements;
pub mod upstream;

pub use frame::{Frame, FrameError};
pub use upstream::{Upstream, UpstreamConfig, UpstreamError, UpstreamTls};
