//! Cleaning up after uploads that were killed: what they left is never listed as a
//! backup, but it takes space.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use super::ids::{id_time, segments_dir};
use super::{Storage, BACKUPS_DIR, INCOMPLETE_DIR, MANIFEST_SUFFIX, PART_SUFFIX, SEGMENTS_DIR};
use crate::error::ClientError;

impl Storage {
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
        let b = &self.backend;
        let mut doomed = Vec::new();
        let mut listing = b.listing(INCOMPLETE_DIR, "list unfinished uploads").await?;
        while let Some(entry) = listing.next().await? {
            let name = entry.name();
            let id = name
                .strip_suffix(PART_SUFFIX)
                .or_else(|| name.strip_suffix(MANIFEST_SUFFIX));
            if id.is_some_and(old) {
                doomed.push(entry.path().to_string());
            }
        }
        for path in &doomed {
            b.op.delete(path)
                .await
                .map_err(|e| b.shared.err("remove an unfinished upload", e))?;
        }
        let mut removed = doomed.len();
        let mut stale = Vec::new();
        let mut listing = b.listing(SEGMENTS_DIR, "list segments").await?;
        while let Some(entry) = listing.next().await? {
            let id = entry.name().trim_end_matches('/');
            if old(id) {
                stale.push(id.to_string());
            }
        }
        if !stale.is_empty() {
            // A segment list's presence is what makes segments part of a backup: whether
            // the list reads well does not matter here, and needs no download.
            let mut complete = HashSet::new();
            let mut listing = b.listing(BACKUPS_DIR, "list backups").await?;
            while let Some(entry) = listing.next().await? {
                if let Some(id) = entry.name().strip_suffix(MANIFEST_SUFFIX) {
                    complete.insert(id.to_string());
                }
            }
            for id in stale.iter().filter(|id| !complete.contains(*id)) {
                b.remove_folder(&segments_dir(id), "remove an unfinished upload")
                    .await?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}
