//! Per-address and per-account rate limits, as token buckets in memory.
//!
//! Three kinds of request have limits of their own: code requests (`POST /v1/accounts`),
//! code checks (`POST /v1/accounts/verify`) and vault calls (`POST /v1/vault`). Separate
//! buckets mean that wrong codes sent for someone's id, from anywhere, cannot spend the
//! budget of that person's vault calls.
//!
//! Each request is charged to its address first (an IPv4 address, or the /64 of an IPv6
//! address, since one host commonly holds a whole /64; an IPv4-mapped IPv6 address counts as
//! its IPv4 address), and only when the address is allowed is the account's bucket looked up
//! or created. Account ids arrive already validated ([`AccountId`]), so a bucket exists only
//! for a well-formed id that an address was allowed to name.
//!
//! # Bounded memory, and what eviction means
//!
//! Buckets live in fixed-size tables ([`MAX_BUCKETS`] in all, about 6 MiB allocated up
//! front); a request examines a handful of slots under one of several locks, whatever the
//! traffic. Keys are hashed with SipHash under a key drawn at random per process, so nobody
//! outside can aim collisions or choose which buckets a flood displaces.
//!
//! When a new bucket needs a slot it takes, among the few its key may use, the one whose
//! bucket is fullest: empty slots and refilled buckets first, which loses nothing. An
//! evicted bucket is forgotten: its key's next request starts from a full burst. So eviction
//! can only let extra requests through, never refuse one, and it is acceptable because:
//! - a partly drained bucket is evicted only when the other buckets of its set are emptier
//!   still; the attacker cannot tell which keys share a set, so it would have to drain
//!   buckets across a whole table, about 65,536 times a burst of allowed requests;
//! - buckets are created only by allowed requests, and the address is charged first, so
//!   the per-address limit bounds how fast one address can create buckets and so cause
//!   evictions;
//! - these limits only slow abuse and protect capacity. They are not what bounds guessing:
//!   the vault's per-record guess budget bounds password guesses, and the account
//!   database's cap on wrong codes per issued code ([`crate::accounts::CODE_ATTEMPTS`])
//!   bounds code guesses.
//!
//! The buckets belong to one front-end process: several front-ends each keep their own.

mod table;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::account_id::AccountId;
use table::{Rate, Table};

/// Buckets in each of the six tables (three kinds of request, by address and by account).
const BUCKETS_PER_TABLE: usize = 1 << 16;
/// Buckets held at most, whatever the traffic (16 bytes each).
pub const MAX_BUCKETS: usize = 6 * BUCKETS_PER_TABLE;

// Code requests send an SMS or an e-mail: the scarcest resource, limited as before.
const CODE_REQUESTS_PER_ACCOUNT: Rate = Rate {
    burst: 5,
    per_minute: 1,
};
const CODE_REQUESTS_PER_ADDRESS: Rate = Rate {
    burst: 20,
    per_minute: 10,
};
// And for the whole front-end: every code is a message someone pays for, and an attacker
// with many addresses (a /48 holds 65,536 /64s) could otherwise send without bound ("SMS
// pumping"). Far above one front-end's real sign-ups; a flood meets 429s, not a bill.
const CODE_REQUESTS_IN_ALL: Rate = Rate {
    burst: 300,
    per_minute: 300,
};
// Code checks: one issued code takes at most `CODE_ATTEMPTS` (5) wrong codes before it is
// void, so ten at once covers a code and its typos. Per address, far below the vault
// calls' budget they used to share (600 a minute), since each check is a guess.
const CODE_CHECKS_PER_ACCOUNT: Rate = Rate {
    burst: 10,
    per_minute: 5,
};
const CODE_CHECKS_PER_ADDRESS: Rate = Rate {
    burst: 30,
    per_minute: 30,
};
// Vault calls need a credential, so the account's holder is the only one spending its
// budget. The old attempt rates, kept: 30 at once is 15 recoveries (2 calls each) or five
// password changes (about 6); per address, room for a shared network.
const VAULT_CALLS_PER_ACCOUNT: Rate = Rate {
    burst: 30,
    per_minute: 30,
};
const VAULT_CALLS_PER_ADDRESS: Rate = Rate {
    burst: 300,
    per_minute: 600,
};

/// A kind of request, with limits of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Sending a verification code for an account id.
    CodeRequest,
    /// Checking a verification code.
    CodeCheck,
    /// Relaying a message to the vault for an authenticated account.
    VaultCall,
}

/// Which bucket refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The requester's address (or its IPv6 /64) made too many requests.
    Address,
    /// Too many requests named this account.
    Account,
    /// Too many of these requests reached this front-end from everyone together.
    Everyone,
}

/// A request refused by a rate limit. Retrying after [`Limited::retry_after`] can succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}; retry in {} s", match .scope {
    Scope::Address => "too many requests from this address",
    Scope::Account => "too many requests for this account",
    Scope::Everyone => "too many verification codes requested from this server just now",
}, .retry_after.as_secs())]
pub struct Limited {
    retry_after: Duration,
    scope: Scope,
}

impl Limited {
    fn new(wait: Duration, scope: Scope) -> Limited {
        // Whole seconds, rounded up, and never 0: a `Retry-After: 0` invites a busy loop.
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Limited {
            retry_after: Duration::from_secs(secs.max(1)),
            scope,
        }
    }

    /// How long to wait before retrying: whole seconds, at least 1 (for `Retry-After`).
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }

    /// [`Limited::retry_after`] in seconds, as a `Retry-After` header wants it.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs()
    }

    pub fn scope(&self) -> Scope {
        self.scope
    }
}

