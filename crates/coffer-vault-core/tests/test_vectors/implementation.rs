//! Every vector through the crate: its channel, records, transport, authorizations and
//! ownership proofs (through the vault's own `step`, in [`proofs`]), derivations and fleet
//! secrets.

use coffer_vault_core::channel::{self, ChannelError};
use coffer_vault_core::{
    client, derive_auth_key, seal_k_transport_for_test_vectors, step, Fleet, FleetKeys, Record,
    Request, Response, Suite, VaultError,
};
use opaque_ke::{RegistrationRequest, ServerRegistration, ServerSetup};
use rand_core::{OsRng, RngCore};

use crate::gen_vectors::fixtures::Scripted;
use crate::Vector;

mod proofs;

pub(crate) type Outcome = Result<(), String>;

pub(crate) fn ensure(ok: bool, what: impl FnOnce() -> String) -> Outcome {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

pub fn check(v: &Vector) -> Outcome {
    match v.format() {
        "channel request" => channel_request(v),
        "channel response" => channel_response(v),
        "record" => record(v),
        "transport" => transport(v),
        "auth key" => ensure(*derive_auth_key(&v.key("k")) == v.key("auth key"), || {
            "derive_auth_key gives another auth key".into()
        }),
        "authorization" => proofs::authorization(v),
        "ownership proof" => proofs::ownership(v),
        "credential identifier" => credential_identifier(v),
        "fleet keys" => fleet_keys(v),
        "fleet secrets" => fleet_secrets(v),
        other => Err(format!("no check for {other:?}")),
    }
}

/// A fleet with the given sealing key and channel secret; whatever is not given, the OPAQUE
/// setup included, is fresh and random: the formats must depend on nothing else.
pub fn fleet_with(sealing_key: Option<[u8; 32]>, channel_secret: Option<[u8; 32]>) -> Fleet {
    let random = Fleet::generate(&mut OsRng, 10).expect("a fleet").to_bytes();
    let mut bytes = random.to_vec();
    if let Some(k) = sealing_key {
        bytes[3..35].copy_from_slice(&k);
    }
    if let Some(k) = channel_secret {
        bytes[35..67].copy_from_slice(&k);
    }
    Fleet::from_bytes(&bytes).expect("fleet secrets parse")
}

fn channel_keys(v: &Vector) -> FleetKeys {
    let mut opaque = vec![0u8; 32];
    OsRng.fill_bytes(&mut opaque);
    FleetKeys {
        channel: v.bytes("responder static public"),
        opaque,
    }
}

/// The `expect:` category and the `error:` spelling of a channel error.
fn channel_error(e: &ChannelError) -> (&'static str, String) {
    match e {
        ChannelError::Unauthentic => ("unauthentic", "Unauthentic".into()),
        ChannelError::TooLarge => ("too large", "TooLarge".into()),
        ChannelError::Malformed(why) => {
            let framing = [
                "the padding is not zeros",
                "the length runs past the payload",
                "the payload is not padded to whole blocks",
            ];
            let why = if framing.contains(&why.as_str()) {
                why.as_str()
            } else {
                "not a message of this protocol"
            };
            ("malformed", format!("Malformed: {why}"))
        }
        ChannelError::Setup(why) => ("setup", format!("Setup: {why}")),
    }
}

/// A message's `Debug`, cut short for a failure report.
pub(crate) fn short<T: std::fmt::Debug>(message: &T) -> String {
    let text = format!("{message:?}");
    if text.chars().count() > 120 {
        text.chars().take(120).chain("...".chars()).collect()
    } else {
        text
    }
}

fn channel_outcome<T: PartialEq + std::fmt::Debug>(
    v: &Vector,
    got: Result<T, ChannelError>,
    want: impl FnOnce() -> T,
) -> Outcome {
    match (v.expect(), got) {
        ("success", Ok(message)) => {
            let want = want();
            ensure(message == want, || {
                format!("opened {message:?}, want {want:?}")
            })
        }
        (expect, Ok(message)) => Err(format!("opened {}, expected {expect:?}", short(&message))),
        (expect, Err(e)) => {
            let (category, detail) = channel_error(&e);
            ensure(
                category == expect && Some(detail.as_str()) == v.opt_text("error"),
                || {
                    format!(
                        "{category} ({detail}), expected {expect} ({:?})",
                        v.opt_text("error")
                    )
                },
            )
        }
    }
}

fn json<T: serde::de::DeserializeOwned>(v: &Vector, field: &str) -> T {
    serde_json::from_str(v.text(field)).unwrap_or_else(|e| panic!("{}: {field}: {e}", v.name))
}

fn channel_request(v: &Vector) -> Outcome {
    let fleet = fleet_with(None, Some(v.key("responder static secret")));
    ensure(
        fleet.keys().channel == v.bytes("responder static public"),
        || "the static public key is not the secret's".into(),
    )?;
    let account = v.bytes("account");
    let opened = channel::open_request(&fleet, &account, &v.bytes("message")).map(|(r, _)| r);
    channel_outcome(v, opened, || json::<Request>(v, "request"))?;
    // The seal side: the same ephemeral key and request give the same message.
    if let (Some(e), "success") = (v.opt_key("initiator ephemeral secret"), v.expect()) {
        let request: Request = json(v, "request");
        let (message, _) =
            channel::seal_request_for_test_vectors(&channel_keys(v), &account, &request, &e)
                .map_err(|e| format!("sealing: {e}"))?;
        ensure(message == v.bytes("message"), || {
            "sealing gives another message".into()
        })?;
    }
    Ok(())
}

fn channel_response(v: &Vector) -> Outcome {
    let account = v.bytes("account");
    let request: Request = json(v, "request");
    let (request_message, pending) = channel::seal_request_for_test_vectors(
        &channel_keys(v),
        &account,
        &request,
        &v.key("initiator ephemeral secret"),
    )
    .map_err(|e| format!("sealing the request: {e}"))?;
    ensure(request_message == v.bytes("request message"), || {
        "the request seals to another message 1".into()
    })?;
    channel_outcome(v, pending.open(&v.bytes("message")), || {
        json::<Response>(v, "response")
    })?;
    if let (Some(e), "success") = (v.opt_key("responder ephemeral secret"), v.expect()) {
        let fleet = fleet_with(None, Some(v.key("responder static secret")));
        let (opened, responder) =
            channel::open_request_for_test_vectors(&fleet, &account, &request_message, &e)
                .map_err(|e| format!("opening the request: {e}"))?;
        ensure(opened == request, || "the request opens to another".into())?;
        let message = responder
            .seal(&json(v, "response"))
            .map_err(|e| format!("sealing the response: {e}"))?;
        ensure(message == v.bytes("message"), || {
            "sealing gives another message 2".into()
        })?;
    }
    Ok(())
}

fn record(v: &Vector) -> Outcome {
    let fleet = fleet_with(Some(v.key("sealing key")), None);
    let account = v.bytes("account");
    match v.expect() {
        "success" => {
            let want: Record = json(v, "record");
            let opened = Record::open(&v.bytes("sealed"), &fleet, &account)
                .map_err(|e| format!("does not open: {e}"))?;
            ensure(opened == want, || {
                format!("opened {opened:?}, want {want:?}")
            })?;
            let nonce = v.bytes("nonce");
            let mut rng = Scripted::new(&nonce);
            let sealed = want
                .seal(&fleet, &account, &mut rng)
                .map_err(|e| format!("sealing: {e}"))?;
            ensure(sealed == v.bytes("sealed") && rng.is_spent(), || {
                "sealing gives another record".into()
            })
        }
        "bad record" => match Record::open(&v.bytes("sealed"), &fleet, &account) {
            Err(VaultError::BadRecord) => Ok(()),
            Err(e) => Err(format!("{e}, expected BadRecord")),
            Ok(r) => Err(format!("opened {r:?}")),
        },
        "too large" => {
            let record: Record = json(v, "record");
            match record.seal(&fleet, &account, &mut OsRng) {
                Err(VaultError::Internal(_)) => Ok(()),
                other => Err(format!("sealing gave {other:?}")),
            }
        }
        other => Err(format!("no check for {other:?}")),
    }
}

fn transport(v: &Vector) -> Outcome {
    let session_key = v.bytes("session key");
    let opened = client::open_k_transport(&session_key, &v.bytes("sealed"));
    match (v.expect(), opened) {
        ("success", Some(blob)) => {
            ensure(*blob == v.bytes("k blob"), || {
                "opens to another K blob".into()
            })?;
            let mut rng = Scripted::new(&v.bytes("nonce"));
            let sealed = seal_k_transport_for_test_vectors(&session_key, &blob, &mut rng)
                .map_err(|e| format!("sealing: {e}"))?;
            ensure(sealed == v.bytes("sealed") && rng.is_spent(), || {
                "sealing gives other bytes".into()
            })
        }
        ("does not open", None) => Ok(()),
        (expect, got) => Err(format!("opened: {}, expected {expect:?}", got.is_some())),
    }
}

/// The vault's OPRF evaluation at `RegisterStart` is keyed by the credential identifier:
/// it must be the one opaque-ke computes for the vector's bytes.
fn credential_identifier(v: &Vector) -> Outcome {
    let fleet = fleet_with(None, None);
    let setup = ServerSetup::<Suite>::deserialize(&fleet.to_bytes()[67..]).expect("a setup");
    let request = crate::binding::registration_request();
    let registration_id = v.bytes("registration id");
    let mut rng = Scripted::new(&registration_id);
    let answer = step(
        &fleet,
        &v.bytes("account"),
        None,
        Request::RegisterStart {
            request: request.clone(),
            authorization: None,
        },
        &mut rng,
    )
    .map_err(|e| format!("step: {e}"))?
    .response;
    let Response::RegisterStarted {
        registration_id: issued,
        response,
    } = answer
    else {
        return Err(format!("the vault answered {answer:?}"));
    };
    ensure(issued == registration_id, || {
        "another registration id".into()
    })?;
    let expected = ServerRegistration::<Suite>::start(
        &setup,
        RegistrationRequest::deserialize(&request).expect("a request"),
        &v.bytes("credential identifier"),
    )
    .expect("an evaluation")
    .message
    .serialize()
    .to_vec();
    ensure(response == expected, || {
        "the vault's OPRF key is not the vector's credential identifier's".into()
    })
}

fn fleet_keys(v: &Vector) -> Outcome {
    let keys = FleetKeys {
        channel: v.bytes("channel key"),
        opaque: v.bytes("opaque key"),
    };
    ensure(
        keys.fingerprint_bytes().to_vec() == v.bytes("fingerprint"),
        || "another fingerprint".into(),
    )?;
    let matches = keys.matches(v.text("pinned"));
    ensure(matches == (v.expect() == "match"), || {
        format!("matches() is {matches}")
    })
}

fn fleet_secrets(v: &Vector) -> Outcome {
    let bytes = v.bytes("fleet secrets");
    match (v.expect(), Fleet::from_bytes(&bytes)) {
        ("success", Ok(fleet)) => {
            let round_trip = fleet.to_bytes();
            let facts = [
                (
                    fleet.max_guesses().to_string() == v.text("max guesses"),
                    "max guesses",
                ),
                (
                    round_trip[3..35] == v.bytes("sealing key")[..],
                    "sealing key",
                ),
                (
                    round_trip[35..67] == v.bytes("channel secret")[..],
                    "channel secret",
                ),
                (
                    fleet.keys().channel == v.bytes("channel key"),
                    "channel key",
                ),
                (fleet.keys().opaque == v.bytes("opaque key"), "opaque key"),
                (
                    fleet.keys().fingerprint_bytes().to_vec() == v.bytes("fingerprint"),
                    "fingerprint",
                ),
                (*round_trip == bytes, "round trip"),
            ];
            match facts.iter().find(|(ok, _)| !ok) {
                Some((_, what)) => Err(format!("another {what}")),
                None => Ok(()),
            }
        }
        ("bad fleet", Err(VaultError::BadFleet)) => Ok(()),
        (expect, Err(e)) => Err(format!("{e}, expected {expect:?}")),
        (expect, Ok(_)) => Err(format!("parsed, expected {expect:?}")),
    }
}
