//! Chunked AEAD (STREAM construction) and its `Read`/`Write` adapters.
//!
//! Each chunk of at most [`CHUNK_SIZE`] plaintext bytes is sealed with the nonce
//! `counter (11 bytes, big-endian) || last-chunk flag (1 byte)`, with the header MAC as
//! associated data. All chunks but the last are full; the last is flagged, so truncation at
//! a chunk boundary, reordering, duplication and appended bytes all fail authentication.

use std::io::{self, BufRead, Read, Write};

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes256Gcm;
use chacha20poly1305::ChaCha20Poly1305;

use crate::header::{Cipher, Header, HeaderInfo, StreamKeys, CHUNK_SIZE, HEADER_LEN, TAG_LEN};
use crate::id::BackupId;
use crate::key::{fill_random, BackupKey};
use crate::FormatError;

/// Bytes of one full sealed chunk.
pub const SEALED_CHUNK_SIZE: usize = CHUNK_SIZE + TAG_LEN;

enum Aead {
    Aes(Box<Aes256Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
}

/// The pure chunk-level core shared by the writer and the reader: it turns a plaintext
/// chunk into a sealed one and back, tracking the counter.
pub(crate) struct ChunkCipher {
    aead: Aead,
    aad: [u8; 32],
    counter: u64,
    finished: bool,
}

impl ChunkCipher {
    fn new(keys: &StreamKeys, cipher: Cipher, header: &Header) -> ChunkCipher {
        let key = keys.payload.as_slice();
        let aead = match cipher {
            Cipher::Aes256Gcm => Aead::Aes(Box::new(
                Aes256Gcm::new_from_slice(key).expect("payload key is 32 bytes"),
            )),
            Cipher::ChaCha20Poly1305 => Aead::ChaCha(Box::new(
                ChaCha20Poly1305::new_from_slice(key).expect("payload key is 32 bytes"),
            )),
        };
        let mut aad = [0u8; 32];
        aad.copy_from_slice(header.mac());
        ChunkCipher {
            aead,
            aad,
            counter: 0,
            finished: false,
        }
    }

    fn nonce(&self, last: bool) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[3..11].copy_from_slice(&self.counter.to_be_bytes());
        n[11] = last as u8;
        n
    }

    /// Encrypts `buf` (at most one chunk) in place and appends the tag.
    pub(crate) fn seal(&mut self, buf: &mut Vec<u8>, last: bool) -> Result<(), FormatError> {
        debug_assert!(buf.len() <= CHUNK_SIZE && !self.finished);
        let nonce = self.nonce(last);
        let data = buf.as_mut_slice().into();
        let tag = match &self.aead {
            Aead::Aes(c) => c.encrypt_inout_detached((&nonce).into(), &self.aad, data),
            Aead::ChaCha(c) => c.encrypt_inout_detached((&nonce).into(), &self.aad, data),
        }
        .map_err(|_| FormatError::TooLong)?;
        buf.extend_from_slice(&tag);
        self.advance(last)
    }

    /// Checks and decrypts a sealed chunk in place (the tag is removed). `last` says
    /// whether the caller found this to be the final chunk of the stream.
    pub(crate) fn open(&mut self, buf: &mut Vec<u8>, last: bool) -> Result<(), FormatError> {
        let index = self.counter;
        if buf.is_empty() {
            return Err(FormatError::Truncated { chunks: index });
        }
        if buf.len() < TAG_LEN || (last && index > 0 && buf.len() == TAG_LEN) {
            // A final chunk is empty only when the whole payload is empty.
            return Err(if self.try_open(buf, false) {
                FormatError::Truncated { chunks: index }
            } else {
                FormatError::ChunkTampered { index }
            });
        }
        if self.try_open_in_place(buf, last) {
            return self.advance(last);
        }
        // Authentication failed. Tell truncation and trailing data apart from tampering
        // by trying the other value of the last-chunk flag on a copy.
        Err(if self.try_open(buf, !last) {
            if last {
                FormatError::Truncated { chunks: index + 1 }
            } else {
                FormatError::TrailingData
            }
        } else {
            FormatError::ChunkTampered { index }
        })
    }

    fn try_open(&self, buf: &[u8], last: bool) -> bool {
        buf.len() >= TAG_LEN && self.try_open_in_place(&mut buf.to_vec(), last)
    }

