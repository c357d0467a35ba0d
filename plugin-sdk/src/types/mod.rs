//! The contract's data types (the `sluice:plugin/types` interface), shared by
//! all three worlds, with helpers for the common questions a plugin asks.
//!
//! The structs and enums are generated from `wit/plugin.wit`; their fields
//! and the WIT comments on them are the reference. Kebab-case WIT names become
//! Rust names: `statement-kind` is [`StatementKind`], `modifies-state` is
//! [`StatementFlags::MODIFIES_STATE`].

pub use crate::guardrail_world::sluice::plugin::types::*;

mod audit;
mod masking;
mod request;
mod verdict;

pub use verdict::DEFAULT_APPROVAL_TTL_SECONDS;
