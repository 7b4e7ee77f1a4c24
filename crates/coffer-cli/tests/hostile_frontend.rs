//! A hostile front-end between the real client library and a real `coffer vault serve`: it
//! reads, drops, replays, reorders, substitutes and alters every message it relays, and
//! sends messages of its own with the node token it holds. Whatever it does, it learns no
//! password and no K, breaks no escrow silently, refunds no guess, and replaces or deletes
//! no record.

mod common;
#[path = "common/hostile.rs"]
mod hostile;

use coffer_client::password::{pin_fleet, PasswordVault, VaultStatus};
use coffer_client::{ClientError, ErrorClass};
use coffer_format::BackupKey;
use coffer_vault_core::{channel, derive_auth_key, Request, Response};
use hostile::{dictionary_attack, HostileRelay, Node, Tamper, KSF};

const ACCOUNT: &str = "+15550123";

struct World {
    _tmp: tempfile::TempDir,
    node: Node,
    relay: HostileRelay,
}

fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let node = Node::start(&tmp.path().join("node"));
    let relay = HostileRelay::new(&node, ACCOUNT);
    World {
        _tmp: tmp,
        node,
        relay,
    }
}

impl World {
    /// The client, pinned to the real fleet, talking through the relay.
    fn client(&self) -> PasswordVault<&HostileRelay> {
        let keys = pin_fleet(self.node.keys.clone(), &self.node.fingerprint).unwrap();
        PasswordVault::new(&self.relay, ACCOUNT, keys)
    }

    /// The truth, straight from the node.
    async fn status(&self) -> VaultStatus {
        let keys = self.node.keys.clone();
        PasswordVault::new(self.node.link(ACCOUNT), ACCOUNT, keys)
            .status()
            .await
            .unwrap()
    }

    async fn recovers(&self, password: &str, k: &BackupKey) -> bool {
        let keys = self.node.keys.clone();
        match PasswordVault::new(self.node.link(ACCOUNT), ACCOUNT, keys)
            .recover(password)
            .await
        {
            Ok(got) => got == *k,
            Err(_) => false,
        }
    }
}

