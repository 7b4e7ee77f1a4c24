//! A hostile storage provider for the attack tests (`tests/hostile_provider.rs`).
//!
//! It speaks just enough of the S3 REST API, path-style (`/BUCKET/KEY`), for `coffer` to
//! list and download: ListObjectsV2, GetObject (with ranges) and HeadObject. Signatures
//! are not checked. Its answers can be made hostile in the ways a provider could try to
//! make a client work without end: a listing whose continuation tokens never end (with
//! entries, with none, or with one at a time, slowly), one listing page whose body never
//! ends, one page of very many made-up backups, errors whose message is one huge line, an
//! object longer or shorter than its listing says, an object sent a few bytes at a time.
//!
//! std only, with blocking threads: one accepts, and each connection gets its own.
//! Dropping the server closes the listener and every connection.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

mod listing;

use listing::{list, respond, respond_huge};

/// How ListObjectsV2 answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// The objects held, in one page, as a real server would.
    Honest,
    /// Pages of `per_page` made-up backups each, every page promising another, sent
    /// `every` apart.
    Endless { per_page: usize, every: Duration },
    /// One page whose body never ends: made-up backups, until the client hangs up.
    EndlessBody,
    /// The objects held, and `count` made-up backups named as newer than any real one,
    /// all in one page (no object is stored under their names).
    Many { count: usize },
    /// An error `status` whose message is one line of `message_len` letters.
    Failing { status: u16, message_len: usize },
}

/// One stored object and how it is served.
#[derive(Debug, Clone)]
pub struct Object {
    bytes: Arc<Vec<u8>>,
    /// The size the listing and HEAD give; the real one when `None`.
    listed_size: Option<u64>,
    /// Sends the whole object whatever range was asked for.
    ignores_ranges: bool,
    /// Sends `piece` bytes, then waits `every`, until done.
    trickle: Option<(usize, Duration)>,
    /// Bytes sent at once before the trickle starts.
    fast_start: usize,
}

impl Object {
    pub fn new(bytes: Vec<u8>) -> Object {
        Object {
            bytes: Arc::new(bytes),
            listed_size: None,
            ignores_ranges: false,
            trickle: None,
            fast_start: 0,
        }
    }

    /// Lists (and HEADs) the object as `size` bytes long.
    pub fn listed_as(mut self, size: u64) -> Object {
        self.listed_size = Some(size);
        self
    }

    pub fn ignoring_ranges(mut self) -> Object {
        self.ignores_ranges = true;
        self
    }

    pub fn trickled(mut self, piece: usize, every: Duration) -> Object {
        self.trickle = Some((piece.max(1), every));
        self
    }

    /// Like [`Object::trickled`], after sending its first `fast` bytes at once.
    pub fn trickled_after(mut self, fast: usize, piece: usize, every: Duration) -> Object {
        self.fast_start = fast;
        self.trickled(piece, every)
    }

    fn listed_len(&self) -> u64 {
        self.listed_size.unwrap_or(self.bytes.len() as u64)
    }
}

/// What the server did, for assertions that an attack really ran.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Listing pages answered (or started, for an endless body).
    pub list_pages: u64,
    /// Entries put into listings.
    pub listed_entries: u64,
    /// GetObject requests, and the body bytes sent for them, by key.
    pub gets: BTreeMap<String, (u64, u64)>,
}

