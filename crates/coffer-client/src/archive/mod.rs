//! The tar layer: packing source paths, and unpacking safely into a staging directory.
//!
//! Archives hold only directories, regular files and symlinks, under relative paths. On
//! the way in, anything else (absolute paths, `..`, hard links, devices, overlong names,
//! oversized extension headers) is refused rather than silently rewritten.

mod dir_attrs;
mod pack;
mod unpack;

use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use crate::error::ClientError;

pub use dir_attrs::DirAttrs;
pub use pack::{measure, pack, source_names};
pub use unpack::{unpack, Sink};

/// Longest entry path accepted, in bytes (Linux's PATH_MAX).
pub const MAX_PATH: usize = 4096;
/// Longest single name in an entry path, in bytes (Linux's NAME_MAX).
pub const MAX_NAME: usize = 255;
/// Bytes per read of a source file and per write of a restored one: large I/O keeps the
/// system-call count low (the tar crate alone would use 8 KiB).
const FILE_IO: usize = 1 << 20;

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
    if raw.len() > MAX_PATH {
        return Err(ClientError::UnsafeEntry {
            path: format!("{}…", String::from_utf8_lossy(&raw[..64])),
            reason: "its path is longer than 4096 bytes",
        });
    }
    let mut clean = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) if p.len() > MAX_NAME => {
                return Err(ClientError::UnsafeEntry {
                    path: shown(),
                    reason: "one of its names is longer than 255 bytes",
                })
            }
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

pub use pack::{pack_reporting, PackReport};

#[cfg(test)]
mod unpack_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use filetime::FileTime;
    use proptest::prelude::*;
    use std::fs;
    use std::os::fd::AsFd;
    use tar::{Builder, EntryType};

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

    /// A directory's descriptor, as a restore holds its staging directory.
    pub(crate) fn dir_fd(path: &Path) -> std::os::fd::OwnedFd {
        fs::File::open(path).unwrap().into()
    }

    /// Unpacks into the directory `root` and applies the directory attributes.
    pub(super) fn unpack_at(tar: &[u8], root: &Path) -> Result<ArchiveSummary, ClientError> {
        let fd = dir_fd(root);
        unpack(tar, Sink::Directory(fd.as_fd())).and_then(|(s, dirs)| dirs.apply().map(|()| s))
    }

    fn unpack_into(tar: &[u8]) -> (tempfile::TempDir, Result<ArchiveSummary, ClientError>) {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("staging");
        fs::create_dir(&root).unwrap();
        let res = unpack_at(tar, &root);
        (d, res)
    }

    #[test]
    fn oversized_extension_headers_are_refused_before_they_are_read() {
        let big = vec![b'a'; 100 * 1024];
        for kind in [
            EntryType::GNULongName,
            EntryType::GNULongLink,
            EntryType::XHeader,
            EntryType::XGlobalHeader,
        ] {
            let tar = raw_tar(&[
                (b"././@LongLink", kind, b"", &big),
                (b"f", EntryType::Regular, b"", b"x"),
            ]);
            assert!(
                matches!(
                    unpack(&tar[..], Sink::Discard),
                    Err(ClientError::BadArchive { .. })
                ),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn long_names_pax_paths_and_global_headers_are_honoured() {
        let long = "d/".repeat(60) + "file";
        let tar = raw_tar(&[
            (
                b"././@LongLink",
                EntryType::GNULongName,
                b"",
                long.as_bytes(),
            ),
            (b"short", EntryType::Regular, b"", b"long"),
            (
                b"pax_global_header",
                EntryType::XGlobalHeader,
                b"",
                b"20 comment=anything\n",
            ),
            (
                b"PaxHeader",
                EntryType::XHeader,
                b"",
                b"18 path=pax/named\n",
            ),
            (b"ignored", EntryType::Regular, b"", b"pax"),
        ]);
        let (d, res) = unpack_into(&tar);
        assert_eq!(res.unwrap().files, 2);
        assert_eq!(
            fs::read(d.path().join("staging").join(&long)).unwrap(),
            b"long"
        );
        assert_eq!(
            fs::read(d.path().join("staging/pax/named")).unwrap(),
            b"pax"
        );
        assert!(!d.path().join("staging/short").exists());
    }

    #[test]
    fn paths_past_the_limits_are_refused() {
        let deep = "a/".repeat(2100) + "f";
        assert!(matches!(
            check_entry_path(deep.as_bytes()),
            Err(ClientError::UnsafeEntry { .. })
        ));
        let wide = "n".repeat(256);
        assert!(matches!(
            check_entry_path(wide.as_bytes()),
            Err(ClientError::UnsafeEntry { .. })
        ));
        // Deep but legal paths after a symlink are checked in time linear in their length.
        let ok = "a/".repeat(2000) + "f";
        let tar = raw_tar(&[
            (b"l", EntryType::Symlink, b"elsewhere", b""),
            (b"././@LongLink", EntryType::GNULongName, b"", ok.as_bytes()),
            (b"x", EntryType::Regular, b"", b"x"),
        ]);
        assert_eq!(unpack(&tar[..], Sink::Discard).unwrap().0.files, 1);
    }

    #[test]
    fn duplicate_paths_and_bad_symlinks_are_integrity_failures() {
        let twice = raw_tar(&[
            (b"f", EntryType::Regular, b"", b"1"),
            (b"f", EntryType::Regular, b"", b"2"),
        ]);
        let (_d, res) = unpack_into(&twice);
        assert!(
            matches!(res, Err(ClientError::UnsafeEntry { .. })),
            "{res:?}"
        );
        let file_then_dir = raw_tar(&[
            (b"f", EntryType::Regular, b"", b"1"),
            (b"f/g", EntryType::Regular, b"", b"2"),
        ]);
        let (_d, res) = unpack_into(&file_then_dir);
        assert!(
            matches!(res, Err(ClientError::UnsafeEntry { .. })),
            "{res:?}"
        );
        let no_target = raw_tar(&[(b"l", EntryType::Symlink, b"", b"")]);
        assert!(matches!(
            unpack(&no_target[..], Sink::Discard),
            Err(ClientError::BadArchive { .. })
        ));
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
            let res = unpack_at(tar, &root);
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
        let unpacked = unpack_at(&tar, &out).unwrap();
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
        unpack_at(&tar, &out).unwrap();
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
