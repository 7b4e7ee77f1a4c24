//! Reading the vector files: their fields, checked against each format's field list.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A format: the fields its vectors must have, those they may have, and what they may
/// expect (successes first).
pub struct Format {
    pub name: &'static str,
    pub required: &'static [&'static str],
    pub optional: &'static [&'static str],
    pub expects: &'static [&'static str],
}

const fn format(
    name: &'static str,
    required: &'static [&'static str],
    optional: &'static [&'static str],
    expects: &'static [&'static str],
) -> Format {
    Format {
        name,
        required,
        optional,
        expects,
    }
}

pub const FORMATS: &[Format] = &[
    format(
        "channel request",
        &[
            "responder static secret",
            "responder static public",
            "account",
            "prologue",
            "message",
        ],
        &["error", "initiator ephemeral secret", "request", "payload"],
        &["success", "unauthentic", "malformed", "too large"],
    ),
    format(
        "channel response",
        &[
            "responder static secret",
            "responder static public",
            "account",
            "prologue",
            "initiator ephemeral secret",
            "request",
            "request message",
            "message",
        ],
        &["error", "responder ephemeral secret", "response", "payload"],
        &["success", "unauthentic", "malformed", "too large"],
    ),
    format(
        "record",
        &["sealing key", "account"],
        &[
            "subkey",
            "associated data",
            "nonce",
            "record",
            "padded record",
            "sealed",
        ],
        &["success", "bad record", "too large"],
    ),
    format(
        "transport",
        &["session key", "transport key", "sealed"],
        &["nonce", "k blob"],
        &["success", "does not open"],
    ),
    format(
        "auth key",
        &["k", "auth key"],
        &["differs from"],
        &["success"],
    ),
    format(
        "authorization",
        &[
            "auth key",
            "account",
            "outstanding challenge",
            "operation",
            "request",
            "mac",
            "challenge spent",
        ],
        &["presented challenge", "presented mac"],
        &["valid", "unauthorized", "superseded"],
    ),
    format(
        "ownership proof",
        &["auth key", "account", "nonce", "proof", "presented"],
        &[],
        &["owned", "not owned"],
    ),
    format(
        "credential identifier",
        &["account", "registration id", "credential identifier"],
        &["differs from"],
        &["success"],
    ),
    format(
        "fleet keys",
        &[
            "channel key",
            "opaque key",
            "fingerprint",
            "opaque context",
            "pinned",
        ],
        &["differs from"],
        &["match", "no match"],
    ),
    format(
        "fleet secrets",
        &["fleet secrets"],
        &[
            "max guesses",
            "sealing key",
            "channel secret",
            "channel key",
            "opaque key",
            "fingerprint",
        ],
        &["success", "bad fleet"],
    ),
];

/// What an authorization can come to: the verdict, and whether the outstanding challenge is
/// spent by it. A proof for the outstanding challenge spends it, right or wrong; none, or one
/// for another challenge, spends nothing.
pub const AUTHORIZATION_OUTCOMES: &[(&str, &str)] = &[
    ("valid", "yes"),
    ("unauthorized", "yes"),
    ("unauthorized", "no"),
    ("superseded", "no"),
];

pub struct Vector {
    pub name: String,
    fields: BTreeMap<String, String>,
}

impl Vector {
    pub fn format(&self) -> &str {
        &self.fields["format"]
    }

    pub fn expect(&self) -> &str {
        &self.fields["expect"]
    }

    pub fn text(&self, field: &str) -> &str {
        self.fields
            .get(field)
            .unwrap_or_else(|| panic!("{}: no {field:?}", self.name))
    }

    pub fn opt_text(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }

    pub fn bytes(&self, field: &str) -> Vec<u8> {
        unhex(self.text(field)).unwrap_or_else(|| panic!("{}: {field} is not hex", self.name))
    }

    pub fn opt_bytes(&self, field: &str) -> Option<Vec<u8>> {
        self.opt_text(field).map(|_| self.bytes(field))
    }

    pub fn key(&self, field: &str) -> [u8; 32] {
        self.bytes(field)
            .try_into()
            .unwrap_or_else(|_| panic!("{}: {field} is not 32 bytes", self.name))
    }

    pub fn opt_key(&self, field: &str) -> Option<[u8; 32]> {
        self.opt_text(field).map(|_| self.key(field))
    }
}

pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// Parses one file, enforcing the field lists above.
fn parse(name: &str, text: &str) -> Vector {
    let mut fields = BTreeMap::new();
    for line in text.lines() {
        let (k, v) = line
            .split_once(": ")
            .or_else(|| Some((line.strip_suffix(':')?, "")))
            .unwrap_or_else(|| panic!("{name}: malformed line {line:?}"));
        assert!(
            fields.insert(k.to_string(), v.to_string()).is_none(),
            "{name}: {k:?} twice"
        );
    }
    let v = Vector {
        name: name.to_string(),
        fields,
    };
    for required in ["format", "expect", "comment"] {
        assert!(v.opt_text(required).is_some(), "{name}: no {required:?}");
    }
    let Format {
        required,
        optional,
        expects,
        ..
    } = FORMATS
        .iter()
        .find(|f| f.name == v.format())
        .unwrap_or_else(|| panic!("{name}: unknown format {:?}", v.format()));
    assert!(
        expects.contains(&v.expect()),
        "{name}: {:?} cannot expect {:?}",
        v.format(),
        v.expect()
    );
    for f in *required {
        assert!(v.opt_text(f).is_some(), "{name}: no {f:?}");
    }
    for k in v.fields.keys() {
        assert!(
            ["format", "expect", "comment"].contains(&k.as_str())
                || required.contains(&k.as_str())
                || optional.contains(&k.as_str()),
            "{name}: {k:?} is not a field of {:?}",
            v.format()
        );
    }
    if v.format() == "authorization" {
        assert_eq!(
            v.opt_text("presented challenge").is_some(),
            v.opt_text("presented mac").is_some(),
            "{name}: an authorization is presented whole (challenge and MAC) or not at all"
        );
        assert!(
            AUTHORIZATION_OUTCOMES.contains(&(v.expect(), v.text("challenge spent"))),
            "{name}: an authorization cannot be {} with the challenge spent: {}",
            v.expect(),
            v.text("challenge spent")
        );
    }
    if v.format().starts_with("channel") {
        assert_eq!(
            v.opt_text("error").is_some(),
            v.expect() != "success",
            "{name}: `error` goes with failures, and only with them"
        );
    }
    v
}

pub fn load_vectors() -> Vec<Vector> {
    let dir = vectors_dir();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|e| e == "cvv") {
            let name = path
                .file_stem()
                .expect("a name")
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            out.push(parse(&name, &text));
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

pub fn find<'a>(vectors: &'a [Vector], name: &str) -> &'a Vector {
    vectors
        .iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no vector {name}"))
}
