//! The fixed-size, authenticated header at the start of every backup, and the key schedule.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::id::{BackupId, ID_LEN};
use crate::key::{BackupKey, KeyId};
use crate::{labels, FormatError};

/// The first six bytes of every backup.
pub const MAGIC: &[u8; 6] = b"COFFER";
/// The only format version this library reads and writes.
pub const VERSION: u8 = 2;
/// log2 of the plaintext chunk size. Version 2 fixes it at 16 (64 KiB).
pub const CHUNK_SIZE_LOG2: u8 = 16;
/// Plaintext bytes per chunk (all chunks but the last are exactly this long).
pub const CHUNK_SIZE: usize = 1 << CHUNK_SIZE_LOG2;
/// Length of the AEAD tag that follows each chunk.
pub const TAG_LEN: usize = 16;
/// Length of the per-backup random salt.
pub const SALT_LEN: usize = 32;
/// Total header length in bytes.
pub const HEADER_LEN: usize = 128;

// Field offsets (docs/FORMAT.md, section 4).
const KEY_ID: std::ops::Range<usize> = 12..20;
const ID: std::ops::Range<usize> = 20..32;
const SALT: std::ops::Range<usize> = 32..64;
const COMMITMENT: std::ops::Range<usize> = 64..96;
const MAC_START: usize = HEADER_LEN - 32;

/// The chunk cipher. AES-256-GCM is the default (hardware accelerated on most machines);
/// ChaCha20-Poly1305 is for machines without AES instructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cipher {
    #[default]
    Aes256Gcm,
    ChaCha20Poly1305,
}

impl Cipher {
    /// The identifier byte stored in the header.
    pub fn id(self) -> u8 {
        match self {
            Cipher::Aes256Gcm => 1,
            Cipher::ChaCha20Poly1305 => 2,
        }
    }

    pub fn from_id(id: u8) -> Option<Cipher> {
        match id {
            1 => Some(Cipher::Aes256Gcm),
            2 => Some(Cipher::ChaCha20Poly1305),
            _ => None,
        }
    }

    /// The name used in configuration files and `--cipher`.
    pub fn name(self) -> &'static str {
        match self {
            Cipher::Aes256Gcm => "aes-256-gcm",
            Cipher::ChaCha20Poly1305 => "chacha20-poly1305",
        }
    }

    pub fn from_name(name: &str) -> Option<Cipher> {
        match name.to_ascii_lowercase().as_str() {
            "aes-256-gcm" | "aes256gcm" | "aes" => Some(Cipher::Aes256Gcm),
            "chacha20-poly1305" | "chacha20poly1305" | "chacha" => Some(Cipher::ChaCha20Poly1305),
            _ => None,
        }
    }

    fn payload_label(self) -> &'static [u8] {
        match self {
            Cipher::Aes256Gcm => labels::PAYLOAD_AES_256_GCM,
            Cipher::ChaCha20Poly1305 => labels::PAYLOAD_CHACHA20_POLY1305,
        }
    }
}

/// The public fields of a header. Read without the key they are claims; from
/// [`crate::check_header`] or a [`crate::DecryptReader`] they are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderInfo {
    pub version: u8,
    pub cipher: Cipher,
    pub key_id: KeyId,
    /// Which backup this is: its creation time and random tag.
    pub id: BackupId,
}

/// A parsed header: its bytes, plus the parts needed to check it against a key.
#[derive(Clone)]
pub struct Header {
    bytes: [u8; HEADER_LEN],
    pub info: HeaderInfo,
}

/// Keys derived from K and one backup's salt.
pub(crate) struct StreamKeys {
    pub payload: Zeroizing<[u8; 32]>,
    commitment: [u8; 32],
    mac: Zeroizing<[u8; 32]>,
}

impl StreamKeys {
    pub(crate) fn derive(key: &BackupKey, salt: &[u8; SALT_LEN], cipher: Cipher) -> StreamKeys {
        let hk = Hkdf::<Sha256>::new(Some(salt), key.as_bytes());
        let mut payload = Zeroizing::new([0u8; 32]);
        let mut commitment = [0u8; 32];
        let mut mac = Zeroizing::new([0u8; 32]);
        // 32-byte outputs are always within HKDF-SHA256's limit.
        for (label, out) in [
            (cipher.payload_label(), payload.as_mut_slice()),
            (labels::COMMITMENT, commitment.as_mut_slice()),
            (labels::HEADER_MAC, mac.as_mut_slice()),
        ] {
            hk.expand(label, out)
                .expect("32 bytes is a valid HKDF-SHA256 output length");
        }
        StreamKeys {
            payload,
            commitment,
            mac,
        }
    }

