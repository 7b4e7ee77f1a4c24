//! The auth key derived from K, and the authorizations (MACs) it makes.

use coffer_vault_core::{client, derive_auth_key, Operation};
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;

use super::fixtures::*;
use super::spec::keys::{self, Verdict};
use super::Vector;

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

/// The live record's side of an authorization: its auth key and outstanding challenge, and
/// what the request is.
#[derive(Clone)]
struct Auth<'a> {
    auth_key: [u8; 32],
    account: &'a [u8],
    /// The record's outstanding challenge (empty: none).
    outstanding: Vec<u8>,
    op: &'a str,
    request: Vec<u8>,
}

/// What is presented: the challenge the authorization names and its MAC (`None`: no
/// authorization at all).
type Presented<'a> = Option<(&'a [u8], &'a [u8])>;

impl Auth<'_> {
    fn tag(&self) -> u8 {
        keys::operation_tag(self.op).expect("an operation")
    }

    /// The MAC over the outstanding challenge, from the crate and from the spec.
    fn mac(&self) -> [u8; 32] {
        let op = match self.op {
            "replace" => Operation::Replace,
            _ => Operation::Delete,
        };
        let authorization = client::authorize(
            &self.auth_key,
            self.account,
            &self.outstanding,
            op,
            &self.request,
        );
        assert_eq!(authorization.challenge, self.outstanding);
        let spec = keys::authorization_mac(
            &self.auth_key,
            self.account,
            &self.outstanding,
            self.tag(),
            &self.request,
        );
        assert_eq!(authorization.mac, spec, "the crate and the spec disagree");
        spec
    }

    /// `expect` is the vault's verdict, `spent` whether the outstanding challenge is spent
    /// by it; the spec must agree (the runner checks the crate's `step`).
    fn vector(
        &self,
        name: &str,
        expect: Verdict,
        spent: bool,
        comment: &str,
        presented: Presented,
    ) -> Vector {
        let judged = keys::judge_authorization(
            &self.auth_key,
            self.account,
            &self.outstanding,
            self.tag(),
            &self.request,
            presented,
        );
        assert_eq!(judged, (expect, spent), "{name}: the spec disagrees");
        let v = Vector::new(name, "authorization", expect.name())
            .text("comment", comment)
            .hex("auth key", &self.auth_key)
            .hex("account", self.account)
            .hex("outstanding challenge", &self.outstanding)
            .text("operation", self.op)
            .hex("request", &self.request)
            .hex("mac", &self.mac());
        let v = match presented {
            Some((challenge, mac)) => v
                .hex("presented challenge", challenge)
                .hex("presented mac", mac),
            None => v,
        };
        v.text("challenge spent", if spent { "yes" } else { "no" })
    }
}

