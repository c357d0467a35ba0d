//! The PostgreSQL listener: for each agent, the handshake, an upstream
//! session with the connection's credentials, the gateway's own
//! BackendKeyData, then the relay. Cancel requests are routed by the
//! gateway's key to the upstream backend; unknown keys do nothing.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use dashmap::DashMap;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tracing::Instrument;

use crate::audit::{Audit, Event, kinds};
use crate::identity::{ConnectionPolicy, Verifier};
use crate::plugins::PluginHost;
use crate::plugins::bindings::types::{Protocol, Session};
use crate::recording::{End as RecordingEnd, Header as RecordingHeader, Recorder};
use crate::sql::Analyzer;
use crate::workers::Workers;

use super::audit_trail::Trail;
use super::catalog::Catalog;
use super::errors::{Severity, error_response, sqlstate};
use super::frame::{self, Frame};
use super::handshake::{self, Accepted, ConnectionLookup, HandshakeError, HandshakeSettings};
use super::parity;
use super::relay::{self, Ending, RelayContext, RelayError};
use super::settings;
use super::upstream::{Upstream, UpstreamConfig, UpstreamError};

/// A configured PostgreSQL connection, ready to use.
pub struct PgConnection {
    pub name: String,
    pub policy: ConnectionPolicy,
    pub upstream: UpstreamConfig,
    pub plugins: Vec<String>,
}

pub struct PgListener {
    pub settings: HandshakeSettings,
    pub connections: HashMap<String, Arc<PgConnection>>,
    pub verifier: Verifier,
    pub plugins: Arc<PluginHost>,
    pub analyzer: Arc<Analyzer>,
    pub audit: Audit,
    pub recorder: Recorder,
    cancel_keys: DashMap<(i32, Bytes), CancelTarget>,
    /// Per connection: table names for maskers, shared by its sessions.
    catalogs: HashMap<String, Arc<Catalog>>,
}

struct CancelTarget {
    addr: String,
    pid: i32,
    secret: Bytes,
}

impl ConnectionLookup for PgListener {
    fn policy(&self, name: &str) -> Option<ConnectionPolicy> {
        self.connections.get(name).map(|c| c.policy.clone())
    }
}

impl PgListener {
    pub fn new(
        settings: HandshakeSettings,
        connections: Vec<PgConnection>,
        verifier: Verifier,
        plugins: Arc<PluginHost>,
        analyzer: Arc<Analyzer>,
        audit: Audit,
        recorder: Recorder,
    ) -> Arc<Self> {
        let catalogs = connections
            .iter()
            .map(|c| {
                let catalog = Catalog::new(c.name.clone(), c.upstream.clone());
                (c.name.clone(), Arc::new(catalog))
            })
            .collect();
        Arc::new(Self {
            settings,
            connections: connections
                .into_iter()
                .map(|c| (c.name.clone(), Arc::new(c)))
                .collect(),
            verifier,
            plugins,
            analyzer,
            audit,
            recorder,
            cancel_keys: DashMap::new(),
            catalogs,
        })
    }

