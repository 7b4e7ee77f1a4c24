//! The SQLite account database is created 0600 before SQLite opens it.
//!
//! SQLite would create it with the process umask (0644 under the usual 022). It creates its
//! side files (`-journal`, and `-wal` and `-shm` for a database in WAL mode) with the
//! permissions of the database file itself, so a private database keeps them private too;
//! side files left over from a looser past are tightened here as well.

use std::io;
use std::path::{Path, PathBuf};

use crate::private_file;

/// The file a `sqlite:` URL names, read the way sqlx reads it (scheme stripped, then
/// everything up to `?`); `None` for in-memory databases and other schemes.
pub(crate) fn path_of(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (file, params) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory =
        file.is_empty() || file == ":memory:" || params.split('&').any(|p| p == "mode=memory");
    (!in_memory).then(|| PathBuf::from(file))
}

/// Creates the database file 0600 if missing, and tightens it and its side files if they
/// are open to group or others. Returns the files it tightened.
pub(crate) fn make_private(db: &Path) -> io::Result<Vec<PathBuf>> {
    let mut tightened = Vec::new();
    if private_file::ensure(db)?.is_some() {
        tightened.push(db.to_path_buf());
    }
    for suffix in ["-journal", "-wal", "-shm"] {
        let mut side = db.as_os_str().to_owned();
        side.push(suffix);
        let side = PathBuf::from(side);
        match std::fs::OpenOptions::new().read(true).open(&side) {
            Ok(f) => {
                if private_file::tighten(&f)?.is_some() {
                    tightened.push(side);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(tightened)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_files_as_sqlx_reads_them() {
        let p = |u| path_of(u).map(|p| p.display().to_string());
        assert_eq!(p("sqlite:///a/b.db?mode=rwc").as_deref(), Some("/a/b.db"));
        assert_eq!(p("sqlite://b.db").as_deref(), Some("b.db"));
        assert_eq!(p("sqlite:b.db?mode=rwc").as_deref(), Some("b.db"));
        for none in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://?mode=memory",
            "sqlite://a.db?mode=memory",
            "postgres://u@h/db",
        ] {
            assert_eq!(p(none), None, "{none}");
        }
    }
}
