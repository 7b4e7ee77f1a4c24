//! The server secret under which pending verification codes are stored.
//!
//! A code has only 10^8 values, so a bare hash of it is inverted in seconds by anyone who
//! reads the account database. Stored as HMAC-SHA256 under a key that lives in a file
//! outside the database, a stolen database alone says nothing about pending codes.
//!
//! **Several front-ends sharing one PostgreSQL database must all be given the same key
//! file** (copy it, keeping mode 0600): a code issued by one front-end is checked by
//! whichever front-end receives the user's answer, and with different keys every code
//! would be refused as wrong. Replacing the key voids the codes pending at that moment
//! (users request new ones) and nothing else: credentials do not depend on it.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::account_id::AccountId;
use crate::code::VerificationCode;
use crate::private_file;

/// Bytes in a code key (and in its file, which holds nothing else).
pub const CODE_KEY_LEN: usize = 32;

/// Separates this use of the key from any other, and names the framing's version.
const DOMAIN: &[u8] = b"coffer verification code v1\0";

/// The 32-byte secret for code MACs. Its `Debug` hides it; it is wiped when dropped.
pub struct CodeKey(Zeroizing<[u8; CODE_KEY_LEN]>);

#[derive(Debug, thiserror::Error)]
pub enum CodeKeyError {
    #[error("code key {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "code key {} is open to its group or others (mode {mode:o}); it must be 0600",
        path.display()
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("code key {} holds {len} bytes, not {CODE_KEY_LEN}", path.display())]
    WrongLength { path: PathBuf, len: u64 },
    #[error("code key {} is not a regular file", path.display())]
    NotAFile { path: PathBuf },
}

impl CodeKeyError {
    /// None of these heal by themselves: the file has to be fixed or replaced.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

impl CodeKey {
    pub fn from_bytes(bytes: [u8; CODE_KEY_LEN]) -> CodeKey {
        CodeKey(Zeroizing::new(bytes))
    }

    /// A fresh random key, kept only in memory (tests, single-process tools).
    pub fn generate() -> CodeKey {
        let mut key = Zeroizing::new([0u8; CODE_KEY_LEN]);
        OsRng.fill_bytes(&mut key[..]);
        CodeKey(key)
    }

