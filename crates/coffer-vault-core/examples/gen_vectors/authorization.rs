//! The auth key derived from K, and the authorizations (MACs) it makes.

use coffer_vault_core::{client, derive_auth_key, Operation};
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;

use super::fixtures::*;
use super::spec::keys;
use super::Vector;

fn k_a() -> [u8; 32] {
    fixed32("K A")
}

fn auth_key_vector(name: &str, comment: &str, k: &[u8; 32], differs_from: Option<&str>) -> Vector {
    let derived = derive_auth_key(k);
    assert_eq!(
        *derived,
        keys::auth_key(k),
        "the crate and the spec disagree"
    );
    let v = Vector::new(name, "auth key", "success")
        .text("comment", comment)
        .hex("k", k)
        .hex("auth key", derived.as_ref());
    match differs_from {
        Some(other) => v.text("differs from", other),
        None => v,
    }
}

pub fn auth_key_vectors() -> Vec<Vector> {
    let flipped: [u8; 32] = flip(&k_a(), 0, 0x01).try_into().expect("32 bytes");
    vec![
        auth_key_vector("auth_key_k_a", "the auth key of a fixed K", &k_a(), None),
        auth_key_vector(
            "auth_key_k_zero",
            "the auth key of the all-zero K",
            &[0; 32],
            None,
        ),
        auth_key_vector(
            "auth_key_k_a_bit_flipped",
            "auth_key_k_a's K with bit 0 flipped: another auth key",
            &flipped,
            Some("auth_key_k_a"),
        ),
    ]
}

/// A registration request as OPAQUE serializes it: a Ristretto255 point (fixed here).
fn registration_request(label: &str) -> Vec<u8> {
    (RISTRETTO_BASEPOINT_POINT * scalar(label))
        .compress()
        .to_bytes()
        .to_vec()
}

#[derive(Clone)]
struct Auth<'a> {
    auth_key: [u8; 32],
    account: &'a [u8],
    challenge: Vec<u8>,
    op: &'a str,
    request: Vec<u8>,
}

impl Auth<'_> {
    fn mac(&self) -> [u8; 32] {
        let op = match self.op {
            "replace" => Operation::Replace,
            _ => Operation::Delete,
        };
        let mac = client::authorize(
            &self.auth_key,
            self.account,
            &self.challenge,
            op,
            &self.request,
        )
        .mac;
        let spec = keys::authorization_mac(
            &self.auth_key,
            self.account,
            &self.challenge,
            keys::operation_tag(self.op).expect("an operation"),
            &self.request,
        );
        assert_eq!(mac, spec, "the crate and the spec disagree");
        spec
    }

    fn vector(&self, name: &str, expect: &str, comment: &str, presented: &[u8]) -> Vector {
        Vector::new(name, "authorization", expect)
            .text("comment", comment)
            .hex("auth key", &self.auth_key)
            .hex("account", self.account)
            .hex("challenge", &self.challenge)
            .text("operation", self.op)
            .hex("request", &self.request)
            .hex("mac", &self.mac())
            .hex("presented", presented)
    }
}

pub fn vectors() -> Vec<Vector> {
    let auth_key = *derive_auth_key(&k_a());
    let delete = Auth {
        auth_key,
        account: ACCOUNT,
        challenge: fixed32("challenge 1").to_vec(),
        op: "delete",
        request: Vec::new(),
    };
    let replace = Auth {
        op: "replace",
        request: registration_request("registration request 1"),
        ..delete.clone()
    };
    let delete_mac = delete.mac();
    let replace_mac = replace.mac();
    let other = |f: &dyn Fn(&mut Auth)| {
        let mut a = delete.clone();
        f(&mut a);
        a
    };
    let replace_like = |f: &dyn Fn(&mut Auth)| {
        let mut a = replace.clone();
        f(&mut a);
        a
    };
    let no_challenge = other(&|a| a.challenge = Vec::new());
    let no_challenge_mac = no_challenge.mac();
    vec![
        delete.vector(
            "authorization_delete",
            "valid",
            "deleting a live record (auth key of auth_key_k_a; a Delete signs the empty request)",
            &delete_mac,
        ),
        replace.vector(
            "authorization_replace",
            "valid",
            "replacing a live record: the request is the new registration's RegistrationRequest",
            &replace_mac,
        ),
        other(&|a| a.account = OTHER_ACCOUNT).vector(
            "authorization_delete_other_account",
            "invalid",
            "authorization_delete's MAC presented for +15550002",
            &delete_mac,
        ),
        other(&|a| a.challenge = fixed32("challenge 2").to_vec()).vector(
            "authorization_delete_other_challenge",
            "invalid",
            "authorization_delete's MAC presented against the next challenge (a replay)",
            &delete_mac,
        ),
        other(&|a| a.auth_key = *derive_auth_key(&fixed32("K B"))).vector(
            "authorization_delete_other_key",
            "invalid",
            "authorization_delete's MAC checked against another record's auth key",
            &delete_mac,
        ),
        replace_like(&|a| a.request = registration_request("registration request 2")).vector(
            "authorization_replace_other_request",
            "invalid",
            "authorization_replace's MAC presented with another RegistrationRequest",
            &replace_mac,
        ),
        replace_like(&|_| {}).vector(
            "authorization_replace_with_delete_tag",
            "invalid",
            "a MAC over authorization_replace's inputs with operation tag 2 (delete) instead of 1",
            &keys::authorization_mac(
                &replace.auth_key,
                replace.account,
                &replace.challenge,
                2,
                &replace.request,
            ),
        ),
        other(&|_| {}).vector(
            "authorization_delete_with_replace_mac",
            "invalid",
            "authorization_replace's MAC (operation replace, over a RegistrationRequest) presented for a Delete",
            &replace_mac,
        ),
        other(&|_| {}).vector(
            "authorization_delete_flipped_mac",
            "invalid",
            "authorization_delete's MAC with one bit flipped",
            &flip(&delete_mac, 31, 0x01),
        ),
        other(&|_| {}).vector(
            "authorization_delete_truncated_mac",
            "invalid",
            "the first 16 bytes of authorization_delete's MAC",
            &delete_mac[..16],
        ),
        other(&|_| {}).vector(
            "authorization_delete_empty_mac",
            "invalid",
            "an empty MAC",
            &[],
        ),
        no_challenge.vector(
            "authorization_delete_no_challenge",
            "invalid",
            "no challenge outstanding (none issued, or already spent): even the MAC over the empty \
             challenge is refused",
            &no_challenge_mac,
        ),
    ]
}
