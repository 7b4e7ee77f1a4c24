//! Removing a tree without leaving it: no symlink is followed, no mode is set through a
//! path, and few descriptors are held whatever the tree's depth.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};

use super::{ident, is_dir, open_child_dir, perms, set_mode, stat, stat_at};

/// Levels of directories held open while removing a tree; deeper subtrees are moved up
/// first, so that removing any tree needs few descriptors.
const REMOVE_DEPTH: usize = 32;

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

#[cfg(test)]
mod tests {
    use super::super::tests::{fd, mode, tree};
    use super::*;
    use std::cell::Cell;
    use std::fs;
    use std::os::unix::fs::{symlink as make_symlink, PermissionsExt};

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
        assert!(outside.join("x").exists(), "removed through a symlink");
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
        assert!(outside.join("x").exists(), "removed through the symlink");
        assert!(outside.join("ro").exists(), "removed through the symlink");
        assert_eq!(mode(&outside), outside_mode);
        assert_eq!(mode(&outside.join("ro")), 0o555);
        assert!(fs::symlink_metadata(&root)
            .unwrap()
            .file_type()
            .is_symlink());
        // A symlink named directly, or a folder the check refuses, is left alone as well.
        assert!(remove_tree(parent.as_fd(), OsStr::new("root"), |_| true).is_err());
        assert!(remove_tree(parent.as_fd(), OsStr::new("moved"), |_| false).is_err());
        assert!(d.path().join("moved/a/f").exists());
    }

    /// Root never meets an unreadable folder when removing; the fallback is run directly.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_folder_its_owner_may_not_read_is_opened_by_its_inode() {
        let (d, root, outside) = tree();
        fs::set_permissions(root.join("a/b"), fs::Permissions::from_mode(0o000)).unwrap();
        let a = fd(&root.join("a"));
        let b = unreadable_dir(a.as_fd(), OsStr::new("b")).unwrap();
        assert_eq!(mode(&root.join("a/b")), 0o700);
        assert!(stat(&b).is_ok());
        // A symlink in its place is refused, and its target left as it was.
        assert!(unreadable_dir(a.as_fd(), OsStr::new("l")).is_err());
        assert_eq!(mode(&outside.join("ro")), 0o555);
        drop(d);
    }
}
