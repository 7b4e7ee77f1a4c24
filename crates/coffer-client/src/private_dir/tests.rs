//! The profile checks against folders and files that others could change.

use super::*;
use std::fs;
use std::os::unix::fs::{chown, symlink, PermissionsExt};

fn set_mode(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn problem_of(r: Result<Option<PrivateDir>, ClientError>) -> (PathBuf, Problem) {
    match r {
        Err(ClientError::UnsafeProfile(u)) => (u.path, u.problem),
        other => panic!("expected an unsafe profile, got {other:?}"),
    }
}

fn is_root() -> bool {
    me() == 0
}

#[test]
fn created_folders_are_owner_only_and_files_round_trip() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("a/b/profile");
    let dir = PrivateDir::open_or_create(&p).unwrap();
    for sub in ["a", "a/b", "a/b/profile"] {
        let mode = fs::metadata(d.path().join(sub))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{sub}");
    }
    assert!(dir.read("key").unwrap().is_none());
    dir.write_atomic("key", b"secret").unwrap();
    assert_eq!(&dir.read("key").unwrap().unwrap()[..], b"secret");
    let mode = fs::metadata(p.join("key")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    dir.rename("key", "key2").unwrap();
    assert!(!dir.contains("key") && dir.contains("key2"));
    dir.remove("key2").unwrap();
    dir.remove("key2").unwrap();
    assert!(PrivateDir::open(&d.path().join("missing"))
        .unwrap()
        .is_none());
}

#[test]
fn a_folder_others_can_write_is_refused_with_the_fix() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("profile");
    PrivateDir::open_or_create(&p).unwrap();
    for mode in [0o777, 0o770, 0o1777] {
        set_mode(&p, mode);
        let err = PrivateDir::open(&p).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("chmod go-w {}", p.display())),
            "{text}"
        );
        assert!(matches!(err.class(), crate::ErrorClass::Usage));
        let (at, problem) = problem_of(Err(err));
        assert_eq!(
            (at, problem),
            (p.clone(), Problem::WritableByOthers { mode })
        );
    }
    // An ancestor others may write is refused too, unless it is sticky.
    set_mode(&p, 0o700);
    set_mode(d.path(), 0o777);
    let (at, _) = problem_of(PrivateDir::open(&p));
    assert_eq!(at, d.path().canonicalize().unwrap());
    set_mode(d.path(), 0o1777);
    assert!(PrivateDir::open(&p).unwrap().is_some());
    set_mode(d.path(), 0o700);
}

#[test]
fn files_must_be_private_plain_and_the_users_own() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("profile");
    let dir = PrivateDir::open_or_create(&p).unwrap();
    dir.write_atomic("key", b"k").unwrap();
    set_mode(&p.join("key"), 0o640);
    let err = dir.read("key").unwrap_err();
    assert!(err.to_string().contains("chmod 600"), "{err}");
    set_mode(&p.join("key"), 0o622);
    assert!(err_problem(dir.read("key")) == Problem::WritableByOthers { mode: 0o622 });
    set_mode(&p.join("key"), 0o600);

    fs::write(d.path().join("elsewhere"), b"attacker").unwrap();
    symlink(d.path().join("elsewhere"), p.join("config.toml")).unwrap();
    assert_eq!(err_problem(dir.read("config.toml")), Problem::Symlink);

    // A FIFO is refused at once rather than waited on.
    rustix::fs::mkfifoat(&dir.fd, "credential", Mode::from_raw_mode(0o600)).unwrap();
    assert_eq!(err_problem(dir.read("credential")), Problem::NotAFile);
}

fn err_problem<T: fmt::Debug>(r: Result<T, ClientError>) -> Problem {
    match r {
        Err(ClientError::UnsafeProfile(u)) => u.problem,
        other => panic!("expected an unsafe profile, got {other:?}"),
    }
}

#[test]
fn another_users_folder_or_file_is_refused() {
    if !is_root() {
        eprintln!("SKIPPED: giving files to another user needs root");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("profile");
    let dir = PrivateDir::open_or_create(&p).unwrap();
    dir.write_atomic("key", b"k").unwrap();
    chown(p.join("key"), Some(65534), Some(65534)).unwrap();
    let err = dir.read("key").unwrap_err();
    let key = p.canonicalize().unwrap().join("key");
    assert!(
        err.to_string().contains(&format!("rm {}", key.display())),
        "{err}"
    );
    assert_eq!(
        err_problem(dir.read("key")),
        Problem::FileOfOther {
            owner: 65534,
            me: 0
        }
    );
    chown(&p, Some(65534), None).unwrap();
    assert_eq!(
        problem_of(PrivateDir::open(&p)).1,
        Problem::FolderOfOther {
            owner: 65534,
            me: 0
        }
    );
    // A sticky ancestor owned by another user does not protect what is in it.
    chown(&p, Some(0), None).unwrap();
    set_mode(d.path(), 0o1777);
    chown(d.path(), Some(65534), None).unwrap();
    assert!(matches!(
        problem_of(PrivateDir::open(&p)).1,
        Problem::FolderOfOther { .. }
    ));
    chown(d.path(), Some(0), None).unwrap();
    set_mode(d.path(), 0o700);
}

#[test]
fn a_symlinked_profile_folder_is_resolved_but_a_symlink_inside_is_not() {
    let d = tempfile::tempdir().unwrap();
    let real = d.path().join("real");
    PrivateDir::open_or_create(&real).unwrap();
    symlink(&real, d.path().join("link")).unwrap();
    let dir = PrivateDir::open(&d.path().join("link")).unwrap().unwrap();
    assert_eq!(dir.path(), real.canonicalize().unwrap());
    assert!(matches!(
        PrivateDir::open(&d.path().join("x/../y")),
        Err(ClientError::Usage(_)) | Ok(None)
    ));
}

#[test]
fn fixes_are_quoted_for_the_shell() {
    assert_eq!(shell_quote(Path::new("/a/b")), "/a/b");
    assert_eq!(shell_quote(Path::new("/a b/it's")), r"'/a b/it'\''s'");
}
