//! Full password recoveries per second through the whole stack (HTTPS front-end, HTTPS to
//! the vault node, a durable SQLite commit per request), against the bare cost of
//! `opaque-ke` client plus server in one process, measured in the same run.
//!
//! `cargo bench -p coffer-client --bench recoveries` (or `bench/vault_recoveries.sh`).
//! BENCH_SECONDS (default 8) per measurement, BENCH_CLIENTS (default 2) concurrent clients.

use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_client::frontend_http::Frontend;
use coffer_client::password::{self, FleetPin};
use coffer_format::BackupKey;
use coffer_vault_core::{KsfParams, Suite};
use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialFinalization, CredentialRequest,
    CredentialResponse, Identifiers, RegistrationRequest, RegistrationResponse, RegistrationUpload,
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

/// Bare OPAQUE: client and server in one thread, serialized messages as on the wire.
fn bare(ksf: KsfParams, seconds: u64, threads: u64) -> (f64, Duration, Duration) {
    let setup = Arc::new(ServerSetup::<Suite>::new(&mut OsRng));
    let argon = ksf.argon2().expect("valid parameters");
    let start = ClientRegistration::<Suite>::start(&mut OsRng, b"pw").unwrap();
    let req = RegistrationRequest::<Suite>::deserialize(&start.message.serialize()).unwrap();
    let resp = ServerRegistration::<Suite>::start(&setup, req, b"acct").unwrap();
    let fin = start
        .state
        .finish(
            &mut OsRng,
            b"pw",
            RegistrationResponse::deserialize(&resp.message.serialize()).unwrap(),
            ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&argon)),
        )
        .unwrap();
    let file = Arc::new(
        ServerRegistration::<Suite>::finish(
            RegistrationUpload::deserialize(&fin.message.serialize()).unwrap(),
        )
        .serialize()
        .to_vec(),
    );
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (setup, file) = (setup.clone(), file.clone());
            std::thread::spawn(move || {
                let argon = ksf.argon2().expect("valid parameters");
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let c = ClientLogin::<Suite>::start(&mut OsRng, b"pw").unwrap();
                    let s = ServerLogin::start(
                        &mut OsRng,
                        &setup,
                        Some(ServerRegistration::deserialize(&file).unwrap()),
                        CredentialRequest::deserialize(&c.message.serialize()).unwrap(),
                        b"acct",
                        ServerLoginParameters::default(),
                    )
                    .unwrap();
                    let f = c
                        .state
                        .finish(
                            &mut OsRng,
                            b"pw",
                            CredentialResponse::deserialize(&s.message.serialize()).unwrap(),
                            ClientLoginFinishParameters::new(
                                None,
                                Identifiers::default(),
                                Some(&argon),
                            ),
                        )
                        .unwrap();
                    s.state
                        .finish(
                            CredentialFinalization::deserialize(&f.message.serialize()).unwrap(),
                            ServerLoginParameters::default(),
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

/// The stack: a vault node and a front-end on loopback, clients over HTTPS.
async fn stack(ksf: KsfParams, seconds: u64, clients: u64) -> (f64, Duration, Duration) {
    let dir = tempfile::tempdir().unwrap();
    // Rate limits off: this measures capacity, not policy.
    let local = coffer_frontend::local::start(dir.path(), "127.0.0.1:0".parse().unwrap(), false)
        .await
        .unwrap();
    let (base, tls) = (local.url.clone(), local.tls_fingerprint.clone());
    let pin = FleetPin::Pinned(local.fleet_fingerprint.clone());

    // One account per client, each registered once.
    let mut accounts = Vec::new();
    for i in 0..clients {
        let fe = Frontend::new(&base, &tls).unwrap();
        let id = format!("bench-{i}");
        fe.register_account(&id).await.unwrap();
        let code = local.code_for(&id).unwrap();
        let credential = fe.verify_account(&id, &code).await.unwrap();
        password::register(
            &fe.vault(&credential),
            &pin,
            b"pw",
            &BackupKey::generate().unwrap(),
            ksf,
            None,
        )
        .await
        .unwrap();
        accounts.push((fe, credential));
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = accounts
        .into_iter()
        .map(|(fe, credential)| {
            let pin = pin.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    password::recover(&fe.vault(&credential), &pin, b"pw")
                        .await
                        .unwrap();
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
}
