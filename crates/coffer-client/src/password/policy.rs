//! The one password policy, applied wherever a password comes from (a prompt, standard
//! input, or a program using this library).

use crate::error::ClientError;

/// Fewest characters of a new password.
pub const MIN_CHARS: usize = 8;
/// Most bytes of any password, new or tried.
pub const MAX_BYTES: usize = 1024;

/// Checks a password being set (enable, change of password).
pub fn check_new(password: &str) -> Result<(), ClientError> {
    check_any(password)?;
    if password.chars().count() < MIN_CHARS {
        return Err(ClientError::Usage(format!(
            "choose a password of at least {MIN_CHARS} characters"
        )));
    }
    Ok(())
}

/// Checks a password being tried (a recovery): only what no password can be, so that a
/// mistyped one is never refused for its shape.
pub fn check_any(password: &str) -> Result<(), ClientError> {
    if password.is_empty() {
        return Err(ClientError::Usage("the password is empty".into()));
    }
    if password.len() > MAX_BYTES {
        return Err(ClientError::Usage(format!(
            "a password is at most {MAX_BYTES} bytes"
        )));
    }
    if password.chars().any(char::is_control) {
        return Err(ClientError::Usage(
            "the password contains a control character (a tab, an escape, a line break…)".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_passwords_need_eight_characters_and_no_control_characters() {
        assert!(check_new("eight ch").is_ok());
        assert!(check_new("ünïcödé!").is_ok(), "characters, not bytes");
        for bad in ["", "seven c", "tab\tinside", &"x".repeat(MAX_BYTES + 1)] {
            assert!(
                matches!(check_new(bad), Err(ClientError::Usage(_))),
                "{bad:?}"
            );
        }
        assert!(
            check_any("short").is_ok(),
            "a tried password is not judged by length"
        );
        assert!(check_any("").is_err());
    }
}
