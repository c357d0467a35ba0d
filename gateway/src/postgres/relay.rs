//! The relay between an authenticated agent and its upstream session.
//!
//! Client to server: every simple Query and every Parse is analysed with the
//! PostgreSQL parser and checked by the connection's guardrails before it is
//! forwarded, and so is every Bind that carries parameters ([`checks`]). A refused message is *replaced* by a statement that fails to
//! parse, carrying a per-refusal marker: the server then behaves exactly as
//! if the client's statement had failed (a transaction block is aborted, an
//! extended-protocol batch discards until Sync, ReadyForQuery reports the
//! true state), so client and server never disagree about transaction
//! state. Nothing else is forwarded in its place.
//!
//! Server to client: the marked error is swapped for the refusal; result
//! rows go through the maskers in batches when the connection has any, read
//! by the description of the portal that returned them (the gateway
//! describes a portal the client executes without describing it, see
//! [`super::pipeline`]). Data that cannot be masked (rows with no known
//! description, COPY out) is never forwarded: the session ends with an
//! error instead.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncWriteExt, BufReader, BufWriter, ReadHalf, WriteHalf};

use tokio::sync::watch;

use crate::plugins::PluginHost;
use crate::plugins::bindings::types::{Session, SqlPhase, StatementFlags};
use crate::sql::Analyzer;

use super::audit_trail::Trail;
use super::catalog::{Catalog, SchemaWatch};
use super::checks;
use super::errors::{Severity, error_response, sqlstate};
use super::frame::{self, BodyReader, Frame, FrameError};
use super::params;
use super::parity;
use super::pipeline::{CopyIn, Described, Pipeline};
use super::recorded::Bind;
use super::results::{MASK_BATCH, ResultSet, Results, flush_rows, masking_chain, select_columns};
use super::rows;
use super::selections::Selections;
use super::statements::{Lookup, Prepared, Statements};
use super::upstream::ServerIo;

const MAX_CLIENT_FRAME: usize = frame::DEFAULT_MAX_FRAME;
const MAX_SERVER_FRAME: usize = 1 << 30;
/// Messages awaiting the server's answer that the relay keeps track of
/// (see [`Pipeline::backlog`]).
const MAX_BACKLOG: usize = 10_000;

pub struct RelayContext {
    pub host: Arc<PluginHost>,
    pub plugins: Vec<String>,
    pub analyzer: Arc<Analyzer>,
    pub session: Session,
    /// The session's audit records (write-ahead, verdicts, completions).
    pub audit: Arc<Trail>,
    /// Table names for the maskers' column metadata.
    pub catalog: Option<Arc<Catalog>>,
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
}

/// State the two directions share.
#[derive(Default)]
struct Shared {
    /// Marker → the ErrorResponse to show instead of the server's.
    refusals: HashMap<String, Frame>,
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
    let down = server_to_client(
        server_r,
        &mut client_w,
        ctx,
        shared,
        marker,
        (ready, progress),
    );
    // Either side ending ends the session.
    let ended = tokio::select! {
        r = up => r,
        r = down => r,
    };
    if let Err(RelayError::Unsupported(why)) = &ended {
        let f = error_response(Severity::Fatal, sqlstate::FEATURE_NOT_SUPPORTED, why);
        let _ = client_w.write_all(&f.to_bytes()).await;
        let _ = client_w.flush().await;
    }
    ended
}

