//! The verbs of password mode: accounts, enabling with a password, recovering K, changing
//! the password, and the all-in-one server.

use std::io::{IsTerminal, Read};
use std::path::Path;

use anyhow::{Context, Result};
use coffer_client::frontend_http::Frontend;
use coffer_client::password::{self, FleetPin, VaultTransport};
use coffer_client::profile::Server;
use coffer_client::{ClientError, Config, Mode, Profile};
use coffer_format::BackupKey;
use coffer_vault_core::{Authorization, KsfParams, Request, Response};
use serde_json::json;
use zeroize::Zeroizing;

use crate::output::Output;

fn usage(msg: impl Into<String>) -> anyhow::Error {
    ClientError::Usage(msg.into()).into()
}

fn server(config: &Config) -> Result<&Server> {
    config.server.as_ref().ok_or_else(|| {
        usage("this profile has no account; run `coffer account register --server URL --server-fingerprint FP --id ID`")
    })
}

fn frontend(server: &Server) -> Result<Frontend> {
    Ok(Frontend::new(&server.url, &server.tls_fingerprint)?)
}

fn pin(server: &Server) -> FleetPin {
    match &server.fleet_fingerprint {
        Some(f) => FleetPin::Pinned(f.clone()),
        None => FleetPin::FirstUse,
    }
}

/// The password from standard input (one line) or, on a terminal, a hidden prompt (twice
/// when `confirm`).
pub fn read_password(from_stdin: bool, confirm: bool) -> Result<Zeroizing<String>> {
    if from_stdin {
        let mut text = Zeroizing::new(String::new());
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the password from standard input")?;
        let line = Zeroizing::new(text.lines().next().unwrap_or("").to_string());
        if line.is_empty() {
            return Err(usage("the password on standard input is empty"));
        }
        return Ok(line);
    }
    if !std::io::stdin().is_terminal() {
        return Err(usage(
            "no terminal to ask for the password; pass --password-stdin",
        ));
    }
    let first = crate::prompt::hidden("Password: ")?;
    let first = Zeroizing::new(first.trim_end_matches(['\r', '\n']).to_string());
    if first.chars().count() < 6 {
        return Err(usage("choose a password of at least 6 characters"));
    }
    if confirm {
        let again = crate::prompt::hidden("Password again: ")?;
        if again.trim_end_matches(['\r', '\n']) != first.as_str() {
            return Err(usage("the two passwords differ"));
        }
    }
    Ok(first)
}