    /// Accepts agents and runs each session on one of `workers`.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, workers: Arc<Workers>) {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("postgres accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let this = self.clone();
            let span = tracing::info_span!("pg", %peer, session = tracing::field::Empty, subject = tracing::field::Empty, connection = tracing::field::Empty);
            // Handed over unregistered: the worker's own I/O driver takes it.
            let tcp = match tcp.into_std() {
                Ok(tcp) => tcp,
                Err(e) => {
                    tracing::warn!(%peer, "postgres accept failed: {e}");
                    continue;
                }
            };
            workers.spawn(
                async move {
                    match TcpStream::from_std(tcp) {
                        Ok(tcp) => this.session(tcp, peer).await,
                        Err(e) => tracing::warn!("postgres accept failed: {e}"),
                    }
                }
                .instrument(span),
            );
        }
    }

    /// A session that ended before its relay began, in the audit log.
    fn session_failed(&self, session: &Session, peer: SocketAddr, reason: String) {
        self.audit.emit(
            Event::new(kinds::SESSION_FAILED)
                .session(session)
                .with("client_addr", peer.to_string())
                .with("reason", reason),
        );
    }

    async fn session(&self, tcp: TcpStream, peer: SocketAddr) {
        let accept = handshake::accept(tcp, peer, &self.settings, &self.verifier, self);
        let accepted = match tokio::time::timeout(self.settings.startup_timeout, accept).await {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => {
                tracing::info!("connection refused: {e}");
                self.record_refusal(&e, peer);
                return;
            }
            // The client may be anywhere in TLS or the startup exchange, where
            // no message of ours could be read: closed, as PostgreSQL does.
            Err(_) => {
                let waited = self.settings.startup_timeout;
                tracing::info!("connection closed: startup not finished within {waited:?}");
                self.audit.emit(
                    Event::new(kinds::CONNECTION_REFUSED)
                        .with("protocol", "postgres")
                        .with("client_addr", peer.to_string())
                        .with("reason", "startup_timeout")
                        .with(
                            "message",
                            format!(
                                "TLS, startup and authentication not finished within {waited:?}"
                            ),
                        ),
                );
                return;
            }
        };
        let mut agent = match accepted {
            Accepted::Cancel {
                pid,
                secret,
                mut io,
            } => {
                self.cancel(pid, secret).await;
                let _ =
                    tokio::time::timeout(std::time::Duration::from_secs(5), io.shutdown()).await;
                return;
            }
            Accepted::Session(s) => s,
        };
        let Some(conn) = self.connections.get(&agent.connection).cloned() else {
            return;
        };
        let session_id = new_id();
        let started = std::time::Instant::now();
        let session = Session {
            id: session_id.clone(),
            connection: conn.name.clone(),
            protocol: Protocol::Postgres,
            identity: (&agent.identity).into(),
            client_addr: peer.to_string(),
        };
        let span = tracing::Span::current();
        span.record("session", session_id.as_str());
        span.record("subject", agent.identity.subject.as_str());
        span.record("connection", conn.name.as_str());

        // Settings asked for at startup are checked as the SETs that make
        // them, before the upstream is reached (no recording yet: the
        // session has not begun).
        let mut ctx = RelayContext {
            host: self.plugins.clone(),
            plugins: conn.plugins.clone(),
            analyzer: self.analyzer.clone(),
            session: session.clone(),
            audit: Arc::new(Trail::new(self.audit.clone(), session.clone(), None)),
            catalog: self.catalogs.get(&conn.name).cloned(),
            expires_at: self
                .settings
                .end_at_token_expiry
                .map(|leeway| agent.identity.expires_at + leeway),
            phases: Default::default(),
        };
        let startup = match settings::startup(&ctx, &agent.startup.params).await {
            Ok(s) => s,
            Err(e) => {
                tracing::info!("session refused: {e}");
                self.session_failed(&session, peer, e.message.clone());
                let f = error_response(Severity::Fatal, &e.sqlstate, &e.message);
                let _ = frame::write_frames(&mut agent.io, &[f]).await;
                return;
            }
        };
        let upstream = match Upstream::connect(&conn.upstream, &startup.params).await {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!("upstream connection failed: {e}");
                self.session_failed(&session, peer, format!("upstream connection failed: {e}"));
                let f = match settings::server_refusal(&startup, &e).or_else(|| busy(&e)) {
                    // The client's own setting, or a server that cannot take
                    // a session now: the client's to see (it may retry).
                    Some((code, message)) => error_response(Severity::Fatal, code, &message),
                    None => error_response(
                        Severity::Fatal,
                        sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
                        &format!(
                            "the gateway could not connect to the database of connection \"{}\"",
                            conn.name
                        ),
                    ),
                };
                let _ = frame::write_frames(&mut agent.io, &[f]).await;
                return;
            }
        };

        // A role or database default (or a startup parameter) can make the
        // server read statement texts differently from the gateway's parser.
        if let Some(why) = upstream
            .parameters
            .iter()
            .find_map(|(k, v)| parity::parameter_status_refusal(k, v))
        {
            tracing::warn!("session refused: {why}");
            let f = error_response(
                Severity::Fatal,
                sqlstate::INSUFFICIENT_PRIVILEGE,
                &format!("session refused: {why}"),
            );
            let _ = frame::write_frames(&mut agent.io, &[f]).await;
            return;
        }

        let recording = match self.recorder.begin(recording_header(&session, &agent)) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("session refused: it cannot be recorded: {e}");
                let f = error_response(
                    Severity::Fatal,
                    sqlstate::SYSTEM_ERROR,
                    "session refused: the gateway cannot record it (see the gateway's log)",
                );
                let _ = frame::write_frames(&mut agent.io, &[f]).await;
                return;
            }
        };

        // The agent gets the gateway's own secret; the upstream's stays
        // here. The process id is the upstream backend's, which the agent
        // sees anyway (`pg_backend_pid()`, the pid of the notifications its
        // own session sends): drivers compare those with this key's. A 3.2
        // client gets a longer secret, as PostgreSQL 18 gives it.
        let pid = upstream.backend_pid;
        let secret = loop {
            let secret = if agent.minor >= 2 {
                Bytes::copy_from_slice(&rand_bytes::<32>())
            } else {
                Bytes::copy_from_slice(&rand_bytes::<4>())
            };
            // Two upstream servers can have backends of the same pid.
            if !self.cancel_keys.contains_key(&(pid, secret.clone())) {
                break secret;
            }
        };
        self.cancel_keys.insert(
            (pid, secret.clone()),
            CancelTarget {
                addr: conn.upstream.addr.clone(),
                pid: upstream.backend_pid,
                secret: upstream.backend_secret.clone(),
            },
        );
        let mut greeting = vec![Frame::new(b'R', &[0u8, 0, 0, 0][..])];
        for (k, v) in &upstream.parameters {
            greeting.push(Frame::new(b'S', format!("{k}\0{v}\0").into_bytes()));
        }
        let mut key = BytesMut::new();
        key.put_i32(pid);
        key.put_slice(&secret);
        greeting.push(Frame::new(b'K', key.freeze()));
        greeting.push(Frame::new(b'Z', vec![upstream.status]));
        if frame::write_frames(&mut agent.io, &greeting).await.is_err() {
            self.cancel_keys.remove(&(pid, secret));
            return;
        }
        tracing::info!("session started");
        self.audit.emit(
            Event::new(kinds::SESSION_START)
                .session(&session)
                .with("protocol", "postgres")
                .with("client_addr", peer.to_string())
                .with("tls", agent.tls)
                .with("token_id", agent.identity.token_id.clone())
                .with("client_user", agent.startup.get("user"))
                .with("application_name", agent.startup.get("application_name"))
                .with(
                    "settings",
                    startup
                        .settings
                        .iter()
                        .map(|s| (s.name.clone(), s.value.clone().into()))
                        .collect::<serde_json::Map<_, _>>(),
                ),
        );

        let trail = Arc::new(Trail::new(
            self.audit.clone(),
            session.clone(),
            recording.clone(),
        ));
        ctx.audit = trail.clone();
        let server_io = upstream.io.into_inner();
        let result = relay::run(agent.io, server_io, ctx).await;
        self.cancel_keys.remove(&(pid, secret));
        // Closing our side does not stop a statement the server is running
        // (it notices only when it next writes): a client that vanished
        // mid-query would leave its backend busy, holding locks, for as
        // long as the statement runs. Cancel it, as the client's own
        // CancelRequest would have.
        let upstream_busy = !matches!(
            result,
            Ok(Ending::Terminated | Ending::ServerClosed) | Err(RelayError::Server(_))
        );
        if upstream_busy {
            send_cancel(
                &conn.upstream.addr,
                upstream.backend_pid,
                &upstream.backend_secret,
            )
            .await;
        }
        let (allowed, denied) = trail.counts();
        if let Some(recording) = &recording {
            let (ending, error) = match &result {
                Ok(ending) => (ending.as_str(), None),
                Err(e) => ("error", Some(e.to_string())),
            };
            recording.end(RecordingEnd {
                ending: ending.to_string(),
                error,
                ..RecordingEnd::default()
            });
        }
        let mut end = Event::new(kinds::SESSION_END)
            .session(&session)
            .with("duration_ms", started.elapsed().as_millis() as u64)
            .with("statements_allowed", allowed)
            .with("statements_refused", denied);
        match &result {
            Ok(ending) => {
                tracing::info!(?ending, "session ended");
                end = end.with("ending", ending.as_str());
            }
            Err(e) => {
                tracing::info!("session ended: {e}");
                end = end.with("error", e.to_string());
            }
        }
        self.audit.emit(end);
    }

    fn record_refusal(&self, e: &HandshakeError, peer: SocketAddr) {
        let HandshakeError::Refused {
            code,
            reason,
            identity,
            connection,
            subject,
            message,
        } = e
        else {
            return;
        };
        let kind = if *identity {
            kinds::IDENTITY_REFUSED
        } else {
            kinds::CONNECTION_REFUSED
        };
        let mut event = Event::new(kind)
            .with("protocol", "postgres")
            .with("client_addr", peer.to_string())
            .with("reason", *reason)
            .with("sqlstate", *code)
            .with("message", message.clone());
        if let Some(c) = connection {
            event = event.connection(c.clone());
        }
        if let Some(s) = subject {
            event = event.with("subject", s.clone());
        }
        self.audit.emit(event);
    }

    async fn cancel(&self, pid: i32, secret: Bytes) {
        let Some(target) = self
            .cancel_keys
            .get(&(pid, secret))
            .map(|t| (t.addr.clone(), t.pid, t.secret.clone()))
        else {
            tracing::info!("cancel request with an unknown key ignored");
            return;
        };
        let (addr, pid, secret) = target;
        send_cancel(&addr, pid, &secret).await;
    }
}

