//! What OPAQUE is bound to, the same on both sides: the credential identifier (account and
//! registration id), the context (protocol and fleet) and the client identifier (account).

use opaque_ke::Identifiers;

use crate::fleet::FleetKeys;
use crate::labels;

/// Bytes of a registration id.
pub const REGISTRATION_ID_LEN: usize = 32;

/// `label || len(account) (2) || account || registration id`. The OPRF key is derived from
/// it, so each registration has its own, and a registration never evaluates a login's.
pub fn credential_identifier(account: &[u8], registration_id: &[u8]) -> Vec<u8> {
    let mut out = labels::CREDENTIAL_ID.to_vec();
    out.extend_from_slice(&(account.len() as u16).to_be_bytes());
    out.extend_from_slice(account);
    out.extend_from_slice(registration_id);
    out
}

/// `label || fleet fingerprint (32)`: a login completes only between a client and the fleet
/// it pinned, under this protocol version.
pub fn context(keys: &FleetKeys) -> Vec<u8> {
    let mut out = labels::OPAQUE_CONTEXT.to_vec();
    out.extend_from_slice(&keys.fingerprint_bytes());
    out
}

/// The client identifier is the account id; the server's is its public key (OPAQUE's
/// default), which the fleet fingerprint covers.
pub fn identifiers(account: &[u8]) -> Identifiers<'_> {
    Identifiers {
        client: Some(account),
        server: None,
    }
}
