//! The relay between an authenticated agent and its upstream session.
//!
//! Client to server: every simple Query and every Parse is analysed with the
//! PostgreSQL parser and checked by the connection's guardrails before it is
//! forwarded, and so is every Bind that carries parameters ([`super::checks`]).
//! A refused message is *replaced* by a statement that fails to
//! parse, carrying a per-refusal marker: the server then behaves exactly as
//! if the client's statement had failed (a transaction block is aborted, an
//! extended-protocol batch discards until Sync, ReadyForQuery reports the
//! true state), so client and server never disagree about transaction
//! state. Nothing else is forwarded in its place. The same goes for a
//! message whose length is right but whose body is malformed, which the
//! server would refuse with an ERROR and go on (08P01, or 22021 for a name
//! that is not UTF-8; see [`super::checks::malformed`]), and for a Parse or
//! `PREPARE` past the named statements the gateway keeps track of (54000,
//! see [`super::statements`]), and for an extended-protocol message naming
//! a prepared statement or portal over the 63 bytes PostgreSQL compares
//! names on (42622, see [`super::checks::name_too_long`]). Only a bad
//! length, after which messages cannot be told apart, ends the session.
//!
//! Server to client: the marked error is swapped for the refusal; result
//! rows go through the maskers in batches when the connection has any, read
//! by the description of the portal that returned them (the gateway
//! describes a portal the client executes without describing it, see
//! [`super::pipeline`]); errors, notices, notifications and reported
//! parameters carry values too and are masked as well
//! ([`super::messages`]). Data that cannot be masked (rows with no known
//! description, COPY out) is never forwarded: the session ends with an
//! error instead.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncWriteExt, BufWriter};

use tokio::sync::watch;

use crate::plugins::bindings::types::Session;
use crate::plugins::{PhaseSelections, PluginHost};
use crate::sql::Analyzer;

use super::audit_trail::Trail;
use super::catalog::Catalog;
use super::errors::{Severity, error_response, sqlstate};
use super::frame::{self, Frame, FrameError};
use super::parity;
use super::pipeline::Pipeline;
use super::upstream::ServerIo;

mod to_client;
mod to_server;

use to_client::server_to_client;
use to_server::{Answers, client_to_server};

const MAX_CLIENT_FRAME: usize = frame::DEFAULT_MAX_FRAME;
const MAX_SERVER_FRAME: usize = 1 << 30;
/// Messages awaiting the server's answer that the relay keeps track of
/// (see [`Pipeline::backlog`]).
const MAX_BACKLOG: usize = 10_000;
/// How long the session's last error may take to reach the client.
const FATAL_WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub struct RelayContext {
    pub host: Arc<PluginHost>,
    pub plugins: Vec<String>,
    pub analyzer: Arc<Analyzer>,
    pub session: Session,
    /// The session's audit records (write-ahead, verdicts, completions).
    pub audit: Arc<Trail>,
    /// Table names for the maskers' column metadata.
    pub catalog: Option<Arc<Catalog>>,
    /// When the session ends because its token expires.
    pub expires_at: Option<std::time::SystemTime>,
    /// The SQL phases the session's selective guardrails judge.
    pub phases: PhaseSelections,
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("client: {0}")]
    Client(FrameError),
    #[error("server: {0}")]
    Server(FrameError),
    #[error("{0}")]
    Unmaskable(String),
    /// The gateway ended the session (the client was told why).
    #[error("{0}")]
    Ended(String),
    /// The client sent what the gateway cannot follow; the session ends
    /// with this reason (SQLSTATE 0A000).
    #[error("{0}")]
    Unsupported(String),
    /// The session's token expired (with `end_sessions_at_token_expiry`).
    #[error("the token this session logged in with has expired")]
    TokenExpired,
}

/// State the two directions share.
#[derive(Default)]
struct Shared {
    /// Marker → the ErrorResponse to show instead of the server's.
    /// Marker → the batch it was sent in and the ErrorResponse to show
    /// instead of the server's. Dropped when its batch is answered: a failing
    /// message the server skipped (its batch had already failed) never
    /// comes back with its marker.
    refusals: HashMap<String, (u64, Frame)>,
    /// The session's prepared statements, and which reply answers which
    /// message.
    pipeline: Pipeline,
}

