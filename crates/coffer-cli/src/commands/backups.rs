//! The backup verbs: enable (key mode), backup, list, prune, verify, restore, decrypt.

use std::path::{Path, PathBuf};

use anyhow::Result;
use coffer_client::catalog::{self, Entry, PassedOver, Standing};
use coffer_client::profile::LastBackup;
use coffer_client::storage::{plan_prune, PrunePolicy};
use coffer_client::{BackupOptions, Config, Mode, Profile, Storage, StorageUrl, StoredBackup};
use coffer_format::{BackupKey, Cipher};
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
    if !report.warnings.is_empty() {
        if !out.json {
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            eprintln!(
                "warning: {} files changed while they were read; backup {} holds them as they were read; run the backup again for a still copy (exit code {})",
                report.warnings.len(),
                report.id,
                crate::exit::SOURCES_CHANGED
            );
        }
        return Err(crate::exit::SourcesChanged {
            count: report.warnings.len(),
        }
        .into());
    }
    Ok(())
}

/// This profile's key, if it has one.
fn own_key(profile: &Profile) -> Result<Option<BackupKey>> {
    Ok(if profile.has_key() {
        Some(profile.load_key()?)
    } else {
        None
    })
}

/// The warning when `entries` (a whole listing) do not show this device's last backup as
/// its own.
fn last_backup_warning(config: &Config, storage: &Storage, entries: &[Entry]) -> Option<String> {
    let last = config.last_backup.as_ref()?;
    let found = entries.iter().find(|e| e.backup.id == last.id);
    catalog::last_backup_warning(last, &storage.url().display(), found)
}

/// The warnings after backup `chosen` was read: what was passed over to find it, and a
/// rollback (it is older than the last backup this device made).
fn choice_warnings(
    config: &Config,
    storage: &Storage,
    chosen: &str,
    passed_over: &[PassedOver],
    passed_over_more: usize,
) -> Vec<String> {
    let mut out: Vec<String> = passed_over
        .iter()
        .map(|p| passed_over_warning(p, chosen))
        .collect();
    if passed_over_more > 0 {
        out.push(format!(
            "passed over {passed_over_more} more backups named as newer than {chosen}, which do not verify either"
        ));
    }
    if let Some(last) = &config.last_backup {
        out.extend(catalog::last_backup_warning_for_choice(
            last,
            &storage.url().display(),
            chosen,
            passed_over,
        ));
    }
    out
}

fn passed_over_warning(p: &PassedOver, chosen: &str) -> String {
    format!(
        "passed over {}, which is named as newer than {chosen}: {}",
        p.id, p.reason
    )
}

fn status_name(standing: &Standing) -> &'static str {
    match standing {
        Standing::Ours => "ours",
        Standing::OtherKey { .. } => "other_key",
        Standing::Damaged(_) => "damaged",
        Standing::Unchecked => "unchecked",
    }
}

pub async fn list(out: &Output, profile: &Profile, from: Option<String>) -> Result<()> {
    let config = profile.load_config()?;
    let storage = storage(&config, from, false)?;
    // Each header is checked under this device's key against the name it is stored as:
    // only what passes is marked as this device's.
    let key = own_key(profile)?;
    let entries = catalog::survey(&storage, key.as_ref()).await?;
    let warnings: Vec<String> = last_backup_warning(&config, &storage, &entries)
        .into_iter()
        .collect();
    let rows: Vec<_> = entries
        .iter()
        .map(|e| {
            let b = &e.backup;
            json!({
                "id": b.id,
                "time": humantime::format_rfc3339_millis(b.created).to_string(),
                "size": b.size,
                "key_id": e.key_id.map(|k| k.to_string()),
                "this_device_key": e.is_ours(),
                "status": status_name(&e.standing),
                "problem": e.problem(),
                "segments": b.segments.map(|s| s.count()),
            })
        })
        .collect();
    out.json(
        json!({"ok": true, "storage": storage.url().display(), "checked": key.is_some(),
                    "backups": rows, "warnings": warnings}),
    );
    for w in &warnings {
        out.warn(w);
    }
    if entries.is_empty() {
        out.say(format!("No backups in {}.", storage.url().display()));
        return Ok(());
    }
    out.say(format!(
        "{:<29} {:<21} {:>10}  {}",
        "ID", "TIME (UTC)", "SIZE", "KEY FINGERPRINT"
    ));
    for e in &entries {
        let b = &e.backup;
        let mark = match &e.standing {
            Standing::Ours => "  (this device's key)".to_string(),
            Standing::Damaged(_) => format!("  damaged: {}", e.problem().unwrap_or_default()),
            Standing::OtherKey { .. } | Standing::Unchecked => String::new(),
        };
        let fingerprint = e
            .key_id
            .map_or("(unreadable)".to_string(), |k| k.to_string());
        out.say(format!(
            "{:<29} {:<21} {:>10}  {fingerprint}{mark}",
            b.id,
            humantime::format_rfc3339_seconds(b.created).to_string(),
            human_bytes(b.size),
        ));
    }
    if key.is_none() {
        out.say(
            "This profile has no key, so nothing above is checked: each fingerprint is what \
             its header claims, and the marks for your own backups and damaged ones need the \
             key.",
        );
    }
    Ok(())
}

