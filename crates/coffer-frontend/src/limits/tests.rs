//! The limits as a whole: the attacks found in review, the rates, the address keys.

use super::table::WAYS;
use super::*;

const ACTIONS: [Action; 3] = [Action::CodeRequest, Action::CodeCheck, Action::VaultCall];

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn id(s: &str) -> AccountId {
    AccountId::parse(s).unwrap()
}

impl RateLimits {
    fn tables(&self) -> Vec<&Table> {
        let l = self.limits.as_ref().unwrap();
        [&l.code_requests, &l.code_checks, &l.vault_calls]
            .into_iter()
            .flat_map(|limit| [&limit.by_address, &limit.by_account])
            .collect()
    }

    /// Buckets not full at `now` (the others are as good as absent), in all tables.
    fn draining(&self, now: Instant) -> usize {
        self.tables().iter().map(|t| t.draining(now)).sum()
    }

    /// Slots examined so far, in all tables.
    fn probes(&self) -> usize {
        self.tables().iter().map(|t| t.probes()).sum()
    }
}

#[test]
fn the_tables_hold_max_buckets() {
    let l = RateLimits::default();
    let total: usize = l.tables().iter().map(|t| t.capacity()).sum();
    assert_eq!(total, MAX_BUCKETS);
}

#[test]
fn bursts_are_allowed_then_refused() {
    let l = RateLimits::default();
    let t0 = Instant::now();
    let peer = ip("127.0.0.1");
    let alice = id("alice");
    let allowed = (0..10)
        .filter(|_| l.check_at(Action::CodeRequest, peer, &alice, t0).is_ok())
        .count();
    assert_eq!(allowed, 5);
    // Another account from the same address still has its own budget.
    assert_eq!(
        l.check_at(Action::CodeRequest, peer, &id("bob"), t0),
        Ok(())
    );
}

#[test]
fn attack_a_flood_of_ids_from_one_address_stays_bounded() {
    for action in ACTIONS {
        let l = RateLimits::default();
        let t0 = Instant::now();
        let attacker = ip("203.0.113.7");
        let mut allowed = 0;
        // A million distinct ids over an hour.
        let flood = 1_000_000u32;
        let step = Duration::from_secs(3600) / flood;
        let last = t0 + step * (flood - 1);
        for i in 0..flood {
            let before = l.probes();
            let now = t0 + step * i;
            allowed += l
                .check_at(action, attacker, &id(&format!("id-{i}")), now)
                .is_ok() as u32;
            // O(1): one set of the address table, one of the account table.
            assert!(l.probes() - before <= 2 * WAYS, "{action:?}");
        }
        let rate = match action {
            Action::CodeRequest => CODE_REQUESTS_PER_ADDRESS,
            Action::CodeCheck => CODE_CHECKS_PER_ADDRESS,
            Action::VaultCall => VAULT_CALLS_PER_ADDRESS,
        };
        // Only requests the address was allowed made account buckets.
        assert!(
            allowed <= rate.burst + rate.per_minute * 60,
            "{action:?}: {allowed}"
        );
        assert!(allowed >= rate.burst, "{action:?}: {allowed}");
        let buckets = l.draining(last);
        assert!(buckets <= MAX_BUCKETS);
        assert!(buckets <= 1 + rate.burst as usize, "{action:?}: {buckets}");
        // The attacker is still limited, and someone else is not.
        let refused = l.check_at(action, attacker, &id("one-more"), last);
        assert_eq!(
            refused.map_err(|e| e.scope()),
            Err(Scope::Address),
            "{action:?}"
        );
        assert_eq!(
            l.check_at(action, ip("198.51.100.1"), &id("alice"), last),
            Ok(()),
            "{action:?}"
        );
    }
}

#[test]
fn attack_a_flood_from_many_addresses_does_not_make_the_limiter_forget() {
    let l = RateLimits::default();
    let t0 = Instant::now();
    let victim = id("victim");
    while l
        .check_at(Action::CodeRequest, ip("198.51.100.1"), &victim, t0)
        .is_ok()
    {}
    // A million /64s, each asking codes for a fresh id: far more buckets than fit. (Past
    // the first few hundred the front-end's budget in all refuses them, but only after
    // their address and account buckets were charged, which is what this is about.)
    for i in 0..1_000_000u32 {
        // Distinct /56s, so that only the table's size limits them.
        let peer = IpAddr::from([
            0x2001,
            0xdb8,
            (i >> 8) as u16,
            ((i & 0xff) << 8) as u16,
            0,
            0,
            0,
            1,
        ]);
        let fresh = id(&format!("id-{i}"));
        let r = l.check_at(Action::CodeRequest, peer, &fresh, t0);
        assert!(
            r.is_ok() || r.is_err_and(|e| e.scope() == Scope::Everyone),
            "{r:?}"
        );
    }
    assert!(l.draining(t0) <= MAX_BUCKETS);
    // The drained bucket was not the one displaced: its set held fuller ones.
    let again = l.check_at(Action::CodeRequest, ip("192.0.2.1"), &victim, t0);
    assert_eq!(again.map_err(|e| e.scope()), Err(Scope::Account));
}

