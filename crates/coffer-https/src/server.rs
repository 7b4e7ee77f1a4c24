//! The accept loop, one task per connection, and graceful shutdown.

use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::caps::{ConnectionCaps, OverCap, Slot};
use crate::limits::{descriptor_budget, raise_descriptor_limit, Limits, MIN_HEAD};
use crate::service::handle;
use crate::stall::StallGuard;

/// Where to serve: a listener the caller bound, or an address to bind.
#[derive(Debug)]
pub enum Listen {
    Bound(TcpListener),
    Address(SocketAddr),
}

impl From<TcpListener> for Listen {
    fn from(listener: TcpListener) -> Self {
        Self::Bound(listener)
    }
}

impl From<SocketAddr> for Listen {
    fn from(addr: SocketAddr) -> Self {
        Self::Address(addr)
    }
}

/// Why a server could not start. Once it serves, nothing stops it but the shutdown future:
/// failures of single connections are logged and end only that connection.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the listening address: {0}")]
    LocalAddr(#[source] io::Error),
    #[error(
        "the open-file limit ({limit}) leaves no descriptors for client connections; raise it (ulimit -n)"
    )]
    TooFewDescriptors { limit: u64 },
}

impl ServeError {
    /// Whether starting again may work without a change of configuration (a port still held
    /// by a process that is ending).
    pub fn retryable(&self) -> bool {
        matches!(self, Self::Bind { source, .. } if source.kind() == io::ErrorKind::AddrInUse)
    }
}

/// Serves `router` over HTTPS (HTTP/1.1 only) on `listen` until `shutdown` resolves.
///
/// `ready` is called with the bound address once connections are accepted. Handlers can
/// extract the client's address as `ConnectInfo<SocketAddr>`. The TLS configuration's ALPN
/// list is replaced by `http/1.1` alone. At start the soft open-file limit is raised to the
/// hard one, and the connection cap is kept below it ([`crate::descriptor_budget`]).
///
/// On shutdown the listener is dropped at once (new connections are refused), idle
/// connections are closed, requests in flight may finish within [`Limits::drain`] (their
/// connections close after the answer), then whatever remains is dropped and `serve` returns.
pub async fn serve(
    listen: impl Into<Listen>,
    tls: rustls::ServerConfig,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
    ready: impl FnOnce(SocketAddr) + Send,
) -> Result<(), ServeError> {
    let max_connections = match raise_descriptor_limit() {
        Some(limit) => descriptor_budget(limits.max_connections, limit)
            .ok_or(ServeError::TooFewDescriptors { limit })?,
        None => limits.max_connections,
    };
    if max_connections < limits.max_connections {
        tracing::warn!(
            "the open-file limit allows {max_connections} client connections, not the {} configured",
            limits.max_connections
        );
    }
    let listener = match listen.into() {
        Listen::Bound(listener) => listener,
        Listen::Address(addr) => TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?,
    };
    let addr = listener.local_addr().map_err(ServeError::LocalAddr)?;

    let mut tls = tls;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let shared = Arc::new(Shared {
        acceptor: TlsAcceptor::from(Arc::new(tls)),
        http: http1_builder(&limits),
        router,
        limits: Arc::new(limits),
    });
    let caps = ConnectionCaps::new(max_connections, shared.limits.max_connections_per_address);
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();

    ready(addr);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            // Shutdown first: once asked, not one more connection is taken.
            biased;
            () = &mut shutdown => break,
            Some(done) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = done {
                    if e.is_panic() {
                        tracing::error!("a connection task panicked");
                    }
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match caps.admit(peer.ip()) {
                    Ok(slot) => {
                        connections.spawn(connection(stream, peer, slot, shared.clone(), stopped.clone()));
                    }
                    Err(over) => refuse(stream, peer, over),
                },
                Err(e) => accept_failed(e).await,
            },
        }
    }
    drop(listener);
    // Receivers never outlive this function's tasks; a send error means none is left.
    let _ = stop.send(true);
    let drained = tokio::time::timeout(shared.limits.drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "{} connections were still busy when the drain time ran out; dropping them",
            connections.len()
        );
        connections.shutdown().await;
    }
    Ok(())
}