    fn try_open_in_place(&self, buf: &mut Vec<u8>, last: bool) -> bool {
        let nonce = self.nonce(last);
        let split = buf.len() - TAG_LEN;
        let (data, tag) = buf.split_at_mut(split);
        let Ok(tag) = aes_gcm::Tag::try_from(&*tag) else {
            return false;
        };
        let data = data.into();
        let ok = match &self.aead {
            Aead::Aes(c) => c.decrypt_inout_detached((&nonce).into(), &self.aad, data, &tag),
            Aead::ChaCha(c) => c.decrypt_inout_detached((&nonce).into(), &self.aad, data, &tag),
        }
        .is_ok();
        if ok {
            buf.truncate(split);
        }
        ok
    }

    fn advance(&mut self, last: bool) -> Result<(), FormatError> {
        self.finished = last;
        self.counter = self.counter.checked_add(1).ok_or(FormatError::TooLong)?;
        Ok(())
    }
}

/// Encrypts a byte stream into a backup. Write the plaintext, then call
/// [`EncryptWriter::finish`]; a writer dropped without `finish` leaves a stream that every
/// reader rejects as truncated.
pub struct EncryptWriter<W: Write> {
    inner: W,
    cipher: ChunkCipher,
    buf: Vec<u8>,
    info: HeaderInfo,
    /// Set when a write failed partway: the stream can no longer be completed correctly.
    failed: bool,
}

impl<W: Write> EncryptWriter<W> {
    /// Starts backup `id` with a fresh random salt and writes the header. The id goes
    /// into the authenticated header: store the backup under `id`'s text form, the name
    /// readers will expect.
    pub fn new(
        key: &BackupKey,
        cipher: Cipher,
        id: &BackupId,
        inner: W,
    ) -> Result<Self, FormatError> {
        let mut salt = [0u8; 32];
        fill_random(&mut salt)?;
        Self::with_salt(key, cipher, id, salt, inner)
    }

    /// Like [`EncryptWriter::new`] with a caller-chosen salt. Only for test vectors: reusing
    /// a salt with the same key reuses nonces.
    #[doc(hidden)]
    pub fn with_salt(
        key: &BackupKey,
        cipher: Cipher,
        id: &BackupId,
        salt: [u8; 32],
        mut inner: W,
    ) -> Result<Self, FormatError> {
        let (header, keys) = Header::create(key, cipher, id, salt);
        inner.write_all(header.as_bytes())?;
        Ok(EncryptWriter {
            cipher: ChunkCipher::new(&keys, cipher, &header),
            inner,
            buf: Vec::with_capacity(SEALED_CHUNK_SIZE),
            info: header.info,
            failed: false,
        })
    }

    pub fn info(&self) -> HeaderInfo {
        self.info
    }

    fn seal_and_write(&mut self, last: bool) -> io::Result<()> {
        if self.failed {
            return Err(failed_earlier());
        }
        // Poisoned until the chunk is fully written: a sealed chunk that did not reach the
        // inner writer cannot be sealed again (its nonce is spent).
        self.failed = true;
        self.cipher
            .seal(&mut self.buf, last)
            .map_err(FormatError::into_io)?;
        self.inner.write_all(&self.buf)?;
        self.buf.clear();
        self.failed = false;
        Ok(())
    }

