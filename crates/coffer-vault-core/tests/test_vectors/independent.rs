//! Every vector through the independent implementation (`examples/gen_vectors/spec`): the
//! stated intermediate values (prologue, subkey, associated data, transport key, payloads)
//! are recomputed, messages and records are opened, and whatever has its inputs stated is
//! sealed again byte for byte.

use crate::spec::{keys, noise, record as rec, transport as tr, wire};
use crate::Vector;

type Outcome = Result<(), String>;

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Outcome {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

fn same(v: &Vector, field: &str, computed: &[u8]) -> Outcome {
    ensure(v.bytes(field) == computed, || {
        format!("{field} differs from the spec's")
    })
}

pub fn check(v: &Vector) -> Outcome {
    match v.format() {
        "channel request" => channel_request(v),
        "channel response" => channel_response(v),
        "record" => record(v),
        "transport" => transport(v),
        "auth key" => same(v, "auth key", &keys::auth_key(&v.key("k"))),
        "authorization" => authorization(v),
        "ownership proof" => ownership(v),
        "credential identifier" => same(
            v,
            "credential identifier",
            &keys::credential_identifier(&v.bytes("account"), &v.bytes("registration id")),
        ),
        "fleet keys" => fleet_keys(v),
        "fleet secrets" => fleet_secrets(v),
        other => Err(format!("no check for {other:?}")),
    }
}

/// Compares what a receiver made of a message with `expect:` and the stated payload and
/// JSON (`json_field`: `request` or `response`).
fn judge(v: &Vector, got: Result<wire::Opened, wire::Refused>, json_field: &str) -> Outcome {
    match (v.expect(), got) {
        ("success", Ok(opened)) => {
            same(v, "payload", &opened.payload)?;
            ensure(opened.body == v.text(json_field).as_bytes(), || {
                format!("the body is not the vector's {json_field}")
            })
        }
        (expect, Ok(_)) => Err(format!("opened, expected {expect:?}")),
        (expect, Err((category, payload))) => {
            ensure(category == expect, || {
                format!("{category}, expected {expect}")
            })?;
            match (v.opt_bytes("payload"), payload) {
                (Some(want), Some(got)) => {
                    ensure(want == got, || "another authentic payload".into())
                }
                (None, _) => Ok(()),
                (Some(_), None) => Err("no authentic payload, but the vector states one".into()),
            }
        }
    }
}

fn channel_request(v: &Vector) -> Outcome {
    let secret = v.key("responder static secret");
    let public = v.key("responder static public");
    let account = v.bytes("account");
    ensure(noise::public_key(&secret) == public, || {
        "the public key is not the secret's".into()
    })?;
    same(v, "prologue", &wire::prologue(&account))?;
    let message = v.bytes("message");
    judge(
        v,
        wire::open_request(&secret, &account, &message).map(|(o, _)| o),
        "request",
    )?;
    // Whatever states its ephemeral key and payload seals again to the same bytes.
    if let (Some(e), Some(payload)) = (
        v.opt_key("initiator ephemeral secret"),
        v.opt_bytes("payload"),
    ) {
        let (again, _) = noise::write_request(&public, &wire::prologue(&account), &e, &payload);
        ensure(again == message, || {
            "sealing again gives another message".into()
        })?;
    }
    Ok(())
}

fn channel_response(v: &Vector) -> Outcome {
    let secret = v.key("responder static secret");
    let public = v.key("responder static public");
    let account = v.bytes("account");
    ensure(noise::public_key(&secret) == public, || {
        "the public key is not the secret's".into()
    })?;
    same(v, "prologue", &wire::prologue(&account))?;
    let request_message = v.bytes("request message");
    let (again, initiator) = noise::write_request(
        &public,
        &wire::prologue(&account),
        &v.key("initiator ephemeral secret"),
        &wire::pad(v.text("request").as_bytes()),
    );
    ensure(again == request_message, || {
        "the request seals to another message 1".into()
    })?;
    let message = v.bytes("message");
    judge(v, wire::open_response(&initiator, &message), "response")?;
    if let (Some(e), Some(payload)) = (
        v.opt_key("responder ephemeral secret"),
        v.opt_bytes("payload"),
    ) {
        let (_, responder) =
            noise::read_request(&secret, &wire::prologue(&account), &request_message)
                .ok_or("the request does not open")?;
        ensure(
            noise::write_response(&responder, &e, &payload) == message,
            || "sealing again gives another message 2".into(),
        )?;
    }
    Ok(())
}

fn record(v: &Vector) -> Outcome {
    let key = v.key("sealing key");
    let account = v.bytes("account");
    if v.opt_text("subkey").is_some() {
        same(v, "subkey", &rec::subkey(&key, &account))?;
    }
    if v.opt_text("associated data").is_some() {
        same(
            v,
            "associated data",
            &rec::aad(crate::spec::VERSION, &account),
        )?;
    }
    match v.expect() {
        "success" => {
            let (padded, json) =
                rec::open(&key, &account, &v.bytes("sealed")).ok_or("does not open")?;
            same(v, "padded record", &padded)?;
            ensure(json == v.text("record").as_bytes(), || {
                "another record".into()
            })?;
            let nonce: [u8; 12] = v.bytes("nonce").try_into().map_err(|_| "a 12-byte nonce")?;
            same(v, "sealed", &rec::seal(&key, &account, &nonce, &json))
        }
        "bad record" => {
            ensure(
                rec::open(&key, &account, &v.bytes("sealed")).is_none(),
                || "opened".into(),
            )?;
            // An authentic hostile record: its stated plaintext seals to it.
            if let (Some(nonce), Some(padded)) =
                (v.opt_bytes("nonce"), v.opt_bytes("padded record"))
            {
                let nonce: [u8; 12] = nonce.try_into().map_err(|_| "a 12-byte nonce")?;
                let again = rec::seal_raw(
                    &rec::subkey(&key, &account),
                    crate::spec::VERSION,
                    &nonce,
                    &rec::aad(crate::spec::VERSION, &account),
                    &padded,
                );
                same(v, "sealed", &again)?;
            }
            Ok(())
        }
        "too large" => ensure(4 + v.text("record").len() > rec::PADDED_LEN, || {
            "the record fits".into()
        }),
        other => Err(format!("no check for {other:?}")),
    }
}

fn transport(v: &Vector) -> Outcome {
    let session_key = v.bytes("session key");
    let key = tr::key(&session_key);
    same(v, "transport key", &key)?;
    match (v.expect(), tr::open(&session_key, &v.bytes("sealed"))) {
        ("success", Some(blob)) => {
            same(v, "k blob", &blob)?;
            let nonce: [u8; 12] = v.bytes("nonce").try_into().map_err(|_| "a 12-byte nonce")?;
            same(
                v,
                "sealed",
                &tr::seal_raw(&key, &nonce, crate::spec::labels::K_TRANSPORT, &blob),
            )
        }
        ("does not open", None) => Ok(()),
        (expect, got) => Err(format!("opened: {}, expected {expect:?}", got.is_some())),
    }
}

fn authorization(v: &Vector) -> Outcome {
    let op = keys::operation_tag(v.text("operation")).ok_or("an unknown operation")?;
    let (auth_key, account, outstanding, request) = (
        v.bytes("auth key"),
        v.bytes("account"),
        v.bytes("outstanding challenge"),
        v.bytes("request"),
    );
    same(
        v,
        "mac",
        &keys::authorization_mac(&auth_key, &account, &outstanding, op, &request),
    )?;
    let presented = v
        .opt_bytes("presented challenge")
        .zip(v.opt_bytes("presented mac"));
    let (verdict, spent) = keys::judge_authorization(
        &auth_key,
        &account,
        &outstanding,
        op,
        &request,
        presented
            .as_ref()
            .map(|(c, m)| (c.as_slice(), m.as_slice())),
    );
    let spent = if spent { "yes" } else { "no" };
    ensure(
        verdict.name() == v.expect() && spent == v.text("challenge spent"),
        || format!("{} (challenge spent: {spent})", verdict.name()),
    )
}

fn ownership(v: &Vector) -> Outcome {
    let (auth_key, account, nonce) = (v.bytes("auth key"), v.bytes("account"), v.bytes("nonce"));
    same(
        v,
        "proof",
        &keys::ownership_proof(&auth_key, &account, &nonce),
    )?;
    let owned = keys::ownership_valid(&auth_key, &account, &nonce, &v.bytes("presented"));
    ensure(owned == (v.expect() == "owned"), || {
        format!("owned: {owned}")
    })
}

fn fleet_keys(v: &Vector) -> Outcome {
    let (channel, opaque) = (v.bytes("channel key"), v.bytes("opaque key"));
    let fingerprint = keys::fingerprint(&channel, &opaque);
    same(v, "fingerprint", &fingerprint)?;
    same(v, "opaque context", &keys::opaque_context(&fingerprint))?;
    let matches = keys::fingerprint_matches(&channel, &opaque, v.text("pinned"));
    ensure(matches == (v.expect() == "match"), || {
        format!("matches: {matches}")
    })
}

fn fleet_secrets(v: &Vector) -> Outcome {
    match (v.expect(), keys::fleet_secrets(&v.bytes("fleet secrets"))) {
        ("success", Some(s)) => {
            ensure(s.max_guesses.to_string() == v.text("max guesses"), || {
                "max guesses".into()
            })?;
            same(v, "sealing key", &s.sealing_key)?;
            same(v, "channel secret", &s.channel_secret)?;
            same(v, "channel key", &s.channel_key)?;
            same(v, "opaque key", &s.opaque_key)?;
            same(
                v,
                "fingerprint",
                &keys::fingerprint(&s.channel_key, &s.opaque_key),
            )
        }
        ("bad fleet", None) => Ok(()),
        (expect, got) => Err(format!("parsed: {}, expected {expect:?}", got.is_some())),
    }
}
