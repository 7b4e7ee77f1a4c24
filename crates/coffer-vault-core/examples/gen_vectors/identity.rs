//! What OPAQUE and the client bind to: the credential identifier, the fleet's public keys
//! (fingerprint, OPAQUE context, pinning) and the fleet secrets they come from.

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;

use super::fixtures::*;
use super::spec::{keys, noise};
use super::{hex, Vector};

fn credential_vector(
    name: &str,
    comment: &str,
    account: &[u8],
    registration_id: &[u8],
    differs_from: Option<&str>,
) -> Vector {
    let v = Vector::new(name, "credential identifier", "success")
        .text("comment", comment)
        .hex("account", account)
        .hex("registration id", registration_id)
        .hex(
            "credential identifier",
            &keys::credential_identifier(account, registration_id),
        );
    match differs_from {
        Some(other) => v.text("differs from", other),
        None => v,
    }
}

pub fn registration_id(label: &str) -> Vec<u8> {
    fixed32(&format!("registration id {label}")).to_vec()
}

pub fn credential_identifier_vectors() -> Vec<Vector> {
    vec![
        credential_vector(
            "credential_identifier",
            "OPAQUE's credential identifier (so the OPRF key) of one registration",
            ACCOUNT,
            &registration_id("1"),
            None,
        ),
        credential_vector(
            "credential_identifier_other_registration",
            "the same account's next registration: another OPRF key",
            ACCOUNT,
            &registration_id("2"),
            Some("credential_identifier"),
        ),
        credential_vector(
            "credential_identifier_other_account",
            "the same registration id under another account",
            OTHER_ACCOUNT,
            &registration_id("1"),
            Some("credential_identifier"),
        ),
        credential_vector(
            "credential_identifier_long_account",
            "a 256-byte account id (the longest a vault node takes): the length prefix is 0x0100",
            &long_account(),
            &registration_id("1"),
            None,
        ),
    ]
}

/// Fleet A's public keys, from its fixed secrets.
pub fn fleet_a_keys() -> ([u8; 32], [u8; 32]) {
    let channel = noise::public_key(&channel_secret_a());
    let opaque = (RISTRETTO_BASEPOINT_POINT * scalar("fleet A OPAQUE server key"))
        .compress()
        .to_bytes();
    let keys = fleet_a().keys().clone();
    assert_eq!(
        (keys.channel.as_slice(), keys.opaque.as_slice()),
        (&channel[..], &opaque[..])
    );
    (channel, opaque)
}

fn fleet_keys_vector(
    name: &str,
    comment: &str,
    channel: &[u8],
    opaque: &[u8],
    pinned: &str,
    differs_from: Option<&str>,
) -> Vector {
    let keys = coffer_vault_core::FleetKeys {
        channel: channel.to_vec(),
        opaque: opaque.to_vec(),
    };
    let fingerprint = keys::fingerprint(channel, opaque);
    assert_eq!(
        keys.fingerprint_bytes(),
        fingerprint,
        "the crate and the spec disagree"
    );
    let matches = keys.matches(pinned);
    assert_eq!(matches, keys::fingerprint_matches(channel, opaque, pinned));
    let v = Vector::new(
        name,
        "fleet keys",
        if matches { "match" } else { "no match" },
    )
    .text("comment", comment)
    .hex("channel key", channel)
    .hex("opaque key", opaque)
    .hex("fingerprint", &fingerprint)
    .hex("opaque context", &keys::opaque_context(&fingerprint))
    .text("pinned", pinned);
    match differs_from {
        Some(other) => v.text("differs from", other),
        None => v,
    }
}

