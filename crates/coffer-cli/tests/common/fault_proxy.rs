//! A fault-injecting TCP proxy for the end-to-end tests.
//!
//! It sits between `coffer` and a plain-HTTP storage server (moto, wsgidav) and forwards
//! bytes unchanged until a [`Fault`] is set; then it cuts uploads, answers with HTTP errors,
//! slows or stalls the traffic, or flips a bit of a download. That is how the tests check
//! that coffer survives (or reports) a bad network without a real one.
//!
//! It uses std only, with blocking threads: one accepts, and each connection gets one
//! thread per direction. Every `coffer` command is its own process with fresh connections,
//! so the per-connection faults count connections. Dropping the proxy shuts everything.

use std::collections::HashMap;
use std::io::ErrorKind::{Interrupted, TimedOut, WouldBlock};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A running proxy; stops (listener closed, connections shut) when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

/// What the proxy actually did, so a test can assert that a fault really fired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Accepted client connections.
    pub connections: u64,
    /// Connections cut by [`Fault::CutUpload`].
    pub cut: u64,
    /// Requests answered by [`Fault::ErrorStatus`].
    pub error_responses: u64,
    /// Bits flipped by [`Fault::CorruptDownload`].
    pub corrupted: u64,
    /// Bytes forwarded client → server.
    pub bytes_up: u64,
    /// Bytes forwarded server → client.
    pub bytes_down: u64,
}

#[derive(Debug, Clone)]
pub enum Fault {
    None,
    /// Mid-upload cut: a connection is shut down (both directions, abruptly) once it has carried
    /// `after_bytes` bytes from client to server. Applies to the next `times` connections that
    /// reach that many bytes (None = every connection).
    CutUpload {
        after_bytes: u64,
        times: Option<u32>,
    },
    /// Mid-download cut: like `CutUpload`, for the bytes from server to client.
    CutDownload {
        after_bytes: u64,
        times: Option<u32>,
    },
    /// Answers a request with this HTTP status (and a small S3-style XML error) instead of
    /// forwarding it, then closes the connection. Applies to the next `times` new connections
    /// that send a request head (None = all). The request body (per Content-Length) is read
    /// and discarded first, so the client sees the response rather than a reset. Connections
    /// not chosen are forwarded untouched, including the bytes already read.
    ErrorStatus {
        status: u16,
        times: Option<u32>,
    },
    /// Slow network: every forwarded piece (both directions) waits `delay` first; pieces are at
    /// most `piece` bytes. Applies at once, also to data still flowing.
    Slow {
        delay: Duration,
        piece: usize,
    },
    /// A hung server: accepts connections and reads from the client, but never forwards or
    /// answers until the fault is replaced or the proxy dropped (then the connection is closed).
    Stall,
    /// Corrupted download: flips one bit of the server→client byte at offset `at` of a
    /// connection's downstream byte stream, for the next `times` connections whose downstream
    /// reaches `at` bytes (None = all).
    CorruptDownload {
        at: u64,
        times: Option<u32>,
    },
}

/// The active fault. `gen` changes with every `set`, so a connection only ever applies the
/// fault that was active when it was accepted; `left` is that fault's remaining `times`.
struct State {
    fault: Fault,
    gen: u64,
    left: Option<u32>,
}

struct Shared {
    upstream: SocketAddr,
    state: Mutex<State>,
    stats: Mutex<Stats>,
    stop: AtomicBool,
    /// Clones of every open socket, by connection, so that dropping the proxy can shut them.
    open: Mutex<HashMap<u64, Vec<TcpStream>>>,
}

