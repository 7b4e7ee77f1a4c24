//! The Coffer client library: profiles, storage, and the backup, restore and verify
//! pipelines. The `coffer` CLI is a thin shell over this crate.

pub mod archive;
pub mod error;
pub mod pipe;
pub mod pipeline;
pub mod profile;
pub mod progress;
pub mod storage;

pub use error::{ClientError, ErrorClass};
pub use pipeline::{
    backup, export_payload, restore, verify, BackupOptions, BackupReport, RestoreReport,
};
pub use profile::{Config, Mode, Profile};
pub use progress::{Progress, Silent};
pub use storage::{Storage, StorageUrl, StoredBackup};