pub async fn account_register(
    out: &Output,
    profile: &Profile,
    url: &str,
    tls_fingerprint: &str,
    id: &str,
    fleet_pin: Option<String>,
) -> Result<()> {
    let mut config = profile.load_config()?;
    let fe = Frontend::new(url, tls_fingerprint)?;
    fe.register_account(id).await?;
    let fleet_fingerprint = fleet_pin.map(|f| f.to_ascii_lowercase()).or_else(|| {
        config
            .server
            .as_ref()
            .filter(|s| s.url == url)
            .and_then(|s| s.fleet_fingerprint.clone())
    });
    config.server = Some(Server {
        url: url.to_string(),
        tls_fingerprint: tls_fingerprint.to_ascii_lowercase(),
        account: id.to_string(),
        fleet_fingerprint,
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

/// `enable --password`: deposits a new K behind the password.
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
    let ksf = KsfParams {
        m_cost_kib: ksf_memory_kib.unwrap_or(KsfParams::DEFAULT.m_cost_kib),
        ..KsfParams::DEFAULT
    };
    let key = BackupKey::generate()?;
    let fe = frontend(&s)?;
    let reg = password::register(
        &fe.vault(&credential),
        &pin(&s),
        pw.as_bytes(),
        &key,
        ksf,
        None,
    )
    .await?;
    profile.save_key(&key)?;
    config.mode = Some(Mode::Password);
    if let Some(st) = storage {
        config.storage = Some(coffer_client::StorageUrl::parse(&st)?.display());
    }
    let first_use = s.fleet_fingerprint.is_none();
    config.server = Some(Server {
        fleet_fingerprint: Some(reg.fleet_fingerprint.clone()),
        ..s
    });
    profile.save_config(&config)?;
    out.json(json!({"ok": true, "mode": "password", "max_guesses": reg.max_guesses, "fleet_fingerprint": reg.fleet_fingerprint}));
    out.say(format!(
        "Encrypted backups are on, protected by your password. {} wrong guesses erase the key for good; nobody can reset it.",
        reg.max_guesses
    ));
    if first_use {
        out.say(format!(
            "Vault key pinned on first use: {}",
            reg.fleet_fingerprint
        ));
    }
    Ok(())
}

/// Recovers K from the vault with a password (restore on a new device).
pub async fn recover_key(profile: &Profile, password_stdin: bool) -> Result<BackupKey> {
    let mut config = profile.load_config()?;
    let s = server(&config)?.clone();
    let credential = profile.load_credential()?;
    let pw = read_password(password_stdin, false)?;
    let fe = frontend(&s)?;
    let rec = password::recover(&fe.vault(&credential), &pin(&s), pw.as_bytes()).await?;
    if s.fleet_fingerprint.is_none() {
        config.server = Some(Server {
            fleet_fingerprint: Some(rec.fleet_fingerprint),
            ..s
        });
        profile.save_config(&config)?;
    }
    Ok(rec.key)
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
    let key = profile.load_key()?;
    let pw = read_password(password_stdin, true)?;
    let ksf = KsfParams {
        m_cost_kib: ksf_memory_kib.unwrap_or(KsfParams::DEFAULT.m_cost_kib),
        ..KsfParams::DEFAULT
    };
    // This device holds K, which proves the right to replace the record.
    let auth = Authorization::Key(password::k_proof(&key));
    let fe = frontend(s)?;
    let reg = password::register(
        &fe.vault(&credential),
        &pin(s),
        pw.as_bytes(),
        &key,
        ksf,
        Some(auth),
    )
    .await?;
    out.json(json!({"ok": true, "max_guesses": reg.max_guesses}));
    out.say("Password changed. The backup key is unchanged, so existing backups stay readable.");
    Ok(())
}

/// Deletes the vault record (password mode `disable`).
pub async fn delete_record(profile: &Profile, key: &BackupKey) -> Result<()> {
    let config = profile.load_config()?;
    let s = server(&config)?;
    let credential = profile.load_credential()?;
    let fe = frontend(s)?;
    match fe
        .vault(&credential)
        .call(Request::Delete {
            authorization: Some(Authorization::Key(password::k_proof(key))),
        })
        .await?
    {
        Response::Deleted | Response::NotFound => Ok(()),
        other => Err(anyhow::anyhow!(
            "the vault refused to delete the record: {other:?}"
        )),
    }
}

/// The vault's view of this account, for `status`.
pub async fn vault_status(profile: &Profile) -> Result<Response> {
    let config = profile.load_config()?;
    let s = server(&config)?;
    let credential = profile.load_credential()?;
    Ok(frontend(s)?
        .vault(&credential)
        .call(Request::Status)
        .await?)
}

/// `coffer serve`: a vault node and a front-end in one process, with embedded stores.
pub async fn serve(out: &Output, data: &Path, listen: std::net::SocketAddr) -> Result<()> {
    let stack = coffer_frontend::local::start(data, listen, true).await?;
    let (fp, fleet, codes) = (
        &stack.tls_fingerprint,
        &stack.fleet_fingerprint,
        &stack.codes,
    );
    if out.json {
        println!(
            "{}",
            json!({"listening": stack.addr.to_string(), "url": stack.url, "tls_fingerprint": fp,
                   "fleet_fingerprint": fleet, "codes_file": codes})
        );
    } else {
        println!("Coffer server on {}", stack.url);
        println!("  TLS certificate fingerprint (clients pin it): {fp}");
        println!("  vault fleet key fingerprint: {fleet}");
        println!("  verification codes are written to {}", codes.display());
    }
    tokio::select! {
        r = stack.frontend => Err(anyhow::anyhow!("the front-end stopped: {r:?}")),
        r = stack.vault.task => Err(anyhow::anyhow!("the vault node stopped: {r:?}")),
    }
}

/// `coffer frontend serve`.
pub async fn frontend_serve(
    out: &Output,
    data: &Path,
    listen: std::net::SocketAddr,
    accounts: Option<String>,
    verifier: coffer_frontend::verifier::Verifier,
    vault: coffer_frontend::server::VaultLink,
) -> Result<()> {
    let identity = coffer_frontend::local::load_or_create_identity(data)?;
    let fe_fingerprint = coffer_tls::fingerprint(&identity.cert_der);
    let accounts_url = accounts.unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            data.join("accounts.sqlite").display()
        )
    });
    let config = coffer_frontend::server::Config {
        listen,
        identity,
        accounts: coffer_frontend::accounts::Accounts::open(&accounts_url, &data.join("code.key"))
            .await
            .context("cannot open the account database")?,
        verifier,
        vault,
        rate_limits: true,
    };
    let json_out = out.json;
    let codes = data.join("codes.txt");
    coffer_frontend::server::serve(config, move |addr| {
        if json_out {
            println!(
                "{}",
                json!({"listening": addr.to_string(), "url": format!("https://localhost:{}", addr.port()),
                       "tls_fingerprint": fe_fingerprint, "codes_file": codes})
            );
        } else {
            println!("Coffer front-end on https://localhost:{}", addr.port());
            println!("  TLS certificate fingerprint (clients pin it): {fe_fingerprint}");
            println!("  development verification codes go to {}", codes.display());
        }
    })
    .await
    .context("the front-end stopped")
}
