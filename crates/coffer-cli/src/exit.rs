//! The documented, stable exit codes (also in README.md and `coffer --help`).

use coffer_client::{ClientError, ErrorClass};

pub const OK: i32 = 0;
/// Anything not covered below.
pub const OTHER: i32 = 1;
/// Bad arguments, a profile not set up, a restore target that exists.
pub const USAGE: i32 = 2;
/// The key (or, later, the password) does not open the backup.
pub const WRONG_KEY: i32 = 3;
/// The vault record is locked after too many wrong passwords (password mode).
pub const LOCKED: i32 = 4;
/// A stored backup failed authentication or is not a valid archive.
pub const INTEGRITY: i32 = 5;
/// Local disk or storage provider error.
pub const IO: i32 = 6;
/// The server could not be reached (password mode).
pub const UNREACHABLE: i32 = 7;
/// No backup (or no backup with that id, or no such storage location) was found.
pub const NOT_FOUND: i32 = 8;
/// The backup was made by a newer Coffer (unknown format version or algorithm).
pub const UNSUPPORTED: i32 = 9;
/// A server refused for now: too many requests (the message says when to retry).
pub const RATE_LIMITED: i32 = 10;
/// Another request on the same account got in the way; nothing was decided: retry.
pub const CONFLICT: i32 = 11;
/// The backup was made, but some files changed, vanished or were replaced while they were
/// read: it holds what was read, and the warnings name them.
pub const SOURCES_CHANGED: i32 = 12;

/// Stopped by SIGINT or SIGTERM (128 + SIGINT, as shells report it).
pub const INTERRUPTED: i32 = 130;

/// The command was stopped by a signal.
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// A backup that was made, but not of a still tree: the result and its warnings are
/// already printed; only the exit code is left to give.
#[derive(Debug, thiserror::Error)]
#[error("{count} source files changed while they were read")]
pub struct SourcesChanged {
    pub count: usize,
}

/// Resolves on the first SIGINT or SIGTERM.
pub async fn interrupted() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        // Without signal handlers the default action (exit) applies; never resolve.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}

/// A failure's exit code and its stable name for `--json`.
pub fn classify(err: &anyhow::Error) -> (i32, &'static str) {
    if err.is::<Interrupted>() {
        return (INTERRUPTED, "interrupted");
    }
    if err.is::<SourcesChanged>() {
        return (SOURCES_CHANGED, "sources-changed");
    }
    match err.downcast_ref::<ClientError>().map(ClientError::class) {
        Some(ErrorClass::Usage) => (USAGE, "usage"),
        Some(ErrorClass::WrongKey) => (WRONG_KEY, "wrong-key"),
        Some(ErrorClass::Locked) => (LOCKED, "locked"),
        Some(ErrorClass::Unreachable) => (UNREACHABLE, "unreachable"),
        Some(ErrorClass::Integrity) => (INTEGRITY, "integrity"),
        Some(ErrorClass::Io) => (IO, "io"),
        Some(ErrorClass::NotFound) => (NOT_FOUND, "not-found"),
        Some(ErrorClass::Unsupported) => (UNSUPPORTED, "unsupported"),
        Some(ErrorClass::RateLimited) => (RATE_LIMITED, "rate-limited"),
        Some(ErrorClass::Conflict) => (CONFLICT, "conflict"),
        Some(ErrorClass::Interrupted) => (INTERRUPTED, "interrupted"),
        None => (OTHER, "other"),
    }
}
