//! Where encrypted backups live, through Apache OpenDAL.
//!
//! A storage URL becomes an OpenDAL scheme plus configuration pairs; every provider is then
//! the same `Operator`. Layout under the root:
//!
//! ```text
//! backups/<id>.coffer      complete backups, and nothing else
//! incomplete/<id>.part     uploads in progress (providers with rename only)
//! ```
//!
//! An id is `YYYYMMDDTHHMMSSmmmZ-<8 hex digits>`: the UTC upload time to the millisecond,
//! which the provider sees anyway, and random digits so that ids never collide. Ids sort
//! in time order.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use opendal::layers::RetryLayer;
use opendal::{ErrorKind, Operator};

use crate::error::ClientError;

const BACKUPS_DIR: &str = "backups/";
const INCOMPLETE_DIR: &str = "incomplete/";
const BACKUP_SUFFIX: &str = ".coffer";
const PART_SUFFIX: &str = ".part";
/// Bytes per read and per upload part.
pub const IO_CHUNK: usize = 4 << 20;

/// A parsed storage location. Only what the URL names: credentials never appear here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    /// A local (or synced) folder.
    Fs { root: PathBuf },
}

impl StorageUrl {
    /// Parses `file:///abs/path`, a plain absolute or relative path, or a provider URL.
    pub fn parse(text: &str) -> Result<StorageUrl, ClientError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ClientError::Usage("the storage location is empty".into()));
        }
        if let Some(rest) = text.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(ClientError::Usage(format!(
                    "a file:// URL needs an absolute path (file:///…), got {text:?}"
                )));
            }
            return Ok(StorageUrl::Fs { root: rest.into() });
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(ClientError::Usage(format!(
                "storage scheme {scheme}:// is not supported by this build; use a folder path or file:///"
            )));
        }
        let path = Path::new(text);
        let root = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|e| ClientError::io("reading the current directory", ".", e))?
                .join(path)
        };
        Ok(StorageUrl::Fs { root })
    }

    /// The OpenDAL scheme and configuration for this location.
    fn operator_config(&self) -> (&'static str, Vec<(String, String)>) {
        match self {
            StorageUrl::Fs { root } => (
                "fs",
                vec![("root".into(), root.to_string_lossy().into_owned())],
            ),
        }
    }

    /// Canonical text form, safe to print.
    pub fn display(&self) -> String {
        match self {
            StorageUrl::Fs { root } => root.display().to_string(),
        }
    }
}

/// One complete backup in storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBackup {
    pub id: String,
    pub size: u64,
    pub created: SystemTime,
}

/// An opened storage location.
pub struct Storage {
    op: Operator,
    url: StorageUrl,
}

impl Storage {
    pub fn open(url: &StorageUrl) -> Result<Storage, ClientError> {
        opendal::init_default_registry();
        let (scheme, config) = url.operator_config();
        let op = Operator::via_iter(scheme, config)
            .map_err(|e| ClientError::storage("open the storage", e))?
            .layer(RetryLayer::new().with_jitter().with_max_times(4));
        Ok(Storage {
            op,
            url: url.clone(),
        })
    }

    /// Opens a location that must already exist: reading commands must not create an
    /// empty folder where a mistyped or unmounted one was meant.
    pub fn open_existing(url: &StorageUrl) -> Result<Storage, ClientError> {
        match url {
            StorageUrl::Fs { root } if !root.is_dir() => {
                Err(ClientError::StorageMissing(url.display()))
            }
            _ => Storage::open(url),
        }
    }

    pub fn url(&self) -> &StorageUrl {
        &self.url
    }

