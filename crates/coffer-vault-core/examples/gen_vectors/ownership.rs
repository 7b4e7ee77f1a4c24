//! The ownership proof: a live record's answer to `Status { nonce }` carries a MAC (tag 3)
//! over the nonce under its auth key, which a device holding K checks.

use coffer_vault_core::{client, derive_auth_key};

use super::fixtures::*;
use super::spec::keys;
use super::Vector;

/// The client's side of a `Status` with a nonce: its auth key, account and nonce.
struct Asked<'a> {
    auth_key: [u8; 32],
    account: &'a [u8],
    nonce: Vec<u8>,
}

impl Asked<'_> {
    /// The proof a live record holding this auth key answers with (empty when the nonce is
    /// not 32 bytes), from the spec; the runner checks the crate's `step` gives the same.
    fn proof(&self) -> Vec<u8> {
        keys::ownership_proof(&self.auth_key, self.account, &self.nonce)
    }

    fn vector(&self, name: &str, comment: &str, presented: &[u8]) -> Vector {
        let owned = client::check_ownership(&self.auth_key, self.account, &self.nonce, presented);
        assert_eq!(
            owned,
            keys::ownership_valid(&self.auth_key, self.account, &self.nonce, presented),
            "{name}: the crate and the spec disagree"
        );
        Vector::new(
            name,
            "ownership proof",
            if owned { "owned" } else { "not owned" },
        )
        .text("comment", comment)
        .hex("auth key", &self.auth_key)
        .hex("account", self.account)
        .hex("nonce", &self.nonce)
        .hex("proof", &self.proof())
        .hex("presented", presented)
    }
}

pub fn vectors() -> Vec<Vector> {
    let key_a = *derive_auth_key(&k_a());
    let key_b = *derive_auth_key(&k_b());
    let n1 = fixed32("status nonce 1").to_vec();
    let asked = Asked {
        auth_key: key_a,
        account: ACCOUNT,
        nonce: n1.clone(),
    };
    let proof = asked.proof();
    let long = long_account();
    let asked_long = Asked {
        auth_key: key_a,
        account: &long,
        nonce: n1.clone(),
    };
    let proof_long = asked_long.proof();
    let with_tag = |tag: u8| keys::authorization_mac(&key_a, ACCOUNT, &n1, tag, &[]);
    let no_nonce = Asked {
        auth_key: key_a,
        account: ACCOUNT,
        nonce: Vec::new(),
    };
    let short_nonce = Asked {
        auth_key: key_a,
        account: ACCOUNT,
        nonce: n1[..16].to_vec(),
    };
    let v = vec![
        asked.vector(
            "ownership",
            "the record holds the auth key of auth_key_k_a: its answer to Status { nonce } \
             proves it to the device holding that K",
            &proof,
        ),
        asked_long.vector(
            "ownership_long_account",
            "the same for a 256-byte account id: the account's length prefix is 0x0100",
            &proof_long,
        ),
        asked.vector(
            "ownership_other_nonce",
            "the record's answer to an earlier Status with another nonce, replayed",
            &keys::ownership_proof(&key_a, ACCOUNT, &fixed32("status nonce 2")),
        ),
        asked.vector(
            "ownership_other_key",
            "the answer of a record somebody else registered over the account (the auth key of \
             another K)",
            &keys::ownership_proof(&key_b, ACCOUNT, &n1),
        ),
        asked.vector(
            "ownership_other_account",
            "the answer, with the same auth key and nonce, for the account +15550002",
            &keys::ownership_proof(&key_a, OTHER_ACCOUNT, &n1),
        ),
        asked.vector(
            "ownership_with_delete_tag",
            "a MAC over the proof's inputs with tag 2 (a Delete authorization for challenge = \
             the nonce) instead of 3",
            &with_tag(2),
        ),
        asked.vector(
            "ownership_with_replace_tag",
            "a MAC over the proof's inputs with tag 1 (replace) instead of 3",
            &with_tag(1),
        ),
        asked.vector(
            "ownership_flipped_proof",
            "the proof with one bit flipped",
            &flip(&proof, 0, 0x01),
        ),
        asked.vector(
            "ownership_truncated_proof",
            "the first 16 bytes of the proof",
            &proof[..16],
        ),
        asked.vector(
            "ownership_empty_proof",
            "an empty proof, as a locked record (or one answering no nonce) gives",
            &[],
        ),
        no_nonce.vector(
            "ownership_empty_nonce",
            "a Status with no nonce: the live record's answer carries an empty proof, which \
             proves nothing",
            &no_nonce.proof(),
        ),
        short_nonce.vector(
            "ownership_nonce_16_bytes",
            "a 16-byte nonce is no nonce: the live record answers with an empty proof",
            &short_nonce.proof(),
        ),
    ];
    assert!(no_nonce.proof().is_empty() && short_nonce.proof().is_empty());
    v
}
