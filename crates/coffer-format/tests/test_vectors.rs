//! Runs every test vector in `tests/vectors/*.cbv` through `DecryptReader` and through a
//! small independent decoder written from `docs/FORMAT.md`, and checks both against the
//! vector's `expect:` line (and, for this implementation, its `error:` line).
//!
//! Regenerate the vectors with
//! `cargo run -p coffer-format --example gen_vectors -- crates/coffer-format/tests/vectors`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use coffer_format::{BackupKey, DecryptReader, FormatError};
use sha2::{Digest, Sha256};

#[path = "../examples/gen_vectors.rs"]
#[allow(dead_code)]
mod gen_vectors;

const MIN_VECTORS: usize = 25;

const CATEGORIES: [&str; 7] = [
    "success",
    "wrong key",
    "header failure",
    "renamed",
    "payload failure",
    "not coffer",
    "unsupported",
];

struct Vector {
    name: String,
    fields: BTreeMap<String, String>,
    bytes: Vec<u8>,
}

impl Vector {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
    fn expect(&self) -> &str {
        self.field("expect").unwrap()
    }
    fn key(&self) -> BackupKey {
        BackupKey::parse(self.field("key").unwrap())
            .unwrap_or_else(|e| panic!("{}: bad key line: {e}", self.name))
    }
    /// The id the backup is read under (the name it is stored as).
    fn id(&self) -> &str {
        self.field("id").unwrap()
    }
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn parse_vector(name: &str, data: &[u8]) -> Vector {
    let split = data
        .windows(2)
        .position(|w| w == b"\n\n")
        .unwrap_or_else(|| panic!("{name}: no blank line after the header"));
    let text = std::str::from_utf8(&data[..split])
        .unwrap_or_else(|_| panic!("{name}: header is not UTF-8"));
    let mut fields = BTreeMap::new();
    for line in text.lines() {
        let (k, v) = line
            .split_once(": ")
            .unwrap_or_else(|| panic!("{name}: malformed header line {line:?}"));
        assert!(
            matches!(
                k,
                "expect" | "key" | "id" | "payload sha256" | "error" | "comment"
            ),
            "{name}: unknown field {k:?}"
        );
        assert!(
            fields.insert(k.to_string(), v.to_string()).is_none(),
            "{name}: duplicate field {k:?}"
        );
    }
    let v = Vector {
        name: name.to_string(),
        fields,
        bytes: data[split + 2..].to_vec(),
    };
    for required in ["expect", "key", "id", "comment"] {
        assert!(v.field(required).is_some(), "{name}: no {required:?} line");
    }
    assert!(
        CATEGORIES.contains(&v.expect()),
        "{name}: unknown expect {:?}",
        v.expect()
    );
    let key = v.field("key").unwrap();
    assert!(
        key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()),
        "{name}: key must be 64 hex digits"
    );
    assert!(
        coffer_format::BackupId::parse(v.id()).is_some(),
        "{name}: the id line is not a backup id"
    );
    let success = v.expect() == "success";
    assert_eq!(
        v.field("payload sha256").is_some(),
        success,
        "{name}: `payload sha256` is required for success vectors and only for them"
    );
    assert_eq!(
        v.field("error").is_some(),
        !success,
        "{name}: `error` is required for failure vectors and only for them"
    );
    v
}

fn load_vectors() -> Vec<Vector> {
    let dir = vectors_dir();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "cbv") {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            out.push(parse_vector(&name, &std::fs::read(&path).unwrap()));
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The category of `expect:` that an error belongs to.
fn category(e: &FormatError) -> &'static str {
    match e {
        FormatError::NotCoffer => "not coffer",
        FormatError::UnsupportedVersion(_)
        | FormatError::UnsupportedCipher(_)
        | FormatError::UnsupportedChunkSize(_) => "unsupported",
        FormatError::WrongKey => "wrong key",
        FormatError::TruncatedHeader { .. } | FormatError::HeaderTampered => "header failure",
        FormatError::IdMismatch { .. } => "renamed",
        FormatError::ChunkTampered { .. }
        | FormatError::Truncated { .. }
        | FormatError::TrailingData
        | FormatError::TooLong => "payload failure",
        FormatError::Random(_) | FormatError::Io(_) | FormatError::TimeOutOfRange => {
            panic!("unexpected error: {e}")
        }
    }
}

