use std::io;

/// What went wrong while reading or writing a backup stream.
///
/// Only [`FormatError::Io`] may succeed on retry; every other variant describes the bytes
/// themselves, and reading them again gives the same answer.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("this is not a Coffer backup (bad magic bytes)")]
    NotCoffer,
    #[error("the backup ends inside its header ({got} of {HEADER} bytes)", HEADER = crate::header::HEADER_LEN)]
    TruncatedHeader { got: usize },
    #[error("this backup uses format version {0}, which this Coffer does not support")]
    UnsupportedVersion(u8),
    #[error("this backup uses cipher id {0}, which this Coffer does not support")]
    UnsupportedCipher(u8),
    #[error("this backup uses chunk size 2^{0}, which format version 2 does not allow")]
    UnsupportedChunkSize(u8),
    #[error("this key does not belong to this backup")]
    WrongKey,
    #[error("the backup header has been altered (its authentication failed)")]
    HeaderTampered,
    /// The header authenticates, but it is another backup's: a copy stored under a name
    /// that is not its own.
    #[error(
        "it is stored under the name {expected} but its header says {found}: renamed or replayed by the storage provider"
    )]
    IdMismatch { expected: String, found: String },
    #[error(
        "chunk {index} of the backup failed authentication: it was altered, reordered or cut short"
    )]
    ChunkTampered { index: u64 },
    #[error("the backup is truncated: it ends after chunk {chunks} without its final chunk")]
    Truncated { chunks: u64 },
    #[error("the backup has extra bytes after its final chunk")]
    TrailingData,
    #[error("the backup is too long: the chunk counter is exhausted")]
    TooLong,
    #[error("the clock is outside the years a backup id can hold (1970 to 9999)")]
    TimeOutOfRange,
    #[error(transparent)]
    Random(#[from] crate::key::RandomError),
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

impl FormatError {
    /// Whether trying the same operation again might succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, FormatError::Io(_) | FormatError::Random(_))
    }

    /// True for every error that means the stored bytes are not an intact backup
    /// (as opposed to a wrong key, an unsupported version or an I/O problem).
    pub fn is_integrity_failure(&self) -> bool {
        matches!(
            self,
            FormatError::NotCoffer
                | FormatError::TruncatedHeader { .. }
                | FormatError::HeaderTampered
                | FormatError::IdMismatch { .. }
                | FormatError::ChunkTampered { .. }
                | FormatError::Truncated { .. }
                | FormatError::TrailingData
        )
    }

    /// Recovers a `FormatError` that travelled through an `io::Error` (as from
    /// [`crate::DecryptReader`]'s `Read` implementation).
    pub fn from_io(err: io::Error) -> FormatError {
        if err.get_ref().is_some_and(|e| e.is::<FormatError>()) {
            match err.into_inner().map(|e| e.downcast::<FormatError>()) {
                Some(Ok(fe)) => *fe,
                Some(Err(other)) => FormatError::Io(io::Error::other(other)),
                None => FormatError::Io(io::Error::other("unknown I/O error")),
            }
        } else {
            FormatError::Io(err)
        }
    }

    /// The same error again, for a stream that stays failed after its first error.
    pub(crate) fn replay(&self) -> FormatError {
        use FormatError as F;
        match self {
            F::NotCoffer => F::NotCoffer,
            F::TruncatedHeader { got } => F::TruncatedHeader { got: *got },
            F::UnsupportedVersion(v) => F::UnsupportedVersion(*v),
            F::UnsupportedCipher(v) => F::UnsupportedCipher(*v),
            F::UnsupportedChunkSize(v) => F::UnsupportedChunkSize(*v),
            F::WrongKey => F::WrongKey,
            F::HeaderTampered => F::HeaderTampered,
            F::IdMismatch { expected, found } => F::IdMismatch {
                expected: expected.clone(),
                found: found.clone(),
            },
            F::ChunkTampered { index } => F::ChunkTampered { index: *index },
            F::Truncated { chunks } => F::Truncated { chunks: *chunks },
            F::TrailingData => F::TrailingData,
            F::TooLong => F::TooLong,
            F::TimeOutOfRange => F::TimeOutOfRange,
            // The position in the stream is lost after an I/O error: retrying the same
            // reader cannot help, only starting over can.
            F::Random(_) | F::Io(_) => F::Io(io::Error::other(
                "the backup stream already failed; start again from the beginning",
            )),
        }
    }

    pub(crate) fn into_io(self) -> io::Error {
        match self {
            FormatError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}
