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

use crate::error::ClientError;

const MAGIC: &str = "coffer-segments 1";
/// More segments than this is a damaged manifest, not a backup (64 TiB at 8 MiB each).
const MAX_SEGMENTS: usize = 1 << 23;

/// Encodes the sizes of a backup's segments.
pub fn encode(sizes: &[u64]) -> String {
    let mut out = String::with_capacity(20 + sizes.len() * 8);
    out.push_str(MAGIC);
    out.push('\n');
    for s in sizes {
        out.push_str(&s.to_string());
        out.push('\n');
    }
    out
}

/// Decodes a manifest; `id` names the backup in errors.
pub fn decode(id: &str, bytes: &[u8]) -> Result<Vec<u64>, ClientError> {
    let bad = |why: &str| ClientError::BadManifest {
        id: id.to_string(),
        reason: format!("its segment list is invalid: {why}"),
    };
    let text = std::str::from_utf8(bytes).map_err(|_| bad("it is not text"))?;
    let mut lines = text.split_terminator('\n');
    if lines.next() != Some(MAGIC) {
        return Err(bad("it does not start with \"coffer-segments 1\""));
    }
    let mut sizes = Vec::new();
    for line in lines {
        if sizes.len() == MAX_SEGMENTS {
            return Err(bad("it lists too many segments"));
        }
        let size: u64 = line
            .parse()
            .ok()
            .filter(|_| !line.starts_with('+') && !line.starts_with('0') || line == "0")
            .ok_or_else(|| bad("a segment size is not a number"))?;
        sizes.push(size);
    }
    if !text.ends_with('\n') {
        return Err(bad("it is truncated"));
    }
    if sizes.is_empty() {
        return Err(bad("it lists no segments"));
    }
    if sizes
        .iter()
        .try_fold(0u64, |a, &s| a.checked_add(s))
        .is_none()
    {
        return Err(bad("its sizes overflow"));
    }
    Ok(sizes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_damage() {
        let ok = encode(&[8, 3]);
        assert_eq!(decode("x", ok.as_bytes()).unwrap(), vec![8, 3]);
        for bad in [
            "",
            "coffer-segments 1\n",
            "coffer-segments 2\n5\n",
            "coffer-segments 1\n5",
            "coffer-segments 1\n-5\n",
            "coffer-segments 1\n+5\n",
            "coffer-segments 1\n05\n",
            "coffer-segments 1\n5 \n",
            "coffer-segments 1\n\n",
            "coffer-segments 1\n18446744073709551615\n1\n",
        ] {
            assert!(decode("x", bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(decode("x", &[0xff, 0xfe]).is_err());
    }

    proptest! {
        #[test]
        fn round_trips(sizes in prop::collection::vec(0u64..(1 << 40), 1..50)) {
            prop_assert_eq!(decode("x", encode(&sizes).as_bytes()).unwrap(), sizes);
        }

        #[test]
        fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode("x", &bytes);
        }
    }
}
