//! The manifest of a backup stored in segments.
//!
//! Some providers (WebDAV, Google Drive, OneDrive, Dropbox through OpenDAL) take an object
//! only in one request. Buffering a whole backup in memory for that is not an option, so
//! such a backup is uploaded as numbered segments, and a small manifest written last
//! makes it complete. The manifest is plain text:
//!
//! ```text
//! coffer-segments 1
//! <size of segment 0 in bytes>
//! <size of segment 1 in bytes>
//! …
//! ```
//!
//! It is not authenticated and need not be: the backup stream inside is. Segments that are
//! dropped, reordered, swapped or altered fail the stream's authentication on restore.
//!
//! The provider could still send any list at all, so a reader takes only what the uploader
//! writes: at most [`MAX_LIST_BYTES`] of list (checked before it is read) naming at most
//! [`MAX_SEGMENTS`] segments, all of one size of at least 1 MiB but the last, which is no
//! larger, and none empty. A backup's segments are then three numbers ([`SegmentSizes`]),
//! whatever their count, and their paths are made one at a time as they are read.

use crate::error::ClientError;

const MAGIC: &str = "coffer-segments 1";
/// The largest segment list read: 100,000 lines of 5 MiB sizes take 800 KB.
pub const MAX_LIST_BYTES: u64 = 1 << 20;
/// The most segments a backup has: 488 GiB at 5 MiB each. As many as a listing may hold
/// (`limits::MAX_LISTING_ENTRIES`), so that a backup's segment folder can be listed whole.
pub const MAX_SEGMENTS: u64 = 100_000;
/// The smallest size of a segment that is not the last: fewer, larger requests.
const MIN_SEGMENT: u64 = 1 << 20;

/// The sizes of a backup's segments: `count` segments of `size` bytes, but the last, of
/// `last` bytes (`0 < last <= size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentSizes {
    count: u64,
    size: u64,
    last: u64,
}

impl SegmentSizes {
    /// One segment of `len` bytes.
    pub(super) fn first(len: u64) -> Result<SegmentSizes, &'static str> {
        if len == 0 {
            return Err("a segment is empty");
        }
        Ok(SegmentSizes {
            count: 1,
            size: len,
            last: len,
        })
    }

    /// These segments and one more of `len` bytes, if the list stays well formed.
    pub(super) fn then(self, len: u64) -> Result<SegmentSizes, &'static str> {
        if len == 0 {
            return Err("a segment is empty");
        }
        if self.last != self.size {
            return Err("a segment before the last is shorter than the first");
        }
        if len > self.size {
            return Err("a segment is larger than the first");
        }
        if self.size < MIN_SEGMENT {
            return Err("its segments are smaller than 1 MiB");
        }
        if self.count >= MAX_SEGMENTS {
            return Err("it lists more than 100000 segments");
        }
        let next = SegmentSizes {
            count: self.count + 1,
            size: self.size,
            last: len,
        };
        next.checked_total().ok_or("its sizes overflow")?;
        Ok(next)
    }

    /// How many segments there are.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The size of every segment but the last.
    pub fn segment_size(&self) -> u64 {
        self.size
    }

    /// The bytes in all segments.
    pub fn total(&self) -> u64 {
        // Checked whenever a segment is added.
        self.checked_total().unwrap_or(u64::MAX)
    }

    fn checked_total(&self) -> Option<u64> {
        (self.count - 1)
            .checked_mul(self.size)?
            .checked_add(self.last)
    }

    /// The size of segment `n` (0 past the end).
    pub fn size_of(&self, n: u64) -> u64 {
        match n {
            _ if n + 1 == self.count => self.last,
            _ if n < self.count => self.size,
            _ => 0,
        }
    }

    /// The segment that holds byte `offset`, and where that segment starts.
    pub fn locate(&self, offset: u64) -> (u64, u64) {
        let n = (offset / self.size).min(self.count - 1);
        (n, n * self.size)
    }
}

/// Encodes the sizes of a backup's segments.
pub fn encode(sizes: &SegmentSizes) -> String {
    let line = |s: u64| format!("{s}\n");
    let full = line(sizes.size);
    let mut out = String::with_capacity(20 + sizes.count as usize * full.len());
    out.push_str(MAGIC);
    out.push('\n');
    for _ in 1..sizes.count {
        out.push_str(&full);
    }
    out.push_str(&line(sizes.last));
    out
}

/// Decodes a manifest; `id` names the backup in errors.
pub fn decode(id: &str, bytes: &[u8]) -> Result<SegmentSizes, ClientError> {
    let bad = |why: &str| invalid(id, why);
    if bytes.len() as u64 > MAX_LIST_BYTES {
        return Err(bad("it is longer than 1 MiB"));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| bad("it is not text"))?;
    let mut lines = text.split_terminator('\n');
    if lines.next() != Some(MAGIC) {
        return Err(bad("it does not start with \"coffer-segments 1\""));
    }
    let mut sizes: Option<SegmentSizes> = None;
    for line in lines {
        let size: u64 = line
            .parse()
            .ok()
            .filter(|_| !line.starts_with('+') && !line.starts_with('0') || line == "0")
            .ok_or_else(|| bad("a segment size is not a number"))?;
        sizes = Some(
            match sizes {
                None => SegmentSizes::first(size),
                Some(s) => s.then(size),
            }
            .map_err(bad)?,
        );
    }
    if !text.ends_with('\n') {
        return Err(bad("it is truncated"));
    }
    sizes.ok_or_else(|| bad("it lists no segments"))
}

