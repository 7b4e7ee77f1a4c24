//! Sealed-record vectors: a record at rest, as a vault node opens it.

use coffer_vault_core::{KsfParams, Live, Record, State};

use super::fixtures::*;
use super::spec::{record as spec, VERSION};
use super::Vector;

fn json(record: &Record) -> Vec<u8> {
    serde_json::to_vec(record).expect("records serialize")
}

fn nonce(name: &str) -> [u8; 12] {
    fixed12(&format!("record nonce of {name}"))
}

fn live(name: &str, k_blob_len: usize, guesses_left: u16, pending: bool) -> Record {
    let bytes = |what: &str, len: usize| pseudo_random(&format!("{name} {what}"), len);
    Record {
        state: State::Live(Live {
            registration_id: bytes("registration id", 32),
            password_file: bytes("password file", 192),
            k_blob: bytes("K blob", k_blob_len),
            auth_key: bytes("auth key", 32),
            ksf: KsfParams::DEFAULT,
            max_guesses: 10,
            guesses_left,
            pending_login: if pending {
                bytes("pending login", 192)
            } else {
                Vec::new()
            },
            pending_login_id: if pending {
                bytes("pending login id", 16)
            } else {
                Vec::new()
            },
            challenge: if pending {
                bytes("challenge", 32)
            } else {
                Vec::new()
            },
        }),
        pending_registration: Vec::new(),
    }
}

/// A live record whose JSON is exactly `len` bytes.
fn live_of_json_len(len: usize) -> Record {
    for n in 0..len {
        for guesses_left in [9, 10] {
            let r = live("largest record", n, guesses_left, true);
            if json(&r).len() == len {
                return r;
            }
        }
    }
    panic!("no record of {len} JSON bytes");
}

/// The crate's sealed record, checked against the independent sealing.
fn sealed(record: &Record, sealing_key: &[u8; 32], account: &[u8], nonce: &[u8; 12]) -> Vec<u8> {
    let fleet = fleet(sealing_key, &channel_secret_a());
    let mut rng = Scripted::new(nonce);
    let out = record
        .seal(&fleet, account, &mut rng)
        .expect("the crate seals the record");
    assert!(rng.is_spent(), "the nonce is all the record draws");
    assert_eq!(
        out,
        spec::seal(sealing_key, account, nonce, &json(record)),
        "the crate and the independent sealing disagree"
    );
    out
}

/// The fields every record vector starts with: the key and account the record is opened
/// with, and what they give.
fn base(name: &str, expect: &str, comment: &str, sealing_key: &[u8; 32], account: &[u8]) -> Vector {
    Vector::new(name, "record", expect)
        .text("comment", comment)
        .hex("sealing key", sealing_key)
        .hex("account", account)
        .hex("subkey", &spec::subkey(sealing_key, account))
        .hex("associated data", &spec::aad(VERSION, account))
}

fn good(name: &str, comment: &str, account: &[u8], record: &Record) -> Vector {
    let n = nonce(name);
    let text = String::from_utf8(json(record)).expect("UTF-8");
    base(name, "success", comment, &sealing_key_a(), account)
        .hex("nonce", &n)
        .text("record", text)
        .hex("padded record", &spec::pad(&json(record)))
        .hex("sealed", &sealed(record, &sealing_key_a(), account, &n))
}

fn bad(name: &str, comment: &str, account: &[u8], sealed: Vec<u8>) -> Vector {
    base(name, "bad record", comment, &sealing_key_a(), account).hex("sealed", &sealed)
}

/// An authentic record (the right subkey and associated data) around any plaintext.
fn hostile(name: &str, comment: &str, padded: Vec<u8>) -> Vector {
    let n = nonce(name);
    let sealed = spec::seal_raw(
        &spec::subkey(&sealing_key_a(), ACCOUNT),
        VERSION,
        &n,
        &spec::aad(VERSION, ACCOUNT),
        &padded,
    );
    base(name, "bad record", comment, &sealing_key_a(), ACCOUNT)
        .hex("nonce", &n)
        .hex("padded record", &padded)
        .hex("sealed", &sealed)
}

/// A record sealed some other way: another key or other associated data.
fn sealed_otherwise(name: &str, comment: &str, key: &[u8; 32], version: u8, aad: &[u8]) -> Vector {
    let n = nonce(name);
    let padded = spec::pad(&json(&empty_pending()));
    bad(
        name,
        comment,
        ACCOUNT,
        spec::seal_raw(key, version, &n, aad, &padded),
    )
}

fn empty_pending() -> Record {
    Record {
        state: State::Empty,
        pending_registration: pseudo_random("a pending registration id", 32),
    }
}

