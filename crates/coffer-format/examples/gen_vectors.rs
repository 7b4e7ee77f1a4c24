//! Writes the Coffer test vectors (`*.cbv`) into a directory.
//!
//! ```text
//! cargo run -p coffer-format --example gen_vectors -- crates/coffer-format/tests/vectors
//! ```
//!
//! Every vector is deterministic: fixed keys, fixed salts and fixed payloads, so running the
//! generator again gives byte-identical files (`tests/test_vectors.rs` checks that the files
//! in the repository are exactly what this program produces).
//!
//! A vector file is a few `name: value` lines, one blank line, then the backup bytes:
//!
//! * `expect:` one of `success`, `wrong key`, `header failure`, `renamed`,
//!   `payload failure`, `not coffer`, `unsupported`;
//! * `key:` the 64 hex digits of the key to decrypt with;
//! * `id:` the backup id the reader expects: the name the backup is stored under;
//! * `payload sha256:` (success only) SHA-256 of the decrypted payload;
//! * `error:` (failures only) the precise `FormatError` this implementation reports, for
//!   information; other decoders need only match `expect:`;
//! * `comment:` what the vector is about.
//!
//! Valid backups are made with the library's own `EncryptWriter::with_salt`. A small
//! independent encoder written from `docs/FORMAT.md` reproduces each of them byte for byte
//! (checked here), and builds the few hostile streams the library's writer refuses to make
//! (a correctly sealed empty final chunk after a full one, a short chunk without the
//! last-chunk flag, a chunk sealed without associated data, re-MACed headers with non-zero
//! reserved bytes, another id, or a time past year 9999).

use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes256Gcm;
use chacha20poly1305::ChaCha20Poly1305;
use coffer_format::{
    labels, BackupId, BackupKey, Cipher, EncryptWriter, CHUNK_SIZE, HEADER_LEN, SEALED_CHUNK_SIZE,
    TAG_LEN,
};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// One test vector.
pub struct Vector {
    pub name: String,
    pub expect: &'static str,
    pub key: [u8; 32],
    /// The id the reader is asked for (the name the backup is stored under).
    pub id: String,
    /// The plaintext, for `success` vectors.
    pub payload: Option<Vec<u8>>,
    /// The exact error of this implementation, for failures.
    pub error: Option<String>,
    pub comment: String,
    pub bytes: Vec<u8>,
}

impl Vector {
    pub fn file_name(&self) -> String {
        format!("{}.cbv", self.name)
    }

    /// The file contents: header lines, a blank line, the raw backup bytes.
    pub fn serialize(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bytes.len() + 512);
        writeln!(out, "expect: {}", self.expect).unwrap();
        writeln!(out, "key: {}", hex(&self.key)).unwrap();
        writeln!(out, "id: {}", self.id).unwrap();
        if let Some(p) = &self.payload {
            writeln!(out, "payload sha256: {}", hex(&Sha256::digest(p))).unwrap();
        }
        if let Some(e) = &self.error {
            writeln!(out, "error: {e}").unwrap();
        }
        writeln!(out, "comment: {}", self.comment).unwrap();
        out.push(b'\n');
        out.extend_from_slice(&self.bytes);
        out
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Deterministic, incompressible bytes: SHA-256(seed || counter) blocks.
fn pseudo_random(seed: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut counter = 0u64;
    while out.len() < len {
        let mut h = Sha256::new();
        h.update(seed.as_bytes());
        h.update(counter.to_be_bytes());
        out.extend_from_slice(&h.finalize());
        counter += 1;
    }
    out.truncate(len);
    out
}

fn fixed32(label: &str) -> [u8; 32] {
    Sha256::digest(label.as_bytes()).into()
}

fn key_a() -> [u8; 32] {
    fixed32("coffer-format test vector key A")
}

fn key_b() -> [u8; 32] {
    fixed32("coffer-format test vector key B")
}

fn salt(n: u32) -> [u8; 32] {
    fixed32(&format!("coffer-format test vector salt {n}"))
}

/// The id of vector backup `n`: 2026-03-01T12:00:00.000Z plus n times 1.001 s, and the
/// tag `0c 0f fe n`.
pub fn vector_id(n: u32) -> BackupId {
    let start = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_772_366_400);
    let created = start + std::time::Duration::from_millis(1001 * u64::from(n));
    BackupId::new(created, [0x0c, 0x0f, 0xfe, n as u8]).expect("a time in range")
}

