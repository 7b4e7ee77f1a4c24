//! Failures through the real `coffer` binary: each one gets its documented exit code, a
//! clear message, and leaves nothing partial behind.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;

/// An enabled work area with the sample tree plus 300 KB of random data backed up
/// (several format chunks). Returns the env, the tree and the backup id.
fn backed_up() -> (Env, PathBuf, String) {
    let env = Env::enabled();
    let src = env.path("src");
    fs::create_dir(&src).unwrap();
    let tree = sample_tree(&src);
    write_random_file(&tree.join("random.bin"), 300_000);
    let id = env.backup(&[&tree]);
    (env, tree, id)
}

/// Runs restore into `target` (key from the profile unless `key` is given).
fn restore_into(env: &Env, target: &Path, key: Option<&str>) -> Out {
    let mut call = env.coffer().arg("restore").arg("--into").arg(target);
    if let Some(k) = key {
        call = call.arg("--key-stdin").stdin(k);
    }
    call.run()
}

#[test]
fn wrong_key_is_refused_by_verify_restore_and_decrypt() {
    let (env, _tree, _id) = backed_up();
    let wrong = other_key();

    env.coffer()
        .args(["verify", "--key-stdin"])
        .stdin(&wrong)
        .run()
        .code(WRONG_KEY)
        .stderr_has("this key does not belong to this backup");

    let target = env.path("out/restored");
    restore_into(&env, &target, Some(&wrong))
        .code(WRONG_KEY)
        .stderr_has("does not belong");
    assert_nothing_left(&target);

    env.coffer()
        .json()
        .args(["restore", "--key-stdin", "--into"])
        .arg(&target)
        .stdin(&wrong)
        .run()
        .json_error("wrong-key", WRONG_KEY);
    assert_nothing_left(&target);

    let payload = env.path("out/payload.tar.zst");
    env.coffer()
        .args(["decrypt", "--key-stdin", "--output"])
        .arg(&payload)
        .stdin(&wrong)
        .run()
        .code(WRONG_KEY);
    assert_nothing_left(&payload);

    // A new device typing a wrong key does not adopt it.
    let device = env.fresh_profile("device");
    coffer(&device)
        .args(["restore", "--key-stdin", "--from"])
        .arg(&env.storage)
        .arg("--into")
        .arg(&target)
        .stdin(&wrong)
        .run()
        .code(WRONG_KEY);
    assert_nothing_left(&target);
    let s = coffer(&device).json().arg("status").run().ok().json();
    assert_eq!(s["enabled"], false, "a wrong key was adopted: {s}");
}

#[test]
fn malformed_keys_on_stdin_are_usage_errors_that_name_the_problem() {
    let (env, _tree, _id) = backed_up();
    let digits = env.key.replace(' ', "");
    let target = env.path("restored");

    // A non-hex character at position 5.
    let mut bad = digits.clone();
    bad.replace_range(4..5, "g");
    restore_into(&env, &target, Some(&bad))
        .code(USAGE)
        .stderr_has("character 5")
        .stderr_has("not a hex digit");
    assert_nothing_left(&target);

    // One digit short, and one too many.
    restore_into(&env, &target, Some(&digits[1..]))
        .code(USAGE)
        .stderr_has("64 hex digits")
        .stderr_has("63");
    assert_nothing_left(&target);
    env.coffer()
        .args(["verify", "--key-stdin"])
        .stdin(format!("{digits}0"))
        .run()
        .code(USAGE)
        .stderr_has("65");

    // Nothing at all.
    env.coffer()
        .json()
        .args(["verify", "--key-stdin"])
        .stdin("")
        .run()
        .json_error("usage", USAGE);

    // The message never echoes the key.
    let out = restore_into(&env, &target, Some(&bad));
    assert!(!out.stderr.contains(&digits[8..]), "{}", out.stderr);
}

