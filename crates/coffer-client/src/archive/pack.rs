//! Packing: source paths into a tar stream.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use tar::{Builder, HeaderMode};

use super::{ArchiveSummary, FILE_IO};
use crate::error::ClientError;

/// Total size of the regular files under `sources`, for progress reporting.
pub fn measure(sources: &[PathBuf]) -> u64 {
    fn walk(p: &Path, total: &mut u64) {
        let Ok(md) = fs::symlink_metadata(p) else {
            return;
        };
        if md.is_file() {
            *total += md.len();
        } else if md.is_dir() {
            if let Ok(rd) = fs::read_dir(p) {
                for e in rd.flatten() {
                    walk(&e.path(), total);
                }
            }
        }
    }
    let mut total = 0;
    for s in sources {
        walk(s, &mut total);
    }
    total
}

/// The archive names of `sources`: each source is stored under its own final component.
/// Fails on a path without a name (such as `/`) or on two sources with the same name.
pub fn source_names(sources: &[PathBuf]) -> Result<Vec<(PathBuf, PathBuf)>, ClientError> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for src in sources {
        let abs = fs::canonicalize(src).map_err(|e| ClientError::io("cannot read", src, e))?;
        // Keep a symlink given on the command line as a symlink: name it by its own path.
        let path = if fs::symlink_metadata(src).is_ok_and(|m| m.file_type().is_symlink()) {
            src.clone()
        } else {
            abs.clone()
        };
        let name = path.file_name().map(PathBuf::from).ok_or_else(|| {
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
        out.push((path, name));
    }
    Ok(out)
}

/// Writes a tar archive of `sources` into `out`.
pub fn pack<W: Write>(sources: &[PathBuf], out: W) -> Result<(ArchiveSummary, W), ClientError> {
    let named = source_names(sources)?;
    let mut builder = Builder::new(out);
    builder.mode(HeaderMode::Complete);
    builder.follow_symlinks(false);
    let mut summary = ArchiveSummary::default();
    for (path, name) in &named {
        add_path(&mut builder, path, name, &mut summary)?;
    }
    let out = builder
        .into_inner()
        .map_err(|e| ClientError::from_pipe_io_or(Path::new("the archive"), e))?;
    Ok((summary, out))
}

fn add_path<W: Write>(
    b: &mut Builder<W>,
    path: &Path,
    name: &Path,
    summary: &mut ArchiveSummary,
) -> Result<(), ClientError> {
    let md = fs::symlink_metadata(path).map_err(|e| ClientError::io("cannot read", path, e))?;
    let ft = md.file_type();
    let append = |b: &mut Builder<W>| {
        b.append_path_with_name(path, name)
            .map_err(|e| ClientError::from_pipe_io_or(path, e))
    };
    if ft.is_dir() {
        append(b)?;
        summary.directories += 1;
        let mut children: Vec<_> = fs::read_dir(path)
            .map_err(|e| ClientError::io("cannot list", path, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| ClientError::io("cannot list", path, e))?;
        children.sort_by_key(|e| e.file_name());
        for child in children {
            add_path(b, &child.path(), &name.join(child.file_name()), summary)?;
        }
    } else if ft.is_file() {
        let len = append_file(b, path, name)?;
        summary.files += 1;
        summary.bytes += len;
    } else if ft.is_symlink() {
        append(b)?;
        summary.symlinks += 1;
    } else {
        summary.skipped += 1;
    }
    Ok(())
}

/// Appends a regular file, reading it in large pieces. The entry holds exactly the length
/// the file had when opened (zeros fill in if it shrank meanwhile), so a file that changes
/// during the backup cannot corrupt the archive.
fn append_file<W: Write>(b: &mut Builder<W>, path: &Path, name: &Path) -> Result<u64, ClientError> {
    let read_err = |e| ClientError::io("cannot read", path, e);
    let write_err = |e| ClientError::from_pipe_io_or(path, e);
    let mut file = fs::File::open(path).map_err(read_err)?;
    let md = file.metadata().map_err(read_err)?;
    let mut header = tar::Header::new_gnu();
    header.set_metadata_in_mode(&md, HeaderMode::Complete);
    // The builder writes the header (and any long-name entry); the contents go straight to
    // the output in large writes, which the builder's own 8 KiB copy loop would not do.
    b.append_data(&mut header, name, io::empty())
        .map_err(write_err)?;
    let out = b.get_mut();
    let mut buf = vec![0u8; FILE_IO / 4];
    let mut left = md.len();
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = match file.read(&mut buf[..want]) {
            Ok(0) => {
                buf[..want].fill(0);
                want
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        out.write_all(&buf[..n]).map_err(write_err)?;
        left -= n as u64;
    }
    let tail = (512 - md.len() % 512) % 512;
    out.write_all(&[0u8; 512][..tail as usize])
        .map_err(write_err)?;
    Ok(md.len())
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
