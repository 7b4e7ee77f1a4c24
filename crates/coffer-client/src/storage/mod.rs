//! Where encrypted backups live, through Apache OpenDAL.
//!
//! A storage location becomes an OpenDAL service plus configuration ([`location`]); every
//! provider is then the same `Operator`, wrapped in a timeout and a retry with backoff.
//! Layout under the location's root (docs/STORAGE.md):
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
//! An id is `YYYYMMDDTHHMMSSmmmZ-<8 hex digits>`: the UTC upload time to the millisecond,
//! which the provider sees anyway, and random digits so that ids never collide. Ids sort
//! in time order.

mod location;
mod manifest;
mod prune;
mod upload;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use opendal::layers::{RetryLayer, TimeoutLayer};
use opendal::{ErrorKind, Operator};
use zeroize::Zeroizing;

use crate::error::ClientError;

pub use location::{
    resolve, Provider, RemoteUrl, Resolved, StorageUrl, DEFAULT_RETRIES, DEFAULT_TIMEOUT,
};
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
    pub segments: Option<Vec<u64>>,
}

impl StoredBackup {
    /// The objects holding the backup's bytes, in order, with their sizes.
    fn pieces(&self) -> Vec<(String, u64)> {
        match &self.segments {
            None => vec![(backup_path(&self.id), self.size)],
            Some(sizes) => sizes
                .iter()
                .enumerate()
                .map(|(n, &s)| (segment_path(&self.id, n), s))
                .collect(),
        }
    }
}

type NoticeHook = Box<dyn Fn(&str) + Send + Sync>;

/// Shared between a `Storage` and its retry layer, which exists before any hook is set.
#[derive(Default)]
struct Shared {
    secrets: Vec<Zeroizing<String>>,
    on_notice: Mutex<Option<NoticeHook>>,
}

impl Shared {
    fn notice(&self, text: &str) {
        let hook = self.on_notice.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(hook) = hook.as_ref() {
            hook(&location::scrub(text, &self.secrets));
        }
    }

    fn err(&self, action: &'static str, e: opendal::Error) -> ClientError {
        let text = e.to_string();
        let status = http_status(&text);
        // `transient`: a later try may well work, even once the retries are spent.
        let (hint, transient) = match (e.kind(), status) {
            (ErrorKind::PermissionDenied, _) | (_, Some(401 | 403)) => (
                "access denied; check the credentials and permissions",
                false,
            ),
            (ErrorKind::ConfigInvalid, _) => ("the storage settings are invalid", false),
            (ErrorKind::NotFound, _) | (_, Some(404)) => {
                ("not found; does the bucket or folder exist?", false)
            }
            (ErrorKind::RateLimited, _) | (_, Some(429)) => {
                ("the provider is limiting the request rate", true)
            }
            _ if text.contains("timeout reached") => ("timed out", true),
            // The retry layer marks a temporary error it gave up on as persistent.
            _ if e.is_persistent() => ("the provider kept failing, also when retried", true),
            _ => ("", e.is_temporary() || status.is_some_and(|s| s >= 500)),
        };
        let status = status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
        // OpenDAL's text ends with the provider's answer, often several lines of XML or
        // HTML: the first line says enough.
        let detail = first_line(&text);
        let message = if hint.is_empty() {
            format!("{detail}{status}")
        } else {
            format!("{hint}{status}: {detail}")
        };
        ClientError::Storage {
            action,
            retryable: transient,
            message: location::scrub(&message, &self.secrets),
        }
    }
}

/// A few words on why a request failed, for retry notices.
fn summary(e: &opendal::Error) -> String {
    let text = e.to_string();
    if let Some(status) = http_status(&text) {
        return format!("HTTP {status}");
    }
    if text.contains("timeout reached") {
        return "timed out".into();
    }
    let line = first_line(&text);
    let cause = line.rsplit(" => ").next().unwrap_or(line);
    cause.chars().take(120).collect()
}

/// The HTTP status in an OpenDAL error's context, if there is one.
fn http_status(text: &str) -> Option<u16> {
    let at = text.find("status: ")? + "status: ".len();
    text.get(at..at + 3)?.parse().ok()
}

