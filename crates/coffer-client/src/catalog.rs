//! Which stored backups a key can use, told from their headers alone.
//!
//! A storage provider chooses what a listing shows: it can copy an old backup under a newer
//! name, put a real header in front of garbage, or hide the newest backup. So nothing here
//! trusts a name: each backup's header is read (one small ranged read) and authenticated
//! under the key, and must name the backup it is stored as (docs/FORMAT.md, section 5).
//! What passes is [`Standing::Ours`]; everything else is told apart and shown, never used
//! as if it were ours, and never counted or deleted by `prune`.
//!
//! Only [`Storage`]'s public reads are used (`list`, `read_range`, `find`).

use coffer_format::{BackupId, BackupKey, FormatError, KeyId, HEADER_LEN};
use futures_util::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::error::ClientError;
use crate::profile::LastBackup;
use crate::storage::{shorten, Storage, StoredBackup};

/// Header reads in flight at once: a listing of many backups takes a fraction of the
/// time, and a provider is not flooded.
const HEADER_READS_AT_ONCE: usize = 8;
/// Characters kept of why a backup's header could not be read: listings may hold 100,000
/// entries, and each keeps its reason.
const MAX_REASON_CHARS: usize = 160;
/// Backups passed over that [`Choice`] names; the rest are counted.
pub const PASSED_OVER_NAMED: usize = 10;

/// How one stored backup stands with a key.
#[derive(Debug)]
pub enum Standing {
    /// Its header authenticates under the key and names the backup it is stored as, so its
    /// id and creation time are authentic. (Whether its chunks are intact takes `verify`.)
    Ours,
    /// Made with another key; the key id is what the header claims.
    OtherKey { key_id: KeyId },
    /// Not a backup this key can use, and why: cut, altered, not a Coffer backup, made by
    /// a newer Coffer, or another backup's header under this name (renamed or replayed).
    Damaged(ClientError),
    /// No key to check it with: nothing about it is known to be true.
    Unchecked,
}

/// A stored backup and how it stands.
#[derive(Debug)]
pub struct Entry {
    pub backup: StoredBackup,
    /// The key id its header claims, if the header could be parsed. Authenticated only when
    /// the standing is [`Standing::Ours`].
    pub key_id: Option<KeyId>,
    pub standing: Standing,
}

impl Entry {
    pub fn is_ours(&self) -> bool {
        matches!(self.standing, Standing::Ours)
    }

    /// Why this backup is not ours, in a few words; `None` for ours and unchecked ones.
    pub fn problem(&self) -> Option<String> {
        match &self.standing {
            Standing::Ours | Standing::Unchecked => None,
            Standing::OtherKey { key_id } => Some(format!("made with another key ({key_id})")),
            Standing::Damaged(e) => Some(reason(e)),
        }
    }
}

