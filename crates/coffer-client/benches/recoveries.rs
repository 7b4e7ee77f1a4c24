//! Full password recoveries per second through the whole stack (HTTPS front-end, HTTPS to
//! the vault node, the end-to-end channel, a durable SQLite commit per request), against
//! the bare cost of the OPAQUE client plus `opaque-ke`'s server in one process, measured in
//! the same run; and the channel's own cost per recovery.
//!
//! `cargo bench -p coffer-client --bench recoveries` (or `bench/vault_recoveries.sh`).
//! BENCH_SECONDS (default 8) per measurement, BENCH_CLIENTS (default 2) concurrent clients.

use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_client::frontend_http::Frontend;
use coffer_client::password::{pin_fleet, KsfParams, PasswordVault};
use coffer_format::BackupKey;
use coffer_vault_core::client::{self, LoginOutcome};
use coffer_vault_core::{channel, Fleet, FleetKeys, Request, Response, Suite};
use opaque_ke::{
    CredentialFinalization, CredentialRequest, RegistrationRequest, RegistrationUpload,
    ServerLogin, ServerLoginParameters, ServerRegistration, ServerSetup,
};
use rand_core::OsRng;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Bare OPAQUE: the client steps (the same ones the client library runs) and opaque-ke's
/// server in one thread, serialized messages as on the wire; no channel, no storage.
fn bare(ksf: KsfParams, seconds: u64, threads: u64) -> (f64, Duration, Duration) {
    let setup = Arc::new(ServerSetup::<Suite>::new(&mut OsRng));
    // Any keys will do for the client's binding checks: these are the setup's own.
    let keys = FleetKeys {
        channel: vec![0; 32],
        opaque: setup.keypair().public().serialize().to_vec(),
    };
    let (state, request) = client::start_registration(&mut OsRng, b"pw").unwrap();
    let resp = ServerRegistration::<Suite>::start(
        &setup,
        RegistrationRequest::deserialize(&request).unwrap(),
        b"acct",
    )
    .unwrap();
    let reg = client::finish_registration(
        &mut OsRng,
        state,
        b"pw",
        &resp.message.serialize(),
        b"acct",
        &keys,
        &ksf,
    )
    .unwrap();
    let file = Arc::new(
        ServerRegistration::<Suite>::finish(RegistrationUpload::deserialize(&reg.upload).unwrap())
            .serialize()
            .to_vec(),
    );
    let context = [
        b"coffer/v2/vault/opaque\0".as_slice(),
        &keys.fingerprint_bytes(),
    ]
    .concat();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (setup, file, keys, context) =
                (setup.clone(), file.clone(), keys.clone(), context.clone());
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let parameters = || ServerLoginParameters {
                    context: Some(&context),
                    identifiers: opaque_ke::Identifiers {
                        client: Some(b"acct"),
                        server: None,
                    },
                };
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let (state, request) = client::start_login(&mut OsRng, b"pw").unwrap();
                    let s = ServerLogin::start(
                        &mut OsRng,
                        &setup,
                        Some(ServerRegistration::deserialize(&file).unwrap()),
                        CredentialRequest::deserialize(&request).unwrap(),
                        b"acct",
                        parameters(),
                    )
                    .unwrap();
                    let LoginOutcome::Finished(login) = client::finish_login(
                        &mut OsRng,
                        state,
                        b"pw",
                        &s.message.serialize(),
                        b"acct",
                        &keys,
                        &ksf,
                    )
                    .unwrap() else {
                        panic!("the right password did not log in")
                    };
                    s.state
                        .finish(
                            CredentialFinalization::deserialize(&login.finalization).unwrap(),
                            parameters(),
                        )
                        .unwrap();
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<Duration> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    lat.sort();
    (
        lat.len() as f64 / seconds as f64,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
    )
}