    /// All complete backups, oldest first.
    pub async fn list(&self) -> Result<Vec<StoredBackup>, ClientError> {
        let entries = match self.op.list(BACKUPS_DIR).await {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ClientError::storage("list backups", e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let Some(id) = entry.name().strip_suffix(BACKUP_SUFFIX) else {
                continue;
            };
            let Some(created) = id_time(id) else {
                continue;
            };
            let size = match entry.metadata().content_length() {
                0 => self
                    .op
                    .stat(entry.path())
                    .await
                    .map_err(|e| ClientError::storage("read a backup's size", e))?
                    .content_length(),
                n => n,
            };
            out.push(StoredBackup {
                id: id.to_string(),
                size,
                created,
            });
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// The backup with `id`, or the newest one when `id` is `None`.
    pub async fn find(&self, id: Option<&str>) -> Result<StoredBackup, ClientError> {
        let all = self.list().await?;
        match id {
            None => all
                .into_iter()
                .next_back()
                .ok_or_else(|| ClientError::NoBackups(self.url.display())),
            Some(id) => all
                .into_iter()
                .find(|b| b.id == id)
                .ok_or_else(|| ClientError::BackupNotFound(id.to_string())),
        }
    }

    /// Reads `len` bytes of a backup from `offset`.
    pub async fn read_range(
        &self,
        backup: &StoredBackup,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, ClientError> {
        let end = (offset + len).min(backup.size);
        if offset >= end {
            return Ok(Vec::new());
        }
        let buf = self
            .op
            .read_with(&backup_path(&backup.id))
            .range(offset..end)
            .await
            .map_err(|e| ClientError::storage("download a backup", e))?;
        Ok(buf.to_vec())
    }

    /// Streams a whole backup in pieces of about [`IO_CHUNK`] bytes, with a few reads in
    /// flight where the provider allows it.
    pub async fn stream(&self, backup: &StoredBackup) -> Result<BackupStream, ClientError> {
        let reader = self
            .op
            .reader_with(&backup_path(&backup.id))
            .chunk(IO_CHUNK)
            .concurrent(2)
            .await
            .map_err(|e| ClientError::storage("download a backup", e))?;
        let inner = reader
            .into_stream(0..backup.size)
            .await
            .map_err(|e| ClientError::storage("download a backup", e))?;
        Ok(BackupStream { inner })
    }

    /// Starts an upload of backup `id`. Nothing is listed until [`Upload::commit`].
    pub async fn begin_upload(&self, id: &str) -> Result<Upload, ClientError> {
        let final_path = backup_path(id);
        // With rename, write under a temporary name and rename at the end. Without it
        // (object stores), the object only appears once its upload completes.
        let temp_path = self
            .op
            .info()
            .capability()
            .rename
            .then(|| format!("{INCOMPLETE_DIR}{id}{PART_SUFFIX}"));
        let path = temp_path.as_deref().unwrap_or(&final_path);
        let mut writer = self.op.writer_with(path);
        if temp_path.is_none() {
            // Object stores upload in parts; a local file takes each block as it comes.
            writer = writer.chunk(IO_CHUNK);
        }
        let writer = writer
            .await
            .map_err(|e| ClientError::storage("start an upload", e))?;
        Ok(Upload {
            op: self.op.clone(),
            local_dir: match &self.url {
                StorageUrl::Fs { root } => Some(root.clone()),
            },
            writer,
            temp_path,
            final_path,
            written: 0,
        })
    }

    /// Removes uploads left in `incomplete/` by crashed or killed backups more than
    /// `max_age` ago (younger ones may still be running on another device). Returns how
    /// many were removed. Providers without rename never leave any.
    pub async fn remove_stale_uploads(&self, max_age: Duration) -> Result<usize, ClientError> {
        let entries = match self.op.list(INCOMPLETE_DIR).await {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(ClientError::storage("list unfinished uploads", e)),
        };
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in entries {
            if !entry.name().ends_with(PART_SUFFIX) {
                continue;
            }
            let modified = match entry.metadata().last_modified() {
                Some(t) => Some(t),
                None => self
                    .op
                    .stat(entry.path())
                    .await
                    .ok()
                    .and_then(|m| m.last_modified()),
            };
            let stale = modified
                .map(SystemTime::from)
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > max_age);
            if stale {
                self.op
                    .delete(entry.path())
                    .await
                    .map_err(|e| ClientError::storage("remove an unfinished upload", e))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    pub async fn delete(&self, id: &str) -> Result<(), ClientError> {
        self.op
            .delete(&backup_path(id))
            .await
            .map_err(|e| ClientError::storage("delete a backup", e))
    }
}

/// The pieces of a backup being downloaded.
pub struct BackupStream {
    inner: opendal::BufferStream,
}

impl BackupStream {
    /// The next piece, `None` at the end.
    pub async fn next(&mut self) -> Option<Result<opendal::Buffer, ClientError>> {
        use futures_util::StreamExt;
        self.inner
            .next()
            .await
            .map(|r| r.map_err(|e| ClientError::storage("download a backup", e)))
    }
}

/// An upload in progress.
pub struct Upload {
    op: Operator,
    /// The storage root, when it is a local folder.
    local_dir: Option<PathBuf>,
    writer: opendal::Writer,
    temp_path: Option<String>,
    final_path: String,
    written: u64,
}

impl Upload {
    pub async fn write(&mut self, block: Vec<u8>) -> Result<(), ClientError> {
        self.written += block.len() as u64;
        self.writer
            .write(block)
            .await
            .map_err(|e| ClientError::storage("upload a backup", e))
    }

    /// Finishes the upload and makes it visible as a complete backup. Returns its size.
    pub async fn commit(mut self) -> Result<u64, ClientError> {
        self.writer
            .close()
            .await
            .map_err(|e| ClientError::storage("finish an upload", e))?;
        if let Some(temp) = &self.temp_path {
            self.op
                .rename(temp, &self.final_path)
                .await
                .map_err(|e| ClientError::storage("commit an upload", e))?;
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
    /// is never listed as a backup.
    pub async fn abort(mut self) {
        if self.writer.abort().await.is_err() {
            // Closing publishes nothing when writing to a temporary name; remove it.
            if let Some(temp) = &self.temp_path {
                let _ = self.writer.close().await;
                let _ = self.op.delete(temp).await;
            }
        }
    }
}

fn backup_path(id: &str) -> String {
    format!("{BACKUPS_DIR}{id}{BACKUP_SUFFIX}")
}

/// A new backup id for `now`.
pub fn new_backup_id(now: SystemTime) -> Result<String, ClientError> {
    let stamp = humantime::format_rfc3339_millis(now).to_string();
    let compact: String = stamp
        .chars()
        .filter(|c| !matches!(c, '-' | ':' | '.'))
        .collect();
    let mut rand = [0u8; 4];
    coffer_format::key::fill_random(&mut rand)?;
    Ok(format!(
        "{compact}-{:02x}{:02x}{:02x}{:02x}",
        rand[0], rand[1], rand[2], rand[3]
    ))
}

/// The upload time encoded in a backup id, if `id` is well formed.
pub fn id_time(id: &str) -> Option<SystemTime> {
    let (stamp, rand) = id.split_once('-')?;
    if rand.len() != 8 || !rand.bytes().all(|b| b.is_ascii_hexdigit()) || stamp.len() != 19 {
        return None;
    }
    let b = stamp.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b[8] != b'T' || b[18] != b'Z' || !digits(0..8) || !digits(9..18) {
        return None;
    }
    let rfc = format!(
        "{}-{}-{}T{}:{}:{}.{}Z",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13],
        &stamp[13..15],
        &stamp[15..18]
    );
    humantime::parse_rfc3339(&rfc).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_their_time() {
        let t = humantime::parse_rfc3339("2026-11-27T10:10:18.042Z").unwrap();
        let id = new_backup_id(t).unwrap();
        assert!(id.starts_with("20261127T101018042Z-"), "{id}");
        assert_eq!(id_time(&id), Some(t));
        let later = new_backup_id(t + std::time::Duration::from_millis(1)).unwrap();
        assert!(later > id, "ids sort in time order");
        assert_eq!(id_time("20261127T101018042Z-zzzzzzzz"), None);
        assert_eq!(id_time("20261127T1010180x2Z-00000000"), None);
        assert_eq!(id_time("notes"), None);
    }

    #[test]
    fn urls_parse() {
        assert_eq!(
            StorageUrl::parse("file:///srv/b").unwrap(),
            StorageUrl::Fs {
                root: "/srv/b".into()
            }
        );
        assert_eq!(
            StorageUrl::parse("/srv/b").unwrap(),
            StorageUrl::Fs {
                root: "/srv/b".into()
            }
        );
        assert!(StorageUrl::parse("file://relative").is_err());
        assert!(StorageUrl::parse("ftp://x").is_err());
        assert!(StorageUrl::parse("  ").is_err());
    }
}
