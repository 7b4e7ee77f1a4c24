//! Restore targets and staging folders: checks, cleanup of stale ones, locks and modes.

use super::*;
use std::os::unix::fs::PermissionsExt;

#[test]
fn targets_are_checked_and_normalised() {
    let d = tempfile::tempdir().unwrap();
    let t = Target::resolve(&d.path().join("a/./b/../c")).unwrap();
    assert_eq!(t.path, d.path().join("a/c"));
    fs::create_dir(d.path().join("empty")).unwrap();
    Target::resolve(&d.path().join("empty")).unwrap();
    fs::write(d.path().join("empty/x"), b"").unwrap();
    assert!(matches!(
        Target::resolve(&d.path().join("empty")),
        Err(ClientError::TargetExists(_))
    ));
    assert!(matches!(
        Target::resolve(Path::new(".")),
        Err(ClientError::Usage(_))
    ));
    assert!(matches!(
        Target::resolve(Path::new("/")),
        Err(ClientError::Usage(_))
    ));
}

#[test]
fn an_abandoned_staging_removes_itself_and_the_parents_it_made() {
    let d = tempfile::tempdir().unwrap();
    let target = d.path().join("new/deeper/target");
    let staging = Staging::create(Target::resolve(&target).unwrap()).unwrap();
    let ro = staging.path().join("ro");
    fs::create_dir(&ro).unwrap();
    fs::write(ro.join("f"), b"x").unwrap();
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
    drop(staging);
    assert!(
        fs::read_dir(d.path()).unwrap().next().is_none(),
        "left behind"
    );
}

#[test]
fn stale_stagings_of_the_same_target_are_removed() {
    let d = tempfile::tempdir().unwrap();
    let stale = d.path().join(".target.coffer-restore-00000000");
    fs::create_dir_all(stale.join("x")).unwrap();
    let other = d.path().join(".other.coffer-restore-00000000");
    fs::create_dir(&other).unwrap();
    let staging = Staging::create(Target::resolve(&d.path().join("target")).unwrap()).unwrap();
    assert!(!stale.exists());
    assert!(other.exists());
    staging.commit().unwrap();
    assert!(d.path().join("target").is_dir());
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn is_root() -> bool {
    euid() == 0
}

fn lchown(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
}

fn stage(target: &Path) -> Result<Staging, ClientError> {
    Staging::create(Target::resolve(target).unwrap())
}

#[test]
fn a_folder_other_users_can_change_is_refused_unless_sticky() {
    let d = tempfile::tempdir().unwrap();
    let shared = d.path().join("shared");
    fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o777);
    for target in [shared.join("t"), shared.join("new/deeper/t")] {
        match stage(&target) {
            Err(ClientError::Usage(m)) => {
                assert!(m.contains("other users can write to"), "{m}");
                assert!(m.contains("chmod go-w"), "{m}");
            }
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("a staging folder was made in a folder all can write to"),
        }
        assert_eq!(fs::read_dir(&shared).unwrap().count(), 0, "left behind");
    }
    chmod(&shared, 0o775);
    assert!(matches!(
        stage(&shared.join("t")),
        Err(ClientError::Usage(_))
    ));
    // Sticky, like /tmp: others cannot rename or remove this user's entries.
    chmod(&shared, 0o1777);
    stage(&shared.join("t")).unwrap().commit().unwrap();
    assert!(shared.join("t").is_dir());
    if is_root() {
        let theirs = d.path().join("theirs");
        fs::create_dir(&theirs).unwrap();
        lchown(&theirs, 65534);
        match stage(&theirs.join("t")) {
            Err(ClientError::Usage(m)) => assert!(m.contains("another user"), "{m}"),
            _ => panic!("a folder of another user was accepted"),
        }
    }
}

#[test]
fn stale_staging_that_is_a_symlink_or_not_ours_is_left_alone() {
    use std::os::unix::fs::symlink;
    let d = tempfile::tempdir().unwrap();
    let outside = d.path().join("outside");
    fs::create_dir_all(outside.join("ro")).unwrap();
    fs::write(outside.join("ro/keep"), b"keep").unwrap();
    chmod(&outside.join("ro"), 0o555);
    chmod(&outside, 0o751);
    let parent = d.path().join("parent");
    fs::create_dir(&parent).unwrap();
    let link = parent.join(".t.coffer-restore-00000001");
    symlink(&outside, &link).unwrap();
    let file = parent.join(".t.coffer-restore-00000002");
    fs::write(&file, b"not a folder").unwrap();
    let theirs = parent.join(".t.coffer-restore-00000003");
    if is_root() {
        fs::create_dir(&theirs).unwrap();
        fs::write(theirs.join("f"), b"theirs").unwrap();
        lchown(&theirs, 65534);
    }
    stage(&parent.join("t")).unwrap().commit().unwrap();
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(file.exists());
    assert_eq!((mode(&outside), mode(&outside.join("ro"))), (0o751, 0o555));
    assert_eq!(fs::read(outside.join("ro/keep")).unwrap(), b"keep");
    if is_root() {
        assert!(
            theirs.join("f").exists(),
            "another user's folder was removed"
        );
    }
    chmod(&outside.join("ro"), 0o755);
}

