//! The command line: every verb and its flags (clap). `main.rs` dispatches them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "coffer",
    version,
    about = "End-to-end encrypted backups guarded by a key only you hold",
    after_help = "Exit codes: 0 ok, 1 other error, 2 usage error, 3 wrong key or password, \
4 record locked, 5 integrity failure, 6 I/O or storage error, 7 server unreachable, 8 not found, \
9 made by a newer Coffer, 10 rate limited (retry later), 11 another request on the account got in the way (retry), \
12 backup made but some files changed while they were read, 130 interrupted."
)]
pub(crate) struct Cli {
    /// Profile directory (default: $XDG_CONFIG_HOME/coffer or ~/.config/coffer).
    #[arg(long, global = true, env = "COFFER_PROFILE", value_name = "DIR")]
    pub(crate) profile: Option<PathBuf>,
    /// Machine-readable JSON on standard output.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
pub(crate) enum FrontendCommand {
    /// Serve the public HTTPS API.
    Serve(FrontendServeArgs),
}

/// How verification codes reach people: one of the two must be asked for.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("verifier").required(true).args(["dev_verifier", "verifier_webhook"])))]
pub(crate) struct VerifierArgs {
    /// Deliver verification codes by POSTing them to this gateway (SMS, e-mail), https://.
    #[arg(long, value_name = "URL")]
    pub(crate) verifier_webhook: Option<String>,
    /// Development only: write verification codes to DIR/codes.txt (mode 0600) instead of
    /// sending them.
    #[arg(long)]
    pub(crate) dev_verifier: bool,
}

#[derive(Args)]
pub(crate) struct FrontendServeArgs {
    /// Directory for the TLS certificate, the embedded account database, the code key and
    /// the development verifier's codes file (created 0700).
    #[arg(long, value_name = "DIR")]
    pub(crate) data: PathBuf,
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8443")]
    pub(crate) listen: std::net::SocketAddr,
    /// Account database: `postgres://…` for several front-ends (default: SQLite in DIR).
    #[arg(long, value_name = "URL", env = "COFFER_ACCOUNTS_URL")]
    pub(crate) accounts: Option<String>,
    /// The key that verification codes are stored under (default DIR/code.key, made on
    /// first start). Front-ends sharing one account database must share this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) code_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) verifier: VerifierArgs,
    /// The vault node, `https://host:port`.
    #[arg(long, value_name = "URL")]
    pub(crate) vault: String,
    /// SHA-256 fingerprint of the vault node's TLS certificate; repeat it to accept the
    /// node's next certificate too, during a rotation.
    #[arg(long, value_name = "HEX", required = true)]
    pub(crate) vault_fingerprint: Vec<String>,
    /// File holding the vault node's front-end token (at least 32 bytes).
    #[arg(long, value_name = "FILE")]
    pub(crate) vault_token_file: PathBuf,
}

#[derive(Subcommand)]
pub(crate) enum AccountCommand {
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
pub(crate) struct AccountRegisterArgs {
    /// The front-end, `https://host:port`.
    #[arg(long, value_name = "URL")]
    pub(crate) server: String,
    /// SHA-256 fingerprint of the front-end's TLS certificate (printed by `coffer serve`).
    /// Repeat it to accept the next certificate too, during a rotation.
    #[arg(long, value_name = "HEX", required = true)]
    pub(crate) server_fingerprint: Vec<String>,
    /// The account id, such as a phone number.
    #[arg(long, value_name = "ID")]
    pub(crate) id: String,
    /// The vault fleet's fingerprint, as its operator printed it (`coffer vault init`,
    /// `coffer serve`). Needed once per profile and server; get it from the operator, not
    /// from the server itself.
    #[arg(
        long,
        value_name = "HEX",
        conflicts_with = "insecure_trust_server_fleet"
    )]
    pub(crate) fleet_fingerprint: Option<String>,
    /// Development only: trust whatever fleet the server shows, with a warning. A malicious
    /// server could then substitute its own vault.
    #[arg(long)]
    pub(crate) insecure_trust_server_fleet: bool,
}

#[derive(Args)]
pub(crate) struct ChangePasswordArgs {
    /// Read the new password from standard input (one line) instead of prompting.
    #[arg(long)]
    pub(crate) password_stdin: bool,
    #[arg(long, value_name = "KIB", hide = true)]
    pub(crate) ksf_memory_kib: Option<u32>,
}

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// Data directory for the vault node, the accounts and the certificates.
    #[arg(long, value_name = "DIR")]
    pub(crate) data: PathBuf,
    /// Address for the front-end (port 0 picks a free port, printed at start).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8443")]
    pub(crate) listen: std::net::SocketAddr,
    #[command(flatten)]
    pub(crate) verifier: VerifierArgs,
    /// Turn the front-end's rate limits off: for capacity benchmarks, and for tests that
    /// show the vault's own limits hold without them. Never in service.
    #[arg(long, hide = true)]
    pub(crate) no_rate_limits: bool,
}

#[derive(Subcommand)]
pub(crate) enum CertificateCommand {
    /// Make the next TLS certificate of the server whose data is in DIR, and print its
    /// fingerprint for clients to pin beside the current one.
    Next(CertificateNextArgs),
    /// Serve the prepared certificate from the next start on (clients must pin it first).
    Promote(CertificateDirArgs),
}