/// What the client-to-server direction waits on the server's answers with.
struct Answers {
    fence: parity::Fence,
    /// ReadyForQuery messages relayed.
    ready: watch::Receiver<u64>,
    /// Bumped on each CopyInResponse, ErrorResponse and ReadyForQuery.
    progress: watch::Receiver<u64>,
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

async fn client_to_server(
    client: ReadHalf<Io>,
    server: WriteHalf<Io>,
    ctx: Arc<RelayContext>,
    shared: Arc<Mutex<Shared>>,
    marker: String,
    answers: Answers,
) -> Result<Ending, RelayError> {
    let Answers {
        mut fence,
        ready: mut answered,
        mut progress,
    } = answers;
    let mut client = BufReader::new(client);
    let mut server = BufWriter::new(server);
    let mut markers = Markers {
        prefix: marker,
        issued: 0,
    };
    // A message of this extended-protocol batch was refused: the server
    // discards the rest of the batch until Sync.
    let mut batch_refused = false;
    // Set by `check` when an allowed statement runs code out of the analysis' sight.
    let mut unseen = false;
    // The portal the last forwarded message described.
    let mut described: Option<String> = None;
    // Extended-protocol messages were forwarded since the last Sync.
    let mut extended_open = false;
    // A COPY … FROM STDIN was forwarded and the client has not ended its
    // data: whether it has sent any.
    let mut copying: Option<bool> = None;
    loop {
        let Some(f) = frame::read_frame(&mut client, MAX_CLIENT_FRAME)
            .await
            .map_err(RelayError::Client)?
        else {
            return Ok(Ending::ClientVanished);
        };
        // The server ignores a Query in a failed batch, and cannot take one
        // while it reads COPY data: the batches would no longer be counted
        // as the server counts them.
        if matches!(f.tag, b'Q' | b'F') && (extended_open || copying.is_some()) {
            return Err(RelayError::Unsupported(
                "a Query or FunctionCall before the Sync of an extended-protocol batch, or during \
                 COPY FROM STDIN, is not supported through the gateway; send Sync (or end the \
                 COPY) first"
                    .into(),
            ));
        }
        let refused_before = markers.issued;
        let out = match f.tag {
            b'Q' => {
                let text = cstr(&f.body, "Query").map_err(RelayError::Client)?;
                let checked = match fenced(&mut fence, &mut server, &text).await? {
                    Err(why) => Err(checks::fence_refusal(why)),
                    Ok(()) => {
                        checks::check(&ctx, &text, SqlPhase::SimpleQuery, None, &mut unseen).await
                    }
                };
                match checked {
                    Ok(allowed) => {
                        let mut s = lock(&shared);
                        s.pipeline.running(&allowed.statements, allowed.record);
                        if copies_in(&allowed.statements) {
                            s.pipeline.copy_sent();
                            copying = Some(false);
                        }
                        f
                    }
                    Err(refusal) => failing_query(&markers.issue(&shared, refusal)),
                }
            }
            b'P' => {
                let mut r = BodyReader::new(&f.body, "Parse");
                let name = r.cstr().map_err(RelayError::Client)?.to_string();
                let text = r.cstr().map_err(RelayError::Client)?.to_string();
                let declared = params::oid_list(&mut r).map_err(RelayError::Client)?;
                let checked = match fenced(&mut fence, &mut server, &text).await? {
                    Err(why) => Err(checks::fence_refusal(why)),
                    Ok(()) => {
                        checks::check(
                            &ctx,
                            &text,
                            SqlPhase::Parse,
                            Some(name.clone()),
                            &mut unseen,
                        )
                        .await
                    }
                };
                match checked {
                    Ok(allowed) => {
                        let statement = Prepared::new(
                            &text,
                            allowed.statements,
                            declared,
                            allowed.record,
                            false,
                        );
                        lock(&shared).pipeline.parsing(name, statement);
                        f
                    }
                    Err(refusal) => failing_parse(&name, &markers.issue(&shared, refusal)),
                }
            }
            // Refused like an Execute; the server then discards the
            // portal's Describe and Execute until Sync.
            b'B' => {
                let bind = Bind::parse(&f.body).map_err(RelayError::Client)?;
                let statement = if bind.parameter_count() == 0 {
                    None
                } else {
                    resolve(&shared, &mut server, &mut answered, bind.statement).await?
                };
                match checks::check_bind(&ctx, &bind, statement.as_deref()).await {
                    None => {
                        ctx.audit.bind(&bind);
                        f
                    }
                    Some(refusal) => {
                        let m = markers.issue(&shared, refusal);
                        failing_parse(&m, &m)
                    }
                }
            }
            // A FunctionCall names its function by OID, out of the analyser's
            // sight: refused, like a statement a guardrail denies.
            b'F' => {
                let why = "FunctionCall messages are not allowed through the gateway; call the function in SQL";
                ctx.audit
                    .refused("", SqlPhase::FunctionCall, "function-call", why);
                let refusal =
                    error_response(Severity::Error, sqlstate::INSUFFICIENT_PRIVILEGE, why);
                failing_query(&markers.issue(&shared, refusal))
            }
            // The server will skip it: no write-ahead record claims it ran.
            b'E' if batch_refused => f,
            // Write-ahead for executions the Parse record does not cover;
            // refused like a statement, by a Parse that fails with the marker.
            b'E' => {
                let portal = cstr(&f.body, "Execute").map_err(RelayError::Client)?;
                let statement = match ctx.audit.portal_statement(&portal) {
                    Some(name) => resolve(&shared, &mut server, &mut answered, &name).await?,
                    None => None,
                };
                match ctx.audit.execute(&portal, statement.as_deref()).await {
                    None => {
                        if let Some(s) = &statement {
                            if Statements::changes_namespace(&s.statements) {
                                lock(&shared).pipeline.running(&s.statements, s.record);
                            }
                            if copies_in(&s.statements) {
                                lock(&shared).pipeline.copy_sent();
                                copying = Some(false);
                            }
                        }
                        // Rows are masked by their portal's description:
                        // ask for it when the client did not.
                        if described.as_deref() != Some(portal.as_str()) && may_mask(&ctx) {
                            lock(&shared).pipeline.describing_for_gateway();
                            frame::write_frame(&mut server, &describe_portal(&portal))
                                .await
                                .map_err(|e| RelayError::Server(e.into()))?;
                        }
                        f
                    }
                    Some(refusal) => {
                        let m = markers.issue(&shared, refusal);
                        failing_parse(&m, &m)
                    }
                }
            }
            b'D' => {
                lock(&shared).pipeline.describing(&f.body);
                f
            }
            // A malformed Close goes on for the server to refuse.
            b'C' => {
                let mut r = BodyReader::new(&f.body, "Close");
                if let (Ok(kind), Ok(name)) = (r.u8(), r.cstr()) {
                    lock(&shared).pipeline.closing(kind, name);
                }
                f
            }
            _ => f,
        };
        if lock(&shared).pipeline.backlog() > MAX_BACKLOG {
            return Err(RelayError::Unsupported(format!(
                "more than {MAX_BACKLOG} Parse, Close and Describe messages await the server's \
                 answer; send Sync"
            )));
        }
        let ends_batch = match (out.tag, copying) {
            (b'Q', _) | (b'S', None) => true,
            (b'S', Some(true)) => {
                return Err(RelayError::Unsupported(
                    "a Sync among COPY data messages is not supported through the gateway".into(),
                ));
            }
            // Ignored if the server began the COPY.
            (b'S', Some(false)) => {
                let reading = copy_began(&shared, &mut server, &mut progress).await?;
                if !reading {
                    copying = None;
                }
                !reading
            }
            (b'd', Some(_)) => {
                copying = Some(true);
                false
            }
            (b'c' | b'f', _) => {
                copying = None;
                lock(&shared).pipeline.copy_ended();
                false
            }
            _ => false,
        };
        if ends_batch {
            lock(&shared).pipeline.batch_sent();
            batch_refused = false;
            extended_open = false;
        } else if markers.issued != refused_before {
            batch_refused = true;
        }
        if matches!(out.tag, b'P' | b'B' | b'D' | b'E' | b'C') {
            extended_open = true;
        }
        fence.forwarded(out.tag, ends_batch, std::mem::take(&mut unseen));
        if out.tag == b'D' {
            let mut r = BodyReader::new(&out.body, "Describe");
            described = match (r.u8(), r.cstr()) {
                (Ok(b'P'), Ok(portal)) => Some(portal.to_string()),
                _ => None,
            };
        } else if out.tag != b'H' {
            described = None;
        }
        let terminate = out.tag == b'X';
        if ends_batch {
            ctx.audit.batch_sent();
        }
        frame::write_frame(&mut server, &out)
            .await
            .map_err(|e| RelayError::Server(e.into()))?;
        // Pipelined messages go out together; flush once the client pauses.
        if client.buffer().is_empty() {
            server
                .flush()
                .await
                .map_err(|e| RelayError::Server(e.into()))?;
        }
        if terminate {
            return Ok(Ending::Terminated);
        }
    }
}

/// Refusal markers: a refused message is replaced by one that fails at the
/// server with a fresh marker in its error, which maps the error back to
/// the refusal. Fixed-width counters: no marker is a prefix of another.
struct Markers {
    prefix: String,
    issued: u64,
}

impl Markers {
    fn issue(&mut self, shared: &Mutex<Shared>, refusal: Frame) -> String {
        self.issued += 1;
        let m = format!("{}_{:010}", self.prefix, self.issued);
        lock(shared).refusals.insert(m.clone(), refusal);
        m
    }
}

/// Waits, when `text` must, until the server has answered the unseen code
/// sent before it (see [`parity::Fence`]); what was sent must reach the
/// server first.
async fn fenced(
    fence: &mut parity::Fence,
    server: &mut BufWriter<WriteHalf<Io>>,
    text: &str,
) -> Result<Result<(), &'static str>, RelayError> {
    if parity::lexing_sensitive(text) {
        server
            .flush()
            .await
            .map_err(|e| RelayError::Server(e.into()))?;
    }
    Ok(fence.before(text).await)
}

