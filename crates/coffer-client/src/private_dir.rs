//! A folder that only its owner can change, checked the way ssh's StrictModes checks
//! `~/.ssh`: the folder and every folder above it belong to the user or root and cannot be
//! written by anyone else (a sticky folder such as `/tmp` excepted, above the profile), and
//! every file in it is a plain file of the user's that nobody else can read or write.
//!
//! Everything goes through descriptors: the path is walked one name at a time with
//! `O_NOFOLLOW`, each step checked with `fstat` on the descriptor the next step is opened
//! from, and files are opened relative to the checked folder. A folder swapped for a
//! symlink halfway through is therefore refused, not followed.

use std::ffi::OsStr;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Stat, CWD};
use rustix::io::Errno;
use zeroize::Zeroizing;

use crate::beneath::perms as permissions;
use crate::error::ClientError;

/// What makes a profile unsafe to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// A folder that belongs to another user (root is fine).
    FolderOfOther { owner: u32, me: u32 },
    /// A file that belongs to another user: someone else wrote it.
    FileOfOther { owner: u32, me: u32 },
    /// Group or others may write to it (mode shown).
    WritableByOthers { mode: u32 },
    /// A file of secrets that group or others may read (mode shown).
    OpenToOthers { mode: u32 },
    /// A symlink where a real folder or file must be.
    Symlink,
    /// Something other than a folder where a folder must be.
    NotAFolder,
    /// Something other than a regular file (a FIFO, a device…) where a file must be.
    NotAFile,
}

/// A profile that another user could change (or read): refused before anything in it is
/// used. Retrying does not help; the message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsafeProfile {
    /// The folder or file at fault (an ancestor of the profile, the profile, or a file in it).
    pub path: PathBuf,
    pub problem: Problem,
}

impl fmt::Display for UnsafeProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        let q = shell_quote(&self.path);
        write!(f, "refusing to use the profile: ")?;
        match self.problem {
            Problem::FolderOfOther { owner, me } => write!(
                f,
                "{p} belongs to uid {owner}, not to you (uid {me}) or root, so its owner could \
                 replace the profile's key; keep the profile in a folder of your own (--profile DIR)"
            ),
            Problem::FileOfOther { owner, me } => write!(
                f,
                "{p} belongs to uid {owner}, not to you (uid {me}): another user wrote it, so it \
                 cannot be trusted (a key put there would have your backups encrypted to theirs); \
                 remove it (`rm {q}`) and set the profile up again from your own records"
            ),
            Problem::WritableByOthers { mode } => write!(
                f,
                "{p} can be written by other users (mode {mode:04o}), who could replace the \
                 profile's key; fix it with `chmod go-w {q}`; files others put in the profile \
                 meanwhile are refused next"
            ),
            Problem::OpenToOthers { mode } => write!(
                f,
                "{p} holds secrets but other users may open it (mode {mode:04o}); fix it with \
                 `chmod 600 {q}`"
            ),
            Problem::Symlink => write!(
                f,
                "{p} is a symlink; the profile and its files must be real folders and files \
                 (replace the link with what it points to, or name the real folder with --profile)"
            ),
            Problem::NotAFolder => write!(f, "{p} is not a folder"),
            Problem::NotAFile => write!(
                f,
                "{p} is not a regular file; remove it (`rm {q}`) and run the command again"
            ),
        }
    }
}

impl std::error::Error for UnsafeProfile {}

