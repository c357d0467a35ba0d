//! A webhook endpoint for the audit-webhook tests: HTTPS with its own CA,
//! recording each POST of events, and able to fail the ways endpoints fail
//! (503, not listening at all, taking a batch but losing the response).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::Value;

/// One POST that the endpoint took (answered or not).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub key: String,
    pub ids: Vec<String>,
    /// False when the endpoint kept the events but the response was lost.
    pub answered: bool,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Up,
    /// 503 to everything; nothing is kept.
    Unavailable,
    /// Keeps the next batch, then closes the connection without answering;
    /// up again afterwards.
    LoseNextResponse,
}

#[derive(Default)]
struct Shared {
    mode: Option<Mode>,
    deliveries: Vec<Delivery>,
    refused: usize,
}

pub struct Endpoint {
    rt: tokio::runtime::Runtime,
    pub port: u16,
    pub ca_pem: String,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Mutex<Shared>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop_listening();
    }
}

impl Endpoint {
    /// Listening on a free loopback port, up.
    pub fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let (config, ca_pem) = super::http::tls_config();
        let mut endpoint = Endpoint {
            port: listener.local_addr().unwrap().port(),
            rt,
            ca_pem,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            shared: Arc::new(Mutex::new(Shared {
                mode: Some(Mode::Up),
                ..Shared::default()
            })),
            task: None,
        };
        endpoint.serve(listener);
        endpoint
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    pub fn set_mode(&self, mode: Mode) {
        self.shared.lock().unwrap().mode = Some(mode);
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.lock().unwrap().deliveries.clone()
    }

    /// Requests answered with 503.
    pub fn refused(&self) -> usize {
        self.shared.lock().unwrap().refused
    }

    /// Event ids in the order they first arrived, each once: what a
    /// receiver that drops repeats by id keeps.
    pub fn unique_ids(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.deliveries()
            .into_iter()
            .flat_map(|d| d.ids)
            .filter(|id| seen.insert(id.clone()))
            .collect()
    }

    /// Closes the listening socket: connections are refused.
    pub fn stop_listening(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = self.rt.block_on(task);
        }
    }

    /// Listens again on the same port.
    pub fn listen_again(&mut self) {
        let listener = self
            .rt
            .block_on(tokio::net::TcpListener::bind(("127.0.0.1", self.port)))
            .unwrap();
        self.serve(listener);
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let shared = self.shared.clone();
        let acceptor = self.acceptor.clone();
        self.task = Some(self.rt.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let shared = shared.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        async move { answer(req, shared).await }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        }));
    }
}

async fn answer(
    req: Request<Incoming>,
    shared: Arc<Mutex<Shared>>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (key, authorization, content_type) = (
        header("idempotency-key").unwrap_or_default(),
        header("authorization"),
        header("content-type"),
    );
    let ok_path = req.uri().path() == "/sluice/events";
    let body = req.into_body().collect().await.map(|b| b.to_bytes());
    let mut shared = shared.lock().unwrap();
    let mode = shared.mode.unwrap_or(Mode::Up);
    let reply = |status: StatusCode| {
        let mut r = Response::new(Full::new(Bytes::from_static(b"{}")));
        *r.status_mut() = status;
        Ok(r)
    };
    if !ok_path {
        return reply(StatusCode::NOT_FOUND);
    }
    if mode == Mode::Unavailable {
        shared.refused += 1;
        return reply(StatusCode::SERVICE_UNAVAILABLE);
    }
    let Ok(body) = body else {
        return reply(StatusCode::BAD_REQUEST);
    };
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        return reply(StatusCode::BAD_REQUEST);
    };
    let ids = json["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter_map(|e| e["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let answered = mode != Mode::LoseNextResponse;
    shared.deliveries.push(Delivery {
        key,
        ids,
        answered,
        authorization,
        content_type,
    });
    if !answered {
        shared.mode = Some(Mode::Up);
        // An error from the service makes hyper close the connection
        // without a response: the batch is taken, the answer lost.
        return Err(std::io::Error::other("response lost"));
    }
    reply(StatusCode::OK)
}
