//! Backup ids and the object names made from them (the layout in `mod.rs`).
//!
//! An id is `YYYYMMDDTHHMMSSmmmZ-<8 hex digits>`: the UTC upload time to the millisecond,
//! which the provider sees anyway, and random digits so that ids never collide. Ids sort
//! in time order.

use std::time::SystemTime;

use super::{BACKUPS_DIR, BACKUP_SUFFIX, MANIFEST_SUFFIX, SEGMENTS_DIR};
use crate::error::ClientError;

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
    fn segment_names_sort_in_order() {
        assert_eq!(segment_path("i", 7), "segments/i/000007");
        assert_eq!(segment_path("i", 99_999), "segments/i/099999");
        assert!(segment_path("i", 10) > segment_path("i", 9));
        assert!(segment_path("i", 99_999).starts_with(&segments_dir("i")));
    }
}
