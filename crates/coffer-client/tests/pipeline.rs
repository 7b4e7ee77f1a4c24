//! The backup, restore and verify pipelines through real fs storage.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use coffer_client::{BackupOptions, ClientError, Silent, Storage, StorageUrl};
use coffer_format::{BackupKey, Cipher};

fn storage(dir: &Path) -> Storage {
    Storage::open(&StorageUrl::Fs { root: dir.into() }).unwrap()
}

fn sample(dir: &Path) -> std::path::PathBuf {
    let src = dir.join("data");
    fs::create_dir_all(src.join("sub")).unwrap();
    // Incompressible, so the backup spans several chunks.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let big: Vec<u8> = (0..700_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    fs::write(src.join("sub/big.bin"), &big).unwrap();
    fs::write(src.join("note.txt"), "hello").unwrap();
    src
}

fn leftovers(parent: &Path) -> Vec<String> {
    fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".coffer-"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_with_both_ciphers() {
    for cipher in [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305] {
        let d = tempfile::tempdir().unwrap();
        let src = sample(d.path());
        let st = storage(&d.path().join("store"));
        let key = BackupKey::generate().unwrap();
        let opts = BackupOptions {
            cipher,
            ..BackupOptions::default()
        };
        let rep = coffer_client::backup(
            &st,
            &key,
            std::slice::from_ref(&src),
            opts,
            Arc::new(Silent),
        )
        .await
        .unwrap();
        assert_eq!(rep.contents.files, 2);
        let listed = st.list().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, rep.id);
        assert_eq!(listed[0].size, rep.stored_bytes);
        let v = coffer_client::verify(&st, &key, None, Arc::new(Silent))
            .await
            .unwrap();
        assert_eq!(v.contents, rep.contents);
        let target = d.path().join("restored");
        coffer_client::restore(&st, &key, Some(&rep.id), &target, Arc::new(Silent))
            .await
            .unwrap();
        assert_eq!(
            fs::read(target.join("data/sub/big.bin")).unwrap(),
            fs::read(src.join("sub/big.bin")).unwrap()
        );
        assert!(leftovers(d.path()).is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_upload_is_never_listed_and_hides_nothing() {
    let d = tempfile::tempdir().unwrap();
    let src = sample(d.path());
    let st = storage(&d.path().join("store"));
    let key = BackupKey::generate().unwrap();
    let first = coffer_client::backup(
        &st,
        &key,
        &[src],
        BackupOptions::default(),
        Arc::new(Silent),
    )
    .await
    .unwrap();

    // Dropped halfway (a crash), and aborted (an error): neither becomes a backup.
    let mut up = st.begin_upload("20991231T235959Z-0000aaaa").await.unwrap();
    up.write(vec![1; 5 << 20]).await.unwrap();
    drop(up);
    let mut up = st.begin_upload("20991231T235959Z-0000bbbb").await.unwrap();
    up.write(vec![2; 1 << 20]).await.unwrap();
    up.abort().await;

    let listed = st.list().await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(st.find(None).await.unwrap().id, first.id);
    coffer_client::verify(&st, &key, None, Arc::new(Silent))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_source_uploads_nothing() {
    let d = tempfile::tempdir().unwrap();
    let st = storage(&d.path().join("store"));
    let key = BackupKey::generate().unwrap();
    let res = coffer_client::backup(
        &st,
        &key,
        &[d.path().join("nope")],
        BackupOptions::default(),
        Arc::new(Silent),
    )
    .await;
    assert!(matches!(res, Err(ClientError::Io { .. })), "{res:?}");
    assert!(st.list().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_restores_leave_nothing_behind() {
    let d = tempfile::tempdir().unwrap();
    let src = sample(d.path());
    let store = d.path().join("store");
    let st = storage(&store);
    let key = BackupKey::generate().unwrap();
    let rep = coffer_client::backup(
        &st,
        &key,
        &[src],
        BackupOptions::default(),
        Arc::new(Silent),
    )
    .await
    .unwrap();
    let path = store.join("backups").join(format!("{}.coffer", rep.id));
    let good = fs::read(&path).unwrap();
    let out = d.path().join("out");
    fs::create_dir(&out).unwrap();
    let target = out.join("restored");

    // Wrong key: refused as such.
    let res = coffer_client::restore(
        &st,
        &BackupKey::generate().unwrap(),
        None,
        &target,
        Arc::new(Silent),
    )
    .await;
    assert!(matches!(res, Err(ClientError::WrongKey)), "{res:?}");

    // Flipped bit near the end: files were already staged when it is found.
    let mut bad = good.clone();
    let at = bad.len() - 100;
    bad[at] ^= 0x40;
    fs::write(&path, &bad).unwrap();
    let res = coffer_client::restore(&st, &key, None, &target, Arc::new(Silent)).await;
    assert!(matches!(res, Err(ClientError::Integrity { .. })), "{res:?}");

    // Truncated at a chunk boundary.
    fs::write(&path, &good[..coffer_format::HEADER_LEN + 65552]).unwrap();
    let res = coffer_client::restore(&st, &key, None, &target, Arc::new(Silent)).await;
    assert!(matches!(res, Err(ClientError::Integrity { .. })), "{res:?}");

    assert!(!target.exists());
    assert!(
        fs::read_dir(&out).unwrap().next().is_none(),
        "staging left behind"
    );

    // And the intact backup still restores.
    fs::write(&path, &good).unwrap();
    coffer_client::restore(&st, &key, None, &target, Arc::new(Silent))
        .await
        .unwrap();
}

/// Stores `payload` (the plaintext of a backup: normally zstd of a tar) as a backup.
fn store_raw_backup(store: &Path, key: &BackupKey, payload: &[u8]) -> String {
    let id = "20260101T000000000Z-00000000".to_string();
    let backup_id = coffer_format::BackupId::parse(&id).unwrap();
    let sealed =
        coffer_format::encrypt_to_vec(key, Cipher::Aes256Gcm, &backup_id, payload).unwrap();
    fs::create_dir_all(store.join("backups")).unwrap();
    fs::write(store.join("backups").join(format!("{id}.coffer")), sealed).unwrap();
    id
}

fn small_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(5);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "r/secret.txt", &b"hello"[..])
        .unwrap();
    b.into_inner().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_after_the_archive_fails_as_integrity_and_leaves_nothing() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    let key = BackupKey::generate().unwrap();
    let mut payload = zstd::encode_all(&small_tar()[..], 1).unwrap();
    payload.extend_from_slice(b"this is not a zstd frame");
    store_raw_backup(&store, &key, &payload);
    let target = d.path().join("out/restored");
    let res = coffer_client::restore(&storage(&store), &key, None, &target, Arc::new(Silent)).await;
    let err = res.unwrap_err();
    assert_eq!(err.class(), coffer_client::ErrorClass::Integrity, "{err:?}");
    assert!(
        !d.path().join("out").exists(),
        "the restore left its parent folders or staging"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_that_ask_for_a_huge_window_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    let key = BackupKey::generate().unwrap();
    let mut z = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
    z.set_parameter(zstd::stream::raw::CParameter::WindowLog(27))
        .unwrap();
    z.set_parameter(zstd::stream::raw::CParameter::EnableLongDistanceMatching(
        true,
    ))
    .unwrap();
    std::io::Write::write_all(&mut z, &small_tar()).unwrap();
    let payload = z.finish().unwrap();
    store_raw_backup(&store, &key, &payload);
    let res = coffer_client::verify(&storage(&store), &key, None, Arc::new(Silent)).await;
    assert!(
        matches!(res, Err(ClientError::BadArchive { .. })),
        "{res:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_from_a_newer_format_is_unsupported_not_tampered() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    let key = BackupKey::generate().unwrap();
    let id = store_raw_backup(
        &store,
        &key,
        &zstd::encode_all(&small_tar()[..], 1).unwrap(),
    );
    let path = store.join("backups").join(format!("{id}.coffer"));
    let mut bytes = fs::read(&path).unwrap();
    bytes[6] = coffer_format::header::VERSION + 1;
    fs::write(&path, bytes).unwrap();
    let res = coffer_client::verify(&storage(&store), &key, None, Arc::new(Silent)).await;
    assert!(
        matches!(res, Err(ClientError::Unsupported { .. })),
        "{res:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_a_missing_storage_location_does_not_create_it() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("not-mounted");
    let res = Storage::open_existing(
        &StorageUrl::Fs {
            root: missing.clone(),
        },
        &Default::default(),
    );
    assert!(matches!(res, Err(ClientError::StorageMissing(_))));
    assert!(!missing.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_payloads_are_private_and_never_overwrite() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    let key = BackupKey::generate().unwrap();
    store_raw_backup(
        &store,
        &key,
        &zstd::encode_all(&small_tar()[..], 1).unwrap(),
    );
    let out = d.path().join("payload.tar.zst");
    coffer_client::export_payload(&storage(&store), &key, None, &out)
        .await
        .unwrap();
    assert_eq!(
        fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let res = coffer_client::export_payload(&storage(&store), &key, None, &out).await;
    assert!(matches!(res, Err(ClientError::Usage(_))), "{res:?}");
    assert_eq!(
        fs::read_dir(d.path()).unwrap().count(),
        2,
        "no partial file left"
    );
}
