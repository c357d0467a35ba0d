//! The gateway's own connection to the real PostgreSQL server, with the
//! credentials the agent never sees: SCRAM-SHA-256, md5, cleartext (only over
//! TLS) or trust, optionally over TLS verified against system roots or a CA.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::frame::{self, BodyReader, Frame, FrameError};

/// A byte stream to the server, plain or TLS.
pub trait ServerIo: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> ServerIo for T {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamTls {
    /// Plain TCP (loopback or a trusted network only).
    Disable,
    /// TLS, certificate verified against `ca_file` or the system roots, and
    /// the host name checked.
    VerifyFull {
        ca_file: Option<std::path::PathBuf>,
        server_name: String,
    },
}

#[derive(Clone)]
pub struct UpstreamConfig {
    /// `host:port`.
    pub addr: String,
    pub database: String,
    pub user: String,
    pub password: Option<String>,
    pub tls: UpstreamTls,
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for UpstreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConfig")
            .field("addr", &self.addr)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("connecting to {0} timed out")]
    Timeout(String),
    #[error("the server refused TLS")]
    TlsRefused,
    #[error("TLS: {0}")]
    Tls(String),
    #[error("the server asked for a password and none is configured")]
    PasswordRequired,
    #[error("the server asked for a cleartext password over an unencrypted connection")]
    CleartextWithoutTls,
    #[error("unsupported authentication method {0}")]
    UnsupportedAuth(String),
    #[error("SCRAM: {0}")]
    Scram(std::io::Error),
    /// The server's own ErrorResponse (bad credentials, unknown database, …).
    #[error("the server refused: {message} (SQLSTATE {code})")]
    Server { code: String, message: String },
    #[error("protocol: {0}")]
    Frame(#[from] FrameError),
    #[error("unexpected message {0:?} from the server during startup")]
    Unexpected(char),
}

/// An authenticated connection, ready for queries.
pub struct Upstream {
    pub io: BufReader<Pin<Box<dyn ServerIo>>>,
    /// ParameterStatus values the server reported at startup.
    pub parameters: Vec<(String, String)>,
    /// The server's BackendKeyData: process id and secret, for CancelRequest.
    pub backend_pid: i32,
    pub backend_secret: Bytes,
    /// Transaction status of the first ReadyForQuery (`I`).
    pub status: u8,
}

const PROTOCOL_3_0: i32 = 196_608;
const SSL_REQUEST: i32 = 80_877_103;

impl Upstream {
    /// Connects, negotiates TLS when configured, authenticates, and reads up
    /// to the first ReadyForQuery. `params` are extra startup parameters
    /// (application_name, client_encoding, …) passed through from the agent.
    pub async fn connect(
        cfg: &UpstreamConfig,
        params: &[(String, String)],
    ) -> Result<Self, UpstreamError> {
        tokio::time::timeout(cfg.connect_timeout, Self::connect_inner(cfg, params))
            .await
            .map_err(|_| UpstreamError::Timeout(cfg.addr.clone()))?
    }

