//! How storage failures reach the user: OpenDAL's errors as [`ClientError`]s that say what
//! went wrong and whether a retry helps, scrubbed of secrets; and notices.

use std::sync::Mutex;
use std::time::Duration;

use opendal::ErrorKind;
use zeroize::Zeroizing;

use super::limits::{LISTING_ENTRY_BYTES, MAX_DETAIL_CHARS, MAX_LISTING_ENTRIES, MIN_RATE};
use super::location;
use super::transport::ANSWER_TOO_LONG;
use crate::error::ClientError;

type NoticeHook = Box<dyn Fn(&str) + Send + Sync>;

/// Shared between a `Storage` and its retry layer, which exists before any hook is set.
#[derive(Default)]
pub(super) struct Shared {
    pub(super) secrets: Vec<Zeroizing<String>>,
    pub(super) on_notice: Mutex<Option<NoticeHook>>,
}

impl Shared {
    pub(super) fn notice(&self, text: &str) {
        let hook = self.on_notice.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(hook) = hook.as_ref() {
            hook(&location::scrub(text, &self.secrets));
        }
    }

    pub(super) fn err(&self, action: &'static str, e: opendal::Error) -> ClientError {
        let text = e.to_string();
        // An answer cut off by the transport: not worth a retry, and nothing of OpenDAL's
        // context adds to it.
        if text.contains(ANSWER_TOO_LONG) {
            return ClientError::Storage {
                action,
                message: ANSWER_TOO_LONG.to_string(),
                retryable: false,
            };
        }
        let status = http_status(&text);
        // `transient`: a later try may well work, even once the retries are spent.
        let (hint, transient) = match (e.kind(), status) {
            (ErrorKind::PermissionDenied, _) | (_, Some(401 | 403)) => (
                "access denied; check the credentials and permissions",
                false,
            ),
            (ErrorKind::ConfigInvalid, _) => ("the storage settings are invalid", false),
            (ErrorKind::NotFound, _) | (_, Some(404)) => {
                ("not found; does the bucket or folder exist?", false)
            }
            (ErrorKind::RateLimited, _) | (_, Some(429)) => {
                ("the provider is limiting the request rate", true)
            }
            _ if text.contains("timeout reached") => ("timed out", true),
            // The retry layer marks a temporary error it gave up on as persistent.
            _ if e.is_persistent() => ("the provider kept failing, also when retried", true),
            _ => ("", e.is_temporary() || status.is_some_and(|s| s >= 500)),
        };
        let status = status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
        // OpenDAL's text ends with the provider's answer, often several lines of XML or
        // HTML: the first line says enough, and a few hundred characters of it (a hostile
        // provider's line can be megabytes). Scrubbed before it is cut, so that no part of
        // a secret is left.
        let detail = shorten(
            &location::scrub(first_line(&text), &self.secrets),
            MAX_DETAIL_CHARS,
        );
        let message = if hint.is_empty() {
            format!("{detail}{status}")
        } else {
            format!("{hint}{status}: {detail}")
        };
        ClientError::Storage {
            action,
            retryable: transient,
            message,
        }
    }
}

/// A listing of `dir` that went past [`MAX_LISTING_ENTRIES`].
pub(super) fn too_many_entries(action: &'static str, dir: &str) -> ClientError {
    ClientError::Storage {
        action,
        message: format!(
            "the provider listed more than {MAX_LISTING_ENTRIES} entries in {dir}, more than \
             any real storage location holds; stopped reading it (the provider is broken or \
             hostile)"
        ),
        retryable: false,
    }
}

/// A listing of `dir` that ran out of time after `entries` entries.
pub(super) fn listing_too_slow(
    action: &'static str,
    dir: &str,
    entries: usize,
    waited: Duration,
    base: Duration,
) -> ClientError {
    ClientError::Storage {
        action,
        message: format!(
            "timed out: the provider listed {entries} entries of {dir} in {:.0} s, too slow \
             (Coffer waits {:.0} s plus {:.0} ms an entry); it is overloaded, or its listing \
             never ends",
            waited.as_secs_f64(),
            base.as_secs_f64(),
            LISTING_ENTRY_BYTES as f64 * 1000.0 / MIN_RATE as f64
        ),
        retryable: true,
    }
}

