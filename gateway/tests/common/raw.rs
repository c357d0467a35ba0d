//! A PostgreSQL client speaking the wire protocol itself, for what no driver
//! sends: a Bind to a statement prepared with SQL `PREPARE`, binary values
//! for a type other than the statement's, batches pipelined behind a
//! failing one.

use bytes::BytesMut;
use postgres_protocol::IsNull;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::gateway::Gateway;

/// What a raw-protocol exchange returned up to ReadyForQuery: data row
/// values (text), the SQLSTATE and message of the first error, if any, and
/// the transaction status ReadyForQuery reported (`I`, `T` or `E`).
#[derive(Debug, Default)]
pub struct Replies {
    pub rows: Vec<Vec<Option<String>>>,
    pub error: Option<(String, String)>,
    pub status: u8,
    /// A BackendKeyData's process id and secret.
    pub key: Option<(i32, Vec<u8>)>,
}

impl Replies {
    pub fn code(&self) -> Option<&str> {
        self.error.as_ref().map(|e| e.0.as_str())
    }
}

pub struct RawSession {
    stream: tokio::net::TcpStream,
    buf: BytesMut,
    /// The cancel key the gateway gave this session.
    pub key: (i32, Vec<u8>),
}

impl RawSession {
    /// A plaintext session to `appdb` as `agent-1` in `group`.
    pub async fn connect(gw: &Gateway, group: &str) -> Self {
        match Self::login(gw, group, &[]).await {
            Ok(s) => {
                assert!(!s.key.1.is_empty(), "no BackendKeyData");
                s
            }
            Err(e) => panic!("login refused: {e:?}"),
        }
    }

    /// A plaintext login to `appdb` as `agent-1` in `group`, with `params`
    /// in the startup message besides user and database: the session, or
    /// the SQLSTATE and message of the error that refused it.
    pub async fn login(
        gw: &Gateway,
        group: &str,
        params: &[(&str, &str)],
    ) -> Result<Self, (String, String)> {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", gw.pg_port))
            .await
            .unwrap();
        let mut s = RawSession {
            stream,
            buf: BytesMut::new(),
            key: (0, Vec::new()),
        };
        let mut out = BytesMut::new();
        let all = [("user", "agent-1"), ("database", "appdb")]
            .into_iter()
            .chain(params.iter().copied());
        frontend::startup_message(all, &mut out).unwrap();
        s.send(&out).await;
        let token = gw.token_for("agent-1", &[group]);
        let (tag, body) = s.next().await;
        assert_eq!(
            (tag, &body[..]),
            (b'R', &3i32.to_be_bytes()[..]),
            "cleartext password asked"
        );
        let mut out = BytesMut::new();
        frontend::password_message(token.as_bytes(), &mut out).unwrap();
        s.send(&out).await;
        loop {
            // A refusal is FATAL: the connection closes after it.
            match s.next().await {
                (b'E', body) => return Err(error_of(&body)),
                (b'K', body) => {
                    let pid = i32::from_be_bytes(body[..4].try_into().unwrap());
                    s.key = (pid, body[4..].to_vec());
                }
                (b'Z', _) => return Ok(s),
                _ => {}
            }
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next backend message: its tag and body.
    pub async fn next(&mut self) -> (u8, Vec<u8>) {
        loop {
            if self.buf.len() >= 5 {
                let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]);
                let total = 1 + len as usize;
                if self.buf.len() >= total {
                    let message = self.buf.split_to(total);
                    return (message[0], message[5..].to_vec());
                }
            }
            let n = self.stream.read_buf(&mut self.buf).await.unwrap();
            assert!(n > 0, "the gateway closed the connection");
        }
    }

    pub async fn until_ready(&mut self) -> Replies {
        let mut replies = Replies::default();
        loop {
            let (tag, body) = self.next().await;
            match tag {
                b'Z' => {
                    replies.status = body.first().copied().unwrap_or_default();
                    return replies;
                }
                b'K' => {
                    let pid = i32::from_be_bytes(body[..4].try_into().unwrap());
                    replies.key = Some((pid, body[4..].to_vec()));
                }
                b'D' => {
                    let mut at = 2;
                    let mut values = Vec::new();
                    for _ in 0..i16::from_be_bytes([body[0], body[1]]) {
                        let len = i32::from_be_bytes(body[at..at + 4].try_into().unwrap());
                        at += 4;
                        if len < 0 {
                            values.push(None);
                        } else {
                            let end = at + len as usize;
                            values.push(Some(String::from_utf8_lossy(&body[at..end]).into_owned()));
                            at = end;
                        }
                    }
                    replies.rows.push(values);
                }
                b'E' => {
                    replies.error.get_or_insert(error_of(&body));
                }
                _ => {}
            }
        }
    }

