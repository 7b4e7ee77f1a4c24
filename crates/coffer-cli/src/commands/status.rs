//! `status` and `disable`.

use anyhow::Result;
use coffer_client::{catalog, Mode, Profile, VaultStatus};
use serde_json::json;

use super::{storage, usage};
use crate::output::{human_bytes, Output};

pub async fn status(out: &Output, profile: &Profile) -> Result<()> {
    let config = profile.load_config()?;
    let enabled = profile.has_key();
    let key = if enabled {
        Some(profile.load_key()?)
    } else {
        None
    };
    let key_id = key.as_ref().map(|k| k.id().to_string());
    let listed = match (&config.storage, &key) {
        // Status reports on the storage; it does not fail because of it.
        (Some(_), Some(_)) => Some(match storage(&config, None, false) {
            Ok(s) => s.list().await.map(|v| (s, v)).map_err(anyhow::Error::from),
            Err(e) => Err(e),
        }),
        _ => None,
    };
    // Whether storage still shows this device's last backup, as its own: one header read.
    let mut warnings = Vec::new();
    if let (Some(Ok((s, v))), Some(last), Some(key)) = (&listed, &config.last_backup, &key) {
        match catalog::check_last_backup(s, key, v, last).await {
            Ok(w) => warnings.extend(w),
            Err(e) => warnings.push(format!(
                "could not check that storage still holds the last backup {}: {e}",
                last.id
            )),
        }
    }
    let stored = listed.map(|r| r.map(|(_, v)| v.len()));
    let count = stored.as_ref().and_then(|r| r.as_ref().ok().copied());
    let vault = match &key {
        Some(key) if config.mode == Some(Mode::Password) => {
            Some(crate::password_cmds::vault_status(profile, key).await)
        }
        _ => None,
    };
    let vault_json = match &vault {
        Some(Ok((
            VaultStatus::Live {
                guesses_left,
                max_guesses,
            },
            holds,
        ))) => json!({"locked": false, "guesses_left": guesses_left, "max_guesses": max_guesses,
                      "holds_this_key": holds}),
        Some(Ok((VaultStatus::Locked { max_guesses }, _))) => {
            json!({"locked": true, "guesses_left": 0, "max_guesses": max_guesses})
        }
        Some(Ok((VaultStatus::Missing, _))) => json!({"missing": true}),
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
        "warnings": warnings,
    }));
    for w in &warnings {
        out.warn(w);
    }
    out.say(format!("Profile:     {}", profile.dir().display()));
    if !enabled {
        out.say("Encrypted backups: off (run `coffer enable --key`)");
        return Ok(());
    }
    if let Some(vault) = &vault {
        let text = match vault {
            Ok((
                VaultStatus::Live {
                    guesses_left,
                    max_guesses,
                },
                Some(false),
            )) => format!(
                "WARNING: the vault's record for this account ({guesses_left} of {max_guesses} guesses left) does not hold this device's key: someone who took over the account may have registered over it. This device's key still reads its backups, but the vault cannot give it back: keep a copy of the key file"
            ),
            Ok((
                VaultStatus::Live {
                    guesses_left,
                    max_guesses,
                },
                _,
            )) => format!("{guesses_left} of {max_guesses} password guesses left; the record holds this device's key"),
            Ok((VaultStatus::Locked { .. }, _)) => {
                "LOCKED: too many wrong passwords, the vault erased the key".to_string()
            }
            Ok((VaultStatus::Missing, _)) => {
                "the vault holds no key for this account (deleted?)".to_string()
            }
            Err(e) => format!("unknown ({e})"),
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
