//! Sample trees for backups, and comparing trees after a restore.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};

use std::ffi::OsString;

use super::{set_mode, set_mtime, write_random_file, MARKER, OLD};

/// Builds `parent/tree`: nested folders, an empty file, an empty folder, symlinks (one
/// dangling), non-ASCII names, a 0750 script and old modification times on files and
/// folders. Returns the tree's root.
pub fn sample_tree(parent: &Path) -> PathBuf {
    let t = parent.join("tree");
    let deepest = t.join("nested/deeper/deepest");
    let cafe = t.join("café ☕");
    fs::create_dir_all(&deepest).unwrap();
    fs::create_dir(t.join("empty-dir")).unwrap();
    fs::create_dir(&cafe).unwrap();
    fs::write(t.join("a.txt"), format!("hello {MARKER}\n")).unwrap();
    fs::write(t.join("empty.bin"), b"").unwrap();
    write_random_file(&deepest.join("file.dat"), 200_000);
    fs::write(cafe.join("日本語.txt"), "こんにちは、世界\n").unwrap();
    let script = t.join("script.sh");
    fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    set_mode(&script, 0o750);
    symlink("café ☕/日本語.txt", t.join("link")).unwrap();
    symlink("does/not/exist", t.join("dangling")).unwrap();

    set_mtime(&script, OLD);
    set_mtime(&t.join("a.txt"), OLD + 11);
    set_mtime(&t.join("empty.bin"), OLD + 22);
    set_mtime(&deepest.join("file.dat"), OLD + 33);
    set_mtime(&cafe.join("日本語.txt"), OLD + 44);
    // Folders last, deepest first: creating entries changes a folder's time.
    set_mode(&t.join("nested"), 0o750);
    set_mtime(&deepest, OLD + 100);
    set_mtime(&t.join("nested/deeper"), OLD + 101);
    set_mtime(&t.join("nested"), OLD + 102);
    set_mtime(&t.join("empty-dir"), OLD + 103);
    set_mtime(&cafe, OLD + 104);
    set_mtime(&t, OLD + 105);
    t
}

/// Every difference between two trees: names, types, contents, permission bits,
/// modification times (seconds) of files and folders, symlink targets.
pub fn tree_diff(a: &Path, b: &Path) -> Vec<String> {
    fn walk(a: &Path, b: &Path, rel: &Path, diffs: &mut Vec<String>) {
        let (pa, pb) = (a.join(rel), b.join(rel));
        let ma = fs::symlink_metadata(&pa).unwrap_or_else(|e| panic!("{}: {e}", pa.display()));
        let mb = match fs::symlink_metadata(&pb) {
            Ok(m) => m,
            Err(_) => {
                diffs.push(format!("{}: missing", rel.display()));
                return;
            }
        };
        let (ta, tb) = (ma.file_type(), mb.file_type());
        if ta != tb {
            diffs.push(format!("{}: type {ta:?} vs {tb:?}", rel.display()));
            return;
        }
        if ta.is_symlink() {
            let (la, lb) = (fs::read_link(&pa).unwrap(), fs::read_link(&pb).unwrap());
            if la != lb {
                diffs.push(format!("{}: link target {la:?} vs {lb:?}", rel.display()));
            }
            return;
        }
        if ma.mode() & 0o7777 != mb.mode() & 0o7777 {
            diffs.push(format!(
                "{}: mode {:o} vs {:o}",
                rel.display(),
                ma.mode() & 0o7777,
                mb.mode() & 0o7777
            ));
        }
        if ma.mtime() != mb.mtime() {
            diffs.push(format!(
                "{}: mtime {} vs {}",
                rel.display(),
                ma.mtime(),
                mb.mtime()
            ));
        }
        if ta.is_dir() {
            let names = |p: &Path| -> Vec<OsString> {
                let mut v: Vec<OsString> = fs::read_dir(p)
                    .unwrap()
                    .map(|e| e.unwrap().file_name())
                    .collect();
                v.sort();
                v
            };
            let (na, nb) = (names(&pa), names(&pb));
            if na != nb {
                diffs.push(format!("{}: entries {na:?} vs {nb:?}", rel.display()));
            }
            for n in na.iter().filter(|n| nb.contains(n)) {
                walk(a, b, &rel.join(n), diffs);
            }
        } else if fs::read(&pa).unwrap() != fs::read(&pb).unwrap() {
            diffs.push(format!("{}: content differs", rel.display()));
        }
    }
    let mut diffs = Vec::new();
    walk(a, b, Path::new(""), &mut diffs);
    diffs
}

#[track_caller]
pub fn assert_same_tree(a: &Path, b: &Path) {
    let diffs = tree_diff(a, b);
    assert!(
        diffs.is_empty(),
        "{} and {} differ:\n  {}",
        a.display(),
        b.display(),
        diffs.join("\n  ")
    );
}

/// Names in `dir` that look like a restore's or decrypt's leftovers.
pub fn leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(".coffer-"))
                .collect()
        })
        .unwrap_or_default()
}

/// After a failed restore into `target`: no target, nothing staged beside it.
#[track_caller]
pub fn assert_nothing_left(target: &Path) {
    assert!(
        fs::symlink_metadata(target).is_err(),
        "a failed restore left {} behind",
        target.display()
    );
    let parent = target.parent().expect("target has a parent");
    let left = leftovers(parent);
    assert!(
        left.is_empty(),
        "a failed restore left staging files in {}: {left:?}",
        parent.display()
    );
}

/// Names directly in `dir`, sorted.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
