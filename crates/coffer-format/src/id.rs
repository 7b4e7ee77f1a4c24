//! The backup id: when a backup was made, to the millisecond, plus four random bytes.
//!
//! The header carries it, under the header MAC, so a backup says which backup it is: a
//! copy stored under another name is recognised (docs/FORMAT.md, section 4). Its text form
//! `YYYYMMDDTHHMMSSmmmZ-tttttttt` names the stored object, and sorts in time order.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::key::fill_random;
use crate::FormatError;

/// Milliseconds since the Unix epoch of 9999-12-31T23:59:59.999Z, the last instant a
/// four-digit year can write.
pub const MAX_CREATED_MILLIS: u64 = 253_402_300_799_999;

/// Bytes of the id in the header: the time (8, big-endian) and the random tag (4).
pub const ID_LEN: usize = 12;

/// Length of the text form.
pub const ID_TEXT_LEN: usize = 28;

/// One backup's identity. Two backups made in the same millisecond differ in their tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BackupId {
    created_millis: u64,
    tag: [u8; 4],
}

impl BackupId {
    /// The id of a backup made at `created` (truncated to the millisecond) with `tag`.
    pub fn new(created: SystemTime, tag: [u8; 4]) -> Result<BackupId, FormatError> {
        let millis = created
            .duration_since(UNIX_EPOCH)
            .ok()
            .and_then(|d| u64::try_from(d.as_millis()).ok())
            .filter(|&m| m <= MAX_CREATED_MILLIS)
            .ok_or(FormatError::TimeOutOfRange)?;
        Ok(BackupId {
            created_millis: millis,
            tag,
        })
    }

    /// A fresh id for a backup made now (`now` is the caller's clock) with a random tag.
    pub fn generate(now: SystemTime) -> Result<BackupId, FormatError> {
        let mut tag = [0u8; 4];
        fill_random(&mut tag)?;
        BackupId::new(now, tag)
    }

    /// Parses the text form. Only the canonical form is accepted (lower-case tag, a real
    /// date and time), so that parsing and printing give back the same text.
    pub fn parse(text: &str) -> Option<BackupId> {
        let b = text.as_bytes();
        if b.len() != ID_TEXT_LEN || b[8] != b'T' || b[18] != b'Z' || b[19] != b'-' {
            return None;
        }
        let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
        if !digits(0..8) || !digits(9..18) {
            return None;
        }
        let mut tag = [0u8; 4];
        for (i, out) in tag.iter_mut().enumerate() {
            let hex = |c: u8| match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                _ => None,
            };
            *out = (hex(b[20 + 2 * i])? << 4) | hex(b[21 + 2 * i])?;
        }
        let rfc = format!(
            "{}-{}-{}T{}:{}:{}.{}Z",
            &text[0..4],
            &text[4..6],
            &text[6..8],
            &text[9..11],
            &text[11..13],
            &text[13..15],
            &text[15..18]
        );
        let created = humantime::parse_rfc3339(&rfc).ok()?;
        let id = BackupId::new(created, tag).ok()?;
        // Refuses what the parser normalises (a leap second, say): one id, one text.
        (id.to_string() == text).then_some(id)
    }

    /// When the backup was made.
    pub fn created(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.created_millis)
    }

    pub fn created_millis(&self) -> u64 {
        self.created_millis
    }

    pub fn tag(&self) -> [u8; 4] {
        self.tag
    }

    /// The header's encoding: the time as 8 bytes big-endian, then the tag.
    pub fn to_bytes(&self) -> [u8; ID_LEN] {
        let mut out = [0u8; ID_LEN];
        out[..8].copy_from_slice(&self.created_millis.to_be_bytes());
        out[8..].copy_from_slice(&self.tag);
        out
    }

    /// Decodes the header's encoding; `None` for a time past year 9999.
    pub fn from_bytes(bytes: &[u8; ID_LEN]) -> Option<BackupId> {
        let mut millis = [0u8; 8];
        millis.copy_from_slice(&bytes[..8]);
        let created_millis = u64::from_be_bytes(millis);
        let mut tag = [0u8; 4];
        tag.copy_from_slice(&bytes[8..]);
        (created_millis <= MAX_CREATED_MILLIS).then_some(BackupId {
            created_millis,
            tag,
        })
    }
}

