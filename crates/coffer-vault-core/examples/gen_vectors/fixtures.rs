//! The fixed inputs every vector is made from, and the deterministic generators that stand
//! in for the operating system's where the crate takes randomness.

use coffer_vault_core::{Fleet, FleetKeys};
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::Scalar;
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

use super::spec;

pub const ACCOUNT: &[u8] = b"+15550001";
pub const OTHER_ACCOUNT: &[u8] = b"+15550002";

/// 256 bytes: the longest account id a vault node takes (`coffer-vault-node`), and the
/// only length it takes whose 2-byte length prefix has a non-zero high byte (0x0100).
pub fn long_account() -> Vec<u8> {
    let mut out = b"user-".to_vec();
    out.resize(256, b'x');
    out
}

pub fn fixed32(label: &str) -> [u8; 32] {
    Sha256::digest(format!("coffer-vault-core test vector: {label}").as_bytes()).into()
}

/// Deterministic bytes: SHA-256(label || counter) blocks.
pub fn pseudo_random(label: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut counter = 0u32;
    while out.len() < len {
        let mut h = Sha256::new();
        h.update(format!("coffer-vault-core test vector: {label}").as_bytes());
        h.update(counter.to_be_bytes());
        out.extend_from_slice(&h.finalize());
        counter += 1;
    }
    out.truncate(len);
    out
}

pub fn fixed12(label: &str) -> [u8; 12] {
    pseudo_random(label, 12).try_into().expect("12 bytes")
}

/// A generator that hands out exactly the given bytes, and panics when asked for more: the
/// vector states those bytes as an input (a nonce, a registration id), and the panic proves
/// that the crate draws nothing else.
pub struct Scripted {
    bytes: Vec<u8>,
}

impl Scripted {
    pub fn new(bytes: &[u8]) -> Scripted {
        Scripted {
            bytes: bytes.to_vec(),
        }
    }

    pub fn is_spent(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl RngCore for Scripted {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        assert!(
            dest.len() <= self.bytes.len(),
            "the crate drew more random bytes than the vector states"
        );
        let rest = self.bytes.split_off(dest.len());
        dest.copy_from_slice(&self.bytes);
        self.bytes = rest;
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// Test vectors only: a scripted generator is exactly as strong as the vector says.
impl CryptoRng for Scripted {}

/// The K of the device whose record the authorization and ownership vectors are about.
pub fn k_a() -> [u8; 32] {
    fixed32("K A")
}

/// The K of somebody who registered over that account.
pub fn k_b() -> [u8; 32] {
    fixed32("K B")
}

pub fn channel_secret_a() -> [u8; 32] {
    fixed32("fleet A channel secret")
}
pub fn channel_secret_b() -> [u8; 32] {
    fixed32("fleet B channel secret")
}
pub fn sealing_key_a() -> [u8; 32] {
    fixed32("fleet A sealing key")
}
pub fn sealing_key_b() -> [u8; 32] {
    fixed32("fleet B sealing key")
}

/// A reduced scalar from a label, as OPAQUE's server private key.
pub fn scalar(label: &str) -> Scalar {
    Scalar::from_bytes_mod_order(fixed32(label))
}

/// The serialized OPAQUE server setup (`opaque-ke` 4): OPRF seed (64), server private key
/// (32), dummy public key (32), all fixed.
pub fn opaque_setup() -> Vec<u8> {
    let mut out = pseudo_random("fleet A OPRF seed", 64);
    out.extend_from_slice(scalar("fleet A OPAQUE server key").as_bytes());
    let dummy = RISTRETTO_BASEPOINT_POINT * scalar("fleet A OPAQUE dummy key");
    out.extend_from_slice(&dummy.compress().to_bytes());
    out
}

/// Fleet secrets in their stored layout.
pub fn fleet_secrets(max_guesses: u16, sealing: &[u8; 32], channel: &[u8; 32]) -> Vec<u8> {
    let mut out = vec![spec::VERSION];
    out.extend_from_slice(&max_guesses.to_be_bytes());
    out.extend_from_slice(sealing);
    out.extend_from_slice(channel);
    out.extend(opaque_setup());
    out
}

/// A fleet with the given sealing key and channel secret (and the fixed OPAQUE setup).
pub fn fleet(sealing: &[u8; 32], channel: &[u8; 32]) -> Fleet {
    Fleet::from_bytes(&fleet_secrets(10, sealing, channel)).expect("fixed fleet secrets parse")
}

pub fn fleet_a() -> Fleet {
    fleet(&sealing_key_a(), &channel_secret_a())
}

/// Public keys with only the channel key set: all the channel needs.
pub fn channel_keys(channel_public: &[u8; 32]) -> FleetKeys {
    FleetKeys {
        channel: channel_public.to_vec(),
        opaque: vec![0; 32],
    }
}

/// `bytes` with the bits of `mask` flipped at `offset`.
pub fn flip(bytes: &[u8], offset: usize, mask: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[offset] ^= mask;
    out
}
