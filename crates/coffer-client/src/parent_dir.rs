//! The folder a restore (or a decrypted payload) is written into, held by a descriptor
//! and checked to be out of other users' reach; and the payload file written beside its
//! final name.
//!
//! Everything placed there is made relative to that descriptor, so a path swapped after
//! the folder was opened changes nothing. The folder must be one that no other user can
//! change: another user who may add, rename or remove its entries could swap the restore's
//! staging folder for a symlink to a folder of theirs and receive the plaintext.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags};

use crate::beneath::{self, Ident};
use crate::error::ClientError;

const DIR: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// A folder opened without following a symlink, which other users cannot change.
pub(crate) struct ParentDir {
    pub(crate) fd: OwnedFd,
    /// As the user named it, for messages.
    pub(crate) path: PathBuf,
    /// Folders created to reach it, outermost first: (descriptor of the folder holding
    /// it, its name).
    pub(crate) created: Vec<(OwnedFd, OsString)>,
}

impl ParentDir {
    /// Opens `path`, creating the folders that are missing when `create` is set.
    ///
    /// The part that exists is resolved once (following the symlinks the user named, such
    /// as a home folder on another disk), then opened from `/` one name at a time with
    /// `O_NOFOLLOW`, so a name swapped for a symlink meanwhile is refused; missing folders
    /// are made with `mkdirat` (mode 0755: never writable by others whatever the umask).
    /// `what` says what is being done there, for messages ("restore into").
    pub(crate) fn open(path: &Path, create: bool, what: &str) -> Result<ParentDir, ClientError> {
        let path = if path.as_os_str().is_empty() {
            Path::new(".")
        } else {
            path
        };
        let mut existing = path;
        let mut missing = Vec::new();
        loop {
            match fs::symlink_metadata(existing) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                    let (Some(parent), Some(name)) = (existing.parent(), existing.file_name())
                    else {
                        return Err(ClientError::io("cannot open", path, e));
                    };
                    missing.push(name.to_os_string());
                    existing = parent;
                }
                Err(e) => return Err(ClientError::io("cannot open", existing, e)),
            }
        }
        let real =
            fs::canonicalize(existing).map_err(|e| ClientError::io("cannot open", existing, e))?;
        let changed = |e: io::Error| {
            ClientError::io(
                "cannot open (it changed while being opened; try again)",
                existing,
                e,
            )
        };
        let mut fd = rfs::openat(rfs::CWD, c"/", DIR, Mode::empty())
            .map_err(|e| ClientError::io("cannot open", "/", e.into()))?;
        for c in real.components() {
            if let Component::Normal(name) = c {
                fd = rfs::openat(&fd, name, DIR, Mode::empty()).map_err(|e| changed(e.into()))?;
            }
        }
        // The folder that holds what the restore creates, whether it made parents or not.
        check_private(&fd, existing, what)?;
        let mut created = Vec::new();
        for name in missing.iter().rev() {
            let made = match rfs::mkdirat(&fd, name.as_os_str(), Mode::from_raw_mode(0o755)) {
                Ok(()) => true,
                Err(rustix::io::Errno::EXIST) => false,
                Err(e) => return Err(ClientError::io("cannot create", path, e.into())),
            };
            let child = rfs::openat(&fd, name.as_os_str(), DIR, Mode::empty())
                .map_err(|e| changed(e.into()))?;
            if made {
                created.push((fd, name.clone()));
            }
            fd = child;
        }
        if !missing.is_empty() {
            check_private(&fd, path, what)?;
        }
        Ok(ParentDir {
            fd,
            path: path.to_path_buf(),
            created,
        })
    }

    /// Removes the folders [`ParentDir::open`] created, if they are still empty.
    pub(crate) fn remove_created(&mut self) {
        for (dir, name) in self.created.drain(..).rev() {
            let _ = rfs::unlinkat(&dir, name.as_os_str(), AtFlags::REMOVEDIR);
        }
    }
}

/// The effective uid: the kernel checks access by it.
pub(crate) fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Refuses a folder another user can change: owned by someone other than root or this
/// user, or writable by group or others without the sticky bit (in a sticky folder such
/// as /tmp, only an entry's owner may rename or remove it).
fn check_private(fd: &OwnedFd, path: &Path, what: &str) -> Result<(), ClientError> {
    let st = beneath::stat(fd).map_err(|e| ClientError::io("cannot inspect", path, e))?;
    let mode = beneath::perms(&st);
    let me = euid();
    let owner = beneath::owner(&st);
    let shown = path.display();
    if owner != 0 && owner != me {
        return Err(ClientError::Usage(format!(
            "refusing to {what} {shown}: it belongs to another user (uid {owner}), who could \
             swap what Coffer writes there for a link to a folder of theirs; name a folder of \
             your own"
        )));
    }
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        return Err(ClientError::Usage(format!(
            "refusing to {what} {shown}: other users can write to it (mode {mode:04o}) and \
             could swap what Coffer writes there for a link to a folder of theirs; make it \
             private (chmod go-w {shown}) or sticky like /tmp (chmod +t {shown}), or name a \
             folder of your own"
        )));
    }
    Ok(())
}

/// A hidden, random name beside `name`: `.NAME.coffer-WHAT-XXXXXXXX`.
pub(crate) fn sibling_name(name: &OsStr, what: &str) -> Result<OsString, ClientError> {
    let mut rand = [0u8; 4];
    coffer_format::key::fill_random(&mut rand)?;
    let tag: String = rand.iter().map(|b| format!("{b:02x}")).collect();
    let mut s = OsString::from(".");
    s.push(name);
    s.push(format!(".coffer-{what}-{tag}"));
    Ok(s)
}