/// A running hostile server for one bucket.
pub struct HostileS3 {
    pub addr: SocketAddr,
    pub bucket: String,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

struct Shared {
    bucket: String,
    listing: Mutex<Listing>,
    objects: Mutex<BTreeMap<String, Object>>,
    stats: Mutex<Stats>,
    stop: AtomicBool,
    open: Mutex<Vec<TcpStream>>,
    /// The length of the one-line message a GET of a missing object gets with its 404
    /// (a short one when 0).
    missing_message_len: Mutex<usize>,
}

/// Locks ignoring poisoning: a panicking test must not cascade into the server's threads.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl HostileS3 {
    /// Listens on 127.0.0.1:0, serving `bucket`, listing honestly until told otherwise.
    pub fn start(bucket: &str) -> HostileS3 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("hostile S3: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("hostile S3: local address");
        let shared = Arc::new(Shared {
            bucket: bucket.to_string(),
            listing: Mutex::new(Listing::Honest),
            objects: Mutex::new(BTreeMap::new()),
            stats: Mutex::new(Stats::default()),
            stop: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
            missing_message_len: Mutex::new(0),
        });
        let s = Arc::clone(&shared);
        let accept = thread::spawn(move || accept_loop(s, listener));
        HostileS3 {
            addr,
            bucket: bucket.to_string(),
            shared,
            accept: Some(accept),
        }
    }

    /// An `s3://` location for `coffer` under `prefix`, with extra query settings.
    pub fn url(&self, prefix: &str, extra: &str) -> String {
        let mut url = format!(
            "s3://{}/{prefix}?endpoint=http://{}&disable_config_load=true&disable_ec2_metadata=true",
            self.bucket, self.addr
        );
        if !extra.is_empty() {
            url.push('&');
            url.push_str(extra);
        }
        url
    }

    /// Dummy credentials, in the usual variables (the server checks no signature).
    pub fn env(&self) -> [(&'static str, &'static str); 2] {
        [
            ("AWS_ACCESS_KEY_ID", "AKIAHOSTILETEST"),
            ("AWS_SECRET_ACCESS_KEY", "hostile-test-secret"),
        ]
    }

    pub fn set_listing(&self, listing: Listing) {
        *lock(&self.shared.listing) = listing;
    }

    /// Answers each GET of a missing object with a 404 whose message is one line of
    /// `len` letters.
    pub fn set_missing_message(&self, len: usize) {
        *lock(&self.shared.missing_message_len) = len;
    }

    pub fn put(&self, key: &str, object: Object) {
        lock(&self.shared.objects).insert(key.to_string(), object);
    }

    pub fn stats(&self) -> Stats {
        lock(&self.shared.stats).clone()
    }
}