/// A CancelRequest for backend `pid` to the server at `addr`; best effort,
/// as in libpq (the server answers nothing either way).
async fn send_cancel(addr: &str, pid: i32, secret: &[u8]) {
    let mut packet = BytesMut::new();
    packet.put_i32(12 + secret.len() as i32);
    packet.put_i32(80_877_102);
    packet.put_i32(pid);
    packet.put_slice(secret);
    let connect = tokio::time::timeout(std::time::Duration::from_secs(5), TcpStream::connect(addr));
    if let Ok(Ok(mut s)) = connect.await {
        let _ = s.write_all(&packet).await;
        let _ = s.shutdown().await;
    }
}

fn rand_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // The OS generator; a failure leaves zeros, which only weakens cancel
    // keys, never access.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    b
}

fn recording_header(session: &Session, agent: &handshake::AgentSession) -> RecordingHeader {
    let mut detail = serde_json::Map::new();
    detail.insert("tls".into(), agent.tls.into());
    if let Some(user) = agent.startup.get("user") {
        detail.insert("client_user".into(), user.into());
    }
    if let Some(app) = agent.startup.get("application_name") {
        detail.insert("application_name".into(), app.into());
    }
    if let Some(jti) = &agent.identity.token_id {
        detail.insert("token_id".into(), jti.clone().into());
    }
    RecordingHeader {
        version: crate::recording::entry::FORMAT_VERSION,
        id: session.id.clone(),
        protocol: "postgres".into(),
        connection: session.connection.clone(),
        subject: session.identity.subject.clone(),
        issuer: session.identity.issuer.clone(),
        groups: session.identity.groups.clone(),
        client_addr: session.client_addr.clone(),
        started_ms: crate::recording::now_ms(),
        detail,
    }
}

fn new_id() -> String {
    rand_bytes::<16>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A server refusing a session for want of room or because it is not
/// accepting sessions yet (too many connections, starting up, shutting
/// down, in recovery): clients back off and retry on these SQLSTATEs,
/// which say nothing of the gateway's credentials.
fn busy(e: &UpstreamError) -> Option<(&str, String)> {
    let UpstreamError::Server { code, message } = e else {
        return None;
    };
    (code.starts_with("53") || code == "57P03").then(|| {
        (
            code.as_str(),
            format!("the database cannot take this session now: {message}"),
        )
    })
}
