//! Account ids, checked once at the door: every limit, table and vault path sees only a
//! valid [`AccountId`].

use std::fmt;

/// Longest account id, in characters (which are bytes here: ids are printable ASCII).
pub const MAX_ACCOUNT_ID: usize = 128;

/// An account id such as a phone number or an e-mail address: 1 to 128 printable ASCII
/// characters, no spaces (JSON Schema `^[!-~]{1,128}$`). Being ASCII, its length is the
/// same in characters and in bytes, so the published schema and the server agree.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("account ids are 1 to 128 printable ASCII characters without spaces")]
pub struct BadAccountId;

impl AccountId {
    pub fn parse(id: &str) -> Result<AccountId, BadAccountId> {
        if id.is_empty() || id.len() > MAX_ACCOUNT_ID || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(BadAccountId);
        }
        Ok(AccountId(id.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({:?})", self.0)
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_printable_ascii_up_to_128() {
        for good in ["+15550100", "alice@example.org", "a", &"x".repeat(128)] {
            assert_eq!(AccountId::parse(good).unwrap().as_str(), good);
        }
        for bad in ["", " ", "a b", "tab\there", "é", "\u{0}", &"x".repeat(129)] {
            assert_eq!(AccountId::parse(bad), Err(BadAccountId), "{bad:?}");
        }
    }
}
