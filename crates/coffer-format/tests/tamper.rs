//! Every way of altering a stored backup is detected, and named correctly, for both ciphers.
//!
//! Layout reminders: the header is 128 bytes; a full sealed chunk is 65536 + 16 bytes.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::rc::Rc;

use coffer_format::{
    decrypt_to_vec, encrypt_to_vec, encrypted_len, BackupId, BackupKey, Cipher, DecryptReader,
    EncryptWriter, FormatError, CHUNK_SIZE, HEADER_LEN, SEALED_CHUNK_SIZE, TAG_LEN,
};
use proptest::prelude::*;

const CIPHERS: [Cipher; 2] = [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305];

fn key(b: u8) -> BackupKey {
    BackupKey::from_bytes(core::array::from_fn(|i| {
        b.wrapping_mul(31).wrapping_add(i as u8)
    }))
}

/// The id every backup here is made as, and read under.
fn id() -> BackupId {
    BackupId::new(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000),
        [1, 2, 3, 4],
    )
    .unwrap()
}

fn name() -> String {
    id().to_string()
}

/// Deterministic filler bytes (xorshift), so tests need no large literals.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn backup(k: &BackupKey, cipher: Cipher, plain: &[u8]) -> Vec<u8> {
    let b = encrypt_to_vec(k, cipher, &id(), plain).unwrap();
    assert_eq!(b.len() as u64, encrypted_len(plain.len() as u64));
    b
}

/// Offsets of the sealed chunks of a well-formed backup.
fn chunk_ranges(backup: &[u8]) -> Vec<std::ops::Range<usize>> {
    (HEADER_LEN..backup.len())
        .step_by(SEALED_CHUNK_SIZE)
        .map(|s| s..(s + SEALED_CHUNK_SIZE).min(backup.len()))
        .collect()
}

fn rebuild(backup: &[u8], order: &[usize]) -> Vec<u8> {
    let ranges = chunk_ranges(backup);
    let mut out = backup[..HEADER_LEN].to_vec();
    for &i in order {
        out.extend_from_slice(&backup[ranges[i].clone()]);
    }
    out
}

/// Decrypts and insists that the result is an integrity error; returns it.
fn must_fail(k: &BackupKey, bytes: &[u8], what: &str) -> FormatError {
    match decrypt_to_vec(k, &name(), bytes) {
        Ok(p) => panic!("{what}: altered backup decrypted ({} bytes)", p.len()),
        Err(e) => {
            assert!(!e.is_retryable(), "{what}: {e} claims to be retryable");
            e
        }
    }
}

fn assert_chunk_tampered(e: FormatError, index: u64, what: &str) {
    assert!(
        matches!(e, FormatError::ChunkTampered { index: i } if i == index),
        "{what}: expected ChunkTampered {{ index: {index} }}, got {e:?}"
    );
}

/// Two full chunks and a short final one.
fn three_chunk_plain() -> Vec<u8> {
    data(2 * CHUNK_SIZE + 1234, 3)
}

// ---------------------------------------------------------------------------------------
// Bit flips
// ---------------------------------------------------------------------------------------

#[test]
fn every_header_bit_flip_is_detected_and_named() {
    let k = key(1);
    for cipher in CIPHERS {
        let b = backup(&k, cipher, &data(3000, 1));
        for bit in 0..HEADER_LEN * 8 {
            let (byte, mask) = (bit / 8, 1u8 << (bit % 8));
            let mut m = b.clone();
            m[byte] ^= mask;
            let what = format!("{cipher:?} header bit {bit}");
            let e = must_fail(&k, &m, &what);
            let ok = match byte {
                0..=5 => matches!(e, FormatError::NotCoffer),
                6 => matches!(e, FormatError::UnsupportedVersion(v) if v == 2 ^ mask),
                7 => matches!(e, FormatError::UnsupportedCipher(c) if c == cipher.id() ^ mask),
                8 => matches!(e, FormatError::UnsupportedChunkSize(s) if s == 16 ^ mask),
                // Reserved, key id, backup id, salt, commitment, MAC: the right key sees an
                // altered header (an edited id never reaches the name comparison).
                _ => matches!(e, FormatError::HeaderTampered),
            };
            assert!(ok, "{what}: unexpected error {e:?}");
            assert!(
                e.is_integrity_failure() || (6..=8).contains(&byte),
                "{what}: {e:?} is not an integrity failure"
            );
        }
    }
}