/// The statement `name` as the server will bind it. While that depends on
/// an earlier batch, waits until the server has answered it (what was sent
/// must reach the server first).
async fn resolve(
    shared: &Mutex<Shared>,
    server: &mut BufWriter<WriteHalf<Io>>,
    answered: &mut watch::Receiver<u64>,
    name: &str,
) -> Result<Option<Arc<Prepared>>, RelayError> {
    loop {
        let lookup = lock(shared).pipeline.statement(name);
        let batch = match lookup {
            Lookup::Ready(statement) => return Ok(statement),
            Lookup::AfterBatch(batch) => batch,
        };
        server
            .flush()
            .await
            .map_err(|e| RelayError::Server(e.into()))?;
        if answered.wait_for(|n| *n > batch).await.is_err() {
            return Err(RelayError::Ended("the server connection ended".into()));
        }
    }
}

/// Whether the statements read COPY data from the client.
fn copies_in(statements: &[crate::plugins::bindings::types::SqlStatement]) -> bool {
    statements
        .iter()
        .any(|s| s.flags.contains(StatementFlags::COPY_FROM_CLIENT))
}

/// Whether the server began the COPY … FROM STDIN sent last (and reads its
/// data) or failed it; waits for its answer (what was sent must reach the
/// server first).
async fn copy_began(
    shared: &Mutex<Shared>,
    server: &mut BufWriter<WriteHalf<Io>>,
    progress: &mut watch::Receiver<u64>,
) -> Result<bool, RelayError> {
    server
        .flush()
        .await
        .map_err(|e| RelayError::Server(e.into()))?;
    loop {
        progress.borrow_and_update();
        match lock(shared).pipeline.copy_state() {
            CopyIn::Pending(_) => {}
            CopyIn::Reading => return Ok(true),
            CopyIn::Idle | CopyIn::Declined => return Ok(false),
        }
        if progress.changed().await.is_err() {
            return Err(RelayError::Ended("the server connection ended".into()));
        }
    }
}

