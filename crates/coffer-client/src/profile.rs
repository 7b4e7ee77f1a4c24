//! A profile: this device's Coffer settings and secrets, in a directory only its owner
//! can read.
//!
//! ```text
//! config.toml   mode, storage location, cipher, last backup
//! key           K as 64 hex digits (mode "key")
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use coffer_format::BackupKey;
use coffer_vault_core::FleetKeys;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::ClientError;

const CONFIG_FILE: &str = "config.toml";
const KEY_FILE: &str = "key";
/// K of a password-mode enable that has not finished: kept so that a retry deposits the
/// same K (the vault may hold it already, if only its answer was lost).
const PENDING_KEY_FILE: &str = "key.pending";
const CREDENTIAL_FILE: &str = "credential";

/// How K is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The user keeps K as a 64-digit key.
    Key,
    /// K is deposited in the Backup Key Vault behind a password.
    Password,
}

/// The front-end this profile's account lives on, and the vault fleet behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// `https://host:port`
    pub url: String,
    /// SHA-256 fingerprints of the front-end TLS certificates accepted: the current one and,
    /// during a rotation, the next.
    pub tls_fingerprints: Vec<String>,
    /// The account id (a phone number, an e-mail address…).
    pub account: String,
    /// The vault fleet pinned, from a channel independent of the front-end (the operator's
    /// printout or a flag): its fingerprint, and the public keys that fingerprint covers.
    pub fleet_fingerprint: String,
    pub fleet_keys: FleetKeys,
}

impl Server {
    /// The pinned fleet's keys, checked again against the pinned fingerprint (the file may
    /// have been edited).
    pub fn fleet(&self) -> Result<FleetKeys, ClientError> {
        crate::password::pin_fleet(self.fleet_keys.clone(), &self.fleet_fingerprint)
    }
}

/// The newest backup this profile made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastBackup {
    pub id: String,
    pub stored_bytes: u64,
    pub storage: String,
}

/// The `[storage_options]` table. Its values may be credentials: `Debug` shows only the
/// names, and the values are wiped from memory when dropped.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StorageOptions(pub BTreeMap<String, String>);

impl StorageOptions {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for StorageOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Drop for StorageOptions {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for v in self.0.values_mut() {
            v.zeroize();
        }
    }
}

/// The contents of `config.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub mode: Option<Mode>,
    /// Default storage location for `backup`, `list`, `verify` and `restore`.
    pub storage: Option<String>,
    /// Provider settings for `storage`, credentials included (the file is private):
    /// `endpoint`, `region`, `secret_access_key`, … (docs/STORAGE.md).
    #[serde(default, skip_serializing_if = "StorageOptions::is_empty")]
    pub storage_options: StorageOptions,
    /// "aes-256-gcm" (default) or "chacha20-poly1305".
    pub cipher: Option<String>,
    /// zstd level, 1 by default.
    pub compression_level: Option<i32>,
    pub last_backup: Option<LastBackup>,
    /// Password mode: the account's front-end.
    pub server: Option<Server>,
}

pub struct Profile {
    dir: PathBuf,
}

