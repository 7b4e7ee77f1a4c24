//! Channel vectors: message 1 as the vault opens it, message 2 as the client opens it.

use coffer_vault_core::channel;
use coffer_vault_core::{Authorization, Request, Response};

use super::fixtures::*;
use super::spec::{noise, wire};
use super::Vector;

pub const UNAUTHENTIC: &str = "Unauthentic";
pub const TOO_LARGE: &str = "TooLarge";
pub const PADDING: &str = "Malformed: the padding is not zeros";
pub const LENGTH: &str = "Malformed: the length runs past the payload";
pub const BLOCKS: &str = "Malformed: the payload is not padded to whole blocks";
pub const JSON: &str = "Malformed: not a message of this protocol";

fn ephemeral(name: &str) -> [u8; 32] {
    fixed32(&format!("initiator ephemeral secret of {name}"))
}

fn responder_ephemeral(name: &str) -> [u8; 32] {
    fixed32(&format!("responder ephemeral secret of {name}"))
}

fn json<T: serde::Serialize>(message: &T) -> Vec<u8> {
    serde_json::to_vec(message).expect("messages serialize")
}

/// Message 1 from the crate, checked against the independent Noise.
fn sealed_request(
    fleet_secret: &[u8; 32],
    account: &[u8],
    request: &Request,
    e: &[u8; 32],
) -> Vec<u8> {
    let public = noise::public_key(fleet_secret);
    let (message, _) =
        channel::seal_request_for_test_vectors(&channel_keys(&public), account, request, e)
            .expect("the crate seals the request");
    let (expected, _) = noise::write_request(
        &public,
        &wire::prologue(account),
        e,
        &wire::pad(&json(request)),
    );
    assert_eq!(
        message, expected,
        "snow and the independent Noise NK disagree"
    );
    message
}

/// Message 2 from the crate, answering `request_message`, checked against the independent
/// Noise.
fn sealed_response(
    fleet_secret: &[u8; 32],
    account: &[u8],
    request_message: &[u8],
    e: &[u8; 32],
    response: &Response,
) -> Vec<u8> {
    let fleet = fleet(&sealing_key_a(), fleet_secret);
    let (_, responder) =
        channel::open_request_for_test_vectors(&fleet, account, request_message, e)
            .expect("the crate opens the request");
    let message = responder
        .seal(response)
        .expect("the crate seals the response");
    let (_, state) = noise::read_request(fleet_secret, &wire::prologue(account), request_message)
        .expect("the independent Noise opens the request");
    let expected = noise::write_response(&state, e, &wire::pad(&json(response)));
    assert_eq!(
        message, expected,
        "snow and the independent Noise NK disagree"
    );
    message
}

/// An authentic message 1 around any payload (the crate pads only honestly).
fn hostile_request(account: &[u8], name: &str, payload: &[u8]) -> Vec<u8> {
    let public = noise::public_key(&channel_secret_a());
    noise::write_request(&public, &wire::prologue(account), &ephemeral(name), payload).0
}

/// An authentic message 2, answering the status request, around any payload.
fn hostile_response(name: &str, payload: &[u8]) -> Vec<u8> {
    let (_, state) = noise::read_request(
        &channel_secret_a(),
        &wire::prologue(ACCOUNT),
        &status_request_message(),
    )
    .expect("the status request opens");
    noise::write_response(&state, &responder_ephemeral(name), payload)
}

fn flip(bytes: &[u8], offset: usize, mask: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[offset] ^= mask;
    out
}

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