impl Drop for HostileS3 {
    fn drop(&mut self) {
        {
            let open = lock(&self.shared.open);
            self.shared.stop.store(true, Ordering::SeqCst);
            for s in open.iter() {
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
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn track(&self, s: &TcpStream) -> bool {
        let mut open = lock(&self.open);
        match s.try_clone() {
            Ok(c) if !self.stopped() => {
                open.push(c);
                true
            }
            _ => false,
        }
    }
}

fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    for conn in listener.incoming() {
        if shared.stopped() {
            break;
        }
        let Ok(client) = conn else {
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        if !shared.track(&client) {
            break;
        }
        let s = Arc::clone(&shared);
        thread::spawn(move || {
            let _ = serve(&s, &client);
            let _ = client.shutdown(Shutdown::Both);
        });
    }
}

/// One parsed request head.
struct Request {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
}

/// Answers requests on one connection (kept alive) until the client hangs up.
fn serve(shared: &Shared, client: &TcpStream) -> io::Result<()> {
    let _ = client.set_nodelay(true);
    let mut reader = BufReader::new(client.try_clone()?);
    let mut out = client;
    while !shared.stopped() {
        let Some(req) = read_request(&mut reader)? else {
            return Ok(());
        };
        let bucket_root = format!("/{}", shared.bucket);
        let key = req
            .path
            .strip_prefix(&format!("{bucket_root}/"))
            .map(pct_decode);
        match (req.method.as_str(), key) {
            ("GET", None) | ("GET", Some(_))
                if (req.path == bucket_root || req.path == format!("{bucket_root}/"))
                    && req.query.get("list-type").map(String::as_str) == Some("2") =>
            {
                list(shared, &req, &mut out)?
            }
            ("GET", Some(key)) if !key.is_empty() => get(shared, &req, &key, &mut out)?,
            ("HEAD", Some(key)) if !key.is_empty() => head(shared, &key, &mut out)?,
            _ => respond(&mut out, 501, "NotImplemented", &[])?,
        }
    }
    Ok(())
}

fn read_request(reader: &mut impl BufRead) -> io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 {
            return Ok(None);
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.insert(n.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    // Bodies (none expected) are read and dropped, to keep the connection in step.
    let body: u64 = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    io::copy(&mut reader.take(body), &mut io::sink())?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (pct_decode(k), pct_decode(v))
        })
        .collect();
    Ok(Some(Request {
        method,
        path: path.to_string(),
        query,
        headers,
    }))
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

const OBJECT_HEADERS: &str = "Last-Modified: Wed, 01 Jan 2020 00:00:00 GMT\r\nETag: \"0\"\r\n\
Content-Type: application/octet-stream\r\nAccept-Ranges: bytes\r\n";

fn head(shared: &Shared, key: &str, out: &mut impl Write) -> io::Result<()> {
    let Some(obj) = lock(&shared.objects).get(key).cloned() else {
        return respond(out, 404, "NoSuchKey", &[]);
    };
    write!(
        out,
        "HTTP/1.1 200 OK\r\n{OBJECT_HEADERS}Content-Length: {}\r\n\r\n",
        obj.listed_len()
    )?;
    out.flush()
}

/// `bytes=a-b` or `bytes=a-` against an object of `len` bytes.
fn parse_range(header: &str, len: u64) -> Option<(u64, u64)> {
    let spec = header.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let start: u64 = a.parse().ok()?;
    let end: u64 = if b.is_empty() {
        len.checked_sub(1)?
    } else {
        b.parse::<u64>().ok()?.min(len.checked_sub(1)?)
    };
    (start <= end).then_some((start, end + 1))
}

fn get(shared: &Shared, req: &Request, key: &str, out: &mut impl Write) -> io::Result<()> {
    let Some(obj) = lock(&shared.objects).get(key).cloned() else {
        lock(&shared.stats)
            .gets
            .entry(key.to_string())
            .or_default()
            .0 += 1;
        return match *lock(&shared.missing_message_len) {
            0 => respond(out, 404, "NoSuchKey", &[]),
            len => respond_huge(out, 404, "NoSuchKey", len),
        };
    };
    let len = obj.bytes.len() as u64;
    let range = match req.headers.get("range") {
        Some(r) if !obj.ignores_ranges => match parse_range(r, len) {
            Some(r) => Some(r),
            None => {
                return respond(out, 416, "InvalidRange", &[]);
            }
        },
        _ => None,
    };
    let (start, end) = range.unwrap_or((0, len));
    let status = match range {
        Some(_) => format!(
            "206 Partial Content\r\nContent-Range: bytes {start}-{}/{len}",
            end.saturating_sub(1)
        ),
        None => "200 OK".to_string(),
    };
    write!(
        out,
        "HTTP/1.1 {status}\r\n{OBJECT_HEADERS}Content-Length: {}\r\n\r\n",
        end - start
    )?;
    lock(&shared.stats)
        .gets
        .entry(key.to_string())
        .or_default()
        .0 += 1;
    let body = &obj.bytes[start as usize..end as usize];
    let (piece, every) = obj.trickle.unwrap_or((64 << 10, Duration::ZERO));
    let fast = obj.fast_start.min(body.len());
    out.write_all(&body[..fast])?;
    out.flush()?;
    lock(&shared.stats)
        .gets
        .entry(key.to_string())
        .or_default()
        .1 += fast as u64;
    for part in body[fast..].chunks(piece) {
        if shared.stopped() {
            break;
        }
        out.write_all(part)?;
        out.flush()?;
        lock(&shared.stats)
            .gets
            .entry(key.to_string())
            .or_default()
            .1 += part.len() as u64;
        if !every.is_zero() {
            thread::sleep(every);
        }
    }
    Ok(())
}
