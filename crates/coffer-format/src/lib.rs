//! The Coffer backup format: a fixed authenticated header followed by a chunked AEAD stream.
//!
//! The byte-level specification is `docs/FORMAT.md`. This crate is plain `Read`/`Write` code
//! with no I/O of its own.

mod error;
pub mod header;
pub mod id;
pub mod key;
pub mod labels;
mod stream;

pub use error::FormatError;
pub use header::{Cipher, HeaderInfo, CHUNK_SIZE, HEADER_LEN, TAG_LEN};
pub use id::BackupId;
pub use key::{BackupKey, KeyId, KeyParseError, RandomError};
pub use stream::{
    check_header, decrypt_to_vec, encrypt_to_vec, read_header_info, DecryptReader, EncryptWriter,
    SEALED_CHUNK_SIZE,
};

/// Size of the encrypted backup for a payload of `plaintext_len` bytes.
pub fn encrypted_len(plaintext_len: u64) -> u64 {
    let chunk = CHUNK_SIZE as u64;
    let chunks = if plaintext_len == 0 {
        1
    } else {
        plaintext_len.div_ceil(chunk)
    };
    HEADER_LEN as u64 + plaintext_len + chunks * TAG_LEN as u64
}
