//! Checks the test-only fault proxy (`common::fault_proxy`) against a tiny std-only HTTP
//! server, so that the end-to-end tests can trust it. No assertion depends on timing; read
//! timeouts only guard against hangs (and, for `Stall`, show that no answer came).

mod common;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::fault_proxy::{Fault, FaultProxy};

/// Only a guard against a hung test, never a timing assertion.
const GUARD: Duration = Duration::from_secs(60);
const BODY_LEN: usize = 300_000;

fn body() -> Vec<u8> {
    (0..BODY_LEN).map(|i| (i % 251) as u8).collect()
}

/// The exact bytes the upstream sends for every request.
fn expected_response() -> Vec<u8> {
    let mut r =
        format!("HTTP/1.1 200 OK\r\nContent-Length: {BODY_LEN}\r\nConnection: close\r\n\r\n")
            .into_bytes();
    r.extend(body());
    r
}

/// A one-request-per-connection HTTP server: reads the request body (Content-Length), counts
/// it, and answers 200 with a fixed 300 KB body.
struct Upstream {
    addr: SocketAddr,
    connections: Arc<AtomicU64>,
    /// Request body bytes received, also from requests cut short.
    received: Arc<AtomicU64>,
}

fn upstream() -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicU64::new(0));
    let received = Arc::new(AtomicU64::new(0));
    let (c, r) = (Arc::clone(&connections), Arc::clone(&received));
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            c.fetch_add(1, Ordering::SeqCst);
            let r = Arc::clone(&r);
            thread::spawn(move || {
                let _ = serve(conn, &r);
            });
        }
    });
    Upstream {
        addr,
        connections,
        received,
    }
}

fn serve(mut conn: TcpStream, received: &AtomicU64) -> io::Result<()> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte)? == 0 {
            return Ok(());
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let length: u64 = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut chunk = vec![0u8; 64 * 1024];
    let mut got = 0;
    while got < length {
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Ok(()); // cut short: no answer
        }
        got += n as u64;
        received.fetch_add(n as u64, Ordering::SeqCst);
    }
    conn.write_all(&expected_response())
}

