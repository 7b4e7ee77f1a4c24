//! The end-to-end channel between a client and the vault: one Noise NK handshake
//! (`Noise_NK_25519_ChaChaPoly_SHA256`, through `snow`) per request.
//!
//! The client knows the fleet's static channel key in advance (it pinned the fleet); the
//! client itself stays anonymous to the vault (the front-end vouches for the account). Message 1 (`e, es` + request) can only be read by the fleet; message 2
//! (`e, ee` + response) can only come from the fleet and be read by the ephemeral key that
//! sent message 1. The prologue carries the protocol label and the account id, so a message
//! relayed for another account does not open. Payloads are `len (2) || JSON || zeros`, padded
//! to a multiple of [`PAD_BLOCK`] bytes, so that sizes do not tell response types apart.
//!
//! What Noise NK leaves to the layer above, and where it is handled: message 1 can be
//! replayed, and anyone may write one (the initiator is anonymous). Every request that
//! changes something is therefore bound to fresh vault state: a login's pending OPAQUE state,
//! a registration id, or a single-use challenge (docs/PROTOCOL.md).

use serde::de::DeserializeOwned;
use serde::Serialize;
use snow::{Builder, HandshakeState};

use crate::fleet::{Fleet, FleetKeys};
use crate::labels;
use crate::messages::{Request, Response};

/// How a channel message crosses HTTP, on both hops: `{"message": "<lower-case hex>"}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    #[serde(with = "crate::hex")]
    pub message: Vec<u8>,
}

/// The Noise protocol name.
pub const PATTERN: &str = "Noise_NK_25519_ChaChaPoly_SHA256";
/// Payloads are padded to a multiple of this many bytes.
pub const PAD_BLOCK: usize = 1024;
/// Largest padded payload.
pub const MAX_PAYLOAD: usize = 4 * PAD_BLOCK;
/// Largest channel message: an ephemeral key, a padded payload and its tag.
pub const MAX_MESSAGE: usize = 32 + MAX_PAYLOAD + 16;

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// Altered, relayed for another account, or not made for (or by) this fleet.
    #[error("the channel message does not authenticate: altered, for another account, or not from the pinned fleet")]
    Unauthentic,
    /// It authenticated, but what it carries is not a message of this protocol.
    #[error("the channel message carries no valid message: {0}")]
    Malformed(String),
    #[error("the message is larger than the channel allows")]
    TooLarge,
    #[error("the channel could not be set up: {0}")]
    Setup(String),
}

fn prologue(account: &[u8]) -> Vec<u8> {
    let mut out = labels::CHANNEL_PROLOGUE.to_vec();
    out.extend_from_slice(&(account.len() as u16).to_be_bytes());
    out.extend_from_slice(account);
    out
}

fn setup(e: snow::Error) -> ChannelError {
    ChannelError::Setup(e.to_string())
}

fn pad<T: Serialize>(message: &T) -> Result<zeroize::Zeroizing<Vec<u8>>, ChannelError> {
    let json = zeroize::Zeroizing::new(
        serde_json::to_vec(message).map_err(|e| ChannelError::Malformed(e.to_string()))?,
    );
    let padded = (2 + json.len()).div_ceil(PAD_BLOCK) * PAD_BLOCK;
    if padded > MAX_PAYLOAD {
        return Err(ChannelError::TooLarge);
    }
    let mut out = zeroize::Zeroizing::new(vec![0u8; padded]);
    out[..2].copy_from_slice(&(json.len() as u16).to_be_bytes());
    out[2..2 + json.len()].copy_from_slice(&json);
    Ok(out)
}

fn unpad<T: DeserializeOwned>(payload: &[u8]) -> Result<T, ChannelError> {
    let malformed = |why: &str| ChannelError::Malformed(why.to_string());
    if payload.len() < 2 || payload.len() % PAD_BLOCK != 0 {
        return Err(malformed("the payload is not padded to whole blocks"));
    }
    let len = u16::from_be_bytes([payload[0], payload[1]]) as usize;
    let body = payload
        .get(2..2 + len)
        .ok_or_else(|| malformed("the length runs past the payload"))?;
    if payload[2 + len..].iter().any(|&b| b != 0) {
        return Err(malformed("the padding is not zeros"));
    }
    serde_json::from_slice(body).map_err(|e| ChannelError::Malformed(e.to_string()))
}

