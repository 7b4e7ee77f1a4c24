//! Backup and restore as pipelines of threads joined by bounded pipes.
//!
//! Backup:  files → tar → zstd (worker threads) ─pipe→ encrypt ─pipe→ upload (async)
//! Restore: download (async) ─pipe→ decrypt ─pipe→ zstd → untar into a staging directory
//!
//! Memory is bounded by the pipes' depth whatever the backup's size. Every stage returns its
//! own result; when one fails the others stop with `PipelineStopped`, and the first real
//! error in stream order is reported.

use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use coffer_format::{
    BackupId, BackupKey, Cipher, DecryptReader, EncryptWriter, FormatError, HeaderInfo,
};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::archive::{self, ArchiveSummary, PackReport, Sink};
use crate::catalog::{self, Choice, PassedOver};
use crate::error::ClientError;
use crate::parent_dir::PartialFile;
use crate::pipe::{pump, sync_pipe, PipeReader, PipeWriter, BLOCK, DEPTH};
use crate::progress::Progress;
use crate::source_files::SourceWarning;
use crate::staging::{Staging, Target};
use crate::storage::{Storage, StoredBackup};

/// Tunables of a backup.
#[derive(Debug, Clone, Copy)]
pub struct BackupOptions {
    pub cipher: Cipher,
    /// zstd level; 1 is fast and still shrinks chat databases well.
    pub compression_level: i32,
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            cipher: Cipher::Aes256Gcm,
            compression_level: 1,
        }
    }
}

/// What a finished backup produced.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    pub id: String,
    /// Bytes stored (the encrypted backup).
    pub stored_bytes: u64,
    pub contents: ArchiveSummary,
    pub cipher: &'static str,
    pub key_id: String,
    /// Files that changed, vanished or were replaced while they were read: the backup
    /// holds what was read (see [`crate::source_files`]).
    pub warnings: Vec<SourceWarning>,
}

/// What a restore or verify found.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub id: String,
    /// When the backup was made (RFC 3339, UTC), from its authenticated header.
    pub created: String,
    pub stored_bytes: u64,
    pub contents: ArchiveSummary,
    pub key_id: String,
    /// Newer-named backups that were not chosen, because their headers failed under the key
    /// (only when no backup was named).
    pub passed_over: Vec<PassedOver>,
    /// How many more were passed over than `passed_over` names.
    pub passed_over_more: usize,
}

/// zstd window the writer uses (level 1's own choice for large inputs), and the largest a
/// reader accepts: a frame asking for more is refused instead of allocating its window.
const WINDOW_LOG: u32 = 19;
const MAX_WINDOW_LOG: u32 = 22;
/// Input per zstd worker job. Measured on chat-like data: 1 MiB is 12% slower, 4 MiB 6%
/// faster but takes peak memory past 64 MiB.
const ZSTD_JOB: u32 = 2 << 20;
/// The job size when uploads hold parts in memory: 1 MiB saves about 12 MiB, which keeps
/// a backup to S3 under 64 MiB; the network is the slower stage there anyway.
const ZSTD_JOB_BUFFERED_UPLOAD: u32 = 1 << 20;

/// An unfinished upload older than this is surely abandoned, even on a slow link.
pub const STALE_UPLOAD_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

fn zstd_workers() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4) as u32)
}

