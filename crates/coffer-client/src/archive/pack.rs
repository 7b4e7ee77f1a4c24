//! Packing: source paths into a tar stream, read through descriptors
//! ([`crate::source_files`]) so that what is stored is what was there.
//!
//! A file's entry gets its length from `fstat` when its header is written. If the file
//! then shrinks, the entry cannot be finished honestly (only zeros could fill it), so the
//! backup fails with [`ClientError::SourceShrank`] and nothing is committed. A file that
//! grows or is written to while read is stored as read, with a [`SourceWarning`].

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::Stat;
use tar::{Builder, EntryType, HeaderMode};

use super::{ArchiveSummary, FILE_IO};
use crate::error::ClientError;
use crate::source_files::{self, Kind, SourceChange, SourceDir, SourceWarning, Top};

/// What packing produced besides the archive.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PackReport {
    pub summary: ArchiveSummary,
    /// Files that changed, vanished or were replaced while they were read.
    pub warnings: Vec<SourceWarning>,
}

/// Total size of the regular files under `sources`, for progress reporting.
pub fn measure(sources: &[PathBuf]) -> u64 {
    fn walk(p: &Path, md: fs::Metadata, total: &mut u64) {
        if md.is_file() {
            *total += md.len();
        } else if md.is_dir() {
            if let Ok(rd) = fs::read_dir(p) {
                for e in rd.flatten() {
                    if let Ok(md) = fs::symlink_metadata(e.path()) {
                        walk(&e.path(), md, total);
                    }
                }
            }
        }
    }
    let mut total = 0;
    for s in sources {
        // Named paths are followed, as packing does.
        if let Ok(md) = fs::metadata(s) {
            walk(s, md, &mut total);
        }
    }
    total
}

/// The archive names of `sources`: each source is stored under its own final component;
/// a symlink named on the command line is followed and stored under the link's name.
/// Fails on a path without a name (such as `/`), on something that is neither a file
/// nor a folder, or on two sources with the same name.
pub fn source_names(sources: &[PathBuf]) -> Result<Vec<(PathBuf, PathBuf)>, ClientError> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for src in sources {
        let abs = fs::canonicalize(src).map_err(|e| ClientError::io("cannot read", src, e))?;
        let md = fs::metadata(&abs).map_err(|e| ClientError::io("cannot read", src, e))?;
        if !md.is_dir() && !md.is_file() {
            let what = source_files::describe(&md);
            return Err(source_files::not_a_file_or_folder(src, what));
        }
        let is_link = fs::symlink_metadata(src).is_ok_and(|m| m.file_type().is_symlink());
        let named_by = if is_link { src } else { &abs };
        let name = named_by.file_name().map(PathBuf::from).ok_or_else(|| {
            ClientError::Usage(format!(
                "cannot back up {}: it has no name; name a folder inside it",
                src.display()
            ))
        })?;
        if !seen.insert(name.clone()) {
            return Err(ClientError::Usage(format!(
                "two sources are both named {:?}; back them up separately or rename one",
                name
            )));
        }
        out.push((if is_link { src.clone() } else { abs }, name));
    }
    Ok(out)
}

/// Writes a tar archive of `sources` into `out`, and reports the files that changed while
/// they were read.
pub fn pack_reporting<W: Write>(
    sources: &[PathBuf],
    out: W,
) -> Result<(PackReport, W), ClientError> {
    pack_with(sources, out, &|_| {})
}

/// [`pack_reporting`] for callers that accept no change: a file that changed while it
/// was read fails the packing.
pub fn pack<W: Write>(sources: &[PathBuf], out: W) -> Result<(ArchiveSummary, W), ClientError> {
    let (report, out) = pack_reporting(sources, out)?;
    match report.warnings.into_iter().next() {
        None => Ok((report.summary, out)),
        Some(w) => Err(ClientError::io(
            "cannot back up",
            w.path.clone(),
            io::Error::other(w.to_string()),
        )),
    }
}

