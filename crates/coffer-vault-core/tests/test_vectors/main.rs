//! Runs every test vector in `tests/vectors/*.cvv` through the crate and through an
//! independent implementation written from the formats' descriptions
//! (`examples/gen_vectors/spec`, which uses no code of the crate), and checks both against
//! the vector's `expect:` line. It also fails when the files differ from a fresh
//! generation, or when there are fewer than [`MIN_VECTORS`].
//!
//! Regenerate the vectors with
//! `cargo run -p coffer-vault-core --example gen_vectors -- crates/coffer-vault-core/tests/vectors`.
//!
//! # What the vectors rely on (from the crate's doc comments, to compare with docs/PROTOCOL.md)
//!
//! Labels (`lib.rs`, `labels`), byte strings; `\0` is a zero byte:
//!
//! ```text
//! K_TRANSPORT       "coffer/v2/vault/k-transport"       HKDF-SHA512 info (and AES-GCM AAD, in the code only)
//! AUTH_KEY          "coffer/v2/vault/auth-key"          HKDF-SHA256 info
//! AUTHORIZATION     "coffer/v2/vault/authorization\0"   prefix of the MAC's input
//! CREDENTIAL_ID     "coffer/v2/vault/credential\0"      prefix of OPAQUE's credential identifier
//! OPAQUE_CONTEXT    "coffer/v2/vault/opaque\0"          prefix of OPAQUE's context
//! CHANNEL_PROLOGUE  "coffer/v2/vault/channel\0"         prefix of the Noise prologue
//! FLEET_FINGERPRINT "coffer/v2/vault/fleet\0"           prefix of the fingerprint's input
//! RECORD_KEY        "coffer/v2/vault/record-key"        HKDF-SHA256 salt of a record subkey
//! RECORD_AAD        "coffer/v2/vault/record\0"          prefix of a record's AAD
//! ```
//!
//! Layouts (lengths in bytes; `len(x)` big-endian, 2 bytes unless said):
//!
//! ```text
//! channel   Noise_NK_25519_ChaChaPoly_SHA256, one handshake per request (channel.rs)
//!   prologue  CHANNEL_PROLOGUE || len(account) || account
//!   payload   len(JSON) || JSON || zeros, padded to a multiple of 1024, at most 4096
//!   message 1 e (32) || ChaChaPoly(payload) || tag (16)      "e, es"
//!   message 2 e (32) || ChaChaPoly(payload) || tag (16)      "e, ee"
//!   a message longer than 32 + 4096 + 16 is refused unread
//! record    version 0x02 || nonce (12) || AES-256-GCM(subkey, padded) (2048) || tag (16) (record.rs)
//!   subkey    HKDF-SHA256(salt RECORD_KEY, ikm sealing key, info len(account) || account)
//!   AAD       RECORD_AAD || version || account
//!   padded    len(JSON) (4) || JSON || zeros, 2048 bytes
//! transport nonce (12) || AES-256-GCM(key, K blob, AAD K_TRANSPORT) || tag (16) (transport.rs)
//!   key       HKDF-SHA512(no salt, ikm OPAQUE session key, info K_TRANSPORT)
//! auth key  HKDF-SHA256(no salt, ikm K, info AUTH_KEY), 32 bytes (authorization.rs)
//! MAC       HMAC-SHA256(auth key, AUTHORIZATION || len(account) || account || challenge
//!             || op (replace 1, delete 2, ownership 3) || len(request) (4) || request)
//! authorization  {challenge (32), mac} (messages.rs), for the live record's outstanding
//!             challenge (the nonce of its last Challenge answer; none once spent); a Delete
//!             signs the empty request, a replacement its RegisterStart's RegistrationRequest
//!           none presented            Unauthorized, the challenge is not spent (step.rs)
//!           another challenge named   Superseded, nothing spent (none outstanding: the same)
//!           the outstanding one       spent; valid only if the MAC is the 32 bytes over it,
//!                                     else Unauthorized
//! ownership proof  in a live record's Status { .., proof } answering Status { nonce }:
//!             MAC(auth key, account, nonce, ownership 3, empty request) for a 32-byte nonce,
//!             empty for any other (and from a locked record); a client takes only the 32
//!             bytes its own auth key, account and nonce give (client::check_ownership)
//! login id   16 bytes, in RecoverStarted { login_id, .. }; a RecoverFinish { login_id, .. }
//!             for another id, or when no login is pending, is Superseded and changes nothing
//! credential id  CREDENTIAL_ID || len(account) || account || registration id (32) (opaque_binding.rs)
//! context        OPAQUE_CONTEXT || fingerprint (32)
//! fingerprint    SHA-256(FLEET_FINGERPRINT || channel key (32) || OPAQUE key (32)) (fleet.rs);
//!                matches a pin (64 hex digits, any case) only with two 32-byte keys
//! fleet secrets  version 0x02 || max_guesses (1..=100) || sealing key (32) || channel secret (32)
//!                  || opaque-ke ServerSetup: OPRF seed (64) || server key (32) || dummy key (32)
//! ```
//!
//! # The vector files
//!
//! `name: value` lines: `format:`, `expect:`, `error:` (channel failures: this
//! implementation's error, for information), `comment:`, then per format (`?` optional):
//!
//! ```text
//! channel request   responder static secret, responder static public, account, prologue,
//!                   initiator ephemeral secret?, request? (JSON), payload?, message
//!                   expect: success | unauthentic | malformed | too large
//! channel response  the same keys, account and prologue, initiator ephemeral secret, request
//!                   (JSON), request message, responder ephemeral secret?, response? (JSON),
//!                   payload?, message;  expect: as for requests
//! record            sealing key, account, subkey?, associated data?, nonce?, record? (JSON),
//!                   padded record?, sealed?;  expect: success | bad record | too large (to seal)
//! transport         session key, transport key, nonce?, k blob?, sealed
//!                   expect: success | does not open
//! auth key          k, auth key, differs from?;  expect: success
//! authorization     auth key, account, outstanding challenge (empty: none), operation
//!                   (replace | delete), request, mac (over the outstanding challenge),
//!                   presented challenge?, presented mac? (both, or neither for no
//!                   authorization), challenge spent (yes | no)
//!                   expect: valid | unauthorized | superseded
//! ownership proof   auth key, account, nonce, proof (the live record's answer to
//!                   Status { nonce }), presented (what the client is given)
//!                   expect: owned | not owned
//! credential identifier  account, registration id, credential identifier, differs from?
//! fleet keys        channel key, opaque key, fingerprint, opaque context, pinned, differs from?
//!                   expect: match | no match
//! fleet secrets     fleet secrets, then on success max guesses, sealing key, channel secret,
//!                   channel key, opaque key, fingerprint;  expect: success | bad fleet
//! ```
//!
//! `payload:` on a `malformed` vector is the authentic plaintext the receiver must refuse.
//! A channel response vector answers the request its `request:` and `request message:` state
//! (that of `channel_request_status`, unless its comment names another request vector).
//! `differs from: NAME` says that this vector's output must differ from NAME's.