/// The prefix of [`sibling_name`]s of `name` for `what`.
pub(crate) fn sibling_prefix(name: &OsStr, what: &str) -> Vec<u8> {
    let mut p = b".".to_vec();
    p.extend_from_slice(name.as_bytes());
    p.extend_from_slice(format!(".coffer-{what}-").as_bytes());
    p
}

/// A file written under a hidden name beside `out`, linked to `out` once complete (never
/// replacing anything), and removed otherwise.
pub(crate) struct PartialFile {
    parent: ParentDir,
    name: OsString,
    partial: OsString,
    ident: Ident,
    file: File,
}

impl PartialFile {
    /// Creates the hidden file, readable by its owner only, in `out`'s folder, which
    /// must exist and be out of other users' reach.
    pub(crate) fn create(out: &Path) -> Result<PartialFile, ClientError> {
        let name = out
            .file_name()
            .ok_or_else(|| ClientError::Usage(format!("{} has no file name", out.display())))?;
        let parent = ParentDir::open(
            out.parent().unwrap_or(Path::new("")),
            false,
            "write a payload into",
        )?;
        loop {
            let partial = sibling_name(name, "partial")?;
            match beneath::create_file(parent.fd.as_fd(), &partial) {
                Ok(file) => {
                    let st = beneath::stat(&file)
                        .map_err(|e| ClientError::io("cannot create", out, e))?;
                    return Ok(PartialFile {
                        parent,
                        name: name.to_os_string(),
                        partial,
                        ident: beneath::ident(&st),
                        file,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(ClientError::io("cannot create", out, e)),
            }
        }
    }

    pub(crate) fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Gives the complete file its final name; fails if that name was taken meanwhile.
    pub(crate) fn commit(self) -> Result<(), ClientError> {
        let out = self.parent.path.join(&self.name);
        self.file
            .sync_all()
            .map_err(|e| ClientError::io("cannot write", &out, e))?;
        // Hard-link rather than rename, so that an output created meanwhile is not replaced.
        rfs::linkat(
            &self.parent.fd,
            self.partial.as_os_str(),
            &self.parent.fd,
            self.name.as_os_str(),
            AtFlags::empty(),
        )
        .map_err(|e| ClientError::io("cannot create", &out, e.into()))
        // The partial name is removed on drop.
    }

    fn parent_fd(&self) -> BorrowedFd<'_> {
        self.parent.fd.as_fd()
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        let ours = beneath::stat_at(self.parent_fd(), &self.partial)
            .is_ok_and(|st| beneath::ident(&st) == self.ident);
        if ours {
            let _ = rfs::unlinkat(self.parent_fd(), self.partial.as_os_str(), AtFlags::empty());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    #[test]
    fn a_payload_appears_whole_under_its_name_or_not_at_all() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("payload");
        let mut partial = PartialFile::create(&out).unwrap();
        partial.file().write_all(b"plaintext").unwrap();
        let names = || -> Vec<OsString> {
            fs::read_dir(d.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect()
        };
        let hidden = names();
        assert_eq!(hidden.len(), 1);
        assert!(hidden[0]
            .to_string_lossy()
            .starts_with(".payload.coffer-partial-"));
        let md = fs::metadata(d.path().join(&hidden[0])).unwrap();
        assert_eq!(md.mode() & 0o777, 0o600, "plaintext readable by others");
        partial.commit().unwrap();
        assert_eq!(names(), [OsString::from("payload")]);
        assert_eq!(fs::read(&out).unwrap(), b"plaintext");

        // Never replaces a name taken meanwhile; an abandoned one leaves nothing.
        let mut partial = PartialFile::create(&out).unwrap();
        partial.file().write_all(b"second").unwrap();
        assert!(partial.commit().is_err());
        assert_eq!(fs::read(&out).unwrap(), b"plaintext");
        drop(PartialFile::create(&d.path().join("other")).unwrap());
        assert_eq!(names(), [OsString::from("payload")]);
    }

    #[test]
    fn a_payload_is_not_written_where_others_can_swap_it() {
        let d = tempfile::tempdir().unwrap();
        let shared = d.path().join("shared");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
        match PartialFile::create(&shared.join("payload")) {
            Err(ClientError::Usage(m)) => assert!(m.contains("other users can write to"), "{m}"),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("a payload was written in a folder all can write to"),
        }
        // A folder named through a symlink is the folder the symlink names.
        let real = d.path().join("real");
        fs::create_dir(&real).unwrap();
        symlink(&real, d.path().join("via")).unwrap();
        PartialFile::create(&d.path().join("via/payload"))
            .unwrap()
            .commit()
            .unwrap();
        assert!(real.join("payload").exists());
        // Missing folders are not created for a payload.
        assert!(PartialFile::create(&d.path().join("missing/payload")).is_err());
    }

    #[test]
    fn missing_parents_are_made_private_whatever_the_umask() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("a/b");
        let mut parent = ParentDir::open(&path, true, "restore into").unwrap();
        assert_eq!(parent.created.len(), 2);
        let mode = fs::metadata(&path).unwrap().mode() & 0o7777;
        assert_eq!(mode & 0o022, 0, "{mode:o}");
        parent.remove_created();
        assert!(!d.path().join("a").exists());
    }
}
