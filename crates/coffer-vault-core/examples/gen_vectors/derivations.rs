//! Vectors for the K transport, the auth key and its authorizations, OPAQUE's credential
//! identifier and context, the fleet fingerprint and the fleet secrets.

use coffer_vault_core::{client, derive_auth_key, seal_k_transport_for_test_vectors, Operation};
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;

use super::fixtures::*;
use super::spec::{keys, noise, transport as spec_transport};
use super::{hex, Vector};

fn flip(bytes: &[u8], offset: usize, mask: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[offset] ^= mask;
    out
}

fn session_key(label: &str) -> Vec<u8> {
    pseudo_random(&format!("OPAQUE session key {label}"), 64)
}

fn transport_vector(name: &str, expect: &str, comment: &str, session_key: &[u8]) -> Vector {
    Vector::new(name, "transport", expect)
        .text("comment", comment)
        .hex("session key", session_key)
        .hex("transport key", &spec_transport::key(session_key))
}

pub fn transport_vectors() -> Vec<Vector> {
    let sk = session_key("1");
    let blob = pseudo_random("a client-sealed K blob", 93);
    let n = fixed12("transport nonce");
    let mut rng = Scripted::new(&n);
    let sealed = seal_k_transport_for_test_vectors(&sk, &blob, &mut rng).expect("seals");
    assert!(rng.is_spent(), "the nonce is all the transport draws");
    let key = spec_transport::key(&sk);
    assert_eq!(
        sealed,
        spec_transport::seal_raw(&key, &n, super::spec::labels::K_TRANSPORT, &blob),
        "the crate and the independent sealing disagree"
    );
    let last = sealed.len() - 1;
    let bad = |name: &str, comment: &str, session: &[u8], bytes: &[u8]| {
        transport_vector(name, "does not open", comment, session).hex("sealed", bytes)
    };
    let mut v = vec![transport_vector(
        "transport_k_blob",
        "success",
        "a 93-byte K blob under a 64-byte OPAQUE session key",
        &sk,
    )
    .hex("nonce", &n)
    .hex("k blob", &blob)
    .hex("sealed", &sealed)];
    v.push(bad(
        "transport_other_session_key",
        "transport_k_blob opened with another login's session key",
        &session_key("2"),
        &sealed,
    ));
    for (name, offset, comment) in [
        (
            "transport_flip_nonce",
            0,
            "transport_k_blob with one bit of the nonce flipped",
        ),
        (
            "transport_flip_ciphertext",
            12 + 40,
            "transport_k_blob with one bit of the ciphertext flipped",
        ),
        (
            "transport_flip_tag",
            last,
            "transport_k_blob with one bit of the tag flipped",
        ),
    ] {
        v.push(bad(name, comment, &sk, &flip(&sealed, offset, 0x04)));
    }
    v.push(bad(
        "transport_truncated",
        "transport_k_blob without its last byte",
        &sk,
        &sealed[..last],
    ));
    v.push(bad(
        "transport_shorter_than_nonce_and_tag",
        "27 bytes: less than a nonce and a tag",
        &sk,
        &sealed[..27],
    ));
    v.push(bad(
        "transport_without_associated_data",
        "the K blob sealed under the right key and nonce, with empty associated data",
        &sk,
        &spec_transport::seal_raw(&key, &n, b"", &blob),
    ));
    let mut sha256_key = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(None, &sk)
        .expand(super::spec::labels::K_TRANSPORT, &mut sha256_key)
        .expect("32 bytes");
    v.push(bad(
        "transport_key_from_hkdf_sha256",
        "the K blob sealed under a key from HKDF-SHA256 instead of HKDF-SHA512",
        &sk,
        &spec_transport::seal_raw(&sha256_key, &n, super::spec::labels::K_TRANSPORT, &blob),
    ));
    v
}

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

pub fn authorization_vectors() -> Vec<Vector> {
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
            "a 300-byte account id: the length prefix is 0x012c",
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
