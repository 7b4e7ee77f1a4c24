//! Telling a key's backups from everything else a storage provider may list, through real
//! folder storage: renamed and replayed copies, cut headers, a real header in front of
//! garbage, another key's backups, a newer format.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use coffer_client::catalog::{self, Standing};
use coffer_client::{ClientError, Silent, Storage, StorageUrl};
use coffer_format::{BackupId, BackupKey, Cipher, FormatError, HEADER_LEN};

fn storage(dir: &Path) -> Storage {
    Storage::open(&StorageUrl::Fs { root: dir.into() }).unwrap()
}

fn tar_zst(text: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(text.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "version.txt", text.as_bytes())
        .unwrap();
    zstd::encode_all(&b.into_inner().unwrap()[..], 1).unwrap()
}

/// Stores a backup made as `made_as` under the name `stored_as`.
fn put(store: &Path, key: &BackupKey, made_as: &str, stored_as: &str, text: &str) -> Vec<u8> {
    let id = BackupId::parse(made_as).unwrap();
    let sealed =
        coffer_format::encrypt_to_vec(key, Cipher::Aes256Gcm, &id, &tar_zst(text)).unwrap();
    write(store, stored_as, &sealed);
    sealed
}

fn write(store: &Path, name: &str, bytes: &[u8]) {
    fs::create_dir_all(store.join("backups")).unwrap();
    fs::write(store.join("backups").join(format!("{name}.coffer")), bytes).unwrap();
}

const OLD: &str = "20260101T000000000Z-00000001";
const NEW: &str = "20260102T000000000Z-00000002";
const THEIRS: &str = "20260103T000000000Z-00000003";
const REPLAYED: &str = "20991231T235959999Z-00000000";
const CUT: &str = "20991231T235959998Z-00000000";
const GARBAGE: &str = "20991231T235959997Z-00000000";
const NEWER_FORMAT: &str = "20991231T235959996Z-00000000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_backup_is_classified_from_its_header_and_choose_takes_the_newest_of_ours() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    let key = BackupKey::generate().unwrap();
    let other = BackupKey::generate().unwrap();
    let old = put(&store, &key, OLD, OLD, "old");
    let new = put(&store, &key, NEW, NEW, "new");
    put(&store, &other, THEIRS, THEIRS, "theirs");
    write(&store, REPLAYED, &old);
    write(&store, CUT, &new[..60]);
    write(
        &store,
        GARBAGE,
        &[&new[..HEADER_LEN], &[0x55; 3000][..]].concat(),
    );
    let mut v3 = new.clone();
    v3[6] = 3;
    write(&store, NEWER_FORMAT, &v3);
    let st = storage(&store);

    let entries = catalog::survey(&st, Some(&key)).await.unwrap();
    let standing = |id: &str| {
        &entries
            .iter()
            .find(|e| e.backup.id == id)
            .unwrap_or_else(|| panic!("{id} not listed"))
            .standing
    };
    assert!(matches!(standing(OLD), Standing::Ours));
    assert!(matches!(standing(NEW), Standing::Ours));
    assert!(matches!(standing(THEIRS), Standing::OtherKey { key_id } if *key_id == other.id()));
    for (id, what) in [
        (REPLAYED, "renamed or replayed"),
        (GARBAGE, "renamed or replayed"),
        (CUT, "ends inside its header"),
        (NEWER_FORMAT, "needs a newer Coffer"),
    ] {
        let e = entries.iter().find(|e| e.backup.id == id).unwrap();
        assert!(matches!(e.standing, Standing::Damaged(_)), "{id}: {e:?}");
        let p = e.problem().unwrap();
        assert!(p.contains(what), "{id}: {p}");
    }
    // The replayed copy's problem names the backup it really is.
    let replayed = entries.iter().find(|e| e.backup.id == REPLAYED).unwrap();
    assert!(replayed.problem().unwrap().contains(OLD));

    // Without a key nothing is judged; the claimed key ids are still shown.
    let unchecked = catalog::survey(&st, None).await.unwrap();
    let e = unchecked.iter().find(|e| e.backup.id == REPLAYED).unwrap();
    assert!(matches!(e.standing, Standing::Unchecked));
    assert_eq!(e.key_id, Some(key.id()));

    // No id: the newest backup of ours, with every newer name passed over and why.
    let choice = catalog::choose(&st, &key, None).await.unwrap();
    assert_eq!(choice.backup.id, NEW);
    let passed: Vec<&str> = choice.passed_over.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(passed, [REPLAYED, CUT, GARBAGE, NEWER_FORMAT, THEIRS]);
    assert!(choice.passed_over[4].reason.contains("another key"));

    // restore and verify take it, and say what they passed over.
    let target = d.path().join("restored");
    let report = coffer_client::restore(&st, &key, None, &target, Arc::new(Silent))
        .await
        .unwrap();
    assert_eq!(report.id, NEW);
    assert_eq!(report.created, "2026-01-02T00:00:00.000Z");
    assert_eq!(report.passed_over.len(), 5);
    assert_eq!(
        fs::read_to_string(target.join("version.txt")).unwrap(),
        "new"
    );

    // Named, the replayed copy is an integrity failure, whatever reads it.
    let err = coffer_client::verify(&st, &key, Some(REPLAYED), Arc::new(Silent))
        .await
        .unwrap_err();
    match &err {
        ClientError::Integrity {
            id,
            source: FormatError::IdMismatch { expected, found },
        } => {
            assert_eq!(
                (id.as_str(), expected.as_str(), found.as_str()),
                (REPLAYED, REPLAYED, OLD)
            );
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(err.class(), coffer_client::ErrorClass::Integrity);
    let target = d.path().join("by-name");
    let err = coffer_client::restore(&st, &key, Some(REPLAYED), &target, Arc::new(Silent))
        .await
        .unwrap_err();
    assert_eq!(err.class(), coffer_client::ErrorClass::Integrity, "{err}");
    assert!(!target.exists());
    let out = d.path().join("payload");
    let err = coffer_client::export_payload(&st, &key, Some(REPLAYED), &out)
        .await
        .unwrap_err();
    assert_eq!(err.class(), coffer_client::ErrorClass::Integrity, "{err}");
    assert!(!out.exists());
    let choice = coffer_client::export_payload(&st, &key, None, &out)
        .await
        .unwrap();
    assert_eq!(choice.backup.id, NEW);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_nothing_verifies_the_newest_failure_is_reported() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    let st = storage(&store);
    fs::create_dir_all(&store).unwrap();
    let key = BackupKey::generate().unwrap();
    assert!(matches!(
        catalog::choose(&st, &key, None).await,
        Err(ClientError::NoBackups(_))
    ));

    // Only another key's backups: a wrong key, as before there was a choice.
    let other = BackupKey::generate().unwrap();
    put(&store, &other, OLD, OLD, "theirs");
    assert!(matches!(
        catalog::choose(&st, &key, None).await,
        Err(ClientError::WrongKey)
    ));

    // A damaged newest one in front of it: that one's integrity failure.
    let sealed = put(&store, &key, NEW, NEW, "mine");
    let mut flipped = sealed.clone();
    flipped[100] ^= 1;
    write(&store, NEW, &flipped);
    match catalog::choose(&st, &key, None).await {
        Err(ClientError::Integrity { id, source }) => {
            assert_eq!(id, NEW);
            assert!(matches!(source, FormatError::HeaderTampered));
        }
        other => panic!("{other:?}"),
    }
}