fn response_of_json_len(len: usize) -> Response {
    let overhead = json(&Response::Rejected {
        reason: String::new(),
    })
    .len();
    let response = Response::Rejected {
        reason: "x".repeat(len - overhead),
    };
    assert_eq!(json(&response).len(), len);
    response
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

/// The request every response vector answers: `Status` for ACCOUNT to fleet A.
fn status_request_message() -> Vec<u8> {
    sealed_request(
        &channel_secret_a(),
        ACCOUNT,
        &Request::Status,
        &ephemeral("channel_request_status"),
    )
}

fn status_response_message() -> Vec<u8> {
    sealed_response(
        &channel_secret_a(),
        ACCOUNT,
        &status_request_message(),
        &responder_ephemeral("channel_response_not_found"),
        &Response::NotFound,
    )
}

pub fn request_vectors() -> Vec<Vector> {
    let status = status_request_message();
    let last = status.len() - 1;
    let recover_start = Request::RecoverStart {
        request: pseudo_random("a CredentialRequest", 96),
    };
    let delete = Request::Delete {
        authorization: Some(Authorization {
            mac: pseudo_random("an authorization MAC", 32),
        }),
    };
    let status_json = json(&Request::Status);
    let mut v = vec![
        good_request(
            "channel_request_status",
            "a Status request: the smallest message, one 1024-byte block",
            ACCOUNT,
            &Request::Status,
        ),
        good_request(
            "channel_request_recover_start",
            "a RecoverStart carrying a 96-byte OPAQUE CredentialRequest",
            ACCOUNT,
            &recover_start,
        ),
        good_request(
            "channel_request_delete_authorized",
            "a Delete with an authorization MAC",
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
            "a 300-byte account id: the prologue's length prefix is 0x012c",
            &long_account(),
            &Request::Status,
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
            request: Some(&Request::Status),
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
            &Request::Status,
            &ephemeral("channel_request_other_fleet"),
        ),
    ));
    let mut bare_prologue = super::spec::labels::CHANNEL_PROLOGUE.to_vec();
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

struct Response2<'a> {
    name: &'a str,
    expect: &'a str,
    error: Option<&'a str>,
    comment: &'a str,
    responder_ephemeral: Option<[u8; 32]>,
    response: Option<&'a Response>,
    payload: Option<Vec<u8>>,
    message: Vec<u8>,
}

impl Response2<'_> {
    /// Every response vector is read by the client that sent `channel_request_status`.
    fn vector(self) -> Vector {
        let mut v = Vector::new(self.name, "channel response", self.expect);
        if let Some(e) = self.error {
            v = v.text("error", e);
        }
        v = v
            .text("comment", self.comment)
            .hex("responder static secret", &channel_secret_a())
            .hex(
                "responder static public",
                &noise::public_key(&channel_secret_a()),
            )
            .hex("account", ACCOUNT)
            .hex("prologue", &wire::prologue(ACCOUNT))
            .hex(
                "initiator ephemeral secret",
                &ephemeral("channel_request_status"),
            )
            .text(
                "request",
                String::from_utf8(json(&Request::Status)).expect("UTF-8"),
            )
            .hex("request message", &status_request_message());
        if let Some(e) = self.responder_ephemeral {
            v = v.hex("responder ephemeral secret", &e);
        }
        if let Some(r) = self.response {
            v = v.text("response", String::from_utf8(json(r)).expect("UTF-8"));
        }
        if let Some(p) = &self.payload {
            v = v.hex("payload", p);
        }
        v.hex("message", &self.message)
    }
}

fn good_response(name: &str, comment: &str, response: &Response) -> Vector {
    let e = responder_ephemeral(name);
    Response2 {
        name,
        expect: "success",
        error: None,
        comment,
        responder_ephemeral: Some(e),
        response: Some(response),
        payload: Some(wire::pad(&json(response))),
        message: sealed_response(
            &channel_secret_a(),
            ACCOUNT,
            &status_request_message(),
            &e,
            response,
        ),
    }
    .vector()
}

fn bad_response(name: &str, expect: &str, error: &str, comment: &str, message: Vec<u8>) -> Vector {
    Response2 {
        name,
        expect,
        error: Some(error),
        comment,
        responder_ephemeral: None,
        response: None,
        payload: None,
        message,
    }
    .vector()
}

fn malformed_response(name: &str, error: &str, comment: &str, payload: Vec<u8>) -> Vector {
    Response2 {
        name,
        expect: "malformed",
        error: Some(error),
        comment,
        responder_ephemeral: Some(responder_ephemeral(name)),
        response: None,
        message: hostile_response(name, &payload),
        payload: Some(payload),
    }
    .vector()
}

/// The vault's `NotFound` to another message 1 (another account, fleet, ephemeral key or
/// request), for the client of `channel_request_status` to refuse.
fn response_to(
    fleet_secret: &[u8; 32],
    account: &[u8],
    request: &Request,
    e: &[u8; 32],
    name: &str,
) -> Vec<u8> {
    let m1 = sealed_request(fleet_secret, account, request, e);
    sealed_response(
        fleet_secret,
        account,
        &m1,
        &responder_ephemeral(name),
        &Response::NotFound,
    )
}

