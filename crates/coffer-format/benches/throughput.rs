//! Encrypt and decrypt throughput of the Coffer stream format, next to its peer: the raw
//! AEAD of the same bytes in 64 KiB pieces, measured in the same run (the lower bound the
//! format can approach).
//!
//! ```text
//! cargo bench -p coffer-format
//! ```
//!
//! Figures are MB/s with MB = 10^6 bytes of payload, the best of several runs; format and
//! peer runs are interleaved so that both see the same machine load.

use std::hint::black_box;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes256Gcm;
use chacha20poly1305::ChaCha20Poly1305;
use coffer_format::{
    encrypted_len, BackupId, BackupKey, Cipher, DecryptReader, EncryptWriter, CHUNK_SIZE,
    HEADER_LEN, SEALED_CHUNK_SIZE, TAG_LEN,
};

/// Payload size: 256 MiB.
const TOTAL: usize = 256 << 20;
/// Timed runs per measurement (after one untimed warm-up run).
const RUNS: usize = 3;

/// The id of every benchmark backup.
fn bench_id() -> BackupId {
    BackupId::new(
        std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        [0; 4],
    )
    .expect("a time in range")
}

fn mb_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

/// Fast deterministic filler (xorshift64), so the payload is not trivially compressible or
/// all zeros.
fn fill(buf: &mut [u8]) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for word in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        word.copy_from_slice(&x.to_le_bytes()[..word.len()]);
    }
}

