//! File-system operations relative to a directory descriptor that never leave that
//! directory and never go through a symlink.
//!
//! A restore makes every change through these: paths are resolved by the kernel with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, or, where that system call is missing,
//! one name at a time with `openat(O_NOFOLLOW | O_DIRECTORY)`. Either way the kernel's own
//! lookup decides what a name means, so a symlink that a case-insensitive file system finds
//! under another spelling is refused like any other.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};

mod remove;

pub(crate) use remove::remove_tree;

const DIR: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Identity of a file: device and inode.
pub(crate) type Ident = (u64, u64);

// The casts are no-ops on Linux, not everywhere (st_mode is 16 bits on macOS).
#[allow(clippy::unnecessary_cast)]
pub(crate) fn ident(st: &rfs::Stat) -> Ident {
    (st.st_dev as u64, st.st_ino as u64)
}

/// Permission bits (with set-id and sticky bits).
#[allow(clippy::unnecessary_cast)]
pub(crate) fn perms(st: &rfs::Stat) -> u32 {
    st.st_mode as u32 & 0o7777
}

#[allow(clippy::unnecessary_cast)]
pub(crate) fn owner(st: &rfs::Stat) -> u32 {
    st.st_uid as u32
}

pub(crate) fn is_dir(st: &rfs::Stat) -> bool {
    FileType::from_raw_mode(st.st_mode as _) == FileType::Directory
}

