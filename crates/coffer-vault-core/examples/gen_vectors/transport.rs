//! K transport vectors: the K blob under the OPAQUE session key, as the client opens it.

use coffer_vault_core::seal_k_transport_for_test_vectors;

use super::fixtures::*;
use super::spec::transport as spec_transport;
use super::Vector;

fn session_key(label: &str) -> Vec<u8> {
    pseudo_random(&format!("OPAQUE session key {label}"), 64)
}

fn transport_vector(name: &str, expect: &str, comment: &str, session_key: &[u8]) -> Vector {
    Vector::new(name, "transport", expect)
        .text("comment", comment)
        .hex("session key", session_key)
        .hex("transport key", &spec_transport::key(session_key))
}

pub fn vectors() -> Vec<Vector> {
    let sk = session_key("1");
    let blob = pseudo_random("a client-sealed K blob", 93);
    let n = fixed12("transport nonce");
    let mut rng = Scripted::new(&n);
    let sealed = seal_k_transport_for_test_vectors(&sk, &blob, &mut rng).expect("seals");
    assert!(rng.is_spent(), "the nonce is all the transport draws");
    let key = spec_transport::key(&sk);
    assert_eq!(
        sealed,
        spec_transport::seal_raw(&key, &n, super::spec::labels::K_TRANSPORT, &blob),
        "the crate and the independent sealing disagree"
    );
    let last = sealed.len() - 1;
    let bad = |name: &str, comment: &str, session: &[u8], bytes: &[u8]| {
        transport_vector(name, "does not open", comment, session).hex("sealed", bytes)
    };
    let mut v = vec![transport_vector(
        "transport_k_blob",
        "success",
        "a 93-byte K blob under a 64-byte OPAQUE session key",
        &sk,
    )
    .hex("nonce", &n)
    .hex("k blob", &blob)
    .hex("sealed", &sealed)];
    v.push(bad(
        "transport_other_session_key",
        "transport_k_blob opened with another login's session key",
        &session_key("2"),
        &sealed,
    ));
    for (name, offset, comment) in [
        (
            "transport_flip_nonce",
            0,
            "transport_k_blob with one bit of the nonce flipped",
        ),
        (
            "transport_flip_ciphertext",
            12 + 40,
            "transport_k_blob with one bit of the ciphertext flipped",
        ),
        (
            "transport_flip_tag",
            last,
            "transport_k_blob with one bit of the tag flipped",
        ),
    ] {
        v.push(bad(name, comment, &sk, &flip(&sealed, offset, 0x04)));
    }
    v.push(bad(
        "transport_truncated",
        "transport_k_blob without its last byte",
        &sk,
        &sealed[..last],
    ));
    v.push(bad(
        "transport_shorter_than_nonce_and_tag",
        "27 bytes: less than a nonce and a tag",
        &sk,
        &sealed[..27],
    ));
    v.push(bad(
        "transport_without_associated_data",
        "the K blob sealed under the right key and nonce, with empty associated data",
        &sk,
        &spec_transport::seal_raw(&key, &n, b"", &blob),
    ));
    let mut sha256_key = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(None, &sk)
        .expand(super::spec::labels::K_TRANSPORT, &mut sha256_key)
        .expect("32 bytes");
    v.push(bad(
        "transport_key_from_hkdf_sha256",
        "the K blob sealed under a key from HKDF-SHA256 instead of HKDF-SHA512",
        &sk,
        &spec_transport::seal_raw(&sha256_key, &n, super::spec::labels::K_TRANSPORT, &blob),
    ));
    v
}