/// Encrypts backup `n` (salt and id `n`) with the library's writer, feeding the payload in
/// uneven pieces.
fn encrypt(key: &[u8; 32], cipher: Cipher, n: u32, payload: &[u8]) -> Vec<u8> {
    let k = BackupKey::from_bytes(*key);
    let (salt, id) = (salt(n), vector_id(n));
    let mut w = EncryptWriter::with_salt(&k, cipher, &id, salt, Vec::new()).expect("header");
    for piece in payload.chunks(40_000) {
        w.write_all(piece).expect("write");
    }
    let out = w.finish().expect("finish");
    // Cross-check against the independent encoder below.
    assert_eq!(
        out,
        reference::encrypt(key, cipher.id(), &salt, &id.to_bytes(), payload),
        "library and reference encoder disagree"
    );
    out
}

/// An encoder written from docs/FORMAT.md alone, with knobs for building hostile streams.
mod reference {
    use super::*;

    pub struct Keys {
        pub payload: [u8; 32],
        pub commitment: [u8; 32],
        pub mac: [u8; 32],
    }

    pub fn key_id(key: &[u8; 32]) -> [u8; 8] {
        let mut id = [0u8; 8];
        Hkdf::<Sha256>::new(None, key)
            .expand(labels::KEY_ID, &mut id)
            .unwrap();
        id
    }

    pub fn derive(key: &[u8; 32], salt: &[u8; 32], cipher_id: u8) -> Keys {
        let hk = Hkdf::<Sha256>::new(Some(salt), key);
        let payload_label = match cipher_id {
            1 => labels::PAYLOAD_AES_256_GCM,
            2 => labels::PAYLOAD_CHACHA20_POLY1305,
            _ => panic!("unknown cipher"),
        };
        let mut k = Keys {
            payload: [0; 32],
            commitment: [0; 32],
            mac: [0; 32],
        };
        hk.expand(payload_label, &mut k.payload).unwrap();
        hk.expand(labels::COMMITMENT, &mut k.commitment).unwrap();
        hk.expand(labels::HEADER_MAC, &mut k.mac).unwrap();
        k
    }

    /// Sets the header MAC (bytes 96..128) from bytes 0..96.
    pub fn remac(header: &mut [u8], mac_key: &[u8; 32]) {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(mac_key).unwrap();
        m.update(&header[..96]);
        let tag = m.finalize().into_bytes();
        header[96..128].copy_from_slice(&tag);
    }

    /// `id`: the creation time in milliseconds (8 bytes, big-endian) and the 4-byte tag.
    pub fn header(
        key: &[u8; 32],
        cipher_id: u8,
        salt: &[u8; 32],
        id: &[u8; 12],
    ) -> ([u8; 128], Keys) {
        let keys = derive(key, salt, cipher_id);
        let mut h = [0u8; 128];
        h[0..6].copy_from_slice(b"COFFER");
        h[6] = 2;
        h[7] = cipher_id;
        h[8] = 16;
        h[12..20].copy_from_slice(&key_id(key));
        h[20..32].copy_from_slice(id);
        h[32..64].copy_from_slice(salt);
        h[64..96].copy_from_slice(&keys.commitment);
        remac(&mut h, &keys.mac);
        (h, keys)
    }