#[test]
fn a_tampered_backup_fails_verify_restore_and_decrypt_leaving_nothing() {
    let (env, _tree, id) = backed_up();
    let stored = env.stored(&id);
    let good = fs::read(&stored).unwrap();
    let target = env.path("restored");
    let payload = env.path("payload.tar.zst");

    let check = |what: &str, bytes: &[u8]| {
        fs::write(&stored, bytes).unwrap();
        env.coffer()
            .arg("verify")
            .run()
            .code(INTEGRITY)
            .stderr_has("integrity");
        restore_into(&env, &target, None)
            .code(INTEGRITY)
            .stderr_has(&id);
        assert_nothing_left(&target);
        env.coffer()
            .arg("decrypt")
            .arg("--output")
            .arg(&payload)
            .run()
            .code(INTEGRITY);
        assert_nothing_left(&payload);
        eprintln!("{what}: refused");
    };

    // One flipped bit in the middle of the stream.
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    check("flipped byte", &flipped);

    // A flipped bit in the header.
    let mut header = good.clone();
    header[40] ^= 0x80;
    check("flipped header byte", &header);

    // Two whole chunks swapped, a chunk duplicated, bytes appended.
    let c = SEALED_CHUNK as usize;
    let h = HEADER_LEN as usize;
    assert!(good.len() > h + 3 * c, "the sample backup is too small");
    let mut swapped = good.clone();
    let (first, second) = swapped[h..h + 2 * c].split_at_mut(c);
    first.swap_with_slice(second);
    check("chunks swapped", &swapped);
    let mut duplicated = good[..h + 2 * c].to_vec();
    duplicated.extend_from_slice(&good[h + c..]);
    check("chunk duplicated", &duplicated);
    let mut appended = good.clone();
    appended.push(0);
    check("byte appended", &appended);

    // --json names the class.
    fs::write(&stored, &flipped).unwrap();
    env.coffer()
        .json()
        .arg("verify")
        .run()
        .json_error("integrity", INTEGRITY);

    // The untouched backup still restores.
    fs::write(&stored, &good).unwrap();
    restore_into(&env, &target, None).ok();
}

#[test]
fn a_truncated_backup_fails_at_chunk_boundaries_and_mid_chunk() {
    let (env, _tree, id) = backed_up();
    let stored = env.stored(&id);
    let good = fs::read(&stored).unwrap();
    let target = env.path("restored");
    assert!(good.len() as u64 > HEADER_LEN + 3 * SEALED_CHUNK);

    let cuts = [
        ("after the header", HEADER_LEN),
        ("at the first chunk boundary", HEADER_LEN + SEALED_CHUNK),
        (
            "at the second chunk boundary",
            HEADER_LEN + 2 * SEALED_CHUNK,
        ),
        ("mid-chunk", HEADER_LEN + 2 * SEALED_CHUNK + 1000),
        ("one byte short", good.len() as u64 - 1),
        ("inside the header", 60),
    ];
    for (what, len) in cuts {
        fs::write(&stored, &good[..len as usize]).unwrap();
        let v = env.coffer().json().arg("verify").run();
        assert_eq!(v.code, INTEGRITY, "verify, cut {what}: {v:?}");
        v.json_error("integrity", INTEGRITY);
        let r = restore_into(&env, &target, None);
        assert_eq!(r.code, INTEGRITY, "restore, cut {what}: {r:?}");
        r.stderr_has("integrity");
        assert_nothing_left(&target);
    }
}

#[test]
fn restore_into_a_non_empty_folder_is_refused_and_leaves_it_untouched() {
    let (env, _tree, _id) = backed_up();
    let target = env.path("busy");
    fs::create_dir_all(target.join("sub")).unwrap();
    fs::write(target.join("keep.txt"), "mine\n").unwrap();
    fs::write(target.join("sub/also.txt"), "also mine\n").unwrap();

    restore_into(&env, &target, None)
        .code(USAGE)
        .stderr_has("already exists");
    assert_eq!(names_in(&target), ["keep.txt", "sub"]);
    assert_eq!(names_in(&target.join("sub")), ["also.txt"]);
    assert_eq!(
        fs::read_to_string(target.join("keep.txt")).unwrap(),
        "mine\n"
    );
    assert_eq!(
        fs::read_to_string(target.join("sub/also.txt")).unwrap(),
        "also mine\n"
    );
    assert!(leftovers(target.parent().unwrap()).is_empty());

    // A target that is a file is refused too.
    let file = env.path("a-file");
    fs::write(&file, "data").unwrap();
    restore_into(&env, &file, None)
        .code(USAGE)
        .stderr_has("already exists");
    assert_eq!(fs::read_to_string(&file).unwrap(), "data");
}

#[test]
fn restore_into_an_existing_empty_folder_works() {
    let (env, tree, _id) = backed_up();
    let target = env.path("empty");
    fs::create_dir(&target).unwrap();
    restore_into(&env, &target, None).ok();
    assert_eq!(names_in(&target), ["tree"]);
    assert_same_tree(&tree, &target.join("tree"));
    assert!(leftovers(target.parent().unwrap()).is_empty());
}