fn write(hs: &mut HandshakeState, payload: &[u8]) -> Result<Vec<u8>, ChannelError> {
    let mut out = vec![0u8; 32 + payload.len() + 16];
    let n = hs.write_message(payload, &mut out).map_err(setup)?;
    out.truncate(n);
    Ok(out)
}

fn read(
    hs: &mut HandshakeState,
    message: &[u8],
) -> Result<zeroize::Zeroizing<Vec<u8>>, ChannelError> {
    if message.len() > MAX_MESSAGE {
        return Err(ChannelError::TooLarge);
    }
    let mut payload = zeroize::Zeroizing::new(vec![0u8; message.len()]);
    let n = hs
        .read_message(message, &mut payload)
        .map_err(|_| ChannelError::Unauthentic)?;
    payload.truncate(n);
    Ok(payload)
}

/// A request on its way; opens the one response it was sent for.
pub struct PendingResponse {
    hs: HandshakeState,
}

impl std::fmt::Debug for PendingResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingResponse")
    }
}

/// The client's side: `request` for `account`, readable only by the fleet with `keys`.
pub fn seal_request(
    keys: &FleetKeys,
    account: &[u8],
    request: &Request,
) -> Result<(Vec<u8>, PendingResponse), ChannelError> {
    seal_request_inner(keys, account, request, None)
}

/// [`seal_request`] with a fixed ephemeral key, for test vectors only: a fixed ephemeral key
/// makes message 1 deterministic, which is all a vector needs and everything a real client
/// must never do.
#[doc(hidden)]
pub fn seal_request_for_test_vectors(
    keys: &FleetKeys,
    account: &[u8],
    request: &Request,
    ephemeral: &[u8; 32],
) -> Result<(Vec<u8>, PendingResponse), ChannelError> {
    seal_request_inner(keys, account, request, Some(ephemeral))
}

fn seal_request_inner(
    keys: &FleetKeys,
    account: &[u8],
    request: &Request,
    ephemeral: Option<&[u8; 32]>,
) -> Result<(Vec<u8>, PendingResponse), ChannelError> {
    let params = PATTERN.parse().map_err(setup)?;
    let prologue = prologue(account);
    let mut builder = Builder::new(params)
        .remote_public_key(&keys.channel)
        .map_err(setup)?
        .prologue(&prologue)
        .map_err(setup)?;
    if let Some(e) = ephemeral {
        builder = builder.fixed_ephemeral_key_for_testing_only(e);
    }
    let mut hs = builder.build_initiator().map_err(setup)?;
    let message = write(&mut hs, &pad(request)?)?;
    Ok((message, PendingResponse { hs }))
}

impl PendingResponse {
    /// The response, if `message` is the fleet's answer to this request.
    pub fn open(mut self, message: &[u8]) -> Result<Response, ChannelError> {
        unpad(&read(&mut self.hs, message)?)
    }
}

/// The vault's side of one request: seals the one response.
pub struct Responder {
    hs: HandshakeState,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Responder")
    }
}

/// Opens a request sent to `fleet` for `account`.
pub fn open_request(
    fleet: &Fleet,
    account: &[u8],
    message: &[u8],
) -> Result<(Request, Responder), ChannelError> {
    open_request_inner(fleet, account, message, None)
}

/// [`open_request`] with a fixed ephemeral key for the response, for test vectors only: it
/// makes message 2 deterministic, which is all a vector needs and everything a real vault
/// must never do.
#[doc(hidden)]
pub fn open_request_for_test_vectors(
    fleet: &Fleet,
    account: &[u8],
    message: &[u8],
    ephemeral: &[u8; 32],
) -> Result<(Request, Responder), ChannelError> {
    open_request_inner(fleet, account, message, Some(ephemeral))
}

fn open_request_inner(
    fleet: &Fleet,
    account: &[u8],
    message: &[u8],
    ephemeral: Option<&[u8; 32]>,
) -> Result<(Request, Responder), ChannelError> {
    let params = PATTERN.parse().map_err(setup)?;
    let prologue = prologue(account);
    let mut builder = Builder::new(params)
        .local_private_key(fleet.channel_secret())
        .map_err(setup)?
        .prologue(&prologue)
        .map_err(setup)?;
    if let Some(e) = ephemeral {
        builder = builder.fixed_ephemeral_key_for_testing_only(e);
    }
    let mut hs = builder.build_responder().map_err(setup)?;
    let request = unpad(&read(&mut hs, message)?)?;
    Ok((request, Responder { hs }))
}

