//! Every HKDF label used by the format. Each is versioned; a new format version gets new labels.
//! docs/FORMAT.md lists the same strings; a test checks that they agree.

/// HKDF-SHA256 info for the public key identifier (no salt).
pub const KEY_ID: &[u8] = b"coffer/v2/key-id";
/// HKDF-SHA256 info for the 32-byte key commitment stored in the header.
pub const COMMITMENT: &[u8] = b"coffer/v2/key-commitment";
/// HKDF-SHA256 info for the HMAC-SHA256 key that authenticates the header.
pub const HEADER_MAC: &[u8] = b"coffer/v2/header-mac";
/// HKDF-SHA256 info for the payload key when the cipher is AES-256-GCM.
pub const PAYLOAD_AES_256_GCM: &[u8] = b"coffer/v2/payload/aes-256-gcm";
/// HKDF-SHA256 info for the payload key when the cipher is ChaCha20-Poly1305.
pub const PAYLOAD_CHACHA20_POLY1305: &[u8] = b"coffer/v2/payload/chacha20-poly1305";

/// All labels, for the documentation test.
pub const ALL: [&[u8]; 5] = [
    KEY_ID,
    COMMITMENT,
    HEADER_MAC,
    PAYLOAD_AES_256_GCM,
    PAYLOAD_CHACHA20_POLY1305,
];
