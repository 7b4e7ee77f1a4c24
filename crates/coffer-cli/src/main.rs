//! `coffer`: end-to-end encrypted backups. A thin shell over `coffer-client`.

mod commands;
mod demo;
mod demo_password;
mod exit;
mod output;
mod password_cmds;
mod prompt;
mod servers;
mod treecmp;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::output::Output;

#[derive(Parser)]
#[command(
    name = "coffer",
    version,
    about = "End-to-end encrypted backups guarded by a key only you hold",
    after_help = "Exit codes: 0 ok, 1 other error, 2 usage error, 3 wrong key or password, \
4 record locked, 5 integrity failure, 6 I/O or storage error, 7 server unreachable, 8 not found, \
9 made by a newer Coffer, 10 rate limited (retry later), 11 another request on the account got in the way (retry), 130 interrupted."
)]
struct Cli {
    /// Profile directory (default: $XDG_CONFIG_HOME/coffer or ~/.config/coffer).
    #[arg(long, global = true, env = "COFFER_PROFILE", value_name = "DIR")]
    profile: Option<PathBuf>,
    /// Machine-readable JSON on standard output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Walk through a whole backup and restore on embedded defaults.
    Demo(DemoArgs),
    /// Start encrypted backups, protected by a new 64-digit key.
    Enable(EnableArgs),
    /// Make one encrypted backup of files and folders.
    Backup(BackupArgs),
    /// List the stored backups.
    List(FromArgs),
    /// Download and authenticate a stored backup without writing any file.
    Verify(SelectArgs),
    /// Delete older backups by count or age; the newest backup is always kept.
    Prune(PruneArgs),
    /// Restore a backup into a new folder (on this or a brand-new device).
    Restore(RestoreArgs),
    /// Write a backup's decrypted payload (a zstd-compressed tar) to a file.
    Decrypt(DecryptArgs),
    /// Show this profile's mode, storage and last backup.
    Status,
    /// Stop encrypted backups and forget the key on this device.
    Disable(DisableArgs),
    /// Run a Backup Key Vault node (the HSM role).
    #[command(subcommand)]
    Vault(VaultCommand),
    /// Register and verify this device's account (the phone-number step).
    #[command(subcommand)]
    Account(AccountCommand),
    /// Change the password that protects the backup key (password mode).
    ChangePassword(ChangePasswordArgs),
    /// Run a front-end and one vault node together, with embedded stores.
    Serve(ServeArgs),
    /// Run a front-end (the ChatD role) in front of a vault node.
    #[command(subcommand)]
    Frontend(FrontendCommand),
    /// Rotate a server's TLS certificate: prepare the next one, then promote it.
    #[command(subcommand)]
    Certificate(CertificateCommand),
}

#[derive(Subcommand)]
enum FrontendCommand {
    /// Serve the public HTTPS API.
    Serve(FrontendServeArgs),
}

/// How verification codes reach people: one of the two must be asked for.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("verifier").required(true).args(["dev_verifier", "verifier_webhook"])))]
struct VerifierArgs {
    /// Deliver verification codes by POSTing them to this gateway (SMS, e-mail), https://.
    #[arg(long, value_name = "URL")]
    verifier_webhook: Option<String>,
    /// Development only: write verification codes to DIR/codes.txt (mode 0600) instead of
    /// sending them.
    #[arg(long)]
    dev_verifier: bool,
}