    /// Sends a simple Query; every message up to ReadyForQuery, raw.
    pub async fn query_messages(&mut self, sql: &str) -> Vec<(u8, Vec<u8>)> {
        let mut out = BytesMut::new();
        frontend::query(sql, &mut out).unwrap();
        self.send(&out).await;
        self.messages().await
    }

    /// Every message up to ReadyForQuery, raw.
    pub async fn messages(&mut self) -> Vec<(u8, Vec<u8>)> {
        let mut messages = Vec::new();
        loop {
            let m = self.next().await;
            let done = m.0 == b'Z';
            messages.push(m);
            if done {
                return messages;
            }
        }
    }

    /// Ends the session as a client does (Terminate).
    pub async fn terminate(&mut self) {
        let mut out = BytesMut::new();
        frontend::terminate(&mut out);
        self.send(&out).await;
    }

    /// Messages until one with `tag`.
    pub async fn until(&mut self, tag: u8) {
        while self.next().await.0 != tag {}
    }

    /// Messages until the gateway closes the connection: the SQLSTATE and
    /// severity of each error among them.
    pub async fn until_closed(&mut self) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        loop {
            if self.buf.len() < 5 {
                let n = self.stream.read_buf(&mut self.buf).await.unwrap_or(0);
                if n == 0 {
                    return errors;
                }
                continue;
            }
            let (tag, body) = self.next().await;
            if tag == b'E' {
                let field = |c: u8| {
                    body.split(|b| *b == 0)
                        .find(|f| f.first() == Some(&c))
                        .map(|f| String::from_utf8_lossy(&f[1..]).into_owned())
                        .unwrap_or_default()
                };
                errors.push((field(b'C'), field(b'S')));
            }
        }
    }

    pub async fn query(&mut self, sql: &str) -> Replies {
        let mut out = BytesMut::new();
        frontend::query(sql, &mut out).unwrap();
        self.send(&out).await;
        self.until_ready().await
    }

    /// Parse of statement `name`, then Sync.
    pub async fn parse(&mut self, name: &str, sql: &str) -> Replies {
        self.parse_typed(name, sql, &[]).await
    }

    /// Parse of statement `name` declaring parameter types, then Sync.
    pub async fn parse_typed(&mut self, name: &str, sql: &str, types: &[u32]) -> Replies {
        let mut out = BytesMut::new();
        frontend::parse(name, sql, types.iter().copied(), &mut out).unwrap();
        frontend::sync(&mut out);
        self.send(&out).await;
        self.until_ready().await
    }

    /// Close of statement `name`, then Sync.
    pub async fn close(&mut self, name: &str) -> Replies {
        let mut out = BytesMut::new();
        frontend::close(b'S', name, &mut out).unwrap();
        frontend::sync(&mut out);
        self.send(&out).await;
        self.until_ready().await
    }

    /// Bind (text parameters), Execute, Sync on statement `name`.
    pub async fn run_prepared(&mut self, name: &str, params: &[&str]) -> Replies {
        self.run_bound(name, 0, params.iter().map(|p| p.as_bytes()))
            .await
    }

    /// Bind with parameters all in `format` (0 text, 1 binary), Execute,
    /// Sync on statement `name`.
    pub async fn run_bound<'a>(
        &mut self,
        name: &str,
        format: i16,
        params: impl Iterator<Item = &'a [u8]>,
    ) -> Replies {
        let mut out = BytesMut::new();
        bind(&mut out, name, format, params);
        frontend::execute("", 0, &mut out).unwrap();
        frontend::sync(&mut out);
        self.send(&out).await;
        self.until_ready().await
    }
}

/// The SQLSTATE and message of an ErrorResponse body.
pub fn error_of(body: &[u8]) -> (String, String) {
    let (mut code, mut message) = (String::new(), String::new());
    for field in body.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        let value = String::from_utf8_lossy(&field[1..]).into_owned();
        match field[0] {
            b'C' => code = value,
            b'M' => message = value,
            _ => {}
        }
    }
    (code, message)
}

/// COPY data, then CopyDone.
pub fn copy_in(out: &mut BytesMut, data: &[u8]) {
    frontend::CopyData::new(data)
        .expect("COPY data fits a message")
        .write(out);
    frontend::copy_done(out);
}

/// A Bind of statement `name` to the unnamed portal, its parameters all in
/// `format`, text results.
pub fn bind<'a>(
    out: &mut BytesMut,
    name: &str,
    format: i16,
    params: impl Iterator<Item = &'a [u8]>,
) {
    bind_portal(out, "", name, format, params);
}

/// A Bind of statement `name` to `portal`, as [`bind`].
pub fn bind_portal<'a>(
    out: &mut BytesMut,
    portal: &str,
    name: &str,
    format: i16,
    params: impl Iterator<Item = &'a [u8]>,
) {
    let bound = frontend::bind(
        portal,
        name,
        [format],
        params,
        |p, buf| {
            buf.extend_from_slice(p);
            Ok(IsNull::No)
        },
        [0i16],
        out,
    );
    assert!(bound.is_ok());
}