#[test]
fn a_staging_folder_swapped_during_the_restore_is_not_committed() {
    use std::os::unix::fs::symlink;
    let d = tempfile::tempdir().unwrap();
    let elsewhere = d.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let staging = stage(&d.path().join("t")).unwrap();
    let path = staging.path();
    fs::write(path.join("f"), b"x").unwrap();
    fs::rename(&path, d.path().join("moved")).unwrap();
    symlink(&elsewhere, &path).unwrap();
    assert!(matches!(staging.commit(), Err(ClientError::Io { .. })));
    assert!(fs::symlink_metadata(d.path().join("t")).is_err());
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
    // Nor removed through the symlink when abandoned.
    assert!(fs::symlink_metadata(&path)
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn an_empty_folder_of_another_user_is_refused_before_anything_is_fetched() {
    if !is_root() {
        eprintln!("SKIPPED: needs root to make a folder of another user");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let theirs = d.path().join("theirs");
    fs::create_dir(&theirs).unwrap();
    chmod(&theirs, 0o777);
    lchown(&theirs, 65534);
    // Target::resolve runs before the backup is chosen or downloaded.
    let refused = |r: Result<_, ClientError>| match r {
        Err(ClientError::Usage(m)) => assert!(m.contains("belongs to another user"), "{m}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("another user's empty folder was accepted"),
    };
    refused(Target::resolve(&theirs).map(|_| ()));
    // And again by descriptor, should it be swapped in after that check.
    refused(Staging::create(Target { path: theirs }).map(|_| ()));
    assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1, "left behind");
}

#[test]
fn a_locked_staging_folder_is_live_and_never_stale() {
    let d = tempfile::tempdir().unwrap();
    let target = d.path().join("t");
    let first = stage(&target).unwrap();
    fs::write(first.path().join("f"), b"x").unwrap();
    let held = d.path().join(".t.coffer-restore-0000abcd");
    fs::create_dir(&held).unwrap();
    let lock = fs::File::open(&held).unwrap();
    rfs::flock(&lock, FlockOperation::NonBlockingLockExclusive).unwrap();
    let second = stage(&target).unwrap();
    assert!(
        first.path().join("f").exists(),
        "a live staging was removed"
    );
    assert!(held.exists(), "a locked staging was removed");
    // Its own lock is held until it is dropped.
    let busy = fs::File::open(second.path()).unwrap();
    assert_eq!(
        rfs::flock(&busy, FlockOperation::NonBlockingLockExclusive),
        Err(rustix::io::Errno::WOULDBLOCK)
    );
    drop((lock, second));
    let third = stage(&target).unwrap();
    assert!(!held.exists(), "an unlocked stale staging was left");
    assert!(
        first.path().join("f").exists(),
        "a live staging was removed"
    );
    first.commit().unwrap();
    drop(third);
    assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1, "left behind");
}

#[test]
fn only_names_a_restore_makes_are_stale() {
    let p = sibling_prefix(OsStr::new("a"), "restore");
    let made = sibling_name(OsStr::new("a"), "restore").unwrap();
    assert!(is_staging_name(made.as_bytes(), &p));
    assert!(is_staging_name(b".a.coffer-restore-0123abcd", &p));
    for other in [
        &b".a.coffer-restore-x.coffer-restore-0123abcd"[..],
        b".a.coffer-restore-0123ABCD",
        b".a.coffer-restore-0123abc",
        b".a.coffer-restore-0123abcde",
        b".ab.coffer-restore-0123abcd",
    ] {
        assert!(!is_staging_name(other, &p), "{other:?}");
    }
}

#[test]
fn an_empty_folder_open_to_others_loses_their_write_access_unless_sticky() {
    let d = tempfile::tempdir().unwrap();
    for (made, restored) in [(0o777, 0o755), (0o2770, 0o2750), (0o1777, 0o1777)] {
        let target = d.path().join(format!("t{made:o}"));
        fs::create_dir(&target).unwrap();
        chmod(&target, made);
        stage(&target).unwrap().commit().unwrap();
        assert_eq!(mode(&target), restored, "{made:o}");
    }
}

#[test]
fn an_empty_folder_replaced_keeps_its_mode() {
    let d = tempfile::tempdir().unwrap();
    let target = d.path().join("empty");
    fs::create_dir(&target).unwrap();
    chmod(&target, 0o710);
    let staging = stage(&target).unwrap();
    fs::write(staging.path().join("f"), b"x").unwrap();
    staging.commit().unwrap();
    assert_eq!(mode(&target), 0o710);
    assert!(target.join("f").exists());
    fs::write(target.join("g"), b"").unwrap();
    assert!(matches!(
        Staging::create(Target { path: target }),
        Err(ClientError::TargetExists(_))
    ));
}