struct Shared {
    acceptor: TlsAcceptor,
    http: http1::Builder,
    router: Router,
    limits: Arc<Limits>,
}

fn http1_builder(limits: &Limits) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .max_buf_size(limits.max_head.max(MIN_HEAD))
        .keep_alive(true)
        .half_close(false);
    builder
}

/// Closed at once: no TLS, no task, no buffer.
fn refuse(stream: TcpStream, peer: SocketAddr, over: OverCap) {
    drop(stream);
    match over {
        OverCap::Total => tracing::debug!("refused {peer}: too many connections"),
        OverCap::Address => {
            tracing::debug!("refused {peer}: too many connections from its address")
        }
    }
}

/// An accept error ends no server. Out of descriptors or memory, the loop pauses (the
/// connection waits in the backlog) instead of spinning.
async fn accept_failed(e: io::Error) {
    match e.kind() {
        io::ErrorKind::ConnectionAborted
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::Interrupted => {}
        _ => {
            tracing::warn!("accept failed: {e}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    // Held until the connection ends: it is the connection's place under the caps.
    let _slot = slot;
    let _ = stream.set_nodelay(true);
    let handshake =
        tokio::time::timeout(shared.limits.tls_handshake, shared.acceptor.accept(stream));
    let tls = tokio::select! {
        done = handshake => match done {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                tracing::debug!("TLS handshake with {peer} failed: {e}");
                return;
            }
            Err(_) => {
                tracing::debug!("TLS handshake with {peer} timed out");
                return;
            }
        },
        () = stop_requested(&mut stopped) => return,
    };
    let io = TokioIo::new(StallGuard::new(tls, shared.limits.write_stall));
    let router = shared.router.clone();
    let limits = shared.limits.clone();
    // Boxed so that the connection is `Unpin` and can hand its stream back for `linger`.
    let service = hyper::service::service_fn(move |req| {
        Box::pin(handle(router.clone(), peer, limits.clone(), req))
    });
    let mut conn = shared.http.serve_connection(io, service);
    let served = tokio::select! {
        served = poll_fn(|cx| conn.poll_without_shutdown(cx)) => served,
        () = stop_requested(&mut stopped) => {
            // Idle: closed now. Busy: the answer goes out with `Connection: close`.
            std::pin::Pin::new(&mut conn).graceful_shutdown();
            poll_fn(|cx| conn.poll_without_shutdown(cx)).await
        }
    };
    if let Err(e) = served {
        tracing::debug!("connection with {peer} ended: {e}");
    }
    // Once the server is stopping, nothing lingers: the drain time is for answers.
    tokio::select! {
        () = linger(conn.into_parts().io.into_inner()) => {}
        () = stop_requested(&mut stopped) => {}
    }
}

/// Longest a closed connection is drained ([`linger`]).
const LINGER_TIME: Duration = Duration::from_secs(5);
/// Most bytes drained from a closed connection.
const LINGER_BYTES: usize = 16 * 1024 * 1024;

/// Closes our side of a finished connection (TLS `close_notify`, then TCP FIN) and reads and
/// drops whatever the client still sends, within [`LINGER_TIME`] and [`LINGER_BYTES`].
///
/// The server may answer before it has read the whole request (a body declared too large,
/// a head too long, a request that timed out). Closing a socket with unread bytes makes TCP
/// send a reset, and a reset makes the client's system discard the answer it has not read
/// yet: the client would see a broken connection instead of its 413. A client that closes
/// as it should ends this at once.
async fn linger<S: AsyncRead + AsyncWrite + Unpin>(mut io: S) {
    let drain = async {
        if io.shutdown().await.is_err() {
            return;
        }
        let mut buf = vec![0u8; 16 * 1024];
        let mut drained = 0;
        while drained < LINGER_BYTES {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => drained += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

async fn stop_requested(stopped: &mut watch::Receiver<bool>) {
    // An error means the server is gone: stop as well.
    let _ = stopped.wait_for(|stop| *stop).await;
}
