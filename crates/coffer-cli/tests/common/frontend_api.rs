//! A plain HTTPS client for the front-end's API, for the tests that look at its answers as
//! they are on the wire (`api_contract.rs`): status, headers and JSON body, unparsed by the
//! client library.

use std::future::Future;
use std::path::{Path, PathBuf};

use coffer_vault_core::{channel, FleetKeys, Request};
use serde_json::{json, Value};

use crate::common::coffer_server::Server;

pub fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(f)
}

/// A plain HTTPS client for the API, pinned to the server's certificate.
pub struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    pub fn new(server: &Server) -> Api {
        let tls = coffer_tls::pinned_client_config(&[&server.tls]).expect("pinned TLS");
        Api {
            http: reqwest::Client::builder()
                .use_preconfigured_tls(tls)
                .build()
                .expect("an HTTP client"),
            base: server.url.trim_end_matches('/').to_string(),
        }
    }

    pub async fn post(&self, path: &str, authorization: Option<&str>, body: &Value) -> Answer {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(value) = authorization {
            req = req.header(reqwest::header::AUTHORIZATION, value);
        }
        Answer::of(req.send().await.expect("the server answers")).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        let resp = self.http.get(format!("{}{path}", self.base)).send().await;
        Answer::of(resp.expect("the server answers")).await
    }

    /// Registers and verifies `id` through the API, reading the code the development
    /// verifier wrote; returns the credential.
    pub async fn sign_in(&self, server: &Server, id: &str) -> String {
        let sent = self.post("/v1/accounts", None, &json!({ "id": id })).await;
        assert_eq!((sent.status, &sent.body), (202, &json!({ "sent": true })));
        let code = server.code_for(id);
        let verified = self
            .post(
                "/v1/accounts/verify",
                None,
                &json!({ "id": id, "code": code }),
            )
            .await;
        assert_eq!(verified.status, 200, "{:?}", verified.body);
        let credential = verified.body["credential"].as_str().expect("a credential");
        assert!(crate::common::is_hex(credential, 64));
        credential.to_string()
    }

    /// A vault `Status` request sealed for `id` (read-only, so it may be replayed), as hex;
    /// checked to be answered 200 with a sealed answer that opens.
    pub async fn sealed_status(&self, id: &str, credential: &str) -> String {
        let fleet = self.get("/v1/fleet").await;
        assert_eq!(fleet.status, 200, "{:?}", fleet.body);
        let keys: FleetKeys = serde_json::from_value(json!({
            "channel_key": fleet.body["channel_key"],
            "opaque_key": fleet.body["opaque_key"],
        }))
        .expect("fleet keys");
        let (message, pending) =
            channel::seal_request(&keys, id.as_bytes(), &Request::Status { nonce: vec![] })
                .expect("sealed");
        let hex: String = message.iter().map(|b| format!("{b:02x}")).collect();
        let bearer = format!("Bearer {credential}");
        let answer = self
            .post("/v1/vault", Some(&bearer), &json!({ "message": hex }))
            .await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        let fields: Vec<&String> = answer.body.as_object().expect("an object").keys().collect();
        assert_eq!(fields, ["message"], "the answer has one field");
        let sealed = answer.body["message"].as_str().expect("hex");
        let bytes: Vec<u8> = (0..sealed.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&sealed[i..i + 2], 16).expect("hex"))
            .collect();
        // Any answer that opens is the vault's own (an account without a record has none).
        let opened = pending.open(&bytes);
        assert!(opened.is_ok(), "the answer does not open: {opened:?}");
        hex
    }
}

/// One answer, read whole.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    async fn of(resp: reqwest::Response) -> Answer {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("a body");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("a {status} answer that is not JSON ({e}): {text:?}"));
        Answer {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The server's certificate as PEM, for schemathesis to trust: its own file, checked to be
/// the one the server printed.
pub fn ca_bundle(server: &Server, data: &Path, dir: &Path) -> PathBuf {
    let der = std::fs::read(data.join("frontend/tls.cert.der")).expect("the certificate");
    assert_eq!(coffer_tls::fingerprint(&der), server.tls);
    let path = dir.join("server.pem");
    std::fs::write(&path, pem_certificate(&der)).expect("write the PEM file");
    path
}

fn pem_certificate(der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// The committed `docs/openapi.json`, checked to be the document the server serves: its
/// path and its contents.
pub fn committed_document(api: &Api) -> (PathBuf, Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let text = std::fs::read_to_string(&path).expect("docs/openapi.json");
    let committed: Value = serde_json::from_str(&text).expect("docs/openapi.json is JSON");
    let served = block_on(api.get("/openapi.json"));
    assert_eq!(served.status, 200);
    assert_eq!(
        served.body, committed,
        "the server serves the committed document"
    );
    (path, committed)
}
