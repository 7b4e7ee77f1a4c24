//! `coffer`: end-to-end encrypted backups. A thin shell over `coffer-client`.

mod args;
mod commands;
mod demo;
mod demo_password;
mod exit;
mod output;
mod password_cmds;
mod prompt;
mod servers;
mod treecmp;

use clap::Parser;

use crate::args::{
    AccountCommand, CertificateCommand, Cli, Command, FrontendCommand, VaultCommand,
};
use crate::output::Output;

fn main() {
    tune_allocator();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    let out = Output::new(cli.json);
    let code = match run(cli, &out) {
        Ok(()) => exit::OK,
        Err(e) => out.error(&e),
    };
    std::process::exit(code);
}

/// The pipelines hand 1 MiB blocks between threads. glibc serves blocks that large with
/// `mmap` and gives them back on free, so every block costs page faults, zeroing and TLB
/// shootdowns (measured: up to 2x the system time of a backup, and most of its variance).
/// Keeping them on the heap, in few arenas, makes freed blocks reusable.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters; called before any other thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20);
        // Few arenas: each one keeps the blocks freed into it, and blocks cross threads.
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn run(cli: Cli, out: &Output) -> anyhow::Result<()> {
    let profile = commands::profile(cli.profile)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // Servers stop on SIGINT or SIGTERM themselves (no new connections, in-flight requests
    // drained), and exit 0.
    if matches!(
        cli.command,
        Command::Serve(_)
            | Command::Vault(VaultCommand::Serve(_))
            | Command::Frontend(FrontendCommand::Serve(_))
    ) {
        let result = rt.block_on(dispatch(cli.command, out, &profile));
        rt.shutdown_background();
        return result;
    }
    let result = rt.block_on(async move {
        let command = dispatch(cli.command, out, &profile);
        tokio::pin!(command);
        tokio::select! {
            r = &mut command => r,
            () = exit::interrupted() => {
                // Let the command stop at its next block and clean up (no upload
                // committed, staging removed); give up waiting after a while.
                coffer_client::request_stop();
                // A command that finished meanwhile reports its own outcome.
                tokio::time::timeout(std::time::Duration::from_secs(10), command)
                    .await
                    .unwrap_or_else(|_| Err(exit::Interrupted.into()))
            }
        }
    });
    // Do not wait for pipeline threads still blocked on I/O; the process is ending.
    rt.shutdown_background();
    result
}

async fn dispatch(
    command: Command,
    out: &Output,
    profile: &coffer_client::Profile,
) -> anyhow::Result<()> {
    match command {
        Command::Demo(a) => demo::run(out, a.keep).await,
        Command::Enable(a) if a.password => {
            password_cmds::enable(out, profile, a.password_stdin, a.ksf_memory_kib, a.storage).await
        }
        Command::Enable(a) => commands::enable(out, profile, a.storage, a.cipher),
        Command::Backup(a) => commands::backup(out, profile, &a.paths, a.to).await,
        Command::List(a) => commands::list(out, profile, a.from).await,
        Command::Prune(a) => {
            let policy = coffer_client::storage::PrunePolicy {
                keep_last: a.keep,
                older_than: a.older_than.map(Into::into),
            };
            commands::prune(out, profile, a.from.from, policy, a.dry_run, a.force).await
        }
        Command::Verify(a) => {
            commands::verify(
                out,
                profile,
                a.from.from,
                a.backup,
                commands::KeySource::from_flags(a.key_stdin, a.password_stdin),
            )
            .await
        }
        Command::Restore(a) => {
            let s = a.select;
            let src = commands::KeySource::from_flags(s.key_stdin, s.password_stdin);
            commands::restore(out, profile, s.from.from, s.backup, src, &a.into).await
        }
        Command::Decrypt(a) => {
            let s = a.select;
            let src = commands::KeySource::from_flags(s.key_stdin, s.password_stdin);
            commands::decrypt(out, profile, s.from.from, s.backup, src, &a.output).await
        }
        Command::Status => commands::status(out, profile).await,
        Command::Disable(a) => commands::disable(out, profile, a.yes).await,
        Command::Vault(VaultCommand::Init(a)) => {
            servers::vault_init(out, &a.data, a.max_guesses, &a.tls_names)
        }
        Command::Vault(VaultCommand::Serve(a)) => {
            servers::vault_serve(out, &a.data, a.listen).await
        }
        Command::Account(AccountCommand::Register(a)) => {
            let fleet = if a.insecure_trust_server_fleet {
                password_cmds::FleetPin::TrustFrontend
            } else {
                password_cmds::FleetPin::Given(a.fleet_fingerprint)
            };
            password_cmds::account_register(
                out,
                profile,
                &a.server,
                a.server_fingerprint,
                &a.id,
                fleet,
            )
            .await
        }
        Command::Account(AccountCommand::Verify { code }) => {
            password_cmds::account_verify(out, profile, &code).await
        }
        Command::Account(AccountCommand::PinCertificate { fingerprint, only }) => {
            password_cmds::pin_certificate(out, profile, &fingerprint, only)
        }
        Command::ChangePassword(a) => {
            password_cmds::change_password(out, profile, a.password_stdin, a.ksf_memory_kib).await
        }
        Command::Serve(a) => {
            let codes = servers::codes_to(a.verifier.dev_verifier, a.verifier.verifier_webhook)?;
            servers::serve(out, &a.data, a.listen, !a.no_rate_limits, codes).await
        }
        Command::Frontend(FrontendCommand::Serve(a)) => {
            let token = std::fs::read_to_string(&a.vault_token_file).map_err(|e| {
                anyhow::anyhow!("cannot read {}: {e}", a.vault_token_file.display())
            })?;
            let vault =
                coffer_frontend::relay::VaultLink::new(&a.vault, a.vault_fingerprint, &token)
                    .map_err(|e| commands::usage(e.to_string()))?;
            let options = servers::FrontendOptions {
                listen: a.listen,
                accounts: a.accounts,
                codes: servers::codes_to(a.verifier.dev_verifier, a.verifier.verifier_webhook)?,
                code_key: a.code_key_file,
                vault,
            };
            servers::frontend_serve(out, &a.data, options).await
        }
        Command::Certificate(CertificateCommand::Next(a)) => {
            servers::certificate_next(out, &a.dir.data, &a.tls_names)
        }
        Command::Certificate(CertificateCommand::Promote(a)) => {
            servers::certificate_promote(out, &a.data)
        }
    }
}