type Io = Pin<Box<dyn ServerIo>>;

/// How a session ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The client said goodbye (Terminate), which the server also received.
    Terminated,
    /// The client's connection closed without Terminate: the server may
    /// still be running its last statement.
    ClientVanished,
    /// The server closed the connection.
    ServerClosed,
}

impl Ending {
    pub fn as_str(&self) -> &'static str {
        match self {
            Ending::Terminated => "terminated",
            Ending::ClientVanished => "client_vanished",
            Ending::ServerClosed => "server_closed",
        }
    }
}

pub async fn run(client: Io, server: Io, ctx: RelayContext) -> Result<Ending, RelayError> {
    let (client_r, client_w) = tokio::io::split(client);
    let (server_r, server_w) = tokio::io::split(server);
    let shared = Arc::new(Mutex::new(Shared::default()));
    let marker = format!("sluice_refused_{}", ctx.session.id.replace('-', ""));
    let expiry = ctx.expires_at.map(|at| {
        let left = at
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        tokio::time::Instant::now() + left
    });
    let ctx = Arc::new(ctx);
    let (ready, fence) = parity::Fence::new();
    let (progress, progress_rx) = watch::channel(0);
    let up = client_to_server(
        client_r,
        server_w,
        ctx.clone(),
        shared.clone(),
        marker.clone(),
        Answers {
            fence,
            ready: ready.subscribe(),
            progress: progress_rx,
        },
    );
    let mut client_w = BufWriter::new(client_w);
    // Set while frames are being handed to `client_w`: a direction dropped
    // then may have left part of a frame on the wire.
    let mid_frame = AtomicBool::new(false);
    let down = server_to_client(
        server_r,
        &mut client_w,
        &mid_frame,
        ctx,
        shared,
        marker,
        (ready, progress),
    );
    // Either side ending ends the session, and so does its token expiring
    // when the connection asks for that.
    let expired = async {
        match expiry {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    let ended = tokio::select! {
        r = up => r,
        r = down => r,
        () = expired => Err(RelayError::TokenExpired),
    };
    let fatal = match &ended {
        Err(RelayError::Unsupported(why)) => Some((sqlstate::FEATURE_NOT_SUPPORTED, why.clone())),
        Err(RelayError::TokenExpired) => Some((
            sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
            "the token this session logged in with has expired; connect again with a fresh token"
                .to_string(),
        )),
        Err(RelayError::Client(e)) => client_fault(e),
        _ => None,
    };
    // After part of a frame the client could not read the error: it only
    // sees the connection close. A client that stopped reading does not hold
    // the session (and the upstream cancel that follows it) for long.
    if let Some((code, why)) = fatal.filter(|_| !mid_frame.load(Ordering::Relaxed)) {
        let f = error_response(Severity::Fatal, code, &why);
        let _ = tokio::time::timeout(FATAL_WRITE_TIMEOUT, async {
            client_w.write_all(&f.to_bytes()).await?;
            client_w.flush().await
        })
        .await;
    }
    ended
}

/// What a client whose messages the gateway can no longer delimit (a bad
/// length) is told before the session ends, as PostgreSQL does: its framing
/// is lost. A message whose length is right but whose body is malformed is
/// refused instead and the session goes on (see [`super::checks::malformed`]).
/// `None`: the client is gone.
fn client_fault(e: &FrameError) -> Option<(&'static str, String)> {
    let code = match e {
        FrameError::Closed | FrameError::Io(_) => return None,
        FrameError::NotUtf8 { .. } => sqlstate::CHARACTER_NOT_IN_REPERTOIRE,
        FrameError::BadLength(_)
        | FrameError::TooLarge { .. }
        | FrameError::Malformed { .. }
        | FrameError::Unterminated { .. }
        | FrameError::Truncated { .. }
        | FrameError::TrailingData { .. } => sqlstate::PROTOCOL_VIOLATION,
    };
    Some((
        code,
        format!("invalid message from the client: {e}; the session is closed"),
    ))
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}
