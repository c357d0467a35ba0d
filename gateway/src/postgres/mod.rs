//! The PostgreSQL side of the gateway.
//!
//! Built so far: message framing, the startup packets, the listener's TLS
//! and the upstream connection with injected credentials. The agent-facing
//! listener and the relay build on these.

pub mod audit_trail;
pub mod catalog;
pub mod errors;
pub mod frame;
pub mod handshake;
pub mod listener;
pub mod parity;
pub mod relay;
pub mod rows;
pub mod startup;
pub mod upstream;

/// The listener TLS now lives in `crate::tls`, shared with the HTTP listener.
pub use crate::tls;

pub use frame::{Frame, FrameError};
pub use upstream::{Upstream, UpstreamConfig, UpstreamError, UpstreamTls};
