//! The verbs of password mode: accounts, enabling with a password, recovering K, changing
//! the password, deleting the vault record. All vault work goes through the
//! `coffer-client` facade; this file only gathers input and reports.

use std::io::{IsTerminal, Read};

use anyhow::{Context, Result};
use coffer_client::frontend_http::{check_https, Frontend, FrontendVault};
use coffer_client::password::{self, is_fleet_fingerprint, policy, KsfParams};
use coffer_client::{ClientError, Config, Mode, PasswordVault, Profile, Server, VaultStatus};
use coffer_format::BackupKey;
use serde_json::json;
use zeroize::Zeroizing;

use crate::output::Output;

fn usage(msg: impl Into<String>) -> anyhow::Error {
    ClientError::Usage(msg.into()).into()
}

fn server(config: &Config) -> Result<&Server> {
    config.server.as_ref().ok_or_else(|| {
        usage("this profile has no account; run `coffer account register --server URL --server-fingerprint FP --fleet-fingerprint FP --id ID`")
    })
}

fn frontend(server: &Server) -> Result<Frontend> {
    Ok(Frontend::new(&server.url, &server.tls_fingerprints)?)
}

/// This profile's vault record, through its front-end.
fn vault<'a>(
    fe: &'a Frontend,
    server: &Server,
    credential: &str,
) -> Result<PasswordVault<FrontendVault<'a>>> {
    Ok(PasswordVault::new(
        fe.vault(credential),
        &server.account,
        server.fleet()?,
    ))
}

fn ksf(memory_kib: Option<u32>) -> KsfParams {
    KsfParams {
        m_cost_kib: memory_kib.unwrap_or(KsfParams::DEFAULT.m_cost_kib),
        ..KsfParams::DEFAULT
    }
}

/// The password from standard input (its first line) or, on a terminal, a hidden prompt
/// (twice for a new one). A new password must pass the one policy whichever way it came.
pub fn read_password(from_stdin: bool, new: bool) -> Result<Zeroizing<String>> {
    let password = if from_stdin {
        let mut raw = Zeroizing::new(Vec::new());
        // A bounded read: a password is at most policy::MAX_BYTES, plus its line break.
        std::io::stdin()
            .take(policy::MAX_BYTES as u64 + 3)
            .read_to_end(&mut raw)
            .context("cannot read the password from standard input")?;
        let text = std::str::from_utf8(&raw)
            .map_err(|_| usage("the password on standard input is not UTF-8"))?;
        let line = text.split('\n').next().unwrap_or("");
        Zeroizing::new(line.strip_suffix('\r').unwrap_or(line).to_string())
    } else {
        if !std::io::stdin().is_terminal() {
            return Err(usage(
                "no terminal to ask for the password; pass --password-stdin",
            ));
        }
        let first = Zeroizing::new(crate::prompt::hidden(if new {
            "New password: "
        } else {
            "Password: "
        })?);
        let first = Zeroizing::new(first.trim_end_matches(['\r', '\n']).to_string());
        if new {
            policy::check_new(&first)?;
            let again = Zeroizing::new(crate::prompt::hidden("New password again: ")?);
            if again.trim_end_matches(['\r', '\n']) != first.as_str() {
                return Err(usage("the two passwords differ"));
            }
        }
        first
    };
    if new {
        policy::check_new(&password)?;
    } else {
        policy::check_any(&password)?;
    }
    Ok(password)
}

/// How `account register` learns which vault fleet to trust.
pub enum FleetPin {
    /// From the operator, through a flag (or kept in the profile for this server).
    Given(Option<String>),
    /// Whatever the front-end shows: for development only, with a loud warning.
    TrustFrontend,
}