pub fn response_vectors() -> Vec<Vector> {
    let base = status_response_message();
    let last = base.len() - 1;
    let e1 = ephemeral("channel_request_status");
    let mut v = vec![
        good_response(
            "channel_response_not_found",
            "NotFound, answering channel_request_status",
            &Response::NotFound,
        ),
        good_response(
            "channel_response_recovered",
            "Recovered with a 121-byte sealed K blob",
            &Response::Recovered {
                sealed_k_blob: pseudo_random("a sealed K blob", 121),
            },
        ),
        good_response(
            "channel_response_two_blocks",
            "a Rejected whose JSON is 1023 bytes: two blocks",
            &response_of_json_len(wire::PAD_BLOCK - 1),
        ),
    ];
    let flips: [(&str, usize, u8, &str); 3] = [
        (
            "channel_response_flip_ephemeral",
            0,
            0x01,
            "channel_response_not_found with bit 0 of e flipped",
        ),
        (
            "channel_response_flip_ciphertext",
            32 + 100,
            0x01,
            "channel_response_not_found with one bit of the encrypted payload flipped",
        ),
        (
            "channel_response_flip_tag",
            last,
            0x80,
            "channel_response_not_found with one bit of the tag flipped",
        ),
    ];
    for (name, offset, mask, comment) in flips {
        v.push(bad_response(
            name,
            "unauthentic",
            UNAUTHENTIC,
            comment,
            flip(&base, offset, mask),
        ));
    }
    v.push(bad_response(
        "channel_response_to_another_ephemeral",
        "unauthentic",
        UNAUTHENTIC,
        "the vault's NotFound to another Status request (another initiator ephemeral key)",
        response_to(
            &channel_secret_a(),
            ACCOUNT,
            &Request::Status,
            &ephemeral("another status request"),
            "channel_response_to_another_ephemeral",
        ),
    ));
    v.push(bad_response(
        "channel_response_to_another_request",
        "unauthentic",
        UNAUTHENTIC,
        "the vault's NotFound to a Challenge request made with the same ephemeral key: the \
         response is bound to the request's ciphertext too",
        response_to(
            &channel_secret_a(),
            ACCOUNT,
            &Request::Challenge,
            &e1,
            "channel_response_to_another_request",
        ),
    ));
    v.push(bad_response(
        "channel_response_from_other_fleet",
        "unauthentic",
        UNAUTHENTIC,
        "another fleet's NotFound to a Status request the same ephemeral key sealed to that fleet",
        response_to(
            &channel_secret_b(),
            ACCOUNT,
            &Request::Status,
            &e1,
            "channel_response_from_other_fleet",
        ),
    ));
    v.push(bad_response(
        "channel_response_for_other_account",
        "unauthentic",
        UNAUTHENTIC,
        "the vault's NotFound to the same ephemeral key's Status request for +15550002",
        response_to(
            &channel_secret_a(),
            OTHER_ACCOUNT,
            &Request::Status,
            &e1,
            "channel_response_for_other_account",
        ),
    ));
    v.push(bad_response(
        "channel_response_reflected_request",
        "unauthentic",
        UNAUTHENTIC,
        "the client's own message 1 handed back as message 2",
        status_request_message(),
    ));
    v.push(bad_response(
        "channel_response_truncated",
        "unauthentic",
        UNAUTHENTIC,
        "channel_response_not_found without its last byte",
        base[..last].to_vec(),
    ));
    let not_found = json(&Response::NotFound);
    let mut padding = wire::pad(&not_found);
    padding[wire::PAD_BLOCK / 2] = 0x20;
    v.push(malformed_response(
        "channel_response_padding_not_zeros",
        PADDING,
        "authentic; a NotFound payload with a 0x20 in its padding",
        padding,
    ));
    let mut long = wire::pad(&not_found);
    long[..2].copy_from_slice(&u16::MAX.to_be_bytes());
    v.push(malformed_response(
        "channel_response_length_past_payload",
        LENGTH,
        "authentic; a one-block payload whose length prefix says 65535",
        long,
    ));
    v.push(malformed_response(
        "channel_response_request_in_place_of_response",
        JSON,
        "authentic and well padded; the body is a request (Challenge), not a response",
        wire::pad(br#""Challenge""#),
    ));
    let five = wire::pad(&json(&response_of_json_len(4 * wire::PAD_BLOCK + 100)));
    v.push(
        Response2 {
            name: "channel_response_five_blocks",
            expect: "too large",
            error: Some(TOO_LARGE),
            comment:
                "authentic, and well framed in five blocks, but longer than the 4144-byte limit",
            responder_ephemeral: None,
            response: None,
            payload: None,
            message: hostile_response("channel_response_five_blocks", &five),
        }
        .vector(),
    );
    v
}
