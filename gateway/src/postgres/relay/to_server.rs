//! Client to server: each message checked, recorded and forwarded, or
//! replaced by one that fails the same way at the server (see the parent
//! module); the batch bookkeeping the server's answers are matched with.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncWriteExt, BufReader, BufWriter, ReadHalf, WriteHalf};
use tokio::sync::watch;

use crate::plugins::bindings::types::{SqlPhase, SqlStatement, StatementFlags};

use super::{Ending, Io, MAX_BACKLOG, MAX_CLIENT_FRAME, RelayContext, RelayError, Shared, lock};
use crate::postgres::checks;
use crate::postgres::errors::{Severity, error_response, sqlstate};
use crate::postgres::frame::{self, BodyReader, Frame, FrameError};
use crate::postgres::params;
use crate::postgres::parity;
use crate::postgres::pipeline::CopyIn;
use crate::postgres::recorded::Bind;
use crate::postgres::statements::{Effect, Lookup, Prepared, Room, Statements};

/// What the client-to-server direction waits on the server's answers with.
pub(super) struct Answers {
    pub(super) fence: parity::Fence,
    /// ReadyForQuery messages relayed.
    pub(super) ready: watch::Receiver<u64>,
    /// Bumped on each CopyInResponse, ErrorResponse and ReadyForQuery.
    pub(super) progress: watch::Receiver<u64>,
}

