//! Message 1 vectors: what the vault makes of a request.

use coffer_vault_core::{Authorization, Request};

use super::super::fixtures::*;
use super::super::spec::{noise, wire};
use super::super::Vector;
use super::*;

/// A request whose JSON is exactly `len` bytes: a `RegisterFinish` whose upload has the
/// length, and whose Argon2id memory the parity, that this needs.
fn request_of_json_len(len: usize) -> Request {
    for n in 0..len {
        for m_cost_kib in [65536, 8192] {
            let candidate = Request::RegisterFinish {
                registration_id: pseudo_random("sized request: registration id", 32),
                upload: pseudo_random("sized request: upload", n),
                k_blob: pseudo_random("sized request: K blob", 93),
                auth_key: pseudo_random("sized request: auth key", 32),
                ksf: coffer_vault_core::KsfParams {
                    m_cost_kib,
                    t_cost: 3,
                    p_cost: 1,
                },
            };
            if json(&candidate).len() == len {
                return candidate;
            }
        }
    }
    panic!("no request of {len} JSON bytes");
}

struct Request1<'a> {
    name: &'a str,
    expect: &'a str,
    error: Option<&'a str>,
    comment: &'a str,
    /// The channel secret of the fleet that opens it.
    fleet_secret: [u8; 32],
    /// The account it is opened for.
    account: &'a [u8],
    ephemeral: Option<[u8; 32]>,
    /// On success, and for authentic payloads that are not a message.
    request: Option<&'a Request>,
    payload: Option<Vec<u8>>,
    message: Vec<u8>,
}

impl Request1<'_> {
    fn vector(self) -> Vector {
        let mut v = Vector::new(self.name, "channel request", self.expect);
        if let Some(e) = self.error {
            v = v.text("error", e);
        }
        v = v
            .text("comment", self.comment)
            .hex("responder static secret", &self.fleet_secret)
            .hex(
                "responder static public",
                &noise::public_key(&self.fleet_secret),
            )
            .hex("account", self.account)
            .hex("prologue", &wire::prologue(self.account));
        if let Some(e) = self.ephemeral {
            v = v.hex("initiator ephemeral secret", &e);
        }
        if let Some(r) = self.request {
            v = v.text(
                "request",
                String::from_utf8(json(r)).expect("JSON is UTF-8"),
            );
        }
        if let Some(p) = &self.payload {
            v = v.hex("payload", p);
        }
        v.hex("message", &self.message)
    }
}

fn good_request(name: &str, comment: &str, account: &[u8], request: &Request) -> Vector {
    let e = ephemeral(name);
    Request1 {
        name,
        expect: "success",
        error: None,
        comment,
        fleet_secret: channel_secret_a(),
        account,
        ephemeral: Some(e),
        request: Some(request),
        payload: Some(wire::pad(&json(request))),
        message: sealed_request(&channel_secret_a(), account, request, &e),
    }
    .vector()
}

fn bad_request(
    name: &str,
    expect: &str,
    error: &str,
    comment: &str,
    account: &[u8],
    message: Vec<u8>,
) -> Vector {
    Request1 {
        name,
        expect,
        error: Some(error),
        comment,
        fleet_secret: channel_secret_a(),
        account,
        ephemeral: None,
        request: None,
        payload: None,
        message,
    }
    .vector()
}

/// An authentic request whose payload is not a message of the protocol.
fn malformed_request(name: &str, error: &str, comment: &str, payload: Vec<u8>) -> Vector {
    Request1 {
        name,
        expect: "malformed",
        error: Some(error),
        comment,
        fleet_secret: channel_secret_a(),
        account: ACCOUNT,
        ephemeral: Some(ephemeral(name)),
        request: None,
        message: hostile_request(ACCOUNT, name, &payload),
        payload: Some(payload),
    }
    .vector()
}

