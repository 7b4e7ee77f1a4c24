//! Reading backup sources faithfully. Below the paths the user named, every folder and
//! file is opened relative to its parent folder's descriptor with `O_NOFOLLOW`, and what
//! `fstat` says of the open descriptor decides how it is stored; a path is never looked
//! up twice. Something swapped in between a folder's listing and the open (a FIFO, a
//! symlink, a folder for a file) is therefore never followed, read or waited on: it is
//! skipped with a [`SourceWarning`].
//!
//! The paths the user named are followed if they are symlinks: `coffer backup LINK`
//! backs up what LINK points to, under LINK's name.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Stat, CWD};
use rustix::io::Errno;
use serde::Serialize;

use crate::error::ClientError;

/// A file or folder that changed while the backup read it. The backup was still made,
/// holding what was read; the CLI exits with its own code so that scripts notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceWarning {
    /// The path on this machine.
    #[serde(serialize_with = "lossy_path")]
    pub path: PathBuf,
    #[serde(flatten)]
    pub change: SourceChange,
}

/// How a source changed while it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum SourceChange {
    /// It grew while it was read: the backup holds its first `read` bytes.
    Grew { read: u64, now: u64 },
    /// It was written to while it was read: the backup holds the bytes as they were read,
    /// which may mix old and new contents.
    Modified,
    /// It was removed after its folder was listed: it is not in the backup.
    Vanished,
    /// It was replaced by something else after its folder was listed (a file by a FIFO or
    /// a symlink, a folder by a file…): that is not in the backup.
    Replaced {
        was: &'static str,
        now: &'static str,
    },
}

impl fmt::Display for SourceWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        match self.change {
            SourceChange::Grew { read, now } => write!(
                f,
                "{p} grew from {read} to {now} bytes while it was read; the backup holds its first {read} bytes"
            ),
            SourceChange::Modified => write!(
                f,
                "{p} changed while it was read; the backup holds the bytes as they were read"
            ),
            SourceChange::Vanished => write!(f, "{p} was removed while the backup ran; not backed up"),
            SourceChange::Replaced { was, now } => write!(
                f,
                "{p} was a {was} but became a {now} while the backup ran; not backed up"
            ),
        }
    }
}

fn lossy_path<S: serde::Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string_lossy())
}

/// What an entry is, by `lstat` (the folder's listing) or `fstat` (the open descriptor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Folder,
    Symlink,
    /// FIFOs, sockets and devices: not backed up.
    Special(&'static str),
}

impl Kind {
    fn of(st: &Stat) -> Kind {
        match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Folder,
            FileType::Symlink => Kind::Symlink,
            FileType::Fifo => Kind::Special("FIFO"),
            FileType::Socket => Kind::Special("socket"),
            FileType::CharacterDevice | FileType::BlockDevice => Kind::Special("device"),
            FileType::Unknown => Kind::Special("special file"),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Folder => "folder",
            Kind::Symlink => "symlink",
            Kind::Special(what) => what,
        }
    }
}

/// An open source folder.
#[derive(Debug)]
pub(crate) struct SourceDir {
    fd: OwnedFd,
}

/// A path the user named, opened.
#[derive(Debug)]
pub(crate) enum Top {
    Folder(SourceDir, fs::Metadata),
    File(fs::File, fs::Metadata),
}

/// Opens a path the user named, following it if it is a symlink. Anything but a folder or
/// a regular file is refused, without opening it (opening a device can have effects).
pub(crate) fn open_top(path: &Path) -> Result<Top, ClientError> {
    let err = |e: Errno| ClientError::io("cannot read", path, e.into());
    let seen = Kind::of(&rfs::stat(path).map_err(err)?);
    if let Kind::Special(what) = seen {
        return Err(not_a_file_or_folder(path, what));
    }
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let fd = rfs::openat(CWD, path, flags, Mode::empty()).map_err(err)?;
    match Kind::of(&rfs::fstat(&fd).map_err(err)?) {
        Kind::Folder => {
            let dir = SourceDir { fd };
            let md = dir
                .metadata()
                .map_err(|e| ClientError::io("cannot read", path, e))?;
            Ok(Top::Folder(dir, md))
        }
        Kind::File => {
            let file = blocking_file(fd).map_err(err)?;
            let md = file
                .metadata()
                .map_err(|e| ClientError::io("cannot read", path, e))?;
            Ok(Top::File(file, md))
        }
        other => Err(not_a_file_or_folder(path, other.name())),
    }
}

