//! Restore targets and the staging directory beside them.
//!
//! A restore unpacks into `.NAME.coffer-restore-XXXXXXXX` next to the target and, once the
//! whole backup is authenticated, makes it the target with one `renameat`. Until then nothing
//! appears under the target's name, and on failure the staging directory (and any parent
//! folders the restore created) is removed.
//!
//! The target's folder is held by a descriptor and must be out of other users' reach
//! ([`ParentDir`]); the staging directory is made there with `mkdirat` (mode 0700), filled
//! through its own descriptor, and every removal is descriptor-relative and follows no
//! symlink ([`beneath::remove_tree`]). The staging directory is locked (`flock`) for as long
//! as the restore holds it; stale staging directories are removed only when they are real
//! directories owned by this user, named exactly as a restore names them, and not locked
//! by a live restore.
//!
//! An existing empty target must belong to this user: it is replaced, and its mode (other
//! than write access for others without the sticky bit) is kept.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{self as rfs, FlockOperation, Mode};

use crate::beneath::{self, Ident};
use crate::error::ClientError;
use crate::parent_dir::{euid, sibling_name, sibling_prefix, ParentDir};

/// A checked restore target.
pub(crate) struct Target {
    /// Absolute, without `.` or `..`.
    path: PathBuf,
}

impl Target {
    /// Accepts a path that does not exist, or is an empty directory other than the current
    /// one.
    pub(crate) fn resolve(target: &Path) -> Result<Target, ClientError> {
        let cwd = std::env::current_dir()
            .map_err(|e| ClientError::io("cannot read the current directory", ".", e))?;
        let mut path = PathBuf::new();
        for c in cwd.join(target).components() {
            match c {
                Component::CurDir => {}
                Component::ParentDir => {
                    path.pop();
                }
                other => path.push(other),
            }
        }
        if path.file_name().is_none() || fs::canonicalize(&path).ok() == fs::canonicalize(&cwd).ok()
        {
            return Err(ClientError::Usage(format!(
                "cannot restore into {}: name a new folder (or an empty one other than the current directory)",
                target.display()
            )));
        }
        // Checked early, before anything is downloaded; checked again relative to the
        // folder's descriptor when the staging directory is made.
        match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(ClientError::io("cannot inspect", &path, e)),
            Ok(md) if md.is_dir() => {
                use std::os::unix::fs::MetadataExt;
                refuse_if_theirs(md.uid(), &path)?;
                let mut rd =
                    fs::read_dir(&path).map_err(|e| ClientError::io("cannot list", &path, e))?;
                if rd.next().is_some() {
                    return Err(ClientError::TargetExists(target.into()));
                }
            }
            Ok(_) => return Err(ClientError::TargetExists(target.into())),
        }
        Ok(Target { path })
    }
}

/// A staging directory beside the restore target, removed unless committed.
pub(crate) struct Staging {
    parent: ParentDir,
    /// The target's name in `parent`.
    target: OsString,
    /// The staging directory's name in `parent`, its descriptor and identity.
    name: OsString,
    dir: OwnedFd,
    ident: Ident,
    replaces_empty_dir: Option<u32>,
    committed: bool,
}

impl Staging {
    pub(crate) fn create(target: Target) -> Result<Staging, ClientError> {
        let (Some(parent_path), Some(name)) = (target.path.parent(), target.path.file_name())
        else {
            return Err(ClientError::Usage(
                "cannot restore into the root directory".into(),
            ));
        };
        let mut parent = ParentDir::open(parent_path, true, "restore into")?;
        let made = Self::make(&parent, name, &target.path);
        let (name_in_parent, dir, ident, replaces_empty_dir) = match made {
            Ok(m) => m,
            Err(e) => {
                parent.remove_created();
                return Err(e);
            }
        };
        Ok(Staging {
            parent,
            target: name.to_os_string(),
            name: name_in_parent,
            dir,
            ident,
            replaces_empty_dir,
            committed: false,
        })
    }

