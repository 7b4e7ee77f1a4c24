//! Unpacking: a tar stream into a staging directory, or checked and discarded (verify).
//!
//! The tar crate is used in raw mode, so that GNU long names and pax records are read here
//! with a size limit instead of whole into memory. Every write stays inside the staging
//! directory by construction: each one is made relative to the staging directory's
//! descriptor, through directories opened without ever following a symlink
//! ([`beneath`]), and names are created with `O_EXCL`, so that an entry that would go
//! through or onto a symlink fails, whatever the file system takes to be the same name
//! (case-insensitive ones included). Paths are relative without `..`
//! ([`check_entry_path`]), and a symlink made by an earlier entry under the very same bytes
//! is refused before anything is tried ([`SymlinkTree`]), which is all that verify, writing
//! nothing, can check.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use tar::{EntryType, PaxExtensions};

use super::dir_attrs::DirAttrs;
use super::{check_entry_path, ArchiveSummary, FILE_IO, MAX_PATH};
use crate::beneath::{self, Obstacle};
use crate::error::ClientError;

/// Largest GNU long-name or long-link entry, or pax record set, read into memory.
const MAX_EXTENSION: u64 = 64 * 1024;
/// Most path components remembered for symlink checks: bounds memory whatever the archive.
const MAX_SYMLINK_NODES: usize = 200_000;
/// Most bytes of path components remembered for symlink checks: names of up to 255 bytes
/// would otherwise make the node limit worth 50 MB.
const MAX_SYMLINK_NAME_BYTES: usize = 4 * 1024 * 1024;

/// Where unpacked entries go.
#[derive(Clone, Copy)]
pub enum Sink<'a> {
    /// Write them under this directory (a restore's staging directory), never outside it.
    Directory(BorrowedFd<'a>),
    /// Read and check them, write nothing (verify).
    Discard,
}

/// The symlinks an archive has made so far, as a tree of path components, so that checking
/// whether a path goes through one costs one lookup per component.
#[derive(Default)]
struct SymlinkTree {
    /// (parent node, component) → node; node 0 is the root.
    nodes: HashMap<(u32, Box<[u8]>), u32>,
    links: std::collections::HashSet<u32>,
    /// The bytes of all components in `nodes`.
    name_bytes: usize,
}

impl SymlinkTree {
    /// Whether `path` is, or goes through, a recorded symlink.
    fn crosses(&self, path: &Path) -> bool {
        if self.links.is_empty() {
            return false;
        }
        let mut node = 0;
        for c in path.iter() {
            match self.nodes.get(&(node, Box::from(c.as_bytes()))) {
                None => return false,
                Some(&n) if self.links.contains(&n) => return true,
                Some(&n) => node = n,
            }
        }
        false
    }

    fn insert(&mut self, path: &Path) -> Result<(), ClientError> {
        let mut node = 0;
        for c in path.iter() {
            let next = self.nodes.len() as u32 + 1;
            node = *self
                .nodes
                .entry((node, Box::from(c.as_bytes())))
                .or_insert_with(|| {
                    self.name_bytes += c.len();
                    next
                });
        }
        self.links.insert(node);
        // Checked after each symlink, which adds at most MAX_PATH bytes and 2,048 nodes.
        if self.nodes.len() > MAX_SYMLINK_NODES || self.name_bytes > MAX_SYMLINK_NAME_BYTES {
            return Err(ClientError::UnsafeEntry {
                path: path.display().to_string(),
                reason: "the archive holds too many symlinks, or symlink paths too long in all, to check",
            });
        }
        Ok(())
    }
}

