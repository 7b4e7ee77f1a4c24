//! Uploads, in the one way each kind of provider can make atomic:
//!
//! - **folders** (write in pieces, rename): write `incomplete/<id>.part`, flush, rename;
//! - **object stores** (multipart, no rename): a multipart upload straight to the final
//!   name; the object exists only once the upload is completed;
//! - **one-request providers** (WebDAV, drives): segments of [`PART_SIZE`] bytes, then the
//!   manifest, written last.
//!
//! Memory stays bounded by a few parts in every case. No segment is ever empty, and a
//! backup too large for a segment list that readers accept is refused before its last
//! segment is stored.

use std::fs;
use std::path::PathBuf;

use super::ids::{backup_path, manifest_path, segment_path, segments_dir};
use super::manifest::{self, SegmentSizes};
use super::UPLOAD_CONCURRENCY;
use super::{Backend, BACKUPS_DIR, INCOMPLETE_DIR, MANIFEST_SUFFIX, PART_SIZE, PART_SUFFIX};
use crate::error::ClientError;

/// An upload in progress.
pub struct Upload {
    backend: Backend,
    id: String,
    sink: Sink,
    /// The storage root, when it is a local folder.
    local_dir: Option<PathBuf>,
    written: u64,
}

enum Sink {
    /// One object: under a temporary name when `temp` is set, else a multipart upload.
    Object {
        writer: opendal::Writer,
        temp: Option<String>,
    },
    Segments {
        buf: Vec<u8>,
        /// The segments stored so far.
        sizes: Option<SegmentSizes>,
        can_rename: bool,
    },
}

impl Upload {
    pub(super) async fn begin(
        backend: Backend,
        id: &str,
        local_dir: Option<PathBuf>,
        force_segments: bool,
    ) -> Result<Upload, ClientError> {
        let (op, shared) = (&backend.op, &backend.shared);
        let cap = op.info().capability();
        let sink = if cap.write_can_multi && !force_segments {
            let temp = cap
                .rename
                .then(|| format!("{INCOMPLETE_DIR}{id}{PART_SUFFIX}"));
            let writer = match &temp {
                // A local file takes each block as it comes.
                Some(temp) => op.writer(temp).await,
                None => {
                    op.writer_with(&backup_path(id))
                        .chunk(PART_SIZE)
                        .concurrent(UPLOAD_CONCURRENCY)
                        .await
                }
            }
            .map_err(|e| shared.err("start an upload", e))?;
            Sink::Object { writer, temp }
        } else {
            Sink::Segments {
                buf: Vec::with_capacity(PART_SIZE),
                sizes: None,
                can_rename: cap.rename,
            }
        };
        Ok(Upload {
            backend,
            id: id.to_string(),
            sink,
            local_dir,
            written: 0,
        })
    }

    pub async fn write(&mut self, block: Vec<u8>) -> Result<(), ClientError> {
        self.written += block.len() as u64;
        match &mut self.sink {
            Sink::Object { writer, .. } => writer
                .write(block)
                .await
                .map_err(|e| self.backend.shared.err("upload a backup", e)),
            Sink::Segments { buf, sizes, .. } => {
                buf.extend_from_slice(&block);
                while buf.len() >= PART_SIZE {
                    let rest = buf.split_off(PART_SIZE);
                    let full = std::mem::replace(buf, rest);
                    put_segment(&self.backend, &self.id, sizes, full).await?;
                }
                Ok(())
            }
        }
    }

    /// Finishes the upload and makes it visible as a complete backup. Returns its size.
    pub async fn commit(mut self) -> Result<u64, ClientError> {
        let err = |action| {
            let shared = self.backend.shared.clone();
            move |e| shared.err(action, e)
        };
        match &mut self.sink {
            Sink::Object { writer, temp } => {
                writer.close().await.map_err(err("finish an upload"))?;
                if let Some(temp) = temp {
                    self.backend
                        .op
                        .rename(temp, &backup_path(&self.id))
                        .await
                        .map_err(err("commit an upload"))?;
                }
            }
            Sink::Segments {
                buf,
                sizes,
                can_rename,
            } => {
                if !buf.is_empty() {
                    let last = std::mem::take(buf);
                    put_segment(&self.backend, &self.id, sizes, last).await?;
                }
                // A backup stream always has a header: an empty one is a bug upstream.
                let Some(sizes) = sizes else {
                    return Err(ClientError::Internal(
                        "an empty backup cannot be stored in segments".into(),
                    ));
                };
                let text = manifest::encode(sizes);
                let final_path = manifest_path(&self.id);
                if *can_rename {
                    // A one-request write can still be cut short on some servers; a
                    // rename is all or nothing.
                    let temp = format!("{INCOMPLETE_DIR}{}{MANIFEST_SUFFIX}", self.id);
                    self.backend
                        .op
                        .write(&temp, text)
                        .await
                        .map_err(err("commit an upload"))?;
                    self.backend
                        .op
                        .rename(&temp, &final_path)
                        .await
                        .map_err(err("commit an upload"))?;
                } else {
                    self.backend
                        .op
                        .write(&final_path, text)
                        .await
                        .map_err(err("commit an upload"))?;
                }
            }
        }
        // A rename is durable only once its directory is: flush it where we can reach it.
        if let Some(dir) = &self.local_dir {
            let dir = dir.join(BACKUPS_DIR);
            fs::File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| ClientError::io("cannot flush", dir, e))?;
        }
        Ok(self.written)
    }

    /// Abandons the upload and removes what was written. Best effort: a leftover part
    /// is never listed as a backup, and a later backup removes it once it is stale.
    pub async fn abort(mut self) {
        match &mut self.sink {
            Sink::Object { writer, temp } => {
                if writer.abort().await.is_err() {
                    if let Some(temp) = temp {
                        let _ = writer.close().await;
                        let _ = self.backend.op.delete(temp).await;
                    }
                }
            }
            Sink::Segments { .. } => {
                let _ = self
                    .backend
                    .remove_folder(&segments_dir(&self.id), "remove an unfinished upload")
                    .await;
            }
        }
    }
}

/// Stores the next segment. One request each; the retry layer repeats it whole.
async fn put_segment(
    backend: &Backend,
    id: &str,
    sizes: &mut Option<SegmentSizes>,
    data: Vec<u8>,
) -> Result<(), ClientError> {
    let len = data.len() as u64;
    let (n, next) = match sizes {
        None => (0, SegmentSizes::first(len)),
        Some(s) => (s.count(), s.then(len)),
    };
    let next = next.map_err(|why| ClientError::Storage {
        action: "upload a backup segment",
        message: format!(
            "the backup cannot be stored in segments ({why}): a segment list holds at most \
             {} segments of {} MiB",
            manifest::MAX_SEGMENTS,
            PART_SIZE >> 20
        ),
        retryable: false,
    })?;
    backend
        .op
        .write(&segment_path(id, n), data)
        .await
        .map_err(|e| backend.shared.err("upload a backup segment", e))?;
    *sizes = Some(next);
    Ok(())
}