    /// Reads the key in `path`: a regular file of exactly 32 bytes that neither its group
    /// nor others may read or write. A looser file is refused, not tightened: whoever
    /// could read it may already have the key, so it has to be replaced, not kept.
    pub fn load(path: &Path) -> Result<CodeKey, CodeKeyError> {
        let io_err = |source| CodeKeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(io_err)?;
        // Checked on the open file, so a swap of the path in between cannot fool it.
        let meta = file.metadata().map_err(io_err)?;
        if !meta.is_file() {
            return Err(CodeKeyError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        let mode = private_file::mode(&file).map_err(io_err)?;
        if mode & private_file::NOT_OWNER != 0 {
            return Err(CodeKeyError::TooOpen {
                path: path.to_path_buf(),
                mode,
            });
        }
        let wrong_length = |len| CodeKeyError::WrongLength {
            path: path.to_path_buf(),
            len,
        };
        if meta.len() != CODE_KEY_LEN as u64 {
            return Err(wrong_length(meta.len()));
        }
        let mut key = Zeroizing::new([0u8; CODE_KEY_LEN]);
        file.read_exact(&mut key[..]).map_err(io_err)?;
        // The file may have grown since the metadata was read.
        if file.read(&mut [0u8; 1]).map_err(io_err)? != 0 {
            return Err(wrong_length(meta.len() + 1));
        }
        Ok(CodeKey(key))
    }

    /// Reads the key in `path`, first creating it (32 random bytes, mode 0600) if there is
    /// none. Front-ends starting together on one machine end up with the same key: the
    /// file appears whole or not at all, and only one creator wins.
    pub fn load_or_create(path: &Path) -> Result<CodeKey, CodeKeyError> {
        match CodeKey::load(path) {
            Err(CodeKeyError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            other => return other,
        }
        let key = CodeKey::generate();
        match key.create_file(path) {
            Ok(()) => Ok(key),
            // Another process created it first: use theirs.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => CodeKey::load(path),
            Err(source) => Err(CodeKeyError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Writes a side file, flushes it, then links it into place (which fails if `path`
    /// exists), so nobody ever reads a half-written key.
    fn create_file(&self, path: &Path) -> io::Result<()> {
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
        let mut side_name = std::ffi::OsString::from(".");
        side_name.push(name);
        side_name.push(format!(
            ".{}-{:016x}.new",
            std::process::id(),
            OsRng.next_u64()
        ));
        let side = path.with_file_name(side_name);
        let written = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&side)?;
            f.write_all(&self.0[..])?;
            f.sync_all()?;
            std::fs::hard_link(&side, path)
        })();
        let _ = std::fs::remove_file(&side);
        written?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    /// HMAC-SHA256 over the domain tag, then the account id and the code, each preceded by
    /// its length as 4 big-endian bytes, so no two (id, code) pairs frame the same.
    pub(crate) fn mac(&self, account: &AccountId, code: &VerificationCode) -> [u8; 32] {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.0[..]) {
            Ok(m) => m,
            // HMAC takes keys of any length; this arm cannot run.
            Err(_) => unreachable!("HMAC accepts every key length"),
        };
        mac.update(DOMAIN);
        for part in [account.as_str().as_bytes(), code.as_str().as_bytes()] {
            mac.update(&(part.len() as u32).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn set_mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_missing_key_is_created_0600_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("code.key");
        let made = CodeKey::load_or_create(&path).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), CODE_KEY_LEN as u64);
        let again = CodeKey::load_or_create(&path).unwrap();
        assert_eq!(made.0[..], again.0[..]);
        // No side files are left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn loose_short_long_and_odd_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("code.key");
        std::fs::write(&path, [7u8; CODE_KEY_LEN]).unwrap();
        for loose in [0o640, 0o604, 0o620, 0o602] {
            set_mode(&path, loose);
            assert!(
                matches!(CodeKey::load_or_create(&path), Err(CodeKeyError::TooOpen { mode, .. }) if mode == loose),
                "{loose:o}"
            );
        }
        set_mode(&path, 0o400);
        assert!(CodeKey::load(&path).is_ok());
        for len in [0, 31, 33, 64] {
            std::fs::write(&path, vec![7u8; len]).unwrap();
            set_mode(&path, 0o600);
            assert!(
                matches!(CodeKey::load_or_create(&path), Err(CodeKeyError::WrongLength { len: l, .. }) if l == len as u64),
                "{len}"
            );
        }
        assert!(matches!(
            CodeKey::load(dir.path()),
            Err(CodeKeyError::NotAFile { .. })
        ));
    }

    #[test]
    fn debug_hides_the_key() {
        let key = CodeKey::from_bytes([0xab; CODE_KEY_LEN]);
        let shown = format!("{key:?}");
        assert!(!shown.contains("ab") && !shown.contains("171"), "{shown}");
    }

    #[test]
    fn the_mac_frames_id_and_code_unambiguously() {
        let key = CodeKey::from_bytes([1; CODE_KEY_LEN]);
        let id = |s| AccountId::parse(s).unwrap();
        let code = |s| VerificationCode::parse(s).unwrap();
        let a = key.mac(&id("alice1"), &code("23456789"));
        assert_eq!(a, key.mac(&id("alice1"), &code("23456789")));
        assert_ne!(a, key.mac(&id("alice"), &code("12345678")));
        assert_ne!(a, key.mac(&id("alice1"), &code("23456788")));
        let other = CodeKey::from_bytes([2; CODE_KEY_LEN]);
        assert_ne!(a, other.mac(&id("alice1"), &code("23456789")));
        // The framing, written out: an independent computation gives the same MAC.
        let mut expected = Hmac::<Sha256>::new_from_slice(&[1; CODE_KEY_LEN]).unwrap();
        expected.update(b"coffer verification code v1\0\0\0\0\x06alice1\0\0\0\x0823456789");
        assert_eq!(a, <[u8; 32]>::from(expected.finalize().into_bytes()));
    }
}
