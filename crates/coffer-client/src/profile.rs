//! A profile: this device's Coffer settings and secrets, in a directory only its owner
//! can read or change. Every use checks the folder, the folders above it and the file the
//! way ssh's StrictModes does ([`crate::private_dir`]): another user who could replace
//! `key` would have the next backups encrypted to their key.
//!
//! ```text
//! config.toml   mode, storage location and credentials, cipher, last backup, pinned fleet
//! key           K as 64 hex digits (mode "key")
//! key.pending   K of a password-mode enable not finished yet
//! credential    the account's bearer credential (password mode)
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use coffer_format::BackupKey;
use coffer_vault_core::FleetKeys;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::ClientError;
use crate::private_dir::PrivateDir;

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

    /// The profile folder, checked (see [`crate::private_dir`]); `None` when it does not
    /// exist yet.
    fn existing_dir(&self) -> Result<Option<PrivateDir>, ClientError> {
        PrivateDir::open(&self.dir)
    }

    /// The profile folder, checked, created owner-only (0700) if it is missing. An
    /// existing folder keeps its mode (it may be one the user named, such as `~`), but it
    /// must pass the same checks.
    fn dir_for_writing(&self) -> Result<PrivateDir, ClientError> {
        PrivateDir::open_or_create(&self.dir)
    }

    /// File `name` of the profile, checked; `None` when it (or the profile) is missing.
    fn read(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, ClientError> {
        match self.existing_dir()? {
            Some(dir) => dir.read(name),
            None => Ok(None),
        }
    }

    /// File `name` as text.
    fn read_text(&self, name: &str) -> Result<Option<Zeroizing<String>>, ClientError> {
        let Some(bytes) = self.read(name)? else {
            return Ok(None);
        };
        match std::str::from_utf8(&bytes) {
            Ok(text) => Ok(Some(Zeroizing::new(text.to_owned()))),
            Err(_) => Err(ClientError::Usage(format!(
                "{} is not valid: it is not UTF-8 text",
                self.dir.join(name).display()
            ))),
        }
    }

    pub fn load_config(&self) -> Result<Config, ClientError> {
        match self.read_text(CONFIG_FILE)? {
            Some(text) => toml::from_str(&text).map_err(|e| {
                ClientError::Usage(format!(
                    "{} is not valid: {e}",
                    self.dir.join(CONFIG_FILE).display()
                ))
            }),
            None => Ok(Config::default()),
        }
    }

    pub fn save_config(&self, config: &Config) -> Result<(), ClientError> {
        let text = Zeroizing::new(
            toml::to_string(config)
                .map_err(|e| ClientError::Internal(format!("cannot encode the config: {e}")))?,
        );
        self.dir_for_writing()?
            .write_atomic(CONFIG_FILE, text.as_bytes())
    }

    pub fn save_key(&self, key: &BackupKey) -> Result<(), ClientError> {
        let mut text = key.to_display();
        text.push('\n');
        self.dir_for_writing()?
            .write_atomic(KEY_FILE, text.as_bytes())
    }

    /// Whether the profile has a key file. Only a hint: [`Profile::load_key`] checks it.
    pub fn has_key(&self) -> bool {
        fs::symlink_metadata(self.dir.join(KEY_FILE)).is_ok()
    }

    pub fn load_key(&self) -> Result<BackupKey, ClientError> {
        let Some(text) = self.read_text(KEY_FILE)? else {
            return Err(ClientError::Usage(format!(
                "encrypted backups are not enabled in profile {}; run `coffer enable --key` first",
                self.dir.display()
            )));
        };
        BackupKey::parse(&text).map_err(|e| {
            ClientError::Usage(format!(
                "{} is damaged: {e}",
                self.dir.join(KEY_FILE).display()
            ))
        })
    }

    /// Stores the account's bearer credential (owner-only).
    pub fn save_credential(&self, credential: &str) -> Result<(), ClientError> {
        self.dir_for_writing()?
            .write_atomic(CREDENTIAL_FILE, credential.as_bytes())
    }

    pub fn load_credential(&self) -> Result<Zeroizing<String>, ClientError> {
        match self.read_text(CREDENTIAL_FILE)? {
            Some(t) => Ok(Zeroizing::new(t.trim().to_string())),
            None => Err(ClientError::Usage(
                "this profile has no verified account; run `coffer account register` and `coffer account verify`"
                    .into(),
            )),
        }
    }

    pub fn remove_key(&self) -> Result<(), ClientError> {
        let Some(dir) = self.existing_dir()? else {
            return Ok(());
        };
        for name in [KEY_FILE, PENDING_KEY_FILE] {
            dir.remove(name)?;
        }
        Ok(())
    }

    /// The K of an unfinished password-mode enable, or a new one, kept until
    /// [`Profile::commit_pending_key`].
    pub fn pending_key(&self) -> Result<BackupKey, ClientError> {
        let dir = self.dir_for_writing()?;
        let damaged = |why: String| {
            ClientError::Usage(format!(
                "{} is damaged: {why}",
                self.dir.join(PENDING_KEY_FILE).display()
            ))
        };
        match dir.read(PENDING_KEY_FILE)? {
            Some(bytes) => {
                let text = std::str::from_utf8(&bytes).map_err(|_| damaged("not text".into()))?;
                BackupKey::parse(text).map_err(|e| damaged(e.to_string()))
            }
            None => {
                let key = BackupKey::generate()?;
                let mut text = Zeroizing::new(key.to_display());
                text.push('\n');
                dir.write_atomic(PENDING_KEY_FILE, text.as_bytes())?;
                Ok(key)
            }
        }
    }

    /// Makes the pending K this profile's key.
    pub fn commit_pending_key(&self) -> Result<(), ClientError> {
        self.dir_for_writing()?.rename(PENDING_KEY_FILE, KEY_FILE)
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