pub fn vectors() -> Vec<Vector> {
    let live_base = live("record_live", 93, 10, false);
    let live_sealed = sealed(&live_base, &sealing_key_a(), ACCOUNT, &nonce("record_live"));
    let last = live_sealed.len() - 1;
    let largest = live_of_json_len(spec::PADDED_LEN - 4);
    let too_large = live_of_json_len(spec::PADDED_LEN - 3);
    let fleet_a = fleet_a();
    assert!(
        too_large
            .seal(&fleet_a, ACCOUNT, &mut Scripted::new(&[0; 12]))
            .is_err(),
        "a record of 2045 JSON bytes does not seal"
    );
    let mut v = vec![
        good(
            "record_empty_pending_registration",
            "no secrets yet: a registration in progress",
            ACCOUNT,
            &empty_pending(),
        ),
        good(
            "record_live",
            "a live record with its full budget (field contents are arbitrary bytes)",
            ACCOUNT,
            &live_base,
        ),
        good(
            "record_live_login_pending",
            "a live record with a login in progress and a challenge outstanding",
            ACCOUNT,
            &live("record_live_login_pending", 93, 9, true),
        ),
        good(
            "record_locked",
            "a tombstone: only the budget remains",
            ACCOUNT,
            &Record {
                state: State::Locked { max_guesses: 10 },
                pending_registration: Vec::new(),
            },
        ),
        good(
            "record_largest",
            "2044 bytes of JSON: with the 4-byte length prefix, the padding is full",
            ACCOUNT,
            &largest,
        ),
        good(
            "record_long_account",
            "a 256-byte account id (the longest a vault node takes): the subkey's info starts 0x0100",
            &long_account(),
            &empty_pending(),
        ),
        Vector::new("record_too_large", "record", "too large")
            .text(
                "comment",
                "2045 bytes of JSON do not fit the 2048-byte padding with their length prefix: sealing refuses",
            )
            .hex("sealing key", &sealing_key_a())
            .hex("account", ACCOUNT)
            .text("record", String::from_utf8(json(&too_large)).expect("UTF-8")),
        bad(
            "record_other_account",
            "record_live opened for +15550002: another subkey and other associated data",
            OTHER_ACCOUNT,
            live_sealed.clone(),
        ),
        base(
            "record_other_key",
            "bad record",
            "record_live opened under another fleet's sealing key",
            &sealing_key_b(),
            ACCOUNT,
        )
        .hex("sealed", &live_sealed),
    ];
    for (name, offset, mask, comment) in [
        (
            "record_version_1",
            0,
            0x03,
            "record_live with version byte 0x01",
        ),
        (
            "record_version_3",
            0,
            0x01,
            "record_live with version byte 0x03",
        ),
        (
            "record_flip_nonce",
            1,
            0x01,
            "record_live with one bit of the nonce flipped",
        ),
        (
            "record_flip_ciphertext",
            13 + 100,
            0x10,
            "record_live with one bit of the encrypted record flipped",
        ),
        (
            "record_flip_tag",
            last,
            0x80,
            "record_live with one bit of the tag flipped",
        ),
    ] {
        v.push(bad(
            name,
            comment,
            ACCOUNT,
            flip(&live_sealed, offset, mask),
        ));
    }
    v.push(bad(
        "record_truncated",
        "record_live without its last byte (2076 bytes)",
        ACCOUNT,
        live_sealed[..last].to_vec(),
    ));
    let mut extended = live_sealed.clone();
    extended.push(0);
    v.push(bad(
        "record_extended",
        "record_live with a zero byte appended (2078 bytes)",
        ACCOUNT,
        extended,
    ));
    v.push(bad("record_empty", "no bytes at all", ACCOUNT, Vec::new()));
    let body = json(&empty_pending());
    v.push(hostile(
        "record_length_past_padding",
        "authentic; the length prefix says 2045, past the 2044 bytes after it",
        spec::pad_with_length(&body, 2045),
    ));
    v.push(hostile(
        "record_length_u32_max",
        "authentic; the length prefix is 0xffffffff",
        spec::pad_with_length(&body, u32::MAX),
    ));
    v.push(hostile(
        "record_unknown_field",
        "authentic and well framed; the JSON has a field records do not have",
        spec::pad(br#"{"state":"Empty","pending_registration":"","extra":1}"#),
    ));
    v.push(hostile(
        "record_not_json",
        "authentic and well framed; the body is not JSON",
        spec::pad(b"\x00\x01\x02 not a record"),
    ));
    v.push(sealed_otherwise(
        "record_sealed_under_fleet_key",
        "a record sealed under the fleet's sealing key itself instead of the account's subkey",
        &sealing_key_a(),
        VERSION,
        &spec::aad(VERSION, ACCOUNT),
    ));
    let mut info_without_length = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(super::spec::labels::RECORD_KEY), &sealing_key_a())
        .expand(ACCOUNT, &mut info_without_length)
        .expect("32 bytes");
    v.push(sealed_otherwise(
        "record_subkey_without_length",
        "a record sealed under a subkey whose HKDF info is the account alone, without its length",
        &info_without_length,
        VERSION,
        &spec::aad(VERSION, ACCOUNT),
    ));
    v.push(sealed_otherwise(
        "record_aad_version_1",
        "version byte 0x02, but sealed with version 0x01 in the associated data",
        &spec::subkey(&sealing_key_a(), ACCOUNT),
        VERSION,
        &spec::aad(1, ACCOUNT),
    ));
    let mut aad_without_version = super::spec::labels::RECORD_AAD.to_vec();
    aad_without_version.extend_from_slice(ACCOUNT);
    v.push(sealed_otherwise(
        "record_aad_without_version",
        "sealed with associated data label || account, without the version byte",
        &spec::subkey(&sealing_key_a(), ACCOUNT),
        VERSION,
        &aad_without_version,
    ));
    v
}
