//! Where the fleet secrets live at rest.
//!
//! The fleet secrets (OPAQUE server setup, record sealing key, guess budget) are kept
//! encrypted by a [`SealingBackend`]. The embedded default, [`KeyFile`], holds a 32-byte
//! root key in a file readable by its owner only; a PKCS#11 backend keeps it in an HSM.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes256Gcm;
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::NodeError;

const AAD: &[u8] = b"coffer/v1/fleet-secrets";

/// Seals and unseals the fleet secrets.
pub trait SealingBackend {
    fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, NodeError>;
    fn unseal(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, NodeError>;
}

/// A root key in a file with mode 0600. Not an HSM: anyone who can read the file (or the
/// node's memory) has the fleet secrets. See docs/SECURITY.md.
pub struct KeyFile {
    key: Zeroizing<[u8; 32]>,
}

impl KeyFile {
    /// Creates a new root key file; refuses to overwrite one.
    pub fn create(path: &Path) -> Result<KeyFile, NodeError> {
        let mut key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(key.as_mut());
        write_private(path, key.as_ref())?;
        Ok(KeyFile { key })
    }

    pub fn open(path: &Path) -> Result<KeyFile, NodeError> {
        use std::os::unix::fs::PermissionsExt;
        let md = fs::metadata(path).map_err(|e| NodeError::io(path, e))?;
        if md.permissions().mode() & 0o077 != 0 {
            return Err(NodeError::Config(format!(
                "{} is readable by others; it must be mode 0600",
                path.display()
            )));
        }
        let bytes = Zeroizing::new(fs::read(path).map_err(|e| NodeError::io(path, e))?);
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| NodeError::Config(format!("{} is not a 32-byte key", path.display())))?;
        Ok(KeyFile {
            key: Zeroizing::new(key),
        })
    }
}

impl SealingBackend for KeyFile {
    fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, NodeError> {
        let mut out = vec![0u8; 12 + plaintext.len() + 16];
        OsRng.fill_bytes(&mut out[..12]);
        let (nonce, rest) = out.split_at_mut(12);
        let (body, tag_out) = rest.split_at_mut(plaintext.len());
        body.copy_from_slice(plaintext);
        let tag = Aes256Gcm::new_from_slice(self.key.as_ref())
            .expect("32-byte key")
            .encrypt_inout_detached((&*nonce).try_into().expect("12 bytes"), AAD, body.into())
            .map_err(|_| NodeError::Sealing("sealing failed".into()))?;
        tag_out.copy_from_slice(&tag);
        Ok(out)
    }

    fn unseal(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, NodeError> {
        let bad =
            || NodeError::Sealing("the sealed fleet secrets do not open with this root key".into());
        if sealed.len() < 28 {
            return Err(bad());
        }
        let (nonce, rest) = sealed.split_at(12);
        let (body, tag) = rest.split_at(rest.len() - 16);
        let mut plain = Zeroizing::new(body.to_vec());
        Aes256Gcm::new_from_slice(self.key.as_ref())
            .expect("32-byte key")
            .decrypt_inout_detached(
                nonce.try_into().map_err(|_| bad())?,
                AAD,
                plain.as_mut_slice().into(),
                &tag.try_into().map_err(|_| bad())?,
            )
            .map_err(|_| bad())?;
        Ok(plain)
    }
}

/// Writes a new file readable by its owner only, durably; never replaces an existing one.
pub(crate) fn write_private(path: &Path, data: &[u8]) -> Result<(), NodeError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| NodeError::io(path, e))?;
    f.write_all(data).map_err(|e| NodeError::io(path, e))?;
    f.sync_all().map_err(|e| NodeError::io(path, e))?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| NodeError::io(dir, e))?;
    }
    Ok(())
}

/// Makes sure `path` exists as a file readable by its owner only: created empty with mode
/// 0600 when missing, tightened to 0600 when looser.
pub(crate) fn create_private_if_missing(path: &Path) -> Result<(), NodeError> {
    use std::os::unix::fs::PermissionsExt;
    let f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| NodeError::io(path, e))?;
    let mode = f
        .metadata()
        .map_err(|e| NodeError::io(path, e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        f.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|e| NodeError::io(path, e))?;
    }
    Ok(())
}

/// Paths of a node's data directory.
pub struct NodePaths {
    pub root_key: PathBuf,
    pub fleet: PathBuf,
    pub records: PathBuf,
    /// The bearer token front-ends present.
    pub frontend_token: PathBuf,
}

impl NodePaths {
    pub fn new(dir: &Path) -> NodePaths {
        NodePaths {
            root_key: dir.join("root.key"),
            fleet: dir.join("fleet.sealed"),
            records: dir.join("records.sqlite"),
            frontend_token: dir.join("frontend.token"),
        }
    }
}