/// Opens the directory `rel` under `dir`. `rel` holds plain names only; an empty `rel` is
/// `dir` itself.
pub(crate) fn open_dir(dir: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    if rel.as_os_str().is_empty() {
        return Ok(rfs::openat(dir, c".", DIR, Mode::empty())?);
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if !force_walk() {
        if let Some(fd) = openat2::open_dir(dir, rel)? {
            return Ok(fd);
        }
    }
    walk(dir, rel)
}

#[cfg(not(test))]
fn force_walk() -> bool {
    false
}

#[cfg(test)]
use tests::force_walk;

/// The fallback of [`open_dir`]: one name at a time, never following a symlink.
fn walk(dir: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    let mut cur: Option<OwnedFd> = None;
    for name in names(rel)? {
        let at = cur.as_ref().map_or(dir, |fd| fd.as_fd());
        cur = Some(rfs::openat(at, name, DIR, Mode::empty())?);
    }
    match cur {
        Some(fd) => Ok(fd),
        None => Ok(rfs::openat(dir, c".", DIR, Mode::empty())?),
    }
}

/// The names of a relative path; anything but plain names is refused.
fn names(rel: &Path) -> io::Result<impl Iterator<Item = &OsStr>> {
    plain(rel)?;
    Ok(rel.components().map(Component::as_os_str))
}

fn plain(rel: &Path) -> io::Result<()> {
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a plain relative path",
        ));
    }
    Ok(())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod openat2 {
    use super::*;
    use rustix::fs::ResolveFlags;
    use rustix::io::Errno;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Set once `openat2` turned out to be missing (an old kernel, or a sandbox that
    /// filters it), so that it is not tried again.
    static MISSING: AtomicBool = AtomicBool::new(false);

    /// `None` when the system call is not available.
    pub(super) fn open_dir(dir: BorrowedFd<'_>, rel: &Path) -> io::Result<Option<OwnedFd>> {
        if MISSING.load(Ordering::Relaxed) {
            return Ok(None);
        }
        plain(rel)?;
        let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        // EAGAIN: a rename elsewhere on the file system raced the lookup; try again.
        for _ in 0..8 {
            match rfs::openat2(dir, rel, DIR, Mode::empty(), how) {
                Ok(fd) => return Ok(Some(fd)),
                Err(Errno::AGAIN) => continue,
                Err(Errno::NOSYS | Errno::PERM | Errno::TOOBIG) => {
                    MISSING.store(true, Ordering::Relaxed);
                    return Ok(None);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }
}

/// Opens the directory `rel` under `dir`, creating the names that are missing (mode 0777
/// less the umask), none through a symlink.
pub(crate) fn make_dirs(dir: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    match open_dir(dir, rel) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        other => return other,
    }
    let mut cur = rfs::openat(dir, c".", DIR, Mode::empty())?;
    for name in names(rel)? {
        cur = match rfs::openat(&cur, name, DIR, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => {
                match rfs::mkdirat(&cur, name, Mode::from_raw_mode(0o777)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                rfs::openat(&cur, name, DIR, Mode::empty())?
            }
            Err(e) => return Err(e.into()),
        };
    }
    Ok(cur)
}

/// Opens the directory `name` in `dir`, not following a symlink.
pub(crate) fn open_child_dir(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(rfs::openat(dir, name, DIR, Mode::empty())?)
}

/// Creates the file `name` in `dir`, readable by its owner only; an existing name (a
/// symlink included) is an error, never followed.
pub(crate) fn create_file(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<File> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rfs::openat(dir, name, flags, Mode::from_raw_mode(0o600))?;
    Ok(File::from(fd))
}

pub(crate) fn symlink(dir: BorrowedFd<'_>, name: &OsStr, target: &OsStr) -> io::Result<()> {
    Ok(rfs::symlinkat(target, dir, name)?)
}

fn times(mtime: i64) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: rfs::UTIME_OMIT,
        },
        last_modification: Timespec {
            tv_sec: mtime as _,
            tv_nsec: 0,
        },
    }
}

/// Sets the time of the symlink `name` in `dir` itself.
pub(crate) fn set_symlink_mtime(dir: BorrowedFd<'_>, name: &OsStr, mtime: i64) -> io::Result<()> {
    Ok(rfs::utimensat(
        dir,
        name,
        &times(mtime),
        AtFlags::SYMLINK_NOFOLLOW,
    )?)
}

pub(crate) fn set_mode(fd: impl AsFd, mode: u32) -> io::Result<()> {
    Ok(rfs::fchmod(fd, Mode::from_raw_mode(mode as _))?)
}

pub(crate) fn set_mtime(fd: impl AsFd, mtime: i64) -> io::Result<()> {
    Ok(rfs::futimens(fd, &times(mtime))?)
}

pub(crate) fn stat(fd: impl AsFd) -> io::Result<rfs::Stat> {
    Ok(rfs::fstat(fd)?)
}

/// `lstat` of `name` in `dir`: a symlink is described, not followed.
pub(crate) fn stat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<rfs::Stat> {
    Ok(rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?)
}

/// What stands on the way to `rel` under `dir`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Obstacle {
    /// A symlink, at `rel` or at one of its parents.
    Symlink,
    /// Something else that is not a directory, at one of its parents, or something at
    /// `rel` itself.
    Taken,
    Nothing,
}

/// Finds out why an operation on `rel` failed: only used to word the error.
pub(crate) fn obstacle(dir: BorrowedFd<'_>, rel: &Path) -> Obstacle {
    let Ok(names) = names(rel) else {
        return Obstacle::Nothing;
    };
    let names: Vec<&OsStr> = names.collect();
    let mut cur = None::<OwnedFd>;
    for (i, name) in names.iter().enumerate() {
        let at = cur.as_ref().map_or(dir, |fd| fd.as_fd());
        let Ok(st) = stat_at(at, name) else {
            return Obstacle::Nothing;
        };
        match FileType::from_raw_mode(st.st_mode as _) {
            FileType::Symlink => return Obstacle::Symlink,
            _ if i + 1 == names.len() => return Obstacle::Taken,
            FileType::Directory => {}
            _ => return Obstacle::Taken,
        }
        match open_child_dir(at, name) {
            Ok(fd) => cur = Some(fd),
            Err(_) => return Obstacle::Nothing,
        }
    }
    Obstacle::Nothing
}