/// Reads a tar archive, checking every entry, into `sink`. Directory attributes are
/// returned for the caller to apply once the stream is known to be complete.
pub fn unpack<R: Read>(
    input: R,
    sink: Sink<'_>,
) -> Result<(ArchiveSummary, DirAttrs), ClientError> {
    let mut archive = tar::Archive::new(input);
    let mut summary = ArchiveSummary::default();
    let mut dirs = DirAttrs::new(match &sink {
        Sink::Directory(root) => Some(
            root.try_clone_to_owned()
                .map_err(|e| ClientError::io("cannot open", "the staging directory", e))?,
        ),
        Sink::Discard => None,
    });
    let mut symlinks = SymlinkTree::default();
    // Extension entries name the entry that follows them.
    let (mut long_name, mut long_link) = (None::<Vec<u8>>, None::<Vec<u8>>);
    let (mut pax_path, mut pax_link) = (None::<Vec<u8>>, None::<Vec<u8>>);
    let entries = archive.entries().map_err(archive_io)?.raw(true);
    for entry in entries {
        let mut entry = entry.map_err(archive_io)?;
        let kind = entry.header().entry_type();
        match kind {
            EntryType::GNULongName => {
                long_name = Some(read_extension(&mut entry)?);
                continue;
            }
            EntryType::GNULongLink => {
                long_link = Some(read_extension(&mut entry)?);
                continue;
            }
            EntryType::XHeader => {
                let data = read_extension(&mut entry)?;
                for ext in PaxExtensions::new(&data) {
                    let ext = ext.map_err(archive_io)?;
                    match ext.key_bytes() {
                        b"path" => pax_path = Some(ext.value_bytes().to_vec()),
                        b"linkpath" => pax_link = Some(ext.value_bytes().to_vec()),
                        b"size" => return Err(bad_archive("pax size records are not supported")),
                        _ => {}
                    }
                }
                continue;
            }
            EntryType::XGlobalHeader => {
                read_extension(&mut entry)?;
                continue;
            }
            _ => {}
        }
        let raw_path = match pax_path.take().or(long_name.take()) {
            Some(p) => p,
            None => entry.path_bytes().into_owned(),
        };
        let raw_link = pax_link
            .take()
            .or(long_link.take())
            .or_else(|| entry.link_name_bytes().map(|l| l.into_owned()));
        let rel = check_entry_path(&raw_path)?;
        if symlinks.crosses(&rel) {
            return Err(ClientError::UnsafeEntry {
                path: rel.display().to_string(),
                reason: "it would be written through or over a symlink",
            });
        }
        let link = match kind {
            EntryType::Regular | EntryType::Continuous => {
                summary.files += 1;
                summary.bytes += entry.size();
                None
            }
            EntryType::Directory => {
                summary.directories += 1;
                None
            }
            EntryType::Symlink => {
                summary.symlinks += 1;
                symlinks.insert(&rel)?;
                match raw_link.filter(|l| !l.is_empty() && l.len() <= MAX_PATH) {
                    Some(l) => Some(l),
                    None => {
                        return Err(bad_archive(format!(
                            "symlink {} has no valid target",
                            rel.display()
                        )))
                    }
                }
            }
            _ => {
                return Err(ClientError::UnsafeEntry {
                    path: rel.display().to_string(),
                    reason: "only files, directories and symlinks are restored",
                })
            }
        };
        let Sink::Directory(root) = sink else {
            io::copy(&mut entry, &mut io::sink()).map_err(archive_io)?;
            continue;
        };
        let header = entry.header();
        let mtime = header.mtime().unwrap_or(0) as i64;
        // Set-id bits are dropped: a restore must not create privileged programs.
        let mode = header.mode().map_err(archive_io)? & 0o1777;
        dirs.leave_unless_inside(&rel)?;
        let fail = |e: io::Error| unpack_error(root, &rel, e);
        let (parent, name) = beneath::split(&rel);
        match (kind, link) {
            (EntryType::Directory, _) => {
                beneath::make_dirs(root, &rel).map_err(fail)?;
                dirs.enter(&rel, mode, mtime);
            }
            (_, Some(target)) => {
                let dir = beneath::make_dirs(root, parent).map_err(fail)?;
                beneath::symlink(dir.as_fd(), name, OsStr::from_bytes(&target)).map_err(fail)?;
                beneath::set_symlink_mtime(dir.as_fd(), name, mtime).map_err(fail)?;
            }
            _ => {
                let dir = beneath::make_dirs(root, parent).map_err(fail)?;
                let file = beneath::create_file(dir.as_fd(), name).map_err(fail)?;
                write_file(&mut entry, file, mode, mtime).map_err(|e| match e {
                    WriteError::Read(e) => archive_io(e),
                    WriteError::Write(e) => fail(e),
                })?;
            }
        }
    }
    Ok((summary, dirs))
}

