//! Real servers on loopback and real clients for the integration tests.

#![allow(dead_code)]

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use coffer_https::{serve, Limits, ServeError};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// How long a test waits for something that must happen "eventually" before it fails. It is
/// a hang guard, far above any limit the tests configure, not a timing assertion.
pub const EVENTUALLY: Duration = Duration::from_secs(30);

/// A limit no test can reach: for the timeouts a test is not about.
pub const NEVER: Duration = Duration::from_secs(3600);

pub const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));

/// Another loopback address, so that one test can play two clients.
pub fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// Limits with every timeout out of reach; each test lowers the one it is about.
pub fn patient_limits() -> Limits {
    Limits {
        tls_handshake: NEVER,
        header_read: NEVER,
        request: NEVER,
        write_stall: NEVER,
        drain: NEVER,
        ..Limits::default()
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub fingerprint: String,
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<JoinHandle<Result<(), ServeError>>>,
}

/// Serves `router` with `limits` on a loopback port chosen now.
pub async fn start(limits: Limits, router: Router) -> TestServer {
    let identity =
        coffer_tls::development_identity(&["localhost".into(), "127.0.0.1".into()]).unwrap();
    let fingerprint = coffer_tls::fingerprint(&identity.cert_der);
    let tls = coffer_tls::server_config(&identity).unwrap();
    start_with_tls(limits, router, tls, fingerprint).await
}

pub async fn start_with_tls(
    limits: Limits,
    router: Router,
    tls: rustls::ServerConfig,
    fingerprint: String,
) -> TestServer {
    let listener = TcpListener::bind((LOCAL, 0)).await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let (ready, is_ready) = oneshot::channel();
    let task = tokio::spawn(serve(
        listener,
        tls,
        router,
        limits,
        async move {
            let _ = stopped.await;
        },
        move |addr| {
            let _ = ready.send(addr);
        },
    ));
    let addr = is_ready.await.unwrap();
    TestServer {
        addr,
        fingerprint,
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// A real HTTPS client (reqwest, HTTP/1.1) pinned to this server, connecting from `from`,
    /// one connection per request.
    pub fn client_from(&self, from: IpAddr) -> reqwest::Client {
        reqwest::Client::builder()
            .use_preconfigured_tls(coffer_tls::pinned_client_config(&[&self.fingerprint]).unwrap())
            .local_address(from)
            .pool_max_idle_per_host(0)
            .timeout(EVENTUALLY)
            .build()
            .unwrap()
    }

    pub fn client(&self) -> reqwest::Client {
        self.client_from(LOCAL)
    }

    /// Asks the server to stop (its shutdown future resolves).
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits until `serve` has returned.
    pub async fn stopped(&mut self) -> Result<(), ServeError> {
        let task = self.task.take().expect("stopped twice");
        eventually(task).await.unwrap()
    }

    /// A TLS connection from `from`, offering `alpn`.
    pub async fn tls_from_with_alpn(
        &self,
        from: IpAddr,
        alpn: &[&[u8]],
    ) -> io::Result<TlsStream<TcpStream>> {
        let tcp = tcp_from(from, self.addr).await?;
        let mut config = coffer_tls::pinned_client_config(&[&self.fingerprint]).unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
    }

    pub async fn tls_from(&self, from: IpAddr) -> io::Result<TlsStream<TcpStream>> {
        self.tls_from_with_alpn(from, &[b"http/1.1"]).await
    }
}

/// A TCP connection to `to` from the local address `from` (bound before connecting).
pub async fn tcp_from(from: IpAddr, to: SocketAddr) -> io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

/// `fut`, or a panic if it does not finish within [`EVENTUALLY`].
pub async fn eventually<F: Future>(fut: F) -> F::Output {
    match tokio::time::timeout(EVENTUALLY, fut).await {
        Ok(out) => out,
        Err(_) => panic!("did not happen within {EVENTUALLY:?}"),
    }
}

/// Everything the peer sends until it closes (a reset or a TLS error counts as closing).
pub async fn read_until_closed<S: AsyncRead + Unpin>(stream: &mut S) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
    }
}

/// Whether the peer closes this connection within [`EVENTUALLY`].
pub async fn closes<S: AsyncRead + Unpin>(stream: &mut S) -> bool {
    tokio::time::timeout(EVENTUALLY, read_until_closed(stream))
        .await
        .is_ok()
}

/// An HTTP/1.1 answer read off a raw stream.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// Reads one answer with a `Content-Length` body (all this crate's answers have one).
pub async fn read_response<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<RawResponse> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed mid-head",
            ));
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = data[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed mid-body",
            ));
        }
        body.extend_from_slice(&buf[..n]);
    }
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

/// Sends `request` and reads the answer.
pub async fn exchange<S: AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    request: &[u8],
) -> io::Result<RawResponse> {
    stream.write_all(request).await?;
    stream.flush().await?;
    read_response(stream).await
}

/// Checks that `body` is this crate's typed error of `class`, and returns it.
pub fn assert_typed_error(body: &serde_json::Value, class: &str) {
    let error = &body["error"];
    assert_eq!(error["class"], class, "{body}");
    assert!(error["message"].is_string(), "{body}");
    assert!(error["retryable"].is_boolean(), "{body}");
}
