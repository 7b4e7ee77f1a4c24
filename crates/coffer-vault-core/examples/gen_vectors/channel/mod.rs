//! Channel vectors: message 1 as the vault opens it ([`request`]), message 2 as the client
//! opens it ([`response`]), and what both kinds are made with.

mod request;
mod response;

pub use request::request_vectors;
pub use response::response_vectors;

use coffer_vault_core::channel;
use coffer_vault_core::{Request, Response};

use super::fixtures::*;
use super::spec::{noise, wire};

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

/// The request most response vectors answer: `Status` for ACCOUNT to fleet A.
fn status_request_message() -> Vec<u8> {
    sealed_request(
        &channel_secret_a(),
        ACCOUNT,
        &Request::Status { nonce: vec![] },
        &ephemeral("channel_request_status"),
    )
}

/// The login id of `channel_response_recover_started`, which
/// `channel_request_recover_finish` names.
fn login_id() -> Vec<u8> {
    pseudo_random("a login id", 16)
}

/// The request of `channel_request_status_with_nonce` (the nonce of the `ownership` vector).
fn status_with_nonce() -> Request {
    Request::Status {
        nonce: fixed32("status nonce 1").to_vec(),
    }
}

/// The request of `channel_request_recover_start`.
fn recover_start() -> Request {
    Request::RecoverStart {
        request: pseudo_random("a CredentialRequest", 96),
    }
}

/// The request of `channel_request_recover_finish`.
fn recover_finish() -> Request {
    Request::RecoverFinish {
        login_id: login_id(),
        finalization: pseudo_random("a CredentialFinalization", 64),
    }
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