#[test]
fn attack_wrong_codes_do_not_lock_the_owner_out_of_the_vault() {
    let l = RateLimits::default();
    let t0 = Instant::now();
    let victim = id("victim");
    // Wrong code checks against the victim's id from a hundred addresses.
    for i in 0..1000u32 {
        let attacker = IpAddr::from([203, 0, 113, (i % 100) as u8]);
        let _ = l.check_at(Action::CodeCheck, attacker, &victim, t0);
    }
    let owner = ip("198.51.100.1");
    let checked = l.check_at(Action::CodeCheck, owner, &victim, t0);
    assert_eq!(checked.map_err(|e| e.scope()), Err(Scope::Account));
    // The owner's vault calls have their whole burst.
    for _ in 0..VAULT_CALLS_PER_ACCOUNT.burst {
        assert_eq!(l.check_at(Action::VaultCall, owner, &victim, t0), Ok(()));
    }
}

#[test]
fn an_ipv6_slash_64_is_one_address_and_a_slash_56_one_for_codes() {
    let l = RateLimits::default();
    let t0 = Instant::now();
    let allowed = (0..400u32)
        .filter(|i| {
            let host = ip(&format!("2001:db8:0:1:{i:x}::{i:x}"));
            let fresh = id(&format!("id-{i}"));
            l.check_at(Action::VaultCall, host, &fresh, t0).is_ok()
        })
        .count();
    assert_eq!(allowed, VAULT_CALLS_PER_ADDRESS.burst as usize);
    // The next /64 is someone else.
    let next = ip("2001:db8:0:2::1");
    assert_eq!(l.check_at(Action::VaultCall, next, &id("x"), t0), Ok(()));
    // Code requests, which cost money to send, count a /56 as one address: its 256 /64s
    // share one budget.
    let allowed = (0..256u32)
        .filter(|i| {
            let host = ip(&format!("2001:db8:0:{i:x}::1"));
            l.check_at(Action::CodeRequest, host, &id(&format!("c-{i}")), t0)
                .is_ok()
        })
        .count();
    assert_eq!(allowed, CODE_REQUESTS_PER_ADDRESS.burst as usize);
    let next = ip("2001:db8:0:100::1");
    assert_eq!(l.check_at(Action::CodeRequest, next, &id("y"), t0), Ok(()));
}

#[test]
fn an_ipv4_mapped_address_is_its_ipv4_address() {
    assert_eq!(
        AddressKey::from(ip("::ffff:198.51.100.1")),
        AddressKey::from(ip("198.51.100.1"))
    );
    assert_ne!(
        AddressKey::from(ip("::198.51.100.1")),
        AddressKey::from(ip("198.51.100.1"))
    );
    let l = RateLimits::default();
    let t0 = Instant::now();
    for i in 0..CODE_REQUESTS_PER_ADDRESS.burst {
        let fresh = id(&format!("id-{i}"));
        assert!(l
            .check_at(Action::CodeRequest, ip("198.51.100.1"), &fresh, t0)
            .is_ok());
    }
    let mapped = l.check_at(Action::CodeRequest, ip("::ffff:198.51.100.1"), &id("x"), t0);
    assert_eq!(mapped.map_err(|e| e.scope()), Err(Scope::Address));
    let neighbour = ip("198.51.100.2");
    assert_eq!(
        l.check_at(Action::CodeRequest, neighbour, &id("x"), t0),
        Ok(())
    );
}

