//! The published document (`docs/openapi.json`, served at `/openapi.json`) states the limits
//! the code enforces: if a constant changes, this fails until the document follows. The
//! schemathesis run of `coffer-cli/tests/api_contract.rs` checks the running server against
//! the same document.

use coffer_frontend::account_id::MAX_ACCOUNT_ID;
use coffer_frontend::code::CODE_DIGITS;
use coffer_frontend::relay::{MAX_GUESSES_RANGE, MAX_VAULT_MESSAGE};
use coffer_frontend::server::{MAX_BODY, OPENAPI};
use coffer_https::ErrorClass;
use serde_json::{json, Value};

fn document() -> Value {
    serde_json::from_str(OPENAPI).expect("docs/openapi.json is JSON")
}

fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let s = &doc["components"]["schemas"][name];
    assert!(s.is_object(), "no schema {name}");
    s
}

#[test]
fn account_ids_codes_and_messages_have_the_enforced_limits() {
    let doc = document();
    let id = schema(&doc, "AccountId");
    assert_eq!(id["maxLength"], MAX_ACCOUNT_ID);
    assert_eq!(id["minLength"], 1);
    // Printable ASCII without the space: one byte per character, as the server counts.
    assert_eq!(id["pattern"], "^[!-~]+$");

    let code = schema(&doc, "VerificationCode");
    assert_eq!(code["minLength"], CODE_DIGITS);
    assert_eq!(code["maxLength"], CODE_DIGITS);
    assert_eq!(code["pattern"], format!("^[0-9]{{{CODE_DIGITS}}}$"));

    let message = &schema(&doc, "VaultMessage")["properties"]["message"];
    assert_eq!(message["minLength"], 2);
    assert_eq!(message["maxLength"], 2 * MAX_VAULT_MESSAGE);
    assert_eq!(message["pattern"], "^(?:[0-9a-f]{2})+$");

    let guesses = &schema(&doc, "Fleet")["properties"]["max_guesses"];
    assert_eq!(guesses["minimum"], *MAX_GUESSES_RANGE.start());
    assert_eq!(guesses["maximum"], *MAX_GUESSES_RANGE.end());
    assert!(
        doc["info"]["description"]
            .as_str()
            .unwrap()
            .contains(&format!("at most {} KiB", MAX_BODY / 1024)),
        "the body limit is stated"
    );
}

#[test]
fn the_error_classes_are_the_shells() {
    let doc = document();
    let published = &schema(&doc, "ErrorClass")["enum"];
    let classes: Vec<&str> = ErrorClass::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(published, &json!(classes));
}

#[test]
fn request_bodies_refuse_unknown_fields_as_the_server_does() {
    let doc = document();
    for name in ["CodeRequest", "Verification", "VaultMessage", "Error"] {
        assert_eq!(
            schema(&doc, name)["additionalProperties"],
            false,
            "{name} is closed"
        );
    }
}

/// Every operation that reads a JSON body lists every way the shell refuses one, and every
/// 429 carries `Retry-After`.
#[test]
fn every_operation_lists_the_shells_answers() {
    let doc = document();
    let responses = &doc["components"]["responses"];
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let listed = op["responses"].as_object().unwrap();
            // The shell answers these before any route: a declared body or a head too large.
            for status in ["413", "431"] {
                assert!(listed.contains_key(status), "{method} {path}: {status}");
            }
            if op.get("requestBody").is_some() {
                for status in ["400", "408", "413", "415", "422", "429", "503"] {
                    assert!(listed.contains_key(status), "{method} {path}: {status}");
                }
                assert_eq!(
                    op["requestBody"]["content"]
                        .as_object()
                        .unwrap()
                        .keys()
                        .collect::<Vec<_>>(),
                    ["application/json"]
                );
            }
            if let Some(limited) = listed.get("429") {
                assert_eq!(limited["$ref"], "#/components/responses/RateLimited");
            }
        }
    }
    assert_eq!(
        responses["RateLimited"]["headers"]["Retry-After"]["$ref"],
        "#/components/headers/Retry-After"
    );
    assert_eq!(
        doc["components"]["headers"]["Retry-After"]["required"],
        true
    );
}
