//! Files only the server's user may read: created 0600 whatever the umask, and made 0600
//! again when found looser.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Permission bits that let the group or others in.
pub(crate) const NOT_OWNER: u32 = 0o077;

/// The permission bits of an open file.
pub(crate) fn mode(file: &File) -> io::Result<u32> {
    Ok(file.metadata()?.permissions().mode() & 0o7777)
}

/// Drops group and other permissions on an open file (its fd, so no path race). Returns
/// the mode it had when that changed something.
pub(crate) fn tighten(file: &File) -> io::Result<Option<u32>> {
    let was = mode(file)?;
    if was & NOT_OWNER == 0 {
        return Ok(None);
    }
    file.set_permissions(std::fs::Permissions::from_mode(was & 0o700))?;
    Ok(Some(was))
}

/// Opens `path` for appending, creating it 0600 if missing and tightening it if looser.
pub(crate) fn open_append(path: &Path) -> io::Result<(File, Option<u32>)> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    let was = tighten(&file)?;
    Ok((file, was))
}

/// Makes sure `path` exists and is private: created empty 0600 if missing, tightened if
/// looser. Returns the old mode when it tightened one.
pub(crate) fn ensure(path: &Path) -> io::Result<Option<u32>> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)?;
    tighten(&file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_files_are_0600_and_loose_ones_are_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("fresh");
        assert_eq!(ensure(&fresh).unwrap(), None);
        assert_eq!(mode(&File::open(&fresh).unwrap()).unwrap(), 0o600);

        let loose = dir.path().join("loose");
        std::fs::write(&loose, b"kept").unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o664)).unwrap();
        let (_, was) = open_append(&loose).unwrap();
        assert_eq!(was, Some(0o664));
        assert_eq!(mode(&File::open(&loose).unwrap()).unwrap(), 0o600);
        assert_eq!(std::fs::read(&loose).unwrap(), b"kept");
    }
}