/// `between_lstat_and_open` runs with each entry's path after its kind was seen and
/// before it is opened: the moment a neighbour would swap it (tests do).
fn pack_with<W: Write>(
    sources: &[PathBuf],
    out: W,
    between_lstat_and_open: &dyn Fn(&Path),
) -> Result<(PackReport, W), ClientError> {
    let named = source_names(sources)?;
    source_files::allow_deep_walks();
    let mut builder = Builder::new(out);
    builder.mode(HeaderMode::Complete);
    builder.follow_symlinks(false);
    let mut packer = Packer {
        b: builder,
        report: PackReport::default(),
        between_lstat_and_open,
    };
    for (path, name) in &named {
        match source_files::open_top(path)? {
            Top::Folder(dir, md) => packer.add_tree(dir, &md, path, name)?,
            Top::File(mut file, md) => packer.add_file(&mut file, &md, path, name)?,
        }
    }
    let out = packer
        .b
        .into_inner()
        .map_err(|e| ClientError::from_pipe_io_or(Path::new("the archive"), e))?;
    Ok((packer.report, out))
}

/// A folder being packed: its descriptor, its path here and in the archive, and the
/// names in it still to pack.
struct OpenFolder {
    dir: SourceDir,
    path: PathBuf,
    name: PathBuf,
    left: std::vec::IntoIter<std::ffi::OsString>,
}

struct Packer<'h, W: Write> {
    b: Builder<W>,
    report: PackReport,
    between_lstat_and_open: &'h dyn Fn(&Path),
}

impl<W: Write> Packer<'_, W> {
    fn warn(&mut self, path: PathBuf, change: SourceChange) {
        self.report.warnings.push(SourceWarning { path, change });
    }

    /// Packs a folder and everything in it. Iterative: a tree as deep as archive paths
    /// allow (2048 levels) would overflow a thread's stack by recursion.
    fn add_tree(
        &mut self,
        dir: SourceDir,
        md: &fs::Metadata,
        path: &Path,
        name: &Path,
    ) -> Result<(), ClientError> {
        let mut open = vec![self.enter(dir, md, path.to_path_buf(), name.to_path_buf())?];
        while let Some(folder) = open.last_mut() {
            let Some(child) = folder.left.next() else {
                open.pop();
                continue;
            };
            let (path, name) = (folder.path.join(&child), folder.name.join(&child));
            if let Some(sub) = self.add_entry(&folder.dir, &child, path, name)? {
                open.push(sub);
            }
        }
        Ok(())
    }

    /// Writes a folder's entry and lists it.
    fn enter(
        &mut self,
        dir: SourceDir,
        md: &fs::Metadata,
        path: PathBuf,
        name: PathBuf,
    ) -> Result<OpenFolder, ClientError> {
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(md, HeaderMode::Complete);
        self.b
            .append_data(&mut header, &name, io::empty())
            .map_err(|e| ClientError::from_pipe_io_or(&path, e))?;
        self.report.summary.directories += 1;
        let names = dir
            .names()
            .map_err(|e| ClientError::io("cannot list", &path, e))?;
        Ok(OpenFolder {
            dir,
            path,
            name,
            left: names.into_iter(),
        })
    }

    /// Packs entry `child` of `dir`; a folder is returned open, to be packed next.
    fn add_entry(
        &mut self,
        dir: &SourceDir,
        child: &OsStr,
        path: PathBuf,
        name: PathBuf,
    ) -> Result<Option<OpenFolder>, ClientError> {
        let read_err = |e| ClientError::io("cannot read", &path, e);
        let Some((kind, st)) = dir.kind_of(child).map_err(read_err)? else {
            self.warn(path, SourceChange::Vanished);
            return Ok(None);
        };
        (self.between_lstat_and_open)(&path);
        let change = match kind {
            Kind::Folder => match dir.open_folder(child).map_err(read_err)? {
                Ok((sub, md)) => return self.enter(sub, &md, path, name).map(Some),
                Err(change) => change,
            },
            Kind::File => match dir.open_file(child).map_err(read_err)? {
                Ok((mut file, md)) => {
                    return self.add_file(&mut file, &md, &path, &name).map(|()| None)
                }
                Err(change) => change,
            },
            Kind::Symlink => match dir.read_link(child).map_err(read_err)? {
                Ok(target) => return self.add_symlink(&st, &target, &path, &name).map(|()| None),
                Err(change) => change,
            },
            Kind::Special(_) => {
                self.report.summary.skipped += 1;
                return Ok(None);
            }
        };
        self.warn(path, change);
        Ok(None)
    }

    fn add_symlink(
        &mut self,
        st: &Stat,
        target: &Path,
        path: &Path,
        name: &Path,
    ) -> Result<(), ClientError> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(EntryType::Symlink);
        header.set_mode(crate::beneath::perms(st));
        header.set_uid(u64::from(st.st_uid));
        header.set_gid(u64::from(st.st_gid));
        header.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
        header.set_size(0);
        self.b
            .append_link(&mut header, name, target)
            .map_err(|e| ClientError::from_pipe_io_or(path, e))?;
        self.report.summary.symlinks += 1;
        Ok(())
    }

    fn add_file<F: SourceFile>(
        &mut self,
        file: &mut F,
        md: &fs::Metadata,
        path: &Path,
        name: &Path,
    ) -> Result<(), ClientError> {
        if let Some(change) = append_file(&mut self.b, file, md, path, name)? {
            self.warn(path.to_path_buf(), change);
        }
        self.report.summary.files += 1;
        self.report.summary.bytes += md.len();
        Ok(())
    }
}

