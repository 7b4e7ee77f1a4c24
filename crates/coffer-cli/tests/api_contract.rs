//! The front-end keeps its published contract, `docs/openapi.json`: schemathesis generates
//! requests from the document and checks every answer of a running `coffer serve` against it,
//! once without a credential and once with a real one (registered and verified through the
//! API). Rate-limited answers and the bearer scheme's edge cases are driven here directly, and
//! a short schemathesis run checks the server with its limits on as well.
//!
//! The schemathesis runs skip (with a note) where schemathesis is not installed, except on CI;
//! see `common/schemathesis.rs`.

mod common;
#[path = "common/frontend_api.rs"]
mod frontend_api;
#[path = "common/schemathesis.rs"]
mod schemathesis;

use std::path::{Path, PathBuf};

use common::coffer_server::{start_server_with, Server};
use frontend_api::{block_on, ca_bundle, committed_document, Answer, Api};
use schemathesis::{statuses_by_path, toml_list, Run, Schemathesis};
use serde_json::{json, Value};

const ACCOUNT: &str = "contract-test";

/// Every warning schemathesis 4.32.5 shows by default (`schemathesis.config._warnings`). A
/// run fails on each of them but the ones it expects.
const WARNINGS: [&str; 13] = [
    "missing_auth",
    "missing_test_data",
    "base_url_mismatch",
    "validation_mismatch",
    "missing_deserializer",
    "unused_openapi_auth",
    "unsupported_regex",
    "method_not_allowed",
    "constants_extraction",
    "unmatched_filter",
    "unresolvable_reference",
    "rate_limited",
    "dictionary_mismatch",
];

/// What schemathesis accepts for valid input by default, and 400 for the vault relay: a
/// message of the documented shape that is not sealed for this fleet and account (which no
/// schema can express) is refused by the vault behind.
const VAULT_ACCEPTS: [&str; 9] = [
    "2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx",
];

/// Test cases per operation and phase: enough to reach every documented answer, few enough
/// that each run takes seconds.
const MAX_EXAMPLES: u32 = 200;

/// `[warnings]` failing the run on every warning but `expected`.
fn warnings_but(expected: &[&str]) -> String {
    let shown: Vec<&str> = WARNINGS
        .into_iter()
        .filter(|w| !expected.contains(w))
        .collect();
    format!(
        "[warnings]\ndisplay = {}\nfail-on = true\n",
        toml_list(&shown)
    )
}

/// The configuration of a run with a credential. `sealed` is a real vault message for the
/// account, mixed into the generated ones so that the relay's 200 is checked too.
///
/// The relay's generated messages are mostly refused (400: not sealed), which is what
/// schemathesis's "validation_mismatch" warning reports; it cannot be silenced for one
/// operation, so this run expects it, and the run without a credential (where the relay
/// answers only 401) keeps it fatal for the other operations.
fn authenticated_config(expected_warnings: &[&str], sealed: &str) -> String {
    let mut expected = vec!["validation_mismatch"];
    expected.extend_from_slice(expected_warnings);
    format!(
        "{}\n[dictionaries.sealed]\nvalues = [{sealed:?}]\n\n\
         [[operations]]\ninclude-name = \"POST /v1/vault\"\n\
         checks.positive_data_acceptance.expected-statuses = {}\n\
         parameters = {{ \"body.message\" = {{ dictionary = \"sealed\", probability = 0.5 }} }}\n",
        warnings_but(&expected),
        toml_list(&VAULT_ACCEPTS)
    )
}

/// A `coffer serve` in a folder of its own, signed in as [`ACCOUNT`].
struct Contract {
    _tmp: tempfile::TempDir,
    work: PathBuf,
    server: Server,
    api: Api,
    credential: String,
    /// A vault `Status` request sealed for [`ACCOUNT`], as hex.
    sealed: String,
    document: PathBuf,
    doc: Value,
    ca: PathBuf,
}

