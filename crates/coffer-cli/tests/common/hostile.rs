//! Hostile parties for the password-mode attack tests: a front-end that reads, drops,
//! replays, reorders, substitutes and alters every vault message it relays (it also holds
//! the node token, so it can send messages of its own), and the dictionary attack an
//! account holder would run.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use coffer_client::password::{FleetKeys, VaultTransport};
use coffer_client::vault_http::VaultHttp;
use coffer_client::ClientError;
use coffer_vault_core::channel;
use coffer_vault_core::client;
use coffer_vault_core::{Fleet, KsfParams, Request, Response};
use hkdf::Hkdf;
use rand_core::OsRng;
use sha2::Sha512;

use crate::common::{bin, spawn_server};

pub const KSF: KsfParams = KsfParams {
    m_cost_kib: 8,
    t_cost: 1,
    p_cost: 1,
};

/// A real `coffer vault serve` process and what a front-end knows of it.
pub struct Node {
    child: std::process::Child,
    pub url: String,
    pub tls: String,
    pub token: String,
    pub fingerprint: String,
    pub keys: FleetKeys,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    pub fn start(dir: &Path) -> Node {
        let init = Command::new(bin())
            .args(["--json", "vault", "init", "--data"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(init.status.success());
        let info: serde_json::Value = serde_json::from_slice(&init.stdout).unwrap();
        let keys = coffer_vault_node::VaultNode::open(dir)
            .unwrap()
            .fleet()
            .keys()
            .clone();
        let (child, v) = spawn_server(&["vault", "serve", "--listen", "127.0.0.1:0"], dir);
        let addr: std::net::SocketAddr = v["listening"].as_str().unwrap().parse().unwrap();
        Node {
            child,
            url: format!("https://127.0.0.1:{}", addr.port()),
            tls: info["tls_fingerprint"].as_str().unwrap().to_string(),
            token: std::fs::read_to_string(dir.join("frontend.token")).unwrap(),
            fingerprint: info["fleet_fingerprint"].as_str().unwrap().to_string(),
            keys,
        }
    }

    /// The node as a front-end reaches it, for `account`.
    pub fn link(&self, account: &str) -> VaultHttp {
        VaultHttp::new(&self.url, &self.tls, &self.token, account.as_bytes()).unwrap()
    }
}

/// What the relay does to the next message it carries.
#[derive(Clone)]
pub enum Tamper {
    Pass,
    /// Flips one bit of the request before forwarding it.
    AlterRequest(usize),
    /// Flips one bit of the vault's answer.
    AlterAnswer(usize),
    /// Forwards the request, then tells the client the vault never answered.
    DropAnswer,
    /// Answers itself, as a vault of its own, without forwarding anything.
    Substitute,
    /// Keeps the message, forwards nothing, and tells the client the vault never answered;
    /// [`HostileRelay::deliver_withheld`] sends it later.
    Withhold,
    /// Sends a request of its own just before forwarding this message.
    Interleave(Request),
}

/// One message the relay carried, and the vault's answer to it.
pub struct Exchange {
    pub request: Vec<u8>,
    pub answer: Option<Vec<u8>>,
}

pub struct HostileRelay {
    account: String,
    to_vault: VaultHttp,
    /// Tampering for the following messages, in order (then `Pass`).
    plan: Mutex<Vec<Tamper>>,
    pub log: Mutex<Vec<Exchange>>,
    /// The relay's own vault, for substitutions.
    own_vault: Fleet,
    /// The real fleet's public keys (public: anyone may write to the fleet).
    keys: FleetKeys,
    withheld: Mutex<Vec<Vec<u8>>>,
}

impl HostileRelay {
    pub fn new(node: &Node, account: &str) -> HostileRelay {
        HostileRelay {
            account: account.to_string(),
            to_vault: node.link(account),
            plan: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            own_vault: Fleet::generate(&mut OsRng, 10).unwrap(),
            keys: node.keys.clone(),
            withheld: Mutex::new(Vec::new()),
        }
    }

    /// Delivers, in order, the messages it withheld.
    pub async fn deliver_withheld(&self) {
        let withheld = std::mem::take(&mut *self.withheld.lock().unwrap());
        for message in withheld {
            let _ = self.to_vault.call(message).await;
        }
    }

    /// Tampers with the next messages as given (one entry per message).
    pub fn plan(&self, plan: Vec<Tamper>) {
        *self.plan.lock().unwrap() = plan;
    }

    pub fn carried(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// Sends a message it carried before, again (the node cannot tell).
    pub async fn replay(&self, index: usize) -> Result<Vec<u8>, ClientError> {
        let message = self.log.lock().unwrap()[index].request.clone();
        self.to_vault.call(message).await
    }

    /// Replays every message carried from `from` on, in order.
    pub async fn replay_from(&self, from: usize, to: usize) {
        for i in from..to {
            let _ = self.replay(i).await;
        }
    }

    /// A request of its own: the client end of the channel is anonymous, and the fleet's
    /// public keys are public.
    pub async fn own(&self, keys: &FleetKeys, request: Request) -> Result<Response, ClientError> {
        let (message, pending) =
            channel::seal_request(keys, self.account.as_bytes(), &request).unwrap();
        let answer = self.to_vault.call(message).await?;
        pending
            .open(&answer)
            .map_err(|_| ClientError::VaultNotAuthentic)
    }

    /// A forged answer from its own vault, for a client that pinned the real one.
    fn forged_answer(&self) -> Vec<u8> {
        let account = self.account.as_bytes();
        let (_, request) = client::start_registration(&mut OsRng, b"anything").unwrap();
        let own = Request::RegisterStart {
            request,
            authorization: None,
        };
        let (m1, _) = channel::seal_request(self.own_vault.keys(), account, &own).unwrap();
        let (_, responder) = channel::open_request(&self.own_vault, account, &m1).unwrap();
        responder
            .seal(&Response::RegisterStarted {
                registration_id: vec![0; 32],
                response: vec![0; 64],
            })
            .unwrap()
    }
}

impl VaultTransport for &HostileRelay {
    async fn call(&self, mut message: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        let tamper = {
            let mut plan = self.plan.lock().unwrap();
            if plan.is_empty() {
                Tamper::Pass
            } else {
                plan.remove(0)
            }
        };
        if let Tamper::Substitute = tamper {
            self.log.lock().unwrap().push(Exchange {
                request: message,
                answer: None,
            });
            return Ok(self.forged_answer());
        }
        if let Tamper::Withhold = tamper {
            self.withheld.lock().unwrap().push(message);
            return Err(ClientError::Unreachable("the relay withheld it".into()));
        }
        if let Tamper::Interleave(own) = &tamper {
            let _ = self.own(&self.keys, own.clone()).await;
        }
        if let Tamper::AlterRequest(i) = tamper {
            let i = i % message.len();
            message[i] ^= 1;
        }
        let answer = self.to_vault.call(message.clone()).await;
        self.log.lock().unwrap().push(Exchange {
            request: message,
            answer: answer.as_ref().ok().cloned(),
        });
        let mut answer = answer?;
        match tamper {
            Tamper::AlterAnswer(i) => {
                let i = i % answer.len();
                answer[i] ^= 1;
                Ok(answer)
            }
            Tamper::DropAnswer => Err(ClientError::Unreachable("the relay dropped it".into())),
            _ => Ok(answer),
        }
    }
}

/// The first 32 bytes of OPAQUE's masked response, unmasked with a candidate's masking key:
/// the server public key exactly when the candidate is the password.
fn unmask_server_key(masking_key: &[u8], credential_response: &[u8]) -> Vec<u8> {
    let mut pad = [0u8; 32];
    Hkdf::<Sha512>::from_prk(masking_key)
        .unwrap()
        .expand_multi_info(
            &[&credential_response[32..64], b"CredentialResponsePad"],
            &mut pad,
        )
        .unwrap();
    pad.iter()
        .zip(&credential_response[64..96])
        .map(|(p, m)| p ^ m)
        .collect()
}

/// The registration-oracle attack, for whoever can send requests for the account through
/// `send`: one `RecoverStart`, then every candidate through every request type the vault
/// takes. Returns the candidate found, if any.
pub async fn dictionary_attack<F, Fut>(
    keys: &FleetKeys,
    account: &str,
    candidates: &[&str],
    send: F,
) -> Option<String>
where
    F: Fn(Request) -> Fut,
    Fut: std::future::Future<Output = Result<Response, ClientError>>,
{
    let (_, request) = client::start_login(&mut OsRng, b"anything").unwrap();
    let Ok(Response::RecoverStarted { response, .. }) =
        send(Request::RecoverStart { request }).await
    else {
        panic!("the attacker's one guess got no credential response")
    };
    for candidate in candidates {
        let (state, request) =
            client::start_registration(&mut OsRng, candidate.as_bytes()).unwrap();
        // A forged proof answering the real outstanding challenge (so that it is judged,
        // not refused as stale), and none at all.
        let nonce = match send(Request::Challenge).await {
            Ok(Response::Challenge { nonce }) => nonce,
            _ => vec![0; 32],
        };
        let forged = Some(coffer_vault_core::Authorization {
            challenge: nonce,
            mac: vec![0; 32],
        });
        for authorization in [None, forged] {
            let (state, request) = (state.clone(), request.clone());
            if let Ok(Response::RegisterStarted { response: reg, .. }) =
                send(Request::RegisterStart {
                    request,
                    authorization,
                })
                .await
            {
                let upload = client::finish_registration(
                    &mut OsRng,
                    state,
                    candidate.as_bytes(),
                    &reg,
                    account.as_bytes(),
                    keys,
                    &KSF,
                )
                .unwrap()
                .upload;
                if unmask_server_key(&upload[32..96], &response) == keys.opaque {
                    return Some(candidate.to_string());
                }
            }
        }
        for other in [
            Request::Status { nonce: vec![1; 32] },
            Request::Challenge,
            Request::Delete {
                authorization: None,
            },
            Request::RecoverFinish {
                login_id: vec![0; 16],
                finalization: vec![7; 64],
            },
            Request::RegisterFinish {
                registration_id: vec![0; 32],
                upload: vec![0; 192],
                k_blob: vec![1; 93],
                auth_key: vec![2; 32],
                ksf: KSF,
            },
        ] {
            let _ = send(other).await;
        }
    }
    None
}