    pub fn nonce(counter: u64, last: bool) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[3..11].copy_from_slice(&counter.to_be_bytes());
        n[11] = u8::from(last);
        n
    }

    pub fn seal(
        cipher_id: u8,
        payload_key: &[u8; 32],
        counter: u64,
        last: bool,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Vec<u8> {
        let mut buf = plaintext.to_vec();
        let n = nonce(counter, last);
        let tag = match cipher_id {
            1 => Aes256Gcm::new_from_slice(payload_key)
                .unwrap()
                .encrypt_inout_detached((&n).into(), aad, buf.as_mut_slice().into())
                .unwrap(),
            2 => ChaCha20Poly1305::new_from_slice(payload_key)
                .unwrap()
                .encrypt_inout_detached((&n).into(), aad, buf.as_mut_slice().into())
                .unwrap(),
            _ => panic!("unknown cipher"),
        };
        buf.extend_from_slice(&tag);
        buf
    }

    /// The canonical chunking: full chunks, then one final chunk that is short (or full),
    /// and empty only when the whole payload is empty.
    pub fn chunks(payload: &[u8]) -> Vec<&[u8]> {
        if payload.is_empty() {
            vec![payload]
        } else {
            payload.chunks(CHUNK_SIZE).collect()
        }
    }

    pub fn encrypt(
        key: &[u8; 32],
        cipher_id: u8,
        salt: &[u8; 32],
        id: &[u8; 12],
        payload: &[u8],
    ) -> Vec<u8> {
        let (h, keys) = header(key, cipher_id, salt, id);
        let mut out = h.to_vec();
        let chunks = chunks(payload);
        for (i, c) in chunks.iter().enumerate() {
            let last = i + 1 == chunks.len();
            out.extend(seal(cipher_id, &keys.payload, i as u64, last, &h[96..], c));
        }
        out
    }
}

/// The name a backup is stored under: the id in its own header, when there is one to read;
/// for input too short to hold it, the id of vector 5, which such input is cut from.
fn stored_id(bytes: &[u8]) -> String {
    bytes
        .get(20..32)
        .and_then(|b| BackupId::from_bytes(b.try_into().ok()?))
        .unwrap_or_else(|| vector_id(5))
        .to_string()
}

/// The sealed chunks of a well-formed backup (header removed).
fn split_chunks(backup: &[u8]) -> Vec<Vec<u8>> {
    backup[HEADER_LEN..]
        .chunks(SEALED_CHUNK_SIZE)
        .map(<[u8]>::to_vec)
        .collect()
}

fn join(header: &[u8], chunks: &[&Vec<u8>]) -> Vec<u8> {
    let mut out = header.to_vec();
    for c in chunks {
        out.extend_from_slice(c);
    }
    out
}

fn flip(bytes: &[u8], offset: usize, mask: u8) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[offset] ^= mask;
    b
}

/// A payload that is a real zstd frame around a POSIX ustar archive, as a Coffer client
/// writes: a directory and a regular file, relative paths. The frame uses one raw
/// (stored) block, so it is built here without a zstd library; `zstd -d | tar -t` lists it.
pub fn zstd_tar_payload() -> Vec<u8> {
    fn octal(field: &mut [u8], value: u64) {
        let s = format!("{value:0width$o}", width = field.len() - 1);
        field[..s.len()].copy_from_slice(s.as_bytes());
        field[s.len()] = 0;
    }
    fn entry(name: &str, typeflag: u8, mode: u64, data: &[u8]) -> Vec<u8> {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        octal(&mut h[100..108], mode);
        octal(&mut h[108..116], 0); // uid
        octal(&mut h[116..124], 0); // gid
        octal(&mut h[124..136], data.len() as u64);
        octal(&mut h[136..148], 1_700_000_000); // mtime
        h[156] = typeflag;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        let mut out = h.to_vec();
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out
    }
    let mut tar = entry("vector/", b'5', 0o755, b"");
    tar.extend(entry(
        "vector/hello.txt",
        b'0',
        0o644,
        b"Hello from a Coffer test vector.\n",
    ));
    tar.extend([0u8; 1024]); // end-of-archive marker: two zero blocks
    assert!(tar.len() >= 256 && tar.len() < 256 + 65536);

    let mut z = vec![0x28, 0xb5, 0x2f, 0xfd]; // zstd frame magic, little endian
    z.push(0x60); // Frame_Header_Descriptor: 2-byte content size, single segment, no checksum
    z.extend_from_slice(&((tar.len() - 256) as u16).to_le_bytes());
    let block_header = 1 | (tar.len() as u32) << 3; // last block, raw, size
    z.extend_from_slice(&block_header.to_le_bytes()[..3]);
    z.extend_from_slice(&tar);
    z
}

