//! The JSON shapes of `messages.rs` and `record.rs`: serde's externally tagged enums (a unit
//! variant is a string; a struct variant is an object with one key, the variant, whose value
//! is an object of the listed fields), with unknown fields refused. Field types are not
//! checked here beyond what the vectors need.

use serde_json::{Map, Value};

/// A variant: its name, its required fields and its optional ones (`None` for a unit
/// variant).
type Variant = (
    &'static str,
    Option<(&'static [&'static str], &'static [&'static str])>,
);

const REQUESTS: &[Variant] = &[
    ("Status", Some((&["nonce"], &[]))),
    ("Challenge", None),
    ("RegisterStart", Some((&["request"], &["authorization"]))),
    (
        "RegisterFinish",
        Some((
            &["registration_id", "upload", "k_blob", "auth_key", "ksf"],
            &[],
        )),
    ),
    ("RecoverStart", Some((&["request"], &[]))),
    ("RecoverFinish", Some((&["login_id", "finalization"], &[]))),
    ("Delete", Some((&[], &["authorization"]))),
];

const RESPONSES: &[Variant] = &[
    (
        "Status",
        Some((&["locked", "guesses_left", "max_guesses", "proof"], &[])),
    ),
    ("Challenge", Some((&["nonce"], &[]))),
    (
        "RegisterStarted",
        Some((&["registration_id", "response"], &[])),
    ),
    ("Registered", Some((&["max_guesses"], &[]))),
    (
        "RecoverStarted",
        Some((&["login_id", "response", "ksf", "guesses_left"], &[])),
    ),
    ("Recovered", Some((&["sealed_k_blob"], &[]))),
    ("WrongPassword", Some((&["guesses_left"], &[]))),
    ("Locked", None),
    ("NotFound", None),
    ("Unauthorized", None),
    ("Deleted", None),
    ("Superseded", None),
    ("Rejected", Some((&["reason"], &[]))),
    ("Failed", Some((&["failure"], &[]))),
];

const RECORD_STATES: &[Variant] = &[
    ("Empty", None),
    (
        "Live",
        Some((
            &[
                "registration_id",
                "password_file",
                "k_blob",
                "auth_key",
                "ksf",
                "max_guesses",
                "guesses_left",
                "pending_login",
                "pending_login_id",
                "challenge",
            ],
            &[],
        )),
    ),
    ("Locked", Some((&["max_guesses"], &[]))),
];

fn fields_fit(object: &Map<String, Value>, required: &[&str], optional: &[&str]) -> bool {
    required.iter().all(|f| object.contains_key(*f))
        && object
            .keys()
            .all(|k| required.contains(&k.as_str()) || optional.contains(&k.as_str()))
}

fn is_variant(value: &Value, variants: &[Variant]) -> bool {
    match value {
        Value::String(name) => variants.iter().any(|(n, f)| n == name && f.is_none()),
        Value::Object(map) if map.len() == 1 => {
            let (name, inner) = map.iter().next().expect("one entry");
            variants.iter().any(|(n, f)| match (f, inner) {
                (Some((required, optional)), Value::Object(fields)) => {
                    n == name && fields_fit(fields, required, optional)
                }
                _ => false,
            })
        }
        _ => false,
    }
}

fn parse(body: &[u8]) -> Option<Value> {
    serde_json::from_slice(body).ok()
}

pub fn is_request(body: &[u8]) -> bool {
    parse(body).is_some_and(|v| is_variant(&v, REQUESTS))
}

pub fn is_response(body: &[u8]) -> bool {
    parse(body).is_some_and(|v| is_variant(&v, RESPONSES))
}

/// `{"state": <state>, "pending_registration": "<hex>"}`.
pub fn is_record(body: &[u8]) -> bool {
    let Some(Value::Object(map)) = parse(body) else {
        return false;
    };
    fields_fit(&map, &["state", "pending_registration"], &[])
        && is_variant(&map["state"], RECORD_STATES)
}