#[derive(Args)]
struct FrontendServeArgs {
    /// Directory for the TLS certificate, the embedded account database, the code key and
    /// the development verifier's codes file (created 0700).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8443")]
    listen: std::net::SocketAddr,
    /// Account database: `postgres://…` for several front-ends (default: SQLite in DIR).
    #[arg(long, value_name = "URL", env = "COFFER_ACCOUNTS_URL")]
    accounts: Option<String>,
    /// The key that verification codes are stored under (default DIR/code.key, made on
    /// first start). Front-ends sharing one account database must share this file.
    #[arg(long, value_name = "FILE")]
    code_key_file: Option<PathBuf>,
    #[command(flatten)]
    verifier: VerifierArgs,
    /// The vault node, `https://host:port`.
    #[arg(long, value_name = "URL")]
    vault: String,
    /// SHA-256 fingerprint of the vault node's TLS certificate; repeat it to accept the
    /// node's next certificate too, during a rotation.
    #[arg(long, value_name = "HEX", required = true)]
    vault_fingerprint: Vec<String>,
    /// File holding the vault node's front-end token (at least 32 bytes).
    #[arg(long, value_name = "FILE")]
    vault_token_file: PathBuf,
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Ask the server to send a verification code for an account id.
    Register(AccountRegisterArgs),
    /// Verify the account with the code received; signs other devices out.
    Verify {
        /// The verification code.
        code: String,
    },
    /// Accept another certificate of the front-end (its next one, during a rotation).
    PinCertificate {
        /// SHA-256 fingerprint of the certificate.
        fingerprint: String,
        /// Accept this certificate only, dropping the others (once the rotation is done).
        #[arg(long)]
        only: bool,
    },
}

#[derive(Args)]
struct AccountRegisterArgs {
    /// The front-end, `https://host:port`.
    #[arg(long, value_name = "URL")]
    server: String,
    /// SHA-256 fingerprint of the front-end's TLS certificate (printed by `coffer serve`).
    /// Repeat it to accept the next certificate too, during a rotation.
    #[arg(long, value_name = "HEX", required = true)]
    server_fingerprint: Vec<String>,
    /// The account id, such as a phone number.
    #[arg(long, value_name = "ID")]
    id: String,
    /// The vault fleet's fingerprint, as its operator printed it (`coffer vault init`,
    /// `coffer serve`). Needed once per profile and server; get it from the operator, not
    /// from the server itself.
    #[arg(
        long,
        value_name = "HEX",
        conflicts_with = "insecure_trust_server_fleet"
    )]
    fleet_fingerprint: Option<String>,
    /// Development only: trust whatever fleet the server shows, with a warning. A malicious
    /// server could then substitute its own vault.
    #[arg(long)]
    insecure_trust_server_fleet: bool,
}

#[derive(Args)]
struct ChangePasswordArgs {
    /// Read the new password from standard input (one line) instead of prompting.
    #[arg(long)]
    password_stdin: bool,
    #[arg(long, value_name = "KIB", hide = true)]
    ksf_memory_kib: Option<u32>,
}

#[derive(Args)]
struct ServeArgs {
    /// Data directory for the vault node, the accounts and the certificates.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Address for the front-end (port 0 picks a free port, printed at start).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8443")]
    listen: std::net::SocketAddr,
    #[command(flatten)]
    verifier: VerifierArgs,
    /// Turn the front-end's rate limits off: for capacity benchmarks, and for tests that
    /// show the vault's own limits hold without them. Never in service.
    #[arg(long, hide = true)]
    no_rate_limits: bool,
}

#[derive(Subcommand)]
enum CertificateCommand {
    /// Make the next TLS certificate of the server whose data is in DIR, and print its
    /// fingerprint for clients to pin beside the current one.
    Next(CertificateNextArgs),
    /// Serve the prepared certificate from the next start on (clients must pin it first).
    Promote(CertificateDirArgs),
}

#[derive(Args)]
struct CertificateDirArgs {
    /// The folder holding tls.cert.der: a vault node's or a front-end's data folder (for
    /// `coffer serve`, DATA/frontend).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
}

#[derive(Args)]
struct CertificateNextArgs {
    #[command(flatten)]
    dir: CertificateDirArgs,
    /// Host names and addresses for the certificate.
    #[arg(long = "tls-name", value_name = "NAME", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
    tls_names: Vec<String>,
}

