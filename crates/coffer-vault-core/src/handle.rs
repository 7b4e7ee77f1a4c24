//! One request as a vault node sees it: a channel message and a sealed record in, a sealed
//! record change and (once that change is durable) a channel message out. Still pure; the
//! node adds only storage.

use rand_core::{CryptoRng, RngCore};

use crate::channel::{self, ChannelError, Responder};
use crate::messages::{Failure, Response};
use crate::record::Record;
use crate::step::{step, Change};
use crate::{Fleet, VaultError};

/// A change to one stored (sealed) record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    None,
    Put(Vec<u8>),
    Delete,
}

/// A handled request whose answer waits for its record change to be durable.
#[derive(Debug)]
pub struct Handled {
    /// Commit this, durably, before calling [`Handled::answer`].
    pub update: Update,
    /// A vault-side error behind a `Failed` answer, for the operator's log (never secret).
    pub error: Option<VaultError>,
    response: Response,
    responder: Responder,
}

impl Handled {
    /// The sealed answer, once [`Handled::update`] is durable.
    pub fn answer(self) -> Result<Vec<u8>, ChannelError> {
        self.responder.seal(&self.response)
    }

    /// The sealed answer when committing failed: nothing the step produced (an OPRF
    /// evaluation, say) leaves the vault.
    pub fn unavailable(self) -> Result<Vec<u8>, ChannelError> {
        self.responder.seal(&Response::Failed {
            failure: Failure::Unavailable,
        })
    }
}

/// Opens `message` (a channel message for `account`), runs the step over the stored record,
/// and seals the record change. A message that does not open is an error: there is nobody
/// to answer.
pub fn handle<R: RngCore + CryptoRng>(
    fleet: &Fleet,
    account: &[u8],
    stored: Option<&[u8]>,
    message: &[u8],
    rng: &mut R,
) -> Result<Handled, ChannelError> {
    let (request, responder) = channel::open_request(fleet, account, message)?;
    let failed = |failure, error, responder| Handled {
        update: Update::None,
        error: Some(error),
        response: Response::Failed { failure },
        responder,
    };
    let record = match stored.map(|s| Record::open(s, fleet, account)).transpose() {
        Ok(record) => record,
        Err(e) => return Ok(failed(Failure::RecordDamaged, e, responder)),
    };
    let outcome = step(fleet, account, record, request, rng).and_then(|s| {
        let update = match s.change {
            Change::None => Update::None,
            Change::Put(record) => Update::Put(record.seal(fleet, account, rng)?),
            Change::Delete => Update::Delete,
        };
        Ok((s.response, update))
    });
    Ok(match outcome {
        Ok((response, update)) => Handled {
            update,
            error: None,
            response,
            responder,
        },
        Err(e @ VaultError::BadRecord) => failed(Failure::RecordDamaged, e, responder),
        Err(e) => failed(Failure::Unavailable, e, responder),
    })
}
