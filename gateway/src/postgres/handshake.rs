//! A client's way in: TLS negotiation, the startup message, the token as the
//! password, identity and the connection's access policy — all before any
//! upstream traffic. Every refusal is a FATAL ErrorResponse with a SQLSTATE
//! and a message naming the reason.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::identity::{AuthError, ConnectionPolicy, Identity, Verifier};

use super::errors::{Severity, error_response, sqlstate};
use super::frame::{self, Frame, FrameError};
use super::startup::{self, StartupMessage, StartupPacket};
use super::upstream::ServerIo;

/// Longest startup packet and password (token) message accepted.
const MAX_STARTUP_BYTES: usize = 10_000;
const MAX_PASSWORD_BYTES: usize = 32 * 1024;

pub struct HandshakeSettings {
    /// TLS for clients that ask (SSLRequest); `None` answers "N".
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Accept a token over plaintext from loopback clients (off by default:
    /// the token is a bearer credential).
    pub allow_plaintext_loopback: bool,
    /// Deadline for TLS, the startup packet and authentication.
    pub startup_timeout: std::time::Duration,
    /// End each session when its token expires, this long after `exp` (the
    /// leeway login allowed it): `[postgres] end_sessions_at_token_expiry`.
    pub end_at_token_expiry: Option<std::time::Duration>,
}

/// What the gateway knows about a configured PostgreSQL connection at the
/// door: its name and who may use it.
pub trait ConnectionLookup: Send + Sync {
    fn policy(&self, name: &str) -> Option<ConnectionPolicy>;
}

pub enum Accepted {
    /// An authenticated agent; the caller opens the upstream next.
    Session(Box<AgentSession>),
    /// A CancelRequest: the caller routes it and closes `io` (which ends
    /// TLS with close_notify: libpq 17's cancel reads a bare close as a
    /// failure).
    Cancel {
        pid: i32,
        secret: Bytes,
        io: Pin<Box<dyn ServerIo>>,
    },
}

pub struct AgentSession {
    pub io: Pin<Box<dyn ServerIo>>,
    pub startup: StartupMessage,
    /// The negotiated minor protocol version (0 or 2).
    pub minor: u16,
    pub connection: String,
    pub identity: Identity,
    pub tls: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// Refused with a FATAL ErrorResponse already sent to the client.
    #[error("refused ({code}): {message}")]
    Refused {
        code: &'static str,
        /// A stable label for the audit trail, e.g. `tls_required`, or the
        /// identity layer's reason (`expired`, `group_not_allowed`, …).
        reason: &'static str,
        /// Whether the refusal is about the agent's identity (its token or
        /// its access to the connection), not the protocol.
        identity: bool,
        /// The connection asked for, when the client got that far.
        connection: Option<String>,
        /// The verified subject, when access to the connection was denied.
        subject: Option<String>,
        message: String,
    },
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// Why the handshake refused, beyond the SQLSTATE the client sees.
struct Why {
    reason: &'static str,
    identity: bool,
    connection: Option<String>,
    subject: Option<String>,
}

/// `why`, about the connection the client named.
fn on(connection: &str, why: Why) -> Why {
    Why {
        connection: Some(connection.to_string()),
        ..why
    }
}

fn protocol(reason: &'static str) -> Why {
    Why {
        reason,
        identity: false,
        connection: None,
        subject: None,
    }
}

async fn refuse(
    io: &mut (dyn ServerIo + '_),
    code: &'static str,
    why: Why,
    message: String,
) -> HandshakeError {
    let mut io = io;
    let _ = frame::write_frames(&mut io, &[error_response(Severity::Fatal, code, &message)]).await;
    HandshakeError::Refused {
        code,
        reason: why.reason,
        identity: why.identity,
        connection: why.connection,
        subject: why.subject,
        message,
    }
}

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;
/// The ALPN protocol PostgreSQL 17 and later name a direct TLS connection with.
pub const ALPN_POSTGRESQL: &[u8] = b"postgresql";

/// TLS begun without SSLRequest. As PostgreSQL does, the client must name
/// the protocol with ALPN: that is what keeps a TLS client of another
/// protocol (a browser sent to the wrong port) from being read as a
/// PostgreSQL one.
async fn direct_tls(
    io: Pin<Box<dyn ServerIo>>,
    settings: &HandshakeSettings,
) -> Result<Pin<Box<dyn ServerIo>>, HandshakeError> {
    let Some(config) = &settings.tls else {
        // The client cannot read a plaintext error now; it sees the close.
        return Err(HandshakeError::Tls(std::io::Error::other(
            "a direct TLS connection, but this listener has no TLS",
        )));
    };
    let (mut io, named) = tls_accept(io, config).await?;
    if !named {
        return Err(refuse(
            &mut *io,
            sqlstate::PROTOCOL_VIOLATION,
            protocol("protocol_violation"),
            "a direct TLS connection must name the \"postgresql\" protocol with ALPN".into(),
        )
        .await);
    }
    Ok(io)
}

/// TLS on `io`; whether the client named `postgresql` with ALPN.
async fn tls_accept(
    io: Pin<Box<dyn ServerIo>>,
    config: &Arc<rustls::ServerConfig>,
) -> Result<(Pin<Box<dyn ServerIo>>, bool), HandshakeError> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
    let stream = acceptor.accept(io).await.map_err(HandshakeError::Tls)?;
    let named = stream.get_ref().1.alpn_protocol() == Some(ALPN_POSTGRESQL);
    Ok((Box::pin(stream), named))
}

/// Runs the handshake on a new client connection.
pub async fn accept(
    tcp: TcpStream,
    peer: SocketAddr,
    settings: &HandshakeSettings,
    verifier: &Verifier,
    connections: &(dyn ConnectionLookup + '_),
) -> Result<Accepted, HandshakeError> {
    let _ = tcp.set_nodelay(true);
    // A TLS record where a length would be: the client negotiates TLS
    // directly (libpq's `sslnegotiation=direct`), without SSLRequest. A
    // startup packet cannot begin with this byte: its length would be
    // hundreds of megabytes.
    let mut first = [0u8; 1];
    let direct = matches!(tcp.peek(&mut first).await, Ok(1)) && first[0] == TLS_HANDSHAKE;
    let mut io: Pin<Box<dyn ServerIo>> = Box::pin(tcp);
    let mut tls = false;
    // As PostgreSQL: one request of each kind, and none once encrypted.
    // A declined one may be followed by the other kind (clients try GSS
    // then TLS, or TLS then GSS); a repeated one is not a request the
    // server knows, and it refuses it as an unknown protocol version.
    let (mut ssl_done, mut gss_done) = (false, false);
    if direct {
        io = direct_tls(io, settings).await?;
        tls = true;
        (ssl_done, gss_done) = (true, true);
    }
    let startup = loop {
        let body = frame::read_startup(&mut io, MAX_STARTUP_BYTES).await?;
        match startup::parse(&body) {
            Ok(StartupPacket::Ssl) if !ssl_done => {
                ssl_done = true;
                match &settings.tls {
                    Some(config) => {
                        io.write_all(b"S").await.map_err(FrameError::Io)?;
                        io.flush().await.map_err(FrameError::Io)?;
                        // Without ALPN, or with it: as PostgreSQL 17 does.
                        io = tls_accept(io, config).await?.0;
                        tls = true;
                        gss_done = true;
                    }
                    None => {
                        io.write_all(b"N").await.map_err(FrameError::Io)?;
                    }
                }
            }
            // No Kerberos: decline, the client continues without it.
            Ok(StartupPacket::Gssenc) if !gss_done => {
                gss_done = true;
                io.write_all(b"N").await.map_err(FrameError::Io)?;
            }
            Ok(StartupPacket::Cancel { pid, secret }) => {
                return Ok(Accepted::Cancel { pid, secret, io });
            }
            Ok(StartupPacket::Startup(m)) => break m,
            Ok(StartupPacket::Ssl | StartupPacket::Gssenc) => {
                let code = u32::from_be_bytes(body[..4].try_into().unwrap_or_default());
                return Err(refuse(
                    &mut *io,
                    sqlstate::FEATURE_NOT_SUPPORTED,
                    protocol("protocol_violation"),
                    format!(
                        "unsupported frontend protocol {}.{}: server supports 3.0 to 3.{}",
                        code >> 16,
                        code & 0xffff,
                        startup::NEWEST_MINOR
                    ),
                )
                .await);
            }
            Err(e) => {
                return Err(refuse(
                    &mut *io,
                    sqlstate::PROTOCOL_VIOLATION,
                    protocol("protocol_violation"),
                    format!("invalid startup packet: {e}"),
                )
                .await);
            }
        }
    };

    let (minor, negotiate) = startup.negotiate();
    if let Some(f) = negotiate {
        frame::write_frames(&mut io, &[f])
            .await
            .map_err(FrameError::Io)?;
    }

    let Some(connection) = startup.database().map(str::to_string) else {
        return Err(refuse(
            &mut *io,
            sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
            protocol("no_connection_name"),
            "no database (connection name) in the startup message".into(),
        )
        .await);
    };
    // Which connections exist is told only to a verified identity (as the
    // HTTP listener does): TLS first, then the token, then the name.
    let plaintext_allowed = settings.allow_plaintext_loopback && peer.ip().is_loopback();
    if !tls && !plaintext_allowed {
        return Err(refuse(
            &mut *io,
            sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
            on(&connection, protocol("tls_required")),
            "the token must be sent over TLS: connect with sslmode=require".into(),
        )
        .await);
    }

    // AuthenticationCleartextPassword: the agent's token is the password.
    frame::write_frames(
        &mut io,
        &[Frame::new(b'R', Bytes::from_static(&[0, 0, 0, 3]))],
    )
    .await
    .map_err(FrameError::Io)?;
    let token = match frame::read_frame(&mut io, MAX_PASSWORD_BYTES).await {
        Ok(Some(f)) if f.tag == b'p' => {
            let raw = f.body.strip_suffix(&[0]).unwrap_or(&f.body);
            // As the HTTP listener does: a token never holds whitespace, and
            // a password file often ends in a newline.
            String::from_utf8_lossy(raw).trim().to_owned()
        }
        Ok(Some(_)) => {
            return Err(refuse(
                &mut *io,
                sqlstate::PROTOCOL_VIOLATION,
                on(&connection, protocol("protocol_violation")),
                "expected a password message".into(),
            )
            .await);
        }
        Ok(None) => return Err(FrameError::Closed.into()),
        Err(FrameError::TooLarge { .. }) => {
            return Err(refuse(
                &mut *io,
                sqlstate::INVALID_PASSWORD,
                Why {
                    reason: "too_large",
                    identity: true,
                    connection: Some(connection.clone()),
                    subject: None,
                },
                "token rejected (too_large): the password is too long to be a token".into(),
            )
            .await);
        }
        Err(e @ FrameError::BadLength(_)) => {
            return Err(refuse(
                &mut *io,
                sqlstate::PROTOCOL_VIOLATION,
                on(&connection, protocol("protocol_violation")),
                format!("invalid password message: {e}"),
            )
            .await);
        }
        Err(e) => return Err(e.into()),
    };

    let refused = |e: AuthError, subject: Option<&str>| {
        let why = Why {
            reason: e.reason(),
            identity: true,
            connection: Some(connection.clone()),
            subject: subject.map(str::to_string),
        };
        let (code, message) = match e {
            AuthError::Rejected(r) => (sqlstate::INVALID_PASSWORD, r.to_string()),
            AuthError::Denied(d) => (
                sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
                format!("{d} (connection \"{connection}\")"),
            ),
        };
        (code, why, message)
    };
    let identity = match verifier.verify(&token).await {
        Ok(id) => id,
        Err(e) => {
            let (code, why, message) = refused(AuthError::Rejected(e), None);
            return Err(refuse(&mut *io, code, why, message).await);
        }
    };
    let Some(policy) = connections.policy(&connection) else {
        return Err(refuse(
            &mut *io,
            sqlstate::INVALID_CATALOG_NAME,
            Why {
                connection: Some(connection.clone()),
                subject: Some(identity.subject.clone()),
                ..protocol("unknown_connection")
            },
            format!("connection \"{connection}\" does not exist on this gateway"),
        )
        .await);
    };
    if let Err(d) = policy.check(&identity) {
        let (code, why, message) = refused(AuthError::Denied(d), Some(&identity.subject));
        return Err(refuse(&mut *io, code, why, message).await);
    }
    Ok(Accepted::Session(Box::new(AgentSession {
        io,
        startup,
        minor,
        connection,
        identity,
        tls,
    })))
}
