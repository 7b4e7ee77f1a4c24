//! Authorizations: challenge-response proofs of K, bound to the account, the vault's
//! single-use nonce, the operation and the request.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::labels;
use crate::messages::Authorization;

/// Bytes of a challenge nonce, an auth key and a MAC.
pub const AUTH_LEN: usize = 32;

/// What an authorization allows; part of the MAC's input, so that a proof made for one
/// operation is worthless for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A new registration over a live record (a password change).
    Replace,
    Delete,
    /// Not an authorization: the vault's proof, in a `Status` answer, that the record holds
    /// the auth key of the K a device holds.
    Ownership,
}

impl Operation {
    fn tag(self) -> u8 {
        match self {
            Operation::Replace => 1,
            Operation::Delete => 2,
            Operation::Ownership => 3,
        }
    }
}

/// The auth key, `HKDF-SHA256(K, "coffer/v2/vault/auth-key")`. The vault keeps it in the
/// record; it is one-way from K and authorizes nothing but this record's replacement or
/// deletion.
pub fn derive_auth_key(k: &[u8; 32]) -> Zeroizing<[u8; AUTH_LEN]> {
    let mut out = Zeroizing::new([0u8; AUTH_LEN]);
    Hkdf::<Sha256>::new(None, k)
        .expand(labels::AUTH_KEY, out.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

/// `HMAC-SHA256(auth key, label || len(account) || account || challenge || op ||
/// len(request) || request)`, lengths as big-endian u16 and u32.
pub(crate) fn mac(
    auth_key: &[u8],
    account: &[u8],
    challenge: &[u8],
    op: Operation,
    request: &[u8],
) -> [u8; AUTH_LEN] {
    let mut m =
        <Hmac<Sha256> as Mac>::new_from_slice(auth_key).expect("HMAC takes keys of any length");
    m.update(labels::AUTHORIZATION);
    m.update(&(account.len() as u16).to_be_bytes());
    m.update(account);
    m.update(challenge);
    m.update(&[op.tag()]);
    m.update(&(request.len() as u32).to_be_bytes());
    m.update(request);
    m.finalize().into_bytes().into()
}

/// The client's side: the authorization for `op` on `request`, answering `challenge`.
pub fn authorize(
    auth_key: &[u8],
    account: &[u8],
    challenge: &[u8],
    op: Operation,
    request: &[u8],
) -> Authorization {
    Authorization {
        challenge: challenge.to_vec(),
        mac: mac(auth_key, account, challenge, op, request).to_vec(),
    }
}

/// Checks a MAC over `challenge`, in constant time.
pub(crate) fn verify(
    auth_key: &[u8],
    account: &[u8],
    challenge: &[u8],
    op: Operation,
    request: &[u8],
    presented: &[u8],
) -> bool {
    let expected = mac(auth_key, account, challenge, op, request);
    presented.len() == AUTH_LEN && bool::from(expected.ct_eq(presented))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mac_answers_one_challenge_for_one_operation_on_one_request_of_one_account() {
        let key = derive_auth_key(&[7u8; 32]);
        let good = authorize(key.as_ref(), b"alice", &[1; 32], Operation::Delete, b"");
        assert_eq!(
            good.challenge, [1; 32],
            "the challenge travels with the proof"
        );
        let check =
            |key: &[u8], account: &[u8], challenge: &[u8], op, request: &[u8], mac: &[u8]| {
                verify(key, account, challenge, op, request, mac)
            };
        assert!(check(
            key.as_ref(),
            b"alice",
            &[1; 32],
            Operation::Delete,
            b"",
            &good.mac
        ));
        for (account, challenge, op, request) in [
            (&b"bob"[..], [1u8; 32], Operation::Delete, &b""[..]),
            (b"alice", [2; 32], Operation::Delete, b""),
            (b"alice", [1; 32], Operation::Replace, b""),
            (b"alice", [1; 32], Operation::Ownership, b""),
            (b"alice", [1; 32], Operation::Delete, b"x"),
        ] {
            assert!(!check(
                key.as_ref(),
                account,
                &challenge,
                op,
                request,
                &good.mac
            ));
        }
        let other_key = derive_auth_key(&[8u8; 32]);
        assert!(!check(
            other_key.as_ref(),
            b"alice",
            &[1; 32],
            Operation::Delete,
            b"",
            &good.mac
        ));
        assert!(!check(
            key.as_ref(),
            b"alice",
            &[1; 32],
            Operation::Delete,
            b"",
            &good.mac[..16]
        ));
    }
}