/// Every vector, in a fixed order.
pub fn all_vectors() -> Vec<Vector> {
    let ka = key_a();
    let kb = key_b();
    let aes = Cipher::Aes256Gcm;
    let chacha = Cipher::ChaCha20Poly1305;
    let mut v = Vec::new();

    let mut ok = |name: &str, cipher: Cipher, n: u32, payload: Vec<u8>, comment: &str| {
        let bytes = encrypt(&ka, cipher, n, &payload);
        v.push(Vector {
            name: name.into(),
            expect: "success",
            key: ka,
            id: vector_id(n).to_string(),
            payload: Some(payload),
            error: None,
            comment: comment.into(),
            bytes,
        });
        v.last().unwrap().bytes.clone()
    };

    // --- valid backups ---
    let empty_aes = ok(
        "ok_empty_aes",
        aes,
        1,
        vec![],
        "empty payload: one empty final chunk (tag only), AES-256-GCM",
    );
    ok(
        "ok_empty_chacha",
        chacha,
        2,
        vec![],
        "empty payload: one empty final chunk (tag only), ChaCha20-Poly1305",
    );
    ok(
        "ok_1_byte_aes",
        aes,
        3,
        vec![0x42],
        "one-byte payload, AES-256-GCM",
    );
    let one_chacha = ok(
        "ok_1_byte_chacha",
        chacha,
        4,
        vec![0x42],
        "one-byte payload, ChaCha20-Poly1305",
    );
    let small_payload = pseudo_random("small", 1000);
    let small_aes = ok(
        "ok_1000_bytes_aes",
        aes,
        5,
        small_payload.clone(),
        "1000-byte payload in one short final chunk, AES-256-GCM",
    );
    let small_chacha = ok(
        "ok_1000_bytes_chacha",
        chacha,
        6,
        small_payload.clone(),
        "1000-byte payload in one short final chunk, ChaCha20-Poly1305",
    );
    let one_chunk = ok(
        "ok_one_full_chunk_aes",
        aes,
        7,
        pseudo_random("one chunk", CHUNK_SIZE),
        "exactly 65536 bytes: a single full chunk that carries the last-chunk flag",
    );
    let chunk_plus_1 = ok(
        "ok_one_chunk_plus_1_aes",
        aes,
        8,
        pseudo_random("chunk plus one", CHUNK_SIZE + 1),
        "65537 bytes: a full chunk, then a 1-byte final chunk",
    );
    let three = ok(
        "ok_three_chunks_aes",
        aes,
        9,
        pseudo_random("three chunks", 2 * CHUNK_SIZE + 1000),
        "two full chunks and a 1000-byte final chunk, AES-256-GCM",
    );
    ok(
        "ok_one_full_chunk_chacha",
        chacha,
        10,
        pseudo_random("one chunk chacha", CHUNK_SIZE),
        "exactly 65536 bytes, ChaCha20-Poly1305",
    );
    ok(
        "ok_three_chunks_chacha",
        chacha,
        11,
        pseudo_random("three chunks chacha", 2 * CHUNK_SIZE + 333),
        "two full chunks and a 333-byte final chunk, ChaCha20-Poly1305",
    );
    ok(
        "ok_zstd_tar_payload_aes",
        aes,
        12,
        zstd_tar_payload(),
        "a real payload: one zstd frame holding a ustar archive (vector/, vector/hello.txt); \
         `zstd -d | tar -tv` lists it",
    );
    let other_small_aes = encrypt(&ka, aes, 13, &small_payload);

    // Vectors whose `id:` line is not the id in their own header.
    let mut renamed = Vec::new();
    let mut bad_as = |name: &str,
                      expect: &'static str,
                      error: &str,
                      id: BackupId,
                      bytes: Vec<u8>,
                      comment: &str| {
        renamed.push(Vector {
            name: name.into(),
            expect,
            key: ka,
            id: id.to_string(),
            payload: None,
            error: Some(error.into()),
            comment: comment.into(),
            bytes,
        });
    };
    bad_as(
        "renamed_backup",
        "renamed",
        "IdMismatch",
        vector_id(30),
        small_aes.clone(),
        "an intact backup (id of vector 5) read under another backup's id, as when a \
         provider copies an old backup under a newer name",
    );
    let same_time = BackupId::new(vector_id(5).created(), [0xff, 0xff, 0xff, 0xff]).unwrap();
    bad_as(
        "renamed_backup_same_time",
        "renamed",
        "IdMismatch",
        same_time,
        small_aes.clone(),
        "an intact backup read under an id with the same time and another tag",
    );
    for (field, offset, what) in [
        ("created", 27, "creation time one millisecond off"),
        ("id_tag", 31, "last byte of the id's tag changed"),
    ] {
        bad_as(
            &format!("header_flip_{field}"),
            "header failure",
            "HeaderTampered",
            vector_id(5),
            flip(&small_aes, offset, 0x01),
            &format!(
                "one bit flipped in the header's {field} field (offset {offset}): {what}; \
                 read under its real id, the header MAC fails"
            ),
        );
    }
    {
        // A holder of the key renames a backup: new id, header MAC recomputed. The chunks
        // were sealed under the old MAC, so chunk 0 fails.
        let keys = reference::derive(&ka, &salt(5), 1);
        let mut h = small_aes.clone();
        h[20..32].copy_from_slice(&vector_id(31).to_bytes());
        reference::remac(&mut h[..HEADER_LEN], &keys.mac);
        bad_as(
            "header_id_changed_remaced",
            "payload failure",
            "ChunkTampered 0",
            vector_id(31),
            h,
            "the id replaced by another and the header MAC recomputed (needs the key); the \
             header passes under the new id, but every chunk's associated data is the old MAC",
        );
        let mut h = small_aes.clone();
        h[20..28].copy_from_slice(&253_402_300_800_000u64.to_be_bytes());
        reference::remac(&mut h[..HEADER_LEN], &keys.mac);
        bad_as(
            "header_time_past_9999_remaced",
            "header failure",
            "HeaderTampered",
            vector_id(5),
            h,
            "creation time 10000-01-01T00:00:00.000Z with the header MAC recomputed: no id \
             text can name it, so readers refuse it before the key",
        );
    }

    let mut bad = |name: &str,
                   expect: &'static str,
                   error: &str,
                   key: [u8; 32],
                   bytes: Vec<u8>,
                   comment: &str| {
        v.push(Vector {
            name: name.into(),
            expect,
            key,
            id: stored_id(&bytes),
            payload: None,
            error: Some(error.into()),
            comment: comment.into(),
            bytes,
        });
    };

    // --- wrong key ---
    bad(
        "wrong_key_aes",
        "wrong key",
        "WrongKey",
        kb,
        small_aes.clone(),
        "valid backup made with key A, opened with key B",
    );
    bad(
        "wrong_key_chacha",
        "wrong key",
        "WrongKey",
        kb,
        one_chacha.clone(),
        "valid ChaCha20-Poly1305 backup made with key A, opened with key B",
    );
    bad(
        "wrong_key_empty",
        "wrong key",
        "WrongKey",
        kb,
        empty_aes.clone(),
        "valid empty backup, opened with another key",
    );

    // --- not a Coffer backup / header cut short ---
    bad(
        "not_coffer_zip",
        "not coffer",
        "NotCoffer",
        ka,
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00 this is a zip file, not a backup".to_vec(),
        "foreign file",
    );
    bad(
        "not_coffer_lowercase_magic",
        "not coffer",
        "NotCoffer",
        ka,
        [b"coffer".as_slice(), &small_aes[6..]].concat(),
        "magic compared byte for byte: lower-case `coffer` is not the magic",
    );
    bad(
        "truncated_empty_file",
        "header failure",
        "TruncatedHeader 0",
        ka,
        vec![],
        "zero bytes",
    );
    bad(
        "truncated_header_3",
        "header failure",
        "TruncatedHeader 3",
        ka,
        small_aes[..3].to_vec(),
        "cut inside the magic (`COF`)",
    );
    bad(
        "truncated_header_50",
        "header failure",
        "TruncatedHeader 50",
        ka,
        small_aes[..50].to_vec(),
        "cut inside the salt",
    );
    bad(
        "truncated_header_127",
        "header failure",
        "TruncatedHeader 127",
        ka,
        small_aes[..127].to_vec(),
        "cut one byte before the end of the header",
    );

    // --- one bit flipped in each header field (1000-byte AES backup) ---
    let fields: [(&str, usize, u8, &'static str, &str, &str); 9] = [
        (
            "magic",
            0,
            0x01,
            "not coffer",
            "NotCoffer",
            "byte 0 `C` becomes `B`",
        ),
        (
            "version",
            6,
            0x01,
            "unsupported",
            "UnsupportedVersion 3",
            "version 2 becomes 3",
        ),
        (
            "cipher",
            7,
            0x01,
            "unsupported",
            "UnsupportedCipher 0",
            "cipher id 1 becomes 0",
        ),
        (
            "chunk_size",
            8,
            0x01,
            "unsupported",
            "UnsupportedChunkSize 17",
            "chunk size log2 16 becomes 17",
        ),
        (
            "reserved",
            10,
            0x80,
            "header failure",
            "HeaderTampered",
            "reserved byte 10 becomes 0x80",
        ),
        (
            "key_id",
            15,
            0x04,
            "header failure",
            "HeaderTampered",
            "key id altered; the commitment still matches the right key",
        ),
        (
            "salt",
            40,
            0x10,
            "header failure",
            "HeaderTampered",
            "salt altered; the key id still matches the right key",
        ),
        (
            "commitment",
            70,
            0x01,
            "header failure",
            "HeaderTampered",
            "key commitment altered; the key id still matches the right key",
        ),
        (
            "mac",
            110,
            0x20,
            "header failure",
            "HeaderTampered",
            "header MAC altered",
        ),
    ];
    for (field, offset, mask, expect, error, what) in fields {
        bad(
            &format!("header_flip_{field}"),
            expect,
            error,
            ka,
            flip(&small_aes, offset, mask),
            &format!("one bit flipped in the header's {field} field (offset {offset}): {what}"),
        );
    }
    let mut v3 = small_aes.clone();
    v3[6] = 3;
    bad(
        "header_version_3",
        "unsupported",
        "UnsupportedVersion 3",
        ka,
        v3,
        "a future format version; refused before any key check",
    );
    let mut v1 = small_aes.clone();
    v1[6] = 1;
    bad(
        "header_version_1",
        "unsupported",
        "UnsupportedVersion 1",
        ka,
        v1,
        "format version 1 (a 116-byte header without the backup id), which version 2 \
         readers do not read",
    );
    let mut swapped_cipher = small_aes.clone();
    swapped_cipher[7] = 2;
    bad(
        "header_cipher_swapped",
        "header failure",
        "HeaderTampered",
        ka,
        swapped_cipher,
        "cipher id 1 replaced by the other valid id 2; caught by the header MAC",
    );
    {
        // Non-zero reserved bytes under a correct MAC: readers must still refuse them.
        let keys = reference::derive(&ka, &salt(5), 1);
        let mut h = small_aes.clone();
        h[9] = 1;
        reference::remac(&mut h[..HEADER_LEN], &keys.mac);
        bad(
            "header_reserved_nonzero_remaced",
            "header failure",
            "HeaderTampered",
            ka,
            h,
            "reserved byte 9 is 1 and the header MAC was recomputed over it (needs the key); \
             reserved bytes must be zero whatever the MAC says",
        );
    }
    bad(
        "header_spliced_same_key",
        "payload failure",
        "ChunkTampered 0",
        ka,
        [&other_small_aes[..HEADER_LEN], &small_aes[HEADER_LEN..]].concat(),
        "the (valid) header of another backup of the same payload with the same key, \
         followed by this backup's chunks; the header passes, chunk 0 does not",
    );
    let other_chacha = encrypt(&ka, chacha, 14, &small_payload);
    bad(
        "header_spliced_other_cipher",
        "payload failure",
        "ChunkTampered 0",
        ka,
        [&other_chacha[..HEADER_LEN], &small_aes[HEADER_LEN..]].concat(),
        "a valid ChaCha20-Poly1305 header (same key) in front of AES-256-GCM chunks",
    );

    // --- payload tampering ---
    bad(
        "chunk_flip_body_aes",
        "payload failure",
        "ChunkTampered 0",
        ka,
        flip(&small_aes, HEADER_LEN + 500, 0x01),
        "one bit flipped in the ciphertext of chunk 0",
    );
    bad(
        "chunk_flip_tag_aes",
        "payload failure",
        "ChunkTampered 0",
        ka,
        flip(&small_aes, small_aes.len() - 1, 0x80),
        "one bit flipped in the tag of chunk 0",
    );
    bad(
        "chunk_flip_body_chacha",
        "payload failure",
        "ChunkTampered 0",
        ka,
        flip(&small_chacha, HEADER_LEN + 7, 0x04),
        "one bit flipped in the ciphertext of chunk 0, ChaCha20-Poly1305",
    );
    bad(
        "chunk_flip_tag_chacha",
        "payload failure",
        "ChunkTampered 0",
        ka,
        flip(&small_chacha, small_chacha.len() - TAG_LEN, 0x01),
        "one bit flipped in the tag of chunk 0, ChaCha20-Poly1305",
    );
    bad(
        "chunk_flip_second_chunk",
        "payload failure",
        "ChunkTampered 1",
        ka,
        flip(&chunk_plus_1, HEADER_LEN + SEALED_CHUNK_SIZE, 0x01),
        "one bit flipped in the 1-byte final chunk (chunk 1); chunk 0 is intact",
    );

    // --- truncation ---
    bad(
        "truncated_after_header",
        "payload failure",
        "Truncated 0",
        ka,
        small_aes[..HEADER_LEN].to_vec(),
        "a valid header and no chunk at all (cut at chunk boundary 0)",
    );
    bad(
        "truncated_at_chunk_boundary",
        "payload failure",
        "Truncated 1",
        ka,
        chunk_plus_1[..HEADER_LEN + SEALED_CHUNK_SIZE].to_vec(),
        "65537-byte backup cut after its first full chunk: the stream now ends on a chunk \
         sealed without the last-chunk flag (the last chunk is re-flagged in the reader's eyes)",
    );
    bad(
        "truncated_mid_chunk",
        "payload failure",
        "ChunkTampered 0",
        ka,
        small_aes[..HEADER_LEN + 500].to_vec(),
        "1000-byte backup cut in the middle of its only chunk",
    );
    bad(
        "truncated_to_tag_length",
        "payload failure",
        "ChunkTampered 1",
        ka,
        chunk_plus_1[..chunk_plus_1.len() - 1].to_vec(),
        "last byte removed: the final chunk is 16 bytes, which only an empty payload may have",
    );
    bad(
        "truncated_inside_tag",
        "payload failure",
        "ChunkTampered 0",
        ka,
        one_chacha[..one_chacha.len() - 3].to_vec(),
        "final chunk shorter than a tag",
    );

    // --- dropped, reordered, duplicated chunks (full chunks are 65552 bytes sealed) ---
    let c3 = split_chunks(&three);
    let h3 = &three[..HEADER_LEN];
    bad(
        "chunk_dropped",
        "payload failure",
        "ChunkTampered 1",
        ka,
        join(h3, &[&c3[0], &c3[2]]),
        "three-chunk backup with its middle chunk removed",
    );
    bad(
        "chunks_swapped",
        "payload failure",
        "ChunkTampered 0",
        ka,
        join(h3, &[&c3[1], &c3[0], &c3[2]]),
        "three-chunk backup with chunks 0 and 1 swapped",
    );
    let c2 = split_chunks(&chunk_plus_1);
    bad(
        "chunk_duplicated",
        "payload failure",
        "ChunkTampered 1",
        ka,
        join(&chunk_plus_1[..HEADER_LEN], &[&c2[0], &c2[0], &c2[1]]),
        "65537-byte backup with chunk 0 repeated",
    );
    let ce = split_chunks(&empty_aes);
    bad(
        "final_chunk_duplicated",
        "payload failure",
        "ChunkTampered 0",
        ka,
        join(&empty_aes[..HEADER_LEN], &[&ce[0], &ce[0]]),
        "empty backup with its (tag-only) final chunk repeated",
    );

    // --- trailing bytes ---
    bad(
        "trailing_1_byte_short_final",
        "payload failure",
        "ChunkTampered 0",
        ka,
        [small_aes.as_slice(), b"\0"].concat(),
        "one byte appended after a short final chunk: it becomes part of that chunk",
    );
    bad(
        "trailing_1_byte_full_final",
        "payload failure",
        "TrailingData",
        ka,
        [one_chunk.as_slice(), b"\0"].concat(),
        "one byte appended after a full final chunk",
    );
    let c1 = split_chunks(&one_chunk);
    bad(
        "trailing_whole_chunk",
        "payload failure",
        "TrailingData",
        ka,
        join(&one_chunk[..HEADER_LEN], &[&c1[0], &c1[0]]),
        "a full final chunk followed by a second copy of itself",
    );

    // --- hostile streams built with the key (the library's writer never makes these) ---
    {
        let s = salt(20);
        let (h, keys) = reference::header(&ka, 1, &s, &vector_id(20).to_bytes());
        let full = pseudo_random("crafted", CHUNK_SIZE);
        let mut bytes = h.to_vec();
        bytes.extend(reference::seal(1, &keys.payload, 0, false, &h[96..], &full));
        bytes.extend(reference::seal(1, &keys.payload, 1, true, &h[96..], &[]));
        bad(
            "crafted_empty_final_after_full",
            "payload failure",
            "ChunkTampered 1",
            ka,
            bytes,
            "a full chunk, then a correctly sealed but empty final chunk: the final chunk may \
             be empty only when the whole payload is empty",
        );
    }
    {
        let s = salt(21);
        let (h, keys) = reference::header(&ka, 1, &s, &vector_id(21).to_bytes());
        let mut bytes = h.to_vec();
        bytes.extend(reference::seal(
            1,
            &keys.payload,
            0,
            false,
            &h[96..],
            &small_payload,
        ));
        bad(
            "crafted_short_chunk_without_last_flag",
            "payload failure",
            "Truncated 1",
            ka,
            bytes,
            "a single short chunk sealed with last-chunk flag 0: a stream cut short",
        );
    }
    {
        let s = salt(22);
        let (h, keys) = reference::header(&ka, 2, &s, &vector_id(22).to_bytes());
        let mut bytes = h.to_vec();
        bytes.extend(reference::seal(
            2,
            &keys.payload,
            0,
            true,
            &[],
            &small_payload,
        ));
        bad(
            "crafted_chunk_without_associated_data",
            "payload failure",
            "ChunkTampered 0",
            ka,
            bytes,
            "chunk 0 sealed with empty associated data instead of the header MAC",
        );
    }
    v.extend(renamed);
    v
}

/// Writes every vector into `dir` and removes stale `.cbv` files.
pub fn write_all(dir: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let vectors = all_vectors();
    let names: Vec<String> = vectors.iter().map(Vector::file_name).collect();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let stale = path.extension().is_some_and(|e| e == "cbv")
            && !names
                .iter()
                .any(|n| path.file_name().is_some_and(|f| f == n.as_str()));
        if stale {
            std::fs::remove_file(&path)?;
        }
    }
    let mut total = 0;
    for v in &vectors {
        let data = v.serialize();
        total += data.len();
        std::fs::write(dir.join(v.file_name()), data)?;
    }
    println!(
        "wrote {} vectors ({total} bytes) to {}",
        vectors.len(),
        dir.display()
    );
    Ok(vectors.len())
}

fn main() {
    let dir = std::env::args_os()
        .nth(1)
        .unwrap_or_else(|| "crates/coffer-format/tests/vectors".into());
    if let Err(e) = write_all(Path::new(&dir)) {
        eprintln!("gen_vectors: {e}");
        std::process::exit(1);
    }
}
