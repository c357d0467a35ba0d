//! Server to client: refusals swapped in, result rows masked, the answers
//! matched to what the client (or the gateway) asked.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncWriteExt, BufReader, BufWriter, ReadHalf, WriteHalf};
use tokio::sync::watch;

use super::{Ending, Io, MAX_SERVER_FRAME, RelayContext, RelayError, Shared, lock};
use crate::postgres::catalog::SchemaWatch;
use crate::postgres::errors::{Severity, error_response, sqlstate};
use crate::postgres::frame::{self, BodyReader, Frame};
use crate::postgres::messages;
use crate::postgres::parity;
use crate::postgres::pipeline::Described;
use crate::postgres::results::{ResultSet, Results, flush_rows, masking_chain, select_columns};
use crate::postgres::rows;
use crate::postgres::selections::Selections;

pub(super) async fn server_to_client(
    server: ReadHalf<Io>,
    client: &mut BufWriter<WriteHalf<Io>>,
    mid_frame: &AtomicBool,
    ctx: Arc<RelayContext>,
    shared: Arc<Mutex<Shared>>,
    marker: String,
    (ready, progress): (watch::Sender<u64>, watch::Sender<u64>),
) -> Result<Ending, RelayError> {
    let mut server = BufReader::new(server);
    let mut results = Results::Idle;
    let mut schema_watch = SchemaWatch::default();
    let mut selections = Selections::default();
    let mut descriptions = messages::Descriptions::default();
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
                let message = frame::error_field(&f.body, b'M');
                lock(&shared).pipeline.failed();
                progress.send_modify(|n| *n += 1);
                let swapped = if message.contains(&marker) {
                    let mut s = lock(&shared);
                    let key = s
                        .refusals
                        .keys()
                        .find(|k| message.contains(k.as_str()))
                        .cloned();
                    key.and_then(|k| s.refusals.remove(&k)).map(|(_, f)| f)
                } else {
                    None
                };
                if let Err(e) = flush_rows(&ctx, &mut results, &mut out).await {
                    return unmaskable(client, &e.to_string()).await;
                }
                results = Results::Idle;
                match swapped {
                    Some(refusal) => out.push(refusal),
                    None => match masked_message(&ctx, f).await {
                        Ok(f) => out.push(f),
                        Err(why) => return unmaskable(client, &why).await,
                    },
                }
            }
            // Withheld where results are masked (see `messages`).
            b'N' if messages::debug_notice(&f) && !ctx.plugins.is_empty() => {
                match masking_chain(&ctx) {
                    Ok(None) => out.push(f),
                    Ok(Some(_)) => {}
                    Err(why) => return unmaskable(client, &why).await,
                }
            }
            b'N' | b'A' => match masked_message(&ctx, f).await {
                Ok(f) => out.push(f),
                Err(why) => return unmaskable(client, &why).await,
            },
            b'S' => {
                let mut r = BodyReader::new(&f.body, "ParameterStatus");
                let name = r.cstr().map_err(RelayError::Server)?;
                let value = r.cstr().map_err(RelayError::Server)?;
                if let Some(why) = parity::parameter_status_refusal(name, value) {
                    return end_session(client, &why).await;
                }
                match masked_message(&ctx, f).await {
                    Ok(f) => out.push(f),
                    Err(why) => return unmaskable(client, &why).await,
                }
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
                // The gateway's own Describe: its answer is not the client's.
                if !lock(&shared).pipeline.parameter_description(&f.body) {
                    out.push(f);
                }
            }
            b'T' => {
                let described = lock(&shared).pipeline.row_description();
                let chain = match masking_chain(&ctx) {
                    Err(why) => return unmaskable(client, &why).await,
                    Ok(chain) => chain,
                };
                if !matches!(described, Described::Statement { .. }) {
                    let columns =
                        rows::parse_row_description(&f.body).map_err(RelayError::Server)?;
                    results = match &chain {
                        None => Results::Plain,
                        Some(chain) => Results::Masked(ResultSet::new(columns, chain.clone())),
                    };
                }
                // Masked for the client and the recording alike; the
                // maskers saw the server's names with the rows' columns.
                let f = match &chain {
                    Some(chain)
                        if !matches!(described, Described::Statement { injected: true }) =>
                    {
                        match descriptions.mask(chain, &ctx.session, f).await {
                            Ok(f) => f,
                            Err(e) => return unmaskable(client, &e.to_string()).await,
                        }
                    }
                    _ => f,
                };
                match described {
                    // The gateway's own Describe: the recording may name the
                    // columns, the client did not ask.
                    Described::Portal { injected: true } => {
                        ctx.audit.observe(std::slice::from_ref(&f));
                    }
                    Described::Statement { injected: true } => {
                        progress.send_modify(|n| *n += 1);
                    }
                    _ => out.push(f),
                }
            }
            b'n' => {
                let described = lock(&shared).pipeline.row_description();
                match described {
                    Described::Statement { injected } => {
                        if injected {
                            progress.send_modify(|n| *n += 1);
                        } else {
                            out.push(f);
                        }
                    }
                    Described::Portal { injected } => {
                        results = Results::Idle;
                        if !injected {
                            out.push(f);
                        }
                    }
                    Described::Query => {
                        results = Results::Idle;
                        out.push(f);
                    }
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
                        set.pending_bytes += f.body.len();
                        set.frames.push(f);
                        if set.batch_full()
                            && let Err(e) = flush_rows(&ctx, &mut results, &mut out).await
                        {
                            return unmaskable(client, &e.to_string()).await;
                        }
                    }
                    _ => out.push(f),
                }
            }
            b'G' => {
                let expected = lock(&shared).pipeline.copy_in_response();
                progress.send_modify(|n| *n += 1);
                if !expected {
                    // Its Syncs would be counted as the server does not.
                    return end_session(
                        client,
                        "the server began a COPY FROM STDIN the gateway did not see sent",
                    )
                    .await;
                }
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
                let mut for_client = true;
                match f.tag {
                    b'C' => lock(&shared).pipeline.command_complete(&f.body),
                    b'Z' => {
                        let mut s = lock(&shared);
                        // The answer to the gateway's own Sync.
                        for_client = !s.pipeline.ready();
                        let answered = s.pipeline.answered();
                        s.refusals.retain(|_, (batch, _)| *batch >= answered);
                        drop(s);
                        ready.send_modify(|n| *n += 1);
                        progress.send_modify(|n| *n += 1);
                    }
                    _ => {}
                }
                if for_client {
                    out.push(f);
                }
            }
            _ => out.push(f),
        }
        ctx.audit.observe(&out);
        mid_frame.store(true, Ordering::Relaxed);
        for f in &out {
            frame::write_frame(client, f)
                .await
                .map_err(|e| RelayError::Client(e.into()))?;
        }
        // Whole frames from here: what `client` has not sent yet stays in
        // its buffer, ahead of anything written next.
        mid_frame.store(false, Ordering::Relaxed);
        if server.buffer().is_empty() {
            client
                .flush()
                .await
                .map_err(|e| RelayError::Client(e.into()))?;
        }
    }
}

/// On a connection with maskers, a message as it may reach the agent
/// (see [`crate::postgres::messages`]).
async fn masked_message(ctx: &RelayContext, f: Frame) -> Result<Frame, String> {
    match masking_chain(ctx)? {
        None => Ok(f),
        Some(chain) => {
            let (f, found) = messages::mask(&chain, &ctx.session, f)
                .await
                .map_err(|e| e.to_string())?;
            // Counted with the statement whose completion follows, as its
            // rows' are.
            ctx.audit.masked(&found);
            Ok(f)
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
