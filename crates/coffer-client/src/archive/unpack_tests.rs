//! Unpacking that cannot leave the staging directory: symlinks met under another spelling
//! (as on case-insensitive file systems), and directory attributes in bounded memory.

use std::fs;
use std::os::fd::AsFd;

use tar::{Builder, EntryType};

use super::tests::{dir_fd, unpack_at};
use super::{unpack, Sink};
use crate::error::ClientError;

/// (name, type, mode, link target, content)
type Entry<'a> = (&'a str, EntryType, u32, &'a str, &'a [u8]);

/// A tar of entries, through the builder.
fn tar_of(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut b = Builder::new(Vec::new());
    for (name, kind, mode, link, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(*mode);
        h.set_size(data.len() as u64);
        h.set_mtime(1_500_000_000);
        if !link.is_empty() {
            h.set_link_name(link).unwrap();
        }
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// What a case-insensitive file system does to the archive `docs/A -> OUTSIDE`,
/// `docs/a/` (0777), `docs/a/x`: once `docs/A` exists, the name `docs/a` finds it. The
/// symlink is planted under the folded name here, so that the test needs neither root
/// nor such a file system; entries through it, onto it, and a folder's mode through it
/// are all refused, with both ways of resolving paths.
#[test]
fn a_symlink_met_under_another_spelling_is_never_followed() {
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
    let through: &[Entry<'_>] = &[
        ("docs/a/", EntryType::Directory, 0o777, "", b""),
        ("docs/a/x", EntryType::Regular, 0o644, "", b"stolen"),
    ];
    let cases: [&[Entry<'_>]; 4] = [
        through,
        &[("docs/a/x", EntryType::Regular, 0o644, "", b"stolen")],
        &[("docs/a", EntryType::Regular, 0o644, "", b"onto")],
        &[("docs/a", EntryType::Symlink, 0o777, "/", b"")],
    ];
    for walk in [false, true] {
        for (i, entries) in cases.iter().enumerate() {
            let d = tempfile::tempdir().unwrap();
            let outside = d.path().join("outside");
            fs::create_dir(&outside).unwrap();
            fs::set_permissions(&outside, fs::Permissions::from_mode(0o755)).unwrap();
            let root = d.path().join("staging");
            fs::create_dir_all(root.join("docs")).unwrap();
            symlink(&outside, root.join("docs/a")).unwrap();
            let tar = tar_of(entries);
            let res = if walk {
                crate::beneath::tests::with_walk(|| unpack_at(&tar, &root))
            } else {
                unpack_at(&tar, &root)
            };
            let case = format!("case {i}, walk={walk}");
            match res {
                Err(ClientError::UnsafeEntry { reason, .. }) => {
                    assert!(reason.contains("symlink"), "{case}: {reason}")
                }
                other => panic!("{case}: {other:?}"),
            }
            assert!(!outside.join("x").exists(), "{case}: written outside");
            let mode = fs::metadata(&outside).unwrap().mode() & 0o7777;
            assert_eq!(mode, 0o755, "{case}: the mode of a folder outside changed");
            assert_eq!(
                fs::read_link(root.join("docs/a")).unwrap(),
                outside,
                "{case}"
            );
        }
    }
}

/// Directory attributes wait only while the stream is inside the directory: memory
/// grows with depth, not with the number of directories.
#[test]
fn directory_attributes_are_pending_only_along_the_current_path() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let mut entries: Vec<(String, EntryType, u32, &str, &[u8])> = Vec::new();
    for i in 0..3000 {
        entries.push((
            format!("top/d{i:04}/"),
            EntryType::Directory,
            0o750,
            "",
            b"",
        ));
        entries.push((
            format!("top/d{i:04}/f"),
            EntryType::Regular,
            0o640,
            "",
            b"x",
        ));
    }
    // A directory that takes its owner's rights away, and an archive that comes back to
    // it later (Coffer's packer never does): it still fills, and gets its mode at the end.
    entries.push(("locked/".into(), EntryType::Directory, 0o500, "", b""));
    entries.push(("other/".into(), EntryType::Directory, 0o755, "", b""));
    entries.push(("locked/late".into(), EntryType::Regular, 0o600, "", b"late"));
    let refs: Vec<_> = entries
        .iter()
        .map(|(n, k, m, l, d)| (n.as_str(), *k, *m, *l, *d))
        .collect();
    let tar = tar_of(&refs);
    let d = tempfile::tempdir().unwrap();
    let fd = dir_fd(d.path());
    let (summary, dirs) = unpack(&tar[..], Sink::Directory(fd.as_fd())).unwrap();
    assert_eq!(summary.directories, 3002);
    let (open, deferred) = dirs.pending();
    assert!(
        open <= 2 && deferred <= 1,
        "{open} open, {deferred} deferred"
    );
    dirs.apply().unwrap();
    let md = |p: &str| fs::metadata(d.path().join(p)).unwrap();
    assert_eq!(md("top/d0042").mode() & 0o7777, 0o750);
    assert_eq!(md("top/d2999").mtime(), 1_500_000_000);
    assert_eq!(md("locked").mode() & 0o7777, 0o500);
    assert_eq!(fs::read(d.path().join("locked/late")).unwrap(), b"late");
    fs::set_permissions(d.path().join("locked"), fs::Permissions::from_mode(0o700)).unwrap();
}

/// Symlinks under long paths, each a new branch of 16 names of 255 bytes, until the names
/// remembered for symlink checks pass their byte limit: refused, whatever the node count
/// (about 1,100 symlinks here, far under it). Memory is bounded by that limit by
/// construction.
#[test]
fn symlink_paths_past_the_name_limit_are_refused() {
    let component = |i: usize, j: usize| format!("{i:05}-{j:02}-{}", "n".repeat(246));
    let paths: Vec<String> = (0..1100)
        .map(|i| {
            (0..16)
                .map(|j| component(i, j))
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect();
    assert!(paths[0].len() <= super::MAX_PATH);
    let entries: Vec<Entry<'_>> = paths
        .iter()
        .map(|p| (p.as_str(), EntryType::Symlink, 0o777, "t", &b""[..]))
        .collect();
    let tar = tar_of(&entries);
    match unpack(&tar[..], Sink::Discard) {
        Err(ClientError::UnsafeEntry { reason, .. }) => {
            assert!(reason.contains("symlink"), "{reason}")
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("symlink names past the limit were accepted"),
    }
    // The same count under short names is fine.
    let short: Vec<String> = (0..1100).map(|i| format!("d{i}/l")).collect();
    let entries: Vec<Entry<'_>> = short
        .iter()
        .map(|p| (p.as_str(), EntryType::Symlink, 0o777, "t", &b""[..]))
        .collect();
    unpack(&tar_of(&entries)[..], Sink::Discard).unwrap();
}