pub fn fleet_keys_vectors() -> Vec<Vector> {
    let (channel, opaque) = fleet_a_keys();
    let pinned = hex(&keys::fingerprint(&channel, &opaque));
    let mut joined = channel.to_vec();
    joined.extend_from_slice(&opaque);
    vec![
        fleet_keys_vector(
            "fleet_keys",
            "fleet A's public keys against their own fingerprint",
            &channel,
            &opaque,
            &pinned,
            None,
        ),
        fleet_keys_vector(
            "fleet_keys_pinned_upper_case",
            "the fingerprint pinned in upper case: digits match in any case",
            &channel,
            &opaque,
            &pinned.to_uppercase(),
            None,
        ),
        fleet_keys_vector(
            "fleet_keys_other_channel_key",
            "fleet A's pinned fingerprint, a channel key with bit 0 flipped",
            &flip(&channel, 0, 0x01),
            &opaque,
            &pinned,
            Some("fleet_keys"),
        ),
        fleet_keys_vector(
            "fleet_keys_other_opaque_key",
            "fleet A's pinned fingerprint, an OPAQUE key with one bit flipped",
            &channel,
            &flip(&opaque, 31, 0x40),
            &pinned,
            Some("fleet_keys"),
        ),
        fleet_keys_vector(
            "fleet_keys_swapped",
            "fleet A's pinned fingerprint, the two keys swapped",
            &opaque,
            &channel,
            &pinned,
            Some("fleet_keys"),
        ),
        fleet_keys_vector(
            "fleet_keys_boundary_shifted",
            "the same 64 bytes split 31 + 33: the hashed bytes and so the fingerprint are fleet A's, \
             but keys of the wrong length never match",
            &joined[..31],
            &joined[31..],
            &pinned,
            None,
        ),
        fleet_keys_vector(
            "fleet_keys_pinned_truncated",
            "fleet A's keys against 63 of the fingerprint's 64 digits",
            &channel,
            &opaque,
            &pinned[..63],
            None,
        ),
    ]
}

fn fleet_secrets_vector(name: &str, comment: &str, bytes: &[u8]) -> Vector {
    let parsed = coffer_vault_core::Fleet::from_bytes(bytes).ok();
    let spec = keys::fleet_secrets(bytes);
    assert_eq!(
        parsed.is_some(),
        spec.is_some(),
        "{name}: the crate and the spec disagree"
    );
    let v = Vector::new(
        name,
        "fleet secrets",
        if spec.is_some() {
            "success"
        } else {
            "bad fleet"
        },
    )
    .text("comment", comment)
    .hex("fleet secrets", bytes);
    let (Some(fleet), Some(s)) = (parsed, spec) else {
        return v;
    };
    assert_eq!(fleet.keys().channel, s.channel_key);
    assert_eq!(fleet.keys().opaque, s.opaque_key);
    v.text("max guesses", s.max_guesses.to_string())
        .hex("sealing key", &s.sealing_key)
        .hex("channel secret", &s.channel_secret)
        .hex("channel key", &s.channel_key)
        .hex("opaque key", &s.opaque_key)
        .hex(
            "fingerprint",
            &keys::fingerprint(&s.channel_key, &s.opaque_key),
        )
}

pub fn fleet_secrets_vectors() -> Vec<Vector> {
    let good = fleet_secrets(10, &sealing_key_a(), &channel_secret_a());
    let with = |offset: usize, bytes: &[u8]| {
        let mut out = good.clone();
        out[offset..offset + bytes.len()].copy_from_slice(bytes);
        out
    };
    vec![
        fleet_secrets_vector(
            "fleet_secrets",
            "fleet A's secrets, a budget of 10 guesses",
            &good,
        ),
        fleet_secrets_vector(
            "fleet_secrets_budget_100",
            "the largest budget a fleet may have",
            &with(1, &100u16.to_be_bytes()),
        ),
        fleet_secrets_vector(
            "fleet_secrets_version_1",
            "fleet A's secrets with version byte 0x01",
            &with(0, &[1]),
        ),
        fleet_secrets_vector(
            "fleet_secrets_budget_0",
            "a budget of 0 guesses",
            &with(1, &[0, 0]),
        ),
        fleet_secrets_vector(
            "fleet_secrets_budget_101",
            "a budget of 101 guesses, one past the largest",
            &with(1, &101u16.to_be_bytes()),
        ),
        fleet_secrets_vector(
            "fleet_secrets_truncated",
            "fleet A's secrets without their last byte",
            &good[..good.len() - 1],
        ),
        fleet_secrets_vector(
            "fleet_secrets_without_opaque_setup",
            "the first 67 bytes only: no OPAQUE setup",
            &good[..67],
        ),
        fleet_secrets_vector(
            "fleet_secrets_opaque_key_not_canonical",
            "an OPAQUE server private key of all 0xff bytes, not a reduced scalar",
            &with(67 + 64, &[0xff; 32]),
        ),
        fleet_secrets_vector(
            "fleet_secrets_opaque_key_zero",
            "an OPAQUE server private key of zero",
            &with(67 + 64, &[0; 32]),
        ),
    ]
}