/// Makes one encrypted backup of `sources` in `storage`.
pub async fn backup(
    storage: &Storage,
    key: &BackupKey,
    sources: &[PathBuf],
    options: BackupOptions,
    progress: Arc<dyn Progress>,
) -> Result<BackupReport, ClientError> {
    if sources.is_empty() {
        return Err(ClientError::Usage(
            "name at least one file or folder to back up".into(),
        ));
    }
    // Fail early, before anything is uploaded, on a missing source or a name clash.
    archive::source_names(sources)?;
    progress.start("backing up", Some(archive::measure(sources)));

    // Uploads killed mid-way leave a part behind; a day later it is surely abandoned.
    if let Err(e) = storage.remove_stale_uploads(STALE_UPLOAD_AGE).await {
        tracing::warn!("could not clean up unfinished uploads: {e}");
    }
    // The id goes into the authenticated header and names the object: a copy stored
    // under any other name is refused when read.
    let backup_id = BackupId::generate(SystemTime::now()).map_err(|e| match e {
        FormatError::Random(e) => ClientError::Random(e),
        e => ClientError::Usage(format!("cannot name the backup: {e}")),
    })?;
    let id = backup_id.to_string();
    let mut upload = storage.begin_upload(&id).await?;

    // Stage 1: tar → zstd, on a blocking thread (zstd compresses on its own workers).
    let (plain_tx, plain_rx) = sync_pipe();
    let level = options.compression_level;
    let zstd_job = if storage.buffers_uploads() {
        ZSTD_JOB_BUFFERED_UPLOAD
    } else {
        ZSTD_JOB
    };
    let srcs = sources.to_vec();
    let prog = progress.clone();
    let pack = tokio::task::spawn_blocking(move || -> Result<PackReport, ClientError> {
        let stage = |e: io::Error| ClientError::from_pipe_io("backup", e);
        let mut z = zstd::stream::Encoder::new(plain_tx, level).map_err(stage)?;
        z.multithread(zstd_workers()).map_err(stage)?;
        z.set_parameter(zstd::stream::raw::CParameter::JobSize(zstd_job))
            .map_err(stage)?;
        z.set_parameter(zstd::stream::raw::CParameter::WindowLog(WINDOW_LOG))
            .map_err(stage)?;
        let counted = CountingWriter {
            inner: z,
            progress: prog,
        };
        let (packed, counted) = archive::pack_reporting(&srcs, counted)?;
        let pipe = counted.inner.finish().map_err(stage)?;
        pipe.finish().map_err(stage)?;
        Ok(packed)
    });

    // Stage 2: encrypt.
    let (enc_tx, mut enc_rx) = mpsc::channel::<Vec<u8>>(DEPTH);
    let mut enc = EncryptWriter::new(key, options.cipher, &backup_id, PipeWriter::new(enc_tx))
        .map_err(|e| ClientError::from_format(&id, e))?;
    let key_id = enc.info().key_id;
    let encrypt = tokio::task::spawn_blocking(move || -> Result<(), ClientError> {
        let stage = |e: io::Error| ClientError::from_pipe_io("backup", e);
        let mut input = plain_rx;
        pump(&mut input, &mut enc).map_err(stage)?;
        enc.finish().map_err(stage)?.finish().map_err(stage)
    });

    // Stage 3: upload, here on the async side.
    let uploaded: Result<(), ClientError> = async {
        loop {
            match enc_rx.recv().await {
                Some(block) if block.is_empty() => return Ok(()),
                Some(block) => {
                    crate::check_stop()?;
                    upload.write(block).await?
                }
                None => return Err(ClientError::PipelineStopped),
            }
        }
    }
    .await;
    drop(enc_rx);

    let packed = join(pack).await;
    let encrypted = join(encrypt).await;
    let packed = match (packed, encrypted, uploaded) {
        (Ok(packed), Ok(()), Ok(())) => packed,
        (p, e, u) => {
            upload.abort().await;
            progress.finish();
            return Err(first_error([p.err(), e.err(), u.err()]));
        }
    };
    let stored_bytes = upload.commit().await?;
    progress.finish();
    Ok(BackupReport {
        id,
        stored_bytes,
        contents: packed.summary,
        cipher: options.cipher.name(),
        key_id: key_id.to_string(),
        warnings: packed.warnings,
    })
}

