//! The backup verbs: enable (key mode), backup, list, prune, verify, restore, decrypt.

use std::path::{Path, PathBuf};

use anyhow::Result;
use coffer_client::catalog::{self, Entry, PassedOver, Standing};
use coffer_client::profile::LastBackup;
use coffer_client::{BackupOptions, Config, Mode, Profile, Storage, StorageUrl};
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
pub(super) fn own_key(profile: &Profile) -> Result<Option<BackupKey>> {
    Ok(if profile.has_key() {
        Some(profile.load_key()?)
    } else {
        None
    })
}

/// The warning when `entries` (a whole listing) do not show this device's last backup as
/// its own.
pub(super) fn last_backup_warning(
    config: &Config,
    storage: &Storage,
    entries: &[Entry],
) -> Option<String> {
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