/// Flips bits across a three-chunk backup: a sampled stride over the whole payload (a
/// prime stride, so it walks through every bit position within a byte), plus every bit of
/// the first and last byte of each chunk's ciphertext and of each tag. Each flip must be
/// reported as `ChunkTampered` for the chunk that holds it.
fn payload_bit_flips(cipher: Cipher) {
    let k = key(2);
    let b = backup(&k, cipher, &three_chunk_plain());
    let ranges = chunk_ranges(&b);
    assert_eq!(ranges.len(), 3);
    let mut offsets_bits: Vec<usize> = (HEADER_LEN * 8..b.len() * 8).step_by(8191).collect();
    for r in &ranges {
        let tag = r.end - TAG_LEN;
        for byte in [r.start, tag - 1, tag, r.end - 1] {
            offsets_bits.extend(byte * 8..byte * 8 + 8);
        }
    }
    for bit in offsets_bits {
        let offset = bit / 8;
        let mut m = b.clone();
        m[offset] ^= 1 << (bit % 8);
        let what = format!("{cipher:?} payload byte {offset} bit {}", bit % 8);
        let index = ranges.iter().position(|r| r.contains(&offset)).unwrap();
        assert_chunk_tampered(must_fail(&k, &m, &what), index as u64, &what);
    }
}

#[test]
fn payload_bit_flips_are_detected_in_the_chunk_that_holds_them_aes() {
    payload_bit_flips(Cipher::Aes256Gcm);
}

#[test]
fn payload_bit_flips_are_detected_in_the_chunk_that_holds_them_chacha() {
    payload_bit_flips(Cipher::ChaCha20Poly1305);
}

