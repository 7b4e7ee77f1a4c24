//! Writes the vault protocol's test vectors (`*.cvv`) into a directory.
//!
//! ```text
//! cargo run -p coffer-vault-core --example gen_vectors -- crates/coffer-vault-core/tests/vectors
//! ```
//!
//! Every vector is deterministic (fixed keys, fixed ephemeral keys, scripted nonces), so
//! running the generator again gives byte-identical files; `tests/test_vectors` fails when
//! the files in the repository differ from what this program produces.
//!
//! A vector file is text, one `name: value` line per field (`name:` alone when empty), in this order: `format:` (what
//! the vector is about), `expect:` (the outcome), `error:` (channel failures only: this
//! implementation's precise error, for information; other implementations need only match
//! `expect:`), `comment:`, then the inputs and outputs of that format. Byte fields are
//! lower-case hex; `request:`, `response:` and `record:` are JSON text. The formats and
//! their fields are listed in `tests/test_vectors/main.rs`.
//!
//! Well-formed messages and records come from the crate itself (with its `#[doc(hidden)]`
//! deterministic entry points) and are checked here, byte for byte, against the
//! independent implementation in [`spec`]; the hostile ones the crate refuses to make
//! (authentic but badly framed payloads, impossible length prefixes, keys derived the wrong
//! way) are built with [`spec`].

mod authorization;
mod channel;
pub mod fixtures;
mod identity;
mod ownership;
mod record;
pub mod spec;
mod transport;

use std::path::Path;

/// One test vector: a name (its file stem) and its fields, in file order.
pub struct Vector {
    pub name: String,
    pub fields: Vec<(&'static str, String)>,
}

impl Vector {
    pub fn new(name: &str, format: &str, expect: &str) -> Vector {
        Vector {
            name: name.to_string(),
            fields: vec![
                ("format", format.to_string()),
                ("expect", expect.to_string()),
            ],
        }
    }

    pub fn text(mut self, field: &'static str, value: impl Into<String>) -> Vector {
        assert!(
            self.fields.iter().all(|(f, _)| *f != field),
            "{}: field {field} twice",
            self.name
        );
        let value = value.into();
        assert!(
            !value.contains('\n'),
            "{}: {field} has a newline",
            self.name
        );
        self.fields.push((field, value));
        self
    }

    pub fn hex(self, field: &'static str, bytes: &[u8]) -> Vector {
        self.text(field, hex(bytes))
    }

    pub fn file_name(&self) -> String {
        format!("{}.cvv", self.name)
    }

    pub fn serialize(&self) -> Vec<u8> {
        let mut out = String::new();
        for (field, value) in &self.fields {
            out.push_str(field);
            out.push(':');
            // No trailing space after an empty value, for editors that strip them.
            if !value.is_empty() {
                out.push(' ');
                out.push_str(value);
            }
            out.push('\n');
        }
        out.into_bytes()
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every vector, in a fixed order.
pub fn all_vectors() -> Vec<Vector> {
    let mut out = channel::request_vectors();
    out.extend(channel::response_vectors());
    out.extend(record::vectors());
    out.extend(transport::vectors());
    out.extend(authorization::auth_key_vectors());
    out.extend(authorization::vectors());
    out.extend(ownership::vectors());
    out.extend(identity::credential_identifier_vectors());
    out.extend(identity::fleet_keys_vectors());
    out.extend(identity::fleet_secrets_vectors());
    let mut names: Vec<&str> = out.iter().map(|v| v.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), out.len(), "two vectors share a name");
    out
}

/// Writes every vector into `dir` and removes stale `.cvv` files.
pub fn write_all(dir: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let vectors = all_vectors();
    let names: Vec<String> = vectors.iter().map(Vector::file_name).collect();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let stale = path.extension().is_some_and(|e| e == "cvv")
            && !names
                .iter()
                .any(|n| path.file_name().is_some_and(|f| f == n.as_str()));
        if stale {
            std::fs::remove_file(&path)?;
        }
    }
    let mut total = 0;
    for v in &vectors {
        let data = v.serialize();
        total += data.len();
        std::fs::write(dir.join(v.file_name()), data)?;
    }
    println!(
        "wrote {} vectors ({total} bytes) to {}",
        vectors.len(),
        dir.display()
    );
    Ok(vectors.len())
}

#[allow(dead_code)]
fn main() {
    let dir = std::env::args_os()
        .nth(1)
        .unwrap_or_else(|| "crates/coffer-vault-core/tests/vectors".into());
    if let Err(e) = write_all(Path::new(&dir)) {
        eprintln!("gen_vectors: {e}");
        std::process::exit(1);
    }
}