pub(super) async fn client_to_server(
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
    let mut copying: Option<usize> = None;
    loop {
        let Some(f) = frame::read_frame(&mut client, MAX_CLIENT_FRAME)
            .await
            .map_err(RelayError::Client)?
        else {
            return Ok(Ending::ClientVanished);
        };
        // A COPY the server failed (or skipped) reads no data.
        if copying.is_some()
            && matches!(
                lock(&shared).pipeline.copy_state(),
                CopyIn::Declined | CopyIn::Idle
            )
        {
            copying = None;
        }
        // While the server reads COPY data it takes nothing else.
        if copying.is_some() && !matches!(f.tag, b'd' | b'c' | b'f' | b'S' | b'H' | b'X') {
            return Err(RelayError::Unsupported(format!(
                "message {:?} during COPY FROM STDIN is not supported through the gateway; end \
                 the COPY first",
                f.tag as char
            )));
        }
        // A Query inside an unfinished extended-protocol batch (asyncpg
        // sends Parse, Describe, Flush, then a Query) runs unless the batch
        // failed, in which case the server skips it and never answers: the
        // gateway ends the batch with a Sync of its own first, whose
        // ReadyForQuery it keeps from the client, so every Query is answered.
        if matches!(f.tag, b'Q' | b'F') && extended_open {
            lock(&shared).pipeline.sync_for_gateway();
            fence.forwarded(b'S', true, false);
            frame::write_frame(&mut server, &Frame::new(b'S', Vec::new()))
                .await
                .map_err(|e| RelayError::Server(e.into()))?;
            batch_refused = false;
            extended_open = false;
        }
        let refused_before = markers.issued;
        // A statement or portal name the server compares on its first 63
        // bytes only: refused (even in a batch the gateway already refused,
        // where the server skips it anyway), so that no such name is ever
        // forwarded or tracked apart from one the server takes for the same.
        // The failing Parse names the marker, not the client's name.
        let overlong = overlong_name(&f);
        let out = match f.tag {
            _ if let Some((phase, portal, name)) = &overlong => {
                let refusal = checks::name_too_long(&ctx, *phase, *portal, name);
                let m = markers.issue(&shared, refusal);
                failing_parse(&m, &m)
            }
            b'Q' => match query_text(&f.body) {
                Err(e) => {
                    let refusal = checks::malformed(&ctx, SqlPhase::SimpleQuery, e)?;
                    failing_query(&markers.issue(&shared, refusal))
                }
                Ok(raw) => {
                    let phase = SqlPhase::SimpleQuery;
                    let checked = 'check: {
                        let text = match checks::sql_text(&ctx, raw, phase) {
                            Ok(text) => text,
                            Err(refusal) => break 'check Err(refusal),
                        };
                        if let Err(why) = fenced(&mut fence, &mut server, text).await? {
                            break 'check Err(checks::fence_refusal(why));
                        }
                        let statements = match checks::analyse(&ctx, text, phase, &mut unseen).await
                        {
                            Ok(statements) => statements,
                            Err(refusal) => break 'check Err(refusal),
                        };
                        let effects = Statements::effects(&statements);
                        if !room(&shared, &mut server, &mut answered, &effects).await? {
                            break 'check Err(checks::statement_limit(&ctx, text, phase));
                        }
                        checks::judge(&ctx, text, phase, None, statements).await
                    };
                    match checked {
                        Ok(allowed) => {
                            let mut s = lock(&shared);
                            s.pipeline.running(&allowed.statements, allowed.record);
                            let copies = copies_in(&allowed.statements);
                            if copies > 0 {
                                s.pipeline.copy_sent(copies);
                                copying = Some(copies);
                            }
                            f
                        }
                        Err(refusal) => failing_query(&markers.issue(&shared, refusal)),
                    }
                }
            },
            // The server skips it: not judged, recorded as skipped.
            b'P' if batch_refused => {
                if let Ok((name, raw, _)) = parse_fields(&f.body) {
                    ctx.audit.skipped(&String::from_utf8_lossy(raw), name);
                }
                f
            }
            b'P' => match parse_fields(&f.body) {
                Err(e) => {
                    let m = markers.issue(&shared, checks::malformed(&ctx, SqlPhase::Parse, e)?);
                    failing_parse(&m, &m)
                }
                Ok((name, raw, declared)) => {
                    let phase = SqlPhase::Parse;
                    let (text, checked) = 'check: {
                        let defines = [Effect::Define(name)];
                        if !room(&shared, &mut server, &mut answered, &defines).await? {
                            let text = String::from_utf8_lossy(raw);
                            break 'check ("", Err(checks::statement_limit(&ctx, &text, phase)));
                        }
                        let text = match checks::sql_text(&ctx, raw, phase) {
                            Ok(text) => text,
                            Err(refusal) => break 'check ("", Err(refusal)),
                        };
                        if let Err(why) = fenced(&mut fence, &mut server, text).await? {
                            break 'check (text, Err(checks::fence_refusal(why)));
                        }
                        let name = Some(name.to_string());
                        (
                            text,
                            checks::check(&ctx, text, phase, name, &mut unseen).await,
                        )
                    };
                    match checked {
                        Ok(allowed) => {
                            let statement = Prepared::judged(
                                text,
                                allowed.statements,
                                declared,
                                allowed.record,
                                allowed.epoch,
                            );
                            lock(&shared).pipeline.parsing(name.to_string(), statement);
                            f
                        }
                        Err(refusal) => failing_parse(name, &markers.issue(&shared, refusal)),
                    }
                }
            },
            // The server will skip it, as it skips the Execute after it:
            // no check, no second refusal for a message that never runs.
            b'B' if batch_refused => f,
            // Refused like an Execute; the server then discards the
            // portal's Describe and Execute until Sync.
            b'B' => match Bind::parse(&f.body) {
                Err(e) => {
                    let m = markers.issue(&shared, checks::malformed(&ctx, SqlPhase::Bind, e)?);
                    failing_parse(&m, &m)
                }
                Ok(bind) => {
                    let mut statement =
                        resolve(&shared, &mut server, &mut answered, bind.statement).await?;
                    // Binary values of types the gateway was not told: the
                    // server says, rather than the guardrails seeing nothing.
                    if !batch_refused
                        && statement
                            .as_ref()
                            .is_some_and(|s| bind.binary_of_unknown_type(&s.types))
                    {
                        describe_statement(&shared, &mut server, &mut progress, bind.statement)
                            .await?;
                        statement =
                            resolve(&shared, &mut server, &mut answered, bind.statement).await?;
                    }
                    match checks::check_bind(&ctx, &bind, statement.as_deref()).await {
                        None => {
                            ctx.audit.bind(&bind, statement);
                            f
                        }
                        Some(refusal) => {
                            let m = markers.issue(&shared, refusal);
                            failing_parse(&m, &m)
                        }
                    }
                }
            },
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
            b'E' => match execute_portal(&f.body) {
                Err(e) => {
                    let m = markers.issue(&shared, checks::malformed(&ctx, SqlPhase::Bind, e)?);
                    failing_parse(&m, &m)
                }
                Ok(portal) => {
                    let statement = ctx.audit.portal_statement(portal);
                    // A portal of SQL `PREPARE` defines a statement when it runs.
                    let effects = statement
                        .as_ref()
                        .map(|s| Statements::effects(&s.statements))
                        .unwrap_or_default();
                    let refusal = if room(&shared, &mut server, &mut answered, &effects).await? {
                        ctx.audit.execute(portal, statement.as_deref()).await
                    } else {
                        let text = statement.as_ref().map_or("", |s| &s.text);
                        Some(checks::statement_limit(&ctx, text, SqlPhase::Bind))
                    };
                    match refusal {
                        None => {
                            if let Some(s) = &statement {
                                if Statements::changes_namespace(&s.statements) {
                                    lock(&shared).pipeline.running(&s.statements, s.record);
                                }
                                let copies = copies_in(&s.statements);
                                if copies > 0 && !batch_refused {
                                    lock(&shared).pipeline.copy_sent(copies);
                                    copying = Some(copies);
                                }
                            }
                            // Rows are masked by their portal's description:
                            // ask for it when the client did not.
                            if described.as_deref() != Some(portal) && may_mask(&ctx) {
                                lock(&shared).pipeline.describing_for_gateway();
                                frame::write_frame(&mut server, &describe_portal(portal))
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
            },
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
        let backlog = {
            let s = lock(&shared);
            s.pipeline.backlog() + s.refusals.len()
        };
        if backlog > MAX_BACKLOG {
            return Err(RelayError::Unsupported(format!(
                "more than {MAX_BACKLOG} Parse, Close, Describe and refused messages await the \
                 server's answer; read the answers before sending more (a pipeline through \
                 the gateway holds at most {MAX_BACKLOG} of them)"
            )));
        }
        let ends_batch = match (out.tag, copying) {
            (b'Q', _) | (b'S', None) => true,
            // While the server reads COPY data it ignores a Sync, unless
            // the COPY failed meanwhile: what happens to one sent now is a
            // race. So it is not sent; the client's Sync after its CopyDone
            // ends the batch. If the server did not begin the COPY, the Sync
            // goes on as usual.
            (b'S', Some(_)) => {
                if copy_began(&shared, &mut server, &mut progress).await? {
                    continue;
                }
                copying = None;
                true
            }
            // A Query may hold several COPY … FROM STDIN, each ended by the
            // client (who may send its data before the server asks).
            (b'c' | b'f', Some(left)) => {
                copying = left.checked_sub(1).filter(|n| *n > 0);
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
        let mut s = lock(shared);
        let batch = s.pipeline.batch();
        s.refusals.insert(m.clone(), (batch, refusal));
        m
    }
}

/// Whether the session has room for the statements a message defines (see
/// [`crate::postgres::statements::Statements::room`]). While that depends on
/// an earlier batch, waits until the server has answered it (what was sent
/// must reach the server first).
async fn room(
    shared: &Mutex<Shared>,
    server: &mut BufWriter<WriteHalf<Io>>,
    answered: &mut watch::Receiver<u64>,
    effects: &[Effect<'_>],
) -> Result<bool, RelayError> {
    loop {
        let room = lock(shared).pipeline.room(effects);
        let batch = match room {
            Room::Fits => return Ok(true),
            Room::Full => return Ok(false),
            Room::AfterBatch(batch) => batch,
        };
        after_batch(server, answered, batch).await?;
    }
}

/// Sends what is buffered and waits until the server has answered `batch`.
async fn after_batch(
    server: &mut BufWriter<WriteHalf<Io>>,
    answered: &mut watch::Receiver<u64>,
    batch: u64,
) -> Result<(), RelayError> {
    server
        .flush()
        .await
        .map_err(|e| RelayError::Server(e.into()))?;
    if answered.wait_for(|n| *n > batch).await.is_err() {
        return Err(RelayError::Ended("the server connection ended".into()));
    }
    Ok(())
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
        after_batch(server, answered, batch).await?;
    }
}

/// Asks the server to describe statement `name` and waits for its answer
/// (which updates the statement's parameter types, see
/// [`crate::postgres::pipeline`]) or for its batch to fail.
async fn describe_statement(
    shared: &Mutex<Shared>,
    server: &mut BufWriter<WriteHalf<Io>>,
    progress: &mut watch::Receiver<u64>,
    name: &str,
) -> Result<(), RelayError> {
    let io = |e: std::io::Error| RelayError::Server(e.into());
    // The server skips the rest of a failed batch: nothing would answer.
    if !lock(shared).pipeline.describing_statement_for_gateway(name) {
        return Ok(());
    }
    frame::write_frame(server, &Frame::new(b'D', format!("S{name}\0").into_bytes()))
        .await
        .map_err(io)?;
    frame::write_frame(server, &Frame::new(b'H', Vec::new()))
        .await
        .map_err(io)?;
    server.flush().await.map_err(io)?;
    loop {
        progress.borrow_and_update();
        if !lock(shared).pipeline.gateway_describing_statement() {
            return Ok(());
        }
        if progress.changed().await.is_err() {
            return Err(RelayError::Ended("the server connection ended".into()));
        }
    }
}

/// How many of the statements read COPY data from the client.
fn copies_in(statements: &[SqlStatement]) -> usize {
    statements
        .iter()
        .filter(|s| s.flags.contains(StatementFlags::COPY_FROM_CLIENT))
        .count()
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

/// The text of a Query, as it arrived.
fn query_text(body: &[u8]) -> Result<&[u8], FrameError> {
    let mut r = BodyReader::new(body, "Query");
    let text = r.cstr_bytes()?;
    r.end()?;
    Ok(text)
}

/// A Parse: the statement's name, its text as it arrived and the declared
/// parameter types.
fn parse_fields(body: &[u8]) -> Result<(&str, &[u8], Vec<u32>), FrameError> {
    let mut r = BodyReader::new(body, "Parse");
    let name = r.cstr()?;
    let text = r.cstr_bytes()?;
    let declared = params::oid_list(&mut r)?;
    r.end()?;
    Ok((name, text, declared))
}

/// A prepared statement or portal name an extended-protocol message gives
/// that is longer than the server tells apart ([`checks::MAX_NAME_BYTES`]),
/// if any: the phase its refusal is recorded under, whether it names a
/// portal, and the name. A message whose names cannot be read is left to
/// the usual checks.
fn overlong_name(f: &Frame) -> Option<(SqlPhase, bool, String)> {
    let mut r = BodyReader::new(&f.body, "message");
    let mut names: Vec<(SqlPhase, bool, &str)> = Vec::with_capacity(2);
    match f.tag {
        b'P' => names.push((SqlPhase::Parse, false, r.cstr().ok()?)),
        b'B' => {
            names.push((SqlPhase::Bind, true, r.cstr().ok()?));
            names.push((SqlPhase::Bind, false, r.cstr().ok()?));
        }
        b'D' | b'C' => match r.u8().ok()? {
            b'S' => names.push((SqlPhase::Parse, false, r.cstr().ok()?)),
            b'P' => names.push((SqlPhase::Bind, true, r.cstr().ok()?)),
            // The server refuses it.
            _ => return None,
        },
        b'E' => names.push((SqlPhase::Bind, true, r.cstr().ok()?)),
        _ => return None,
    }
    names
        .into_iter()
        .find(|(_, _, name)| name.len() > checks::MAX_NAME_BYTES)
        .map(|(phase, portal, name)| (phase, portal, name.to_string()))
}

/// The portal an Execute runs.
fn execute_portal(body: &[u8]) -> Result<&str, FrameError> {
    let mut r = BodyReader::new(body, "Execute");
    let portal = r.cstr()?;
    r.i32()?;
    r.end()?;
    Ok(portal)
}