/// A path quoted for a POSIX shell when it needs it, so a fix can be pasted as shown.
fn shell_quote(path: &Path) -> String {
    let s = path.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+,:@%=".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The user whose profile this is: the effective uid, as the kernel checks access by it.
fn me() -> u32 {
    crate::parent_dir::euid()
}

fn kind(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

const GROUP_OTHER_WRITE: u32 = 0o022;
const GROUP_OTHER_ANY: u32 = 0o077;
const STICKY: u32 = 0o1000;

/// Checks a folder on the way to the profile: the user's or root's, and writable by no one
/// else unless it is sticky (others may add entries but not rename or remove ours).
fn check_ancestor(path: &Path, st: &Stat, me: u32) -> Result<(), UnsafeProfile> {
    let fail = |problem| {
        Err(UnsafeProfile {
            path: path.to_path_buf(),
            problem,
        })
    };
    if kind(st) != FileType::Directory {
        return fail(Problem::NotAFolder);
    }
    if st.st_uid != me && st.st_uid != 0 {
        return fail(Problem::FolderOfOther {
            owner: st.st_uid,
            me,
        });
    }
    let mode = permissions(st);
    if mode & GROUP_OTHER_WRITE != 0 && mode & STICKY == 0 {
        return fail(Problem::WritableByOthers { mode });
    }
    Ok(())
}

/// Checks the profile folder itself: as an ancestor, but sticky is no excuse (others could
/// then plant files the profile has not written yet).
fn check_profile_dir(path: &Path, st: &Stat, me: u32) -> Result<(), UnsafeProfile> {
    check_ancestor(path, st, me)?;
    let mode = permissions(st);
    if mode & GROUP_OTHER_WRITE != 0 {
        return Err(UnsafeProfile {
            path: path.to_path_buf(),
            problem: Problem::WritableByOthers { mode },
        });
    }
    Ok(())
}

/// Checks a file of the profile: a regular file of the user's, which only the user may
/// open (every profile file holds a secret or a trust anchor: the key, the account's
/// credential, storage credentials and the pinned fleet keys in `config.toml`).
fn check_file(path: &Path, st: &Stat, me: u32) -> Result<(), UnsafeProfile> {
    let fail = |problem| {
        Err(UnsafeProfile {
            path: path.to_path_buf(),
            problem,
        })
    };
    if kind(st) != FileType::RegularFile {
        return fail(Problem::NotAFile);
    }
    if st.st_uid != me {
        return fail(Problem::FileOfOther {
            owner: st.st_uid,
            me,
        });
    }
    let mode = permissions(st);
    if mode & GROUP_OTHER_WRITE != 0 {
        return fail(Problem::WritableByOthers { mode });
    }
    if mode & GROUP_OTHER_ANY != 0 {
        return fail(Problem::OpenToOthers { mode });
    }
    Ok(())
}

/// Folders on the way need only be searched: on Linux `O_PATH` opens them without read
/// permission (a home folder may be 0711) and `fstat` works on such a descriptor.
#[cfg(any(target_os = "linux", target_os = "android"))]
const SEARCH: OFlags = OFlags::PATH;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SEARCH: OFlags = OFlags::RDONLY;

fn open_dir_step(at: impl AsFd, name: &OsStr, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    rfs::openat(
        at,
        name,
        flags | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// A checked, open profile folder.
#[derive(Debug)]
pub struct PrivateDir {
    path: PathBuf,
    fd: OwnedFd,
}

impl PrivateDir {
    /// Opens the folder at `path` after checking it and every folder above it; `None` when
    /// it does not exist (nothing to read, nothing to trust).
    pub fn open(path: &Path) -> Result<Option<PrivateDir>, ClientError> {
        walk(path, false)
    }

    /// Opens the folder at `path`, creating it and any missing parent owner-only (0700),
    /// after the same checks.
    pub fn open_or_create(path: &Path) -> Result<PrivateDir, ClientError> {
        walk(path, true)?
            .ok_or_else(|| ClientError::Internal(format!("{} was not created", path.display())))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The contents of file `name`, after checking it; `None` when it does not exist.
    pub fn read(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, ClientError> {
        let path = self.path.join(name);
        let opened = rfs::openat(
            &self.fd,
            name,
            // NONBLOCK: a FIFO planted here must not hang the command before fstat sees it.
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        );
        let fd = match opened {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::LOOP) => {
                return Err(UnsafeProfile {
                    path,
                    problem: Problem::Symlink,
                }
                .into())
            }
            Err(e) => return Err(ClientError::io("cannot read", path, e.into())),
        };
        let st = rfs::fstat(&fd).map_err(|e| ClientError::io("cannot read", &path, e.into()))?;
        check_file(&path, &st, me())?;
        let mut data = Zeroizing::new(Vec::new());
        std::fs::File::from(fd)
            .read_to_end(&mut data)
            .map_err(|e| ClientError::io("cannot read", &path, e))?;
        Ok(Some(data))
    }

    /// Whether an entry `name` exists (of any kind: reading it checks it).
    pub fn contains(&self, name: &str) -> bool {
        rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW).is_ok()
    }

    /// Replaces file `name` with `data`, readable by the owner only, atomically: a new
    /// temporary file (`O_EXCL | O_NOFOLLOW`), fsync, rename over the old one, fsync of
    /// the folder.
    pub fn write_atomic(&self, name: &str, data: &[u8]) -> Result<(), ClientError> {
        let tmp = format!(".{name}.tmp");
        let write = || -> io::Result<()> {
            // A leftover of a crashed write (this folder is the user's alone).
            match rfs::unlinkat(&self.fd, tmp.as_str(), AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(e.into()),
            }
            let fd = rfs::openat(
                &self.fd,
                tmp.as_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )?;
            let mut file = std::fs::File::from(fd);
            file.write_all(data)?;
            file.sync_all()?;
            rfs::renameat(&self.fd, tmp.as_str(), &self.fd, name)?;
            Ok(rfs::fsync(&self.fd)?)
        };
        write().map_err(|e| {
            let _ = rfs::unlinkat(&self.fd, tmp.as_str(), AtFlags::empty());
            ClientError::io("cannot write", self.path.join(name), e)
        })
    }

    /// Renames `from` to `to` in this folder, durably.
    pub fn rename(&self, from: &str, to: &str) -> Result<(), ClientError> {
        rfs::renameat(&self.fd, from, &self.fd, to)
            .and_then(|()| rfs::fsync(&self.fd))
            .map_err(|e| ClientError::io("cannot write", self.path.join(to), e.into()))
    }

    /// Removes file `name`; a missing file is fine.
    pub fn remove(&self, name: &str) -> Result<(), ClientError> {
        match rfs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(ClientError::io(
                "cannot remove",
                self.path.join(name),
                e.into(),
            )),
        }
    }
}

/// The path with its existing part resolved (symlinks the user set up above the profile,
/// such as a home folder on another disk, are theirs to choose), and the names still
/// missing below it.
fn split_existing(path: &Path) -> Result<(PathBuf, Vec<PathBuf>), ClientError> {
    let abs = std::path::absolute(path).map_err(|e| ClientError::io("cannot read", path, e))?;
    let mut missing = Vec::new();
    let mut existing = abs.clone();
    loop {
        match std::fs::canonicalize(&existing) {
            Ok(real) => {
                missing.reverse();
                return Ok((real, missing));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let name = match existing.components().next_back() {
                    Some(Component::Normal(n)) => PathBuf::from(n),
                    _ => {
                        return Err(ClientError::Usage(format!(
                            "cannot use {} as the profile folder: name it without '..'",
                            path.display()
                        )))
                    }
                };
                missing.push(name);
                existing.pop();
            }
            Err(e) => return Err(ClientError::io("cannot read", &abs, e)),
        }
    }
}

fn walk(path: &Path, create: bool) -> Result<Option<PrivateDir>, ClientError> {
    let me = me();
    let (real, missing) = split_existing(path)?;
    let io_err = |p: &Path, e: io::Error| ClientError::io("cannot read", p, e);
    let names: Vec<&OsStr> = real
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .chain(missing.iter().map(|m| m.as_os_str()))
        .collect();
    let existing_count = names.len() - missing.len();
    if !create && !missing.is_empty() {
        return Ok(None);
    }
    let root = Path::new("/");
    let mut at = rfs::openat(
        CWD,
        root,
        SEARCH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err(root, e.into()))?;
    let mut here = root.to_path_buf();
    let st = rfs::fstat(&at).map_err(|e| io_err(&here, e.into()))?;
    if names.is_empty() {
        // The profile cannot be `/` itself.
        return Err(ClientError::Usage(
            "the root folder cannot be a profile; name a folder of your own".into(),
        ));
    }
    check_ancestor(&here, &st, me)?;
    for (i, name) in names.iter().enumerate() {
        here.push(name);
        let last = i + 1 == names.len();
        if i >= existing_count {
            match rfs::mkdirat(&at, *name, Mode::from_raw_mode(0o700)) {
                // Created meanwhile by someone: the checks below judge it like any other.
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(ClientError::io("cannot create", &here, e.into())),
            }
        }
        let flags = if last { OFlags::RDONLY } else { SEARCH };
        let fd = match open_dir_step(&at, name, flags) {
            Ok(fd) => fd,
            Err(Errno::LOOP) => {
                return Err(UnsafeProfile {
                    path: here,
                    problem: Problem::Symlink,
                }
                .into())
            }
            Err(Errno::NOTDIR) => {
                return Err(UnsafeProfile {
                    path: here,
                    problem: Problem::NotAFolder,
                }
                .into())
            }
            // Removed since it was resolved: as if it had never been there.
            Err(Errno::NOENT) if !create => return Ok(None),
            Err(e) => return Err(io_err(&here, e.into())),
        };
        let st = rfs::fstat(&fd).map_err(|e| io_err(&here, e.into()))?;
        if last {
            check_profile_dir(&here, &st, me)?;
        } else {
            check_ancestor(&here, &st, me)?;
        }
        at = fd;
    }
    Ok(Some(PrivateDir { path: here, fd: at }))
}

#[cfg(test)]
mod tests;