    /// Seals the final chunk, flushes, and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.seal_and_write(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for EncryptWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(failed_earlier());
        }
        if data.is_empty() {
            return Ok(0);
        }
        // A full chunk is sealed only once more data arrives, because the final chunk must
        // carry the last-chunk flag and only `finish` knows which chunk is final.
        if self.buf.len() == CHUNK_SIZE {
            self.seal_and_write(false)?;
        }
        let n = data.len().min(CHUNK_SIZE - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = self.write(data)?;
            data = &data[n..];
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Decrypts a backup. [`DecryptReader::new`] checks the header against the key, and that it
/// names the backup asked for, before any payload is read; `read` then returns plaintext
/// chunk by chunk, each authenticated before it is returned. Errors arrive as `io::Error`s
/// that [`FormatError::from_io`] turns back.
///
/// Plaintext is returned as soon as its chunk is authenticated, so a caller that must not
/// act on a partial stream (a restore) stages the output until `read` returns 0.
pub struct DecryptReader<R: Read> {
    inner: R,
    cipher: ChunkCipher,
    buf: Vec<u8>,
    pos: usize,
    /// One byte read past a full chunk to learn whether it was the last.
    lookahead: Option<u8>,
    done: bool,
    /// Set by any error: the stream position is lost, so every later read fails the same way.
    failed: Option<FormatError>,
    info: HeaderInfo,
}

impl<R: Read> DecryptReader<R> {
    /// Opens the backup stored as `expected_id` (the id's text form, as in the object
    /// name). A backup whose authenticated header names another id is refused with
    /// [`FormatError::IdMismatch`]: it was renamed or replayed.
    pub fn new(key: &BackupKey, expected_id: &str, mut inner: R) -> Result<Self, FormatError> {
        let mut hbuf = [0u8; HEADER_LEN];
        let got = read_full(&mut inner, &mut hbuf)?;
        let header = Header::parse(&hbuf[..got])?;
        let keys = header.open(key, expected_id)?;
        Ok(DecryptReader {
            cipher: ChunkCipher::new(&keys, header.info.cipher, &header),
            inner,
            buf: Vec::with_capacity(SEALED_CHUNK_SIZE + 1),
            pos: 0,
            lookahead: None,
            done: false,
            failed: None,
            info: header.info,
        })
    }

    /// The authenticated header fields, the backup's id among them.
    pub fn info(&self) -> HeaderInfo {
        self.info
    }

    /// Reads, checks and decrypts the next chunk into `buf`.
    fn next_chunk(&mut self) -> Result<(), FormatError> {
        self.pos = 0;
        // Grow to a full sealed chunk without clearing first: only the few bytes added are
        // zeroed, and every byte used below is overwritten by the read.
        self.buf.resize(SEALED_CHUNK_SIZE, 0);
        let mut filled = 0;
        if let Some(b) = self.lookahead.take() {
            self.buf[0] = b;
            filled = 1;
        }
        filled += read_full(&mut self.inner, &mut self.buf[filled..])?;
        self.buf.truncate(filled);
        let last = if filled < SEALED_CHUNK_SIZE {
            true
        } else {
            let mut one = [0u8; 1];
            let more = read_full(&mut self.inner, &mut one)?;
            self.lookahead = (more == 1).then_some(one[0]);
            more == 0
        };
        self.cipher.open(&mut self.buf, last)?;
        self.done = last;
        Ok(())
    }
}

impl<R: Read> Read for DecryptReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let available = self.fill_buf()?;
        let n = out.len().min(available.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// Hands out each authenticated chunk in place, saving a copy for callers that can take
/// borrowed bytes (`fill_buf` returns an empty slice only at the authenticated end).
impl<R: Read> BufRead for DecryptReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.buf.len() {
            if let Some(e) = &self.failed {
                return Err(e.replay().into_io());
            }
            if self.done {
                return Ok(&[]);
            }
            if let Err(e) = self.next_chunk() {
                // Never hand out what is left in the buffer: it is not authenticated.
                self.buf.clear();
                self.pos = 0;
                self.failed = Some(e.replay());
                return Err(e.into_io());
            }
        }
        Ok(&self.buf[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
    }
}

fn failed_earlier() -> io::Error {
    io::Error::other("the backup stream already failed; start again from the beginning")
}

/// Reads until `buf` is full or the reader reaches EOF; returns the bytes read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads and parses only the header's public fields (no key needed). Nothing in them is
/// authenticated: they are what the header claims.
pub fn read_header_info<R: Read>(mut r: R) -> Result<HeaderInfo, FormatError> {
    let mut hbuf = [0u8; HEADER_LEN];
    let got = read_full(&mut r, &mut hbuf)?;
    Ok(Header::parse(&hbuf[..got])?.info)
}

/// Authenticates a header under `key` and checks that it names `expected_id`, from the
/// first [`HEADER_LEN`] bytes of a backup (more are ignored), without reading any chunk.
/// Success means the header was written by a holder of the key for that backup; whether
/// the chunks that follow are intact takes reading them.
pub fn check_header(
    key: &BackupKey,
    expected_id: &str,
    bytes: &[u8],
) -> Result<HeaderInfo, FormatError> {
    let header = Header::parse(&bytes[..bytes.len().min(HEADER_LEN)])?;
    header.open(key, expected_id)?;
    Ok(header.info)
}

/// Encrypts a whole in-memory plaintext as backup `id` (for tests and small data).
pub fn encrypt_to_vec(
    key: &BackupKey,
    cipher: Cipher,
    id: &BackupId,
    plaintext: &[u8],
) -> Result<Vec<u8>, FormatError> {
    let mut w = EncryptWriter::new(key, cipher, id, Vec::new())?;
    w.write_all(plaintext)?;
    Ok(w.finish()?)
}

/// Decrypts a whole in-memory backup stored as `expected_id` (for tests and small data).
pub fn decrypt_to_vec(
    key: &BackupKey,
    expected_id: &str,
    backup: &[u8],
) -> Result<Vec<u8>, FormatError> {
    let mut r = DecryptReader::new(key, expected_id, backup)?;
    let mut out = Vec::new();
    r.read_to_end(&mut out).map_err(FormatError::from_io)?;
    Ok(out)
}