pub async fn account_register(
    out: &Output,
    profile: &Profile,
    url: &str,
    tls_fingerprints: Vec<String>,
    id: &str,
    fleet: FleetPin,
) -> Result<()> {
    check_https(url)?;
    if let Some(bad) = tls_fingerprints
        .iter()
        .find(|f| !coffer_tls::is_fingerprint(f))
    {
        return Err(usage(format!(
            "--server-fingerprint {bad:?} is not a certificate fingerprint (64 hex digits)"
        )));
    }
    let mut config = profile.load_config()?;
    let kept = config
        .server
        .as_ref()
        .filter(|s| s.url == url)
        .map(|s| s.fleet_fingerprint.clone());
    // The pin is settled before anything is sent: no code goes out for a profile that
    // would not know which vault to trust.
    let pin = match fleet {
        FleetPin::Given(flag) => {
            let pin = flag.or(kept).ok_or_else(|| {
                usage("pass --fleet-fingerprint HEX: the vault fleet's fingerprint as its operator printed it (`coffer vault init`, `coffer serve`), from a channel other than this server")
            })?;
            if !is_fleet_fingerprint(&pin) {
                return Err(usage(format!(
                    "--fleet-fingerprint {pin:?} is not a fleet fingerprint (64 hex digits)"
                )));
            }
            Some(pin)
        }
        FleetPin::TrustFrontend => None,
    };
    let fe = Frontend::new(url, &tls_fingerprints)?;
    let shown = fe.fleet_keys().await?;
    let keys = match pin {
        Some(pin) => password::pin_fleet(shown, &pin)?,
        None => {
            eprintln!(
                "WARNING: trusting the vault fleet this server shows ({}) without checking it. \
                 A malicious server could substitute its own vault and attack your password \
                 offline. Use this for development only; otherwise pass --fleet-fingerprint.",
                shown.fingerprint()
            );
            shown
        }
    };
    fe.register_account(id).await?;
    config.server = Some(Server {
        url: url.to_string(),
        tls_fingerprints: tls_fingerprints
            .iter()
            .map(|f| f.to_ascii_lowercase())
            .collect(),
        account: id.to_string(),
        fleet_fingerprint: keys.fingerprint(),
        fleet_keys: keys,
    });
    profile.save_config(&config)?;
    out.json(json!({"ok": true, "account": id, "code_sent": true}));
    out.say(format!(
        "A verification code was sent for {id}. Run `coffer account verify CODE`."
    ));
    Ok(())
}

pub async fn account_verify(out: &Output, profile: &Profile, code: &str) -> Result<()> {
    let config = profile.load_config()?;
    let s = server(&config)?;
    let credential = frontend(s)?.verify_account(&s.account, code).await?;
    profile.save_credential(&credential)?;
    out.json(json!({"ok": true, "account": s.account}));
    out.say(format!(
        "Account {} verified on this device; other devices were signed out.",
        s.account
    ));
    Ok(())
}

/// `account pin-certificate`: accept another front-end certificate (the next one, during a
/// rotation), or, with `only`, that one alone (once the rotation is done).
pub fn pin_certificate(
    out: &Output,
    profile: &Profile,
    fingerprint: &str,
    only: bool,
) -> Result<()> {
    if !coffer_tls::is_fingerprint(fingerprint) {
        return Err(usage(format!(
            "{fingerprint:?} is not a certificate fingerprint (64 hex digits)"
        )));
    }
    let mut config = profile.load_config()?;
    let s = config
        .server
        .as_mut()
        .ok_or_else(|| usage("this profile has no account; run `coffer account register` first"))?;
    let fp = fingerprint.to_ascii_lowercase();
    if only {
        s.tls_fingerprints = vec![fp];
    } else if !s.tls_fingerprints.contains(&fp) {
        s.tls_fingerprints.push(fp);
    }
    let pinned = s.tls_fingerprints.clone();
    profile.save_config(&config)?;
    out.json(json!({"ok": true, "tls_fingerprints": pinned}));
    out.say(format!("Pinned server certificates: {}", pinned.join(", ")));
    Ok(())
}

