//! The PostgreSQL side of the gateway.
//!
//! Built so far: message framing, the startup packets, the listener's TLS
//! and the upstream connection with injected credentials. The agent-facing
//! listener and the relay build on these.

pub mod audit_trail;
pub mod catalog;
mod checks;
pub mod errors;
pub mod frame;
pub mod handshake;
pub mod listener;
mod params;
pub mod parity;
mod recorded;
pub mod relay;
pub mod rows;
mod selections;
pub mod startup;
pub mod upstream;

pub use frame::{Frame, FrameError};
pub use upstream::{Upstream, UpstreamConfig, UpstreamError, UpstreamTls};
