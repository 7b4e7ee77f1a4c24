//! The fleet's secrets and the public keys clients pin.

use curve25519_dalek::MontgomeryPoint;
use opaque_ke::ServerSetup;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::{labels, Suite, VaultError, MAX_GUESSES_RANGE, PROTOCOL_VERSION};

/// The fleet secrets: the OPAQUE server setup (OPRF seed and server key pair), the channel's
/// X25519 static key, and the key that seals records at rest.
pub struct Fleet {
    opaque: ServerSetup<Suite>,
    channel_secret: Zeroizing<[u8; 32]>,
    sealing_key: Zeroizing<[u8; 32]>,
    max_guesses: u16,
    /// Derived from the two secret keys once, at construction.
    keys: FleetKeys,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Fleet(fingerprint {}, max_guesses {})",
            self.fingerprint(),
            self.max_guesses
        )
    }
}

/// Bytes before the OPAQUE setup in [`Fleet::to_bytes`]: version, budget, two keys.
const FIXED_LEN: usize = 1 + 2 + 32 + 32;

impl Fleet {
    pub fn generate<R: RngCore + CryptoRng>(
        rng: &mut R,
        max_guesses: u16,
    ) -> Result<Fleet, VaultError> {
        if !MAX_GUESSES_RANGE.contains(&max_guesses) {
            return Err(VaultError::Internal(format!(
                "max_guesses must be within {MAX_GUESSES_RANGE:?}"
            )));
        }
        let mut sealing_key = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(sealing_key.as_mut());
        let mut channel_secret = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(channel_secret.as_mut());
        Ok(Fleet::assemble(
            ServerSetup::<Suite>::new(rng),
            channel_secret,
            sealing_key,
            max_guesses,
        ))
    }

    /// Serialized secrets, for a sealing backend to keep:
    /// `version (1) || max_guesses (2) || sealing key (32) || channel key (32) || OPAQUE setup`.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::new());
        out.push(PROTOCOL_VERSION);
        out.extend_from_slice(&self.max_guesses.to_be_bytes());
        out.extend_from_slice(self.sealing_key.as_ref());
        out.extend_from_slice(self.channel_secret.as_ref());
        out.extend_from_slice(&self.opaque.serialize());
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Fleet, VaultError> {
        if bytes.len() < FIXED_LEN || bytes[0] != PROTOCOL_VERSION {
            return Err(VaultError::BadFleet);
        }
        let max_guesses = u16::from_be_bytes([bytes[1], bytes[2]]);
        if !MAX_GUESSES_RANGE.contains(&max_guesses) {
            return Err(VaultError::BadFleet);
        }
        let mut sealing_key = Zeroizing::new([0u8; 32]);
        sealing_key.copy_from_slice(&bytes[3..35]);
        let mut channel_secret = Zeroizing::new([0u8; 32]);
        channel_secret.copy_from_slice(&bytes[35..67]);
        let opaque = ServerSetup::<Suite>::deserialize(&bytes[FIXED_LEN..])
            .map_err(|_| VaultError::BadFleet)?;
        Ok(Fleet::assemble(
            opaque,
            channel_secret,
            sealing_key,
            max_guesses,
        ))
    }

    fn assemble(
        opaque: ServerSetup<Suite>,
        channel_secret: Zeroizing<[u8; 32]>,
        sealing_key: Zeroizing<[u8; 32]>,
        max_guesses: u16,
    ) -> Fleet {
        let keys = FleetKeys {
            channel: MontgomeryPoint::mul_base_clamped(*channel_secret)
                .to_bytes()
                .to_vec(),
            opaque: opaque.keypair().public().serialize().to_vec(),
        };
        Fleet {
            opaque,
            channel_secret,
            sealing_key,
            max_guesses,
            keys,
        }
    }

    /// The public keys clients pin.
    pub fn keys(&self) -> &FleetKeys {
        &self.keys
    }

    /// What clients pin: see [`FleetKeys::fingerprint`].
    pub fn fingerprint(&self) -> String {
        self.keys().fingerprint()
    }

    pub fn max_guesses(&self) -> u16 {
        self.max_guesses
    }

    pub(crate) fn opaque(&self) -> &ServerSetup<Suite> {
        &self.opaque
    }

    pub(crate) fn channel_secret(&self) -> &[u8; 32] {
        &self.channel_secret
    }

    pub(crate) fn sealing_key(&self) -> &[u8; 32] {
        &self.sealing_key
    }
}

/// A fleet's public keys: the channel's X25519 key (Noise NK's responder static key) and the
/// OPAQUE server key. A client accepts them only when their fingerprint is the pinned one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetKeys {
    #[serde(rename = "channel_key", with = "crate::hex")]
    pub channel: Vec<u8>,
    #[serde(rename = "opaque_key", with = "crate::hex")]
    pub opaque: Vec<u8>,
}

impl FleetKeys {
    /// `SHA-256("coffer/v2/vault/fleet\0" || channel key || OPAQUE key)`, 32 bytes.
    pub fn fingerprint_bytes(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(labels::FLEET_FINGERPRINT);
        h.update(&self.channel);
        h.update(&self.opaque);
        h.finalize().into()
    }

    /// The fingerprint as 64 lower-case hex digits: what `coffer vault init` prints.
    pub fn fingerprint(&self) -> String {
        self.fingerprint_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether these are the keys of the fleet pinned as `fingerprint` (64 hex digits, any
    /// case). Keys of the wrong length never match.
    pub fn matches(&self, fingerprint: &str) -> bool {
        self.channel.len() == 32
            && self.opaque.len() == 32
            && fingerprint.len() == 64
            && bool::from(
                self.fingerprint()
                    .as_bytes()
                    .ct_eq(fingerprint.to_ascii_lowercase().as_bytes()),
            )
    }
}

/// Whether `text` is a fingerprint: exactly 64 hex digits.
pub fn is_fingerprint(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn secrets_round_trip_and_keep_their_keys() {
        let fleet = Fleet::generate(&mut OsRng, 7).unwrap();
        let again = Fleet::from_bytes(&fleet.to_bytes()).unwrap();
        assert_eq!(fleet.keys(), again.keys());
        assert_eq!(again.max_guesses(), 7);
        assert!(fleet.keys().matches(&fleet.fingerprint().to_uppercase()));
        assert!(is_fingerprint(&fleet.fingerprint()));
        assert!(Fleet::generate(&mut OsRng, 0).is_err());
        assert!(Fleet::from_bytes(&[0u8; 10]).is_err());
        let mut v1 = fleet.to_bytes().to_vec();
        v1[0] = 1;
        assert!(Fleet::from_bytes(&v1).is_err(), "an old version is refused");
        let dump = format!("{fleet:?}");
        assert!(!dump.contains(&format!("{:?}", &fleet.to_bytes()[3..35])));
    }

    #[test]
    fn the_fingerprint_covers_both_keys() {
        let keys = Fleet::generate(&mut OsRng, 10).unwrap().keys().clone();
        let fp = keys.fingerprint();
        for i in 0..2 {
            let mut other = keys.clone();
            if i == 0 {
                other.channel[0] ^= 1;
            } else {
                other.opaque[31] ^= 1;
            }
            assert!(!other.matches(&fp));
        }
        assert!(!keys.matches(&fp[..63]));
        assert!(!keys.matches("0000"));
    }
}
