//! The server verbs: `vault init`, `vault serve`, `serve` (front-end and vault node in one
//! process) and `frontend serve`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::json;

use crate::commands::usage;
use crate::output::Output;

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
    let info = coffer_vault_node::info(dir).map_err(|e| {
        usage(format!(
            "cannot open the vault node in {}: {e}",
            dir.display()
        ))
    })?;
    let json = out.json;
    coffer_vault_node::server::serve(dir, listen, crate::exit::interrupted(), move |addr| {
        if json {
            println!(
                "{}",
                json!({"listening": addr.to_string(), "fleet_fingerprint": info.fleet_fingerprint,
                       "tls_fingerprint": info.tls_fingerprint,
                       "next_tls_fingerprint": info.next_tls_fingerprint})
            );
        } else {
            println!(
                "vault node listening on https://{addr} (fleet key {})",
                info.fleet_fingerprint
            );
            println!(
                "  TLS certificate fingerprint (front-ends pin it): {}",
                info.tls_fingerprint
            );
            if let Some(next) = &info.next_tls_fingerprint {
                println!("  next TLS certificate (pin it too, before promoting it): {next}");
            }
        }
    })
    .await
    .map_err(|e| anyhow::anyhow!("the vault node stopped: {e}"))?;
    eprintln!("vault node stopped");
    Ok(())
}

/// How verification codes are delivered, from the flags.
pub fn codes_to(dev: bool, webhook: Option<String>) -> Result<coffer_stack::Codes> {
    match (dev, webhook) {
        (false, Some(url)) => {
            coffer_client::frontend_http::check_https(&url)?;
            Ok(coffer_stack::Codes::Webhook(url))
        }
        (true, None) => {
            eprintln!(
                "note: development verifier: codes are written to a file (mode 0600) on this host, not sent to anyone"
            );
            Ok(coffer_stack::Codes::DevFile)
        }
        _ => Err(usage(
            "choose how verification codes reach people: --verifier-webhook https://… (an SMS or e-mail gateway), or --dev-verifier (a file on this host, for development)",
        )),
    }
}

/// `coffer serve`: a vault node and a front-end in one process, with embedded stores.
pub async fn serve(
    out: &Output,
    data: &Path,
    listen: std::net::SocketAddr,
    rate_limits: bool,
    codes: coffer_stack::Codes,
) -> Result<()> {
    if !rate_limits {
        eprintln!("WARNING: rate limits are off (--no-rate-limits): for benchmarks and tests only");
    }
    let dev = matches!(codes, coffer_stack::Codes::DevFile);
    let stack = coffer_stack::start(data, listen, rate_limits, codes).await?;
    let next = coffer_tls::IdentityDir::new(&data.join("frontend")).next_fingerprint()?;
    let codes_file = dev.then(|| stack.codes.clone());
    if out.json {
        println!(
            "{}",
            json!({"listening": stack.addr.to_string(), "url": stack.url,
                   "tls_fingerprint": stack.tls_fingerprint, "next_tls_fingerprint": next,
                   "fleet_fingerprint": stack.fleet_fingerprint, "codes_file": codes_file})
        );
    } else {
        println!("Coffer server on {}", stack.url);
        println!(
            "  TLS certificate fingerprint (clients pin it): {}",
            stack.tls_fingerprint
        );
        if let Some(next) = &next {
            println!("  next TLS certificate (clients pin it too, before it is promoted): {next}");
        }
        println!(
            "  vault fleet fingerprint (give it to users yourself, not through this server): {}",
            stack.fleet_fingerprint
        );
        if let Some(file) = &codes_file {
            println!("  verification codes are written to {}", file.display());
        }
    }
    crate::exit::interrupted().await;
    // No new connections from here; what is in flight finishes.
    stack.stop().await;
    eprintln!("server stopped");
    Ok(())
}

/// `coffer frontend serve`.
pub struct FrontendOptions {
    pub listen: std::net::SocketAddr,
    pub accounts: Option<String>,
    pub codes: coffer_stack::Codes,
    pub code_key: Option<PathBuf>,
    pub vault: coffer_frontend::relay::VaultLink,
}

pub async fn frontend_serve(out: &Output, data: &Path, o: FrontendOptions) -> Result<()> {
    coffer_stack::private_dir(data).with_context(|| format!("cannot create {}", data.display()))?;
    let identity = coffer_stack::load_or_create_identity(data)?;
    let fe_fingerprint = coffer_tls::fingerprint(&identity.cert_der);
    let next = coffer_tls::IdentityDir::new(data).next_fingerprint()?;
    let accounts_url = o.accounts.unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            data.join("accounts.sqlite").display()
        )
    });
    let code_key = o.code_key.unwrap_or_else(|| data.join("code.key"));
    let codes = data.join("codes.txt");
    let codes_file = matches!(o.codes, coffer_stack::Codes::DevFile).then(|| codes.clone());
    let config = coffer_frontend::server::Config {
        listen: o.listen,
        identity,
        accounts: coffer_frontend::accounts::Accounts::open(&accounts_url, &code_key)
            .await
            .context("cannot open the account database")?,
        verifier: match o.codes {
            coffer_stack::Codes::DevFile => coffer_frontend::verifier::Verifier::DevFile(codes),
            coffer_stack::Codes::Webhook(url) => coffer_frontend::verifier::Verifier::Webhook(url),
        },
        vault: o.vault,
        rate_limits: true,
        limits: coffer_frontend::server::limits(),
    };
    let json_out = out.json;
    coffer_frontend::server::serve(config, crate::exit::interrupted(), move |addr| {
        if json_out {
            println!(
                "{}",
                json!({"listening": addr.to_string(), "url": format!("https://localhost:{}", addr.port()),
                       "tls_fingerprint": fe_fingerprint, "next_tls_fingerprint": next,
                       "codes_file": codes_file})
            );
        } else {
            println!("Coffer front-end on https://localhost:{}", addr.port());
            println!("  TLS certificate fingerprint (clients pin it): {fe_fingerprint}");
            if let Some(next) = &next {
                println!("  next TLS certificate (clients pin it too, before it is promoted): {next}");
            }
            if let Some(file) = &codes_file {
                println!("  development verification codes go to {}", file.display());
            }
        }
    })
    .await
    .context("the front-end stopped")?;
    eprintln!("front-end stopped");
    Ok(())
}

/// `coffer certificate next`: makes the next certificate of the server in `dir`.
pub fn certificate_next(out: &Output, dir: &Path, names: &[String]) -> Result<()> {
    let fp = coffer_tls::IdentityDir::new(dir).prepare_next(names)?;
    out.json(json!({"ok": true, "next_tls_fingerprint": fp}));
    out.say(format!(
        "Next certificate prepared in {}: {fp}",
        dir.display()
    ));
    out.say("Have clients pin it beside the current one (`coffer account pin-certificate FP`, or `--vault-fingerprint` twice for front-ends), then run `coffer certificate promote` and restart the server.");
    Ok(())
}

/// `coffer certificate promote`: makes the prepared certificate the one served.
pub fn certificate_promote(out: &Output, dir: &Path) -> Result<()> {
    let fp = coffer_tls::IdentityDir::new(dir).promote_next()?;
    out.json(json!({"ok": true, "tls_fingerprint": fp}));
    out.say(format!(
        "The server in {} will serve {fp} from its next start.",
        dir.display()
    ));
    Ok(())
}
