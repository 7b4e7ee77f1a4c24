//! The decrypted payload is a plain zstd-compressed tar: the standard `zstd` and `tar`
//! tools check, list and extract it.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

/// `zstd -dc payload | tar ARGS`, returning tar's stdout.
fn zstd_into_tar(payload: &Path, tar_args: &[&str], dir: &Path) -> String {
    let mut zstd = Command::new("zstd")
        .args(["-q", "-d", "-c"])
        .arg(payload)
        .stdout(Stdio::piped())
        .spawn()
        .expect("zstd");
    let tar = Command::new("tar")
        .args(tar_args)
        .current_dir(dir)
        .stdin(zstd.stdout.take().unwrap())
        .output()
        .expect("tar");
    assert!(zstd.wait().unwrap().success(), "zstd -dc failed");
    assert!(
        tar.status.success(),
        "tar {tar_args:?} failed: {}",
        String::from_utf8_lossy(&tar.stderr)
    );
    String::from_utf8_lossy(&tar.stdout).into_owned()
}

#[test]
fn the_decrypted_payload_is_a_standard_zstd_tar() {
    if !have_tool("zstd") || !have_tool("tar") {
        eprintln!("SKIPPED: the zstd and tar tools are needed for the interop test");
        return;
    }
    let env = Env::enabled();
    let src = env.path("src");
    fs::create_dir(&src).unwrap();
    let tree = sample_tree(&src);
    let id = env.backup(&[&tree]);

    let out_dir = env.path("out");
    fs::create_dir(&out_dir).unwrap();
    let payload = out_dir.join("payload.tar.zst");
    let v = env
        .coffer()
        .json()
        .args(["decrypt", "--output"])
        .arg(&payload)
        .run()
        .ok()
        .json();
    assert_eq!(v["id"], id.as_str(), "{v}");
    assert_eq!(
        names_in(&out_dir),
        ["payload.tar.zst"],
        "leftovers beside the payload"
    );

    // zstd -t: a valid zstd stream.
    let t = Command::new("zstd")
        .args(["-q", "-t"])
        .arg(&payload)
        .output()
        .unwrap();
    assert!(
        t.status.success(),
        "zstd -t: {}",
        String::from_utf8_lossy(&t.stderr)
    );

    // tar -tv lists every entry, with types and permissions.
    let listing = zstd_into_tar(&payload, &["-tvf", "-"], &out_dir);
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(
        lines.len(),
        13,
        "6 folders, 5 files, 2 symlinks:\n{listing}"
    );
    let line_of = |name: &str| -> &str {
        lines
            .iter()
            .find(|l| {
                l.split_whitespace()
                    .any(|w| w.trim_end_matches('/') == name)
            })
            .unwrap_or_else(|| panic!("{name} not listed:\n{listing}"))
    };
    assert!(line_of("tree").starts_with('d'));
    assert!(line_of("tree/empty-dir").starts_with('d'));
    assert!(line_of("tree/nested/deeper/deepest").starts_with('d'));
    assert!(line_of("tree/a.txt").starts_with('-'));
    assert!(line_of("tree/empty.bin").starts_with('-'));
    assert!(line_of("tree/nested/deeper/deepest/file.dat").starts_with('-'));
    assert!(line_of("tree/script.sh").starts_with("-rwxr-x---"));
    let dangling = line_of("tree/dangling");
    assert!(dangling.starts_with('l') && dangling.ends_with("-> does/not/exist"));
    assert!(line_of("tree/link").starts_with('l'));

    // tar -x gives the same tree as the source.
    let extracted = env.path("extracted");
    fs::create_dir(&extracted).unwrap();
    zstd_into_tar(&payload, &["-xf", "-"], &extracted);
    assert_eq!(names_in(&extracted), ["tree"]);
    assert_same_tree(&tree, &extracted.join("tree"));
}