#[test]
fn limited_says_how_long_to_wait() {
    let l = RateLimits::default();
    let t0 = Instant::now();
    let peer = ip("198.51.100.1");
    let alice = id("alice");
    for _ in 0..5 {
        assert_eq!(l.check_at(Action::CodeRequest, peer, &alice, t0), Ok(()));
    }
    // One code a minute after the burst.
    let e = l
        .check_at(Action::CodeRequest, peer, &alice, t0)
        .unwrap_err();
    assert_eq!((e.retry_after_secs(), e.scope()), (60, Scope::Account));
    assert_eq!(e.retry_after(), Duration::from_secs(60));
    assert_eq!(
        e.to_string(),
        "too many requests for this account; retry in 60 s"
    );
    // Half a second left is rounded up to one, never down to zero.
    let almost = t0 + Duration::from_millis(59_500);
    let e = l
        .check_at(Action::CodeRequest, peer, &alice, almost)
        .unwrap_err();
    assert_eq!(e.retry_after_secs(), 1);
    // Waiting as told is enough.
    let t1 = t0 + Duration::from_secs(60);
    assert_eq!(l.check_at(Action::CodeRequest, peer, &alice, t1), Ok(()));

    // The address: 20 at once then 10 a minute, so 6 s.
    let e = (0..)
        .find_map(|i| {
            let fresh = id(&format!("id-{i}"));
            l.check_at(Action::CodeRequest, peer, &fresh, t1).err()
        })
        .unwrap();
    assert_eq!((e.retry_after_secs(), e.scope()), (6, Scope::Address));
    assert_eq!(
        e.to_string(),
        "too many requests from this address; retry in 6 s"
    );
}

#[test]
fn each_kind_of_request_has_its_own_budget() {
    let l = RateLimits::default();
    let t0 = Instant::now();
    let peer = ip("198.51.100.1");
    let alice = id("alice");
    for (action, rate) in [
        (Action::CodeRequest, CODE_REQUESTS_PER_ACCOUNT),
        (Action::CodeCheck, CODE_CHECKS_PER_ACCOUNT),
        (Action::VaultCall, VAULT_CALLS_PER_ACCOUNT),
    ] {
        let allowed = (0..1000)
            .filter(|_| l.check_at(action, peer, &alice, t0).is_ok())
            .count();
        assert_eq!(allowed, rate.burst as usize, "{action:?}");
    }
}

#[test]
fn a_few_full_recoveries_and_password_changes_fit() {
    let l = RateLimits::default();
    let t0 = Instant::now();
    let peer = ip("198.51.100.1");
    let alice = id("alice");
    // Three recoveries (2 calls each) and three password changes (about 6 each).
    for _ in 0..3 * 2 + 3 * 6 {
        assert_eq!(l.check_at(Action::VaultCall, peer, &alice, t0), Ok(()));
    }
}

#[test]
fn disabled_limits_allow_everything() {
    let l = RateLimits::new(false);
    let t0 = Instant::now();
    let peer = ip("198.51.100.1");
    let alice = id("alice");
    for action in ACTIONS {
        for _ in 0..10_000 {
            assert_eq!(l.check_at(action, peer, &alice, t0), Ok(()));
        }
    }
    for _ in 0..1000 {
        for action in ACTIONS {
            assert!(l.address(action, peer).is_ok());
            assert!(l.account(action, &alice).is_ok());
        }
    }
}

#[test]
fn a_request_refused_by_its_address_creates_no_account_bucket() {
    let l = RateLimits::default();
    let peer = ip("198.51.100.1");
    let t0 = Instant::now();
    // A handler charges the address alone for requests it refuses before any id (bad
    // ids, bad credentials): they keep no bucket of their own.
    let allowed = (0..25)
        .filter(|_| l.address_at(Action::CodeRequest, peer, t0).is_ok())
        .count();
    assert_eq!(allowed, CODE_REQUESTS_PER_ADDRESS.burst as usize);
    assert_eq!(l.draining(t0), 1, "the address's bucket only");
    // Vault calls and code checks spend separate budgets.
    let l = RateLimits::default();
    for _ in 0..VAULT_CALLS_PER_ACCOUNT.burst {
        assert!(l.account_at(Action::VaultCall, &id("alice"), t0).is_ok());
    }
    assert!(l.account_at(Action::VaultCall, &id("alice"), t0).is_err());
    assert!(l.account_at(Action::CodeCheck, &id("alice"), t0).is_ok());
}

#[test]
fn code_requests_from_many_addresses_meet_a_limit_in_all() {
    let l = RateLimits::default();
    let t0 = Instant::now();
    // Every request from a /56 of its own, for an id of its own: only the shared budget
    // can stop them.
    let allowed = (0..1000u32)
        .filter(|i| {
            let peer: IpAddr = format!("2001:db8:{:x}:{:x}00::1", i >> 8, i & 0xff)
                .parse()
                .unwrap();
            l.check_at(Action::CodeRequest, peer, &id(&format!("id-{i}")), t0)
                .is_ok()
        })
        .count();
    assert_eq!(allowed, CODE_REQUESTS_IN_ALL.burst as usize);
    let refused = l
        .check_at(Action::CodeRequest, ip("192.0.2.7"), &id("late"), t0)
        .unwrap_err();
    assert_eq!(refused.scope(), Scope::Everyone);
    // Other kinds of request are not affected.
    assert!(l
        .check_at(Action::VaultCall, ip("192.0.2.7"), &id("late"), t0)
        .is_ok());
}
