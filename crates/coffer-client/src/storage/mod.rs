//! Where encrypted backups live, through Apache OpenDAL.
//!
//! A storage location becomes an OpenDAL service plus configuration ([`location`]); every
//! provider is then the same `Operator`, wrapped in a timeout and a retry with backoff,
//! over an HTTP transport that caps what is read whole ([`transport`]). Layout under the
//! location's root (docs/STORAGE.md):
//!
//! ```text
//! backups/<id>.coffer        a complete backup, one object
//! backups/<id>.segments      a complete backup stored as segments (see manifest.rs)
//! segments/<id>/<n>          the segments, numbered from 000000
//! incomplete/<id>.part       an upload in progress (local folders)
//! incomplete/<id>.segments   a manifest about to be committed
//! ```
//!
//! Only what is under `backups/` is ever listed, and an object appears there only once
//! the whole backup is stored: by rename (folders), by completing a multipart upload
//! (object stores), or by writing the manifest last (one-request providers).
//!
//! Whatever the provider sends, what is read of it is bounded ([`limits`]): listings
//! are streamed and capped, segment lists are capped before they are read, and every
//! download has a deadline that grows with its size.

mod download;
mod errors;
pub(crate) use errors::shorten;
mod ids;
pub mod limits;
mod listing;
mod location;
mod manifest;
mod prune;
mod stale;
mod transport;
mod upload;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opendal::layers::{RetryLayer, TimeoutLayer};
use opendal::{HttpTransporter, OperationContext, Operator};

use crate::error::ClientError;
use download::{read_counted, ReadFailure};
use errors::{download_too_slow, Shared};
use ids::{manifest_path, segments_dir};
use limits::Deadline;

pub use download::BackupStream;
pub use ids::id_time;
pub use location::{
    resolve, Provider, RemoteUrl, Resolved, StorageUrl, DEFAULT_RETRIES, DEFAULT_TIMEOUT,
};
pub use manifest::SegmentSizes;
pub use prune::{plan as plan_prune, PrunePolicy};
pub use upload::Upload;

const BACKUPS_DIR: &str = "backups/";
const INCOMPLETE_DIR: &str = "incomplete/";
const SEGMENTS_DIR: &str = "segments/";
const BACKUP_SUFFIX: &str = ".coffer";
const MANIFEST_SUFFIX: &str = ".segments";
const PART_SUFFIX: &str = ".part";
/// Reads from a local folder: 4 MiB each, two in flight.
const LOCAL_READS: (usize, usize) = (4 << 20, 2);
// From a provider, each object is read in one streaming request instead: ranged reads in
// flight cost about twice their size in memory each, and some servers pay for every range
// (measured on a 512 MiB backup: against moto, 0.5 s streaming against 33 s in 4 MiB
// ranges, three in flight; against s3s-fs, 2.4-3.1 s and 19 MiB against 2.8-2.9 s and
// 50 MiB). A broken stream is resumed where it stopped by the retry layer.
/// Bytes per multipart part and per segment: S3's minimum part size, so that the parts in
/// flight keep peak memory under 64 MiB.
pub const PART_SIZE: usize = 5 << 20;
/// Parts uploaded at once by multipart uploads. Each costs `PART_SIZE` of memory; a third
/// measured no faster against a local S3 server and took peak memory past 64 MiB.
const UPLOAD_CONCURRENCY: usize = 2;

/// One complete backup in storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBackup {
    pub id: String,
    pub size: u64,
    pub created: SystemTime,
    /// Segment sizes, for a backup stored in segments.
    pub segments: Option<SegmentSizes>,
}

/// What the parts of a `Storage` share: the operator, and how it is to be used.
#[derive(Clone)]
struct Backend {
    op: Operator,
    shared: Arc<Shared>,
    /// The base of every deadline (`deadline` setting).
    deadline: Duration,
    /// An object store, whose "not found" on a listing means a missing bucket.
    object_store: bool,
    folders: listing::FolderDelete,
    /// The location, as printed.
    location: String,
}

/// An opened storage location.
pub struct Storage {
    backend: Backend,
    url: StorageUrl,
    force_segments: bool,
}

/// A backup as its listing entry shows it: whether it is segmented, and the size listed.
struct Listed {
    segmented: bool,
    size: u64,
}

impl Storage {
    /// Opens `url` with settings from the environment and the URL.
    pub fn open(url: &StorageUrl) -> Result<Storage, ClientError> {
        Storage::open_with(url, &BTreeMap::new())
    }

    /// Opens `url` with the profile's `options` too (see [`location`]).
    pub fn open_with(
        url: &StorageUrl,
        options: &BTreeMap<String, String>,
    ) -> Result<Storage, ClientError> {
        let resolved = resolve(url, options, &|name| std::env::var(name).ok())?;
        Storage::from_resolved(url, resolved)
    }

