//! The Coffer client library: profiles, storage, and the backup, restore and verify
//! pipelines. The `coffer` CLI is a thin shell over this crate.

pub mod archive;
mod beneath;
pub mod catalog;
pub mod error;
pub mod frontend_http;
mod parent_dir;
pub mod password;
pub mod pipe;
pub mod pipeline;
pub mod private_dir;
pub mod profile;
pub mod progress;
pub mod source_files;
mod staging;
pub mod storage;
pub mod vault_http;

pub use error::{ClientError, ErrorClass};
pub use password::{PasswordVault, VaultStatus, VaultTransport};
pub use pipeline::{
    backup, export_payload, restore, verify, BackupOptions, BackupReport, RestoreReport,
};
pub use profile::{Config, Mode, Profile, Server};
pub use progress::{Progress, Silent};
pub use storage::{Storage, StorageUrl, StoredBackup};

static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Asks running backups and restores to stop at the next block. They then fail with
/// [`ClientError::Interrupted`] after cleaning up as for any failure: no upload is
/// committed, no restore target appears, staging directories are removed.
pub fn request_stop() {
    STOP.store(true, std::sync::atomic::Ordering::SeqCst);
}

pub(crate) fn check_stop() -> Result<(), ClientError> {
    if STOP.load(std::sync::atomic::Ordering::SeqCst) {
        Err(ClientError::Interrupted)
    } else {
        Ok(())
    }
}
