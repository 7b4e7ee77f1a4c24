//! One function per CLI verb. Each does its work through `coffer-client` and reports
//! through [`Output`].

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use coffer_client::profile::LastBackup;
use coffer_client::storage::{plan_prune, PrunePolicy};
use coffer_client::{
    BackupOptions, ClientError, Config, Mode, Profile, Storage, StorageUrl, StoredBackup,
};
use coffer_format::{BackupKey, Cipher, HEADER_LEN};
use serde_json::json;
use zeroize::Zeroizing;

use crate::output::{human_bytes, Output};

pub fn profile(dir: Option<PathBuf>) -> Result<Profile> {
    Ok(Profile::at(match dir {
        Some(d) => d,
        None => Profile::default_dir()?,
    }))
}

fn usage(msg: impl Into<String>) -> anyhow::Error {
    ClientError::Usage(msg.into()).into()
}

/// The storage named on the command line, else the profile's. Only `backup` may create
/// it; reading commands need it to exist.
fn storage(config: &Config, arg: Option<String>, create: bool) -> Result<Storage> {
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

fn cipher(config: &Config) -> Result<Cipher> {
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
async fn obtain_key(profile: &Profile, source: KeySource) -> Result<BackupKey> {
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

pub fn enable(
    out: &Output,
    profile: &Profile,
    storage_arg: Option<String>,
    cipher_arg: Option<String>,
) -> Result<()> {
    let mut config = profile.load_config()?;
    if profile.has_key() {
        return Err(usage(format!(
            "encrypted backups are already enabled in {}; run `coffer disable` first to start over with a new key",
            profile.dir().display()
        )));
    }
    if let Some(name) = &cipher_arg {
        Cipher::from_name(name).ok_or_else(|| {
            usage(format!(
                "unknown cipher {name:?}; use aes-256-gcm or chacha20-poly1305"
            ))
        })?;
        config.cipher = cipher_arg;
    }
    if let Some(s) = &storage_arg {
        config.storage = Some(StorageUrl::parse(s)?.display());
    }
    let key = BackupKey::generate()?;
    profile.save_key(&key)?;
    config.mode = Some(Mode::Key);
    profile.save_config(&config)?;
    let shown = key.to_display();
    out.json(json!({"ok": true, "mode": "key", "key": shown.as_str(), "key_id": key.id().to_string(), "profile": profile.dir()}));
    out.say("Encrypted backups are on. Your 64-digit backup key:");
    out.say("");
    out.say(format!("    {}", shown.as_str()));
    out.say("");
    out.say("Write it down and keep it safe. Without it your backups cannot be restored, and nobody can reset it.");
    out.say(format!("Key id (safe to share): {}", key.id()));
    Ok(())
}

pub async fn backup(
    out: &Output,
    profile: &Profile,
    paths: &[PathBuf],
    to: Option<String>,
) -> Result<()> {
    let mut config = profile.load_config()?;
    let key = profile.load_key()?;
    let storage = storage(&config, to, true)?;
    let options = BackupOptions {
        cipher: cipher(&config)?,
        compression_level: config.compression_level.unwrap_or(1),
    };
    let started = std::time::Instant::now();
    let report = coffer_client::backup(&storage, &key, paths, options, out.progress()).await?;
    let secs = started.elapsed().as_secs_f64();
    config.last_backup = Some(LastBackup {
        id: report.id.clone(),
        stored_bytes: report.stored_bytes,
        storage: storage.url().display(),
    });
    profile.save_config(&config)?;
    out.json(
        json!({"ok": true, "backup": report, "storage": storage.url().display(), "seconds": secs}),
    );
    let c = &report.contents;
    out.say(format!(
        "Backed up {} files, {} folders, {} symlinks ({}) as {} ({} stored, {}) in {:.1} s.",
        c.files,
        c.directories,
        c.symlinks,
        human_bytes(c.bytes),
        report.id,
        human_bytes(report.stored_bytes),
        report.cipher,
        secs
    ));
    if c.skipped > 0 {
        out.say(format!("Skipped {} sockets, FIFOs or devices.", c.skipped));
    }
    Ok(())
}

/// The key id recorded in a stored backup's header, if readable.
async fn key_id_of(storage: &Storage, b: &StoredBackup) -> Option<String> {
    let head = storage.read_range(b, 0, HEADER_LEN as u64).await.ok()?;
    coffer_format::read_header_info(&head[..])
        .ok()
        .map(|h| h.key_id.to_string())
}

pub async fn list(out: &Output, profile: &Profile, from: Option<String>) -> Result<()> {
    let config = profile.load_config()?;
    let storage = storage(&config, from, false)?;
    let backups = storage.list().await?;
    // Marks the backups this device's key opens (key mode only; none in password mode).
    let own_key_id = profile
        .has_key()
        .then(|| profile.load_key().ok())
        .flatten()
        .map(|k| k.id().to_string());
    let mut rows = Vec::new();
    for b in &backups {
        let key_id = key_id_of(&storage, b).await;
        let this_key = key_id.is_some() && key_id == own_key_id;
        rows.push(json!({
            "id": b.id,
            "time": humantime::format_rfc3339_millis(b.created).to_string(),
            "size": b.size,
            "key_id": key_id,
            "this_device_key": this_key,
            "segments": b.segments.as_ref().map(Vec::len),
        }));
    }
    out.json(json!({"ok": true, "storage": storage.url().display(), "backups": rows}));
    if backups.is_empty() {
        out.say(format!("No backups in {}.", storage.url().display()));
        return Ok(());
    }
    out.say(format!(
        "{:<29} {:<21} {:>10}  {}",
        "ID", "TIME (UTC)", "SIZE", "KEY FINGERPRINT"
    ));
    for (b, row) in backups.iter().zip(&rows) {
        let mine = if row["this_device_key"] == true {
            "  (this device's key)"
        } else {
            ""
        };
        out.say(format!(
            "{:<29} {:<21} {:>10}  {}{mine}",
            b.id,
            humantime::format_rfc3339_seconds(b.created).to_string(),
            human_bytes(b.size),
            row["key_id"].as_str().unwrap_or("(unreadable)")
        ));
    }
    Ok(())
}

pub async fn prune(
    out: &Output,
    profile: &Profile,
    from: Option<String>,
    policy: PrunePolicy,
    dry_run: bool,
) -> Result<()> {
    let config = profile.load_config()?;
    let storage = storage(&config, from, false)?;
    let backups = storage.list().await?;
    let doomed = plan_prune(&backups, policy, std::time::SystemTime::now());
    let verb = if dry_run { "Would delete" } else { "Deleted" };
    let mut removed = Vec::new();
    for b in &doomed {
        if !dry_run {
            storage.delete(b).await?;
        }
        removed.push(b.id.clone());
        out.say(format!(
            "{verb} {} ({}, {}).",
            b.id,
            humantime::format_rfc3339_seconds(b.created),
            human_bytes(b.size)
        ));
    }
    let stale = if dry_run {
        0
    } else {
        storage
            .remove_stale_uploads(coffer_client::pipeline::STALE_UPLOAD_AGE)
            .await?
    };
    let kept: Vec<&str> = backups
        .iter()
        .filter(|b| !removed.contains(&b.id))
        .map(|b| b.id.as_str())
        .collect();
    out.json(json!({
        "ok": true,
        "dry_run": dry_run,
        "removed": removed,
        "kept": kept,
        "stale_uploads_removed": stale,
    }));
    out.say(format!(
        "{} {} of {} backups; {} kept{}.",
        verb,
        removed.len(),
        backups.len(),
        kept.len(),
        if stale > 0 {
            format!("; removed {stale} abandoned uploads")
        } else {
            String::new()
        }
    ));
    Ok(())
}

pub async fn verify(
    out: &Output,
    profile: &Profile,
    from: Option<String>,
    id: Option<String>,
    source: KeySource,
) -> Result<()> {
    let config = profile.load_config()?;
    let storage = storage(&config, from, false)?;
    let key = obtain_key(profile, source).await?;
    let report = coffer_client::verify(&storage, &key, id.as_deref(), out.progress()).await?;
    out.json(json!({"ok": true, "verified": report}));
    let c = &report.contents;
    out.say(format!(
        "Backup {} is intact: {} stored bytes authenticated; {} files, {} folders, {} symlinks ({}).",
        report.id,
        report.stored_bytes,
        c.files,
        c.directories,
        c.symlinks,
        human_bytes(c.bytes)
    ));
    Ok(())
}

pub async fn restore(
    out: &Output,
    profile: &Profile,
    from: Option<String>,
    id: Option<String>,
    source: KeySource,
    into: &Path,
) -> Result<()> {
    let mut config = profile.load_config()?;
    let storage = storage(&config, from, false)?;
    let key = obtain_key(profile, source).await?;
    let report =
        coffer_client::restore(&storage, &key, id.as_deref(), into, out.progress()).await?;
    // A new device restoring with its key carries on backing up with the same key.
    let adopted = !profile.has_key();
    if adopted {
        profile.save_key(&key)?;
        config = profile.load_config()?;
        config.mode = Some(
            if source == KeySource::PasswordStdin || config.server.is_some() {
                Mode::Password
            } else {
                Mode::Key
            },
        );
        config
            .storage
            .get_or_insert_with(|| storage.url().display());
        profile.save_config(&config)?;
    }
    out.json(json!({"ok": true, "restored": report, "into": into, "profile_enabled": adopted}));
    let c = &report.contents;
    out.say(format!(
        "Restored backup {} into {}: {} files, {} folders, {} symlinks ({}).",
        report.id,
        into.display(),
        c.files,
        c.directories,
        c.symlinks,
        human_bytes(c.bytes)
    ));
    if adopted {
        out.say("This profile now makes its backups with the same key.");
    }
    Ok(())
}

pub async fn decrypt(
    out: &Output,
    profile: &Profile,
    from: Option<String>,
    id: Option<String>,
    source: KeySource,
    output: &Path,
) -> Result<()> {
    let config = profile.load_config()?;
    let storage = storage(&config, from, false)?;
    let key = obtain_key(profile, source).await?;
    let b = coffer_client::export_payload(&storage, &key, id.as_deref(), output).await?;
    out.json(json!({"ok": true, "id": b.id, "output": output}));
    out.say(format!(
        "Wrote the authenticated payload of {} (zstd-compressed tar) to {}.",
        b.id,
        output.display()
    ));
    Ok(())
}

pub async fn status(out: &Output, profile: &Profile) -> Result<()> {
    let config = profile.load_config()?;
    let enabled = profile.has_key();
    let key_id = if enabled {
        Some(profile.load_key()?.id().to_string())
    } else {
        None
    };
    let stored = match (&config.storage, enabled) {
        // Status reports on the storage; it does not fail because of it.
        (Some(_), true) => Some(match storage(&config, None, false) {
            Ok(s) => s.list().await.map(|v| v.len()).map_err(anyhow::Error::from),
            Err(e) => Err(e),
        }),
        _ => None,
    };
    let count = stored.as_ref().and_then(|r| r.as_ref().ok().copied());
    let vault = if enabled && config.mode == Some(Mode::Password) {
        Some(crate::password_cmds::vault_status(profile).await)
    } else {
        None
    };
    let vault_json = match &vault {
        Some(Ok(coffer_vault_core::Response::Status {
            locked,
            guesses_left,
            max_guesses,
        })) => json!({"locked": locked, "guesses_left": guesses_left, "max_guesses": max_guesses}),
        _ => serde_json::Value::Null,
    };
    out.json(json!({
        "ok": true,
        "profile": profile.dir(),
        "enabled": enabled,
        "mode": config.mode,
        "key_id": key_id,
        "storage": config.storage,
        "backups_stored": count,
        "last_backup": config.last_backup,
        "vault": vault_json,
    }));
    out.say(format!("Profile:     {}", profile.dir().display()));
    if !enabled {
        out.say("Encrypted backups: off (run `coffer enable --key`)");
        return Ok(());
    }
    if let Some(vault) = &vault {
        let text = match vault {
            Ok(coffer_vault_core::Response::Status {
                locked: false,
                guesses_left,
                max_guesses,
            }) => format!("{guesses_left} of {max_guesses} password guesses left"),
            Ok(coffer_vault_core::Response::Status { locked: true, .. }) => {
                "LOCKED: too many wrong passwords, the vault erased the key".to_string()
            }
            Ok(other) => format!("{other:?}"),
            Err(e) => format!("vault unreachable ({e})"),
        };
        out.say("Encrypted backups: on, protected by a password (Backup Key Vault)");
        out.say(format!("Vault:       {text}"));
    } else {
        out.say("Encrypted backups: on, protected by a 64-digit key");
    }
    out.say(format!("Key id:      {}", key_id.unwrap_or_default()));
    out.say(format!(
        "Storage:     {}",
        config.storage.as_deref().unwrap_or("(none set; pass --to)")
    ));
    match stored {
        Some(Ok(n)) => out.say(format!("Stored:      {n} backups")),
        Some(Err(e)) => out.say(format!("Stored:      unknown ({e})")),
        None => {}
    }
    match &config.last_backup {
        Some(b) => out.say(format!(
            "Last backup: {} ({}, in {})",
            b.id,
            human_bytes(b.stored_bytes),
            b.storage
        )),
        None => out.say("Last backup: none yet"),
    }
    Ok(())
}

pub async fn disable(out: &Output, profile: &Profile, yes: bool) -> Result<()> {
    if !profile.has_key() {
        return Err(usage("encrypted backups are not enabled in this profile"));
    }
    let mut config = profile.load_config()?;
    let password_mode = config.mode == Some(Mode::Password);
    if !yes {
        return Err(usage(if password_mode {
            "this deletes the key from this device and from the vault; stored backups become unrestorable. Pass --yes to confirm"
        } else {
            "this deletes the key from this device; backups stay restorable only with the key you wrote down. Pass --yes to confirm"
        }));
    }
    if password_mode {
        // The vault record goes first: a device that forgot K could no longer prove the
        // right to delete it.
        crate::password_cmds::delete_record(profile, &profile.load_key()?).await?;
    }
    profile.remove_key()?;
    config.mode = None;
    profile.save_config(&config)?;
    out.json(json!({"ok": true, "enabled": false}));
    out.say("Encrypted backups are off and the key is deleted from this device. Stored backups were left in place.");
    Ok(())
}

pub fn vault_init(out: &Output, dir: &Path, max_guesses: u16, tls_names: &[String]) -> Result<()> {
    let info = coffer_vault_node::init(dir, max_guesses, tls_names).map_err(|e| {
        usage(format!(
            "cannot create a vault node in {}: {e}",
            dir.display()
        ))
    })?;
    out.json(json!({
        "ok": true,
        "data": dir,
        "fleet_fingerprint": info.fleet_fingerprint,
        "tls_fingerprint": info.tls_fingerprint,
        "frontend_token_file": info.frontend_token,
        "max_guesses": max_guesses,
    }));
    out.say(format!("Vault node created in {}.", dir.display()));
    out.say(format!(
        "Fleet key fingerprint (clients pin this): {}",
        info.fleet_fingerprint
    ));
    out.say(format!(
        "TLS certificate fingerprint (front-ends pin this): {}",
        info.tls_fingerprint
    ));
    out.say(format!(
        "Front-end token: {}",
        info.frontend_token.display()
    ));
    Ok(())
}

pub async fn vault_serve(out: &Output, dir: &Path, listen: std::net::SocketAddr) -> Result<()> {
    let node = coffer_vault_node::VaultNode::open(dir).map_err(|e| {
        usage(format!(
            "cannot open the vault node in {}: {e}",
            dir.display()
        ))
    })?;
    let fingerprint = node.fleet().fingerprint();
    drop(node);
    let json = out.json;
    coffer_vault_node::server::serve(dir, listen, move |addr| {
        if json {
            println!(
                "{}",
                json!({"listening": addr.to_string(), "fleet_fingerprint": fingerprint})
            );
        } else {
            println!("vault node listening on https://{addr} (fleet key {fingerprint})");
        }
    })
    .await
    .map_err(|e| anyhow::anyhow!("the vault node stopped: {e}"))
}
