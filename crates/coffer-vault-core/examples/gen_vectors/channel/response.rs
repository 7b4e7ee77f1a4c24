//! Message 2 vectors: what the client that sent a request vector (`channel_request_status`,
//! unless said) makes of a response.

use coffer_vault_core::{Request, Response};

use super::super::fixtures::*;
use super::super::spec::wire;
use super::super::Vector;
use super::*;

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

/// The request vector a response answers: its name and request.
struct Answering {
    name: &'static str,
    request: Request,
}

impl Answering {
    fn status() -> Answering {
        Answering {
            name: "channel_request_status",
            request: Request::Status { nonce: vec![] },
        }
    }

    fn message(&self) -> Vec<u8> {
        sealed_request(
            &channel_secret_a(),
            ACCOUNT,
            &self.request,
            &ephemeral(self.name),
        )
    }
}

struct Response2<'a> {
    name: &'a str,
    answering: Answering,
    expect: &'a str,
    error: Option<&'a str>,
    comment: &'a str,
    responder_ephemeral: Option<[u8; 32]>,
    response: Option<&'a Response>,
    payload: Option<Vec<u8>>,
    message: Vec<u8>,
}

impl Response2<'_> {
    /// A response vector is read by the client that sent `self.answering`.
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
                &ephemeral(self.answering.name),
            )
            .text(
                "request",
                String::from_utf8(json(&self.answering.request)).expect("UTF-8"),
            )
            .hex("request message", &self.answering.message());
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
    good_response_to(Answering::status(), name, comment, response)
}

fn good_response_to(
    answering: Answering,
    name: &str,
    comment: &str,
    response: &Response,
) -> Vector {
    let e = responder_ephemeral(name);
    let request_message = answering.message();
    Response2 {
        name,
        answering,
        expect: "success",
        error: None,
        comment,
        responder_ephemeral: Some(e),
        response: Some(response),
        payload: Some(wire::pad(&json(response))),
        message: sealed_response(&channel_secret_a(), ACCOUNT, &request_message, &e, response),
    }
    .vector()
}

fn bad_response(name: &str, expect: &str, error: &str, comment: &str, message: Vec<u8>) -> Vector {
    Response2 {
        name,
        answering: Answering::status(),
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
        answering: Answering::status(),
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
        good_response_to(
            Answering {
                name: "channel_request_recover_finish",
                request: recover_finish(),
            },
            "channel_response_superseded",
            "Superseded (a unit variant: a JSON string) answering channel_request_recover_finish, \
             whose login another RecoverStart replaced",
            &Response::Superseded,
        ),
        good_response_to(
            Answering {
                name: "channel_request_status_with_nonce",
                request: status_with_nonce(),
            },
            "channel_response_status_with_proof",
            "a live record's Status answering channel_request_status_with_nonce: the proof is \
             the ownership vector's",
            &Response::Status {
                locked: false,
                guesses_left: 7,
                max_guesses: 10,
                proof: super::super::spec::keys::ownership_proof(
                    &coffer_vault_core::derive_auth_key(&k_a())[..],
                    ACCOUNT,
                    &fixed32("status nonce 1"),
                ),
            },
        ),
        good_response_to(
            Answering {
                name: "channel_request_recover_start",
                request: recover_start(),
            },
            "channel_response_recover_started",
            "RecoverStarted answering channel_request_recover_start: a 16-byte login id, a \
             320-byte OPAQUE CredentialResponse, the default Argon2id parameters, 9 guesses left",
            &Response::RecoverStarted {
                login_id: login_id(),
                response: pseudo_random("a CredentialResponse", 320),
                ksf: coffer_vault_core::KsfParams::DEFAULT,
                guesses_left: 9,
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
            &Request::Status { nonce: vec![] },
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
            &Request::Status { nonce: vec![] },
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
            &Request::Status { nonce: vec![] },
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
            answering: Answering::status(),
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