/// Sends one PUT with `upload` as its body and returns everything the connection answered.
fn request(addr: SocketAddr, upload: &[u8]) -> io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(GUARD))?;
    let head = format!(
        "PUT /object HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
        upload.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(upload)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(out)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[test]
fn forwards_bytes_unchanged() {
    let up = upstream();
    let proxy = FaultProxy::start(up.addr);
    assert_eq!(proxy.url(), format!("http://{}", proxy.addr()));
    let upload = vec![7u8; 1_000_000];
    assert!(request(proxy.addr(), &upload).unwrap() == expected_response());
    assert!(request(proxy.addr(), b"").unwrap() == expected_response());
    assert_eq!(up.received.load(Ordering::SeqCst), 1_000_000);
    let st = proxy.stats();
    assert_eq!(st.connections, 2);
    assert_eq!(st.bytes_down, 2 * expected_response().len() as u64);
    assert!(st.bytes_up > 1_000_000);
    assert_eq!((st.cut, st.error_responses, st.corrupted), (0, 0, 0));
}

#[test]
fn error_status_answers_the_first_connection_only() {
    let up = upstream();
    let proxy = FaultProxy::start(up.addr);
    proxy.set(Fault::ErrorStatus {
        status: 503,
        times: Some(1),
    });
    let first = request(proxy.addr(), &[1u8; 10_000]).unwrap();
    let text = String::from_utf8_lossy(&first);
    assert!(
        text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{text}"
    );
    assert!(text.contains("<Code>ServiceUnavailable</Code>"), "{text}");
    assert_eq!(proxy.stats().error_responses, 1);
    assert_eq!(up.connections.load(Ordering::SeqCst), 0);

    assert!(request(proxy.addr(), &[2u8; 10_000]).unwrap() == expected_response());
    assert_eq!(up.received.load(Ordering::SeqCst), 10_000);
    assert_eq!(proxy.stats().error_responses, 1);
    assert_eq!(proxy.stats().connections, 2);
}

#[test]
fn cut_upload_cuts_once() {
    let up = upstream();
    let proxy = FaultProxy::start(up.addr);
    proxy.set(Fault::CutUpload {
        after_bytes: 100_000,
        times: Some(1),
    });
    let upload = vec![3u8; 1_000_000];
    // The cut shows as a write or read error, or as an answer without a 200.
    if let Ok(answer) = request(proxy.addr(), &upload) {
        assert!(
            !answer.starts_with(b"HTTP/1.1 200"),
            "the cut upload got a 200"
        );
    }
    let st = proxy.stats();
    assert_eq!(st.cut, 1);
    assert_eq!(st.bytes_up, 100_000);
    assert!(up.received.load(Ordering::SeqCst) < 100_000);

    // `times: Some(1)`: the next upload passes.
    assert!(request(proxy.addr(), &upload).unwrap() == expected_response());
    assert_eq!(proxy.stats().cut, 1);
}

#[test]
fn corrupt_download_flips_one_bit() {
    let up = upstream();
    let proxy = FaultProxy::start(up.addr);
    let at = 150_000;
    proxy.set(Fault::CorruptDownload { at, times: Some(1) });
    let got = request(proxy.addr(), b"").unwrap();
    let want = expected_response();
    assert_eq!(got.len(), want.len());
    let diffs: Vec<usize> = (0..want.len()).filter(|&i| got[i] != want[i]).collect();
    assert_eq!(diffs, vec![at as usize]);
    assert_eq!((got[at as usize] ^ want[at as usize]).count_ones(), 1);
    assert_eq!(proxy.stats().corrupted, 1);

    assert!(request(proxy.addr(), b"").unwrap() == want);
    assert_eq!(proxy.stats().corrupted, 1);
}

#[test]
fn slow_still_delivers_identical_bytes() {
    let up = upstream();
    let proxy = FaultProxy::start(up.addr);
    proxy.set(Fault::Slow {
        delay: Duration::from_millis(1),
        piece: 4096,
    });
    let upload = vec![5u8; 50_000];
    assert!(request(proxy.addr(), &upload).unwrap() == expected_response());
    assert_eq!(up.received.load(Ordering::SeqCst), 50_000);
}

#[test]
fn stall_never_answers_until_cleared() {
    let up = upstream();
    let proxy = FaultProxy::start(up.addr);
    proxy.set(Fault::Stall);
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Err(e) if is_timeout(&e) => {}
        other => panic!("a stalled connection answered: {other:?}"),
    }
    assert_eq!(up.connections.load(Ordering::SeqCst), 0);

    // Clearing closes the stalled connection (end of stream, or a reset) ...
    proxy.clear();
    s.set_read_timeout(Some(GUARD)).unwrap();
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e) if !is_timeout(&e) => {}
        other => panic!("the stalled connection stayed open: {other:?}"),
    }
    // ... and new connections pass again.
    assert!(request(proxy.addr(), b"").unwrap() == expected_response());
}

#[test]
fn drop_closes_open_connections() {
    let up = upstream();
    let proxy = FaultProxy::start(up.addr);
    // One idle forwarded connection (the upstream still waits for a request head) ...
    let mut idle = TcpStream::connect(proxy.addr()).unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    // ... and one stalled connection.
    proxy.set(Fault::Stall);
    let mut stalled = TcpStream::connect(proxy.addr()).unwrap();
    // Wait (without timing) until the proxy has accepted both.
    while proxy.stats().connections < 2 {
        thread::yield_now();
    }
    drop(proxy);
    for s in [&mut idle, &mut stalled] {
        s.set_read_timeout(Some(GUARD)).unwrap();
        match s.read(&mut [0u8; 64]) {
            Ok(0) => {}
            Err(e) if !is_timeout(&e) => {}
            other => panic!("a connection outlived the proxy: {other:?}"),
        }
    }
}