#[test]
fn flips_in_an_empty_backup_are_detected() {
    let k = key(3);
    for cipher in CIPHERS {
        let b = backup(&k, cipher, b"");
        assert_eq!(b.len(), HEADER_LEN + TAG_LEN);
        for bit in HEADER_LEN * 8..b.len() * 8 {
            let mut m = b.clone();
            m[bit / 8] ^= 1 << (bit % 8);
            assert_chunk_tampered(must_fail(&k, &m, "empty"), 0, "empty backup tag flip");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Truncation
// ---------------------------------------------------------------------------------------

#[test]
fn truncation_inside_the_header_is_named() {
    let k = key(4);
    for cipher in CIPHERS {
        let b = backup(&k, cipher, b"some payload");
        for cut in 0..HEADER_LEN {
            let e = must_fail(&k, &b[..cut], "header cut");
            assert!(
                matches!(e, FormatError::TruncatedHeader { got } if got == cut),
                "cut at {cut}: {e:?}"
            );
        }
    }
}

#[test]
fn truncation_at_every_chunk_boundary_is_reported_as_truncation() {
    let k = key(5);
    for cipher in CIPHERS {
        // Final chunk short, and final chunk full: both shapes.
        for plain in [three_chunk_plain(), data(3 * CHUNK_SIZE, 5)] {
            let b = backup(&k, cipher, &plain);
            let ranges = chunk_ranges(&b);
            for (i, r) in ranges.iter().enumerate() {
                // Cutting before chunk i leaves i complete chunks and no final one.
                let what = format!("{cipher:?}, {} bytes, cut before chunk {i}", plain.len());
                let e = must_fail(&k, &b[..r.start], &what);
                assert!(
                    matches!(e, FormatError::Truncated { chunks } if chunks == i as u64),
                    "{what}: {e:?}"
                );
                assert!(e.is_integrity_failure());
            }
        }
    }
}

#[test]
fn truncation_between_chunk_boundaries_is_detected() {
    let k = key(6);
    for cipher in CIPHERS {
        let b = backup(&k, cipher, &three_chunk_plain());
        let ranges = chunk_ranges(&b);
        for (i, r) in ranges.iter().enumerate() {
            let len = r.end - r.start;
            let mut cuts = vec![1, TAG_LEN - 1, TAG_LEN, TAG_LEN + 1, len / 2, len - TAG_LEN];
            cuts.extend([len - 1, len - 7]);
            for c in cuts.into_iter().filter(|&c| c > 0 && c < len) {
                let what = format!("{cipher:?} cut {c} bytes into chunk {i}");
                let e = must_fail(&k, &b[..r.start + c], &what);
                assert_chunk_tampered(e, i as u64, &what);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Dropped, reordered, duplicated chunks; trailing data
// ---------------------------------------------------------------------------------------

/// Four chunks: three full, one short final.
fn four_chunk_backup(k: &BackupKey, cipher: Cipher) -> Vec<u8> {
    backup(k, cipher, &data(3 * CHUNK_SIZE + 777, 7))
}

#[test]
fn dropped_chunks_are_detected() {
    let k = key(7);
    for cipher in CIPHERS {
        let b = four_chunk_backup(&k, cipher);
        for drop in 0..4 {
            let order: Vec<usize> = (0..4).filter(|&i| i != drop).collect();
            let what = format!("{cipher:?} chunk {drop} dropped");
            let e = must_fail(&k, &rebuild(&b, &order), &what);
            if drop == 3 {
                // Dropping the final chunk is a cut at a chunk boundary.
                assert!(
                    matches!(e, FormatError::Truncated { chunks: 3 }),
                    "{what}: {e:?}"
                );
            } else {
                assert_chunk_tampered(e, drop as u64, &what);
            }
        }
    }
}

#[test]
fn reordered_chunks_are_detected() {
    let k = key(8);
    for cipher in CIPHERS {
        let b = four_chunk_backup(&k, cipher);
        for i in 0..4 {
            for j in i + 1..4 {
                let mut order = vec![0, 1, 2, 3];
                order.swap(i, j);
                let what = format!("{cipher:?} chunks {i} and {j} swapped");
                assert_chunk_tampered(must_fail(&k, &rebuild(&b, &order), &what), i as u64, &what);
            }
        }
        let what = format!("{cipher:?} chunks reversed");
        assert_chunk_tampered(must_fail(&k, &rebuild(&b, &[3, 2, 1, 0]), &what), 0, &what);
    }
}

#[test]
fn duplicated_chunks_are_detected() {
    let k = key(9);
    for cipher in CIPHERS {
        let b = four_chunk_backup(&k, cipher);
        for dup in 0..4 {
            // Chunk `dup` repeated right after itself.
            let mut order: Vec<usize> = (0..4).collect();
            order.insert(dup + 1, dup);
            let what = format!("{cipher:?} chunk {dup} duplicated");
            // The copy is caught where it lands, except for the short final chunk: its two
            // copies are read together as one too-long final chunk 3.
            let index = if dup == 3 { 3 } else { dup as u64 + 1 };
            assert_chunk_tampered(must_fail(&k, &rebuild(&b, &order), &what), index, &what);
        }
        // The whole body twice, and an early chunk replayed at the end.
        let what = format!("{cipher:?} body repeated");
        let e = must_fail(&k, &rebuild(&b, &[0, 1, 2, 3, 0, 1, 2, 3]), &what);
        assert_chunk_tampered(e, 3, &what);
        let what = format!("{cipher:?} chunk 0 replayed after a full chunk");
        let e = must_fail(&k, &rebuild(&b, &[0, 1, 2, 0]), &what);
        assert_chunk_tampered(e, 3, &what);
    }
}

#[test]
fn trailing_bytes_are_detected() {
    let k = key(10);
    for cipher in CIPHERS {
        // Short final chunk: appended bytes become part of it, so it fails to authenticate.
        let b = backup(&k, cipher, &three_chunk_plain());
        for extra in [1usize, 15, 16, 17, 1000, SEALED_CHUNK_SIZE] {
            let mut m = b.clone();
            m.extend(data(extra, extra as u64));
            let what = format!("{cipher:?} {extra} bytes after a short final chunk");
            let e = must_fail(&k, &m, &what);
            assert!(e.is_integrity_failure(), "{what}: {e:?}");
            assert_chunk_tampered(e, 2, &what);
        }
        // Full final chunk: whatever follows is reported as trailing data.
        let full = backup(&k, cipher, &data(2 * CHUNK_SIZE, 11));
        let last = chunk_ranges(&full)[1].clone();
        for tail in [vec![0u8], vec![0xff; 16], full[last.clone()].to_vec()] {
            let mut m = full.clone();
            m.extend_from_slice(&tail);
            let what = format!("{cipher:?} {} bytes after a full final chunk", tail.len());
            let e = must_fail(&k, &m, &what);
            assert!(matches!(e, FormatError::TrailingData), "{what}: {e:?}");
        }
        // Empty payload: anything after its tag-only chunk.
        let empty = backup(&k, cipher, b"");
        for tail in [&b"\0"[..], &empty[HEADER_LEN..]] {
            let e = must_fail(&k, &[&empty[..], tail].concat(), "after empty");
            assert_chunk_tampered(e, 0, "bytes after an empty backup");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Splicing and keys
// ---------------------------------------------------------------------------------------

#[test]
fn spliced_headers_and_chunks_from_another_backup_with_the_same_key_are_detected() {
    let k = key(11);
    for cipher in CIPHERS {
        for plain in [Vec::new(), data(100, 1), three_chunk_plain()] {
            // Same key, same payload, different (random) salts.
            let a = backup(&k, cipher, &plain);
            let b = backup(&k, cipher, &plain);
            assert_ne!(a[..HEADER_LEN], b[..HEADER_LEN]);
            assert_eq!(a.len(), b.len());
            let spliced = [&b[..HEADER_LEN], &a[HEADER_LEN..]].concat();
            let what = format!("{cipher:?} {}-byte header swap", plain.len());
            // The header is genuine, so it passes; chunk 0 is bound to the other header.
            assert_chunk_tampered(must_fail(&k, &spliced, &what), 0, &what);
            // A chunk taken from the other backup at the same position.
            let ranges = chunk_ranges(&a);
            for (i, r) in ranges.iter().enumerate() {
                let mut m = a.clone();
                m[r.clone()].copy_from_slice(&b[r.clone()]);
                let what = format!("{cipher:?} chunk {i} from another backup");
                assert_chunk_tampered(must_fail(&k, &m, &what), i as u64, &what);
            }
        }
        // A header of the other cipher, same key.
        let other = if cipher == Cipher::Aes256Gcm {
            Cipher::ChaCha20Poly1305
        } else {
            Cipher::Aes256Gcm
        };
        let a = backup(&k, cipher, b"payload");
        let b = backup(&k, other, b"payload");
        let spliced = [&b[..HEADER_LEN], &a[HEADER_LEN..]].concat();
        assert_chunk_tampered(must_fail(&k, &spliced, "cross-cipher"), 0, "cross-cipher");
    }
}

/// A reader that counts how many bytes it has handed out.
struct Counting<R> {
    inner: R,
    count: Rc<Cell<usize>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n);
        Ok(n)
    }
}

#[test]
fn wrong_key_is_reported_from_the_header_alone() {
    let right = key(12);
    for cipher in CIPHERS {
        let b = backup(&right, cipher, &three_chunk_plain());
        for wrong in [key(13), key(14), BackupKey::from_bytes([0; 32])] {
            let count = Rc::new(Cell::new(0));
            let r = Counting {
                inner: &b[..],
                count: count.clone(),
            };
            let e = DecryptReader::new(&wrong, &name(), r)
                .err()
                .expect("wrong key accepted");
            assert!(matches!(e, FormatError::WrongKey), "{cipher:?}: {e:?}");
            assert!(!e.is_integrity_failure());
            assert_eq!(count.get(), HEADER_LEN, "bytes consumed before WrongKey");
        }
        // The right key also reads just the header before the first `read`.
        let count = Rc::new(Cell::new(0));
        let r = Counting {
            inner: &b[..],
            count: count.clone(),
        };
        let mut reader = DecryptReader::new(&right, &name(), r).unwrap();
        assert_eq!(count.get(), HEADER_LEN);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out, three_chunk_plain());
        assert_eq!(count.get(), b.len());
    }
}

/// A backup copied under another backup's name (a replay or a rollback by the provider)
/// is refused from its header alone, whatever the other name's time: later, earlier, or
/// the same with another tag.
#[test]
fn a_backup_read_under_another_name_is_refused_from_the_header_alone() {
    let k = key(17);
    let ms = std::time::Duration::from_millis(1);
    for cipher in CIPHERS {
        let b = backup(&k, cipher, &three_chunk_plain());
        let info = coffer_format::check_header(&k, &name(), &b).unwrap();
        assert_eq!(info.id, id(), "the authenticated id");
        assert_eq!(info.id.created(), id().created());
        for other in [
            BackupId::new(id().created() + ms, id().tag()).unwrap(),
            BackupId::new(id().created() - ms, id().tag()).unwrap(),
            BackupId::new(id().created(), [9, 9, 9, 9]).unwrap(),
        ] {
            let other = other.to_string();
            let count = Rc::new(Cell::new(0));
            let r = Counting {
                inner: &b[..],
                count: count.clone(),
            };
            let e = DecryptReader::new(&k, &other, r)
                .err()
                .expect("a renamed backup opened");
            assert_eq!(count.get(), HEADER_LEN, "bytes consumed before the refusal");
            match &e {
                FormatError::IdMismatch { expected, found } => {
                    assert_eq!((expected, found), (&other, &name()));
                }
                e => panic!("{cipher:?}: {e:?}"),
            }
            assert!(e.is_integrity_failure() && !e.is_retryable());
            let msg = e.to_string();
            assert!(msg.contains("renamed or replayed"), "{msg}");
            assert!(msg.contains(&other) && msg.contains(&name()), "{msg}");
            assert!(matches!(
                coffer_format::check_header(&k, &other, &b[..HEADER_LEN]),
                Err(FormatError::IdMismatch { .. })
            ));
            // A wrong key is still reported as a wrong key.
            assert!(matches!(
                decrypt_to_vec(&key(18), &other, &b),
                Err(FormatError::WrongKey)
            ));
        }
    }
}

#[test]
fn wrong_key_wins_over_a_damaged_body() {
    // Nothing but the header decides "wrong key": a body that is garbage or missing
    // changes nothing.
    let k = key(15);
    for cipher in CIPHERS {
        let b = backup(&k, cipher, &data(5000, 2));
        for body in [&b[HEADER_LEN..], &[][..], &[0xaa; 300][..]] {
            let m = [&b[..HEADER_LEN], body].concat();
            assert!(matches!(
                decrypt_to_vec(&key(16), &name(), &m),
                Err(FormatError::WrongKey)
            ));
        }
    }
}

/// A source that fails once with a transient error in the middle of chunk 1.
struct FlakyOnce<'a> {
    data: &'a [u8],
    pos: usize,
    fail_at: usize,
    failed: bool,
}

impl Read for FlakyOnce<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.failed && self.pos >= self.fail_at {
            self.failed = true;
            return Err(io::Error::new(io::ErrorKind::TimedOut, "transient"));
        }
        let end = if self.failed {
            self.data.len()
        } else {
            self.fail_at
        };
        let n = buf.len().min(end - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

// After `read` has returned an error, the reader must stay failed: what is left in its
// buffer is not authenticated plaintext (the sealed chunk after an authentication failure;
// a partial chunk after an I/O error). `FormatError::Io` is retryable, so a caller may
// well read again and must then get an error, never bytes and never a clean end.

#[test]
fn read_after_an_authentication_failure_fails_again() {
    let k = key(17);
    let b = backup(&k, Cipher::Aes256Gcm, &three_chunk_plain());
    let mut m = b.clone();
    m[HEADER_LEN + 10] ^= 1;
    let mut r = DecryptReader::new(&k, &name(), &m[..]).unwrap();
    let mut buf = vec![0u8; 1 << 17];
    assert!(r.read(&mut buf).is_err());
    // Ok(0) would be as wrong as data: it tells the caller the stream ended cleanly.
    match r.read(&mut buf) {
        Ok(n) => panic!("read after an authentication failure returned Ok({n})"),
        Err(e) => assert!(FormatError::from_io(e).is_integrity_failure()),
    }
}

#[test]
fn retrying_after_an_io_error_never_yields_unauthenticated_bytes() {
    let k = key(17);
    let plain = three_chunk_plain();
    let b = backup(&k, Cipher::Aes256Gcm, &plain);
    let src = FlakyOnce {
        data: &b,
        pos: 0,
        fail_at: HEADER_LEN + SEALED_CHUNK_SIZE + 100,
        failed: false,
    };
    let mut r = DecryptReader::new(&k, &name(), src).unwrap();
    let mut buf = vec![0u8; 1 << 17];
    let mut out = Vec::new();
    for _ in 0..100 {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => continue,
        }
    }
    // Either the retry resumed correctly or the reader kept failing; in no case may it
    // have produced bytes that are not the plaintext.
    assert!(
        plain.starts_with(&out),
        "retrying after an I/O error produced {} bytes that are not the plaintext",
        out.len()
    );
}

/// A sink that fails its first write after `fail_after` bytes, then works again.
struct FlakySink {
    out: Vec<u8>,
    fail_after: usize,
    failed: bool,
}

impl Write for FlakySink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.failed && self.out.len() + buf.len() > self.fail_after {
            self.failed = true;
            return Err(io::Error::new(io::ErrorKind::TimedOut, "transient"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// When the inner writer fails, the sealed chunk stays unwritten and its nonce is spent: the
// writer must stay failed and answer later writes with an error, never a panic and never a
// chunk sealed twice.
#[test]
fn writing_after_an_io_error_does_not_panic() {
    let k = key(23);
    let sink = FlakySink {
        out: Vec::new(),
        fail_after: HEADER_LEN + 100,
        failed: false,
    };
    let mut w = EncryptWriter::new(&k, Cipher::Aes256Gcm, &id(), sink).unwrap();
    w.write_all(&data(CHUNK_SIZE, 1)).unwrap(); // buffered, not yet sealed
    assert!(w.write_all(b"x").is_err()); // seals chunk 0; the sink fails
    let retried = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.write_all(b"y")));
    assert!(retried.is_ok(), "write after an I/O error panicked");
}

// ---------------------------------------------------------------------------------------
// Round trips and fuzzing
// ---------------------------------------------------------------------------------------

#[test]
fn chunk_boundary_lengths_round_trip() {
    let k = key(18);
    for cipher in CIPHERS {
        for len in [
            0,
            1,
            TAG_LEN,
            CHUNK_SIZE - 1,
            CHUNK_SIZE,
            CHUNK_SIZE + 1,
            2 * CHUNK_SIZE,
            2 * CHUNK_SIZE + 1,
        ] {
            let plain = data(len, len as u64);
            let b = backup(&k, cipher, &plain);
            assert_eq!(
                b.len(),
                HEADER_LEN + len + len.div_ceil(CHUNK_SIZE).max(1) * TAG_LEN
            );
            assert_eq!(
                decrypt_to_vec(&k, &name(), &b).unwrap(),
                plain,
                "{cipher:?} {len}"
            );
        }
    }
}

fn cipher_strategy() -> impl Strategy<Value = Cipher> {
    prop_oneof![Just(Cipher::Aes256Gcm), Just(Cipher::ChaCha20Poly1305)]
}

/// Writes `plain` in pieces of the given sizes (cycled), then finishes.
fn encrypt_split(k: &BackupKey, cipher: Cipher, plain: &[u8], splits: &[usize]) -> Vec<u8> {
    let mut w = EncryptWriter::new(k, cipher, &id(), Vec::new()).unwrap();
    let mut rest = plain;
    let mut i = 0;
    while !rest.is_empty() {
        let n = splits[i % splits.len()].min(rest.len());
        // `write` may take fewer bytes than offered; honour that.
        let took = w.write(&rest[..n]).unwrap();
        assert!(took > 0 && took <= n);
        rest = &rest[took..];
        i += 1;
    }
    w.flush().unwrap();
    w.finish().unwrap()
}

/// A mutation of a backup.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, mask: u8 },
    Truncate { at: usize },
    Insert { at: usize, bytes: Vec<u8> },
    Delete { at: usize, len: usize },
    Duplicate { at: usize, len: usize },
    Overwrite { at: usize, bytes: Vec<u8> },
}

fn mutation_strategy() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        (at, 1u8..=255).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        at.prop_map(|at| Mutation::Truncate { at }),
        (at, proptest::collection::vec(any::<u8>(), 1..40))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (at, 1usize..70_000).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (at, 1usize..70_000).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        (at, proptest::collection::vec(any::<u8>(), 1..40))
            .prop_map(|(at, bytes)| Mutation::Overwrite { at, bytes }),
    ]
}

fn apply(m: &Mutation, b: &mut Vec<u8>) {
    let n = b.len();
    match m {
        Mutation::Flip { at, mask } => b[at % n] ^= mask,
        Mutation::Truncate { at } => b.truncate(at % n),
        Mutation::Insert { at, bytes } => {
            let at = at % (n + 1);
            b.splice(at..at, bytes.iter().copied());
        }
        Mutation::Delete { at, len } => {
            let at = at % n;
            b.drain(at..(at + len).min(n));
        }
        Mutation::Duplicate { at, len } => {
            let at = at % n;
            let piece = b[at..(at + len).min(n)].to_vec();
            b.splice(at..at, piece);
        }
        Mutation::Overwrite { at, bytes } => {
            let at = at % n;
            let end = (at + bytes.len()).min(n);
            b[at..end].copy_from_slice(&bytes[..end - at]);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_any_length_and_write_pattern(
        len in 0usize..300_000,
        seed in any::<u64>(),
        splits in proptest::collection::vec(1usize..100_000, 1..8),
        read_size in 1usize..100_000,
        cipher in cipher_strategy(),
    ) {
        let k = key(19);
        let plain = data(len, seed);
        let b = encrypt_split(&k, cipher, &plain, &splits);
        prop_assert_eq!(b.len() as u64, encrypted_len(len as u64));
        let mut r = DecryptReader::new(&k, &name(), &b[..]).unwrap();
        prop_assert_eq!(r.info().cipher, cipher);
        let mut out = Vec::with_capacity(len);
        let mut buf = vec![0u8; read_size];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 { break; }
            out.extend_from_slice(&buf[..n]);
        }
        prop_assert!(out == plain, "round trip changed the payload");
    }

    #[test]
    fn mutated_backups_never_decrypt(
        len in 0usize..200_000,
        cipher in cipher_strategy(),
        mutations in proptest::collection::vec(mutation_strategy(), 1..4),
    ) {
        let k = key(20);
        let plain = data(len, len as u64);
        let b = backup(&k, cipher, &plain);
        let mut m = b.clone();
        for mu in &mutations {
            if !m.is_empty() {
                apply(mu, &mut m);
            }
        }
        prop_assume!(m != b);
        match decrypt_to_vec(&k, &name(), &m) {
            Ok(p) => prop_assert!(false, "mutated backup decrypted to {} bytes", p.len()),
            Err(e) => prop_assert!(!e.is_retryable(), "{}", e),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_garbage_never_panics_or_decrypts(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        with_magic in any::<bool>(),
    ) {
        let mut input = bytes;
        if with_magic {
            input.splice(0..0, *b"COFFER\x01\x01\x10\0\0\0");
        }
        prop_assert!(decrypt_to_vec(&key(21), &name(), &input).is_err());
    }

    #[test]
    fn a_valid_header_with_a_random_body_never_decrypts(
        body in proptest::collection::vec(any::<u8>(), 0..2000),
        cipher in cipher_strategy(),
    ) {
        let k = key(22);
        let b = backup(&k, cipher, b"");
        let input = [&b[..HEADER_LEN], &body[..]].concat();
        prop_assume!(input != b);
        let e = decrypt_to_vec(&k, &name(), &input).unwrap_err();
        prop_assert!(e.is_integrity_failure(), "{}", e);
    }
}
