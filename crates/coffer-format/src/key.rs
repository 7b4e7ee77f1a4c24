//! The backup key K: 32 random bytes, shown to people as 64 hex digits.

use std::fmt;

use hkdf::Hkdf;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::labels;

/// Length of K in bytes.
pub const KEY_LEN: usize = 32;
/// Number of hex digits in the human form of K.
pub const KEY_DIGITS: usize = KEY_LEN * 2;

/// The 256-bit backup key K. Zeroized on drop; `Debug` shows only the fingerprint.
#[derive(Clone)]
pub struct BackupKey(Zeroizing<[u8; KEY_LEN]>);

/// Why a typed 64-digit key was refused. Never contains the key itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyParseError {
    #[error("a backup key has 64 hex digits, but {found} were given")]
    WrongLength { found: usize },
    #[error("character {position} of the key is not a hex digit (0-9, a-f)")]
    NotHex { position: usize },
}

/// The operating system's random number generator failed.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomError(pub getrandom::Error);

/// Fills `buf` from the operating system's CSPRNG.
pub fn fill_random(buf: &mut [u8]) -> Result<(), RandomError> {
    getrandom::getrandom(buf).map_err(RandomError)
}

/// A short public identifier of K (first 8 bytes of an HKDF output), the same for every
/// backup made with K. It reveals nothing about K; it lets `list` group backups and lets
/// a restore say "wrong key" rather than "corrupted".
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 8]);

impl BackupKey {
    /// A fresh key from the OS CSPRNG.
    pub fn generate() -> Result<Self, RandomError> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(k.as_mut())?;
        Ok(BackupKey(k))
    }

    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        let mut bytes = bytes;
        let key = BackupKey(Zeroizing::new(bytes));
        bytes.zeroize();
        key
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Parses the 64-digit form: any case; spaces, tabs, newlines and dashes are ignored.
    pub fn parse(text: &str) -> Result<Self, KeyParseError> {
        let mut digits = Zeroizing::new(Vec::with_capacity(KEY_DIGITS));
        for (i, c) in text.chars().enumerate() {
            if c == '-' || c.is_whitespace() {
                continue;
            }
            match c.to_digit(16) {
                Some(d) => digits.push(d as u8),
                None => return Err(KeyParseError::NotHex { position: i + 1 }),
            }
        }
        if digits.len() != KEY_DIGITS {
            return Err(KeyParseError::WrongLength {
                found: digits.len(),
            });
        }
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        for (out, pair) in k.iter_mut().zip(digits.chunks_exact(2)) {
            *out = (pair[0] << 4) | pair[1];
        }
        Ok(BackupKey(k))
    }

    /// The 64 digits in 16 groups of 4, lower case, separated by spaces.
    pub fn to_display(&self) -> Zeroizing<String> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = Zeroizing::new(String::with_capacity(KEY_DIGITS + 15));
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 && i % 2 == 0 {
                s.push(' ');
            }
            s.push(HEX[(b >> 4) as usize] as char);
            s.push(HEX[(b & 15) as usize] as char);
        }
        s
    }

    /// The public identifier of this key; see [`KeyId`].
    pub fn id(&self) -> KeyId {
        let hk = Hkdf::<Sha256>::new(None, self.0.as_ref());
        let mut out = [0u8; 8];
        // 8 bytes is far below HKDF's output limit, so expand cannot fail.
        hk.expand(labels::KEY_ID, &mut out)
            .expect("8 bytes is a valid HKDF-SHA256 output length");
        KeyId(out)
    }
}

impl PartialEq for BackupKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&*other.0).into()
    }
}
impl Eq for BackupKey {}

impl fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BackupKey(id {})", self.id())
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SAMPLE: &str =
        "0001 0203 0405 0607 0809 0a0b 0c0d 0e0f 1011 1213 1415 1617 1819 1a1b 1c1d 1e1f";

    #[test]
    fn display_is_sixteen_groups_of_four() {
        let k = BackupKey::from_bytes(core::array::from_fn(|i| i as u8));
        assert_eq!(&*k.to_display(), SAMPLE);
        assert_eq!(k.to_display().split(' ').count(), 16);
    }

    #[test]
    fn parse_ignores_case_spaces_and_dashes() {
        let k = BackupKey::from_bytes(core::array::from_fn(|i| i as u8));
        let dashed = SAMPLE.replace(' ', "-").to_uppercase();
        assert_eq!(BackupKey::parse(&dashed).unwrap(), k);
        assert_eq!(BackupKey::parse(&SAMPLE.replace(' ', "")).unwrap(), k);
        assert_eq!(BackupKey::parse(&format!("  {SAMPLE}\n")).unwrap(), k);
    }

    #[test]
    fn parse_names_the_problem() {
        assert_eq!(
            BackupKey::parse("abcd"),
            Err(KeyParseError::WrongLength { found: 4 })
        );
        let bad = SAMPLE.replacen('a', "g", 1);
        let pos = bad.find('g').unwrap() + 1;
        assert_eq!(
            BackupKey::parse(&bad),
            Err(KeyParseError::NotHex { position: pos })
        );
        let msg = BackupKey::parse(&bad).unwrap_err().to_string();
        assert!(msg.contains(&format!("character {pos}")), "{msg}");
        let too_long = format!("{SAMPLE} 00");
        assert_eq!(
            BackupKey::parse(&too_long),
            Err(KeyParseError::WrongLength { found: 66 })
        );
    }

    #[test]
    fn debug_hides_the_key() {
        let k = BackupKey::from_bytes([0xab; 32]);
        let dbg = format!("{k:?}");
        assert!(!dbg.contains("abab"), "{dbg}");
        assert!(dbg.contains(&k.id().to_string()));
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(
            BackupKey::generate().unwrap(),
            BackupKey::generate().unwrap()
        );
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(bytes in any::<[u8; 32]>(), upper in any::<bool>(), dashes in any::<bool>()) {
            let k = BackupKey::from_bytes(bytes);
            let mut s = k.to_display().to_string();
            if upper { s = s.to_uppercase(); }
            if dashes { s = s.replace(' ', "-"); }
            prop_assert_eq!(BackupKey::parse(&s).unwrap(), k);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,100}") {
            let _ = BackupKey::parse(&s);
        }
    }
}
