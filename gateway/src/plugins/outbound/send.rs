//! The `wasi:http` hooks of one plugin instance: the grant check, then the
//! request, over TLS verified against the system's roots for `https`.
//!
//! wasmtime-wasi-http's own sender trusts only its bundled Mozilla roots and
//! waits up to ten minutes by default; this one uses the roots the HTTP data
//! path uses and never waits past the deadline of the plugin call that sent
//! the request.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::http::uri::Scheme;
use hyper::{Request, Response, Uri};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::{HttpDestination, check};

/// What a request may take when the call has no deadline (never the case
/// for plugin calls, which all have one).
const NO_DEADLINE: Duration = Duration::from_secs(60);

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;
type SendFuture = Box<dyn Future<Output = Result<(Response<WasiBody>, IoFuture), Error>> + Send>;

/// Per-instance state of outbound HTTP: whose requests, what is granted,
/// and until when the current call may run.
pub(crate) struct OutboundHttp {
    plugin: Arc<str>,
    granted: Arc<[HttpDestination]>,
    deadline: Option<Instant>,
}

impl OutboundHttp {
    pub(crate) fn new(plugin: Arc<str>, granted: Arc<[HttpDestination]>) -> Self {
        Self {
            plugin,
            granted,
            deadline: None,
        }
    }

    /// Set before every call: requests of the call are cut off then.
    pub(crate) fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = Some(deadline);
    }
}

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: IoFuture,
    ) -> SendFuture {
        if let Err(denied) = check(&self.granted, request.uri()) {
            tracing::warn!(plugin = %self.plugin, method = %request.method(),
                "outbound HTTP request refused: {denied}");
            metrics::counter!("sluice_plugin_http_requests_total",
                "plugin" => self.plugin.to_string(), "outcome" => "denied")
            .increment(1);
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        metrics::counter!("sluice_plugin_http_requests_total",
            "plugin" => self.plugin.to_string(), "outcome" => "sent")
        .increment(1);
        let budget = self
            .deadline
            .map_or(NO_DEADLINE, |d| d.saturating_duration_since(Instant::now()));
        Box::new(send(request, options, budget))
    }
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// HTTP/1.1 on a fresh connection: connect, TLS for https, one request.
async fn send(
    mut request: Request<WasiBody>,
    options: Option<RequestOptions>,
    budget: Duration,
) -> Result<(Response<WasiBody>, IoFuture), Error> {
    let started = Instant::now();
    let left = || budget.saturating_sub(started.elapsed());
    let within = |asked: Option<Duration>| asked.map_or(left(), |a| a.min(left()));
    let connect_timeout = within(options.and_then(|o| o.connect_timeout));

    let uri = request.uri().clone();
    let https = uri.scheme() == Some(&Scheme::HTTPS);
    let host = uri
        .host()
        .ok_or(Error::HttpRequestUriInvalid)?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });

    let tcp = tokio::time::timeout(connect_timeout, TcpStream::connect((host.as_str(), port)))
        .await
        .map_err(|_| Error::ConnectionTimeout)?
        .map_err(Error::Connect)?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Stream> = if https {
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|_| Error::HttpRequestUriInvalid)?;
        let connector = tokio_rustls::TlsConnector::from(tls_config()?);
        let tls = tokio::time::timeout(connect_timeout, connector.connect(name, tcp))
            .await
            .map_err(|_| Error::ConnectionTimeout)?
            .map_err(Error::Tls)?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let (mut sender, connection) = tokio::time::timeout(
        within(options.and_then(|o| o.connect_timeout)),
        hyper::client::conn::http1::handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;
    // The connection outlives this future only as long as the call may.
    let life = left();
    let driver = tokio::spawn(async move {
        match tokio::time::timeout(life, connection).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::from(e)),
            Err(_) => Err(Error::ConnectionReadTimeout),
        }
    });

    // On the wire the request line carries only the path; the host was
    // checked against the grant and travels in the Host header.
    let path = uri
        .path_and_query()
        .map_or_else(|| "/".to_string(), |p| p.as_str().to_string());
    *request.uri_mut() = Uri::try_from(path).map_err(|_| Error::HttpRequestUriInvalid)?;

    let response = tokio::time::timeout(
        within(options.and_then(|o| o.first_byte_timeout)),
        sender.send_request(request),
    )
    .await
    .map_err(|_| Error::ConnectionReadTimeout)??;
    let response = response.map(|body| body.map_err(Error::from).boxed_unsync());
    let io: IoFuture = Box::new(async move {
        match driver.await {
            Ok(result) => result,
            Err(e) => Err(Error::InternalError(Some(e.to_string()))),
        }
    });
    Ok((response, io))
}

/// One client configuration for every plugin: the system's roots (the
/// bundled ones when the system has none), HTTP/1.1 only.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, Error> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut config = crate::tls::client_config(None).map_err(|e| e.to_string())?;
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(Arc::new(config))
        })
        .clone()
        .map_err(|e| Error::InternalError(Some(format!("TLS client configuration: {e}"))))
}
