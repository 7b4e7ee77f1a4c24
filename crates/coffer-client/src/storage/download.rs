//! Reading what a backup holds: a whole backup as a stream ([`BackupStream`]), a range of
//! it, or a small object read whole (a segment list).
//!
//! Every read asks for a range of known size and counts what comes back: a provider that
//! sends more is cut off at once, whatever OpenDAL would buffer. Every read has a deadline
//! (limits.rs) besides the per-read timeout of the timeout layer, so that a provider that
//! sends a few bytes at a time, each well within that timeout, cannot stretch a download
//! forever. The deadline grows with the bytes received, never with the size listed.

use std::ops::Range;

use futures_util::StreamExt;
use opendal::{Buffer, Operator};

use super::errors::{download_too_slow, read_error, too_long_read};
use super::ids::{backup_path, segment_path};
use super::limits::Deadline;
use super::manifest::SegmentSizes;
use super::{Backend, StoredBackup};
use crate::error::ClientError;

/// The objects holding a backup's bytes, in order, with their sizes; made one at a time.
#[derive(Debug, Clone)]
pub(super) struct Pieces {
    id: String,
    size: u64,
    segments: Option<SegmentSizes>,
    next: u64,
}

impl Iterator for Pieces {
    type Item = (String, u64);

    fn next(&mut self) -> Option<(String, u64)> {
        let n = self.next;
        let count = self.segments.map_or(1, |s| s.count());
        if n >= count {
            return None;
        }
        self.next += 1;
        Some(match &self.segments {
            None => (backup_path(&self.id), self.size),
            Some(s) => (segment_path(&self.id, n), s.size_of(n)),
        })
    }
}

impl StoredBackup {
    /// The pieces from the one holding byte `offset` on, and where that piece starts.
    pub(super) fn pieces_from(&self, offset: u64) -> (Pieces, u64) {
        let (next, start) = match &self.segments {
            None => (0, 0),
            Some(s) => s.locate(offset),
        };
        let pieces = Pieces {
            id: self.id.clone(),
            size: self.size,
            segments: self.segments,
            next,
        };
        (pieces, start)
    }
}

/// Why a read of one object failed.
pub(super) enum ReadFailure {
    Provider(opendal::Error),
    /// More bytes came than were asked for.
    TooLong,
    /// The stream ended before all the bytes asked for came.
    TooShort,
    /// The deadline ran out.
    TooSlow,
}

/// Reads `range` of `path` into `out`, within `deadline`: the whole range, never more.
pub(super) async fn read_counted(
    op: &Operator,
    path: &str,
    range: Range<u64>,
    deadline: &mut Deadline,
    out: &mut Vec<u8>,
) -> Result<(), ReadFailure> {
    let mut left = range.end - range.start;
    let opened = deadline
        .wait(async { op.reader(path).await?.into_stream(range).await })
        .await
        .ok_or(ReadFailure::TooSlow)?;
    let mut stream = opened.map_err(ReadFailure::Provider)?;
    while let Some(got) = deadline
        .wait(stream.next())
        .await
        .ok_or(ReadFailure::TooSlow)?
    {
        let buf = got.map_err(ReadFailure::Provider)?;
        let n = buf.len() as u64;
        if n > left {
            return Err(ReadFailure::TooLong);
        }
        left -= n;
        deadline.received(n);
        for bytes in buf {
            out.extend_from_slice(&bytes);
        }
    }
    if left > 0 {
        return Err(ReadFailure::TooShort);
    }
    Ok(())
}