#[derive(Args)]
pub(crate) struct CertificateDirArgs {
    /// The folder holding tls.cert.der: a vault node's or a front-end's data folder (for
    /// `coffer serve`, DATA/frontend).
    #[arg(long, value_name = "DIR")]
    pub(crate) data: PathBuf,
}

#[derive(Args)]
pub(crate) struct CertificateNextArgs {
    #[command(flatten)]
    pub(crate) dir: CertificateDirArgs,
    /// Host names and addresses for the certificate.
    #[arg(long = "tls-name", value_name = "NAME", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
    pub(crate) tls_names: Vec<String>,
}

#[derive(Subcommand)]
pub(crate) enum VaultCommand {
    /// Create a node: fleet secrets sealed under a new root key file, a record store, a
    /// development TLS certificate and a front-end token.
    Init(VaultInitArgs),
    /// Serve the node to front-ends over HTTPS.
    Serve(VaultServeArgs),
}

#[derive(Args)]
pub(crate) struct VaultInitArgs {
    /// The node's data directory (created; must not hold a node already).
    #[arg(long, value_name = "DIR")]
    pub(crate) data: PathBuf,
    /// Wrong passwords allowed per record before its key is erased (1 to 100).
    #[arg(long, default_value_t = 10)]
    pub(crate) max_guesses: u16,
    /// Host names and addresses for the development TLS certificate.
    #[arg(long = "tls-name", value_name = "NAME", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
    pub(crate) tls_names: Vec<String>,
}

#[derive(Args)]
pub(crate) struct VaultServeArgs {
    #[arg(long, value_name = "DIR")]
    pub(crate) data: PathBuf,
    /// Address to listen on (port 0 picks a free port, printed at start).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7443")]
    pub(crate) listen: std::net::SocketAddr,
}

#[derive(Args)]
pub(crate) struct DemoArgs {
    /// Keep the demo's files in this (new) folder instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub(crate) keep: Option<PathBuf>,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("protection").required(true).args(["key", "password"])))]
pub(crate) struct EnableArgs {
    /// Protect backups with a 64-digit key, shown once.
    #[arg(long)]
    pub(crate) key: bool,
    /// Protect backups with a password, checked by the Backup Key Vault (needs a verified
    /// account).
    #[arg(long)]
    pub(crate) password: bool,
    /// Read the password from standard input (one line) instead of prompting.
    #[arg(long, requires = "password")]
    pub(crate) password_stdin: bool,
    /// Argon2id memory in KiB for the password (default 65536).
    #[arg(long, value_name = "KIB", hide = true)]
    pub(crate) ksf_memory_kib: Option<u32>,
    /// Default storage location (folder path or file:/// URL).
    #[arg(long, value_name = "STORAGE")]
    pub(crate) storage: Option<String>,
    /// Chunk cipher: aes-256-gcm (default) or chacha20-poly1305.
    #[arg(long, value_name = "NAME")]
    pub(crate) cipher: Option<String>,
}

#[derive(Args)]
pub(crate) struct BackupArgs {
    /// Files and folders to back up.
    #[arg(required = true, value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,
    /// Storage location (default: the profile's).
    #[arg(long, value_name = "STORAGE")]
    pub(crate) to: Option<String>,
}

#[derive(Args)]
pub(crate) struct FromArgs {
    /// Storage location (default: the profile's).
    #[arg(long, value_name = "STORAGE")]
    pub(crate) from: Option<String>,
}

#[derive(Args)]
pub(crate) struct SelectArgs {
    #[command(flatten)]
    pub(crate) from: FromArgs,
    /// Backup id (default: the newest).
    #[arg(long, value_name = "ID")]
    pub(crate) backup: Option<String>,
    /// Read the 64-digit key from standard input instead of the profile.
    #[arg(long, conflicts_with = "password_stdin")]
    pub(crate) key_stdin: bool,
    /// Recover the key from the vault with the password read from standard input.
    #[arg(long)]
    pub(crate) password_stdin: bool,
}

#[derive(Args)]
pub(crate) struct RestoreArgs {
    #[command(flatten)]
    pub(crate) select: SelectArgs,
    /// Folder to restore into; must not exist, or be empty.
    #[arg(long, value_name = "DIR")]
    pub(crate) into: PathBuf,
}

#[derive(Args)]
pub(crate) struct DecryptArgs {
    #[command(flatten)]
    pub(crate) select: SelectArgs,
    /// File to write the payload to (appears only once fully authenticated).
    #[arg(long, value_name = "FILE")]
    pub(crate) output: PathBuf,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("rule").required(true).multiple(true).args(["keep", "older_than"])))]
pub(crate) struct PruneArgs {
    #[command(flatten)]
    pub(crate) from: FromArgs,
    /// Keep the newest N backups.
    #[arg(long, value_name = "N")]
    pub(crate) keep: Option<usize>,
    /// Keep backups younger than this (for example 30d, 12h, 2w). With --keep too, a
    /// backup goes only when neither rule keeps it.
    #[arg(long, value_name = "AGE")]
    pub(crate) older_than: Option<humantime::Duration>,
    /// Show what would be deleted, and delete nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Delete even though storage does not show the last backup this device made (by
    /// default prune then deletes nothing: the provider may be hiding newer backups).
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Args)]
pub(crate) struct DisableArgs {
    /// Confirm: the key is deleted from this device.
    #[arg(long)]
    pub(crate) yes: bool,
}
