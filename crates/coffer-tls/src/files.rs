//! A server's certificate files, and their rotation.
//!
//! ```text
//! DIR/tls.cert.der, DIR/tls.key.der              the certificate served now
//! DIR/tls.next.cert.der, DIR/tls.next.key.der    the next one, made ahead of a rotation
//! ```
//!
//! Clients pin certificates by fingerprint, so a new certificate must be announced before it
//! is served: `prepare_next` makes the next one and tells its fingerprint, clients add it to
//! their pins beside the current one, and `promote_next` makes it current (the server serves
//! it from its next start). Keys are written 0600 in a 0700 folder, never overwritten in place.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::{development_identity, fingerprint, Identity, TlsError};

pub struct IdentityDir {
    dir: PathBuf,
}

impl IdentityDir {
    pub fn new(dir: &Path) -> IdentityDir {
        IdentityDir {
            dir: dir.to_path_buf(),
        }
    }

    fn paths(&self, next: bool) -> (PathBuf, PathBuf) {
        let stem = if next { "tls.next" } else { "tls" };
        (
            self.dir.join(format!("{stem}.cert.der")),
            self.dir.join(format!("{stem}.key.der")),
        )
    }

    fn read(&self, next: bool) -> Result<Option<Identity>, TlsError> {
        let (cert, key) = self.paths(next);
        if !cert.exists() && !key.exists() {
            return Ok(None);
        }
        Ok(Some(Identity {
            cert_der: fs::read(&cert).map_err(|e| TlsError::io(&cert, e))?,
            key_der: fs::read(&key).map_err(|e| TlsError::io(&key, e))?,
        }))
    }

    /// The certificate served now.
    pub fn load(&self) -> Result<Identity, TlsError> {
        self.read(false)?.ok_or_else(|| {
            TlsError::Certificate(format!("no certificate in {}", self.dir.display()))
        })
    }

    /// The certificate served now, made (a development certificate for `names`) when the
    /// folder has none.
    pub fn load_or_create(&self, names: &[String]) -> Result<Identity, TlsError> {
        self.private_dir()?;
        if let Some(identity) = self.read(false)? {
            return Ok(identity);
        }
        let identity = development_identity(names)?;
        self.write(false, &identity)?;
        Ok(identity)
    }

    /// The next certificate's fingerprint, if one was prepared.
    pub fn next_fingerprint(&self) -> Result<Option<String>, TlsError> {
        Ok(self.read(true)?.map(|i| fingerprint(&i.cert_der)))
    }

    /// Makes the next certificate (a development certificate for `names`) and returns its
    /// fingerprint, for clients to pin before it is served. Refuses when one is prepared.
    pub fn prepare_next(&self, names: &[String]) -> Result<String, TlsError> {
        if let Some(fp) = self.next_fingerprint()? {
            return Err(TlsError::Certificate(format!(
                "a next certificate ({fp}) is already prepared in {}; promote it first",
                self.dir.display()
            )));
        }
        let identity = development_identity(names)?;
        self.write(true, &identity)?;
        Ok(fingerprint(&identity.cert_der))
    }

    /// Makes the prepared certificate the current one; returns its fingerprint. The old one
    /// is gone: clients that pinned only it must pin the new one first.
    pub fn promote_next(&self) -> Result<String, TlsError> {
        let next = self.read(true)?.ok_or_else(|| {
            TlsError::Certificate(format!(
                "no next certificate in {}; prepare one first",
                self.dir.display()
            ))
        })?;
        let ((cert, key), (next_cert, next_key)) = (self.paths(false), self.paths(true));
        // The key first: a crash in between leaves the next certificate to promote again,
        // never a certificate without its key.
        fs::rename(&next_key, &key).map_err(|e| TlsError::io(&key, e))?;
        fs::rename(&next_cert, &cert).map_err(|e| TlsError::io(&cert, e))?;
        sync_dir(&self.dir)?;
        Ok(fingerprint(&next.cert_der))
    }

    /// The folder, created or tightened to 0700: it holds private keys.
    fn private_dir(&self) -> Result<(), TlsError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| TlsError::io(&self.dir, e))?;
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| TlsError::io(&self.dir, e))
    }

    fn write(&self, next: bool, identity: &Identity) -> Result<(), TlsError> {
        self.private_dir()?;
        let (cert, key) = self.paths(next);
        for (path, data) in [(&key, &identity.key_der), (&cert, &identity.cert_der)] {
            let tmp = path.with_extension("tmp");
            let _ = fs::remove_file(&tmp);
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(|e| TlsError::io(&tmp, e))?;
            f.write_all(data)
                .and_then(|()| f.sync_all())
                .map_err(|e| TlsError::io(&tmp, e))?;
            fs::rename(&tmp, path).map_err(|e| TlsError::io(path, e))?;
        }
        sync_dir(&self.dir)
    }
}

fn sync_dir(dir: &Path) -> Result<(), TlsError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| TlsError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_announces_the_next_certificate_then_serves_it() {
        let d = tempfile::tempdir().unwrap();
        let ids = IdentityDir::new(&d.path().join("fe"));
        let names = vec!["localhost".to_string()];
        let first = fingerprint(&ids.load_or_create(&names).unwrap().cert_der);
        assert_eq!(
            fingerprint(&ids.load_or_create(&names).unwrap().cert_der),
            first
        );
        assert_eq!(ids.next_fingerprint().unwrap(), None);
        assert!(ids.promote_next().is_err(), "nothing to promote");
        let next = ids.prepare_next(&names).unwrap();
        assert_ne!(next, first);
        assert!(ids.prepare_next(&names).is_err(), "one next at a time");
        assert_eq!(
            fingerprint(&ids.load().unwrap().cert_der),
            first,
            "not served yet"
        );
        assert_eq!(ids.promote_next().unwrap(), next);
        assert_eq!(fingerprint(&ids.load().unwrap().cert_der), next);
        assert_eq!(ids.next_fingerprint().unwrap(), None);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&d.path().join("fe")), 0o700);
        assert_eq!(mode(&d.path().join("fe/tls.key.der")), 0o600);
    }
}
