//! Backup ids and the object names made from them (the layout in `mod.rs`).
//!
//! An id is `YYYYMMDDTHHMMSSmmmZ-<8 hex digits>`: the UTC upload time to the millisecond,
//! which the provider sees anyway, and random digits so that ids never collide. Ids sort
//! in time order.

use std::time::SystemTime;

use super::{BACKUPS_DIR, BACKUP_SUFFIX, MANIFEST_SUFFIX, SEGMENTS_DIR};

pub(super) fn backup_path(id: &str) -> String {
    format!("{BACKUPS_DIR}{id}{BACKUP_SUFFIX}")
}

pub(super) fn manifest_path(id: &str) -> String {
    format!("{BACKUPS_DIR}{id}{MANIFEST_SUFFIX}")
}

/// The folder of a segmented backup's segments.
pub(super) fn segments_dir(id: &str) -> String {
    format!("{SEGMENTS_DIR}{id}/")
}

pub(super) fn segment_path(id: &str, n: u64) -> String {
    format!("{SEGMENTS_DIR}{id}/{n:06}")
}

/// The creation time in a backup id, if `id` is in the one form Coffer writes (the same
/// parser the header's id is checked with, so a name and a header cannot disagree on it).
pub fn id_time(id: &str) -> Option<SystemTime> {
    coffer_format::BackupId::parse(id).map(|b| b.created())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_their_time() {
        let t = humantime::parse_rfc3339("2026-11-27T10:10:18.042Z").unwrap();
        let id = coffer_format::BackupId::generate(t).unwrap().to_string();
        assert!(id.starts_with("20261127T101018042Z-"), "{id}");
        assert_eq!(id_time(&id), Some(t));
        let later = coffer_format::BackupId::generate(t + std::time::Duration::from_millis(1))
            .unwrap()
            .to_string();
        assert!(later > id, "ids sort in time order");
        assert_eq!(
            id_time("20261127T101018042Z-ABCDEF01"),
            None,
            "upper-case tag"
        );
        assert_eq!(id_time("20261127T101018042Z-zzzzzzzz"), None);
        assert_eq!(id_time("20261127T1010180x2Z-00000000"), None);
        assert_eq!(id_time("notes"), None);
    }

    #[test]
    fn segment_names_sort_in_order() {
        assert_eq!(segment_path("i", 7), "segments/i/000007");
        assert_eq!(segment_path("i", 99_999), "segments/i/099999");
        assert!(segment_path("i", 10) > segment_path("i", 9));
        assert!(segment_path("i", 99_999).starts_with(&segments_dir("i")));
    }
}