fn nonce(counter: u64, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// The format's encrypt path: `EncryptWriter` into a pre-allocated buffer.
fn format_encrypt(key: &BackupKey, cipher: Cipher, plain: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut w = EncryptWriter::new(key, cipher, &bench_id(), &mut *out).expect("header");
    w.write_all(black_box(plain)).expect("write");
    w.finish().expect("finish");
    black_box(&out);
}

/// The format's decrypt path: `DecryptReader` into a pre-allocated buffer.
fn format_decrypt(key: &BackupKey, backup: &[u8], out: &mut [u8]) -> usize {
    let mut r =
        DecryptReader::new(key, &bench_id().to_string(), black_box(backup)).expect("header");
    let mut pos = 0;
    loop {
        let n = r.read(&mut out[pos..]).expect("read");
        if n == 0 {
            break;
        }
        pos += n;
        if pos == out.len() {
            // The reader still has to see the end of the stream.
            assert_eq!(r.read(&mut [0u8; 1]).expect("read"), 0);
            break;
        }
    }
    black_box(&out);
    pos
}

/// The peer's encrypt path: one AEAD call per 64 KiB piece, ciphertext and tag appended to a
/// pre-allocated buffer, the same nonce layout and 32 bytes of associated data.
fn peer_encrypt<A: AeadInOut<NonceSize = U12>>(aead: &A, plain: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let aad = [7u8; 32];
    let pieces = plain.len().div_ceil(CHUNK_SIZE);
    for (i, piece) in black_box(plain).chunks(CHUNK_SIZE).enumerate() {
        let start = out.len();
        out.extend_from_slice(piece);
        let n = nonce(i as u64, i + 1 == pieces);
        let tag = aead
            .encrypt_inout_detached((&n).into(), &aad, (&mut out[start..]).into())
            .expect("encrypt");
        out.extend_from_slice(&tag);
    }
    black_box(&out);
}

/// The peer's decrypt path: one AEAD call per sealed piece, plaintext written to a
/// pre-allocated buffer.
fn peer_decrypt<A: AeadInOut<NonceSize = U12>>(aead: &A, sealed: &[u8], out: &mut [u8]) {
    let aad = [7u8; 32];
    let pieces = sealed.len().div_ceil(SEALED_CHUNK_SIZE);
    let mut pos = 0;
    for (i, piece) in black_box(sealed).chunks(SEALED_CHUNK_SIZE).enumerate() {
        let (ct, tag) = piece.split_at(piece.len() - TAG_LEN);
        let dst = &mut out[pos..pos + ct.len()];
        dst.copy_from_slice(ct);
        let n = nonce(i as u64, i + 1 == pieces);
        let tag = tag.try_into().expect("16-byte tag");
        aead.decrypt_inout_detached((&n).into(), &aad, dst.into(), &tag)
            .expect("decrypt");
        pos += ct.len();
    }
    black_box(&out);
}

/// Times one run of `f`.
fn time(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

fn report(what: &str, cipher: Cipher, format: Duration, peer: Duration) {
    let (f, p) = (mb_per_s(TOTAL, format), mb_per_s(TOTAL, peer));
    println!(
        "{what} {}: {f:.0} MB/s; raw AEAD peer: {p:.0} MB/s; ratio {:.2}",
        cipher.name(),
        f / p
    );
}

fn bench_cipher<A: AeadInOut<NonceSize = U12>>(
    cipher: Cipher,
    aead: &A,
    key: &BackupKey,
    plain: &[u8],
    bufs: &mut Buffers,
) {
    // Encrypt: one untimed warm-up of each, then format and peer runs interleaved.
    format_encrypt(key, cipher, plain, &mut bufs.sealed);
    peer_encrypt(aead, plain, &mut bufs.peer_sealed);
    let (mut t_format, mut t_peer) = (Duration::MAX, Duration::MAX);
    for _ in 0..RUNS {
        t_format = t_format.min(time(|| {
            format_encrypt(key, cipher, plain, &mut bufs.sealed)
        }));
        t_peer = t_peer.min(time(|| peer_encrypt(aead, plain, &mut bufs.peer_sealed)));
    }
    assert_eq!(bufs.sealed.len() as u64, encrypted_len(TOTAL as u64));
    assert_eq!(bufs.peer_sealed.len(), bufs.sealed.len() - HEADER_LEN);
    report("encrypt", cipher, t_format, t_peer);

    // Decrypt the backups just made: warm-up, interleaved runs, then check the output.
    bufs.plain_out.fill(0);
    bufs.peer_plain_out.fill(0);
    format_decrypt(key, &bufs.sealed, &mut bufs.plain_out);
    peer_decrypt(aead, &bufs.peer_sealed, &mut bufs.peer_plain_out);
    let (mut t_format, mut t_peer) = (Duration::MAX, Duration::MAX);
    for _ in 0..RUNS {
        t_format = t_format.min(time(|| {
            assert_eq!(
                format_decrypt(key, &bufs.sealed, &mut bufs.plain_out),
                TOTAL
            );
        }));
        t_peer = t_peer.min(time(|| {
            peer_decrypt(aead, &bufs.peer_sealed, &mut bufs.peer_plain_out)
        }));
    }
    assert!(
        bufs.plain_out == plain,
        "format round trip changed the payload"
    );
    assert!(
        bufs.peer_plain_out == plain,
        "peer round trip changed the payload"
    );
    report("decrypt", cipher, t_format, t_peer);
}

/// Output buffers, allocated and touched once so that page faults stay out of the timings.
struct Buffers {
    sealed: Vec<u8>,
    peer_sealed: Vec<u8>,
    plain_out: Vec<u8>,
    peer_plain_out: Vec<u8>,
}

fn main() {
    let started = Instant::now();
    let mut plain = vec![0u8; TOTAL];
    fill(&mut plain);
    let sealed_len = encrypted_len(TOTAL as u64) as usize;
    let touched = |n: usize| {
        let mut v = vec![1u8; n];
        v.clear();
        v
    };
    let mut bufs = Buffers {
        sealed: touched(sealed_len),
        peer_sealed: touched(sealed_len),
        plain_out: vec![1u8; TOTAL],
        peer_plain_out: vec![1u8; TOTAL],
    };
    let key = BackupKey::from_bytes([0x5a; 32]);
    let raw_key = [0xa5u8; 32];

    println!(
        "coffer-format throughput: {} MiB payload in memory, best of {RUNS} runs after a warm-up run \
         (MB = 10^6 bytes)",
        TOTAL >> 20
    );
    bench_cipher(
        Cipher::Aes256Gcm,
        &Aes256Gcm::new_from_slice(&raw_key).expect("key"),
        &key,
        &plain,
        &mut bufs,
    );
    bench_cipher(
        Cipher::ChaCha20Poly1305,
        &ChaCha20Poly1305::new_from_slice(&raw_key).expect("key"),
        &key,
        &plain,
        &mut bufs,
    );
    println!("total bench time: {:.1} s", started.elapsed().as_secs_f64());
}