    /// Checks the target again, now relative to its folder's descriptor, removes stale
    /// staging directories and makes a new one.
    #[allow(clippy::type_complexity)]
    fn make(
        parent: &ParentDir,
        target: &OsStr,
        shown: &Path,
    ) -> Result<(OsString, OwnedFd, Ident, Option<u32>), ClientError> {
        let at = parent.fd.as_fd();
        let replaces_empty_dir = match beneath::stat_at(at, target) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(ClientError::io("cannot inspect", shown, e)),
            Ok(st) if beneath::is_dir(&st) => {
                refuse_if_theirs(beneath::owner(&st), shown)?;
                let dir = beneath::open_child_dir(at, target)
                    .map_err(|e| ClientError::io("cannot list", shown, e))?;
                let mut entries = rfs::Dir::new(dir)
                    .map_err(|e| ClientError::io("cannot list", shown, e.into()))?;
                let dots = |e: &rfs::DirEntry| matches!(e.file_name().to_bytes(), b"." | b"..");
                if entries.any(|e| e.map_or(true, |e| !dots(&e))) {
                    return Err(ClientError::TargetExists(shown.into()));
                }
                Some(kept_mode(beneath::perms(&st)))
            }
            Ok(_) => return Err(ClientError::TargetExists(shown.into())),
        };
        remove_stale(at, target);
        let create =
            |e: io::Error| ClientError::io("cannot create a staging folder beside", shown, e);
        let mut tries = 0;
        let (name, dir, st) = loop {
            tries += 1;
            if tries > MAKE_TRIES {
                return Err(create(io::Error::other(
                    "other restores into the same target kept removing it",
                )));
            }
            let name = sibling_name(target, "restore")?;
            match rfs::mkdirat(at, name.as_os_str(), Mode::from_raw_mode(0o700)) {
                Ok(()) => {}
                Err(rustix::io::Errno::EXIST) => continue,
                Err(e) => return Err(create(e.into())),
            }
            // Locked at once, so that other restores' cleanups leave it alone. One that
            // found it between mkdirat and the lock took it for stale: it is then locked
            // by that cleanup or gone, and another name is tried.
            let dir = match beneath::open_child_dir(at, &name) {
                Ok(dir) => dir,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(create(e)),
            };
            match rfs::flock(&dir, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(rustix::io::Errno::WOULDBLOCK) => continue,
                // A file system without locks: cleanups cannot lock it either, and skip it.
                Err(e) if locks_unsupported(e) => {}
                Err(e) => return Err(create(e.into())),
            }
            let st = beneath::stat(&dir).map_err(create)?;
            let still_there = beneath::stat_at(at, &name)
                .is_ok_and(|now| beneath::ident(&now) == beneath::ident(&st));
            if still_there {
                break (name, dir, st);
            }
        };
        // Whatever the umask: owner only, and writable by the owner while it fills.
        beneath::set_mode(&dir, 0o700).map_err(create)?;
        Ok((name, dir, beneath::ident(&st), replaces_empty_dir))
    }

    /// The staging directory's descriptor: everything is unpacked relative to it.
    pub(crate) fn dir(&self) -> Result<OwnedFd, ClientError> {
        self.dir
            .try_clone()
            .map_err(|e| ClientError::io("cannot open", &self.parent.path, e))
    }

    /// Moves the staged tree into place: one rename, so the target appears whole or not at all.
    pub(crate) fn commit(mut self) -> Result<(), ClientError> {
        let target = self.parent.path.join(&self.target);
        // Make the restored data durable before it becomes visible under the target name.
        sync_filesystem(&self.dir);
        // Nobody else can rename in this folder; still, move only our own directory.
        let still_ours = beneath::stat_at(self.parent.fd.as_fd(), &self.name)
            .is_ok_and(|st| beneath::ident(&st) == self.ident);
        if !still_ours {
            return Err(ClientError::io(
                "cannot move into place",
                &target,
                io::Error::other("the staging folder was moved or replaced during the restore"),
            ));
        }
        // An empty directory being replaced keeps its permissions.
        let mode = self.replaces_empty_dir.unwrap_or(0o755);
        beneath::set_mode(&self.dir, mode)
            .map_err(|e| ClientError::io("cannot set the mode of", &target, e))?;
        // rename(2) replaces an empty directory atomically, and never follows a symlink.
        rfs::renameat(
            &self.parent.fd,
            self.name.as_os_str(),
            &self.parent.fd,
            self.target.as_os_str(),
        )
        .map_err(|e| ClientError::io("cannot move into place", &target, e.into()))?;
        let _ = rfs::fsync(&self.parent.fd);
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        let ours = |st: &rfs::Stat| beneath::ident(st) == self.ident;
        if let Err(e) = beneath::remove_tree(self.parent.fd.as_fd(), &self.name, ours) {
            tracing::warn!(
                "could not remove {}: {e}",
                self.parent.path.join(&self.name).display()
            );
        }
        self.parent.remove_created();
    }
}