impl Profile {
    /// `$XDG_CONFIG_HOME/coffer`, else `$HOME/.config/coffer`.
    pub fn default_dir() -> Result<PathBuf, ClientError> {
        if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
            return Ok(PathBuf::from(x).join("coffer"));
        }
        std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|h| PathBuf::from(h).join(".config").join("coffer"))
            .ok_or_else(|| ClientError::Usage("HOME is not set; pass --profile DIR".into()))
    }

    pub fn at(dir: impl Into<PathBuf>) -> Profile {
        Profile { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates the profile directory, owner-only, if it is missing. An existing directory
    /// keeps its mode (it may be one the user named, such as `~`); the files inside are
    /// owner-only regardless.
    fn ensure_dir(&self) -> Result<(), ClientError> {
        if self.dir.is_dir() {
            return Ok(());
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| ClientError::io("cannot create", &self.dir, e))
    }

    pub fn load_config(&self) -> Result<Config, ClientError> {
        let path = self.dir.join(CONFIG_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .map_err(|e| ClientError::Usage(format!("{} is not valid: {e}", path.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(ClientError::io("cannot read", path, e)),
        }
    }

    pub fn save_config(&self, config: &Config) -> Result<(), ClientError> {
        let text = toml::to_string(config)
            .map_err(|e| ClientError::Internal(format!("cannot encode the config: {e}")))?;
        self.write_private(CONFIG_FILE, text.as_bytes())
    }

    pub fn save_key(&self, key: &BackupKey) -> Result<(), ClientError> {
        let mut text = key.to_display();
        text.push('\n');
        self.write_private(KEY_FILE, text.as_bytes())
    }

    pub fn has_key(&self) -> bool {
        self.dir.join(KEY_FILE).exists()
    }

    pub fn load_key(&self) -> Result<BackupKey, ClientError> {
        let path = self.dir.join(KEY_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => Zeroizing::new(t),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ClientError::Usage(format!(
                    "encrypted backups are not enabled in profile {}; run `coffer enable --key` first",
                    self.dir.display()
                )))
            }
            Err(e) => return Err(ClientError::io("cannot read", path, e)),
        };
        BackupKey::parse(&text)
            .map_err(|e| ClientError::Usage(format!("{} is damaged: {e}", path.display())))
    }

    /// Stores the account's bearer credential (owner-only).
    pub fn save_credential(&self, credential: &str) -> Result<(), ClientError> {
        self.write_private(CREDENTIAL_FILE, credential.as_bytes())
    }

    pub fn load_credential(&self) -> Result<Zeroizing<String>, ClientError> {
        let path = self.dir.join(CREDENTIAL_FILE);
        match fs::read_to_string(&path) {
            Ok(t) => Ok(Zeroizing::new(t.trim().to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ClientError::Usage(
                "this profile has no verified account; run `coffer account register` and `coffer account verify`"
                    .into(),
            )),
            Err(e) => Err(ClientError::io("cannot read", path, e)),
        }
    }

    pub fn remove_key(&self) -> Result<(), ClientError> {
        for name in [KEY_FILE, PENDING_KEY_FILE] {
            let path = self.dir.join(name);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(ClientError::io("cannot remove", path, e)),
            }
        }
        Ok(())
    }

    /// The K of an unfinished password-mode enable, or a new one, kept until
    /// [`Profile::commit_pending_key`].
    pub fn pending_key(&self) -> Result<BackupKey, ClientError> {
        let path = self.dir.join(PENDING_KEY_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => BackupKey::parse(&Zeroizing::new(text))
                .map_err(|e| ClientError::Usage(format!("{} is damaged: {e}", path.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let key = BackupKey::generate()?;
                let mut text = Zeroizing::new(key.to_display());
                text.push('\n');
                self.write_private(PENDING_KEY_FILE, text.as_bytes())?;
                Ok(key)
            }
            Err(e) => Err(ClientError::io("cannot read", path, e)),
        }
    }

    /// Makes the pending K this profile's key.
    pub fn commit_pending_key(&self) -> Result<(), ClientError> {
        let (from, to) = (self.dir.join(PENDING_KEY_FILE), self.dir.join(KEY_FILE));
        fs::rename(&from, &to)
            .and_then(|()| fs::File::open(&self.dir)?.sync_all())
            .map_err(|e| ClientError::io("cannot write", to, e))
    }

    /// Writes a file readable by the owner only, atomically (temporary file, fsync, rename).
    fn write_private(&self, name: &str, data: &[u8]) -> Result<(), ClientError> {
        self.ensure_dir()?;
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let write = || -> io::Result<()> {
            let _ = fs::remove_file(&tmp);
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            fs::File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            ClientError::io("cannot write", &path, e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn key_and_config_round_trip_privately() {
        let dir = tempfile::tempdir().unwrap();
        let p = Profile::at(dir.path().join("p"));
        assert!(p.load_key().is_err());
        let k = BackupKey::generate().unwrap();
        p.save_key(&k).unwrap();
        assert_eq!(p.load_key().unwrap(), k);
        let mode = fs::metadata(p.dir().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let cfg = Config {
            mode: Some(Mode::Key),
            storage: Some("/x".into()),
            ..Config::default()
        };
        p.save_config(&cfg).unwrap();
        assert_eq!(p.load_config().unwrap(), cfg);
        p.remove_key().unwrap();
        assert!(!p.has_key());
    }
}
