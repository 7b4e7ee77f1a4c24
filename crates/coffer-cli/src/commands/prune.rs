//! `prune`: thinning out backups, deleting only what verifies under this device's key, and
//! nothing unless what stays is sound.

use anyhow::Result;
use coffer_client::catalog;
use coffer_client::profile::LastBackup;
use coffer_client::storage::{plan_prune, PrunePolicy};
use coffer_client::{Profile, Storage, StoredBackup};
use coffer_format::BackupKey;
use serde_json::json;

use super::backups::{last_backup_warning, own_key};
use super::{storage, usage};
use crate::output::{human_bytes, Output};

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
