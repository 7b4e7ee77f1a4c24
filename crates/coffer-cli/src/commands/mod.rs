//! One function per CLI verb. Each does its work through `coffer-client` and reports
//! through [`Output`]: the backup verbs in [`backups`], `status` and `disable` in
//! [`status`]; what they share is here.

mod backups;
mod prune;
mod status;

pub use backups::{backup, decrypt, enable, list, restore, verify};
pub use prune::prune;
pub use status::{disable, status};

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use anyhow::{Context, Result};
use coffer_client::{ClientError, Config, Profile, Storage, StorageUrl};
use coffer_format::{BackupKey, Cipher};
use zeroize::Zeroizing;

pub fn profile(dir: Option<PathBuf>) -> Result<Profile> {
    Ok(Profile::at(match dir {
        Some(d) => d,
        None => Profile::default_dir()?,
    }))
}

pub(crate) fn usage(msg: impl Into<String>) -> anyhow::Error {
    ClientError::Usage(msg.into()).into()
}

/// The storage named on the command line, else the profile's. Only `backup` may create
/// it; reading commands need it to exist.
pub(crate) fn storage(config: &Config, arg: Option<String>, create: bool) -> Result<Storage> {
    let text = arg.or_else(|| config.storage.clone()).ok_or_else(|| {
        usage("no storage location: pass --to/--from STORAGE, or set one with `coffer enable --storage`")
    })?;
    let url = StorageUrl::parse(&text)?;
    // The profile's provider settings belong to the profile's location only.
    let none = Default::default();
    let options = match &config.storage {
        Some(own) if StorageUrl::parse(own)? == url => &config.storage_options.0,
        _ => &none,
    };
    let storage = if create {
        Storage::open_with(&url, options)?
    } else {
        Storage::open_existing(&url, options)?
    };
    // Retries are worth knowing about on a bad network, and a damaged backup that a
    // listing skips must not go unnoticed; notes go to stderr, never stdout.
    storage.on_notice(|notice| eprintln!("note: {notice}"));
    Ok(storage)
}

pub(crate) fn cipher(config: &Config) -> Result<Cipher> {
    match &config.cipher {
        None => Ok(Cipher::default()),
        Some(name) => Cipher::from_name(name).ok_or_else(|| {
            usage(format!(
                "unknown cipher {name:?}; use aes-256-gcm or chacha20-poly1305"
            ))
        }),
    }
}

/// Where the backup key comes from for reading commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// The profile's key; else, on a terminal, the password (password mode) or the key.
    Default,
    /// The 64-digit key on standard input.
    KeyStdin,
    /// The password on standard input, checked by the vault.
    PasswordStdin,
}

impl KeySource {
    pub fn from_flags(key_stdin: bool, password_stdin: bool) -> KeySource {
        match (key_stdin, password_stdin) {
            (true, _) => KeySource::KeyStdin,
            (_, true) => KeySource::PasswordStdin,
            _ => KeySource::Default,
        }
    }
}

/// The key from standard input, the profile, the vault, or a prompt, in that order.
pub(crate) async fn obtain_key(profile: &Profile, source: KeySource) -> Result<BackupKey> {
    match source {
        KeySource::KeyStdin => {
            let mut text = Zeroizing::new(String::new());
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the key from standard input")?;
            return BackupKey::parse(&text).map_err(|e| usage(e.to_string()));
        }
        KeySource::PasswordStdin => return crate::password_cmds::recover_key(profile, true).await,
        KeySource::Default => {}
    }
    if profile.has_key() {
        return Ok(profile.load_key()?);
    }
    if std::io::stdin().is_terminal() {
        if profile.load_config()?.server.is_some() {
            return crate::password_cmds::recover_key(profile, false).await;
        }
        let line = crate::prompt::hidden("Enter your 64-digit backup key: ")
            .context("cannot read the key")?;
        return BackupKey::parse(&line).map_err(|e| usage(e.to_string()));
    }
    Err(usage(
        "this profile has no key; pass --key-stdin (the 64-digit key) or --password-stdin (password mode) with the secret on standard input",
    ))
}