/// The end-to-end channel alone: the four Noise NK steps of each of a recovery's two round
/// trips, with payloads the size of a recovery's. Microseconds per recovery.
fn channel_cost(seconds: u64) -> f64 {
    let fleet = Fleet::generate(&mut OsRng, 10).unwrap();
    let start = Request::RecoverStart {
        request: vec![1; 96],
    };
    let started = Response::RecoverStarted {
        login_id: vec![5; 16],
        response: vec![2; 320],
        ksf: KsfParams::DEFAULT,
        guesses_left: 9,
    };
    let finish = Request::RecoverFinish {
        login_id: vec![5; 16],
        finalization: vec![3; 64],
    };
    let recovered = Response::Recovered {
        sealed_k_blob: vec![4; 121],
    };
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let t = Instant::now();
    let mut n = 0u64;
    while Instant::now() < deadline {
        for (request, response) in [(&start, &started), (&finish, &recovered)] {
            let (m1, pending) = channel::seal_request(fleet.keys(), b"acct", request).unwrap();
            let (_, responder) = channel::open_request(&fleet, b"acct", &m1).unwrap();
            let m2 = responder.seal(response).unwrap();
            pending.open(&m2).unwrap();
        }
        n += 1;
    }
    t.elapsed().as_secs_f64() * 1e6 / n as f64
}

/// The stack: a vault node and a front-end on loopback, clients over HTTPS.
async fn stack(ksf: KsfParams, seconds: u64, clients: u64) -> (f64, Duration, Duration) {
    let dir = tempfile::tempdir().unwrap();
    // Rate limits off: this measures capacity, not policy.
    let local = coffer_stack::start(
        dir.path(),
        "127.0.0.1:0".parse().unwrap(),
        false,
        coffer_stack::Codes::DevFile,
    )
    .await
    .unwrap();
    let (base, tls) = (local.url.clone(), local.tls_fingerprint.clone());

    // One account per client, each enabled once (which includes its escrow check).
    let mut accounts = Vec::new();
    for i in 0..clients {
        let fe = Frontend::new(&base, &[&tls]).unwrap();
        let keys = pin_fleet(fe.fleet_keys().await.unwrap(), &local.fleet_fingerprint).unwrap();
        let id = format!("bench-{i}");
        fe.register_account(&id).await.unwrap();
        let code = local.code_for(&id).unwrap();
        let credential = fe.verify_account(&id, &code).await.unwrap();
        PasswordVault::new(fe.vault(&credential), &id, keys.clone())
            .enable("the password", &BackupKey::generate().unwrap(), ksf)
            .await
            .unwrap();
        accounts.push((fe, credential, id, keys));
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = accounts
        .into_iter()
        .map(|(fe, credential, id, keys)| {
            tokio::spawn(async move {
                let vault = PasswordVault::new(fe.vault(&credential), &id, keys);
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    vault.recover("the password").await.unwrap();
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    lat.sort();
    (
        lat.len() as f64 / seconds as f64,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
    )
}

fn main() {
    let seconds = env("BENCH_SECONDS", 8);
    let clients = env("BENCH_CLIENTS", 2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "recoveries: {clients} concurrent clients, {seconds} s per measurement, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for (name, ksf) in [
        ("Argon2id 64 MiB, t=3 (the default)", KsfParams::DEFAULT),
        (
            "Argon2id 8 KiB, t=1 (stack overhead made visible)",
            KsfParams {
                m_cost_kib: 8,
                t_cost: 1,
                p_cost: 1,
            },
        ),
    ] {
        let (bare_rate, bare_p50, bare_p99) = bare(ksf, seconds, clients);
        let (rate, p50, p99) = rt.block_on(stack(ksf, seconds, clients));
        println!("{name}:");
        println!("  bare opaque-ke client+server: {bare_rate:8.1} /s  p50 {bare_p50:?}  p99 {bare_p99:?}");
        println!("  whole stack over HTTPS:       {rate:8.1} /s  p50 {p50:?}  p99 {p99:?}");
        println!("  ratio stack/bare: {:.2} (bar >= 0.5)", rate / bare_rate);
    }
    let us = channel_cost(seconds.min(3));
    println!("end-to-end channel (Noise NK, 2 round trips): {us:.0} us per recovery, one thread");
}
