//! The channel's framing over Noise NK: the prologue, the padded payload, the size limits,
//! and what a receiver concludes from a message.
//!
//! ```text
//! prologue = "coffer/v2/vault/channel\0" || len(account) (2, BE) || account
//! payload  = len(JSON) (2, BE) || JSON || zeros, a whole number (1..=4) of 1024-byte blocks
//! message  = at most 32 + 4096 + 16 bytes, refused unread when longer
//! ```

use super::{labels, noise, shape, u16_prefix};

pub const PAD_BLOCK: usize = 1024;
pub const MAX_PAYLOAD: usize = 4 * PAD_BLOCK;
pub const MAX_MESSAGE: usize = 32 + MAX_PAYLOAD + 16;

pub fn prologue(account: &[u8]) -> Vec<u8> {
    let mut out = labels::CHANNEL_PROLOGUE.to_vec();
    out.extend_from_slice(&u16_prefix(account));
    out.extend_from_slice(account);
    out
}

/// The padded payload around `body`, in as many whole blocks as it needs (no upper bound
/// here: the generator uses this to build oversized messages too).
pub fn pad(body: &[u8]) -> Vec<u8> {
    let len = u16::try_from(body.len()).expect("a body of at most 65535 bytes");
    let blocks = (2 + body.len()).div_ceil(PAD_BLOCK);
    let mut out = vec![0u8; blocks * PAD_BLOCK];
    out[..2].copy_from_slice(&len.to_be_bytes());
    out[2..2 + body.len()].copy_from_slice(body);
    out
}

/// The JSON body of an authentic payload, or why it is not one.
pub fn unpad(payload: &[u8]) -> Result<&[u8], &'static str> {
    if payload.is_empty() || payload.len() % PAD_BLOCK != 0 {
        return Err("not whole blocks");
    }
    let len = usize::from(u16::from_be_bytes([payload[0], payload[1]]));
    if 2 + len > payload.len() {
        return Err("length past the payload");
    }
    if payload[2 + len..].iter().any(|&b| b != 0) {
        return Err("padding not zeros");
    }
    Ok(&payload[2..2 + len])
}

/// What a receiver makes of a message: the authentic payload and its JSON body...
pub struct Opened {
    pub payload: Vec<u8>,
    pub body: Vec<u8>,
}

/// ...or the failure, as a vector's `expect:` names it, with the authentic payload if there
/// was one.
pub type Refused = (&'static str, Option<Vec<u8>>);

fn judge(payload: Option<Vec<u8>>, is_message: fn(&[u8]) -> bool) -> Result<Opened, Refused> {
    let Some(payload) = payload else {
        return Err(("unauthentic", None));
    };
    let body = match unpad(&payload) {
        Ok(body) => body.to_vec(),
        Err(_) => return Err(("malformed", Some(payload))),
    };
    if !is_message(&body) {
        return Err(("malformed", Some(payload)));
    }
    Ok(Opened { payload, body })
}

/// The vault's side: message 1 for `account`, read with the fleet's channel secret.
pub fn open_request(
    static_secret: &[u8; 32],
    account: &[u8],
    message: &[u8],
) -> Result<(Opened, noise::Responder), Refused> {
    if message.len() > MAX_MESSAGE {
        return Err(("too large", None));
    }
    match noise::read_request(static_secret, &prologue(account), message) {
        None => Err(("unauthentic", None)),
        Some((payload, responder)) => {
            judge(Some(payload), shape::is_request).map(|opened| (opened, responder))
        }
    }
}

/// The client's side: message 2, read with the state message 1 left.
pub fn open_response(state: &noise::Initiator, message: &[u8]) -> Result<Opened, Refused> {
    if message.len() > MAX_MESSAGE {
        return Err(("too large", None));
    }
    judge(noise::read_response(state, message), shape::is_response)
}