fn key() -> BackupKey {
    BackupKey::generate().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_sees_only_padded_ciphertext() {
    let w = world();
    let k = key();
    let c = w.client();
    c.enable("first password", &k, KSF).await.unwrap();
    c.recover("first password").await.unwrap();
    assert!(c.recover("not the password").await.is_err());
    c.change_password(&k, "second password", KSF).await.unwrap();
    c.delete(&k).await.unwrap();
    let log = w.relay.log.lock().unwrap();
    let auth_key = derive_auth_key(k.as_bytes());
    let secrets: [&[u8]; 4] = [
        b"first password",
        b"second password",
        k.as_bytes(),
        auth_key.as_ref(),
    ];
    for m in log
        .iter()
        .flat_map(|e| [Some(&e.request), e.answer.as_ref()])
        .flatten()
    {
        assert_eq!(
            (m.len() - 48) % channel::PAD_BLOCK,
            0,
            "a message of {} bytes: sizes tell requests and answers apart",
            m.len()
        );
        for s in secrets {
            assert!(
                !m.windows(s.len()).any(|w| w == s),
                "a secret crossed the relay in clear"
            );
        }
    }
    // Nothing the relay carried opens without the fleet's secrets: another vault's keys
    // cannot read a single request.
    let other = coffer_vault_core::Fleet::generate(&mut rand_core::OsRng, 10).unwrap();
    for e in log.iter() {
        assert!(channel::open_request(&other, ACCOUNT.as_bytes(), &e.request).is_err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_substituted_vault_gets_no_upload_and_no_k_blob() {
    let w = world();
    // The relay answers the first message itself, as a vault of its own would.
    w.relay.plan(vec![Tamper::Substitute]);
    let res = w.client().enable("a password!", &key(), KSF).await;
    assert!(
        matches!(res, Err(ref e @ ClientError::VaultNotAuthentic) if e.class() == ErrorClass::Integrity),
        "{res:?}"
    );
    assert_eq!(
        w.relay.carried(),
        1,
        "the client sent more after a forged answer"
    );
    assert_eq!(w.status().await, VaultStatus::Missing);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn altered_messages_are_refused_and_change_nothing() {
    let w = world();
    let k = key();
    // Enable is Challenge, RegisterStart, RegisterFinish, then the escrow check (RecoverStart,
    // RecoverFinish). An altered RegisterFinish (the K blob, the Argon2id parameters, the
    // auth key are in it) never reaches the vault's logic.
    w.relay
        .plan(vec![Tamper::Pass, Tamper::Pass, Tamper::AlterRequest(500)]);
    assert!(w.client().enable("a password!", &k, KSF).await.is_err());
    assert_eq!(w.status().await, VaultStatus::Missing);
    // An altered answer is refused by the client.
    w.relay.plan(vec![Tamper::Pass, Tamper::AlterAnswer(700)]);
    assert!(matches!(
        w.client().enable("a password!", &k, KSF).await,
        Err(ClientError::VaultNotAuthentic)
    ));
    w.client().enable("a password!", &k, KSF).await.unwrap();
    // A password change whose RegisterFinish is altered leaves the old password working.
    w.relay
        .plan(vec![Tamper::Pass, Tamper::Pass, Tamper::AlterRequest(100)]);
    assert!(w
        .client()
        .change_password(&k, "another password", KSF)
        .await
        .is_err());
    assert!(w.recovers("a password!", &k).await);
    assert!(!w.recovers("another password", &k).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_restore_no_password_refund_no_guess_and_delete_nothing() {
    let w = world();
    let k = key();
    let c = w.client();
    c.enable("the old password", &k, KSF).await.unwrap();
    let enable_end = w.relay.carried();
    c.change_password(&k, "the new password", KSF)
        .await
        .unwrap();
    // The old registration, replayed whole, brings the old password back? No.
    w.relay.replay_from(0, enable_end).await;
    assert!(!w.recovers("the old password", &k).await);
    assert!(w.recovers("the new password", &k).await);

    // A successful recovery replayed after wrong guesses refunds none.
    let before = w.relay.carried();
    c.recover("the new password").await.unwrap();
    let recovery = (before, w.relay.carried());
    for _ in 0..3 {
        assert!(c.recover("wrong guess").await.is_err());
    }
    w.relay.replay_from(recovery.0, recovery.1).await;
    w.relay.replay(recovery.1 - 1).await.ok();
    assert_eq!(
        w.status().await,
        VaultStatus::Live {
            guesses_left: 6,
            max_guesses: 10
        },
        "a replay refunded guesses"
    );

    // An authorized deletion, replayed after the owner enabled again, deletes nothing.
    let before = w.relay.carried();
    c.delete(&k).await.unwrap();
    let deletion = (before, w.relay.carried());
    let k2 = key();
    c.enable("a third password", &k2, KSF).await.unwrap();
    w.relay.replay_from(deletion.0, deletion.1).await;
    assert!(
        w.recovers("a third password", &k2).await,
        "a replay deleted the record"
    );

    // Locked: replaying the registration that made a record does not refill it.
    c.delete(&k2).await.unwrap();
    let before = w.relay.carried();
    c.enable("a fourth password", &k2, KSF).await.unwrap();
    let registration = (before, w.relay.carried());
    for _ in 0..10 {
        let _ = c.recover("wrong guess").await;
    }
    assert_eq!(w.status().await, VaultStatus::Locked { max_guesses: 10 });
    w.relay.replay_from(registration.0, registration.1).await;
    assert_eq!(
        w.status().await,
        VaultStatus::Locked { max_guesses: 10 },
        "a replay refilled a locked record"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordered_and_misrouted_messages_are_refused() {
    let w = world();
    let k = key();
    let c = w.client();
    c.enable("a password!", &k, KSF).await.unwrap();
    let before = w.relay.carried();
    c.recover("a password!").await.unwrap();
    // RecoverFinish before its RecoverStart: no login pending, nothing happens.
    let finish = w.relay.log.lock().unwrap()[before + 1].request.clone();
    let keys = w.node.keys.clone();
    w.relay.replay(before + 1).await.unwrap();
    assert_eq!(
        w.status().await,
        VaultStatus::Live {
            guesses_left: 10,
            max_guesses: 10
        }
    );
    // Alice's message delivered as Bob's does not open.
    let bob = w.node.link("+15550999");
    assert!(coffer_client::VaultTransport::call(&bob, finish)
        .await
        .is_err());
    let bob_view = PasswordVault::new(w.node.link("+15550999"), "+15550999", keys);
    assert_eq!(bob_view.status().await.unwrap(), VaultStatus::Missing);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_answer_loses_nothing() {
    let w = world();
    let k = key();
    // The deposit lands but its answer is dropped: the client reports a failure...
    w.relay
        .plan(vec![Tamper::Pass, Tamper::Pass, Tamper::DropAnswer]);
    assert!(w.client().enable("a password!", &k, KSF).await.is_err());
    // ...and the retry, with the same K, finishes it instead of being locked out.
    w.client().enable("a password!", &k, KSF).await.unwrap();
    assert!(w.recovers("a password!", &k).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_end_finds_no_password_through_any_request() {
    let w = world();
    let k = key();
    w.client().enable("correct horse", &k, KSF).await.unwrap();
    let keys = w.node.keys.clone();
    let found = dictionary_attack(
        &keys,
        ACCOUNT,
        &["123456", "password", "letmein", "correct horse", "qwerty"],
        |request| w.relay.own(&keys, request),
    )
    .await;
    assert_eq!(found, None, "the front-end found the password");
    // It spent exactly its one guess, and the owner's password still works.
    assert_eq!(
        w.status().await,
        VaultStatus::Live {
            guesses_left: 9,
            max_guesses: 10
        }
    );
    assert!(w.recovers("correct horse", &k).await);
    // Its own attempts to replace or delete the record are refused.
    let refused = w
        .relay
        .own(
            &keys,
            Request::Delete {
                authorization: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(refused, Response::Unauthorized);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withheld_password_change_cannot_revive_an_erased_record() {
    let w = world();
    let k = key();
    let c = w.client();
    c.enable("the old password", &k, KSF).await.unwrap();
    // The change's Challenge and RegisterStart pass; its RegisterFinish is kept back.
    w.relay
        .plan(vec![Tamper::Pass, Tamper::Pass, Tamper::Withhold]);
    let res = c.change_password(&k, "the new password", KSF).await;
    assert!(
        matches!(res, Err(ClientError::Unreachable(ref m)) if m.contains("may or may not")),
        "{res:?}"
    );
    for _ in 0..10 {
        let _ = c.recover("a guess").await;
    }
    assert_eq!(w.status().await, VaultStatus::Locked { max_guesses: 10 });
    w.relay.deliver_withheld().await;
    assert_eq!(
        w.status().await,
        VaultStatus::Locked { max_guesses: 10 },
        "the withheld registration revived the erased record"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_slipped_in_meanwhile_is_reported_and_the_password_not_called_wrong() {
    let w = world();
    let k = key();
    let c = w.client();
    c.enable("the password", &k, KSF).await.unwrap();
    // Between the owner's RecoverStart and RecoverFinish, the relay starts a login of its own.
    let (_, own) = coffer_vault_core::client::start_login(&mut rand_core::OsRng, b"x").unwrap();
    w.relay.plan(vec![
        Tamper::Pass,
        Tamper::Interleave(Request::RecoverStart { request: own }),
    ]);
    let res = c.recover("the password").await;
    assert!(
        matches!(res, Err(ref e @ ClientError::Superseded { guesses_left: Some(9) }) if e.is_retryable()),
        "{res:?}"
    );
    // A wrong password is called wrong all the same: the client knows it, and the guess
    // was spent at the start.
    let (_, own) = coffer_vault_core::client::start_login(&mut rand_core::OsRng, b"x").unwrap();
    w.relay.plan(vec![
        Tamper::Pass,
        Tamper::Interleave(Request::RecoverStart { request: own }),
    ]);
    assert!(matches!(
        c.recover("not the password").await,
        Err(ClientError::WrongPassword { guesses_left: 7 })
    ));
    assert_eq!(c.recover("the password").await.unwrap(), k);
    // A challenge taken by someone else meanwhile: the client asks again, and succeeds.
    w.relay
        .plan(vec![Tamper::Pass, Tamper::Interleave(Request::Challenge)]);
    c.change_password(&k, "another password", KSF)
        .await
        .unwrap();
    assert!(w.recovers("another password", &k).await);
}