mod binding;
mod files;
mod implementation;
mod independent;
mod login_id;

pub use files::{find, load_vectors, unhex, Vector};
use files::{vectors_dir, Format, AUTHORIZATION_OUTCOMES, FORMATS};

#[path = "../../examples/gen_vectors/main.rs"]
#[allow(dead_code)]
mod gen_vectors;

pub use gen_vectors::spec;

/// Fewer vectors than this means some were lost: every vector the generator writes today.
const MIN_VECTORS: usize = 139;

#[test]
fn vectors_on_disk_match_the_generator() {
    let generated = gen_vectors::all_vectors();
    let dir = vectors_dir();
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/vectors")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".cvv"))
        .collect();
    on_disk.sort();
    let mut names: Vec<String> = generated
        .iter()
        .map(gen_vectors::Vector::file_name)
        .collect();
    names.sort();
    assert_eq!(
        on_disk, names,
        "tests/vectors is out of date: run the gen_vectors example"
    );
    for v in &generated {
        let file = std::fs::read(dir.join(v.file_name())).expect("a vector file");
        assert!(
            file == v.serialize(),
            "{} differs from the generator's output: run the gen_vectors example",
            v.file_name()
        );
    }
}

#[test]
fn there_are_enough_vectors_of_every_kind() {
    let vectors = load_vectors();
    assert!(
        vectors.len() >= MIN_VECTORS,
        "only {} vectors in {}; expected at least {MIN_VECTORS}",
        vectors.len(),
        vectors_dir().display()
    );
    for Format {
        name: format,
        expects,
        ..
    } in FORMATS
    {
        for expect in *expects {
            assert!(
                vectors
                    .iter()
                    .any(|v| v.format() == *format && v.expect() == *expect),
                "no {format:?} vector expects {expect:?}"
            );
        }
        // Derivations have no failure of their own: their negatives are `differs from`.
        if expects.len() == 1 {
            assert!(
                vectors
                    .iter()
                    .any(|v| v.format() == *format && v.opt_text("differs from").is_some()),
                "no {format:?} vector says what it differs from"
            );
        }
    }
    for (expect, spent) in AUTHORIZATION_OUTCOMES {
        assert!(
            vectors.iter().any(|v| v.format() == "authorization"
                && v.expect() == *expect
                && v.text("challenge spent") == *spent),
            "no authorization vector is {expect} with the challenge spent: {spent}"
        );
    }
}