/// The words for a damaged backup, without the "backup ID" its listing row already shows.
fn reason(e: &ClientError) -> String {
    match e {
        ClientError::Integrity { source, .. } => source.to_string(),
        ClientError::Unsupported { source, .. } => format!("needs a newer Coffer: {source}"),
        ClientError::BadManifest { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// Reads `backup`'s header and tells how it stands with `key` (without a key: only the
/// key id it claims). A storage error that may pass is returned as an error; one that will
/// not (the object is gone, a segment is missing) makes the backup damaged.
pub async fn examine(
    storage: &Storage,
    key: Option<&BackupKey>,
    backup: StoredBackup,
) -> Result<Entry, ClientError> {
    let head = match storage.read_range(&backup, 0, HEADER_LEN as u64).await {
        Ok(head) => head,
        Err(e) if e.is_retryable() => return Err(e),
        Err(e) => {
            return Ok(Entry {
                backup,
                key_id: None,
                standing: Standing::Damaged(short_error(e)),
            })
        }
    };
    let id = backup.id.clone();
    let claimed = coffer_format::read_header_info(&head[..]);
    let key_id = claimed.as_ref().ok().map(|info| info.key_id);
    let standing = match (key, claimed) {
        (_, Err(e)) => Standing::Damaged(ClientError::from_format(&id, e)),
        (None, Ok(_)) => Standing::Unchecked,
        (Some(key), Ok(info)) => match coffer_format::check_header(key, &id, &head) {
            Ok(_) => Standing::Ours,
            Err(FormatError::WrongKey) => Standing::OtherKey {
                key_id: info.key_id,
            },
            Err(e) => Standing::Damaged(ClientError::from_format(&id, e)),
        },
    };
    Ok(Entry {
        backup,
        key_id,
        standing,
    })
}

/// A storage error's message cut to [`MAX_REASON_CHARS`], to be kept in an entry.
fn short_error(e: ClientError) -> ClientError {
    match e {
        ClientError::Storage {
            action,
            message,
            retryable,
        } => ClientError::Storage {
            action,
            message: shorten(&message, MAX_REASON_CHARS),
            retryable,
        },
        other => other,
    }
}

/// Every listed backup, oldest first (by name), each examined under `key`, a few at once.
pub async fn survey(storage: &Storage, key: Option<&BackupKey>) -> Result<Vec<Entry>, ClientError> {
    let listed = storage.list().await?;
    futures_util::stream::iter(listed)
        .map(|backup| examine(storage, key, backup))
        .buffered(HEADER_READS_AT_ONCE)
        .try_collect()
        .await
}

/// A newer-named backup that was not chosen, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PassedOver {
    pub id: String,
    pub reason: String,
}

/// The backup to read, and what was passed over to find it.
#[derive(Debug)]
pub struct Choice {
    pub backup: StoredBackup,
    /// The newest [`PASSED_OVER_NAMED`] backups passed over, newest first.
    pub passed_over: Vec<PassedOver>,
    /// How many more were passed over.
    pub passed_over_more: usize,
}

/// The backup named `id`; with no id, the newest one whose header verifies under `key`,
/// trying from the newest name backwards (one header read each). Each newer-named backup
/// that failed is in [`Choice::passed_over`]. When none verifies, the newest one's error:
/// a wrong key, an integrity failure, a newer format.
///
/// A named backup is not checked here: the read that follows checks its header anyway.
pub async fn choose(
    storage: &Storage,
    key: &BackupKey,
    id: Option<&str>,
) -> Result<Choice, ClientError> {
    if let Some(id) = id {
        return Ok(Choice {
            backup: storage.find(Some(id)).await?,
            passed_over: Vec::new(),
            passed_over_more: 0,
        });
    }
    let listed = storage.list().await?;
    if listed.is_empty() {
        return Err(ClientError::NoBackups(storage.url().display()));
    }
    let mut passed_over = Vec::new();
    let mut passed_over_more = 0;
    let mut newest_error = None;
    let mut examined = futures_util::stream::iter(listed.into_iter().rev())
        .map(|backup| examine(storage, Some(key), backup))
        .buffered(HEADER_READS_AT_ONCE);
    while let Some(entry) = examined.next().await {
        let entry = entry?;
        let problem = entry.problem();
        match entry.standing {
            Standing::Ours => {
                return Ok(Choice {
                    backup: entry.backup,
                    passed_over,
                    passed_over_more,
                })
            }
            Standing::OtherKey { .. } => {
                newest_error.get_or_insert(ClientError::WrongKey);
            }
            Standing::Damaged(e) => {
                newest_error.get_or_insert(e);
            }
            Standing::Unchecked => {}
        }
        if passed_over.len() < PASSED_OVER_NAMED {
            passed_over.push(PassedOver {
                id: entry.backup.id,
                reason: problem.unwrap_or_default(),
            });
        } else {
            passed_over_more += 1;
        }
    }
    Err(newest_error.unwrap_or_else(|| ClientError::NoBackups(storage.url().display())))
}

/// The warning to give when storage does not show, as this key's, the last backup this
/// device made (`last`): a provider hiding it, or serving an old copy under its name.
/// `found` is the entry listed under that id, if any. `None` when all is well, or when the
/// last backup went to another storage location than `storage_url`.
pub fn last_backup_warning(
    last: &LastBackup,
    storage_url: &str,
    found: Option<&Entry>,
) -> Option<String> {
    if last.storage != storage_url {
        return None;
    }
    match found {
        None => Some(missing_warning(last, None)),
        // Without a key, being listed is all that can be checked.
        Some(e) if matches!(e.standing, Standing::Ours | Standing::Unchecked) => None,
        Some(e) => Some(missing_warning(last, e.problem())),
    }
}

/// After [`choose`] picked `chosen`, the newest backup that verifies, passing over
/// `passed_over`: the warning to give when it is older than the last backup this device
/// made, which storage then failed to show.
pub fn last_backup_warning_for_choice(
    last: &LastBackup,
    storage_url: &str,
    chosen: &str,
    passed_over: &[PassedOver],
) -> Option<String> {
    if last.storage != storage_url || chosen >= last.id.as_str() {
        return None;
    }
    let failed = passed_over.iter().find(|p| p.id == last.id);
    Some(missing_warning(last, failed.map(|p| p.reason.clone())))
}

/// `problem`: why the last backup, listed, does not verify; `None` when it is not listed.
fn missing_warning(last: &LastBackup, problem: Option<String>) -> String {
    let what = match BackupId::parse(&last.id) {
        Some(id) => format!(
            "{}, {}",
            last.id,
            humantime::format_rfc3339_seconds(id.created())
        ),
        None => last.id.clone(),
    };
    match problem {
        None => format!(
            "the newest backup this device made ({what}) is not in storage: the provider may \
             be hiding it or serving an old copy"
        ),
        Some(problem) => format!(
            "the newest backup this device made ({what}) is in storage but does not verify: \
             {problem}; the provider may be serving an old copy under its name"
        ),
    }
}

/// [`last_backup_warning`] from a listing, reading only the last backup's header.
pub async fn check_last_backup(
    storage: &Storage,
    key: &BackupKey,
    listed: &[StoredBackup],
    last: &LastBackup,
) -> Result<Option<String>, ClientError> {
    let url = storage.url().display();
    if last.storage != url {
        return Ok(None);
    }
    let found = match listed.iter().find(|b| b.id == last.id) {
        Some(b) => Some(examine(storage, Some(key), b.clone()).await?),
        None => None,
    };
    Ok(last_backup_warning(last, &url, found.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn stored(id: &str) -> StoredBackup {
        StoredBackup {
            id: id.into(),
            size: 1,
            created: UNIX_EPOCH,
            segments: None,
        }
    }

    fn last(id: &str) -> LastBackup {
        LastBackup {
            id: id.into(),
            stored_bytes: 1,
            storage: "/srv/b".into(),
        }
    }

    const ID: &str = "20261127T101018042Z-deadbeef";

    #[test]
    fn the_last_backup_must_be_listed_as_ours() {
        let ours = Entry {
            backup: stored(ID),
            key_id: None,
            standing: Standing::Ours,
        };
        assert_eq!(last_backup_warning(&last(ID), "/srv/b", Some(&ours)), None);

        let missing = last_backup_warning(&last(ID), "/srv/b", None).unwrap();
        assert!(
            missing.contains(&format!("({ID}, 2026-11-27T10:10:18Z) is not in storage")),
            "{missing}"
        );
        assert!(
            missing.contains("hiding it or serving an old copy"),
            "{missing}"
        );

        let replaced = Entry {
            backup: stored(ID),
            key_id: None,
            standing: Standing::Damaged(ClientError::from_format(
                ID,
                FormatError::IdMismatch {
                    expected: ID.into(),
                    found: "20200101T000000000Z-00000000".into(),
                },
            )),
        };
        let w = last_backup_warning(&last(ID), "/srv/b", Some(&replaced)).unwrap();
        assert!(
            w.contains("does not verify") && w.contains("renamed or replayed"),
            "{w}"
        );

        // Another storage location than the one the last backup went to: nothing to say.
        assert_eq!(last_backup_warning(&last(ID), "/elsewhere", None), None);
    }

    #[test]
    fn a_choice_older_than_the_last_backup_is_a_rollback() {
        let older = "20261127T101018041Z-00000000";
        let w = last_backup_warning_for_choice(&last(ID), "/srv/b", older, &[]).unwrap();
        assert!(w.contains("is not in storage"), "{w}");
        let passed = [PassedOver {
            id: ID.into(),
            reason: "renamed or replayed".into(),
        }];
        let w = last_backup_warning_for_choice(&last(ID), "/srv/b", older, &passed).unwrap();
        assert!(w.contains("does not verify: renamed or replayed"), "{w}");
        // The last backup itself, or a newer one (another device's), is no rollback.
        for id in [ID, "20261127T101018043Z-00000000"] {
            assert_eq!(
                last_backup_warning_for_choice(&last(ID), "/srv/b", id, &[]),
                None
            );
        }
        assert_eq!(
            last_backup_warning_for_choice(&last(ID), "/elsewhere", older, &[]),
            None
        );
    }

    #[test]
    fn problems_are_named_without_repeating_the_id() {
        let other = Entry {
            backup: stored(ID),
            key_id: Some(KeyId([0xab; 8])),
            standing: Standing::OtherKey {
                key_id: KeyId([0xab; 8]),
            },
        };
        assert_eq!(
            other.problem().unwrap(),
            "made with another key (abababababababab)"
        );
        let cut = Entry {
            backup: stored(ID),
            key_id: None,
            standing: Standing::Damaged(ClientError::from_format(
                ID,
                FormatError::TruncatedHeader { got: 60 },
            )),
        };
        let p = cut.problem().unwrap();
        assert!(
            p.contains("ends inside its header") && !p.contains(ID),
            "{p}"
        );
        let newer = Entry {
            backup: stored(ID),
            key_id: None,
            standing: Standing::Damaged(ClientError::from_format(
                ID,
                FormatError::UnsupportedVersion(3),
            )),
        };
        assert!(newer.problem().unwrap().starts_with("needs a newer Coffer"));
        let unchecked = Entry {
            backup: stored(ID),
            key_id: None,
            standing: Standing::Unchecked,
        };
        assert_eq!(unchecked.problem(), None);
        assert_eq!(
            last_backup_warning(&last(ID), "/srv/b", Some(&unchecked)),
            None
        );
    }
}