    fn header_mac(&self, body: &[u8]) -> [u8; 32] {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(self.mac.as_ref())
            .expect("HMAC accepts keys of any length");
        m.update(body);
        m.finalize().into_bytes().into()
    }
}

impl Header {
    /// Builds the header for a new backup and returns it with its derived keys.
    pub(crate) fn create(
        key: &BackupKey,
        cipher: Cipher,
        id: &BackupId,
        salt: [u8; SALT_LEN],
    ) -> (Header, StreamKeys) {
        let keys = StreamKeys::derive(key, &salt, cipher);
        let key_id = key.id();
        let mut bytes = [0u8; HEADER_LEN];
        bytes[0..6].copy_from_slice(MAGIC);
        bytes[6] = VERSION;
        bytes[7] = cipher.id();
        bytes[8] = CHUNK_SIZE_LOG2;
        // bytes 9..12 reserved, zero
        bytes[KEY_ID].copy_from_slice(&key_id.0);
        bytes[ID].copy_from_slice(&id.to_bytes());
        bytes[SALT].copy_from_slice(&salt);
        bytes[COMMITMENT].copy_from_slice(&keys.commitment);
        let mac = keys.header_mac(&bytes[..MAC_START]);
        bytes[MAC_START..].copy_from_slice(&mac);
        let info = HeaderInfo {
            version: VERSION,
            cipher,
            key_id,
            id: *id,
        };
        (Header { bytes, info }, keys)
    }

