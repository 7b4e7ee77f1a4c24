use std::io;
use std::path::PathBuf;

use coffer_format::FormatError;

/// The broad class of a failure, which fixes the CLI's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The request itself is wrong (bad arguments, profile not set up, target exists).
    Usage,
    /// The key does not belong to the backup.
    WrongKey,
    /// The stored bytes are not an intact backup.
    Integrity,
    /// A local file system or storage provider operation failed.
    Io,
    /// The backup or profile item asked for does not exist.
    NotFound,
    /// The backup was made by a newer Coffer (format version, cipher or chunk size unknown).
    Unsupported,
    /// Stopped on request ([`crate::request_stop`]).
    Interrupted,
    /// The vault erased the record after too many wrong passwords.
    Locked,
    /// A server could not be reached.
    Unreachable,
    /// A server refused for now: too many requests. Retry after the time given.
    RateLimited,
    /// Another request on the same account got in the way; nothing was decided. Retry.
    Conflict,
}

/// Everything the client library can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Usage(String),
    #[error("this key does not belong to this backup")]
    WrongKey,
    #[error("backup {id} failed its integrity check: {source}")]
    Integrity { id: String, source: FormatError },
    #[error("backup {id} is damaged: {reason}")]
    BadManifest { id: String, reason: String },
    #[error("backup {id} decrypted, but its contents are not a valid archive: {reason}")]
    BadArchive { id: String, reason: String },
    #[error("refusing unsafe archive entry {path:?}: {reason}")]
    UnsafeEntry { path: String, reason: &'static str },
    #[error("the restore target {0} already exists and is not an empty directory")]
    TargetExists(PathBuf),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("storage error while trying to {action}: {message}")]
    Storage {
        action: &'static str,
        message: String,
        retryable: bool,
    },
    #[error("backup {id} needs a newer Coffer: {source}")]
    Unsupported { id: String, source: FormatError },
    #[error("interrupted; nothing was committed")]
    Interrupted,
    #[error(
        "wrong password; {guesses_left} attempts left before the backup key is erased for good"
    )]
    WrongPassword { guesses_left: u16 },
    #[error("too many wrong passwords: the vault has erased this backup key for good")]
    Locked,
    #[error("cannot reach the server: {0}")]
    Unreachable(String),
    #[error("the vault holds no backup key for this account")]
    VaultRecordMissing,
    #[error("the vault's key {seen} is not the pinned fleet key {expected}; refusing to continue")]
    VaultKeyMismatch { expected: String, seen: String },
    #[error("the vault's answer did not authenticate against the pinned fleet key: the front-end or the network altered or forged it; nothing was accepted")]
    VaultNotAuthentic,
    #[error(
        "the vault reports that this account's record failed its integrity check; it was not used"
    )]
    VaultRecordDamaged,
    #[error("the vault could not commit the request; nothing changed; retry")]
    VaultUnavailable,
    #[error("the vault misbehaved: {0}")]
    VaultMisbehaved(String),
    #[error("the vault's copy of the key does not work: {0}; run the command again")]
    EscrowBroken(&'static str),
    #[error("rate limited by the server; retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// With `guesses_left` when the interrupted request was a login that had used a guess.
    #[error("{}", superseded(*.guesses_left))]
    Superseded { guesses_left: Option<u16> },
    #[error("the storage location {0} does not exist")]
    StorageMissing(String),
    #[error("no backup found in {0}")]
    NoBackups(String),
    #[error("no backup with id {0}")]
    BackupNotFound(String),
    #[error(transparent)]
    Random(#[from] coffer_format::RandomError),
    #[error("internal error: {0}")]
    Internal(String),
    /// A stage stopped because another stage failed; that stage's error is the real one.
    #[error("a pipeline stage stopped early")]
    PipelineStopped,
    /// The profile folder or one of its files could be changed (or read) by another user.
    #[error(transparent)]
    UnsafeProfile(#[from] crate::private_dir::UnsafeProfile),
    /// A source file got shorter while it was read: its archive entry had its length
    /// already, so the backup was abandoned rather than filled with zeros.
    #[error("{} shrank from {size} to {read} bytes while it was read; nothing was stored and earlier backups are untouched; run the backup again, when the file is not being written", .path.display())]
    SourceShrank { path: PathBuf, size: u64, read: u64 },
}

fn superseded(guesses_left: Option<u16>) -> String {
    let who = "another request on this account (another device, or someone who took the account over) got in the way";
    match guesses_left {
        Some(n) => format!("{who} after this login had used a guess (at most {n} left); the password was not judged; try again"),
        None => format!("{who}; nothing was decided; try again"),
    }
}

impl ClientError {
    pub fn class(&self) -> ErrorClass {
        match self {
            ClientError::Usage(_)
            | ClientError::TargetExists(_)
            | ClientError::UnsafeProfile(_) => ErrorClass::Usage,
            ClientError::WrongKey | ClientError::WrongPassword { .. } => ErrorClass::WrongKey,
            ClientError::Locked => ErrorClass::Locked,
            ClientError::VaultKeyMismatch { .. }
            | ClientError::VaultNotAuthentic
            | ClientError::VaultRecordDamaged
            | ClientError::VaultMisbehaved(_)
            | ClientError::EscrowBroken(_) => ErrorClass::Integrity,
            ClientError::VaultUnavailable => ErrorClass::Unreachable,
            ClientError::RateLimited { .. } => ErrorClass::RateLimited,
            ClientError::Superseded { .. } => ErrorClass::Conflict,
            ClientError::Unreachable(_) => ErrorClass::Unreachable,
            ClientError::VaultRecordMissing => ErrorClass::NotFound,
            ClientError::Integrity { .. }
            | ClientError::BadArchive { .. }
            | ClientError::BadManifest { .. }
            | ClientError::UnsafeEntry { .. } => ErrorClass::Integrity,
            ClientError::Io { .. }
            | ClientError::Storage { .. }
            | ClientError::Random(_)
            | ClientError::Internal(_)
            | ClientError::PipelineStopped
            | ClientError::SourceShrank { .. } => ErrorClass::Io,
            ClientError::NoBackups(_)
            | ClientError::BackupNotFound(_)
            | ClientError::StorageMissing(_) => ErrorClass::NotFound,
            ClientError::Unsupported { .. } => ErrorClass::Unsupported,
            ClientError::Interrupted => ErrorClass::Interrupted,
        }
    }

    /// Whether running the same command again might succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Storage { retryable, .. } => *retryable,
            ClientError::Unreachable(_)
            | ClientError::VaultUnavailable
            | ClientError::Superseded { .. }
            | ClientError::RateLimited { .. }
            | ClientError::SourceShrank { .. } => true,
            ClientError::Io { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::Interrupted | io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ),
            _ => false,
        }
    }

    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        ClientError::Io {
            what,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn from_format(id: &str, err: FormatError) -> Self {
        match err {
            FormatError::WrongKey => ClientError::WrongKey,
            FormatError::Io(e) => ClientError::from_pipe_io(id, e),
            e @ (FormatError::UnsupportedVersion(_)
            | FormatError::UnsupportedCipher(_)
            | FormatError::UnsupportedChunkSize(_)) => ClientError::Unsupported {
                id: id.to_string(),
                source: e,
            },
            other => ClientError::Integrity {
                id: id.to_string(),
                source: other,
            },
        }
    }

    /// Turns an `io::Error` that came out of a pipeline stage back into what caused it.
    pub(crate) fn from_pipe_io(id: &str, err: io::Error) -> Self {
        if crate::pipe::is_pipe_closed(&err) {
            return ClientError::PipelineStopped;
        }
        if err.get_ref().is_some_and(|e| e.is::<ClientError>()) {
            if let Some(Ok(ce)) = err.into_inner().map(|e| e.downcast::<ClientError>()) {
                return *ce;
            }
            return ClientError::Internal("lost error".into());
        }
        if err.get_ref().is_some_and(|e| e.is::<FormatError>()) {
            return ClientError::from_format(id, FormatError::from_io(err));
        }
        ClientError::io("reading backup", id, err)
    }
}