pub fn vectors() -> Vec<Vector> {
    use Verdict::{Superseded, Unauthorized, Valid};
    let auth_key = *derive_auth_key(&k_a());
    let c1 = fixed32("challenge 1").to_vec();
    let c2 = fixed32("challenge 2").to_vec();
    let delete = Auth {
        auth_key,
        account: ACCOUNT,
        outstanding: c1.clone(),
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
    let no_challenge = other(&|a| a.outstanding = Vec::new());
    let no_challenge_mac = no_challenge.mac();
    let replace_with_delete_tag = keys::authorization_mac(
        &replace.auth_key,
        replace.account,
        &replace.outstanding,
        2,
        &replace.request,
    );
    let ownership_of_c1 =
        keys::authorization_mac(&auth_key, ACCOUNT, &c1, keys::OWNERSHIP_TAG, &[]);
    vec![
        delete.vector(
            "authorization_delete",
            Valid,
            true,
            "deleting a live record (auth key of auth_key_k_a; a Delete signs the empty request)",
            Some((&c1, &delete_mac)),
        ),
        replace.vector(
            "authorization_replace",
            Valid,
            true,
            "replacing a live record: the request is the new registration's RegistrationRequest",
            Some((&c1, &replace_mac)),
        ),
        other(&|a| a.account = OTHER_ACCOUNT).vector(
            "authorization_delete_other_account",
            Unauthorized,
            true,
            "authorization_delete's MAC presented for +15550002",
            Some((&c1, &delete_mac)),
        ),
        other(&|a| a.outstanding = c2.clone()).vector(
            "authorization_delete_other_challenge",
            Unauthorized,
            true,
            "authorization_delete's MAC (over challenge 1) presented as the answer to the \
             outstanding challenge 2: the named challenge is the vault's, the MAC is not over it",
            Some((&c2, &delete_mac)),
        ),
        other(&|a| a.outstanding = c2.clone()).vector(
            "authorization_delete_replaced_challenge",
            Superseded,
            false,
            "authorization_delete as sent, after another Challenge request replaced challenge 1 \
             by challenge 2: the vault tells the client to retry, and challenge 2 stays \
             outstanding for its owner",
            Some((&c1, &delete_mac)),
        ),
        other(&|a| a.outstanding = Vec::new()).vector(
            "authorization_delete_spent_challenge",
            Superseded,
            false,
            "authorization_delete replayed after it was used: challenge 1 is spent and none is \
             outstanding",
            Some((&c1, &delete_mac)),
        ),
        other(&|_| {}).vector(
            "authorization_delete_presented_challenge_truncated",
            Superseded,
            false,
            "authorization_delete naming only the first 16 bytes of challenge 1: not the \
             outstanding challenge, so nothing is spent",
            Some((&c1[..16], &delete_mac)),
        ),
        other(&|a| a.auth_key = *derive_auth_key(&k_b())).vector(
            "authorization_delete_other_key",
            Unauthorized,
            true,
            "authorization_delete's MAC checked against another record's auth key",
            Some((&c1, &delete_mac)),
        ),
        replace_like(&|a| a.request = registration_request("registration request 2")).vector(
            "authorization_replace_other_request",
            Unauthorized,
            true,
            "authorization_replace's MAC presented with another RegistrationRequest",
            Some((&c1, &replace_mac)),
        ),
        replace_like(&|_| {}).vector(
            "authorization_replace_with_delete_tag",
            Unauthorized,
            true,
            "a MAC over authorization_replace's inputs with operation tag 2 (delete) instead of 1",
            Some((&c1, &replace_with_delete_tag)),
        ),
        other(&|_| {}).vector(
            "authorization_delete_with_replace_mac",
            Unauthorized,
            true,
            "authorization_replace's MAC (operation replace, over a RegistrationRequest) presented \
             for a Delete",
            Some((&c1, &replace_mac)),
        ),
        other(&|_| {}).vector(
            "authorization_delete_with_ownership_proof",
            Unauthorized,
            true,
            "the vault's own ownership proof for Status { nonce: challenge 1 } (tag 3, empty \
             request; anyone may ask for one) presented as a Delete authorization",
            Some((&c1, &ownership_of_c1)),
        ),
        other(&|_| {}).vector(
            "authorization_delete_flipped_mac",
            Unauthorized,
            true,
            "authorization_delete's MAC with one bit flipped",
            Some((&c1, &flip(&delete_mac, 31, 0x01))),
        ),
        other(&|_| {}).vector(
            "authorization_delete_truncated_mac",
            Unauthorized,
            true,
            "the first 16 bytes of authorization_delete's MAC",
            Some((&c1, &delete_mac[..16])),
        ),
        other(&|_| {}).vector(
            "authorization_delete_empty_mac",
            Unauthorized,
            true,
            "an empty MAC naming the outstanding challenge",
            Some((&c1, &[])),
        ),
        other(&|_| {}).vector(
            "authorization_delete_missing",
            Unauthorized,
            false,
            "a Delete of a live record with no authorization: refused, and the outstanding \
             challenge is not spent",
            None,
        ),
        replace_like(&|a| a.outstanding = c2.clone()).vector(
            "authorization_replace_replaced_challenge",
            Superseded,
            false,
            "authorization_replace as sent, after another Challenge request replaced challenge 1 \
             by challenge 2: no registration starts, and challenge 2 stays outstanding",
            Some((&c1, &replace_mac)),
        ),
        replace_like(&|_| {}).vector(
            "authorization_replace_missing",
            Unauthorized,
            false,
            "a RegisterStart over a live record with no authorization: refused, and the \
             outstanding challenge is not spent",
            None,
        ),
        no_challenge.vector(
            "authorization_delete_no_challenge",
            Superseded,
            false,
            "no challenge outstanding (none issued, or already spent): even the MAC over the \
             empty challenge, naming the empty challenge, is refused",
            Some((&[], &no_challenge_mac)),
        ),
    ]
}