/// Backs up 3 MB of incompressible data and restores it into a 2 MB tmpfs. `None` when
/// no tmpfs can be mounted here.
fn restore_onto_full_disk() -> Option<(Env, Mount, PathBuf, Out)> {
    let env = Env::enabled();
    let src = env.path("src");
    fs::create_dir(&src).unwrap();
    write_random_file(&src.join("big.bin"), 3 << 20);
    write_random_file(&src.join("more.bin"), 100_000);
    env.backup(&[&src]);

    let mnt = env.path("small-disk");
    let mount = Mount::tmpfs(&mnt, "size=2m")?;
    let target = mnt.join("restored");
    let out = restore_into(&env, &target, None);
    Some((env, mount, target, out))
}

#[test]
fn restore_onto_a_full_disk_fails_with_io_and_leaves_nothing() {
    let Some((_env, mount, target, out)) = restore_onto_full_disk() else {
        return;
    };
    out.code(IO)
        .stderr_has("cannot write")
        .stderr_has("big.bin");
    assert_nothing_left(&target);
    assert!(
        names_in(&mount.dir).is_empty(),
        "the full disk holds leftovers: {:?}",
        names_in(&mount.dir)
    );
}

#[test]
fn a_full_disk_error_says_so() {
    let Some((_env, _mount, target, out)) = restore_onto_full_disk() else {
        return;
    };
    out.code(IO).stderr_has("no space left on device");
    assert_nothing_left(&target);
}

#[test]
fn restore_into_a_read_only_file_system_fails_with_io() {
    let (env, _tree, _id) = backed_up();
    let mnt = env.path("read-only");
    let Some(_mount) = Mount::tmpfs(&mnt, "ro,size=1m") else {
        return;
    };

    // A new folder inside the read-only file system.
    let target = mnt.join("restored");
    restore_into(&env, &target, None)
        .code(IO)
        .stderr_has("read-only file system");
    assert_nothing_left(&target);

    // The read-only mount point itself, an existing empty folder: staging happens beside
    // it, and the move into place fails.
    let out = restore_into(&env, &mnt, None);
    out.code(IO);
    assert!(names_in(&mnt).is_empty());
    let left = leftovers(env.tmp.path());
    assert!(left.is_empty(), "staging left behind: {left:?}");
}

#[test]
fn backing_up_a_missing_path_fails_clearly_and_stores_nothing() {
    let env = Env::enabled();
    let missing = env.path("no-such-folder");
    let out = env.coffer().arg("backup").arg(&missing).run();
    // The code treats a missing source as an I/O error (6); a usage error (2) is also fine.
    assert!(
        out.code == IO || out.code == USAGE,
        "backup of a missing path exited {}: {out:?}",
        out.code
    );
    out.stderr_has(&missing.display().to_string())
        .stderr_has("no such file or directory");
    assert!(env.list_ids().is_empty());

    // One real and one missing source: still nothing stored.
    let real = env.path("real.txt");
    fs::write(&real, "real\n").unwrap();
    let out = env
        .coffer()
        .json()
        .arg("backup")
        .arg(&real)
        .arg(&missing)
        .run();
    let class = if out.code == USAGE { "usage" } else { "io" };
    out.json_error(class, out.code);
    assert!(env.list_ids().is_empty());
    let s = env.coffer().json().arg("status").run().ok().json();
    assert_eq!(s["last_backup"], serde_json::Value::Null, "{s}");
}

#[test]
fn empty_storage_lists_nothing_and_restore_is_not_found() {
    let env = Env::enabled();
    // A storage location that does not exist is not created by reading commands.
    env.coffer()
        .arg("list")
        .run()
        .code(NOT_FOUND)
        .stderr_has("does not exist");
    assert!(!env.path("storage").exists());
    fs::create_dir(env.path("storage")).unwrap();
    env.coffer().arg("list").run().ok().stdout_has("no backups");
    let v = env.coffer().json().arg("list").run().ok().json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["backups"].as_array().map(Vec::len), Some(0), "{v}");

    let target = env.path("restored");
    restore_into(&env, &target, None)
        .code(NOT_FOUND)
        .stderr_has("no backup found");
    assert_nothing_left(&target);
    env.coffer()
        .json()
        .args(["restore", "--into"])
        .arg(&target)
        .run()
        .json_error("not-found", NOT_FOUND);
    assert_nothing_left(&target);
    env.coffer().arg("verify").run().code(NOT_FOUND);

    // With a backup in place, an unknown id is not found either.
    let f = env.path("f.txt");
    fs::write(&f, "x").unwrap();
    env.backup(&[&f]);
    env.coffer()
        .args(["restore", "--backup", "20990101T000000Z-deadbeef", "--into"])
        .arg(&target)
        .run()
        .code(NOT_FOUND)
        .stderr_has("20990101T000000Z-deadbeef");
    assert_nothing_left(&target);
}

