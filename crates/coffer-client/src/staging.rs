//! Restore targets and the staging directory beside them.
//!
//! A restore unpacks into `.NAME.coffer-restore-XXXXXXXX` next to the target and, once the
//! whole backup is authenticated, makes it the target with one `rename`. Until then nothing
//! appears under the target's name, and on failure the staging directory (and any parent
//! folders the restore created) is removed.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::error::ClientError;

/// A checked restore target.
pub(crate) struct Target {
    /// Absolute, without `.` or `..`.
    path: PathBuf,
    /// The mode of an existing empty directory that the restore replaces.
    replaces_empty_dir: Option<u32>,
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
        let replaces_empty_dir = match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(ClientError::io("cannot inspect", &path, e)),
            Ok(md) if md.is_dir() => {
                let mut rd =
                    fs::read_dir(&path).map_err(|e| ClientError::io("cannot list", &path, e))?;
                if rd.next().is_some() {
                    return Err(ClientError::TargetExists(target.into()));
                }
                Some(md.mode() & 0o7777)
            }
            Ok(_) => return Err(ClientError::TargetExists(target.into())),
        };
        Ok(Target {
            path,
            replaces_empty_dir,
        })
    }
}

/// A staging directory beside the restore target, removed unless committed.
pub(crate) struct Staging {
    path: PathBuf,
    target: PathBuf,
    replaces_empty_dir: Option<u32>,
    /// Parent folders this restore created, outermost first.
    created: Vec<PathBuf>,
    committed: bool,
}

impl Staging {
    pub(crate) fn create(target: Target) -> Result<Staging, ClientError> {
        let parent = target
            .path
            .parent()
            .ok_or_else(|| ClientError::Usage("cannot restore into the root directory".into()))?;
        let mut created = Vec::new();
        for dir in parent.ancestors().collect::<Vec<_>>().into_iter().rev() {
            if !dir.exists() {
                fs::create_dir(dir).map_err(|e| ClientError::io("cannot create", dir, e))?;
                created.push(dir.to_path_buf());
            }
        }
        let mut staging = Staging {
            path: PathBuf::new(),
            target: target.path,
            replaces_empty_dir: target.replaces_empty_dir,
            created,
            committed: false,
        };
        staging.remove_stale();
        let path = sibling_name(&staging.target, "restore")?;
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| ClientError::io("cannot create", &path, e))?;
        staging.path = path;
        Ok(staging)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Staging directories left by restores into the same target that were killed.
    fn remove_stale(&self) {
        let (Some(parent), Some(name)) = (self.target.parent(), self.target.file_name()) else {
            return;
        };
        let prefix = format!(".{}.coffer-restore-", name.to_string_lossy());
        let Ok(entries) = fs::read_dir(parent) else {
            return;
        };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                remove_tree(&e.path());
            }
        }
    }

    /// Moves the staged tree into place: one rename, so the target appears whole or not at all.
    pub(crate) fn commit(mut self) -> Result<(), ClientError> {
        // Make the restored data durable before it becomes visible under the target name.
        sync_filesystem(&self.path);
        // An empty directory being replaced keeps its permissions.
        let mode = self.replaces_empty_dir.unwrap_or(0o755);
        fs::set_permissions(&self.path, fs::Permissions::from_mode(mode))
            .map_err(|e| ClientError::io("cannot set the mode of", &self.target, e))?;
        // rename(2) replaces an empty directory atomically.
        fs::rename(&self.path, &self.target)
            .map_err(|e| ClientError::io("cannot move into place", &self.target, e))?;
        if let Some(parent) = self.target.parent() {
            if let Ok(dir) = fs::File::open(parent) {
                let _ = dir.sync_all();
            }
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        if !self.path.as_os_str().is_empty() {
            remove_tree(&self.path);
        }
        for dir in self.created.iter().rev() {
            // Only if still empty: something else may have appeared there meanwhile.
            let _ = fs::remove_dir(dir);
        }
    }
}

/// A hidden, random name beside `target`: `.NAME.coffer-WHAT-XXXXXXXX`.
pub(crate) fn sibling_name(target: &Path, what: &str) -> Result<PathBuf, ClientError> {
    let name = target
        .file_name()
        .ok_or_else(|| ClientError::Usage(format!("{} has no file name", target.display())))?;
    let mut rand = [0u8; 4];
    coffer_format::key::fill_random(&mut rand)?;
    let tag: String = rand.iter().map(|b| format!("{b:02x}")).collect();
    Ok(target.with_file_name(format!(".{}.coffer-{what}-{tag}", name.to_string_lossy())))
}

/// Removes a tree even if it holds read-only directories (as a restored tree may).
fn remove_tree(path: &Path) {
    if fs::remove_dir_all(path).is_ok() {
        return;
    }
    fn make_writable(p: &Path) {
        let Ok(md) = fs::symlink_metadata(p) else {
            return;
        };
        if md.is_dir() {
            let _ = fs::set_permissions(p, fs::Permissions::from_mode(0o700));
            if let Ok(rd) = fs::read_dir(p) {
                for e in rd.flatten() {
                    make_writable(&e.path());
                }
            }
        }
    }
    make_writable(path);
    if let Err(e) = fs::remove_dir_all(path) {
        tracing::warn!("could not remove {}: {e}", path.display());
    }
}

/// Flushes the file system holding `path` (one `syncfs` instead of an fsync per file).
fn sync_filesystem(path: &Path) {
    use std::os::fd::AsRawFd;
    if let Ok(dir) = fs::File::open(path) {
        // SAFETY: syncfs only reads the descriptor, which stays open for the call.
        unsafe {
            libc::syncfs(dir.as_raw_fd());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_checked_and_normalised() {
        let d = tempfile::tempdir().unwrap();
        let t = Target::resolve(&d.path().join("a/./b/../c")).unwrap();
        assert_eq!(t.path, d.path().join("a/c"));
        assert!(t.replaces_empty_dir.is_none());
        fs::create_dir(d.path().join("empty")).unwrap();
        fs::set_permissions(d.path().join("empty"), fs::Permissions::from_mode(0o700)).unwrap();
        let t = Target::resolve(&d.path().join("empty")).unwrap();
        assert_eq!(t.replaces_empty_dir, Some(0o700));
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
        use std::os::unix::fs::PermissionsExt;
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
}