#[test]
fn vectors_stay_small() {
    let total: u64 = std::fs::read_dir(vectors_dir())
        .expect("tests/vectors")
        .map(|e| e.expect("an entry").metadata().expect("metadata").len())
        .sum();
    assert!(total < 1_000_000, "vectors take {total} bytes");
}

#[test]
fn every_vector_gives_its_expected_outcome_through_the_crate() {
    let vectors = load_vectors();
    let failures: Vec<String> = vectors
        .iter()
        .filter_map(|v| {
            implementation::check(v)
                .err()
                .map(|e| format!("{}: {e}", v.name))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_vector_gives_its_expected_outcome_through_the_independent_implementation() {
    let vectors = load_vectors();
    let failures: Vec<String> = vectors
        .iter()
        .filter_map(|v| {
            independent::check(v)
                .err()
                .map(|e| format!("{}: {e}", v.name))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The output a `differs from` line compares.
fn output_field(format: &str) -> &'static str {
    match format {
        "auth key" => "auth key",
        "credential identifier" => "credential identifier",
        "fleet keys" => "fingerprint",
        other => panic!("{other:?} vectors do not say what they differ from"),
    }
}

#[test]
fn a_changed_input_changes_the_output() {
    let vectors = load_vectors();
    for v in &vectors {
        let Some(other) = v.opt_text("differs from") else {
            continue;
        };
        let other = find(&vectors, other);
        assert_eq!(v.format(), other.format(), "{}", v.name);
        let field = output_field(v.format());
        assert_ne!(
            v.text(field),
            other.text(field),
            "{}: same {field} as {}",
            v.name,
            other.name
        );
    }
}

#[test]
fn the_independent_labels_are_the_crates() {
    use coffer_vault_core::labels as crate_labels;
    use spec::labels as ours;
    for (crate_label, our_label) in [
        (crate_labels::K_TRANSPORT, ours::K_TRANSPORT),
        (crate_labels::AUTH_KEY, ours::AUTH_KEY),
        (crate_labels::AUTHORIZATION, ours::AUTHORIZATION),
        (crate_labels::CREDENTIAL_ID, ours::CREDENTIAL_ID),
        (crate_labels::OPAQUE_CONTEXT, ours::OPAQUE_CONTEXT),
        (crate_labels::CHANNEL_PROLOGUE, ours::CHANNEL_PROLOGUE),
        (crate_labels::FLEET_FINGERPRINT, ours::FLEET_FINGERPRINT),
        (crate_labels::RECORD_KEY, ours::RECORD_KEY),
        (crate_labels::RECORD_AAD, ours::RECORD_AAD),
    ] {
        assert_eq!(crate_label, our_label);
    }
    assert_eq!(coffer_vault_core::PROTOCOL_VERSION, spec::VERSION);
    assert_eq!(
        coffer_vault_core::channel::PATTERN.as_bytes(),
        spec::noise::PROTOCOL_NAME
    );
    assert_eq!(coffer_vault_core::channel::PAD_BLOCK, spec::wire::PAD_BLOCK);
    assert_eq!(
        coffer_vault_core::channel::MAX_MESSAGE,
        spec::wire::MAX_MESSAGE
    );
    assert_eq!(
        coffer_vault_core::record::SEALED_LEN,
        spec::record::SEALED_LEN
    );
}
