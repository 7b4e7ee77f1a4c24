//! The password-mode half of `coffer demo`: a vault node and a front-end on loopback, an
//! account verified by code, K deposited behind a password, a wrong guess counted, and a
//! restore on a new phone with the account and the password only.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use coffer_client::frontend_http::{Frontend, FrontendVault};
use coffer_client::password::{pin_fleet, KsfParams};
use coffer_client::{BackupOptions, ClientError, PasswordVault, Silent, Storage, StorageUrl};
use coffer_format::BackupKey;

use crate::output::Output;
use crate::treecmp;

/// Argon2id for the demo: the real default in release builds; lighter in debug builds,
/// where Argon2id runs many times slower.
fn demo_ksf() -> KsfParams {
    if cfg!(debug_assertions) {
        KsfParams {
            m_cost_kib: 1024,
            t_cost: 1,
            p_cost: 1,
        }
    } else {
        KsfParams::DEFAULT
    }
}

struct Servers {
    frontend: Frontend,
    fleet: String,
    keys: coffer_client::password::FleetKeys,
    stack: coffer_stack::LocalStack,
}

async fn start_servers(dir: &Path) -> Result<Servers> {
    let stack = coffer_stack::start(
        dir,
        "127.0.0.1:0".parse().expect("valid"),
        true,
        coffer_stack::Codes::DevFile,
    )
    .await?;
    let frontend = Frontend::new(&stack.url, &[&stack.tls_fingerprint])?;
    // The demo knows the fleet it started, as an operator's printout would tell a user.
    let keys = pin_fleet(frontend.fleet_keys().await?, &stack.fleet_fingerprint)?;
    Ok(Servers {
        frontend,
        fleet: stack.fleet_fingerprint.clone(),
        keys,
        stack,
    })
}

impl Servers {
    async fn sign_in(&self, id: &str) -> Result<String> {
        self.frontend.register_account(id).await?;
        let code = self
            .stack
            .code_for(id)
            .context("no verification code was delivered")?;
        Ok(self.frontend.verify_account(id, &code).await?)
    }

    fn vault<'a>(&'a self, credential: &str, id: &str) -> PasswordVault<FrontendVault<'a>> {
        PasswordVault::new(self.frontend.vault(credential), id, self.keys.clone())
    }
}

/// Runs the password-mode steps in `root`, restoring `chats` and comparing.
pub async fn run(out: &Output, root: &Path, chats: &Path) -> Result<()> {
    let step = |n: u32, text: &str| out.say(format!("\n[{n}/11] {text}"));
    step(
        8,
        "Password mode: a front-end and a Backup Key Vault node start on this machine.",
    );
    let servers = start_servers(&root.join("servers")).await?;
    out.say(format!(
        "      Vault fleet key (clients pin it): {}",
        servers.fleet
    ));

    step(
        9,
        "Phone C verifies its account by code and protects a new key with a password.",
    );
    let account = "+15550199";
    let phone_c = servers.sign_in(account).await?;
    let key = BackupKey::generate()?;
    let ksf = demo_ksf();
    let enabled = servers
        .vault(&phone_c, account)
        .enable("correct horse battery staple", &key, ksf)
        .await?;
    out.say(format!(
        "      The vault holds the key sealed under the password (OPAQUE, Argon2id {} MiB), every message in a channel only the pinned fleet opens; a recovery checked the deposit. {} wrong guesses erase it.",
        ksf.m_cost_kib / 1024,
        enabled.max_guesses
    ));
    let storage = Storage::open(&StorageUrl::Fs {
        root: root.join("cloud-drive-2"),
    })?;
    let backup = coffer_client::backup(
        &storage,
        &key,
        &[chats.to_path_buf()],
        BackupOptions::default(),
        Arc::new(Silent),
    )
    .await?;
    out.say(format!("      Backed up as {}.", backup.id));

    step(
        10,
        "Phone D (new) verifies the same account. A mistyped password costs one guess.",
    );
    let phone_d = servers.sign_in(account).await?;
    let vault = servers.vault(&phone_d, account);
    match vault.recover("correct horse battery stable").await {
        Err(e @ ClientError::WrongPassword { .. }) => out.say(format!("      {e}")),
        Err(e) => bail!("a wrong password gave an unexpected error: {e}"),
        Ok(_) => bail!("a wrong password recovered the key"),
    }

    step(
        11,
        "Phone D recovers the key with the right password and restores.",
    );
    let recovered = vault.recover("correct horse battery staple").await?;
    if recovered != key {
        bail!("the vault returned another key");
    }
    let target = root.join("phone-d").join("restored");
    coffer_client::restore(&storage, &recovered, None, &target, Arc::new(Silent)).await?;
    match treecmp::compare(chats, &target.join("chat-history"))? {
        Ok(s) => out.say(format!(
            "      Identical: {} files from the account and the password alone; the guess budget is full again.",
            s.files
        )),
        Err(diff) => bail!("the restored tree is not identical: {diff}"),
    }
    Ok(())
}