/// Locks ignoring poisoning: a panicking test must not cascade into the proxy's threads.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FaultProxy {
    /// Listens on 127.0.0.1:0 and forwards to `upstream`.
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("fault proxy: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fault proxy: local address");
        let shared = Arc::new(Shared {
            upstream,
            state: Mutex::new(State {
                fault: Fault::None,
                gen: 0,
                left: None,
            }),
            stats: Mutex::new(Stats::default()),
            stop: AtomicBool::new(false),
            open: Mutex::new(HashMap::new()),
        });
        let s = Arc::clone(&shared);
        let accept = thread::spawn(move || accept_loop(s, listener));
        FaultProxy {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// "http://127.0.0.1:PORT"
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the active fault (and resets its `times`); applies to connections accepted
    /// from now on, and for `Slow` also to data still flowing.
    pub fn set(&self, fault: Fault) {
        let mut s = lock(&self.shared.state);
        s.left = match fault {
            Fault::CutUpload { times, .. }
            | Fault::CutDownload { times, .. }
            | Fault::ErrorStatus { times, .. }
            | Fault::CorruptDownload { times, .. } => times,
            _ => None,
        };
        s.gen += 1;
        s.fault = fault;
    }

    /// Same as `set(Fault::None)`.
    pub fn clear(&self) {
        self.set(Fault::None);
    }

    pub fn stats(&self) -> Stats {
        lock(&self.shared.stats).clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        {
            // `stop` is set under the `open` lock, so no socket registers after this sweep.
            let open = lock(&self.shared.open);
            self.shared.stop.store(true, Ordering::SeqCst);
            for s in open.values().flatten() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        // Wake the blocking accept; the thread sees `stop` and drops the listener.
        if TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)).is_ok() {
            if let Some(t) = self.accept.take() {
                let _ = t.join();
            }
        }
    }
}

impl Shared {
    fn stat(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut lock(&self.stats))
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Takes one use of the fault of generation `gen`, atomically: false once that fault was
    /// replaced or used up.
    fn claim(&self, gen: u64) -> bool {
        let mut s = lock(&self.state);
        match s.left {
            _ if s.gen != gen => false,
            None => true,
            Some(0) => false,
            Some(n) => {
                s.left = Some(n - 1);
                true
            }
        }
    }

    /// The live `Slow` setting, if any: (delay, piece size).
    fn slow(&self) -> Option<(Duration, usize)> {
        match lock(&self.state).fault {
            Fault::Slow { delay, piece } => Some((delay, piece.max(1))),
            _ => None,
        }
    }

    /// Registers a socket of connection `id` for shutdown on drop; false if already stopping.
    fn track(&self, id: u64, s: &TcpStream) -> bool {
        let mut open = lock(&self.open);
        match s.try_clone() {
            Ok(c) if !self.stopped() => {
                open.entry(id).or_default().push(c);
                true
            }
            _ => false,
        }
    }
}

fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let mut next_id = 0u64;
    for conn in listener.incoming() {
        if shared.stopped() {
            break;
        }
        let Ok(client) = conn else {
            thread::sleep(Duration::from_millis(10)); // e.g. out of descriptors: retry
            continue;
        };
        next_id += 1;
        let id = next_id;
        shared.stat(|s| s.connections += 1);
        if !shared.track(id, &client) {
            break;
        }
        let s = Arc::clone(&shared);
        thread::spawn(move || {
            handle(&s, id, &client);
            lock(&s.open).remove(&id); // with the clones gone, the sockets really close
        });
    }
}

/// Serves one client connection according to the fault active when it was accepted.
fn handle(shared: &Shared, id: u64, client: &TcpStream) {
    let _ = client.set_nodelay(true);
    let (fault, gen) = {
        let s = lock(&shared.state);
        (s.fault.clone(), s.gen)
    };
    match fault {
        Fault::Stall => stall(shared, client),
        Fault::ErrorStatus { status, .. } => {
            let mut buf = Vec::new();
            match read_head(client, &mut buf) {
                Ok(Some(end)) if shared.claim(gen) => {
                    if answer(client, &buf, end, status).is_ok() {
                        shared.stat(|s| s.error_responses += 1);
                    }
                }
                Ok(_) => forward(shared, id, &fault, gen, client, &buf),
                Err(_) => {}
            }
        }
        _ => forward(shared, id, &fault, gen, client, &[]),
    }
    let _ = client.shutdown(Shutdown::Both);
}

/// Reads and discards client bytes while the fault is still `Stall`.
fn stall(shared: &Shared, mut client: &TcpStream) {
    let _ = client.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = [0u8; 16 * 1024];
    while !shared.stopped() && matches!(lock(&shared.state).fault, Fault::Stall) {
        match client.read(&mut buf) {
            Ok(0) => return,
            Err(e) if !matches!(e.kind(), WouldBlock | TimedOut | Interrupted) => return,
            _ => {}
        }
    }
}