    async fn connect_inner(
        cfg: &UpstreamConfig,
        params: &[(String, String)],
    ) -> Result<Self, UpstreamError> {
        let tcp = TcpStream::connect(&cfg.addr)
            .await
            .map_err(|source| UpstreamError::Connect {
                addr: cfg.addr.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let (io, encrypted): (Pin<Box<dyn ServerIo>>, bool) = match &cfg.tls {
            UpstreamTls::Disable => (Box::pin(tcp), false),
            UpstreamTls::VerifyFull {
                ca_file,
                server_name,
            } => (
                Box::pin(start_tls(tcp, ca_file.as_deref(), server_name).await?),
                true,
            ),
        };
        let mut io = BufReader::new(io);

        let mut body = BytesMut::new();
        body.put_i32(PROTOCOL_3_0);
        let mut put = |k: &str, v: &str| {
            body.put_slice(k.as_bytes());
            body.put_u8(0);
            body.put_slice(v.as_bytes());
            body.put_u8(0);
        };
        put("user", &cfg.user);
        put("database", &cfg.database);
        // Keys the server reads as more than a setting never come from
        // the client's parameters (see `settings`).
        for (k, v) in params {
            if !super::startup::is_reserved_key(k) {
                put(k, v);
            }
        }
        body.put_u8(0);
        let mut packet = BytesMut::with_capacity(body.len() + 4);
        packet.put_i32((body.len() + 4) as i32);
        packet.put_slice(&body);
        io.write_all(&packet).await.map_err(FrameError::Io)?;
        io.flush().await.map_err(FrameError::Io)?;

        authenticate(&mut io, cfg, encrypted).await?;

        let mut parameters = Vec::new();
        let mut backend_pid = 0;
        let mut backend_secret = Bytes::new();
        loop {
            let f = next(&mut io).await?;
            match f.tag {
                b'S' => {
                    let mut r = BodyReader::new(&f.body, "ParameterStatus");
                    parameters.push((r.cstr()?.to_string(), r.cstr()?.to_string()));
                }
                b'K' => {
                    let mut r = BodyReader::new(&f.body, "BackendKeyData");
                    backend_pid = r.i32()?;
                    backend_secret = Bytes::copy_from_slice(r.rest());
                }
                b'N' => {}
                b'Z' => {
                    let status = f.body.first().copied().unwrap_or(b'I');
                    return Ok(Upstream {
                        io,
                        parameters,
                        backend_pid,
                        backend_secret,
                        status,
                    });
                }
                b'E' => return Err(server_error(&f.body)),
                other => return Err(UpstreamError::Unexpected(other as char)),
            }
        }
    }
}

async fn next<R: AsyncRead + Unpin>(io: &mut R) -> Result<Frame, UpstreamError> {
    frame::read_frame(io, 1 << 20)
        .await?
        .ok_or(UpstreamError::Frame(FrameError::Closed))
}

fn server_error(body: &[u8]) -> UpstreamError {
    let fields = frame::error_fields(body);
    let get = |c: u8| {
        fields
            .iter()
            .find(|(k, _)| *k == c)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    UpstreamError::Server {
        code: get(b'C'),
        message: get(b'M'),
    }
}

async fn send<W: AsyncWrite + Unpin>(io: &mut W, f: Frame) -> Result<(), UpstreamError> {
    frame::write_frames(io, &[f])
        .await
        .map_err(FrameError::Io)?;
    Ok(())
}

async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    cfg: &UpstreamConfig,
    encrypted: bool,
) -> Result<(), UpstreamError> {
    let password = || {
        cfg.password
            .as_deref()
            .ok_or(UpstreamError::PasswordRequired)
    };
    let mut scram: Option<ScramSha256> = None;
    loop {
        let f = next(io).await?;
        match f.tag {
            b'E' => return Err(server_error(&f.body)),
            b'R' => {}
            other => return Err(UpstreamError::Unexpected(other as char)),
        }
        let mut r = BodyReader::new(&f.body, "Authentication");
        match r.i32()? {
            0 => return Ok(()),
            3 => {
                if !encrypted {
                    return Err(UpstreamError::CleartextWithoutTls);
                }
                let mut body = password()?.as_bytes().to_vec();
                body.push(0);
                send(io, Frame::new(b'p', body)).await?;
            }
            5 => {
                let salt: [u8; 4] = r
                    .take(4)?
                    .try_into()
                    .map_err(|_| FrameError::Malformed { what: "md5 salt" })?;
                let hash = postgres_protocol::authentication::md5_hash(
                    cfg.user.as_bytes(),
                    password()?.as_bytes(),
                    salt,
                );
                let mut body = hash.into_bytes();
                body.push(0);
                send(io, Frame::new(b'p', body)).await?;
            }
            10 => {
                let mut offered = Vec::new();
                loop {
                    let m = r.cstr()?;
                    if m.is_empty() {
                        break;
                    }
                    offered.push(m.to_string());
                }
                if !offered.iter().any(|m| m == SCRAM_SHA_256) {
                    return Err(UpstreamError::UnsupportedAuth(format!(
                        "SASL {}",
                        offered.join(",")
                    )));
                }
                let s = ScramSha256::new(password()?.as_bytes(), ChannelBinding::unsupported());
                let mut body = BytesMut::new();
                body.put_slice(SCRAM_SHA_256.as_bytes());
                body.put_u8(0);
                body.put_i32(s.message().len() as i32);
                body.put_slice(s.message());
                send(io, Frame::new(b'p', body.freeze())).await?;
                scram = Some(s);
            }
            11 => {
                let s = scram.as_mut().ok_or(UpstreamError::Unexpected('R'))?;
                s.update(r.rest()).map_err(UpstreamError::Scram)?;
                send(io, Frame::new(b'p', Bytes::copy_from_slice(s.message()))).await?;
            }
            12 => {
                let s = scram.as_mut().ok_or(UpstreamError::Unexpected('R'))?;
                // Verifies the server's signature: a server that does not know
                // the password cannot complete the exchange.
                s.finish(r.rest()).map_err(UpstreamError::Scram)?;
            }
            code => return Err(UpstreamError::UnsupportedAuth(format!("code {code}"))),
        }
    }
}

async fn start_tls(
    mut tcp: TcpStream,
    ca_file: Option<&std::path::Path>,
    server_name: &str,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, UpstreamError> {
    let mut request = BytesMut::new();
    request.put_i32(8);
    request.put_i32(SSL_REQUEST);
    tcp.write_all(&request).await.map_err(FrameError::Io)?;
    let answer = tcp.read_u8().await.map_err(FrameError::Io)?;
    if answer != b'S' {
        return Err(UpstreamError::TlsRefused);
    }
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            use rustls::pki_types::pem::PemObject;
            let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
                .map_err(|e| UpstreamError::Tls(format!("{}: {e}", path.display())))?;
            for cert in certs {
                let cert =
                    cert.map_err(|e| UpstreamError::Tls(format!("{}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| UpstreamError::Tls(format!("{}: {e}", path.display())))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| UpstreamError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(server_name.to_string())
        .map_err(|e| UpstreamError::Tls(format!("server name {server_name:?}: {e}")))?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| UpstreamError::Tls(e.to_string()))
}