/// Splits a relative entry path into its parent and its last name.
pub(crate) fn split(rel: &Path) -> (&Path, &OsStr) {
    let name = rel.file_name().unwrap_or(OsStr::new(""));
    (rel.parent().unwrap_or(Path::new("")), name)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::Cell;
    use std::fs;
    use std::os::unix::fs::{symlink as make_symlink, MetadataExt, PermissionsExt};
    use std::path::PathBuf;

    thread_local! {
        static FORCE_WALK: Cell<bool> = const { Cell::new(false) };
    }

    /// Whether this thread resolves paths as if `openat2` were missing.
    pub(crate) fn force_walk() -> bool {
        FORCE_WALK.with(Cell::get)
    }

    /// Runs `f` on this thread with the fallback resolution, one name at a time.
    pub(crate) fn with_walk<T>(f: impl FnOnce() -> T) -> T {
        FORCE_WALK.with(|w| w.set(true));
        let out = f();
        FORCE_WALK.with(|w| w.set(false));
        out
    }

    pub(super) fn fd(path: &Path) -> OwnedFd {
        fs::File::open(path).unwrap().into()
    }

    pub(super) fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    /// root/{a/b/, a/f, a/l -> OUTSIDE, ld -> a}, and OUTSIDE/{x, ro/} beside it.
    pub(super) fn tree() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        let outside = d.path().join("outside");
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("a/f"), b"f").unwrap();
        fs::create_dir_all(outside.join("ro")).unwrap();
        fs::write(outside.join("x"), b"keep").unwrap();
        fs::set_permissions(outside.join("ro"), fs::Permissions::from_mode(0o555)).unwrap();
        make_symlink(&outside, root.join("a/l")).unwrap();
        make_symlink("a", root.join("ld")).unwrap();
        (d, root, outside)
    }

    #[test]
    fn both_resolutions_refuse_symlinks_anywhere_and_anything_but_names() {
        let (_d, root, _outside) = tree();
        let root = fd(&root);
        for walk in [false, true] {
            let open = |rel: &str| {
                let run = || open_dir(root.as_fd(), Path::new(rel));
                if walk {
                    with_walk(run)
                } else {
                    run()
                }
            };
            assert!(open("a/b").is_ok(), "walk={walk}");
            assert!(open("").is_ok(), "walk={walk}");
            for bad in [
                "a/l", "a/l/ro", "ld", "ld/b", "a/f", "a/../a", "/tmp", "./a",
            ] {
                assert!(open(bad).is_err(), "walk={walk}: {bad} opened");
            }
            let errno = |rel: &str| open(rel).unwrap_err().raw_os_error();
            assert!(
                matches!(errno("a/l/ro"), Some(libc::ELOOP | libc::ENOTDIR)),
                "walk={walk}"
            );
            assert_eq!(errno("a/f"), Some(libc::ENOTDIR), "walk={walk}");
        }
    }

    #[test]
    fn make_dirs_creates_beneath_and_never_through_a_symlink() {
        let (_d, root, outside) = tree();
        let rootfd = fd(&root);
        for walk in [false, true] {
            let make = |rel: &str| {
                let run = || make_dirs(rootfd.as_fd(), Path::new(rel));
                if walk {
                    with_walk(run)
                } else {
                    run()
                }
            };
            assert!(make("a/l/new").is_err());
            assert!(make("ld/new").is_err());
            assert!(!outside.join("new").exists(), "walk={walk}");
            assert!(!root.join("a/new").exists(), "walk={walk}");
            make(&format!("n{walk}/m/o")).unwrap();
            assert!(root.join(format!("n{walk}/m/o")).is_dir());
        }
        assert_eq!(
            obstacle(rootfd.as_fd(), Path::new("a/l/x")),
            Obstacle::Symlink
        );
        assert_eq!(obstacle(rootfd.as_fd(), Path::new("ld")), Obstacle::Symlink);
        assert_eq!(
            obstacle(rootfd.as_fd(), Path::new("a/f/x")),
            Obstacle::Taken
        );
        assert_eq!(obstacle(rootfd.as_fd(), Path::new("a/b")), Obstacle::Taken);
        assert_eq!(
            obstacle(rootfd.as_fd(), Path::new("a/new")),
            Obstacle::Nothing
        );
    }
}