/// Whether rows of this connection may have to be masked (a configured
/// plugin that is missing could be a masker).
fn may_mask(ctx: &RelayContext) -> bool {
    ctx.host
        .chain(&ctx.plugins)
        .map_or(true, |chain| chain.has_maskers())
}

/// A Describe of portal `portal`.
fn describe_portal(portal: &str) -> Frame {
    Frame::new(b'D', format!("P{portal}\0").into_bytes())
}

/// A Query whose text is the marker: it fails to parse.
fn failing_query(marker: &str) -> Frame {
    Frame::new(b'Q', format!("{marker}\0").into_bytes())
}

/// A Parse of statement `name` whose text is the marker: it fails to parse,
/// and the server discards the rest of the batch until Sync.
fn failing_parse(name: &str, marker: &str) -> Frame {
    Frame::new(b'P', format!("{name}\0{marker}\0\0\0").into_bytes())
}

fn cstr(body: &[u8], what: &'static str) -> Result<String, FrameError> {
    Ok(BodyReader::new(body, what).cstr()?.to_string())
}

async fn server_to_client(
    server: ReadHalf<Io>,
    client: &mut BufWriter<WriteHalf<Io>>,
    ctx: Arc<RelayContext>,
    shared: Arc<Mutex<Shared>>,
    marker: String,
    (ready, progress): (watch::Sender<u64>, watch::Sender<u64>),
) -> Result<Ending, RelayError> {
    let mut server = BufReader::new(server);
    let mut results = Results::Idle;
    let mut schema_watch = SchemaWatch::default();
    let mut selections = Selections::default();
    loop {
        let Some(f) = frame::read_frame(&mut server, MAX_SERVER_FRAME)
            .await
            .map_err(RelayError::Server)?
        else {
            return Ok(Ending::ServerClosed);
        };
        if let Some(catalog) = &ctx.catalog {
            schema_watch.observe(catalog, &f);
        }
        let mut out = vec![];
        match f.tag {
            b'E' => {
                let message = frame::error_fields(&f.body)
                    .into_iter()
                    .find(|(c, _)| *c == b'M')
                    .map(|(_, m)| m)
                    .unwrap_or_default();
                lock(&shared).pipeline.failed();
                progress.send_modify(|n| *n += 1);
                let swapped = if message.contains(&marker) {
                    let mut s = lock(&shared);
                    let key = s
                        .refusals
                        .keys()
                        .find(|k| message.contains(k.as_str()))
                        .cloned();
                    key.and_then(|k| s.refusals.remove(&k))
                } else {
                    None
                };
                if let Err(e) = flush_rows(&ctx, &mut results, &mut out).await {
                    return unmaskable(client, &e.to_string()).await;
                }
                results = Results::Idle;
                out.push(swapped.unwrap_or(f));
            }
            b'S' => {
                let mut r = BodyReader::new(&f.body, "ParameterStatus");
                let name = r.cstr().map_err(RelayError::Server)?;
                let value = r.cstr().map_err(RelayError::Server)?;
                if let Some(why) = parity::parameter_status_refusal(name, value) {
                    return end_session(client, &why).await;
                }
                out.push(f);
            }
            b'1' => {
                lock(&shared).pipeline.parse_complete();
                out.push(f);
            }
            b'3' => {
                lock(&shared).pipeline.close_complete();
                out.push(f);
            }
            b't' => {
                lock(&shared).pipeline.parameter_description(&f.body);
                out.push(f);
            }
            b'T' => {
                let described = lock(&shared).pipeline.row_description();
                if described != Described::Statement {
                    let columns =
                        rows::parse_row_description(&f.body).map_err(RelayError::Server)?;
                    results = match masking_chain(&ctx) {
                        Err(why) => return unmaskable(client, &why).await,
                        Ok(None) => Results::Plain,
                        Ok(Some(chain)) => Results::Masked(ResultSet::new(columns, chain)),
                    };
                }
                if described == (Described::Portal { injected: true }) {
                    // The gateway's own Describe: the recording may name the
                    // columns, the client did not ask.
                    ctx.audit.observe(std::slice::from_ref(&f));
                } else {
                    out.push(f);
                }
            }
            b'n' => {
                let described = lock(&shared).pipeline.row_description();
                if described != Described::Statement {
                    results = Results::Idle;
                }
                if described != (Described::Portal { injected: true }) {
                    out.push(f);
                }
            }
            b'D' => {
                if matches!(results, Results::Idle) {
                    // Rows the gateway cannot read: with a masker, never sent.
                    results = match masking_chain(&ctx) {
                        Err(why) => return unmaskable(client, &why).await,
                        Ok(None) => Results::Plain,
                        Ok(Some(_)) => {
                            return unmaskable(client, "result rows arrived without a description")
                                .await;
                        }
                    };
                }
                if let Results::Masked(set) = &mut results
                    && set.selection.is_none()
                {
                    match select_columns(&ctx, set, &mut selections).await {
                        Err(why) => return unmaskable(client, &why).await,
                        // No masker wants any of these columns.
                        Ok(selection) if selection.is_empty() => results = Results::Plain,
                        Ok(selection) => set.selection = Some(selection),
                    }
                }
                match &mut results {
                    Results::Masked(set) => {
                        let mut cells =
                            rows::parse_data_row(&f.body).map_err(RelayError::Server)?;
                        for (cell, column) in cells.iter_mut().zip(&set.columns) {
                            rows::to_masker(column, cell);
                        }
                        set.pending.push(cells);
                        set.frames.push(f);
                        if set.pending.len() >= MASK_BATCH
                            && let Err(e) = flush_rows(&ctx, &mut results, &mut out).await
                        {
                            return unmaskable(client, &e.to_string()).await;
                        }
                    }
                    _ => out.push(f),
                }
            }
            b'G' => {
                lock(&shared).pipeline.copy_in_response();
                progress.send_modify(|n| *n += 1);
                out.push(f);
            }
            b'H' => match masking_chain(&ctx) {
                Ok(None) => out.push(f),
                Ok(Some(_)) => return unmaskable(client, "COPY data cannot be masked").await,
                Err(why) => return unmaskable(client, &why).await,
            },
            b'C' | b'I' | b's' | b'Z' => {
                if let Err(e) = flush_rows(&ctx, &mut results, &mut out).await {
                    return unmaskable(client, &e.to_string()).await;
                }
                // A suspended portal resumes with the same columns.
                if f.tag != b's' {
                    results = Results::Idle;
                }
                match f.tag {
                    b'C' => lock(&shared).pipeline.command_complete(&f.body),
                    b'Z' => {
                        lock(&shared).pipeline.ready();
                        ready.send_modify(|n| *n += 1);
                        progress.send_modify(|n| *n += 1);
                    }
                    _ => {}
                }
                out.push(f);
            }
            _ => out.push(f),
        }
        ctx.audit.observe(&out);
        for f in &out {
            frame::write_frame(client, f)
                .await
                .map_err(|e| RelayError::Client(e.into()))?;
        }
        if server.buffer().is_empty() {
            client
                .flush()
                .await
                .map_err(|e| RelayError::Client(e.into()))?;
        }
    }
}

async fn unmaskable(
    client: &mut BufWriter<WriteHalf<Io>>,
    why: &str,
) -> Result<Ending, RelayError> {
    let message = format!("{why}; the session is closed so that no unmasked data is sent");
    end_session(client, &message).await
}

/// Ends the session with a FATAL error the client sees.
async fn end_session(
    client: &mut BufWriter<WriteHalf<Io>>,
    message: &str,
) -> Result<Ending, RelayError> {
    let f = error_response(Severity::Fatal, sqlstate::INSUFFICIENT_PRIVILEGE, message);
    let _ = client.write_all(&f.to_bytes()).await;
    let _ = client.flush().await;
    Err(RelayError::Ended(message.to_string()))
}