/// A download that ran out of time with `received` of the `size` bytes listed.
pub(super) fn download_too_slow(
    action: &'static str,
    received: u64,
    size: u64,
    waited: Duration,
    base: Duration,
) -> ClientError {
    ClientError::Storage {
        action,
        message: format!(
            "timed out: the provider sent {received} of {size} bytes in {:.0} s, too slow \
             (Coffer waits {:.0} s plus the time what arrived takes at {} KiB/s); it is \
             overloaded, or stalling",
            waited.as_secs_f64(),
            base.as_secs_f64(),
            MIN_RATE >> 10
        ),
        retryable: true,
    }
}

/// A few words on why a request failed, for retry notices.
pub(super) fn summary(e: &opendal::Error) -> String {
    let text = e.to_string();
    if let Some(status) = http_status(&text) {
        return format!("HTTP {status}");
    }
    if text.contains("timeout reached") {
        return "timed out".into();
    }
    let line = first_line(&text);
    line.rsplit(" => ").next().unwrap_or(line).to_string()
}

/// A retry note's cause: scrubbed of secrets before it is cut short, so that no part of
/// a secret survives a cut through its middle.
pub(super) fn retry_cause(e: &opendal::Error, secrets: &[Zeroizing<String>]) -> String {
    shorten(&location::scrub(&summary(e), secrets), 120)
}

/// The HTTP status in an OpenDAL error's context, if there is one.
pub(super) fn http_status(text: &str) -> Option<u16> {
    let at = text.find("status: ")? + "status: ".len();
    text.get(at..at + 3)?.parse().ok()
}

/// Whether OpenDAL says an object is shorter than the range asked for (its words differ
/// between ranged and streaming reads).
pub(super) fn short_read(e: &opendal::Error) -> bool {
    let text = e.to_string();
    text.contains("unexpected data size") || text.contains("too little data")
}

/// A download error; `segmented` is the backup's id when it is stored in segments.
pub(super) fn read_error(
    segmented: Option<&str>,
    shared: &Shared,
    path: &str,
    e: opendal::Error,
) -> ClientError {
    match segmented {
        // A listed backup with a segment gone has been damaged, like a cut object.
        Some(id) if e.kind() == ErrorKind::NotFound => ClientError::BadManifest {
            id: id.to_string(),
            reason: format!("its segment {path} is missing"),
        },
        // OpenDAL's words for an object shorter than the range asked for (the size
        // came from the segment list).
        Some(id) if short_read(&e) => ClientError::BadManifest {
            id: id.to_string(),
            reason: format!("its segment {path} is not the size its list says"),
        },
        _ => shared.err("download a backup", e),
    }
}

/// An object that sent more than the range asked for.
pub(super) fn too_long_read(segmented: Option<&str>, path: &str, asked: u64) -> ClientError {
    match segmented {
        Some(id) => ClientError::BadManifest {
            id: id.to_string(),
            reason: format!("its segment {path} is longer than its list says"),
        },
        None => ClientError::Storage {
            action: "download a backup",
            message: format!(
                "the provider sent more than the {asked} bytes asked for from {path}; \
                 stopped reading (the provider is broken or hostile)"
            ),
            retryable: false,
        },
    }
}

pub(super) fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// `s`, cut to at most `max` characters (on a character boundary), with "…" when cut.
pub(crate) fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((at, _)) => format!("{}…", &s[..at]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_cut_through_by_a_retry_note_leaves_no_part_behind() {
        let secret = "S3cr3tS3cr3tS3cr3tS3cr3t";
        // The secret straddles the 120-character cut.
        let text = format!("{}{secret} and more", "x".repeat(110));
        let e = opendal::Error::new(opendal::ErrorKind::Unexpected, text);
        let cause = retry_cause(&e, &[Zeroizing::new(secret.to_string())]);
        assert!(!cause.contains("S3cr3t"), "{cause}");
        assert!(cause.chars().count() <= 121, "{cause}");
    }

    #[test]
    fn details_are_cut_on_a_character_boundary() {
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("abcd", 3), "abc…");
        assert_eq!(shorten("ééé", 2), "éé…");
        let huge = "A".repeat(16 << 20);
        assert_eq!(
            shorten(&huge, MAX_DETAIL_CHARS).chars().count(),
            MAX_DETAIL_CHARS + 1
        );
    }
}
