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
#[allow(dead_code)]
pub const LOCKED: i32 = 4;
/// A stored backup failed authentication or is not a valid archive.
pub const INTEGRITY: i32 = 5;
/// Local disk or storage provider error.
pub const IO: i32 = 6;
/// The server could not be reached (password mode).
#[allow(dead_code)]
pub const UNREACHABLE: i32 = 7;
/// No backup (or no backup with that id) was found.
pub const NOT_FOUND: i32 = 8;

/// A failure's exit code and its stable name for `--json`.
pub fn classify(err: &anyhow::Error) -> (i32, &'static str) {
    match err.downcast_ref::<ClientError>().map(ClientError::class) {
        Some(ErrorClass::Usage) => (USAGE, "usage"),
        Some(ErrorClass::WrongKey) => (WRONG_KEY, "wrong-key"),
        Some(ErrorClass::Integrity) => (INTEGRITY, "integrity"),
        Some(ErrorClass::Io) => (IO, "io"),
        Some(ErrorClass::NotFound) => (NOT_FOUND, "not-found"),
        None => (OTHER, "other"),
    }
}