/// Reads a GNU long-name/long-link entry or a pax record set, refusing large ones before
/// reading them (the tar crate itself would read any size into memory).
fn read_extension<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Vec<u8>, ClientError> {
    let size = entry.header().entry_size().map_err(archive_io)?;
    if size > MAX_EXTENSION {
        return Err(bad_archive(format!(
            "an extension header of {size} bytes exceeds the {MAX_EXTENSION}-byte limit"
        )));
    }
    let mut data = Vec::with_capacity(size as usize);
    entry.read_to_end(&mut data).map_err(archive_io)?;
    while data.last() == Some(&0) {
        data.pop();
    }
    Ok(data)
}

enum WriteError {
    Read(io::Error),
    Write(io::Error),
}

/// Writes a regular file entry with large writes, then sets its mode and time.
fn write_file<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    mut file: std::fs::File,
    mode: u32,
    mtime: i64,
) -> Result<(), WriteError> {
    let mut buf = vec![0u8; FILE_IO];
    loop {
        let n = match entry.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(WriteError::Read(e)),
        };
        file.write_all(&buf[..n]).map_err(WriteError::Write)?;
    }
    beneath::set_mode(&file, mode).map_err(WriteError::Write)?;
    beneath::set_mtime(&file, mtime).map_err(WriteError::Write)
}

fn bad_archive(reason: impl Into<String>) -> ClientError {
    ClientError::BadArchive {
        id: String::new(),
        reason: reason.into(),
    }
}

/// Errors reading the archive stream: a stage upstream stopped (its own error is the real
/// cause), or the archive is malformed.
fn archive_io(e: io::Error) -> ClientError {
    if crate::pipe::is_pipe_closed(&e) {
        return ClientError::PipelineStopped;
    }
    bad_archive(e.to_string())
}

fn unpack_error(root: BorrowedFd<'_>, rel: &Path, e: io::Error) -> ClientError {
    if crate::pipe::is_pipe_closed(&e) {
        return ClientError::PipelineStopped;
    }
    // ELOOP: the resolution met a symlink. Otherwise only this archive's own entries exist
    // in the staging directory, so a clash means the archive names one path twice, or
    // names a symlink again under a spelling the file system takes to be the same.
    let through_symlink = ClientError::UnsafeEntry {
        path: rel.display().to_string(),
        reason: "it would be written through or over a symlink",
    };
    if e.raw_os_error() == Some(libc::ELOOP) {
        return through_symlink;
    }
    if matches!(
        e.kind(),
        io::ErrorKind::AlreadyExists | io::ErrorKind::NotADirectory
    ) {
        if beneath::obstacle(root, rel) == Obstacle::Symlink {
            return through_symlink;
        }
        return ClientError::UnsafeEntry {
            path: rel.display().to_string(),
            reason: "the archive names this path more than once",
        };
    }
    // Report the innermost cause (such as "No space left on device"), not a wrapper's text,
    // which may name the staging path.
    let mut cause: &(dyn std::error::Error + 'static) = &e;
    let mut kind = e.kind();
    loop {
        let next = match cause.downcast_ref::<io::Error>() {
            Some(ioe) => {
                kind = ioe.kind();
                ioe.get_ref()
                    .map(|inner| inner as &(dyn std::error::Error + 'static))
            }
            None => cause.source(),
        };
        match next {
            Some(n) => cause = n,
            None => break,
        }
    }
    ClientError::Io {
        what: "cannot write",
        path: rel.into(),
        source: io::Error::new(kind, cause.to_string()),
    }
}