/// Attempts at a staging name before giving up: only restores of this user into the same
/// target can make one fail.
const MAKE_TRIES: u32 = 16;

/// Refuses an existing (empty) target of another user: it would be replaced by one of this
/// user's keeping its mode, often open to all, and its owner could still rename or remove
/// what the restore puts there.
fn refuse_if_theirs(owner: u32, shown: &Path) -> Result<(), ClientError> {
    if owner == euid() {
        return Ok(());
    }
    Err(ClientError::Usage(format!(
        "refusing to restore into {}: it is an empty folder that belongs to another user \
         (uid {owner}), who could rename, remove or swap what the restore puts there; name a \
         new folder (or one of your own)",
        shown.display()
    )))
}

/// The mode an empty target being replaced passes on: its own, without write access for
/// group and others unless it is sticky (where only an entry's owner may rename or remove
/// it), so that no other user can move the restored entries.
fn kept_mode(mode: u32) -> u32 {
    if mode & 0o1000 == 0 {
        mode & !0o022
    } else {
        mode
    }
}

/// Whether `flock` failed because the file system has no locks.
fn locks_unsupported(e: rustix::io::Errno) -> bool {
    use rustix::io::Errno;
    matches!(e, Errno::OPNOTSUPP | Errno::NOSYS | Errno::NOLCK)
}

/// Whether `name` is exactly a [`sibling_name`] of the target for "restore": the prefix
/// and eight lowercase hex digits (so not another target's staging folder that merely
/// starts alike).
fn is_staging_name(name: &[u8], prefix: &[u8]) -> bool {
    name.len() == prefix.len() + 8
        && name.starts_with(prefix)
        && name[prefix.len()..]
            .iter()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Removes staging directories left by restores into the same target that were killed:
/// only real directories owned by this user that no live restore holds locked, and nothing
/// outside them.
fn remove_stale(parent: std::os::fd::BorrowedFd<'_>, target: &OsStr) {
    let prefix = sibling_prefix(target, "restore");
    let Ok(entries) = rfs::Dir::read_from(parent) else {
        return;
    };
    let me = euid();
    for e in entries.flatten() {
        if !is_staging_name(e.file_name().to_bytes(), &prefix) {
            continue;
        }
        let name = OsStr::from_bytes(e.file_name().to_bytes());
        // Opened without following a symlink, and locked, or skipped: the lock is held by
        // the live restore that owns it (and released when this descriptor closes).
        let Ok(dir) = beneath::open_child_dir(parent, name) else {
            continue;
        };
        let Ok(st) = beneath::stat(&dir) else {
            continue;
        };
        let locked = beneath::ident(&st);
        if beneath::owner(&st) != me
            || rfs::flock(&dir, FlockOperation::NonBlockingLockExclusive).is_err()
        {
            continue;
        }
        let accept = |st: &rfs::Stat| beneath::owner(st) == me && beneath::ident(st) == locked;
        match beneath::remove_tree(parent, name, accept) {
            Ok(()) => {}
            // Another user's entry, or not a directory: not ours to remove.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {}
            Err(e) => tracing::warn!("could not remove a stale staging folder: {e}"),
        }
    }
}

/// Flushes the file system holding `dir` (one `syncfs` instead of an fsync per file).
fn sync_filesystem(dir: &OwnedFd) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = rfs::syncfs(dir);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = rfs::fsync(dir);
}

#[cfg(test)]
impl Staging {
    fn path(&self) -> PathBuf {
        self.parent.path.join(&self.name)
    }
}

#[cfg(test)]
#[path = "staging_tests.rs"]
mod tests;