/// The `error:` line's spelling of an error.
fn detail(e: &FormatError) -> String {
    match e {
        FormatError::NotCoffer => "NotCoffer".into(),
        FormatError::TruncatedHeader { got } => format!("TruncatedHeader {got}"),
        FormatError::UnsupportedVersion(v) => format!("UnsupportedVersion {v}"),
        FormatError::UnsupportedCipher(c) => format!("UnsupportedCipher {c}"),
        FormatError::UnsupportedChunkSize(s) => format!("UnsupportedChunkSize {s}"),
        FormatError::WrongKey => "WrongKey".into(),
        FormatError::HeaderTampered => "HeaderTampered".into(),
        FormatError::IdMismatch { .. } => "IdMismatch".into(),
        FormatError::ChunkTampered { index } => format!("ChunkTampered {index}"),
        FormatError::Truncated { chunks } => format!("Truncated {chunks}"),
        FormatError::TrailingData => "TrailingData".into(),
        FormatError::TooLong => "TooLong".into(),
        FormatError::Random(_) | FormatError::Io(_) | FormatError::TimeOutOfRange => {
            format!("{e}")
        }
    }
}

/// A reader that hands out at most `step` bytes per call, to exercise short reads.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.step).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn decrypt_with<R: Read>(
    key: &BackupKey,
    id: &str,
    r: R,
    read_size: usize,
) -> Result<Vec<u8>, FormatError> {
    let mut reader = DecryptReader::new(key, id, r)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; read_size];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return Err(FormatError::from_io(e)),
        }
    }
}