impl Backend {
    /// Reads `len` bytes of `backup` from `offset` (fewer at its end).
    pub(super) async fn read_range(
        &self,
        backup: &StoredBackup,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, ClientError> {
        let end = offset.saturating_add(len).min(backup.size);
        let mut out = Vec::new();
        if offset >= end {
            return Ok(out);
        }
        let mut deadline = Deadline::new(self.deadline);
        let segmented = backup.segments.is_some().then_some(backup.id.as_str());
        let (pieces, mut start) = backup.pieces_from(offset);
        for (path, size) in pieces {
            if start >= end {
                break;
            }
            let (lo, hi) = (offset.max(start), end.min(start + size));
            if lo < hi {
                let range = lo - start..hi - start;
                let asked = range.end - range.start;
                read_counted(&self.op, &path, range, &mut deadline, &mut out)
                    .await
                    .map_err(|f| match f {
                        ReadFailure::Provider(e) => read_error(segmented, &self.shared, &path, e),
                        ReadFailure::TooLong => too_long_read(segmented, &path, asked),
                        ReadFailure::TooShort => short_piece(segmented, &path, asked),
                        ReadFailure::TooSlow => download_too_slow(
                            "read a backup",
                            out.len() as u64,
                            end - offset,
                            deadline.waited(),
                            deadline.base(),
                        ),
                    })?;
            }
            start += size;
        }
        Ok(out)
    }
}

/// A piece of a backup that ended before the size listed for it.
fn short_piece(segmented: Option<&str>, path: &str, asked: u64) -> ClientError {
    match segmented {
        Some(id) => ClientError::BadManifest {
            id: id.to_string(),
            reason: format!("its segment {path} is not the size its list says"),
        },
        None => ClientError::Storage {
            action: "download a backup",
            message: format!("{path} ended before the {asked} bytes listed for it"),
            retryable: true,
        },
    }
}

/// A whole backup, downloading: in one request per object from a provider, in a few
/// concurrent reads from a local folder. A failed read is retried from where it stopped.
pub struct BackupStream {
    pieces: StreamPieces,
    deadline: Deadline,
    failed: bool,
}

struct StreamPieces {
    backend: Backend,
    pending: Pieces,
    current: Option<Current>,
    /// Bytes per read and reads in flight; `None` streams each object in one request.
    ranged_reads: Option<(usize, usize)>,
    /// The backup's id, when it is stored in segments.
    segmented: Option<String>,
    received: u64,
    size: u64,
}

/// The object being read, and how many of its bytes are still to come.
struct Current {
    path: String,
    stream: opendal::BufferStream,
    size: u64,
    left: u64,
}

impl BackupStream {
    pub(super) fn new(
        backend: Backend,
        backup: &StoredBackup,
        ranged_reads: Option<(usize, usize)>,
    ) -> BackupStream {
        // Not the listed size: nothing authenticates it.
        let deadline = Deadline::new(backend.deadline);
        BackupStream {
            pieces: StreamPieces {
                backend,
                pending: backup.pieces_from(0).0,
                current: None,
                ranged_reads,
                segmented: backup.segments.is_some().then(|| backup.id.clone()),
                received: 0,
                size: backup.size,
            },
            deadline,
            failed: false,
        }
    }

    /// The next piece, `None` at the end (and after an error).
    pub async fn next(&mut self) -> Option<Result<Buffer, ClientError>> {
        if self.failed {
            return None;
        }
        let got = match self.deadline.wait(self.pieces.next()).await {
            Some(got) => got,
            None => Some(Err(download_too_slow(
                "download a backup",
                self.pieces.received,
                self.pieces.size,
                self.deadline.waited(),
                self.deadline.base(),
            ))),
        };
        match &got {
            Some(Ok(buf)) => self.deadline.received(buf.len() as u64),
            Some(Err(_)) => self.failed = true,
            None => {}
        }
        got
    }
}

impl StreamPieces {
    async fn next(&mut self) -> Option<Result<Buffer, ClientError>> {
        let segmented = self.segmented.as_deref();
        loop {
            if let Some(cur) = &mut self.current {
                match cur.stream.next().await {
                    Some(Ok(buf)) => {
                        let n = buf.len() as u64;
                        if n > cur.left {
                            return Some(Err(too_long_read(segmented, &cur.path, cur.size)));
                        }
                        cur.left -= n;
                        self.received += n;
                        return Some(Ok(buf));
                    }
                    Some(Err(e)) => {
                        let shared = &self.backend.shared;
                        return Some(Err(read_error(segmented, shared, &cur.path, e)));
                    }
                    None if cur.left > 0 => {
                        return Some(Err(short_piece(segmented, &cur.path, cur.size)));
                    }
                    None => self.current = None,
                }
            }
            let (path, size) = self.pending.next()?;
            if size == 0 {
                continue;
            }
            let opened = async {
                let mut reader = self.backend.op.reader_with(&path);
                if let Some((chunk, in_flight)) = self.ranged_reads {
                    reader = reader.chunk(chunk).concurrent(in_flight);
                }
                reader.await?.into_stream(0..size).await
            }
            .await;
            match opened {
                Ok(stream) => {
                    self.current = Some(Current {
                        path,
                        stream,
                        size,
                        left: size,
                    })
                }
                Err(e) => {
                    let shared = &self.backend.shared;
                    return Some(Err(read_error(segmented, shared, &path, e)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn backup(segments: Option<SegmentSizes>) -> StoredBackup {
        StoredBackup {
            id: "b".into(),
            size: segments.map_or(10, |s| s.total()),
            created: SystemTime::UNIX_EPOCH,
            segments,
        }
    }

    #[test]
    fn pieces_are_made_as_needed() {
        let single = backup(None);
        let all: Vec<_> = single.pieces_from(0).0.collect();
        assert_eq!(all, [("backups/b.coffer".to_string(), 10)]);
        let mib = 1 << 20;
        let s = (1..99_999)
            .try_fold(SegmentSizes::first(mib).unwrap(), |s, _| s.then(mib))
            .and_then(|s| s.then(7))
            .unwrap();
        let many = backup(Some(s));
        let (mut from, start) = many.pieces_from(3 * mib + 5);
        assert_eq!(start, 3 * mib);
        assert_eq!(from.next(), Some(("segments/b/000003".into(), mib)));
        let (last, _) = many.pieces_from(many.size - 1);
        assert_eq!(last.collect::<Vec<_>>(), [("segments/b/099999".into(), 7)]);
        assert_eq!(many.pieces_from(0).0.count(), 100_000);
    }
}
