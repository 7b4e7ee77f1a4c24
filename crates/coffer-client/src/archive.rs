//! The tar layer: packing source paths and unpacking safely into a staging directory.
//!
//! Archives hold only directories, regular files and symlinks, under relative paths. On
//! the way in, anything else (absolute paths, `..`, hard links, devices) is refused rather
//! than silently rewritten.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use filetime::FileTime;
use serde::Serialize;
use tar::{Builder, EntryType, HeaderMode};

use crate::error::ClientError;

/// What an archive held.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ArchiveSummary {
    pub files: u64,
    pub directories: u64,
    pub symlinks: u64,
    /// Bytes of file content.
    pub bytes: u64,
    /// Sockets, FIFOs and devices met while packing, which are not backed up.
    pub skipped: u64,
}

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
        .map_err(|e| ClientError::io("writing the archive for", "backup", e))?;
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

/// Bytes per read of a source file and per write of a restored one: large I/O keeps the
/// system-call count low (the tar crate alone would use 8 KiB).
const FILE_IO: usize = 1 << 20;

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

/// Checks that an archive path is relative and stays inside the target.
pub fn check_entry_path(raw: &[u8]) -> Result<PathBuf, ClientError> {
    use std::os::unix::ffi::OsStrExt;
    let shown = || String::from_utf8_lossy(raw).into_owned();
    let path = Path::new(OsStr::from_bytes(raw));
    if raw.is_empty() {
        return Err(ClientError::UnsafeEntry {
            path: shown(),
            reason: "empty path",
        });
    }
    let mut clean = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => clean.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(ClientError::UnsafeEntry {
                    path: shown(),
                    reason: "it contains '..'",
                })
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(ClientError::UnsafeEntry {
                    path: shown(),
                    reason: "it is absolute",
                })
            }
        }
    }
    if clean.as_os_str().is_empty() {
        return Err(ClientError::UnsafeEntry {
            path: shown(),
            reason: "empty path",
        });
    }
    Ok(clean)
}

/// Where unpacked entries go.
pub enum Sink<'a> {
    /// Write them under this directory (a restore's staging directory).
    Directory(&'a Path),
    /// Read and check them, write nothing (verify).
    Discard,
}

/// Reads a tar archive, checking every entry, into `sink`.
pub fn unpack<R: Read>(input: R, sink: Sink<'_>) -> Result<ArchiveSummary, ClientError> {
    let mut archive = tar::Archive::new(input);
    let mut summary = ArchiveSummary::default();
    // Directory modes and times are set last: a read-only directory could not be filled,
    // and creating entries inside a directory changes its time.
    let mut dirs: Vec<(PathBuf, u32, FileTime)> = Vec::new();
    // Symlinks seen so far: no later entry may go through or replace one. This (with the
    // path check) is what keeps every write inside the target, and `verify` checks the
    // same, so it refuses what `restore` would.
    let mut symlinks: HashSet<PathBuf> = HashSet::new();
    let entries = archive.entries().map_err(archive_io)?;
    for entry in entries {
        let mut entry = entry.map_err(archive_io)?;
        let rel = check_entry_path(&entry.path_bytes())?;
        if rel.ancestors().any(|a| symlinks.contains(a)) {
            return Err(ClientError::UnsafeEntry {
                path: rel.display().to_string(),
                reason: "it would be written through or over a symlink",
            });
        }
        let kind = entry.header().entry_type();
        match kind {
            EntryType::Regular | EntryType::Continuous => {
                summary.files += 1;
                summary.bytes += entry.size();
            }
            EntryType::Directory => summary.directories += 1,
            EntryType::Symlink => {
                summary.symlinks += 1;
                symlinks.insert(rel.clone());
            }
            _ => {
                return Err(ClientError::UnsafeEntry {
                    path: rel.display().to_string(),
                    reason: "only files, directories and symlinks are restored",
                })
            }
        }
        let Sink::Directory(root) = sink else {
            io::copy(&mut entry, &mut io::sink()).map_err(archive_io)?;
            continue;
        };
        let dst = root.join(&rel);
        let header = entry.header();
        let mtime = FileTime::from_unix_time(header.mtime().unwrap_or(0) as i64, 0);
        // Set-id bits are dropped: a restore must not create privileged programs.
        let mode = header.mode().map_err(archive_io)? & 0o1777;
        match kind {
            EntryType::Directory => {
                fs::create_dir_all(&dst).map_err(|e| unpack_error(&rel, e))?;
                dirs.push((dst, mode, mtime));
            }
            EntryType::Symlink => {
                use std::os::unix::ffi::OsStrExt;
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| ClientError::BadArchive {
                        id: String::new(),
                        reason: format!("symlink {} has no target", rel.display()),
                    })?;
                make_parent(&dst, &rel)?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &dst)
                    .map_err(|e| unpack_error(&rel, e))?;
                filetime::set_symlink_file_times(&dst, mtime, mtime)
                    .map_err(|e| unpack_error(&rel, e))?;
            }
            _ => write_file(&mut entry, &dst, &rel, mode, mtime)?,
        }
    }
    for (dir, mode, mtime) in dirs.iter().rev() {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(*mode))
            .map_err(|e| ClientError::io("cannot set the mode of", dir, e))?;
        filetime::set_file_mtime(dir, *mtime)
            .map_err(|e| ClientError::io("cannot set the time of", dir, e))?;
    }
    Ok(summary)
}

