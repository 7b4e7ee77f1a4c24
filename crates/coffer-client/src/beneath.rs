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
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};

const DIR: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Levels of directories held open while removing a tree; deeper subtrees are moved up
/// first, so that removing any tree needs few descriptors.
const REMOVE_DEPTH: usize = 32;

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

/// Removes the directory `name` in `parent` with everything in it, provided that `accept`
/// approves of what the name holds (`lstat`, then `fstat` of the opened directory, which
/// must be the same). Nothing outside it is ever touched: no symlink is followed and no
/// mode is set through a path.
pub(crate) fn remove_tree(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    accept: impl Fn(&rfs::Stat) -> bool,
) -> io::Result<()> {
    let seen = stat_at(parent, name)?;
    if !is_dir(&seen) || !accept(&seen) {
        return Err(refused());
    }
    let root = open_for_removal(parent, name)?;
    let opened = stat(&root)?;
    if ident(&opened) != ident(&seen) || !accept(&opened) {
        return Err(refused());
    }
    empty_tree(root.as_fd())?;
    // Only if the name still holds that directory: rmdir never follows a symlink, but
    // the name could have been given to another empty directory meanwhile.
    if ident(&stat_at(parent, name)?) != ident(&opened) {
        return Err(refused());
    }
    Ok(rfs::unlinkat(parent, name, AtFlags::REMOVEDIR)?)
}

fn refused() -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        "not a folder of this restore's own",
    )
}

/// Removes everything inside the directory `root`.
pub(crate) fn empty_tree(root: BorrowedFd<'_>) -> io::Result<()> {
    let mut moved = 0u64;
    loop {
        let before = moved;
        empty_level(root, root, 0, &mut moved)?;
        // Subtrees moved up during this pass may have been missed by it.
        if moved == before {
            return Ok(());
        }
    }
}

fn empty_level(
    dir: BorrowedFd<'_>,
    root: BorrowedFd<'_>,
    depth: usize,
    moved: &mut u64,
) -> io::Result<()> {
    for entry in rfs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        let is_directory = match entry.file_type() {
            FileType::Directory => true,
            FileType::Unknown => is_dir(&stat_at(dir, name)?),
            _ => false,
        };
        if !is_directory {
            rfs::unlinkat(dir, name, AtFlags::empty())?;
        } else if depth + 1 >= REMOVE_DEPTH {
            move_up(dir, name, root, moved)?;
        } else {
            let child = open_for_removal(dir, name)?;
            empty_level(child.as_fd(), root, depth + 1, moved)?;
            rfs::unlinkat(dir, name, AtFlags::REMOVEDIR)?;
        }
    }
    Ok(())
}

/// Moves a deep subtree to the top of the tree being removed.
fn move_up(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    root: BorrowedFd<'_>,
    moved: &mut u64,
) -> io::Result<()> {
    loop {
        *moved += 1;
        let new = format!(".coffer-removing-{moved}");
        match rfs::renameat(dir, name, root, new.as_str()) {
            Err(rustix::io::Errno::EXIST | rustix::io::Errno::NOTEMPTY) => continue,
            other => return Ok(other?),
        }
    }
}

/// Opens the directory `name` in `dir` and gives its owner full rights on it, so that its
/// entries can be removed (a restored tree may hold read-only folders).
fn open_for_removal(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    let fd = match open_child_dir(dir, name) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => unreadable_dir(dir, name)?,
        other => other?,
    };
    let st = stat(&fd)?;
    if perms(&st) & 0o700 != 0o700 {
        set_mode(&fd, perms(&st) | 0o700)?;
    }
    Ok(fd)
}

/// A folder its owner may not read: made readable through an `O_PATH` descriptor (which
/// cannot be a symlink's target here: `O_NOFOLLOW`), then opened again and checked to be
/// the same folder.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn unreadable_dir(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let pinned = rfs::openat(dir, name, flags, Mode::empty())?;
    let st = stat(&pinned)?;
    // fchmod does not take an O_PATH descriptor; its /proc name resolves to that very
    // inode and nothing else.
    let proc_path = PathBuf::from(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&pinned)
    ));
    rfs::chmod(&proc_path, Mode::from_raw_mode((perms(&st) | 0o700) as _))?;
    let fd = open_child_dir(dir, name)?;
    if ident(&stat(&fd)?) != ident(&st) {
        return Err(refused());
    }
    Ok(fd)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn unreadable_dir(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    open_child_dir(dir, name)
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

    fn fd(path: &Path) -> OwnedFd {
        fs::File::open(path).unwrap().into()
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    /// root/{a/b/, a/f, a/l -> OUTSIDE, ld -> a}, and OUTSIDE/{x, ro/} beside it.
    fn tree() -> (tempfile::TempDir, PathBuf, PathBuf) {
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

    #[test]
    fn removing_a_tree_touches_nothing_outside_it() {
        let (d, root, outside) = tree();
        // Folders the owner may not read or write, and a tree deeper than the levels held
        // open, which is moved up as it is removed.
        fs::create_dir_all(root.join("locked/inner")).unwrap();
        fs::write(root.join("locked/inner/f"), b"x").unwrap();
        fs::set_permissions(root.join("locked/inner"), fs::Permissions::from_mode(0o000)).unwrap();
        fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o500)).unwrap();
        let deep: PathBuf = (0..(REMOVE_DEPTH * 3)).map(|i| format!("d{i}")).collect();
        fs::create_dir_all(root.join(&deep)).unwrap();
        fs::write(root.join(&deep).join("f"), b"x").unwrap();
        let parent = fd(d.path());
        remove_tree(parent.as_fd(), OsStr::new("root"), |_| true).unwrap();
        assert!(!root.exists());
        assert_eq!(fs::read(outside.join("x")).unwrap(), b"keep");
        assert_eq!(mode(&outside.join("ro")), 0o555);
    }

    #[test]
    fn a_tree_swapped_for_a_symlink_after_the_check_is_not_removed() {
        let (d, root, outside) = tree();
        let parent = fd(d.path());
        let outside_mode = mode(&outside);
        // The check itself plays the attacker: once the name has been seen to hold a
        // folder, it is swapped for a symlink to a folder outside.
        let swapped = Cell::new(false);
        let res = remove_tree(parent.as_fd(), OsStr::new("root"), |_| {
            if !swapped.replace(true) {
                fs::rename(&root, d.path().join("moved")).unwrap();
                make_symlink(&outside, &root).unwrap();
            }
            true
        });
        assert!(res.is_err());
        assert_eq!(mode(&outside), outside_mode);
        assert_eq!(mode(&outside.join("ro")), 0o555);
        assert_eq!(fs::read(outside.join("x")).unwrap(), b"keep");
        assert!(fs::symlink_metadata(&root)
            .unwrap()
            .file_type()
            .is_symlink());
        // A symlink named directly, or a folder the check refuses, is left alone as well.
        assert!(remove_tree(parent.as_fd(), OsStr::new("root"), |_| true).is_err());
        assert!(remove_tree(parent.as_fd(), OsStr::new("moved"), |_| false).is_err());
        assert!(d.path().join("moved/a/f").exists());
    }
}