impl Responder {
    pub fn seal(mut self, response: &Response) -> Result<Vec<u8>, ChannelError> {
        write(&mut self.hs, &pad(response)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    fn fleet() -> Fleet {
        Fleet::generate(&mut OsRng, 10).unwrap()
    }

    #[test]
    fn a_request_and_its_response_cross_only_between_the_client_and_its_fleet() {
        let f = fleet();
        let (m1, pending) =
            seal_request(f.keys(), b"alice", &Request::Status { nonce: vec![] }).unwrap();
        assert_eq!(m1.len(), 32 + PAD_BLOCK + 16);
        let (req, responder) = open_request(&f, b"alice", &m1).unwrap();
        assert_eq!(req, Request::Status { nonce: vec![] });
        let m2 = responder.seal(&Response::NotFound).unwrap();
        assert_eq!(pending.open(&m2).unwrap(), Response::NotFound);
    }

    #[test]
    fn altered_misrouted_foreign_and_replayed_messages_do_not_open() {
        let f = fleet();
        let other = fleet();
        let (m1, _) = seal_request(f.keys(), b"alice", &Request::Status { nonce: vec![] }).unwrap();
        for i in [0, 31, 32, 100, m1.len() - 1] {
            let mut bad = m1.clone();
            bad[i] ^= 1;
            assert!(matches!(
                open_request(&f, b"alice", &bad),
                Err(ChannelError::Unauthentic)
            ));
        }
        assert!(matches!(
            open_request(&f, b"bob", &m1),
            Err(ChannelError::Unauthentic)
        ));
        assert!(matches!(
            open_request(&other, b"alice", &m1),
            Err(ChannelError::Unauthentic)
        ));
        assert!(open_request(&f, b"alice", &m1[..m1.len() - 1]).is_err());
        assert!(open_request(&f, b"alice", &[]).is_err());

        // A response from another fleet, or to another request, or altered, is refused.
        let (m1, pending) =
            seal_request(f.keys(), b"alice", &Request::Status { nonce: vec![] }).unwrap();
        let (m1b, _) =
            seal_request(other.keys(), b"alice", &Request::Status { nonce: vec![] }).unwrap();
        let (_, foreign) = open_request(&other, b"alice", &m1b).unwrap();
        let forged = foreign.seal(&Response::NotFound).unwrap();
        assert!(matches!(
            pending.open(&forged),
            Err(ChannelError::Unauthentic)
        ));
        let (_, responder) = open_request(&f, b"alice", &m1).unwrap();
        let mut m2 = responder.seal(&Response::NotFound).unwrap();
        m2[40] ^= 1;
        let (m1c, pending_c) =
            seal_request(f.keys(), b"alice", &Request::Status { nonce: vec![] }).unwrap();
        assert!(matches!(
            pending_c.open(&m2),
            Err(ChannelError::Unauthentic)
        ));
        let (_, r) = open_request(&f, b"alice", &m1c).unwrap();
        assert!(r.seal(&Response::Deleted).is_ok());
    }

    #[test]
    fn sizes_come_in_whole_blocks_and_oversized_payloads_are_refused() {
        let f = fleet();
        let (_, responder) = {
            let (m1, _) = seal_request(f.keys(), b"a", &Request::Status { nonce: vec![] }).unwrap();
            open_request(&f, b"a", &m1).unwrap()
        };
        let small = responder.seal(&Response::Locked).unwrap();
        assert_eq!(small.len(), 32 + PAD_BLOCK + 16);
        let huge = Request::RecoverStart {
            request: vec![0; MAX_PAYLOAD],
        };
        assert!(matches!(
            seal_request(f.keys(), b"a", &huge),
            Err(ChannelError::TooLarge)
        ));
        assert!(matches!(
            open_request(&f, b"a", &vec![0u8; MAX_MESSAGE + 1]),
            Err(ChannelError::TooLarge)
        ));
    }
}