fn make_parent(dst: &Path, rel: &Path) -> Result<(), ClientError> {
    match dst.parent() {
        Some(parent) => fs::create_dir_all(parent).map_err(|e| unpack_error(rel, e)),
        None => Ok(()),
    }
}

/// Writes a regular file entry to `dst` with large writes, then sets its mode and time.
///
/// `dst` is inside a fresh staging directory, its relative path passed
/// [`check_entry_path`], and no earlier entry made any of its ancestors a symlink (checked in
/// [`unpack`]), so the write cannot leave the staging directory; `O_NOFOLLOW` and
/// `create_new` refuse anything already there.
fn write_file<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    dst: &Path,
    rel: &Path,
    mode: u32,
    mtime: FileTime,
) -> Result<(), ClientError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let fail = |e: io::Error| unpack_error(rel, e);
    make_parent(dst, rel)?;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dst)
        .map_err(fail)?;
    let mut buf = vec![0u8; FILE_IO];
    loop {
        let n = match entry.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(archive_io(e)),
        };
        file.write_all(&buf[..n]).map_err(fail)?;
    }
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(fail)?;
    filetime::set_file_handle_times(&file, None, Some(mtime)).map_err(fail)
}

/// Errors reading the archive stream: a stage upstream stopped (its own error is the real
/// cause), or the archive is malformed.
fn archive_io(e: io::Error) -> ClientError {
    if crate::pipe::is_pipe_closed(&e) {
        return ClientError::PipelineStopped;
    }
    ClientError::BadArchive {
        id: String::new(),
        reason: e.to_string(),
    }
}

