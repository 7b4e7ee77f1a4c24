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
    fs::write(&path, &good[..116 + 65552]).unwrap();
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