/// Checks one outcome against the vector; returns a description of any mismatch.
fn check(v: &Vector, how: &str, result: Result<Vec<u8>, FormatError>) -> Option<String> {
    match (v.expect(), result) {
        ("success", Ok(plain)) => {
            let got = hex(&Sha256::digest(&plain));
            let want = v.field("payload sha256").unwrap();
            (got != want).then(|| format!("{} ({how}): payload sha256 {got}, want {want}", v.name))
        }
        (expect, Ok(plain)) => Some(format!(
            "{} ({how}): decrypted {} bytes, but expected `{expect}`",
            v.name,
            plain.len()
        )),
        (expect, Err(e)) => {
            if category(&e) != expect {
                Some(format!(
                    "{} ({how}): got `{}` ({e}), expected `{expect}`",
                    v.name,
                    category(&e)
                ))
            } else if v.field("error") != Some(detail(&e).as_str()) {
                Some(format!(
                    "{} ({how}): error `{}`, vector says `{}`",
                    v.name,
                    detail(&e),
                    v.field("error").unwrap()
                ))
            } else {
                None
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn every_vector_gives_its_expected_outcome() {
    let vectors = load_vectors();
    assert!(
        vectors.len() >= MIN_VECTORS,
        "only {} vectors in {}; expected at least {MIN_VECTORS}",
        vectors.len(),
        vectors_dir().display()
    );
    let mut failures = Vec::new();
    for v in &vectors {
        let key = v.key();
        // Whole buffer, 64 KiB reads.
        failures.extend(check(
            v,
            "slice",
            decrypt_with(&key, v.id(), &v.bytes[..], 1 << 16),
        ));
        // Short reads from the source and odd-sized reads by the caller.
        let trickle = Trickle {
            data: &v.bytes,
            step: 4093,
        };
        failures.extend(check(
            v,
            "trickle",
            decrypt_with(&key, v.id(), trickle, 1000),
        ));
        // The header check alone agrees with the whole read on every header-level outcome.
        let header_only = coffer_format::check_header(&key, v.id(), &v.bytes).map(|_| ());
        match (v.expect(), header_only) {
            ("success" | "payload failure", Ok(())) => {}
            ("success" | "payload failure", Err(e)) => {
                failures.push(format!("{}: header check failed: {e}", v.name))
            }
            (_, Ok(())) => failures.push(format!("{}: header check passed", v.name)),
            (expect, Err(e)) if category(&e) != expect => failures.push(format!(
                "{}: header check says `{}`, expected `{expect}`",
                v.name,
                category(&e)
            )),
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_category_is_covered() {
    let vectors = load_vectors();
    for c in CATEGORIES {
        assert!(
            vectors.iter().any(|v| v.expect() == c),
            "no vector expects `{c}`"
        );
    }
    let success = vectors.iter().filter(|v| v.expect() == "success").count();
    assert!(success >= 5, "only {success} success vectors");
}

#[test]
fn vectors_on_disk_match_the_generator() {
    let generated = gen_vectors::all_vectors();
    let dir = vectors_dir();
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".cbv"))
        .collect();
    on_disk.sort();
    let mut names: Vec<String> = generated.iter().map(|v| v.file_name()).collect();
    names.sort();
    assert_eq!(
        on_disk, names,
        "tests/vectors is out of date: run the gen_vectors example"
    );
    for v in &generated {
        let file = std::fs::read(dir.join(v.file_name())).unwrap();
        assert!(
            file == v.serialize(),
            "{} differs from the generator's output: run the gen_vectors example",
            v.file_name()
        );
    }
}

#[test]
fn vectors_stay_small() {
    let total: u64 = std::fs::read_dir(vectors_dir())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(total < 1_500_000, "vectors take {total} bytes");
}

#[test]
fn zstd_tar_vector_payload_is_a_zstd_frame_holding_a_tar() {
    let p = gen_vectors::zstd_tar_payload();
    assert_eq!(&p[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd magic");
    // The tar starts after the 4-byte magic, 1-byte descriptor, 2-byte size, 3-byte block header.
    let tar = &p[10..];
    assert_eq!(&tar[257..263], b"ustar\0");
    assert_eq!(&tar[..7], b"vector/");
}

/// An independent decoder, written from docs/FORMAT.md only (it uses the library for
/// nothing but the label constants), so that the document and the library are checked
/// against each other on every vector.
mod spec_decoder {
    use aes_gcm::aead::{AeadInOut, KeyInit};
    use aes_gcm::Aes256Gcm;
    use chacha20poly1305::ChaCha20Poly1305;
    use coffer_format::labels;
    use hkdf::Hkdf;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    const CHUNK: usize = 65536;
    const TAG: usize = 16;
    const SEALED: usize = CHUNK + TAG;
    const HEADER: usize = 128;
    /// 9999-12-31T23:59:59.999Z in milliseconds since the Unix epoch.
    const MAX_CREATED: u64 = 253_402_300_799_999;

    /// The text form of a backup id (section 4): the UTC date and time of `created`
    /// (milliseconds since the Unix epoch, proleptic Gregorian calendar) as
    /// `YYYYMMDDTHHMMSSmmmZ`, a dash, and the tag in lower-case hex.
    pub fn id_text(created: u64, tag: &[u8]) -> String {
        let (days, ms_of_day) = (created / 86_400_000, created % 86_400_000);
        // Walk years, then months, from 1970-01-01.
        let leap = |y: u64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let (mut year, mut left) = (1970u64, days);
        loop {
            let len = if leap(year) { 366 } else { 365 };
            if left < len {
                break;
            }
            left -= len;
            year += 1;
        }
        let months = [
            31,
            if leap(year) { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        let mut month = 0;
        while left >= months[month] {
            left -= months[month];
            month += 1;
        }
        let (h, m, sec, ms) = (
            ms_of_day / 3_600_000,
            ms_of_day / 60_000 % 60,
            ms_of_day / 1000 % 60,
            ms_of_day % 1000,
        );
        let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{year:04}{:02}{:02}T{h:02}{m:02}{sec:02}{ms:03}Z-{tag}",
            month + 1,
            left + 1
        )
    }

    pub fn decode(key: &[u8; 32], expected_id: &str, data: &[u8]) -> Result<Vec<u8>, &'static str> {
        // 1. Magic (a short input that is a prefix of the magic is a cut-off header).
        if data.len() < 6 {
            return Err(if b"COFFER".starts_with(data) {
                "header failure"
            } else {
                "not coffer"
            });
        }
        if &data[..6] != b"COFFER" {
            return Err("not coffer");
        }
        // 2. Version, then the rest of the fixed fields.
        if data.len() < 7 {
            return Err("header failure");
        }
        if data[6] != 2 {
            return Err("unsupported");
        }
        if data.len() < HEADER {
            return Err("header failure");
        }
        let cipher = data[7];
        let payload_label = match cipher {
            1 => labels::PAYLOAD_AES_256_GCM,
            2 => labels::PAYLOAD_CHACHA20_POLY1305,
            _ => return Err("unsupported"),
        };
        if data[8] != 16 {
            return Err("unsupported");
        }
        if data[9..12] != [0, 0, 0] {
            return Err("header failure");
        }
        let created = u64::from_be_bytes(data[20..28].try_into().unwrap());
        if created > MAX_CREATED {
            return Err("header failure");
        }
        // 3. Key id and commitment, to tell a wrong key from an altered header.
        let mut id = [0u8; 8];
        Hkdf::<Sha256>::new(None, key)
            .expand(labels::KEY_ID, &mut id)
            .unwrap();
        let prk = Hkdf::<Sha256>::new(Some(&data[32..64]), key);
        let expand = |label: &[u8]| {
            let mut out = [0u8; 32];
            prk.expand(label, &mut out).unwrap();
            out
        };
        let id_ok = id == data[12..20];
        let commitment_ok = expand(labels::COMMITMENT) == data[64..96];
        match (id_ok, commitment_ok) {
            (false, false) => return Err("wrong key"),
            (true, true) => {}
            _ => return Err("header failure"),
        }
        // 4. Header MAC.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&expand(labels::HEADER_MAC)).unwrap();
        mac.update(&data[..96]);
        if mac.verify_slice(&data[96..128]).is_err() {
            return Err("header failure");
        }
        // 5. The backup it says it is.
        if id_text(created, &data[28..32]) != expected_id {
            return Err("renamed");
        }
        // 6. Chunks: all full except the last, which is shorter or full, and empty only
        // when it is the only one.
        let payload_key = expand(payload_label);
        let aad = &data[96..128];
        let body = &data[HEADER..];
        if body.is_empty() {
            return Err("payload failure");
        }
        let chunks: Vec<&[u8]> = body.chunks(SEALED).collect();
        let mut out = Vec::new();
        for (i, sealed) in chunks.iter().enumerate() {
            let last = i + 1 == chunks.len();
            if sealed.len() < TAG || (last && i > 0 && sealed.len() == TAG) {
                return Err("payload failure");
            }
            let mut nonce = [0u8; 12];
            nonce[3..11].copy_from_slice(&(i as u64).to_be_bytes());
            nonce[11] = u8::from(last);
            let (ct, tag) = sealed.split_at(sealed.len() - TAG);
            let mut buf = ct.to_vec();
            let Ok(tag) = tag.try_into() else {
                return Err("payload failure");
            };
            let ok = match cipher {
                1 => Aes256Gcm::new_from_slice(&payload_key)
                    .unwrap()
                    .decrypt_inout_detached((&nonce).into(), aad, buf.as_mut_slice().into(), &tag)
                    .is_ok(),
                _ => ChaCha20Poly1305::new_from_slice(&payload_key)
                    .unwrap()
                    .decrypt_inout_detached((&nonce).into(), aad, buf.as_mut_slice().into(), &tag)
                    .is_ok(),
            };
            if !ok {
                return Err("payload failure");
            }
            out.extend_from_slice(&buf);
        }
        Ok(out)
    }
}

#[test]
fn independent_decoder_agrees_on_every_vector() {
    let vectors = load_vectors();
    assert!(vectors.len() >= MIN_VECTORS);
    let mut failures = Vec::new();
    for v in &vectors {
        let key = *v.key().as_bytes();
        let got = match spec_decoder::decode(&key, v.id(), &v.bytes) {
            Ok(plain) => {
                let h = hex(&Sha256::digest(&plain));
                if v.field("payload sha256") == Some(h.as_str()) {
                    "success".to_string()
                } else {
                    format!("success with payload sha256 {h}")
                }
            }
            Err(category) => category.to_string(),
        };
        if got != v.expect() {
            failures.push(format!("{}: `{got}`, expected `{}`", v.name, v.expect()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn format_md_lists_every_label() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/FORMAT.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for label in coffer_format::labels::ALL {
        let label = std::str::from_utf8(label).unwrap();
        assert!(
            doc.contains(&format!("`{label}`")),
            "docs/FORMAT.md does not list the label `{label}`"
        );
    }
    // And no stale label: every `coffer/v…/…` string in the document is a real label.
    for (start, _) in doc.match_indices("`coffer/v") {
        let start = start + 1;
        let label: String = doc[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '.' | '_'))
            .collect();
        assert!(
            coffer_format::labels::ALL.contains(&label.as_bytes()),
            "docs/FORMAT.md mentions `{label}`, which is not in labels.rs"
        );
    }
}

/// The worked example of docs/FORMAT.md (section 14) is `ok_empty_aes.cbv`, recomputed here
/// step by step from the document's definitions: every value it shows must be right.
#[test]
fn format_md_worked_example_is_right() {
    use hkdf::Hkdf;
    use hmac::{Hmac, Mac};
    let v = load_vectors()
        .into_iter()
        .find(|v| v.name == "ok_empty_aes")
        .expect("the ok_empty_aes vector");
    let k = *v.key().as_bytes();
    let b = &v.bytes;
    assert_eq!(b.len(), 128 + 16);
    let mut key_id = [0u8; 8];
    Hkdf::<Sha256>::new(None, &k)
        .expand(coffer_format::labels::KEY_ID, &mut key_id)
        .unwrap();
    let salt = &b[32..64];
    let (prk, hk) = Hkdf::<Sha256>::extract(Some(salt), &k);
    let expand = |label: &[u8]| {
        let mut out = [0u8; 32];
        hk.expand(label, &mut out).unwrap();
        out
    };
    let commitment = expand(coffer_format::labels::COMMITMENT);
    let mac_key = expand(coffer_format::labels::HEADER_MAC);
    let payload_key = expand(coffer_format::labels::PAYLOAD_AES_256_GCM);
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&mac_key).unwrap();
    m.update(&b[..96]);
    let mac: [u8; 32] = m.finalize().into_bytes().into();
    assert_eq!(&b[12..20], &key_id);
    assert_eq!(&b[64..96], &commitment);
    assert_eq!(&b[96..128], &mac);
    let created = u64::from_be_bytes(b[20..28].try_into().unwrap());
    assert_eq!(spec_decoder::id_text(created, &b[28..32]), v.id());
    let values = format!(
        "K              {}\n\
         key_id         {}\n\
         backup id      {} (created {created} ms, tag {})\n\
         salt           {}\n\
         PRK            {}\n\
         commitment     {}\n\
         header_mac_key {}\n\
         payload_key    {}\n\
         header MAC     {}\n\
         nonce_0        000000000000000000000001   (the only chunk is the final one)\n\
         C_0            {}   (empty ciphertext, 16-byte tag)\n",
        hex(&k),
        hex(&key_id),
        v.id(),
        hex(&b[28..32]),
        hex(salt),
        hex(&prk),
        hex(&commitment),
        hex(&mac_key),
        hex(&payload_key),
        hex(&mac),
        hex(&b[128..]),
    );
    let bytes = format!(
        "offset 0    {} {} {} {} {} {}\n\
         offset 20   {} {}\n\
         offset 32   {}\n\
         offset 64   {}\n\
         offset 96   {}\n\
         offset 128  {}\n",
        hex(&b[..6]),
        hex(&b[6..7]),
        hex(&b[7..8]),
        hex(&b[8..9]),
        hex(&b[9..12]),
        hex(&b[12..20]),
        hex(&b[20..28]),
        hex(&b[28..32]),
        hex(&b[32..64]),
        hex(&b[64..96]),
        hex(&b[96..128]),
        hex(&b[128..]),
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/FORMAT.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    for block in [values, bytes] {
        assert!(
            doc.contains(&block),
            "docs/FORMAT.md's worked example should read:\n{block}"
        );
    }
}