/// Counts bytes into the progress bar on their way to the compressor.
struct CountingWriter<W: Write> {
    inner: W,
    progress: Arc<dyn Progress>,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(data)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Restores backup `id` (when `None`, the newest whose header verifies under `key`: see
/// [`catalog::choose`]) into `target`, which must not exist or be an empty directory.
/// Everything is unpacked and authenticated in a staging directory beside the target and
/// moved into place only at the end.
pub async fn restore(
    storage: &Storage,
    key: &BackupKey,
    id: Option<&str>,
    target: &Path,
    progress: Arc<dyn Progress>,
) -> Result<RestoreReport, ClientError> {
    let target = Target::resolve(target)?;
    let Choice {
        backup,
        passed_over,
        passed_over_more,
    } = catalog::choose(storage, key, id).await?;
    let staging = Staging::create(target)?;
    let into = staging.dir()?;
    let report = read_backup(storage, key, &backup, Some(into), progress).await?;
    staging.commit()?;
    Ok(RestoreReport {
        passed_over,
        passed_over_more,
        ..report
    })
}

/// Downloads and fully authenticates backup `id` (the newest that verifies when `None`),
/// decompressing and parsing its archive, without writing any file.
pub async fn verify(
    storage: &Storage,
    key: &BackupKey,
    id: Option<&str>,
    progress: Arc<dyn Progress>,
) -> Result<RestoreReport, ClientError> {
    let Choice {
        backup,
        passed_over,
        passed_over_more,
    } = catalog::choose(storage, key, id).await?;
    let report = read_backup(storage, key, &backup, None, progress).await?;
    Ok(RestoreReport {
        passed_over,
        passed_over_more,
        ..report
    })
}

/// Writes the decrypted payload (a zstd-compressed tar) of a backup to `out`, after
/// authenticating all of it. The file appears only when the whole stream checked out.
/// Returns the backup chosen, as [`catalog::choose`] does.
pub async fn export_payload(
    storage: &Storage,
    key: &BackupKey,
    id: Option<&str>,
    out: &Path,
) -> Result<Choice, ClientError> {
    if fs::symlink_metadata(out).is_ok() {
        return Err(ClientError::Usage(format!(
            "{} already exists; choose a new file name",
            out.display()
        )));
    }
    let choice = catalog::choose(storage, key, id).await?;
    let backup = &choice.backup;
    let (tx, rx) = mpsc::channel::<Bytes>(DEPTH);
    let key = key.clone();
    let bid = backup.id.clone();
    let output = out.to_path_buf();
    let decrypt = tokio::task::spawn_blocking(move || -> Result<PartialFile, ClientError> {
        // The key is checked before any file is created.
        let mut reader = DecryptReader::new(&key, &bid, PipeReader::new(rx))
            .map_err(|e| ClientError::from_format(&bid, e))?;
        // The payload is plaintext: readable by its owner only, beside the output in a
        // folder other users cannot change.
        let mut partial = PartialFile::create(&output)?;
        pump(&mut reader, partial.file()).map_err(|e| ClientError::from_pipe_io(&bid, e))?;
        Ok(partial)
    });
    let downloaded = download(storage, backup, tx, Arc::new(crate::progress::Silent)).await;
    let decrypted = join(decrypt).await;
    match (downloaded, decrypted) {
        (Ok(()), Ok(partial)) => partial.commit()?,
        (d, k) => return Err(first_error([d.err(), k.err()])),
    }
    Ok(choice)
}

async fn read_backup(
    storage: &Storage,
    key: &BackupKey,
    backup: &StoredBackup,
    into: Option<OwnedFd>,
    progress: Arc<dyn Progress>,
) -> Result<RestoreReport, ClientError> {
    progress.start(
        if into.is_some() {
            "restoring"
        } else {
            "verifying"
        },
        Some(backup.size),
    );
    let (dl_tx, dl_rx) = mpsc::channel::<Bytes>(DEPTH);
    let (plain_tx, plain_rx) = sync_pipe();

    // Decrypt on one thread: the header (and so a wrong key) is checked before anything else.
    let key = key.clone();
    let bid = backup.id.clone();
    let decrypt = tokio::task::spawn_blocking(move || -> Result<HeaderInfo, ClientError> {
        // The header must name the backup it is stored as: a renamed copy stops here.
        let mut reader = DecryptReader::new(&key, &bid, PipeReader::new(dl_rx))
            .map_err(|e| ClientError::from_format(&bid, e))?;
        let info = reader.info();
        let mut out = plain_tx;
        pump(&mut reader, &mut out).map_err(|e| ClientError::from_pipe_io(&bid, e))?;
        out.finish()
            .map_err(|e| ClientError::from_pipe_io(&bid, e))?;
        Ok(info)
    });

    // Decompress and unpack on another.
    let bid = backup.id.clone();
    let unpack = tokio::task::spawn_blocking(move || -> Result<ArchiveSummary, ClientError> {
        let bad = |e: io::Error| {
            if crate::pipe::is_pipe_closed(&e) {
                ClientError::PipelineStopped
            } else {
                ClientError::BadArchive {
                    id: bid.clone(),
                    reason: e.to_string(),
                }
            }
        };
        let mut z = zstd::stream::Decoder::new(plain_rx).map_err(bad)?;
        // Bounds the decoder's memory whatever the frame asks for (see docs/FORMAT.md).
        z.window_log_max(MAX_WINDOW_LOG).map_err(bad)?;
        let sink = match &into {
            Some(dir) => Sink::Directory(dir.as_fd()),
            None => Sink::Discard,
        };
        let (summary, dirs) = archive::unpack(&mut z, sink).map_err(|e| match e {
            ClientError::BadArchive { reason, .. } => ClientError::BadArchive {
                id: bid.clone(),
                reason,
            },
            other => other,
        })?;
        // tar stops at its end-of-archive marker; read the rest so the whole stream (and
        // its final, flagged chunk) is authenticated before anything is finalised.
        io::copy(&mut z, &mut io::sink()).map_err(bad)?;
        dirs.apply()?;
        Ok(summary)
    });

    let downloaded = download(storage, backup, dl_tx, progress.clone()).await;
    let decrypted = join(decrypt).await;
    let unpacked = join(unpack).await;
    progress.finish();
    match (downloaded, decrypted, unpacked) {
        (Ok(()), Ok(info), Ok(contents)) => Ok(RestoreReport {
            id: backup.id.clone(),
            created: humantime::format_rfc3339_millis(info.id.created()).to_string(),
            stored_bytes: backup.size,
            contents,
            key_id: info.key_id.to_string(),
            passed_over: Vec::new(),
            passed_over_more: 0,
        }),
        (d, k, u) => Err(first_error([d.err(), k.err(), u.err()])),
    }
}

/// Streams a stored backup into a pipe.
async fn download(
    storage: &Storage,
    backup: &StoredBackup,
    tx: mpsc::Sender<Bytes>,
    progress: Arc<dyn Progress>,
) -> Result<(), ClientError> {
    let mut stream = storage.stream(backup).await?;
    let mut received = 0u64;
    while let Some(piece) = stream.next().await {
        let piece = piece?;
        crate::check_stop()?;
        received += piece.len() as u64;
        progress.advance(piece.len() as u64);
        // Hand the pipe blocks of at most BLOCK bytes (slices, not copies) so the
        // decrypting stage starts sooner.
        for mut bytes in piece {
            while !bytes.is_empty() {
                let block = bytes.split_to(bytes.len().min(BLOCK));
                if tx.send(block).await.is_err() {
                    return Err(ClientError::PipelineStopped);
                }
            }
        }
    }
    if received != backup.size {
        return Err(ClientError::Storage {
            action: "download a backup",
            message: format!("the object ended at byte {received} of {}", backup.size),
            retryable: true,
        });
    }
    tx.send(Bytes::new())
        .await
        .map_err(|_| ClientError::PipelineStopped)
}

async fn join<T>(h: tokio::task::JoinHandle<Result<T, ClientError>>) -> Result<T, ClientError> {
    h.await
        .map_err(|e| ClientError::Internal(format!("a pipeline stage panicked: {e}")))?
}

/// The first error in stream order that is not merely a reaction to another stage's failure.
fn first_error<const N: usize>(errs: [Option<ClientError>; N]) -> ClientError {
    let mut fallback = None;
    for e in errs.into_iter().flatten() {
        if !matches!(e, ClientError::PipelineStopped) {
            return e;
        }
        fallback = Some(e);
    }
    fallback.unwrap_or_else(|| ClientError::Internal("a pipeline failed without an error".into()))
}