    /// Opens `url` with a configuration already resolved.
    pub fn from_resolved(url: &StorageUrl, resolved: Resolved) -> Result<Storage, ClientError> {
        // HTTPS to providers uses rustls with ring, as the rest of Coffer does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        opendal::init_default_registry();
        let shared = Arc::new(Shared {
            secrets: resolved.secrets,
            ..Shared::default()
        });
        let config = resolved
            .config
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()));
        let notify = shared.clone();
        let retries = resolved.retries;
        let transport = HttpTransporter::new(transport::BoundedTransport::default());
        let op = Operator::via_iter(resolved.service, config)
            .map_err(|e| shared.err("open the storage", e))?;
        let op = op
            .with_context(OperationContext::new().with_http_transport(transport))
            .layer(
                TimeoutLayer::new()
                    .with_timeout(resolved.timeout)
                    .with_io_timeout(resolved.timeout),
            )
            .layer(
                RetryLayer::new()
                    .with_jitter()
                    .with_min_delay(Duration::from_millis(500))
                    .with_max_delay(Duration::from_secs(20))
                    .with_max_times(retries)
                    .with_notify(move |ev: opendal::layers::RetryEvent<'_>| {
                        notify.notice(&format!(
                            "storage {} failed ({}); retry {} of {} in {:.1} s",
                            ev.op,
                            errors::retry_cause(ev.err, &notify.secrets),
                            ev.attempt,
                            retries,
                            ev.retry_after.as_secs_f64()
                        ));
                    }),
            );
        let provider = match url {
            StorageUrl::Fs { .. } => None,
            StorageUrl::Remote(r) => Some(r.provider),
        };
        let object_store = matches!(
            provider,
            Some(Provider::S3 | Provider::Gcs | Provider::Azblob)
        );
        let folders = match provider {
            None | Some(Provider::Gdrive) => listing::FolderDelete::Recursive,
            Some(Provider::Webdav { .. }) => listing::FolderDelete::Collection,
            Some(_) => listing::FolderDelete::Listed,
        };
        Ok(Storage {
            backend: Backend {
                op,
                shared,
                deadline: resolved.deadline,
                object_store,
                folders,
                location: url.display(),
            },
            url: url.clone(),
            force_segments: resolved.force_segments,
        })
    }

    /// Opens a location that must already exist: reading commands must not create an
    /// empty folder where a mistyped or unmounted one was meant.
    pub fn open_existing(
        url: &StorageUrl,
        options: &BTreeMap<String, String>,
    ) -> Result<Storage, ClientError> {
        match url {
            StorageUrl::Fs { root } if !root.is_dir() => {
                Err(ClientError::StorageMissing(url.display()))
            }
            _ => Storage::open_with(url, options),
        }
    }

    /// Calls `hook` with a one-line notice before each retry of a failed request, and
    /// for each damaged backup that a listing skips.
    pub fn on_notice(&self, hook: impl Fn(&str) + Send + Sync + 'static) {
        *self
            .backend
            .shared
            .on_notice
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Box::new(hook));
    }

    pub fn url(&self) -> &StorageUrl {
        &self.url
    }

    /// Whether uploads hold parts in memory (any provider but a local folder), so that the
    /// rest of a backup must make room for them.
    pub fn buffers_uploads(&self) -> bool {
        matches!(self.url, StorageUrl::Remote(_))
    }

    /// All complete backups, oldest first. A backup whose segment list is damaged is left
    /// out, with a notice; a listing past [`limits::MAX_LISTING_ENTRIES`] is an error.
    pub async fn list(&self) -> Result<Vec<StoredBackup>, ClientError> {
        // The whole listing first, kept small: a hostile one fails before any object is
        // read for it.
        let mut listed: BTreeMap<String, Listed> = BTreeMap::new();
        let mut listing = self.backend.listing(BACKUPS_DIR, "list backups").await?;
        while let Some(entry) = listing.next().await? {
            let name = entry.name();
            let (id, segmented) = if let Some(id) = name.strip_suffix(BACKUP_SUFFIX) {
                (id, false)
            } else if let Some(id) = name.strip_suffix(MANIFEST_SUFFIX) {
                (id, true)
            } else {
                continue;
            };
            if id_time(id).is_none() || listed.contains_key(id) {
                continue;
            }
            let size = entry.metadata().content_length();
            listed.insert(id.to_string(), Listed { segmented, size });
        }
        let mut out = Vec::with_capacity(listed.len());
        for (id, entry) in listed {
            let Some(created) = id_time(&id) else {
                continue;
            };
            let path = match entry.segmented {
                true => manifest_path(&id),
                false => ids::backup_path(&id),
            };
            let size = match entry.size {
                0 => self
                    .backend
                    .op
                    .stat(&path)
                    .await
                    .map_err(|e| self.backend.shared.err("read a backup's size", e))?
                    .content_length(),
                n => n,
            };
            let segments = if entry.segmented {
                match self.read_segment_list(&id, &path, size).await? {
                    Ok(sizes) => Some(sizes),
                    // One damaged backup must not hide the others.
                    Err(e) => {
                        self.backend
                            .shared
                            .notice(&format!("{e}; it is not listed"));
                        continue;
                    }
                }
            } else {
                None
            };
            out.push(StoredBackup {
                size: segments.map_or(size, |s| s.total()),
                id,
                created,
                segments,
            });
        }
        Ok(out)
    }

    /// Reads and decodes the segment list of backup `id`, of `len` bytes: the outer error
    /// is a failed request, the inner one a damaged list.
    async fn read_segment_list(
        &self,
        id: &str,
        path: &str,
        len: u64,
    ) -> Result<Result<SegmentSizes, ClientError>, ClientError> {
        if len > manifest::MAX_LIST_BYTES {
            return Ok(Err(manifest::too_long(id, len)));
        }
        let mut deadline = Deadline::new(self.backend.deadline);
        let mut text = Vec::new();
        let action = "read a backup's segment list";
        match read_counted(&self.backend.op, path, 0..len, &mut deadline, &mut text).await {
            Ok(()) => Ok(manifest::decode(id, &text)),
            Err(ReadFailure::TooLong) => Ok(Err(manifest::invalid(
                id,
                "it is longer than its listed size",
            ))),
            Err(ReadFailure::TooShort) => Ok(Err(manifest::invalid(
                id,
                "it is shorter than its listed size",
            ))),
            Err(ReadFailure::Provider(e)) if errors::short_read(&e) => Ok(Err(manifest::invalid(
                id,
                "it is shorter than its listed size",
            ))),
            Err(ReadFailure::Provider(e)) => Err(self.backend.shared.err(action, e)),
            Err(ReadFailure::TooSlow) => Err(download_too_slow(
                action,
                text.len() as u64,
                len,
                deadline.waited(),
                deadline.base(),
            )),
        }
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

    /// Reads `len` bytes of a backup from `offset` (fewer at its end), within a deadline
    /// that grows with `len`.
    pub async fn read_range(
        &self,
        backup: &StoredBackup,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, ClientError> {
        self.backend.read_range(backup, offset, len).await
    }

    /// Streams a whole backup: in one request per object from a provider, in a few
    /// concurrent reads from a local folder. A failed read is retried from where it
    /// stopped; the whole download has a deadline that grows with the backup's size.
    pub async fn stream(&self, backup: &StoredBackup) -> Result<BackupStream, ClientError> {
        let ranged_reads = match self.url {
            StorageUrl::Fs { .. } => Some(LOCAL_READS),
            StorageUrl::Remote(_) => None,
        };
        Ok(BackupStream::new(
            self.backend.clone(),
            backup,
            ranged_reads,
        ))
    }

    /// Starts an upload of backup `id`. Nothing is listed until [`Upload::commit`].
    pub async fn begin_upload(&self, id: &str) -> Result<Upload, ClientError> {
        let local_dir = match &self.url {
            StorageUrl::Fs { root } => Some(root.clone()),
            StorageUrl::Remote(_) => None,
        };
        Upload::begin(self.backend.clone(), id, local_dir, self.force_segments).await
    }

    /// Deletes a backup. The listed object goes first, so that an interrupted delete
    /// leaves at most unlisted segments (removed later as stale), never a listed backup
    /// with pieces missing.
    pub async fn delete(&self, backup: &StoredBackup) -> Result<(), ClientError> {
        let b = &self.backend;
        let err = |e| b.shared.err("delete a backup", e);
        match &backup.segments {
            None => {
                b.op.delete(&ids::backup_path(&backup.id))
                    .await
                    .map_err(err)
            }
            Some(_) => {
                b.op.delete(&manifest_path(&backup.id)).await.map_err(err)?;
                b.remove_folder(&segments_dir(&backup.id), "delete a backup")
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every provider compiled in builds an operator from its configuration, and gets the
    /// upload method its capabilities call for. No request is made.
    #[test]
    fn every_provider_opens() {
        let env = BTreeMap::from([
            ("AZURE_STORAGE_ACCOUNT", "acct"),
            ("AZURE_STORAGE_KEY", "a2V5"),
            ("COFFER_GDRIVE_ACCESS_TOKEN", "t"),
            ("COFFER_ONEDRIVE_ACCESS_TOKEN", "t"),
            ("COFFER_DROPBOX_ACCESS_TOKEN", "t"),
            ("AWS_REGION", "eu-west-1"),
        ]);
        for (text, multi, rename) in [
            ("s3://b/p", true, false),
            (
                "gs://b/p?allow_anonymous=true&disable_vm_metadata=true",
                true,
                false,
            ),
            ("azblob://c/p", true, false),
            ("webdav://127.0.0.1:9/p", false, true),
            ("gdrive://Backups", false, true),
            ("onedrive://Backups", false, true),
            ("dropbox://Backups", false, true),
        ] {
            let url = StorageUrl::parse(text).unwrap();
            let resolved = resolve(&url, &BTreeMap::new(), &|k| {
                env.get(k).map(|v| v.to_string())
            })
            .unwrap();
            let storage =
                Storage::from_resolved(&url, resolved).unwrap_or_else(|e| panic!("{text}: {e}"));
            let cap = storage.backend.op.info().capability();
            assert_eq!((cap.write_can_multi, cap.rename), (multi, rename), "{text}");
            assert!(cap.list && cap.read && cap.delete, "{text}");
        }
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