    /// Parses the public fields. Checks magic, version, cipher, chunk size, the reserved
    /// bytes and the id's range, but authenticates nothing: that needs the key
    /// ([`Header::open`]).
    pub fn parse(bytes: &[u8]) -> Result<Header, FormatError> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            if bytes.len() < MAGIC.len() && MAGIC.starts_with(bytes) {
                return Err(FormatError::TruncatedHeader { got: bytes.len() });
            }
            return Err(FormatError::NotCoffer);
        }
        if bytes.len() < 7 {
            return Err(FormatError::TruncatedHeader { got: bytes.len() });
        }
        if bytes[6] != VERSION {
            return Err(FormatError::UnsupportedVersion(bytes[6]));
        }
        if bytes.len() < HEADER_LEN {
            return Err(FormatError::TruncatedHeader { got: bytes.len() });
        }
        let cipher = Cipher::from_id(bytes[7]).ok_or(FormatError::UnsupportedCipher(bytes[7]))?;
        if bytes[8] != CHUNK_SIZE_LOG2 {
            return Err(FormatError::UnsupportedChunkSize(bytes[8]));
        }
        if bytes[9..12] != [0, 0, 0] {
            return Err(FormatError::HeaderTampered);
        }
        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(&bytes[KEY_ID]);
        let mut id = [0u8; ID_LEN];
        id.copy_from_slice(&bytes[ID]);
        // No writer makes a time past year 9999: its id would have no text form.
        let id = BackupId::from_bytes(&id).ok_or(FormatError::HeaderTampered)?;
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&bytes[..HEADER_LEN]);
        Ok(Header {
            bytes: header,
            info: HeaderInfo {
                version: VERSION,
                cipher,
                key_id: KeyId(key_id),
                id,
            },
        })
    }

    /// Checks the header against `key`: key commitment first (a wrong key is reported as
    /// such), then the header MAC, then that the header names the backup the caller asked
    /// for (`expected_id`, the name it was stored under). Returns the payload keys.
    pub(crate) fn open(
        &self,
        key: &BackupKey,
        expected_id: &str,
    ) -> Result<StreamKeys, FormatError> {
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&self.bytes[SALT]);
        let keys = StreamKeys::derive(key, &salt, self.info.cipher);
        let commitment_ok: bool = keys.commitment.ct_eq(&self.bytes[COMMITMENT]).into();
        let id_ok = key.id() == self.info.key_id;
        if !commitment_ok {
            // With both the identifier and the commitment off, the key is wrong. With only
            // one off, the key is right and the header bytes were changed.
            return Err(if id_ok {
                FormatError::HeaderTampered
            } else {
                FormatError::WrongKey
            });
        }
        let mac = keys.header_mac(&self.bytes[..MAC_START]);
        if !id_ok || !bool::from(mac.ct_eq(&self.bytes[MAC_START..])) {
            return Err(FormatError::HeaderTampered);
        }
        // Authentic, but perhaps another backup: an old one copied under a newer name.
        let found = self.info.id.to_string();
        if found != expected_id {
            return Err(FormatError::IdMismatch {
                expected: expected_id.to_string(),
                found,
            });
        }
        Ok(keys)
    }

    pub fn as_bytes(&self) -> &[u8; HEADER_LEN] {
        &self.bytes
    }

    /// The header MAC, used as associated data for every chunk so that chunks are bound
    /// to this exact header.
    pub(crate) fn mac(&self) -> &[u8] {
        &self.bytes[MAC_START..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn key(b: u8) -> BackupKey {
        BackupKey::from_bytes([b; 32])
    }

    fn id(n: u8) -> BackupId {
        BackupId::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000), [n; 4]).unwrap()
    }

    #[test]
    fn header_round_trips_and_checks() {
        let (h, _) = Header::create(&key(1), Cipher::ChaCha20Poly1305, &id(1), [7; 32]);
        let parsed = Header::parse(h.as_bytes()).unwrap();
        assert_eq!(parsed.info, h.info);
        assert_eq!(parsed.info.id, id(1));
        let name = id(1).to_string();
        assert!(parsed.open(&key(1), &name).is_ok());
        assert!(matches!(
            parsed.open(&key(2), &name),
            Err(FormatError::WrongKey)
        ));
    }

    #[test]
    fn a_header_read_under_another_name_is_refused() {
        let (h, _) = Header::create(&key(1), Cipher::Aes256Gcm, &id(1), [7; 32]);
        let other = id(2).to_string();
        match Header::parse(h.as_bytes()).unwrap().open(&key(1), &other) {
            Err(FormatError::IdMismatch { expected, found }) => {
                assert_eq!((expected, found), (other.clone(), id(1).to_string()));
            }
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("a renamed backup opened"),
        }
        // A wrong key is reported as such, whatever the name.
        assert!(matches!(
            Header::parse(h.as_bytes()).unwrap().open(&key(2), &other),
            Err(FormatError::WrongKey)
        ));
    }

    #[test]
    fn every_header_bit_is_protected() {
        let (h, _) = Header::create(&key(1), Cipher::Aes256Gcm, &id(3), [9; 32]);
        let name = id(3).to_string();
        for bit in 0..HEADER_LEN * 8 {
            let mut b = *h.as_bytes();
            b[bit / 8] ^= 1 << (bit % 8);
            let res = Header::parse(&b).and_then(|p| p.open(&key(1), &name).map(|_| ()));
            assert!(res.is_err(), "flip of bit {bit} went unnoticed");
            if ID.contains(&(bit / 8)) {
                // A changed id or time is caught by the MAC, before any name comparison.
                assert!(
                    matches!(res, Err(FormatError::HeaderTampered)),
                    "bit {bit}: {res:?}"
                );
            }
        }
    }

    #[test]
    fn short_or_foreign_input_is_named() {
        let (h, _) = Header::create(&key(1), Cipher::Aes256Gcm, &id(1), [9; 32]);
        assert!(matches!(
            Header::parse(&h.as_bytes()[..50]),
            Err(FormatError::TruncatedHeader { got: 50 })
        ));
        assert!(matches!(
            Header::parse(b"PK\x03\x04 zip file"),
            Err(FormatError::NotCoffer)
        ));
        for version in [1, 3] {
            let mut other = *h.as_bytes();
            other[6] = version;
            assert!(matches!(
                Header::parse(&other),
                Err(FormatError::UnsupportedVersion(v)) if v == version
            ));
        }
    }

    #[test]
    fn a_time_past_year_9999_is_refused_before_the_key() {
        let (h, _) = Header::create(&key(1), Cipher::Aes256Gcm, &id(1), [9; 32]);
        let mut b = *h.as_bytes();
        b[ID.start..ID.start + 8].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(matches!(
            Header::parse(&b),
            Err(FormatError::HeaderTampered)
        ));
    }
}