/// `enable --password`: deposits a new K behind the password, checked by a recovery.
pub async fn enable(
    out: &Output,
    profile: &Profile,
    password_stdin: bool,
    ksf_memory_kib: Option<u32>,
    storage: Option<String>,
) -> Result<()> {
    let mut config = profile.load_config()?;
    if profile.has_key() {
        return Err(usage(
            "encrypted backups are already enabled; run `coffer disable --yes` first",
        ));
    }
    let s = server(&config)?.clone();
    let credential = profile.load_credential()?;
    let pw = read_password(password_stdin, true)?;
    let storage = storage
        .map(|st| coffer_client::StorageUrl::parse(&st).map(|u| u.display()))
        .transpose()?;
    // The same K on a retry: an attempt whose answer was lost may have deposited it.
    let key = profile.pending_key()?;
    let fe = frontend(&s)?;
    let enabled = vault(&fe, &s, &credential)?
        .enable(&pw, &key, ksf(ksf_memory_kib))
        .await?;
    profile.commit_pending_key()?;
    config.mode = Some(Mode::Password);
    if storage.is_some() {
        config.storage = storage;
    }
    profile.save_config(&config)?;
    out.json(json!({"ok": true, "mode": "password", "max_guesses": enabled.max_guesses,
                    "fleet_fingerprint": s.fleet_fingerprint, "after_erasure": enabled.after_erasure}));
    warn_if_erased(&enabled);
    out.say(format!(
        "Encrypted backups are on, protected by your password; the vault gave the key back with it, so the deposit works. {} wrong guesses erase the key for good; nobody can reset it.",
        enabled.max_guesses
    ));
    Ok(())
}

fn warn_if_erased(enabled: &coffer_client::password::Enabled) {
    if enabled.after_erasure {
        eprintln!(
            "WARNING: the vault had erased this account's record: all its guesses were spent by logins this device did not make. The key is deposited anew behind the new password; someone may have been guessing the old one."
        );
    }
}

/// Recovers K from the vault with a password (restore on a new device).
pub async fn recover_key(profile: &Profile, password_stdin: bool) -> Result<BackupKey> {
    let config = profile.load_config()?;
    let s = server(&config)?;
    let credential = profile.load_credential()?;
    let pw = read_password(password_stdin, false)?;
    let fe = frontend(s)?;
    Ok(vault(&fe, s, &credential)?.recover(&pw).await?)
}

pub async fn change_password(
    out: &Output,
    profile: &Profile,
    password_stdin: bool,
    ksf_memory_kib: Option<u32>,
) -> Result<()> {
    let config = profile.load_config()?;
    if config.mode != Some(Mode::Password) {
        return Err(usage("this profile is not in password mode"));
    }
    let s = server(&config)?;
    let credential = profile.load_credential()?;
    // This device holds K, which proves the right to replace the record.
    let key = profile.load_key()?;
    let pw = read_password(password_stdin, true)?;
    let fe = frontend(s)?;
    let enabled = vault(&fe, s, &credential)?
        .change_password(&key, &pw, ksf(ksf_memory_kib))
        .await?;
    out.json(json!({"ok": true, "max_guesses": enabled.max_guesses, "after_erasure": enabled.after_erasure}));
    warn_if_erased(&enabled);
    out.say("Password changed, and checked: the vault gives the key back with the new one. The backup key is unchanged, so existing backups stay readable.");
    Ok(())
}

/// Deletes the vault record (password mode `disable`), proving K.
pub async fn delete_record(profile: &Profile, key: &BackupKey) -> Result<()> {
    let config = profile.load_config()?;
    let s = server(&config)?;
    let credential = profile.load_credential()?;
    let fe = frontend(s)?;
    Ok(vault(&fe, s, &credential)?.delete(key).await?)
}

/// The vault's view of this account, for `status`, and whether its record is the one this
/// device's key made (`None`: no live record).
pub async fn vault_status(
    profile: &Profile,
    key: &BackupKey,
) -> Result<(VaultStatus, Option<bool>)> {
    let config = profile.load_config()?;
    let s = server(&config)?;
    let credential = profile.load_credential()?;
    let fe = frontend(s)?;
    Ok(vault(&fe, s, &credential)?.status_of_key(key).await?)
}