impl fmt::Display for BackupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // "2026-11-27T10:10:18.042Z" without its separators. The constructors keep the
        // time within the years humantime formats (0 to MAX_CREATED_MILLIS).
        let stamp = humantime::format_rfc3339_millis(self.created()).to_string();
        for c in stamp.chars().filter(|c| !matches!(c, '-' | ':' | '.')) {
            write!(f, "{c}")?;
        }
        write!(f, "-")?;
        for b in self.tag {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_form_and_bytes() {
        let t = humantime::parse_rfc3339("2026-11-27T10:10:18.042Z").unwrap();
        let id = BackupId::new(t, [0xde, 0xad, 0xbe, 0xef]).unwrap();
        assert_eq!(id.to_string(), "20261127T101018042Z-deadbeef");
        assert_eq!(BackupId::parse("20261127T101018042Z-deadbeef"), Some(id));
        assert_eq!(id.created(), t);
        let b = id.to_bytes();
        assert_eq!(&b[..8], &1_795_774_218_042u64.to_be_bytes());
        assert_eq!(&b[8..], &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(BackupId::from_bytes(&b), Some(id));
    }

    #[test]
    fn the_range_ends_with_year_9999() {
        let last = UNIX_EPOCH + Duration::from_millis(MAX_CREATED_MILLIS);
        let id = BackupId::new(last, [0; 4]).unwrap();
        assert_eq!(id.to_string(), "99991231T235959999Z-00000000");
        assert!(matches!(
            BackupId::new(last + Duration::from_millis(1), [0; 4]),
            Err(FormatError::TimeOutOfRange)
        ));
        assert!(matches!(
            BackupId::new(UNIX_EPOCH - Duration::from_secs(1), [0; 4]),
            Err(FormatError::TimeOutOfRange)
        ));
        let mut past = id.to_bytes();
        past[..8].copy_from_slice(&(MAX_CREATED_MILLIS + 1).to_be_bytes());
        assert_eq!(BackupId::from_bytes(&past), None);
        assert_eq!(
            BackupId::new(UNIX_EPOCH, [1, 2, 3, 4]).unwrap().to_string(),
            "19700101T000000000Z-01020304"
        );
    }

    #[test]
    fn only_the_canonical_text_parses() {
        for bad in [
            "20261127T101018042Z-DEADBEEF", // upper-case tag
            "20261127T101018042Z-deadbee",  // short tag
            "20261127T101018042Z_deadbeef",
            "20261127t101018042Z-deadbeef",
            "20261327T101018042Z-deadbeef", // month 13
            "20260230T101018042Z-deadbeef", // 30 February
            "20261127T246018042Z-deadbeef", // hour 24
            "20261127T235960000Z-deadbeef", // a leap second
            "2026112T7101018042Z-deadbeef",
            "+0261127T101018042Z-deadbeef",
            "notes",
            "",
        ] {
            assert_eq!(BackupId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn ids_sort_in_time_order() {
        let t = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let a = BackupId::new(t, [0xff; 4]).unwrap();
        let b = BackupId::new(t + Duration::from_millis(1), [0; 4]).unwrap();
        assert!(a < b && a.to_string() < b.to_string());
        assert_ne!(
            BackupId::generate(t).unwrap(),
            BackupId::generate(t).unwrap()
        );
    }

    proptest! {
        #[test]
        fn text_and_bytes_round_trip(millis in 0..=MAX_CREATED_MILLIS, tag in any::<[u8; 4]>()) {
            let id = BackupId::new(UNIX_EPOCH + Duration::from_millis(millis), tag).unwrap();
            let text = id.to_string();
            prop_assert_eq!(text.len(), ID_TEXT_LEN);
            prop_assert_eq!(BackupId::parse(&text), Some(id));
            prop_assert_eq!(BackupId::from_bytes(&id.to_bytes()), Some(id));
            prop_assert_eq!(id.created_millis(), millis);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = BackupId::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_near_ids(s in "[0-9]{8}T[0-9]{9}Z-[0-9a-f]{8}") {
            if let Some(id) = BackupId::parse(&s) {
                prop_assert_eq!(id.to_string(), s);
            }
        }
    }
}