fn unpack_error(rel: &Path, e: io::Error) -> ClientError {
    if crate::pipe::is_pipe_closed(&e) {
        return ClientError::PipelineStopped;
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// (raw name, type, raw link target, content)
    type RawEntry<'a> = (&'a [u8], EntryType, &'a [u8], &'a [u8]);

    /// A tar of entries with raw names, bypassing the builder's own checks.
    fn raw_tar(entries: &[RawEntry<'_>]) -> Vec<u8> {
        let mut b = Builder::new(Vec::new());
        for (name, kind, link, data) in entries {
            let mut h = tar::Header::new_old();
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
            h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn entry_paths_must_stay_inside() {
        assert_eq!(check_entry_path(b"a/b/c").unwrap(), PathBuf::from("a/b/c"));
        assert_eq!(check_entry_path(b"./a").unwrap(), PathBuf::from("a"));
        for bad in [
            &b"../x"[..],
            b"a/../../x",
            b"/etc/passwd",
            b"",
            b".",
            b"a/..",
        ] {
            assert!(
                matches!(check_entry_path(bad), Err(ClientError::UnsafeEntry { .. })),
                "{:?} accepted",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn hostile_archives_are_refused_and_write_nothing_outside() {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("staging");
        fs::create_dir(&root).unwrap();
        let cases: Vec<Vec<u8>> = vec![
            raw_tar(&[(b"../evil", EntryType::Regular, b"", b"x")]),
            raw_tar(&[(b"/tmp/coffer-evil-abs", EntryType::Regular, b"", b"x")]),
            raw_tar(&[
                (
                    b"link",
                    EntryType::Symlink,
                    outer.path().as_os_str().as_encoded_bytes(),
                    b"",
                ),
                (b"link/evil", EntryType::Regular, b"", b"x"),
            ]),
            raw_tar(&[(b"hard", EntryType::Link, b"/etc/passwd", b"")]),
            raw_tar(&[(b"dev", EntryType::Char, b"", b"")]),
        ];
        for (i, tar) in cases.iter().enumerate() {
            let res = unpack(&tar[..], Sink::Directory(&root));
            assert!(
                matches!(res, Err(ClientError::UnsafeEntry { .. })),
                "case {i}: {res:?}"
            );
        }
        assert!(!outer.path().join("evil").exists());
        assert!(!Path::new("/tmp/coffer-evil-abs").exists());
    }

    #[test]
    fn pack_then_unpack_keeps_everything() {
        use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        fs::create_dir_all(src.join("empty dir")).unwrap();
        fs::create_dir_all(src.join("café ☕")).unwrap();
        fs::write(src.join("café ☕/日本語.txt"), "こんにちは").unwrap();
        fs::write(src.join("empty"), b"").unwrap();
        fs::write(src.join("script"), b"#!/bin/sh\n").unwrap();
        // A name longer than the 100 bytes of a tar header, and a size off the 512 grid.
        let long = "ä".repeat(80);
        fs::write(src.join(&long), vec![7u8; 1000]).unwrap();
        fs::set_permissions(src.join("script"), fs::Permissions::from_mode(0o750)).unwrap();
        symlink("café ☕/日本語.txt", src.join("link")).unwrap();
        let old = FileTime::from_unix_time(1_500_000_000, 0);
        filetime::set_file_mtime(src.join("empty"), old).unwrap();
        filetime::set_file_mtime(src.join("empty dir"), old).unwrap();

        let (packed, tar) = pack(std::slice::from_ref(&src), Vec::new()).unwrap();
        assert_eq!(
            (packed.files, packed.directories, packed.symlinks),
            (4, 3, 1)
        );
        let out = d.path().join("out");
        fs::create_dir(&out).unwrap();
        let unpacked = unpack(&tar[..], Sink::Directory(&out)).unwrap();
        assert_eq!(packed, unpacked);
        let r = out.join("src");
        assert_eq!(
            fs::read_to_string(r.join("café ☕/日本語.txt")).unwrap(),
            "こんにちは"
        );
        assert_eq!(
            fs::read_link(r.join("link")).unwrap(),
            PathBuf::from("café ☕/日本語.txt")
        );
        assert_eq!(
            fs::metadata(r.join("script")).unwrap().mode() & 0o777,
            0o750
        );
        assert_eq!(
            fs::metadata(r.join("empty")).unwrap().mtime(),
            1_500_000_000
        );
        assert_eq!(
            fs::metadata(r.join("empty dir")).unwrap().mtime(),
            1_500_000_000
        );
        assert_eq!(fs::metadata(r.join("empty")).unwrap().len(), 0);
        assert_eq!(fs::read(r.join(&long)).unwrap(), vec![7u8; 1000]);
    }

    #[test]
    fn set_id_bits_are_dropped_and_read_only_folders_still_fill() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        fs::create_dir_all(src.join("locked")).unwrap();
        fs::write(src.join("locked/suid"), b"x").unwrap();
        fs::set_permissions(src.join("locked/suid"), fs::Permissions::from_mode(0o4755)).unwrap();
        fs::set_permissions(src.join("locked"), fs::Permissions::from_mode(0o555)).unwrap();
        let (_, tar) = pack(std::slice::from_ref(&src), Vec::new()).unwrap();
        let out = d.path().join("out");
        fs::create_dir(&out).unwrap();
        unpack(&tar[..], Sink::Directory(&out)).unwrap();
        let md = |p: &str| fs::metadata(out.join(p)).unwrap().mode() & 0o7777;
        assert_eq!(md("src/locked/suid"), 0o755);
        assert_eq!(md("src/locked"), 0o555);
        fs::set_permissions(src.join("locked"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(out.join("src/locked"), fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn two_sources_with_one_name_are_refused() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("a/x")).unwrap();
        fs::create_dir_all(d.path().join("b/x")).unwrap();
        let res = source_names(&[d.path().join("a/x"), d.path().join("b/x")]);
        assert!(matches!(res, Err(ClientError::Usage(_))));
    }

    proptest! {
        #[test]
        fn path_checker_never_accepts_an_escape(parts in proptest::collection::vec("[a-z.]{0,3}|\\.\\.", 0..6), abs in any::<bool>()) {
            let joined = format!("{}{}", if abs { "/" } else { "" }, parts.join("/"));
            if let Ok(p) = check_entry_path(joined.as_bytes()) {
                prop_assert!(p.is_relative());
                prop_assert!(p.components().all(|c| matches!(c, Component::Normal(_))));
            }
        }

        #[test]
        fn unpacking_garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = unpack(&data[..], Sink::Discard);
        }
    }
}
