//! The front-end's development TLS certificate: made once, kept in its data directory.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result};

pub fn load_or_create(dir: &Path, names: &[String]) -> Result<coffer_tls::Identity> {
    let (cert, key) = (dir.join("tls.cert.der"), dir.join("tls.key.der"));
    if cert.exists() && key.exists() {
        return Ok(coffer_tls::Identity {
            cert_der: fs::read(&cert).with_context(|| format!("reading {}", cert.display()))?,
            key_der: fs::read(&key).with_context(|| format!("reading {}", key.display()))?,
        });
    }
    let identity = coffer_tls::development_identity(names)?;
    for (path, data) in [(&key, &identity.key_der), (&cert, &identity.cert_der)] {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("writing {}", path.display()))?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    Ok(identity)
}
