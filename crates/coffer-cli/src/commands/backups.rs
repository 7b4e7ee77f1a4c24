//! The backup verbs: enable (key mode), backup, list, prune, verify, restore, decrypt.

use std::path::{Path, PathBuf};

use anyhow::Result;
use coffer_client::profile::LastBackup;
use coffer_client::storage::{plan_prune, PrunePolicy};
use coffer_client::{BackupOptions, Mode, Profile, Storage, StorageUrl, StoredBackup};
use coffer_format::{BackupKey, Cipher, HEADER_LEN};
use serde_json::json;

use super::{cipher, obtain_key, storage, usage, KeySource};
use crate::output::{human_bytes, Output};

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
            "segments": b.segments.map(|s| s.count()),
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
