//! Bearer credentials: 32 random bytes, shown to the client once as hex and stored only as
//! their SHA-256 (enough for a value with 256 bits of entropy: no key is needed).

use std::fmt;

use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A freshly issued credential. Its `Debug` hides it; it is wiped when dropped.
pub struct Credential(Zeroizing<String>);

impl Credential {
    pub(crate) fn random() -> Credential {
        let mut raw = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(&mut raw[..]);
        Credential(Zeroizing::new(hex(&raw[..])))
    }

    /// The value to hand to the client (64 hex digits), once.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credential(..)")
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the database keeps of a credential.
pub(crate) fn stored_form(credential: &str) -> String {
    hex(&Sha256::digest(credential.as_bytes()))
}
