//! What the byte vectors cannot show alone: that the vault and the client really bind
//! OPAQUE to the vectors' credential identifier and context, and that a real recovery sends
//! K back in the vectors' transport format. One registration and one recovery for the
//! `credential_identifier` account on the `fleet_secrets` fleet, where every vault answer is
//! compared with opaque-ke driven directly with the vectors' bytes.

use coffer_vault_core::client::{self, LoginOutcome};
use coffer_vault_core::{step, Change, Fleet, KsfParams, Record, Request, Response, State, Suite};
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use opaque_ke::{
    CredentialRequest, Identifiers, ServerLogin, ServerLoginParameters, ServerRegistration,
    ServerSetup,
};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

use crate::gen_vectors::fixtures::{self, Scripted};
use crate::{find, load_vectors, spec};

/// A registration request as OPAQUE serializes it (a fixed Ristretto255 point): the vault
/// parses it, and evaluates the OPRF on it.
pub fn registration_request() -> Vec<u8> {
    (RISTRETTO_BASEPOINT_POINT * fixtures::scalar("registration request 1"))
        .compress()
        .to_bytes()
        .to_vec()
}

/// An endless deterministic generator (SHA-256 of a seed and a counter), so that the vault's
/// login and opaque-ke's can draw the same bytes.
struct Stream {
    seed: &'static str,
    counter: u64,
    buffer: Vec<u8>,
}

impl Stream {
    fn new(seed: &'static str) -> Stream {
        Stream {
            seed,
            counter: 0,
            buffer: Vec::new(),
        }
    }
}

impl RngCore for Stream {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        while self.buffer.len() < dest.len() {
            let mut h = Sha256::new();
            h.update(self.seed.as_bytes());
            h.update(self.counter.to_be_bytes());
            self.buffer.extend_from_slice(&h.finalize());
            self.counter += 1;
        }
        let rest = self.buffer.split_off(dest.len());
        dest.copy_from_slice(&self.buffer);
        self.buffer = rest;
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// Test only.
impl CryptoRng for Stream {}

const KSF: KsfParams = KsfParams {
    m_cost_kib: 8,
    t_cost: 1,
    p_cost: 1,
};

fn put(change: Change) -> Record {
    match change {
        Change::Put(record) => *record,
        other => panic!("expected a record to store, got {other:?}"),
    }
}

#[test]
fn opaque_is_bound_to_the_vectors_credential_identifier_and_context() {
    let vectors = load_vectors();
    let fleet = Fleet::from_bytes(&find(&vectors, "fleet_secrets").bytes("fleet secrets"))
        .expect("the fleet vector parses");
    let setup = ServerSetup::<Suite>::deserialize(&fleet.to_bytes()[67..]).expect("a setup");
    let fleet_keys = find(&vectors, "fleet_keys");
    assert_eq!(fleet.keys().channel, fleet_keys.bytes("channel key"));
    assert_eq!(fleet.keys().opaque, fleet_keys.bytes("opaque key"));
    let context = fleet_keys.bytes("opaque context");
    let credential = find(&vectors, "credential_identifier");
    let account = credential.bytes("account");
    let credential_id = credential.bytes("credential identifier");
    let password = b"correct horse battery staple";
    let mut rng = Stream::new("client");

    // Registration, with the vector's registration id.
    let (state, request) = client::start_registration(&mut rng, password).expect("start");
    let started = step(
        &fleet,
        &account,
        None,
        Request::RegisterStart {
            request,
            authorization: None,
        },
        &mut Scripted::new(&credential.bytes("registration id")),
    )
    .expect("step");
    let record = put(started.change);
    let Response::RegisterStarted {
        registration_id,
        response,
    } = started.response
    else {
        panic!("RegisterStart answered {:?}", started.response);
    };
    let registration = client::finish_registration(
        &mut rng,
        state,
        password,
        &response,
        &account,
        fleet.keys(),
        &KSF,
    )
    .expect("finish");
    let k_blob = fixtures::pseudo_random("binding K blob", 93);
    let finished = step(
        &fleet,
        &account,
        Some(record),
        Request::RegisterFinish {
            registration_id,
            upload: registration.upload,
            k_blob: k_blob.clone(),
            auth_key: vec![9; 32],
            ksf: KSF,
        },
        &mut Scripted::new(&[]),
    )
    .expect("step");
    assert!(matches!(finished.response, Response::Registered { .. }));
    let record = put(finished.change);
    let State::Live(live) = &record.state else {
        panic!("not a live record");
    };
    let password_file = live.password_file.clone();

    // Recovery: the vault's answer is opaque-ke's for the vectors' bytes, and only for them.
    let (login, request) = client::start_login(&mut rng, password).expect("start");
    let started = step(
        &fleet,
        &account,
        Some(record),
        Request::RecoverStart {
            request: request.clone(),
        },
        &mut Stream::new("vault login"),
    )
    .expect("step");
    let record = put(started.change);
    let Response::RecoverStarted {
        login_id, response, ..
    } = started.response
    else {
        panic!("RecoverStart answered {:?}", started.response);
    };
    let direct = |context: &[u8], credential_id: &[u8]| {
        ServerLogin::<Suite>::start(
            &mut Stream::new("vault login"),
            &setup,
            Some(ServerRegistration::deserialize(&password_file).expect("a password file")),
            CredentialRequest::deserialize(&request).expect("a request"),
            credential_id,
            ServerLoginParameters {
                context: Some(context),
                identifiers: Identifiers {
                    client: Some(&account),
                    server: None,
                },
            },
        )
        .expect("a login")
        .message
        .serialize()
        .to_vec()
    };
    assert_eq!(response, direct(&context, &credential_id));
    let other_context = spec::keys::opaque_context(&[0; 32]);
    assert_ne!(
        response,
        direct(&other_context, &credential_id),
        "the context counts"
    );
    let other_id = find(&vectors, "credential_identifier_other_registration");
    assert_ne!(
        response,
        direct(&context, &other_id.bytes("credential identifier")),
        "the credential identifier counts"
    );

    // The client binds the same context (else it could not finish), and K comes back in
    // the transport format under the session key.
    let outcome = client::finish_login(
        &mut rng,
        login,
        password,
        &response,
        &account,
        fleet.keys(),
        &KSF,
    )
    .expect("finish");
    let LoginOutcome::Finished(login) = outcome else {
        panic!("the client did not accept the vault's login");
    };
    let nonce = fixtures::fixed12("binding transport nonce");
    let recovered = step(
        &fleet,
        &account,
        Some(record),
        Request::RecoverFinish {
            login_id,
            finalization: login.finalization,
        },
        &mut Scripted::new(&nonce),
    )
    .expect("step");
    let Response::Recovered { sealed_k_blob } = recovered.response else {
        panic!("RecoverFinish answered {:?}", recovered.response);
    };
    assert_eq!(sealed_k_blob[..12], nonce);
    assert_eq!(
        spec::transport::open(&login.session_key, &sealed_k_blob),
        Some(k_blob)
    );
}