#[derive(Subcommand)]
enum VaultCommand {
    /// Create a node: fleet secrets sealed under a new root key file, a record store, a
    /// development TLS certificate and a front-end token.
    Init(VaultInitArgs),
    /// Serve the node to front-ends over HTTPS.
    Serve(VaultServeArgs),
}

#[derive(Args)]
struct VaultInitArgs {
    /// The node's data directory (created; must not hold a node already).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Wrong passwords allowed per record before its key is erased (1 to 100).
    #[arg(long, default_value_t = 10)]
    max_guesses: u16,
    /// Host names and addresses for the development TLS certificate.
    #[arg(long = "tls-name", value_name = "NAME", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
    tls_names: Vec<String>,
}

#[derive(Args)]
struct VaultServeArgs {
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Address to listen on (port 0 picks a free port, printed at start).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7443")]
    listen: std::net::SocketAddr,
}

#[derive(Args)]
struct DemoArgs {
    /// Keep the demo's files in this (new) folder instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("protection").required(true).args(["key", "password"])))]
struct EnableArgs {
    /// Protect backups with a 64-digit key, shown once.
    #[arg(long)]
    key: bool,
    /// Protect backups with a password, checked by the Backup Key Vault (needs a verified
    /// account).
    #[arg(long)]
    password: bool,
    /// Read the password from standard input (one line) instead of prompting.
    #[arg(long, requires = "password")]
    password_stdin: bool,
    /// Argon2id memory in KiB for the password (default 65536).
    #[arg(long, value_name = "KIB", hide = true)]
    ksf_memory_kib: Option<u32>,
    /// Default storage location (folder path or file:/// URL).
    #[arg(long, value_name = "STORAGE")]
    storage: Option<String>,
    /// Chunk cipher: aes-256-gcm (default) or chacha20-poly1305.
    #[arg(long, value_name = "NAME")]
    cipher: Option<String>,
}

#[derive(Args)]
struct BackupArgs {
    /// Files and folders to back up.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Storage location (default: the profile's).
    #[arg(long, value_name = "STORAGE")]
    to: Option<String>,
}

#[derive(Args)]
struct FromArgs {
    /// Storage location (default: the profile's).
    #[arg(long, value_name = "STORAGE")]
    from: Option<String>,
}

#[derive(Args)]
struct SelectArgs {
    #[command(flatten)]
    from: FromArgs,
    /// Backup id (default: the newest).
    #[arg(long, value_name = "ID")]
    backup: Option<String>,
    /// Read the 64-digit key from standard input instead of the profile.
    #[arg(long, conflicts_with = "password_stdin")]
    key_stdin: bool,
    /// Recover the key from the vault with the password read from standard input.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Args)]
struct RestoreArgs {
    #[command(flatten)]
    select: SelectArgs,
    /// Folder to restore into; must not exist, or be empty.
    #[arg(long, value_name = "DIR")]
    into: PathBuf,
}

#[derive(Args)]
struct DecryptArgs {
    #[command(flatten)]
    select: SelectArgs,
    /// File to write the payload to (appears only once fully authenticated).
    #[arg(long, value_name = "FILE")]
    output: PathBuf,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("rule").required(true).multiple(true).args(["keep", "older_than"])))]
struct PruneArgs {
    #[command(flatten)]
    from: FromArgs,
    /// Keep the newest N backups.
    #[arg(long, value_name = "N")]
    keep: Option<usize>,
    /// Keep backups younger than this (for example 30d, 12h, 2w). With --keep too, a
    /// backup goes only when neither rule keeps it.
    #[arg(long, value_name = "AGE")]
    older_than: Option<humantime::Duration>,
    /// Show what would be deleted, and delete nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Args)]
struct DisableArgs {
    /// Confirm: the key is deleted from this device.
    #[arg(long)]
    yes: bool,
}

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
            commands::prune(out, profile, a.from.from, policy, a.dry_run).await
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