/// An opened storage location.
pub struct Storage {
    op: Operator,
    url: StorageUrl,
    shared: Arc<Shared>,
    force_segments: bool,
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
        opendal_http_transport_reqwest::install_default();
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
        let op = Operator::via_iter(resolved.service, config)
            .map_err(|e| shared.err("open the storage", e))?
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
                            summary(ev.err),
                            ev.attempt,
                            retries,
                            ev.retry_after.as_secs_f64()
                        ));
                    }),
            );
        Ok(Storage {
            op,
            url: url.clone(),
            shared,
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

    /// All complete backups, oldest first.
    pub async fn list(&self) -> Result<Vec<StoredBackup>, ClientError> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for entry in self.list_dir(BACKUPS_DIR, "list backups").await? {
            let name = entry.name();
            let (id, segmented) = if let Some(id) = name.strip_suffix(BACKUP_SUFFIX) {
                (id, false)
            } else if let Some(id) = name.strip_suffix(MANIFEST_SUFFIX) {
                (id, true)
            } else {
                continue;
            };
            let Some(created) = id_time(id) else {
                continue;
            };
            if !seen.insert(id.to_string()) {
                continue;
            }
            let (size, segments) = if segmented {
                let text = self
                    .op
                    .read(entry.path())
                    .await
                    .map_err(|e| self.shared.err("read a backup's segment list", e))?;
                match manifest::decode(id, &text.to_vec()) {
                    Ok(sizes) => (sizes.iter().sum(), Some(sizes)),
                    // One damaged backup must not hide the others.
                    Err(e) => {
                        self.shared.notice(&format!("{e}; it is not listed"));
                        continue;
                    }
                }
            } else {
                let size = match entry.metadata().content_length() {
                    0 => self
                        .op
                        .stat(entry.path())
                        .await
                        .map_err(|e| self.shared.err("read a backup's size", e))?
                        .content_length(),
                    n => n,
                };
                (size, None)
            };
            out.push(StoredBackup {
                id: id.to_string(),
                size,
                created,
                segments,
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

    /// Reads `len` bytes of a backup from `offset` (fewer at its end).
    pub async fn read_range(
        &self,
        backup: &StoredBackup,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, ClientError> {
        let end = offset.saturating_add(len).min(backup.size);
        let mut out = Vec::new();
        let mut start = 0u64;
        for (path, size) in backup.pieces() {
            let (lo, hi) = (offset.max(start), end.min(start + size));
            if lo < hi {
                let buf = self
                    .op
                    .read_with(&path)
                    .range(lo - start..hi - start)
                    .await
                    .map_err(|e| self.shared.err("download a backup", e))?;
                out.extend_from_slice(&buf.to_vec());
            }
            start += size;
        }
        Ok(out)
    }

    /// Streams a whole backup: in one request per object from a provider, in a few
    /// concurrent reads from a local folder. A failed read is retried from where it
    /// stopped.
    pub async fn stream(&self, backup: &StoredBackup) -> Result<BackupStream, ClientError> {
        Ok(BackupStream {
            op: self.op.clone(),
            shared: self.shared.clone(),
            pending: backup.pieces().into(),
            current: None,
            ranged_reads: match self.url {
                StorageUrl::Fs { .. } => Some(LOCAL_READS),
                StorageUrl::Remote(_) => None,
            },
            segmented: backup.segments.is_some().then(|| backup.id.clone()),
        })
    }

    /// Starts an upload of backup `id`. Nothing is listed until [`Upload::commit`].
    pub async fn begin_upload(&self, id: &str) -> Result<Upload, ClientError> {
        let local_dir = match &self.url {
            StorageUrl::Fs { root } => Some(root.clone()),
            StorageUrl::Remote(_) => None,
        };
        let op = self.op.clone();
        Upload::begin(op, self.shared.clone(), id, local_dir, self.force_segments).await
    }

    /// Removes what crashed or killed backups left more than `max_age` ago (younger ones
    /// may still be running on another device): parts in `incomplete/` and segments
    /// without a segment list in `backups/`. Returns how many uploads were removed.
    pub async fn remove_stale_uploads(&self, max_age: Duration) -> Result<usize, ClientError> {
        let now = SystemTime::now();
        let old = |id: &str| {
            id_time(id)
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > max_age)
        };
        let mut removed = 0;
        for entry in self
            .list_dir(INCOMPLETE_DIR, "list unfinished uploads")
            .await?
        {
            let name = entry.name();
            let id = name
                .strip_suffix(PART_SUFFIX)
                .or_else(|| name.strip_suffix(MANIFEST_SUFFIX));
            if id.is_some_and(old) {
                self.op
                    .delete(entry.path())
                    .await
                    .map_err(|e| self.shared.err("remove an unfinished upload", e))?;
                removed += 1;
            }
        }
        let segmented = self.list_dir(SEGMENTS_DIR, "list segments").await?;
        if !segmented.is_empty() {
            // A segment list's presence is what makes segments part of a backup: whether
            // the list reads well does not matter here, and needs no download.
            let complete: HashSet<String> = self
                .list_dir(BACKUPS_DIR, "list backups")
                .await?
                .iter()
                .filter_map(|e| e.name().strip_suffix(MANIFEST_SUFFIX).map(str::to_string))
                .collect();
            for entry in segmented {
                let id = entry.name().trim_end_matches('/');
                if old(id) && !complete.contains(id) {
                    self.op
                        .delete_with(&format!("{SEGMENTS_DIR}{id}/"))
                        .recursive(true)
                        .await
                        .map_err(|e| self.shared.err("remove an unfinished upload", e))?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// The entries directly in `dir` (not `dir` itself); none when it does not exist.
    async fn list_dir(
        &self,
        dir: &str,
        action: &'static str,
    ) -> Result<Vec<opendal::Entry>, ClientError> {
        match self.op.list(dir).await {
            Ok(entries) => Ok(entries.into_iter().filter(|e| e.path() != dir).collect()),
            // An object store lists a missing prefix as empty: its "not found" can only
            // mean that the bucket or container itself is missing.
            Err(e)
                if self.is_object_store()
                    && (e.kind() == ErrorKind::NotFound
                        || http_status(&e.to_string()) == Some(404)) =>
            {
                Err(ClientError::StorageMissing(self.url.display()))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(self.shared.err(action, e)),
        }
    }

    fn is_object_store(&self) -> bool {
        matches!(
            &self.url,
            StorageUrl::Remote(r) if matches!(r.provider, Provider::S3 | Provider::Gcs | Provider::Azblob)
        )
    }

    /// Deletes a backup. The listed object goes first, so that an interrupted delete
    /// leaves at most unlisted segments (removed later as stale), never a listed backup
    /// with pieces missing.
    pub async fn delete(&self, backup: &StoredBackup) -> Result<(), ClientError> {
        let err = |e| self.shared.err("delete a backup", e);
        match &backup.segments {
            None => self.op.delete(&backup_path(&backup.id)).await.map_err(err),
            Some(_) => {
                self.op
                    .delete(&manifest_path(&backup.id))
                    .await
                    .map_err(err)?;
                self.op
                    .delete_with(&format!("{SEGMENTS_DIR}{}/", backup.id))
                    .recursive(true)
                    .await
                    .map_err(err)
            }
        }
    }
}

/// The pieces of a backup being downloaded.
pub struct BackupStream {
    op: Operator,
    shared: Arc<Shared>,
    pending: VecDeque<(String, u64)>,
    current: Option<(String, opendal::BufferStream)>,
    /// Bytes per read and reads in flight; `None` streams each object in one request.
    ranged_reads: Option<(usize, usize)>,
    /// The backup's id, when it is stored in segments.
    segmented: Option<String>,
}

impl BackupStream {
    /// The next piece, `None` at the end.
    pub async fn next(&mut self) -> Option<Result<opendal::Buffer, ClientError>> {
        use futures_util::StreamExt;
        loop {
            if let Some((path, cur)) = &mut self.current {
                match cur.next().await {
                    Some(r) => {
                        let (segmented, shared) = (&self.segmented, &self.shared);
                        return Some(r.map_err(|e| read_error(segmented, shared, path, e)));
                    }
                    None => self.current = None,
                }
            }
            let (path, size) = self.pending.pop_front()?;
            if size == 0 {
                continue;
            }
            let opened = async {
                let mut reader = self.op.reader_with(&path);
                if let Some((chunk, in_flight)) = self.ranged_reads {
                    reader = reader.chunk(chunk).concurrent(in_flight);
                }
                reader.await?.into_stream(0..size).await
            }
            .await;
            match opened {
                Ok(s) => self.current = Some((path, s)),
                Err(e) => return Some(Err(read_error(&self.segmented, &self.shared, &path, e))),
            }
        }
    }
}

/// Whether OpenDAL says an object is shorter than the range asked for (its words differ
/// between ranged and streaming reads).
fn short_read(e: &opendal::Error) -> bool {
    let text = e.to_string();
    text.contains("unexpected data size") || text.contains("too little data")
}

/// A download error; `segmented` is the backup's id when it is stored in segments.
fn read_error(
    segmented: &Option<String>,
    shared: &Shared,
    path: &str,
    e: opendal::Error,
) -> ClientError {
    match segmented {
        // A listed backup with a segment gone has been damaged, like a cut object.
        Some(id) if e.kind() == ErrorKind::NotFound => ClientError::BadManifest {
            id: id.clone(),
            reason: format!("its segment {path} is missing"),
        },
        // OpenDAL's words for an object shorter than the range asked for (the size
        // came from the segment list).
        Some(id) if short_read(&e) => ClientError::BadManifest {
            id: id.clone(),
            reason: format!("its segment {path} is not the size its list says"),
        },
        _ => shared.err("download a backup", e),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

fn backup_path(id: &str) -> String {
    format!("{BACKUPS_DIR}{id}{BACKUP_SUFFIX}")
}

fn manifest_path(id: &str) -> String {
    format!("{BACKUPS_DIR}{id}{MANIFEST_SUFFIX}")
}

fn segment_path(id: &str, n: usize) -> String {
    format!("{SEGMENTS_DIR}{id}/{n:06}")
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
            let cap = storage.op.info().capability();
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