// ---- hostile archives, built by hand and encrypted with the real format ----

/// One ustar header block.
fn tar_header(name: &str, kind: u8, size: usize, link: &str, mode: u32) -> [u8; 512] {
    assert!(
        name.len() <= 100 && link.len() <= 100,
        "name too long for ustar"
    );
    let mut h = [0u8; 512];
    let put =
        |h: &mut [u8; 512], at: usize, field: &[u8]| h[at..at + field.len()].copy_from_slice(field);
    put(&mut h, 0, name.as_bytes());
    put(&mut h, 100, format!("{mode:07o}\0").as_bytes());
    put(&mut h, 108, b"0000000\0");
    put(&mut h, 116, b"0000000\0");
    put(&mut h, 124, format!("{size:011o}\0").as_bytes());
    put(&mut h, 136, format!("{OLD:011o}\0").as_bytes());
    h[156] = kind;
    put(&mut h, 157, link.as_bytes());
    put(&mut h, 257, b"ustar\0");
    put(&mut h, 263, b"00");
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    put(&mut h, 148, format!("{sum:06o}\0 ").as_bytes());
    h
}

enum Entry<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
}

fn tar(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        match e {
            Entry::Dir(name) => out.extend_from_slice(&tar_header(name, b'5', 0, "", 0o755)),
            Entry::File(name, data) => {
                out.extend_from_slice(&tar_header(name, b'0', data.len(), "", 0o644));
                out.extend_from_slice(data);
                out.resize(out.len().div_ceil(512) * 512, 0);
            }
            Entry::Symlink(name, target) => {
                out.extend_from_slice(&tar_header(name, b'2', 0, target, 0o777))
            }
            Entry::HardLink(name, target) => {
                out.extend_from_slice(&tar_header(name, b'1', 0, target, 0o644))
            }
        }
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// A zstd frame of raw (stored) blocks: valid zstd without a compressor.
fn zstd_stored(data: &[u8]) -> Vec<u8> {
    const BLOCK: usize = 128 * 1024;
    let mut out = vec![0x28, 0xB5, 0x2F, 0xFD]; // magic
    out.push(0x00); // frame header: no content size, no checksum, no dictionary
    out.push(7 << 3); // window descriptor: 2^(10+7) bytes = 128 KiB
    let blocks: Vec<&[u8]> = if data.is_empty() {
        vec![&[]]
    } else {
        data.chunks(BLOCK).collect()
    };
    for (i, b) in blocks.iter().enumerate() {
        let last = u32::from(i + 1 == blocks.len());
        let header = last | (b.len() as u32) << 3; // block type 0: raw
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.extend_from_slice(b);
    }
    out
}

/// A storage holding one backup of `entries`, encrypted with a new key. Returns
/// (storage, key as shown to people).
fn hostile_storage(root: &Path, entries: &[Entry]) -> (PathBuf, String) {
    let key = coffer_format::BackupKey::generate().unwrap();
    let payload = zstd_stored(&tar(entries));
    let id = "20260101T000000000Z-00000000";
    let backup_id = coffer_format::BackupId::parse(id).unwrap();
    let sealed =
        coffer_format::encrypt_to_vec(&key, coffer_format::Cipher::Aes256Gcm, &backup_id, &payload)
            .unwrap();
    let storage = root.join("storage");
    fs::create_dir_all(storage.join("backups")).unwrap();
    fs::write(storage.join(format!("backups/{id}.coffer")), sealed).unwrap();
    (storage, key.to_display().to_string())
}

/// Restores the only backup of `storage` on a fresh profile into `root/place/target`.
fn restore_hostile(root: &Path, storage: &Path, key: &str) -> (Out, PathBuf) {
    let target = root.join("place/target");
    let out = coffer(&root.join("profile"))
        .args(["restore", "--key-stdin", "--from"])
        .arg(storage)
        .arg("--into")
        .arg(&target)
        .stdin(key)
        .run();
    (out, target)
}

/// Every path under `dir` (recursively), for "nothing new appeared" checks.
fn all_paths(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn the_hand_built_archive_helpers_make_a_restorable_backup() {
    // Control for the hostile cases below: the same builders with safe names restore.
    let tmp = tempfile::tempdir().unwrap();
    let (storage, key) = hostile_storage(
        tmp.path(),
        &[
            Entry::Dir("tree"),
            Entry::File("tree/ok.txt", b"fine\n"),
            Entry::Symlink("tree/link", "ok.txt"),
        ],
    );
    let (out, target) = restore_hostile(tmp.path(), &storage, &key);
    out.ok();
    assert_eq!(
        fs::read_to_string(target.join("tree/link")).unwrap(),
        "fine\n"
    );
}

#[test]
fn hostile_archives_are_refused_with_integrity_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let absolute = std::env::temp_dir().join(format!(
        "coffer-evil-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let absolute_name = absolute.to_str().unwrap().to_string();
    let outside_name = outside.to_str().unwrap().to_string();

    let cases: Vec<(&str, Vec<Entry>)> = vec![
        (
            "dot-dot",
            vec![
                Entry::Dir("tree"),
                Entry::File("tree/fine.txt", b"fine\n"),
                Entry::File("../evil", b"escaped\n"),
            ],
        ),
        (
            "nested dot-dot",
            vec![
                Entry::Dir("tree"),
                Entry::File("tree/../../evil", b"escaped\n"),
            ],
        ),
        (
            "absolute",
            vec![
                Entry::Dir("tree"),
                Entry::File(&absolute_name, b"escaped\n"),
            ],
        ),
        (
            "hard link",
            vec![
                Entry::Dir("tree"),
                Entry::HardLink("tree/passwd", "/etc/passwd"),
            ],
        ),
        (
            // A symlink out of the target, then a file written through it. Verify tracks
            // symlinks too, so it refuses what a restore would.
            "write through a symlink",
            vec![
                Entry::Dir("tree"),
                Entry::Symlink("tree/escape", &outside_name),
                Entry::File("tree/escape/evil", b"escaped\n"),
            ],
        ),
    ];

    for (i, (what, entries)) in cases.iter().enumerate() {
        let root = tmp.path().join(format!("case-{i}"));
        fs::create_dir_all(root.join("place")).unwrap();
        let (storage, key) = hostile_storage(&root, entries);
        let before = all_paths(tmp.path());

        let (out, target) = restore_hostile(&root, &storage, &key);
        assert_eq!(out.code, INTEGRITY, "{what}: {out:?}");
        out.stderr_has("unsafe archive entry");
        assert_nothing_left(&target);

        coffer(&root.join("profile"))
            .args(["verify", "--key-stdin", "--from"])
            .arg(&storage)
            .stdin(&key)
            .run()
            .code(INTEGRITY)
            .stderr_has("unsafe archive entry");

        let after = all_paths(tmp.path());
        let new: Vec<_> = after
            .iter()
            .filter(|p| !before.contains(p) && !p.starts_with(root.join("profile")))
            .collect();
        assert!(new.is_empty(), "{what}: the restore created {new:?}");
        assert!(!absolute.exists(), "{what}: wrote {}", absolute.display());
        assert!(!tmp.path().join("evil").exists(), "{what}: wrote ../evil");
        assert!(!root.join("evil").exists(), "{what}: wrote ../evil");
        assert!(
            !outside.join("evil").exists(),
            "{what}: wrote through the symlink"
        );
    }
    let _ = fs::remove_file(&absolute);
}

#[test]
fn sigterm_during_a_restore_exits_130_and_leaves_nothing() {
    let env = Env::enabled();
    let big = env.path("big");
    fs::create_dir(&big).unwrap();
    for i in 0..3 {
        write_random_file(&big.join(format!("blob-{i}.bin")), 12 << 20);
    }
    env.backup(&[&big]);
    let out = env.path("out");
    fs::create_dir(&out).unwrap();
    let target = out.join("restored");
    let mut child = env
        .coffer()
        .args(["restore", "--into"])
        .arg(&target)
        .spawn_quiet();
    // Signal once the staging directory holds data, or give up waiting after a while.
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none()
        && started.elapsed() < std::time::Duration::from_secs(60)
        && !leftovers(&out)
            .iter()
            .any(|n| fs::read_dir(out.join(n)).is_ok_and(|mut rd| rd.next().is_some()))
    {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    // SAFETY: sends a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    match status.code() {
        Some(130) => assert_nothing_left(&target),
        Some(0) => eprintln!("note: the restore finished before the signal"),
        other => panic!("restore ended with {other:?} after SIGTERM"),
    }
}