/// An address as rate limits see it: IPv4 whole, IPv6 by its /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum AddressKey {
    V4([u8; 4]),
    V6Prefix([u8; 8]),
}

impl From<IpAddr> for AddressKey {
    fn from(ip: IpAddr) -> AddressKey {
        AddressKey::of(ip, 64)
    }
}

impl AddressKey {
    /// `ip` as a key: IPv4 whole, IPv6 by its first `v6_bits` bits (56 or 64).
    fn of(ip: IpAddr, v6_bits: u32) -> AddressKey {
        match ip {
            IpAddr::V4(v4) => AddressKey::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddressKey::V4(v4.octets()),
                None => {
                    let masked = u128::from(v6) & (u128::MAX << (128 - v6_bits));
                    let o = masked.to_be_bytes();
                    AddressKey::V6Prefix([o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]])
                }
            },
        }
    }
}

/// The per-address and per-account buckets of one kind of request.
struct Limit {
    by_address: Table,
    by_account: Table,
    /// IPv6 addresses are keyed by this many leading bits.
    v6_bits: u32,
}

impl Limit {
    fn new(address: Rate, account: Rate, origin: Instant) -> Limit {
        Limit {
            by_address: Table::new(address, BUCKETS_PER_TABLE, origin),
            by_account: Table::new(account, BUCKETS_PER_TABLE, origin),
            v6_bits: 64,
        }
    }

    /// Keys IPv6 addresses by a shorter prefix.
    fn by_v6_prefix(mut self, bits: u32) -> Limit {
        self.v6_bits = bits;
        self
    }

    fn check_account(&self, account: &AccountId, now: Instant) -> Result<(), Limited> {
        self.by_account
            .take(account.as_str(), now)
            .map_err(|wait| Limited::new(wait, Scope::Account))
    }

    fn check_address(&self, peer: IpAddr, now: Instant) -> Result<(), Limited> {
        self.by_address
            .take(&AddressKey::of(peer, self.v6_bits), now)
            .map_err(|wait| Limited::new(wait, Scope::Address))
    }
}

struct Limits {
    code_requests: Limit,
    code_requests_in_all: Table,
    code_checks: Limit,
    vault_calls: Limit,
}

impl Limits {
    fn of(&self, action: Action) -> &Limit {
        match action {
            Action::CodeRequest => &self.code_requests,
            Action::CodeCheck => &self.code_checks,
            Action::VaultCall => &self.vault_calls,
        }
    }
}

pub struct RateLimits {
    /// `None` when disabled.
    limits: Option<Box<Limits>>,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits::new(true)
    }
}

impl RateLimits {
    /// `enabled: false` allows everything (for capacity benchmarks only) and allocates
    /// nothing.
    pub fn new(enabled: bool) -> Self {
        let origin = Instant::now();
        let limits = enabled.then(|| {
            Box::new(Limits {
                // A home connection commonly holds a /56 (256 /64s): codes, which cost
                // money to send, are limited by the /56.
                code_requests: Limit::new(
                    CODE_REQUESTS_PER_ADDRESS,
                    CODE_REQUESTS_PER_ACCOUNT,
                    origin,
                )
                .by_v6_prefix(56),
                code_requests_in_all: Table::new(CODE_REQUESTS_IN_ALL, 8, origin),
                code_checks: Limit::new(CODE_CHECKS_PER_ADDRESS, CODE_CHECKS_PER_ACCOUNT, origin),
                vault_calls: Limit::new(VAULT_CALLS_PER_ADDRESS, VAULT_CALLS_PER_ACCOUNT, origin),
            })
        });
        RateLimits { limits }
    }

    /// Step one of every request, before anything else is looked at or looked up: the
    /// address's bucket for `action`.
    pub fn address(&self, action: Action, peer: IpAddr) -> Result<(), Limited> {
        self.address_at(action, peer, Instant::now())
    }

    /// Step two, once the account id is valid (and, for vault calls, authenticated): the
    /// account's bucket for `action`.
    pub fn account(&self, action: Action, account: &AccountId) -> Result<(), Limited> {
        self.account_at(action, account, Instant::now())
    }

    pub fn address_at(&self, action: Action, peer: IpAddr, now: Instant) -> Result<(), Limited> {
        match &self.limits {
            Some(limits) => limits.of(action).check_address(peer, now),
            None => Ok(()),
        }
    }

    pub fn account_at(
        &self,
        action: Action,
        account: &AccountId,
        now: Instant,
    ) -> Result<(), Limited> {
        let Some(limits) = &self.limits else {
            return Ok(());
        };
        limits.of(action).check_account(account, now)?;
        if action == Action::CodeRequest {
            // Last, so that only requests every other limit allowed spend the shared budget.
            limits
                .code_requests_in_all
                .take("all", now)
                .map_err(|wait| Limited::new(wait, Scope::Everyone))?;
        }
        Ok(())
    }

    /// Both steps at once: `action` from `peer` for `account` at `now`, the address's bucket
    /// first, then the account's (only when the address was allowed). A `now` earlier than a
    /// bucket's last request only makes that bucket stricter.
    pub fn check_at(
        &self,
        action: Action,
        peer: IpAddr,
        account: &AccountId,
        now: Instant,
    ) -> Result<(), Limited> {
        self.address_at(action, peer, now)?;
        self.account_at(action, account, now)
    }
}

#[cfg(test)]
mod tests;