impl Contract {
    fn start(extra: &[&str]) -> Contract {
        let tmp = tempfile::Builder::new()
            .prefix("coffer-api-contract-")
            .tempdir()
            .expect("tempdir");
        let data = tmp.path().join("data");
        let work = tmp.path().join("schemathesis");
        std::fs::create_dir_all(&work).expect("a work folder");
        let server = start_server_with(&data, extra);
        let api = Api::new(&server);
        let credential = block_on(api.sign_in(&server, ACCOUNT));
        let sealed = block_on(api.sealed_status(ACCOUNT, &credential));
        let (document, doc) = committed_document(&api);
        let ca = ca_bundle(&server, &data, &work);
        Contract {
            _tmp: tmp,
            work,
            server,
            api,
            credential,
            sealed,
            document,
            doc,
            ca,
        }
    }

    /// A run of schemathesis against this server; the test fails on any finding.
    fn check(
        &self,
        st: &Schemathesis,
        name: &str,
        authorization: Option<&str>,
        config: String,
        max_examples: u32,
        har: Option<&Path>,
    ) {
        let document = self.document.display().to_string();
        let run = Run {
            name,
            document: &document,
            base_url: &self.server.url,
            ca_bundle: &self.ca,
            authorization,
            config,
            // The document has no examples, and no links for a stateful phase (nothing the
            // API creates is read back by id): the other two phases are all there is.
            phases: "coverage,fuzzing",
            max_examples,
            workdir: &self.work,
            har,
        };
        st.run(&run)
            .assert_passed(name, &schemathesis::config_path(&run));
    }

    /// `"Bearer <credential>"` with `scheme` in place of `Bearer`.
    fn authorization(&self, scheme: &str) -> String {
        format!("{scheme} {}", self.credential)
    }
}

#[test]
fn the_server_keeps_its_published_contract() {
    let Some(st) = Schemathesis::find("the_server_keeps_its_published_contract") else {
        return;
    };
    // Without rate limits, so that the runs reach past them; the limits have a test below.
    let c = Contract::start(&["--no-rate-limits"]);
    // Without a credential the relay can only answer 401: the warning saying so is expected.
    c.check(
        &st,
        "unauthenticated",
        None,
        warnings_but(&["missing_auth"]),
        MAX_EXAMPLES,
        None,
    );
    // The scheme in lower case, as a client may send it: "missing_auth" fails the run if
    // the relay refuses it.
    c.check(
        &st,
        "authenticated",
        Some(&c.authorization("bearer")),
        authenticated_config(&[], &c.sealed),
        MAX_EXAMPLES,
        None,
    );
}

/// Posts `body(i)` to `path` for i = 0, 1, ... until the answer is 429; the attempts are
/// bounded by the bursts.
async fn until_limited(
    api: &Api,
    path: &str,
    authorization: Option<&str>,
    body: impl Fn(usize) -> Value,
) -> Answer {
    for i in 0..200 {
        let answer = api.post(path, authorization, &body(i)).await;
        if answer.status == 429 {
            return answer;
        }
        assert!(
            answer.status < 500,
            "{path}: {} {:?}",
            answer.status,
            answer.body
        );
    }
    panic!("{path}: no 429 in 200 requests");
}