/// A walk keeps one descriptor open per folder level, and archive paths allow 2048
/// levels: raise this process's soft limit on open files (often 1024) toward the hard
/// limit. Best effort; a walk that still runs out fails with "too many open files".
pub(crate) fn allow_deep_walks() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    const WANTED: u64 = 8192;
    let mut limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(WANTED);
    if limit.current.is_some_and(|soft| soft < WANTED.min(hard)) {
        limit.current = Some(WANTED.min(hard));
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

/// What a special file is, for messages.
pub(crate) fn describe(md: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = md.file_type();
    if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else if t.is_block_device() || t.is_char_device() {
        "device"
    } else {
        "special file"
    }
}

pub(crate) fn not_a_file_or_folder(path: &Path, what: &str) -> ClientError {
    ClientError::Usage(format!(
        "cannot back up {}: it is a {what}, not a file or folder",
        path.display()
    ))
}

/// A regular file opened `O_NONBLOCK`, made blocking again: file systems that pass the
/// flag on (FUSE) could otherwise answer a read with `EAGAIN`.
fn blocking_file(fd: OwnedFd) -> rustix::io::Result<fs::File> {
    let flags = rfs::fcntl_getfl(&fd)?;
    rfs::fcntl_setfl(&fd, flags - OFlags::NONBLOCK)?;
    Ok(fs::File::from(fd))
}

/// The outcome of opening an entry listed in a folder.
pub(crate) type Opened<T> = Result<T, SourceChange>;

impl SourceDir {
    fn metadata(&self) -> io::Result<fs::Metadata> {
        // std's fstat, for the tar header; through a duplicate so the folder stays open.
        fs::File::from(self.fd.try_clone()?).metadata()
    }

    /// The names in this folder, sorted (an archive should not depend on disk order).
    pub(crate) fn names(&self) -> io::Result<Vec<OsString>> {
        let mut names = Vec::new();
        for entry in rfs::Dir::read_from(&self.fd)? {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(OsStr::from_bytes(name).to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// What `name` is now, by `lstat`; `None` when it is gone.
    pub(crate) fn kind_of(&self, name: &OsStr) -> io::Result<Option<(Kind, Stat)>> {
        match rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some((Kind::of(&st), st))),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens folder `name`, which was a folder when listed. A symlink or anything else
    /// found there now is not followed.
    pub(crate) fn open_folder(
        &self,
        name: &OsStr,
    ) -> io::Result<Opened<(SourceDir, fs::Metadata)>> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rfs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => {
                let dir = SourceDir { fd };
                let md = dir.metadata()?;
                Ok(Ok((dir, md)))
            }
            Err(Errno::LOOP | Errno::NOTDIR) => Ok(Err(self.replaced(name, Kind::Folder)?)),
            Err(Errno::NOENT) => Ok(Err(SourceChange::Vanished)),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens file `name`, which was a regular file when listed, with `O_NOFOLLOW` (a
    /// symlink put there is not followed) and `O_NONBLOCK` (a FIFO put there does not
    /// wait for a writer), and keeps it only if `fstat` shows a regular file.
    pub(crate) fn open_file(&self, name: &OsStr) -> io::Result<Opened<(fs::File, fs::Metadata)>> {
        let flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd = match rfs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            // ELOOP: now a symlink; ENXIO: now a socket.
            Err(Errno::LOOP | Errno::NXIO) => return Ok(Err(self.replaced(name, Kind::File)?)),
            Err(Errno::NOENT) => return Ok(Err(SourceChange::Vanished)),
            Err(e) => return Err(e.into()),
        };
        let now = Kind::of(&rfs::fstat(&fd)?);
        if now != Kind::File {
            return Ok(Err(SourceChange::Replaced {
                was: Kind::File.name(),
                now: now.name(),
            }));
        }
        let file = blocking_file(fd)?;
        let md = file.metadata()?;
        Ok(Ok((file, md)))
    }

    /// The target of symlink `name`.
    pub(crate) fn read_link(&self, name: &OsStr) -> io::Result<Opened<PathBuf>> {
        match rfs::readlinkat(&self.fd, name, Vec::new()) {
            Ok(target) => Ok(Ok(PathBuf::from(OsStr::from_bytes(target.as_bytes())))),
            // EINVAL: no longer a symlink.
            Err(Errno::INVAL) => Ok(Err(self.replaced(name, Kind::Symlink)?)),
            Err(Errno::NOENT) => Ok(Err(SourceChange::Vanished)),
            Err(e) => Err(e.into()),
        }
    }

    fn replaced(&self, name: &OsStr, was: Kind) -> io::Result<SourceChange> {
        Ok(match self.kind_of(name)? {
            Some((now, _)) => SourceChange::Replaced {
                was: was.name(),
                now: now.name(),
            },
            None => SourceChange::Vanished,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::sync::mpsc;
    use std::time::Duration;

    fn dir_at(p: &Path) -> SourceDir {
        match open_top(p).unwrap() {
            Top::Folder(d, _) => d,
            Top::File(..) => panic!("not a folder"),
        }
    }

    /// Runs `f` on another thread; a hang fails the test instead of stalling the suite
    /// (a guard only: nothing here depends on how long `f` takes).
    fn without_hanging<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(60))
            .expect("opening hung: a FIFO was waited on")
    }

    #[test]
    fn a_fifo_where_a_file_was_listed_is_refused_without_waiting() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().to_path_buf();
        rfs::mkfifoat(CWD, root.join("db"), Mode::from_raw_mode(0o600)).unwrap();
        let outcome = without_hanging(move || {
            let dir = dir_at(&root);
            dir.open_file(OsStr::new("db")).unwrap().map(|_| ())
        });
        assert_eq!(
            outcome,
            Err(SourceChange::Replaced {
                was: "file",
                now: "FIFO"
            })
        );
    }

    #[test]
    fn a_symlink_where_a_file_or_folder_was_listed_is_not_followed() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("secret"), b"not for the backup").unwrap();
        fs::create_dir(d.path().join("outside")).unwrap();
        let src = d.path().join("src");
        fs::create_dir(&src).unwrap();
        symlink(d.path().join("secret"), src.join("file")).unwrap();
        symlink(d.path().join("outside"), src.join("folder")).unwrap();
        let dir = dir_at(&src);
        let replaced = |was| {
            Err(SourceChange::Replaced {
                was,
                now: "symlink",
            })
        };
        assert_eq!(
            dir.open_file(OsStr::new("file")).unwrap().map(|_| ()),
            replaced("file")
        );
        assert_eq!(
            dir.open_folder(OsStr::new("folder")).unwrap().map(|_| ()),
            replaced("folder")
        );
        fs::write(src.join("plain"), b"x").unwrap();
        assert_eq!(
            dir.open_folder(OsStr::new("plain")).unwrap().map(|_| ()),
            Err(SourceChange::Replaced {
                was: "folder",
                now: "file"
            })
        );
        assert_eq!(
            dir.open_file(OsStr::new("gone")).unwrap().map(|_| ()),
            Err(SourceChange::Vanished)
        );
        assert_eq!(
            dir.read_link(OsStr::new("plain")).unwrap(),
            Err(SourceChange::Replaced {
                was: "symlink",
                now: "file"
            })
        );
    }

    #[test]
    fn named_paths_are_followed_and_specials_refused() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("real")).unwrap();
        symlink(d.path().join("real"), d.path().join("link")).unwrap();
        assert!(matches!(
            open_top(&d.path().join("link")).unwrap(),
            Top::Folder(..)
        ));
        let fifo = d.path().join("fifo");
        rfs::mkfifoat(CWD, &fifo, Mode::from_raw_mode(0o600)).unwrap();
        let err = without_hanging(move || open_top(&fifo).map(|_| ()));
        assert!(
            matches!(&err, Err(ClientError::Usage(m)) if m.contains("FIFO")),
            "{err:?}"
        );
    }

    #[test]
    fn warnings_serialize_with_lossy_paths() {
        let w = SourceWarning {
            path: PathBuf::from(OsStr::from_bytes(b"/a/\xff")),
            change: SourceChange::Grew { read: 1, now: 2 },
        };
        let v = serde_json::to_value(&w).unwrap();
        assert_eq!(v["change"], "grew");
        assert_eq!(v["read"], 1);
        assert!(v["path"].as_str().unwrap().starts_with("/a/"));
    }
}