pub async fn prune(
    out: &Output,
    profile: &Profile,
    from: Option<String>,
    policy: PrunePolicy,
    dry_run: bool,
    force: bool,
) -> Result<()> {
    let mut config = profile.load_config()?;
    let storage = storage(&config, from, false)?;
    let key = own_key(profile)?.ok_or_else(|| {
        usage("prune deletes only backups that verify under this device's key, and this profile has none; run it where the backups were made, or restore first")
    })?;
    // Only backups whose headers verify under the key are counted or deleted: a renamed
    // copy or another key's backup must never push a real one out.
    let entries = catalog::survey(&storage, Some(&key)).await?;
    let warnings: Vec<String> = last_backup_warning(&config, &storage, &entries)
        .into_iter()
        .collect();
    for w in &warnings {
        out.warn(w);
    }
    let ours: Vec<StoredBackup> = entries
        .iter()
        .filter(|e| e.is_ours())
        .map(|e| e.backup.clone())
        .collect();
    let doomed = plan_prune(&ours, policy, std::time::SystemTime::now());
    if !dry_run && !doomed.is_empty() {
        check_before_deleting(out, &storage, &key, &ours, &doomed, &warnings, force).await?;
    }
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
    let mut left_alone = Vec::new();
    for e in entries.iter().filter(|e| !e.is_ours()) {
        let reason = e.problem().unwrap_or_default();
        out.say(format!("Left alone {}: {reason}.", e.backup.id));
        left_alone.push(json!({"id": e.backup.id, "reason": reason}));
    }
    let stale = if dry_run {
        0
    } else {
        storage
            .remove_stale_uploads(coffer_client::pipeline::STALE_UPLOAD_AGE)
            .await?
    };
    let kept: Vec<&StoredBackup> = ours.iter().filter(|b| !removed.contains(&b.id)).collect();
    // A last backup this device deleted itself must not later look hidden: the newest kept
    // one (verified, and at least as new) takes its place.
    let deleted_last = config
        .last_backup
        .as_ref()
        .is_some_and(|l| removed.contains(&l.id));
    if deleted_last {
        if let Some(newest) = kept.last() {
            config.last_backup = Some(LastBackup {
                id: newest.id.clone(),
                stored_bytes: newest.size,
                storage: storage.url().display(),
            });
            profile.save_config(&config)?;
        }
    }
    let kept: Vec<&str> = kept.iter().map(|b| b.id.as_str()).collect();
    out.json(json!({
        "ok": true,
        "dry_run": dry_run,
        "removed": removed,
        "kept": kept,
        "left_alone": left_alone,
        "stale_uploads_removed": stale,
        "warnings": warnings,
    }));
    out.say(format!(
        "{} {} of {} backups made with this key; {} kept{}{}.",
        verb,
        removed.len(),
        ours.len(),
        kept.len(),
        if left_alone.is_empty() {
            String::new()
        } else {
            format!(
                "; {} left alone (another key's, or damaged)",
                left_alone.len()
            )
        },
        if stale > 0 {
            format!("; removed {stale} abandoned uploads")
        } else {
            String::new()
        }
    ));
    Ok(())
}

/// What must hold before `prune` deletes anything: storage shows this device's last backup
/// (or `--force`), and the newest backup kept reads whole under the key. Headers alone say
/// a backup is ours, not that its body is intact, and a backup damaged past its header must
/// not be the one left when the good ones are gone.
async fn check_before_deleting(
    out: &Output,
    storage: &Storage,
    key: &BackupKey,
    ours: &[StoredBackup],
    doomed: &[&StoredBackup],
    warnings: &[String],
    force: bool,
) -> Result<()> {
    if !warnings.is_empty() && !force {
        return Err(usage(
            "prune deleted nothing: storage does not show the last backup this device made (see the warning above), so it may be hiding newer backups; check the storage, or run prune again with --force to delete anyway",
        ));
    }
    let Some(newest) = ours
        .iter()
        .rev()
        .find(|b| !doomed.iter().any(|d| d.id == b.id))
    else {
        return Ok(());
    };
    out.say(format!(
        "Verifying {}, the newest backup kept, before deleting anything…",
        newest.id
    ));
    if let Err(e) = coffer_client::verify(storage, key, Some(&newest.id), out.progress()).await {
        out.warn(format!(
            "prune deleted nothing: {}, the newest backup it would keep, does not read whole under this key",
            newest.id
        ));
        return Err(e.into());
    }
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
    let warnings = choice_warnings(
        &config,
        &storage,
        &report.id,
        &report.passed_over,
        report.passed_over_more,
    );
    for w in &warnings {
        out.warn(w);
    }
    out.json(json!({"ok": true, "verified": report, "warnings": warnings}));
    let c = &report.contents;
    out.say(format!(
        "Backup {} (made {}) is intact: {} stored bytes authenticated; {} files, {} folders, {} symlinks ({}).",
        report.id,
        report.created,
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
    let warnings = choice_warnings(
        &config,
        &storage,
        &report.id,
        &report.passed_over,
        report.passed_over_more,
    );
    for w in &warnings {
        out.warn(w);
    }
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
    out.json(
        json!({"ok": true, "restored": report, "into": into, "profile_enabled": adopted,
                    "warnings": warnings}),
    );
    let c = &report.contents;
    out.say(format!(
        "Restored backup {} (made {}) into {}: {} files, {} folders, {} symlinks ({}).",
        report.id,
        report.created,
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
    let choice = coffer_client::export_payload(&storage, &key, id.as_deref(), output).await?;
    let warnings = choice_warnings(
        &config,
        &storage,
        &choice.backup.id,
        &choice.passed_over,
        choice.passed_over_more,
    );
    for w in &warnings {
        out.warn(w);
    }
    let b = &choice.backup;
    out.json(json!({"ok": true, "id": b.id, "output": output, "warnings": warnings}));
    out.say(format!(
        "Wrote the authenticated payload of {} (made {}) (zstd-compressed tar) to {}.",
        b.id,
        humantime::format_rfc3339_seconds(b.created),
        output.display()
    ));
    Ok(())
}
