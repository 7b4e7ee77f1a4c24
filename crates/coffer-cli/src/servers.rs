//! The server verbs: `vault init`, `vault serve`, `serve` (front-end and vault node in one
//! process) and `frontend serve`.

use std::path::Path;

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

/// `coffer serve`: a vault node and a front-end in one process, with embedded stores.
pub async fn serve(
    out: &Output,
    data: &Path,
    listen: std::net::SocketAddr,
    rate_limits: bool,
) -> Result<()> {
    if !rate_limits {
        eprintln!("WARNING: rate limits are off (--no-rate-limits): for benchmarks and tests only");
    }
    let stack = coffer_stack::start(data, listen, rate_limits).await?;
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
    let identity = coffer_stack::load_or_create_identity(data)?;
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
