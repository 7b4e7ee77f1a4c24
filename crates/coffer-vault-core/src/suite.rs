//! The fixed OPAQUE cipher suite and the Argon2id parameters recorded per registration.

use opaque_ke::{CipherSuite, Ristretto255, TripleDh};
use serde::{Deserialize, Serialize};

/// OPAQUE (RFC 9807) with Ristretto255, TripleDH over SHA-512, and Argon2id as the
/// client-side key-stretching function.
pub struct Suite;

impl CipherSuite for Suite {
    type OprfCs = Ristretto255;
    type KeyExchange = TripleDh<Ristretto255, sha2::Sha512>;
    type Ksf = argon2::Argon2<'static>;
}

/// Argon2id parameters a client used at registration. The vault stores them with the
/// record and hands them back at recovery, so they can be raised for new registrations
/// without breaking old ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KsfParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl KsfParams {
    /// The default for new registrations: 64 MiB, 3 passes, 1 lane (RFC 9106's second
    /// recommended option).
    pub const DEFAULT: KsfParams = KsfParams {
        m_cost_kib: 64 * 1024,
        t_cost: 3,
        p_cost: 1,
    };

    /// Bounds that both the vault (at registration) and the client (before running Argon2id
    /// with parameters the vault sent) enforce: at most 1 GiB, 16 passes and 8 lanes, so that
    /// no registration can make a later recovery hang or exhaust a phone.
    pub fn is_sane(&self) -> bool {
        // Lanes first: the memory bound is computed from them, and must not overflow.
        (1..=8).contains(&self.p_cost)
            && (8 * self.p_cost..=1024 * 1024).contains(&self.m_cost_kib)
            && (1..=16).contains(&self.t_cost)
    }

    /// The Argon2id instance for these parameters.
    pub fn argon2(&self) -> Result<argon2::Argon2<'static>, argon2::Error> {
        let params = argon2::Params::new(self.m_cost_kib, self.t_cost, self.p_cost, None)?;
        Ok(argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            params,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_hold_for_every_field_and_never_overflow() {
        assert!(KsfParams::DEFAULT.is_sane());
        let ok = KsfParams {
            m_cost_kib: 8,
            t_cost: 1,
            p_cost: 1,
        };
        assert!(ok.is_sane());
        for bad in [
            KsfParams {
                p_cost: 1 << 29,
                ..ok
            },
            KsfParams {
                p_cost: u32::MAX,
                ..ok
            },
            KsfParams { p_cost: 0, ..ok },
            KsfParams {
                p_cost: 9,
                m_cost_kib: 1024,
                ..ok
            },
            KsfParams { t_cost: 0, ..ok },
            KsfParams { t_cost: 17, ..ok },
            KsfParams {
                m_cost_kib: 7,
                ..ok
            },
            KsfParams {
                m_cost_kib: 1024 * 1024 + 1,
                ..ok
            },
            KsfParams {
                p_cost: 2,
                m_cost_kib: 15,
                ..ok
            },
        ] {
            assert!(!bad.is_sane(), "{bad:?}");
        }
    }
}
