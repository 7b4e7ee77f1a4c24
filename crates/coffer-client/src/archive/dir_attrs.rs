//! Modes and times of restored directories, in bounded memory.
//!
//! Creating an entry inside a directory changes its time, and a read-only directory could
//! not be filled, so a directory's attributes wait until the stream has left it. An archive
//! lists a directory before its contents (Coffer's packer walks depth first), so only the
//! directories enclosing the current entry are pending: memory grows with the depth of the
//! tree, never with the number of directories. A mode that takes rights from the owner
//! waits until the very end, so that an archive that comes back to a directory can still
//! fill it (within a bound, past which it is set at once).
//!
//! Every change goes through a descriptor opened beneath the staging directory without
//! following any symlink ([`beneath::open_dir`]).

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::beneath;
use crate::error::ClientError;

/// Total path bytes of directories whose mode waits for the end.
const MAX_DEFERRED_BYTES: usize = 1 << 20;

/// Directory attributes still to apply: finish with [`DirAttrs::apply`] once the whole
/// stream is authenticated.
#[derive(Debug, Default)]
pub struct DirAttrs {
    /// The staging directory; `None` when nothing is written (verify).
    root: Option<OwnedFd>,
    /// The innermost directory entry enclosing the stream's position.
    chain: PathBuf,
    /// For each directory entry along `chain`, outermost first: its number of path
    /// components, mode and time.
    open: Vec<(usize, u32, i64)>,
    /// Modes without full owner rights, in the order their directories were left
    /// (children before parents).
    deferred: Vec<(PathBuf, u32)>,
    deferred_bytes: usize,
}

impl DirAttrs {
    pub(super) fn new(root: Option<OwnedFd>) -> DirAttrs {
        DirAttrs {
            root,
            ..DirAttrs::default()
        }
    }

    /// Called before each entry at `rel`: finishes the directories the stream has left.
    pub(super) fn leave_unless_inside(&mut self, rel: &Path) -> Result<(), ClientError> {
        while let Some(&(depth, mode, mtime)) = self.open.last() {
            let dir: PathBuf = self.chain.components().take(depth).collect();
            if rel != dir && rel.starts_with(&dir) {
                break;
            }
            self.open.pop();
            self.finish(&dir, mode, mtime)?;
        }
        Ok(())
    }

    /// Records a directory entry; [`Self::leave_unless_inside`] ran for it.
    pub(super) fn enter(&mut self, rel: &Path, mode: u32, mtime: i64) {
        if self.root.is_none() {
            return;
        }
        self.chain = rel.to_path_buf();
        self.open.push((rel.components().count(), mode, mtime));
    }

    fn finish(&mut self, rel: &Path, mode: u32, mtime: i64) -> Result<(), ClientError> {
        let Some(root) = &self.root else {
            return Ok(());
        };
        let fail = |what, e| ClientError::io(what, rel, e);
        let dir = beneath::open_dir(root.as_fd(), rel).map_err(|e| fail("cannot open", e))?;
        let len = rel.as_os_str().len();
        if mode & 0o700 == 0o700 || self.deferred_bytes + len > MAX_DEFERRED_BYTES {
            beneath::set_mode(&dir, mode).map_err(|e| fail("cannot set the mode of", e))?;
        } else {
            self.deferred.push((rel.to_path_buf(), mode));
            self.deferred_bytes += len;
        }
        beneath::set_mtime(&dir, mtime).map_err(|e| fail("cannot set the time of", e))
    }

    /// Applies what is still pending: the enclosing directories, innermost first, then
    /// the modes that take rights from the owner.
    pub fn apply(mut self) -> Result<(), ClientError> {
        while let Some((depth, mode, mtime)) = self.open.pop() {
            let dir: PathBuf = self.chain.components().take(depth).collect();
            self.finish(&dir, mode, mtime)?;
        }
        let Some(root) = &self.root else {
            return Ok(());
        };
        for (rel, mode) in &self.deferred {
            let fail = |what, e| ClientError::io(what, rel, e);
            let dir = beneath::open_dir(root.as_fd(), rel).map_err(|e| fail("cannot open", e))?;
            beneath::set_mode(&dir, *mode).map_err(|e| fail("cannot set the mode of", e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
impl DirAttrs {
    /// Directories still pending, and modes waiting for the end.
    pub(super) fn pending(&self) -> (usize, usize) {
        (self.open.len(), self.deferred.len())
    }
}