pub fn request_vectors() -> Vec<Vector> {
    let status = status_request_message();
    let last = status.len() - 1;
    let delete = Request::Delete {
        authorization: Some(Authorization {
            challenge: pseudo_random("a challenge", 32),
            mac: pseudo_random("an authorization MAC", 32),
        }),
    };
    let register_start = Request::RegisterStart {
        request: pseudo_random("a RegistrationRequest", 32),
        authorization: Some(Authorization {
            challenge: pseudo_random("another challenge", 32),
            mac: pseudo_random("another authorization MAC", 32),
        }),
    };
    let status_json = json(&Request::Status { nonce: vec![] });
    let mut v = vec![
        good_request(
            "channel_request_status",
            "a Status request: the smallest message, one 1024-byte block",
            ACCOUNT,
            &Request::Status { nonce: vec![] },
        ),
        good_request(
            "channel_request_recover_start",
            "a RecoverStart carrying a 96-byte OPAQUE CredentialRequest",
            ACCOUNT,
            &recover_start(),
        ),
        good_request(
            "channel_request_recover_finish",
            "a RecoverFinish naming the 16-byte login id of channel_response_recover_started, \
             with a 64-byte OPAQUE CredentialFinalization",
            ACCOUNT,
            &recover_finish(),
        ),
        good_request(
            "channel_request_status_with_nonce",
            "a Status asking for the ownership proof over a 32-byte nonce",
            ACCOUNT,
            &status_with_nonce(),
        ),
        good_request(
            "channel_request_register_start_authorized",
            "a RegisterStart over a live record: a 32-byte RegistrationRequest and an \
             authorization naming its challenge",
            ACCOUNT,
            &register_start,
        ),
        good_request(
            "channel_request_delete_authorized",
            "a Delete with an authorization: the challenge it answers and its MAC",
            ACCOUNT,
            &delete,
        ),
        good_request(
            "channel_request_one_full_block",
            "1022 bytes of JSON: the length prefix and the body fill one block exactly, no padding",
            ACCOUNT,
            &request_of_json_len(wire::PAD_BLOCK - 2),
        ),
        good_request(
            "channel_request_two_blocks",
            "1023 bytes of JSON: one byte too many for one block, so two blocks",
            ACCOUNT,
            &request_of_json_len(wire::PAD_BLOCK - 1),
        ),
        good_request(
            "channel_request_four_blocks_largest",
            "4094 bytes of JSON: four blocks, the largest payload, a message of exactly 4144 bytes",
            ACCOUNT,
            &request_of_json_len(wire::MAX_PAYLOAD - 2),
        ),
        good_request(
            "channel_request_long_account",
            "a 256-byte account id (the longest a vault node takes): the prologue's length prefix is 0x0100",
            &long_account(),
            &Request::Status { nonce: vec![] },
        ),
    ];
    // Anyone can write message 1 (the initiator is anonymous), even with a low-order
    // ephemeral key whose DH output is all zeros: Noise lets that through.
    let public = noise::public_key(&channel_secret_a());
    v.push(
        Request1 {
            name: "channel_request_low_order_ephemeral",
            expect: "success",
            error: None,
            comment: "e is the all-zero (low-order) point, so es is all zeros and anyone could have \
                      written this message: it opens, as Noise's X25519 allows; the initiator of NK is \
                      anonymous anyway, and requests are bound to vault state (docs/PROTOCOL.md)",
            fleet_secret: channel_secret_a(),
            account: ACCOUNT,
            ephemeral: None,
            request: Some(&Request::Status { nonce: vec![] }),
            payload: Some(wire::pad(&status_json)),
            message: noise::write_request_with(
                &public,
                &wire::prologue(ACCOUNT),
                &[0; 32],
                &[0; 32],
                &wire::pad(&status_json),
            ),
        }
        .vector(),
    );
    let flips: [(&str, usize, u8, &str); 4] = [
        (
            "channel_request_flip_ephemeral",
            0,
            0x01,
            "channel_request_status with bit 0 of e flipped",
        ),
        (
            "channel_request_flip_ephemeral_high_bit",
            31,
            0x80,
            "channel_request_status with the top bit of e flipped: X25519 ignores that bit, so es is \
             unchanged, but e's bytes are in the handshake hash (the AEAD's associated data)",
        ),
        (
            "channel_request_flip_ciphertext",
            32 + 100,
            0x01,
            "channel_request_status with one bit of the encrypted payload flipped",
        ),
        (
            "channel_request_flip_tag",
            last,
            0x80,
            "channel_request_status with one bit of the tag flipped",
        ),
    ];
    for (name, offset, mask, comment) in flips {
        v.push(bad_request(
            name,
            "unauthentic",
            UNAUTHENTIC,
            comment,
            ACCOUNT,
            flip(&status, offset, mask),
        ));
    }
    v.push(bad_request(
        "channel_request_other_account",
        "unauthentic",
        UNAUTHENTIC,
        "channel_request_status (sealed for +15550001) relayed for +15550002: the prologue differs",
        OTHER_ACCOUNT,
        status.clone(),
    ));
    v.push(bad_request(
        "channel_request_other_fleet",
        "unauthentic",
        UNAUTHENTIC,
        "a Status request sealed to another fleet's channel key",
        ACCOUNT,
        sealed_request(
            &channel_secret_b(),
            ACCOUNT,
            &Request::Status { nonce: vec![] },
            &ephemeral("channel_request_other_fleet"),
        ),
    ));
    let mut bare_prologue = super::super::spec::labels::CHANNEL_PROLOGUE.to_vec();
    bare_prologue.extend_from_slice(ACCOUNT);
    v.push(bad_request(
        "channel_request_prologue_without_length",
        "unauthentic",
        UNAUTHENTIC,
        "a Status request sealed with the prologue label || account, without the 2-byte length",
        ACCOUNT,
        noise::write_request(
            &public,
            &bare_prologue,
            &ephemeral("channel_request_prologue_without_length"),
            &wire::pad(&status_json),
        )
        .0,
    ));
    v.push(bad_request(
        "channel_request_truncated",
        "unauthentic",
        UNAUTHENTIC,
        "channel_request_status without its last byte",
        ACCOUNT,
        status[..last].to_vec(),
    ));
    let mut extended = status.clone();
    extended.push(0);
    v.push(bad_request(
        "channel_request_trailing_byte",
        "unauthentic",
        UNAUTHENTIC,
        "channel_request_status with a zero byte appended",
        ACCOUNT,
        extended,
    ));
    v.push(bad_request(
        "channel_request_shorter_than_key_and_tag",
        "unauthentic",
        UNAUTHENTIC,
        "the first 47 bytes of channel_request_status: less than an ephemeral key and a tag",
        ACCOUNT,
        status[..47].to_vec(),
    ));
    v.push(bad_request(
        "channel_request_empty",
        "unauthentic",
        UNAUTHENTIC,
        "an empty message",
        ACCOUNT,
        Vec::new(),
    ));
    v.push(bad_request(
        "channel_request_reflected_response",
        "unauthentic",
        UNAUTHENTIC,
        "message 2 of the status exchange (channel_response_not_found) sent to the vault as a message 1",
        ACCOUNT,
        status_response_message(),
    ));
    let mut padding = wire::pad(&status_json);
    *padding.last_mut().expect("non-empty") = 1;
    v.push(malformed_request(
        "channel_request_padding_not_zeros",
        PADDING,
        "authentic; the Status payload's last padding byte is 0x01",
        padding,
    ));
    let mut long = wire::pad(&status_json);
    long[..2].copy_from_slice(&1023u16.to_be_bytes());
    v.push(malformed_request(
        "channel_request_length_past_payload",
        LENGTH,
        "authentic; a one-block payload whose length prefix says 1023 (2 + 1023 > 1024)",
        long,
    ));
    let mut partial = wire::pad(&status_json);
    partial.truncate(1000);
    v.push(malformed_request(
        "channel_request_partial_block",
        BLOCKS,
        "authentic; a well-framed Status body padded to 1000 bytes, not a whole block",
        partial,
    ));
    v.push(malformed_request(
        "channel_request_empty_payload",
        BLOCKS,
        "authentic; an empty payload (a 48-byte message)",
        Vec::new(),
    ));
    v.push(malformed_request(
        "channel_request_not_json",
        JSON,
        "authentic and well padded; the body is not JSON",
        wire::pad(b"\xff\xfeStatus"),
    ));
    v.push(malformed_request(
        "channel_request_unknown_field",
        JSON,
        "authentic and well padded; a Delete with a field messages do not have",
        wire::pad(br#"{"Delete":{"authorization":null,"extra":true}}"#),
    ));
    v.push(malformed_request(
        "channel_request_response_in_place_of_request",
        JSON,
        "authentic and well padded; the body is a response (NotFound), not a request",
        wire::pad(br#""NotFound""#),
    ));
    let five = json(&Request::RecoverStart {
        request: pseudo_random("an oversized request", 2100),
    });
    let five = wire::pad(&five);
    assert_eq!(five.len(), 5 * wire::PAD_BLOCK);
    v.push(bad_request(
        "channel_request_five_blocks",
        "too large",
        TOO_LARGE,
        "authentic, and well framed in five blocks, but longer than the 4144-byte limit: refused unread",
        ACCOUNT,
        hostile_request(ACCOUNT, "channel_request_five_blocks", &five),
    ));
    v.push(bad_request(
        "channel_request_oversized_garbage",
        "too large",
        TOO_LARGE,
        "4145 zero bytes, one more than the largest message: refused before any decryption",
        ACCOUNT,
        vec![0; wire::MAX_MESSAGE + 1],
    ));
    v
}
