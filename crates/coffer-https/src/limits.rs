//! What one client may hold of a server, in time, bytes and connections.

use std::time::Duration;

/// The server's limits. The defaults suit Coffer's API (small JSON bodies, answers within
/// seconds); each server may tighten them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest a TLS handshake may take, from the TCP accept. Default 10 s.
    pub tls_handshake: Duration,
    /// Longest the server waits for a request's head (request line and headers): from the end
    /// of the handshake for the first request, and from the end of the previous answer for
    /// each later one on a keep-alive connection. It is therefore also the idle timeout: hyper
    /// starts this clock as soon as a connection is idle, not at the first byte of the next
    /// request. A head sent byte by byte does not reset it. Default 10 s.
    pub header_read: Duration,
    /// Longest from a complete request head to the handler's answer: reading the body and
    /// running the handler. Past it the request is answered `408` (`timeout`) if its body had
    /// not all arrived, `503` (`timeout`) otherwise; the handler's future is dropped, so work
    /// it had handed to other tasks may still complete. Default 30 s.
    pub request: Duration,
    /// Longest a write to the client may stay blocked (a client that stops reading its
    /// answers); the connection is closed then. Default 30 s.
    pub write_stall: Duration,
    /// Largest request body in bytes; larger ones are answered `413` (`too-large`), at once
    /// when `Content-Length` says so. Default 64 KiB.
    pub max_body: usize,
    /// Largest request head in bytes (request line and headers), answered `431` by hyper
    /// past it. At least 8 KiB (hyper's floor). Default 16 KiB.
    pub max_head: usize,
    /// Most connections open at once, TLS handshakes included. Also kept below the process's
    /// descriptor limit (see [`descriptor_budget`]). Default 4096.
    pub max_connections: usize,
    /// Most connections open at once from one address (an IPv4 address, or an IPv6 /64,
    /// what one customer usually holds). Default 64; a vault node, whose only clients are a
    /// few front-ends, should raise it to `max_connections`.
    pub max_connections_per_address: usize,
    /// After shutdown starts, longest the server waits for in-flight requests before it
    /// drops them. Default 10 s.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            tls_handshake: Duration::from_secs(10),
            header_read: Duration::from_secs(10),
            request: Duration::from_secs(30),
            write_stall: Duration::from_secs(30),
            max_body: 64 * 1024,
            max_head: 16 * 1024,
            max_connections: 4096,
            max_connections_per_address: 64,
            drain: Duration::from_secs(10),
        }
    }
}

/// hyper refuses a read buffer smaller than this.
pub(crate) const MIN_HEAD: usize = 8192;

/// Descriptors that are never given to client connections: the listener, databases, logs,
/// outgoing connections (to vault nodes, gateways). A quarter of the limit, at least 64.
pub fn descriptor_reserve(limit: u64) -> u64 {
    (limit / 4).max(64)
}

/// The connection cap to use under a descriptor limit of `limit`: `wanted`, lowered to keep
/// [`descriptor_reserve`] free. `None` when the limit leaves no room for any connection.
pub fn descriptor_budget(wanted: usize, limit: u64) -> Option<usize> {
    let room = limit.saturating_sub(descriptor_reserve(limit));
    let cap = usize::try_from(room).unwrap_or(usize::MAX).min(wanted);
    (cap > 0).then_some(cap)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the resulting soft limit
/// (unchanged, and logged, if the system refuses). `None` where there is no such limit.
pub fn raise_descriptor_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes a plain struct we own.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            tracing::warn!(
                "cannot read the descriptor limit: {}",
                std::io::Error::last_os_error()
            );
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            // SAFETY: setrlimit reads a plain struct we own.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                lim.rlim_cur = lim.rlim_max;
            } else {
                tracing::warn!(
                    "cannot raise the descriptor limit from {} to {}: {}",
                    lim.rlim_cur,
                    lim.rlim_max,
                    std::io::Error::last_os_error()
                );
            }
        }
        // RLIM_INFINITY is u64::MAX here: as good as no limit.
        #[allow(clippy::useless_conversion)]
        Some(u64::from(lim.rlim_cur))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_keeps_a_reserve() {
        assert_eq!(descriptor_budget(4096, 1 << 20), Some(4096));
        assert_eq!(descriptor_budget(4096, 1024), Some(768));
        assert_eq!(descriptor_budget(4096, 256), Some(192));
        assert_eq!(descriptor_budget(4096, 64), None);
        assert_eq!(descriptor_budget(4096, u64::MAX), Some(4096));
        assert_eq!(descriptor_budget(0, 1 << 20), None);
    }

    #[cfg(unix)]
    #[test]
    fn soft_limit_is_raised_to_the_hard_one() {
        let raised = raise_descriptor_limit().unwrap();
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes a plain struct we own.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        #[allow(clippy::useless_conversion)]
        let (soft, hard) = (u64::from(lim.rlim_cur), u64::from(lim.rlim_max));
        assert_eq!(raised, soft);
        assert_eq!(soft, hard);
        assert_eq!(raise_descriptor_limit(), Some(raised));
    }
}