/// A source file as the packer reads it: its bytes, and its metadata now (to see whether
/// it changed meanwhile).
trait SourceFile: Read {
    fn metadata_now(&self) -> io::Result<fs::Metadata>;
}

impl SourceFile for fs::File {
    fn metadata_now(&self) -> io::Result<fs::Metadata> {
        self.metadata()
    }
}

/// Appends a regular file of the length `md` gives, reading it in large pieces. A file
/// that ends early fails with [`ClientError::SourceShrank`]; one that grew or was written
/// to meanwhile is stored as read, and the change is returned.
fn append_file<W: Write, F: SourceFile>(
    b: &mut Builder<W>,
    file: &mut F,
    md: &fs::Metadata,
    path: &Path,
    name: &Path,
) -> Result<Option<SourceChange>, ClientError> {
    let read_err = |e| ClientError::io("cannot read", path, e);
    let write_err = |e| ClientError::from_pipe_io_or(path, e);
    let mut header = tar::Header::new_gnu();
    header.set_metadata_in_mode(md, HeaderMode::Complete);
    // The builder writes the header (and any long-name entry); the contents go straight to
    // the output in large writes, which the builder's own 8 KiB copy loop would not do.
    b.append_data(&mut header, name, io::empty())
        .map_err(write_err)?;
    let out = b.get_mut();
    let size = md.len();
    let mut buf = vec![0u8; FILE_IO / 4];
    let mut left = size;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = match file.read(&mut buf[..want]) {
            Ok(0) => {
                return Err(ClientError::SourceShrank {
                    path: path.to_path_buf(),
                    size,
                    read: size - left,
                })
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        out.write_all(&buf[..n]).map_err(write_err)?;
        left -= n as u64;
    }
    let tail = (512 - size % 512) % 512;
    out.write_all(&[0u8; 512][..tail as usize])
        .map_err(write_err)?;
    let now = file.metadata_now().map_err(read_err)?;
    Ok(if now.len() > size {
        Some(SourceChange::Grew {
            read: size,
            now: now.len(),
        })
    } else if now.len() != size
        || (now.mtime(), now.mtime_nsec()) != (md.mtime(), md.mtime_nsec())
        // The change time too: a tool can put the modification time back after writing
        // (`cp -p`, `rsync -t --inplace`), but nothing but the kernel sets ctime. A chmod
        // or a rename during the read also moves it: a warning then, never torn bytes.
        || (now.ctime(), now.ctime_nsec()) != (md.ctime(), md.ctime_nsec())
    {
        Some(SourceChange::Modified)
    } else {
        None
    })
}

impl ClientError {
    /// A write error from the tar builder came from a later stage (pass it on); a read
    /// error names the source file.
    fn from_pipe_io_or(path: &Path, e: io::Error) -> ClientError {
        if crate::pipe::is_pipe_closed(&e) {
            ClientError::PipelineStopped
        } else {
            ClientError::io("cannot read", path, e)
        }
    }
}

#[cfg(test)]
mod tests;