/// A segment list that does not parse, or lists what no upload writes.
pub fn invalid(id: &str, why: &str) -> ClientError {
    ClientError::BadManifest {
        id: id.to_string(),
        reason: format!("its segment list is invalid: {why}"),
    }
}

/// A segment list of `len` bytes, too long to be real.
pub fn too_long(id: &str, len: u64) -> ClientError {
    ClientError::BadManifest {
        id: id.to_string(),
        reason: format!(
            "its segment list is {len} bytes long, more than the {MAX_LIST_BYTES} a real one \
             can be; it was not read"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIB: u64 = 1 << 20;

    fn sizes(list: &[u64]) -> Result<SegmentSizes, &'static str> {
        let (first, rest) = list.split_first().ok_or("none")?;
        rest.iter()
            .try_fold(SegmentSizes::first(*first)?, |s, &n| s.then(n))
    }

    #[test]
    fn rejects_damage() {
        let ok = encode(&sizes(&[8 * MIB, 3]).unwrap());
        assert_eq!(ok, format!("coffer-segments 1\n{}\n3\n", 8 * MIB));
        let got = decode("x", ok.as_bytes()).unwrap();
        assert_eq!((got.count(), got.total()), (2, 8 * MIB + 3));
        assert_eq!(
            (got.size_of(0), got.size_of(1), got.size_of(2)),
            (8 * MIB, 3, 0)
        );
        let m = 8 * MIB;
        for bad in [
            "".to_string(),
            "coffer-segments 1\n".into(),
            "coffer-segments 2\n5\n".into(),
            "coffer-segments 1\n5".into(),
            "coffer-segments 1\n-5\n".into(),
            "coffer-segments 1\n+5\n".into(),
            "coffer-segments 1\n05\n".into(),
            "coffer-segments 1\n5 \n".into(),
            "coffer-segments 1\n\n".into(),
            // Empty segments: what a hostile provider lists by the million.
            "coffer-segments 1\n0\n".into(),
            format!("coffer-segments 1\n{m}\n0\n"),
            // Nothing the uploader writes: a short segment before the last, a last one
            // larger than the others, small segments.
            format!("coffer-segments 1\n{m}\n3\n{m}\n"),
            format!("coffer-segments 1\n{m}\n{}\n", m + 1),
            "coffer-segments 1\n5\n5\n".into(),
            "coffer-segments 1\n18446744073709551615\n18446744073709551615\n".into(),
        ] {
            assert!(decode("x", bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(decode("x", &[0xff, 0xfe]).is_err());
    }

    #[test]
    fn caps_count_and_length() {
        let mut text = String::from("coffer-segments 1\n");
        text.push_str(&format!("{MIB}\n").repeat(MAX_SEGMENTS as usize));
        let most = decode("x", text.as_bytes()).unwrap();
        assert_eq!(most.count(), MAX_SEGMENTS);
        assert_eq!(encode(&most), text);
        text.push_str("1\n");
        let err = decode("x", text.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("more than 100000 segments"), "{err}");
        let long = vec![b'1'; MAX_LIST_BYTES as usize + 1];
        let err = decode("x", &long).unwrap_err().to_string();
        assert!(err.contains("longer than 1 MiB"), "{err}");
        // The largest list a reader takes holds the most segments of 5 MiB.
        let five = sizes(&[5 * MIB; 2]).unwrap();
        let per_line =
            encode(&five).len() as u64 - encode(&sizes(&[5 * MIB]).unwrap()).len() as u64;
        assert!(20 + MAX_SEGMENTS * per_line <= MAX_LIST_BYTES);
    }

    #[test]
    fn locates_offsets() {
        let s = sizes(&[2 * MIB, 2 * MIB, 5]).unwrap();
        assert_eq!(s.locate(0), (0, 0));
        assert_eq!(s.locate(2 * MIB - 1), (0, 0));
        assert_eq!(s.locate(2 * MIB), (1, 2 * MIB));
        assert_eq!(s.locate(4 * MIB + 4), (2, 4 * MIB));
        // Past the end: the last segment, which holds nothing there.
        assert_eq!(s.locate(u64::MAX), (2, 4 * MIB));
    }

    proptest! {
        #[test]
        fn round_trips(count in 1u64..300, size in MIB..(1 << 40), last in 1u64..(1 << 40)) {
            let last = last.min(size);
            let s = (1..count).try_fold(SegmentSizes::first(size).unwrap(), |s, n| {
                s.then(if n + 1 == count { last } else { size })
            }).unwrap();
            let s = if count == 1 { SegmentSizes::first(last).unwrap() } else { s };
            prop_assert_eq!(decode("x", encode(&s).as_bytes()).unwrap(), s);
        }

        #[test]
        fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode("x", &bytes);
        }
    }
}