/// Reads into `buf` until the end of the request head; Some(index after "\r\n\r\n"), or
/// None at end of stream or when the head is implausibly long.
fn read_head(mut client: &TcpStream, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
    let mut chunk = [0u8; 8192];
    while buf.len() < 64 * 1024 {
        let n = client.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(Some(i + 4));
        }
    }
    Ok(None)
}

/// Drains the request body (per Content-Length, unless the client waits for
/// "100 Continue"), then answers with `status` and an S3-style XML error.
fn answer(mut client: &TcpStream, buf: &[u8], head_end: usize, status: u16) -> io::Result<()> {
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_ascii_lowercase())
    };
    if header("expect").is_none_or(|v| v != "100-continue") {
        let length: u64 = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let rest = length.saturating_sub((buf.len() - head_end) as u64);
        io::copy(&mut client.take(rest), &mut io::sink())?;
    }
    let (reason, code) = match status {
        503 => ("Service Unavailable", "ServiceUnavailable"),
        500 => ("Internal Server Error", "InternalError"),
        502 => ("Bad Gateway", "InternalError"),
        504 => ("Gateway Timeout", "InternalError"),
        _ => ("Injected Fault", "InternalError"),
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>injected by the test proxy</Message></Error>"
    );
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    client.write_all(response.as_bytes())?;
    client.flush()
}

/// Connects upstream, sends `prefix` (bytes already read from the client), then pumps both
/// directions until both ends are done.
fn forward(shared: &Shared, id: u64, fault: &Fault, gen: u64, client: &TcpStream, prefix: &[u8]) {
    let Ok(mut server) = TcpStream::connect(shared.upstream) else {
        return;
    };
    let _ = server.set_nodelay(true);
    if !shared.track(id, &server) || server.write_all(prefix).is_err() {
        return;
    }
    shared.stat(|s| s.bytes_up += prefix.len() as u64);
    let up_start = prefix.len() as u64;
    thread::scope(|scope| {
        scope.spawn(|| pump(shared, fault, gen, &server, client, false, 0));
        pump(shared, fault, gen, client, &server, true, up_start);
    });
}

/// Copies one direction (`up`: client → server), applying the faults. `total` is the number
/// of bytes this direction already carried. Errors just end the connection.
fn pump(
    shared: &Shared,
    fault: &Fault,
    gen: u64,
    mut from: &TcpStream,
    mut to: &TcpStream,
    up: bool,
    mut total: u64,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut decided = false; // whether this connection already took its chance at the fault
    loop {
        let slow = shared.slow();
        let max = slow.map_or(buf.len(), |(_, piece)| piece.min(buf.len()));
        let n = match from.read(&mut buf[..max]) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write); // pass the half-close on
                return;
            }
            Ok(n) => n,
            Err(e) if e.kind() == Interrupted => continue,
            Err(_) => break,
        };
        if let Some((delay, _)) = slow {
            thread::sleep(delay);
        }
        let (mut len, mut cut, mut flipped) = (n, false, false);
        let end = total + n as u64;
        match *fault {
            Fault::CutUpload { after_bytes, .. } | Fault::CutDownload { after_bytes, .. }
                if up == matches!(fault, Fault::CutUpload { .. })
                    && !decided
                    && end >= after_bytes =>
            {
                decided = true;
                if shared.claim(gen) {
                    (len, cut) = ((after_bytes - total) as usize, true);
                }
            }
            Fault::CorruptDownload { at, .. } if !up && !decided && end > at => {
                decided = true;
                if shared.claim(gen) {
                    buf[(at - total) as usize] ^= 0x01;
                    flipped = true;
                }
            }
            _ => {}
        }
        if to.write_all(&buf[..len]).is_err() {
            break;
        }
        total += len as u64;
        shared.stat(|s| {
            if up {
                s.bytes_up += len as u64;
            } else {
                s.bytes_down += len as u64;
            }
            s.cut += u64::from(cut);
            s.corrupted += u64::from(flipped);
        });
        if cut {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
