//! Compares two directory trees: names, types, contents, permissions, modification times
//! and symlink targets. Used by `coffer demo` to prove a restore identical.

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

#[derive(Debug, Default)]
pub struct TreeStats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
}

/// Returns statistics if the trees are identical, or the first difference.
pub fn compare(a: &Path, b: &Path) -> Result<std::result::Result<TreeStats, String>> {
    let mut stats = TreeStats::default();
    Ok(walk(a, b, Path::new(""), &mut stats)?.map(|()| stats))
}

fn walk(
    a: &Path,
    b: &Path,
    rel: &Path,
    stats: &mut TreeStats,
) -> Result<std::result::Result<(), String>> {
    let (pa, pb) = (a.join(rel), b.join(rel));
    let ma = fs::symlink_metadata(&pa).with_context(|| format!("reading {}", pa.display()))?;
    let mb = match fs::symlink_metadata(&pb) {
        Ok(m) => m,
        Err(_) => return Ok(Err(format!("{} is missing", rel.display()))),
    };
    let differ = |what: &str| Ok(Err(format!("{} differs in {what}", rel.display())));
    if ma.file_type() != mb.file_type() {
        return differ("type");
    }
    if ma.file_type().is_symlink() {
        stats.symlinks += 1;
        if fs::read_link(&pa)? != fs::read_link(&pb)? {
            return differ("link target");
        }
        return Ok(Ok(()));
    }
    if ma.mode() & 0o7777 != mb.mode() & 0o7777 {
        return differ("permissions");
    }
    if ma.mtime() != mb.mtime() {
        return differ("modification time");
    }
    if ma.is_dir() {
        stats.dirs += 1;
        let names = |p: &Path| -> Result<Vec<PathBuf>> {
            let mut v: Vec<PathBuf> = fs::read_dir(p)?
                .map(|e| e.map(|e| PathBuf::from(e.file_name())))
                .collect::<Result<_, _>>()?;
            v.sort();
            Ok(v)
        };
        let (na, nb) = (names(&pa)?, names(&pb)?);
        if na != nb {
            return differ("entries");
        }
        for n in na {
            if let Err(d) = walk(a, b, &rel.join(n), stats)? {
                return Ok(Err(d));
            }
        }
        return Ok(Ok(()));
    }
    stats.files += 1;
    stats.bytes += ma.len();
    if ma.len() != mb.len() || !same_content(&pa, &pb)? {
        return differ("content");
    }
    Ok(Ok(()))
}

fn same_content(a: &Path, b: &Path) -> Result<bool> {
    let (mut fa, mut fb) = (fs::File::open(a)?, fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(fb.read(&mut bb[..1])? == 0);
        }
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}