/// A 429 as `docs/openapi.json` describes it for `path`: the shared RateLimited answer, its
/// `Retry-After` header (whole seconds, at least 1, the body's `retry_after`) and its body.
fn assert_rate_limited_as_documented(doc: &Value, path: &str, answer: &Answer) {
    let documented = &doc["paths"][path]["post"]["responses"]["429"];
    assert_eq!(documented["$ref"], "#/components/responses/RateLimited");
    let response = &doc["components"]["responses"]["RateLimited"];
    assert_eq!(
        doc["components"]["headers"]["Retry-After"]["required"],
        true
    );
    assert!(response["headers"]["Retry-After"].is_object());
    let schema = &doc["components"]["schemas"]["RateLimitedError"]["properties"]["error"];

    assert_eq!(answer.status, 429, "{path}: {:?}", answer.body);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let header: u64 = answer
        .header("retry-after")
        .unwrap_or_else(|| panic!("{path}: a 429 without Retry-After"))
        .parse()
        .expect("Retry-After in whole seconds");
    assert!(header >= 1);
    let error = &answer.body["error"];
    let mut fields: Vec<&str> = error
        .as_object()
        .expect("an error object")
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["class", "message", "retry_after", "retryable"]);
    assert_eq!(error["class"], schema["properties"]["class"]["const"]);
    assert_eq!(
        error["retryable"],
        schema["properties"]["retryable"]["const"]
    );
    assert_eq!(
        error["retry_after"], header,
        "{path}: header and body agree"
    );
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(answer.body.as_object().map(|o| o.len()), Some(1));
}

#[test]
fn rate_limited_answers_keep_the_contract() {
    let c = Contract::start(&[]);
    let bearer = c.authorization("Bearer");
    let limited = block_on(async {
        let requests = until_limited(
            &c.api,
            "/v1/accounts",
            None,
            |i| json!({ "id": format!("limit-{i}") }),
        );
        let checks = until_limited(
            &c.api,
            "/v1/accounts/verify",
            None,
            |i| json!({ "id": format!("limit-{i}"), "code": "00000000" }),
        );
        let calls = until_limited(
            &c.api,
            "/v1/vault",
            Some(&bearer),
            |_| json!({ "message": c.sealed }),
        );
        [
            ("/v1/accounts", requests.await),
            ("/v1/accounts/verify", checks.await),
            ("/v1/vault", calls.await),
        ]
    });
    for (path, answer) in &limited {
        assert_rate_limited_as_documented(&c.doc, path, answer);
    }

    // The same server, its buckets still empty, under schemathesis: its 429s are checked
    // against the document like every other answer, and the run must have met them.
    let Some(st) = Schemathesis::find("rate_limited_answers_keep_the_contract") else {
        return;
    };
    let har = c.work.join("limited.har");
    c.check(
        &st,
        "rate-limited",
        Some(&c.authorization("Bearer")),
        authenticated_config(&["rate_limited", "missing_test_data"], &c.sealed),
        20,
        Some(&har),
    );
    let seen = statuses_by_path(&har, 429);
    for (path, _) in &limited {
        assert!(
            seen.get(*path).is_some_and(|&n| n > 0),
            "schemathesis met no 429 on {path}: {seen:?}"
        );
    }
}

#[test]
fn the_bearer_scheme_is_case_insensitive_and_an_empty_token_is_none() {
    let c = Contract::start(&["--no-rate-limits"]);
    let message = json!({ "message": c.sealed });
    block_on(async {
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            let answer = c
                .api
                .post("/v1/vault", Some(&c.authorization(scheme)), &message)
                .await;
            assert_eq!(answer.status, 200, "{scheme}: {:?}", answer.body);
        }
        let unknown = format!("Bearer {}", "0".repeat(64));
        for (authorization, challenge) in [
            (None, "Bearer"),
            (Some(""), "Bearer"),
            (Some("Bearer"), "Bearer"),
            (Some("Bearer "), "Bearer"),
            (Some("bearer    "), "Bearer"),
            (Some("Basic YWxhZGRpbjpvcGVu"), "Bearer"),
            (Some(unknown.as_str()), r#"Bearer error="invalid_token""#),
        ] {
            let answer = c.api.post("/v1/vault", authorization, &message).await;
            assert_eq!(answer.status, 401, "{authorization:?}");
            assert_eq!(answer.header("www-authenticate"), Some(challenge));
            assert_eq!(answer.header("content-type"), Some("application/json"));
            assert_eq!(answer.body["error"]["class"], "unauthorized");
            assert_eq!(answer.body["error"]["retryable"], false);
        }
    });
}
