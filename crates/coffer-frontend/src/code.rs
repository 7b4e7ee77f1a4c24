//! Verification codes: 8 decimal digits, drawn uniformly, shown to the user once.

use std::fmt;

use rand_core::RngCore;
use zeroize::Zeroizing;

/// Digits in a verification code.
pub const CODE_DIGITS: usize = 8;

/// 10^8: how many codes there are.
const CODE_SPACE: u32 = 100_000_000;

/// A verification code, as issued to the verifier or as given back by a user. Its `Debug`
/// hides the digits, and they are wiped when it is dropped.
pub struct VerificationCode(Zeroizing<String>);

/// A code that is not exactly 8 ASCII digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("verification codes are exactly 8 digits")]
pub struct MalformedCode;

impl VerificationCode {
    /// Accepts exactly 8 ASCII digits, nothing around them.
    pub fn parse(code: &str) -> Result<VerificationCode, MalformedCode> {
        if code.len() != CODE_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MalformedCode);
        }
        Ok(VerificationCode(Zeroizing::new(code.to_string())))
    }

    /// A fresh code, every one of the 10^8 equally likely: draws at or above the largest
    /// multiple of 10^8 that fits in a `u32` are thrown away, so `% 10^8` has no bias.
    pub(crate) fn random(rng: &mut impl RngCore) -> VerificationCode {
        let zone = u32::MAX - u32::MAX % CODE_SPACE;
        loop {
            let draw = rng.next_u32();
            if draw < zone {
                return VerificationCode(Zeroizing::new(format!(
                    "{:0width$}",
                    draw % CODE_SPACE,
                    width = CODE_DIGITS
                )));
            }
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for VerificationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VerificationCode(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out the given words, then zeros.
    struct Script(Vec<u32>);

    impl RngCore for Script {
        fn next_u32(&mut self) -> u32 {
            if self.0.is_empty() {
                0
            } else {
                self.0.remove(0)
            }
        }
        fn next_u64(&mut self) -> u64 {
            u64::from(self.next_u32())
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for b in dest {
                *b = self.next_u32() as u8;
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    #[test]
    fn codes_are_eight_digits_with_leading_zeros() {
        let code = VerificationCode::random(&mut Script(vec![42]));
        assert_eq!(code.as_str(), "00000042");
        let code = VerificationCode::random(&mut Script(vec![CODE_SPACE - 1]));
        assert_eq!(code.as_str(), "99999999");
    }

    #[test]
    fn draws_in_the_biased_tail_are_thrown_away() {
        // 4_200_000_000 is 42 * 10^8: the first draw that would favour low codes.
        let zone = 42 * CODE_SPACE;
        let code = VerificationCode::random(&mut Script(vec![zone, u32::MAX, zone - 1]));
        assert_eq!(code.as_str(), "99999999");
    }

    #[test]
    fn random_codes_parse_back() {
        let mut rng = rand_core::OsRng;
        for _ in 0..1000 {
            let code = VerificationCode::random(&mut rng);
            assert_eq!(
                VerificationCode::parse(code.as_str()).unwrap().as_str(),
                code.as_str()
            );
        }
    }

    #[test]
    fn only_exactly_eight_ascii_digits_parse() {
        assert!(VerificationCode::parse("01234567").is_ok());
        for bad in [
            "",
            "1234567",
            "123456789",
            " 12345678",
            "12345678 ",
            "1234 5678",
            "1234567a",
            "١٢٣٤٥٦٧٨",
            "+1234567",
            "-1234567",
        ] {
            assert_eq!(
                VerificationCode::parse(bad).unwrap_err(),
                MalformedCode,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_hides_the_digits() {
        let code = VerificationCode::parse("31415926").unwrap();
        assert!(!format!("{code:?}").contains("31415926"));
    }
}
