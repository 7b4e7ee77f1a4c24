//! Real storage API servers on loopback for the end-to-end tests, one per test.
//!
//! - [`S3Server`]: moto in server mode (the S3 REST API, in memory).
//! - [`WebDavServer`]: wsgidav on cheroot, serving a temporary directory, with basic auth.
//! - [`GcsEmulator`]: gcp-storage-emulator (the GCS JSON API, in memory).
//! - [`AzuriteServer`]: Azurite's Blob service (the Azure Blob Storage REST API, in memory).
//!
//! The first three are Python programs (`scripts/test.sh` pip-installs the pinned versions),
//! Azurite is a Node.js program (`scripts/test.sh` npm-installs the pinned version under
//! [`AZURITE_PREFIX`]). Each one is started on a free 127.0.0.1 port chosen at run time, and
//! killed (and waited for) when its handle is dropped. Its output goes to a log file in the
//! handle's temporary directory, never to the test output; a server that does not answer
//! within [`STARTUP_TIMEOUT`] makes the test panic with that log. The servers also exit by
//! themselves when the test process dies (they watch their standard input, a pipe from this
//! process), so a handle kept in a `static` or a killed test run leaves nothing behind.
//!
//! [`http`] is a tiny blocking HTTP/1.1 client (one request per connection) for tests that
//! need to look at or change what a server stores, next to the real client.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

/// How long a server may take to answer its first request before the test fails.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The exact packages `scripts/test.sh` installs (keep the two lists the same).
pub const PIP_PACKAGES: &str =
    "'moto[server]==5.2.5' wsgidav==4.4.0 cheroot==11.1.2 gcp-storage-emulator==2026.7.19";

/// The region moto puts buckets in when they are created without a location.
pub const S3_REGION: &str = "us-east-1";

/// moto refuses anonymous requests to existing objects (403), so requests made here carry
/// this header. moto does not check signatures: any AWS4 header passes.
pub const S3_DUMMY_AUTH: &str = "AWS4-HMAC-SHA256 Credential=coffer-test/20250101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0000000000000000000000000000000000000000000000000000000000000000";

/// The exit code of the launcher when a Python module is missing.
const MISSING_MODULE: i32 = 97;

/// Runs a server module as `__main__` (like `python3 -m MODULE ARGS`), after checking that
/// the modules it needs are importable and running a prelude (patches), and exits as soon as
/// its standard input closes. Arguments: `NEEDED,MODULES MODULE PRELUDE ARGS...`.
const LAUNCHER: &str = r#"
import importlib, os, runpy, sys, threading

def watch_parent():
    try:
        sys.stdin.buffer.read()
    finally:
        os._exit(0)

threading.Thread(target=watch_parent, daemon=True).start()
needed, module, prelude = sys.argv[1].split(","), sys.argv[2], sys.argv[3]
for name in needed:
    try:
        importlib.import_module(name)
    except ImportError as e:
        print("coffer-test-servers: cannot import %s: %s" % (name, e), file=sys.stderr, flush=True)
        os._exit(97)
exec(compile(prelude, "<prelude>", "exec"), {"__name__": "prelude"})
sys.argv = [module] + sys.argv[4:]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"#;

/// Runs a Node.js script (like `node SCRIPT ARGS`), and exits as soon as its standard input
/// closes. Arguments: `SCRIPT ARGS...`.
const NODE_LAUNCHER: &str = r#"
process.stdin.on("end", () => process.exit(0)).on("error", () => process.exit(0)).resume();
const main = require("fs").realpathSync(process.argv[1]);
process.argv = [process.argv[0], main, ...process.argv.slice(2)];
require(main);
"#;

// ---------------------------------------------------------------------------------------
// S3 (moto)
// ---------------------------------------------------------------------------------------

/// moto's S3 API on `endpoint`. Create buckets with [`S3Server::create_bucket`]; any
/// credentials and region [`S3_REGION`] work with path-style requests.
pub struct S3Server {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub addr: SocketAddr,
    /// Dummy credentials: moto accepts any.
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
    /// How long the server took to answer its first request.
    pub startup: Duration,
    process: ServerProcess,
}

impl S3Server {
    pub fn start() -> S3Server {
        S3Server::start_with_env(&[])
    }

    /// Starts moto with extra environment variables, e.g. `("S3_UPLOAD_PART_MIN_SIZE",
    /// "1024")` to allow small multipart parts (the default is S3's 5 MiB) or
    /// `("MOTO_S3_DEFAULT_MAX_KEYS", "2")` to force paged listings.
    pub fn start_with_env(env: &[(&str, &str)]) -> S3Server {
        let process = ServerProcess::start(Spec {
            name: "moto",
            program: Program::Python {
                modules: &["moto", "flask", "flask_cors"],
                module: "moto.server",
                prelude: "",
            },
            args: &|port, _dir| {
                vec![
                    "-H".into(),
                    "127.0.0.1".into(),
                    "-p".into(),
                    port.to_string(),
                ]
            },
            env,
            server_header: "Werkzeug",
        });
        S3Server {
            endpoint: format!("http://{}", process.addr),
            addr: process.addr,
            access_key_id: "coffer-test".into(),
            secret_access_key: "coffer-test-secret".into(),
            region: S3_REGION.into(),
            startup: process.startup,
            process,
        }
    }

    /// Where the server's output goes.
    pub fn log_path(&self) -> &Path {
        &self.process.log
    }

    /// Creates a bucket (in [`S3_REGION`]); panics unless moto says 200.
    pub fn create_bucket(&self, name: &str) {
        let resp = self.request("PUT", &format!("/{name}"), &[], b"");
        assert_eq!(
            resp.status,
            200,
            "moto: create bucket {name}: {}",
            resp.text()
        );
    }

    /// The stored bytes of an object, or None if it does not exist.
    pub fn get_object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let resp = self.request("GET", &s3_path(bucket, key), &[], b"");
        match resp.status {
            200 => Some(resp.body),
            404 => None,
            s => panic!("moto: GET {bucket}/{key}: {s} {}", resp.text()),
        }
    }

    /// Stores an object directly (to plant or corrupt data behind the client's back).
    pub fn put_object(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let resp = self.request(
            "PUT",
            &s3_path(bucket, key),
            &[("Content-Type", "application/octet-stream")],
            bytes,
        );
        assert_eq!(
            resp.status,
            200,
            "moto: PUT {bucket}/{key}: {}",
            resp.text()
        );
    }

    /// Deletes an object (no error if it is missing).
    pub fn delete_object(&self, bucket: &str, key: &str) {
        let resp = self.request("DELETE", &s3_path(bucket, key), &[], b"");
        assert!(
            resp.status == 204 || resp.status == 200,
            "moto: DELETE {bucket}/{key}: {} {}",
            resp.status,
            resp.text()
        );
    }

    /// The keys in a bucket under `prefix`, in order (all pages).
    pub fn list_keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut path = format!("/{bucket}?list-type=2&prefix={}", pct(prefix, false));
            if let Some(t) = &token {
                path.push_str(&format!("&continuation-token={}", pct(t, false)));
            }
            let resp = self.request("GET", &path, &[], b"");
            assert_eq!(resp.status, 200, "moto: list {bucket}: {}", resp.text());
            let xml = resp.text();
            keys.extend(xml_values(&xml, "Key"));
            token = xml_values(&xml, "NextContinuationToken").into_iter().next();
            if token.is_none() {
                return keys;
            }
        }
    }

    /// A raw request to moto, with [`S3_DUMMY_AUTH`] added. `path` is already encoded.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        let mut all = vec![("Authorization", S3_DUMMY_AUTH)];
        all.extend_from_slice(headers);
        http(self.addr, method, path, &all, body)
    }
}

fn s3_path(bucket: &str, key: &str) -> String {
    format!("/{bucket}/{}", pct(key, true))
}

// ---------------------------------------------------------------------------------------
// WebDAV (wsgidav)
// ---------------------------------------------------------------------------------------

/// wsgidav serving [`WebDavServer::root`] read-write at `endpoint` (the share is `/`).
pub struct WebDavServer {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub addr: SocketAddr,
    /// The served directory: what the client stores, as plain files, to inspect or corrupt.
    pub root: PathBuf,
    /// Basic-auth credentials, or None for anonymous access.
    pub username: Option<String>,
    pub password: Option<String>,
    /// How long the server took to answer its first request.
    pub startup: Duration,
    process: ServerProcess,
}

impl WebDavServer {
    /// Basic auth as user "coffer" with a fresh random password (in `password`).
    pub fn start() -> WebDavServer {
        WebDavServer::start_with_password(&random_token())
    }

    /// Basic auth as user "coffer" with this password.
    pub fn start_with_password(password: &str) -> WebDavServer {
        WebDavServer::start_inner(Some(("coffer", password)))
    }

    /// No authentication at all.
    pub fn start_anonymous() -> WebDavServer {
        WebDavServer::start_inner(None)
    }

    fn start_inner(auth: Option<(&str, &str)>) -> WebDavServer {
        let process = ServerProcess::start(Spec {
            name: "wsgidav",
            program: Program::Python {
                modules: &["wsgidav", "cheroot"],
                module: "wsgidav.server.server_cli",
                prelude: "",
            },
            args: &|port, dir| {
                let root = dir.join("root");
                fs::create_dir_all(&root).expect("create the WebDAV root");
                let user_mapping = match auth {
                    Some((user, password)) => serde_json::json!({
                        "*": { user: { "password": password, "roles": [] } }
                    }),
                    None => serde_json::json!({ "*": true }),
                };
                let config = serde_json::json!({
                    "host": "127.0.0.1",
                    "port": port,
                    "provider_mapping": { "/": root.to_str().expect("UTF-8 temp path") },
                    "simple_dc": { "user_mapping": user_mapping },
                    "http_authenticator": {
                        "accept_basic": true,
                        "accept_digest": false,
                        "default_to_digest": false,
                        "trusted_auth_header": null,
                    },
                    // Dead properties (PROPPATCH, OpenDAL's user metadata), kept in memory.
                    "property_manager": true,
                    "lock_storage": true,
                    // No HTML listings and no extra read-only share.
                    "dir_browser": { "enable": false },
                    "verbose": 3,
                    "logging": { "enable_loggers": [] },
                });
                let path = dir.join("wsgidav.json");
                fs::write(&path, serde_json::to_vec_pretty(&config).unwrap())
                    .expect("write the wsgidav config");
                vec!["--config".into(), path.to_str().unwrap().into()]
            },
            env: &[],
            server_header: "WsgiDAV",
        });
        let root = process.path.join("root");
        WebDavServer {
            endpoint: format!("http://{}", process.addr),
            addr: process.addr,
            root,
            username: auth.map(|(u, _)| u.to_string()),
            password: auth.map(|(_, p)| p.to_string()),
            startup: process.startup,
            process,
        }
    }

    /// Where the server's output goes.
    pub fn log_path(&self) -> &Path {
        &self.process.log
    }

    /// The `Authorization` header value for the credentials, if any.
    pub fn authorization(&self) -> Option<String> {
        let (user, password) = (self.username.as_ref()?, self.password.as_ref()?);
        Some(format!(
            "Basic {}",
            base64(format!("{user}:{password}").as_bytes())
        ))
    }

    /// A raw request with the credentials added. `path` is already encoded.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        let auth = self.authorization();
        let mut all: Vec<(&str, &str)> = Vec::new();
        if let Some(a) = &auth {
            all.push(("Authorization", a));
        }
        all.extend_from_slice(headers);
        http(self.addr, method, path, &all, body)
    }
}

// ---------------------------------------------------------------------------------------
// GCS (gcp-storage-emulator)
// ---------------------------------------------------------------------------------------

/// gcp-storage-emulator's GCS JSON API at `endpoint`, in memory, no authentication, with
/// the fixes of [`GCS_COMPAT`] (OpenDAL's gcs service fails against the bare emulator).
/// OpenDAL needs `allow_anonymous`, `disable_vm_metadata` and `disable_config_load`.
pub struct GcsEmulator {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub addr: SocketAddr,
    /// How long the server took to answer its first request.
    pub startup: Duration,
    process: ServerProcess,
}

impl GcsEmulator {
    /// The emulator with the [`GCS_COMPAT`] fixes.
    pub fn start() -> GcsEmulator {
        GcsEmulator::start_inner(true)
    }

    /// The emulator as released, without [`GCS_COMPAT`]: OpenDAL's writes, stats and
    /// listings fail against it.
    pub fn start_unpatched() -> GcsEmulator {
        GcsEmulator::start_inner(false)
    }

    fn start_inner(compat: bool) -> GcsEmulator {
        let process = ServerProcess::start(Spec {
            name: "gcp-storage-emulator",
            program: Program::Python {
                modules: &["gcp_storage_emulator"],
                module: "gcp_storage_emulator",
                prelude: if compat { GCS_COMPAT } else { "" },
            },
            args: &|port, _dir| {
                vec![
                    "start".into(),
                    "--host".into(),
                    "127.0.0.1".into(),
                    "--port".into(),
                    port.to_string(),
                    "--in-memory".into(),
                ]
            },
            env: &[],
            server_header: "BaseHTTP",
        });
        GcsEmulator {
            endpoint: format!("http://{}", process.addr),
            addr: process.addr,
            startup: process.startup,
            process,
        }
    }

    /// Where the server's output goes.
    pub fn log_path(&self) -> &Path {
        &self.process.log
    }

    /// Creates a bucket; panics unless the emulator says 200.
    pub fn create_bucket(&self, name: &str) {
        let body = serde_json::json!({ "name": name }).to_string();
        let resp = http(
            self.addr,
            "POST",
            "/storage/v1/b?project=test",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        assert_eq!(
            resp.status,
            200,
            "GCS emulator: create bucket {name}: {}",
            resp.text()
        );
    }

    /// The stored bytes of an object, or None if it does not exist.
    pub fn get_object(&self, bucket: &str, name: &str) -> Option<Vec<u8>> {
        let path = format!("/storage/v1/b/{bucket}/o/{}?alt=media", pct(name, false));
        let resp = http(self.addr, "GET", &path, &[], b"");
        match resp.status {
            200 => Some(resp.body),
            404 => None,
            s => panic!("GCS emulator: GET {bucket}/{name}: {s} {}", resp.text()),
        }
    }

    /// Stores an object directly (to plant or corrupt data behind the client's back).
    pub fn put_object(&self, bucket: &str, name: &str, bytes: &[u8]) {
        let path = format!(
            "/upload/storage/v1/b/{bucket}/o?uploadType=media&name={}",
            pct(name, false)
        );
        let headers = [("Content-Type", "application/octet-stream")];
        let resp = http(self.addr, "POST", &path, &headers, bytes);
        assert_eq!(
            resp.status,
            200,
            "GCS emulator: upload {bucket}/{name}: {}",
            resp.text()
        );
    }

    /// The object names in a bucket under `prefix` (the emulator does not page).
    pub fn list_names(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let path = format!("/storage/v1/b/{bucket}/o?prefix={}", pct(prefix, false));
        let resp = http(self.addr, "GET", &path, &[], b"");
        assert_eq!(
            resp.status,
            200,
            "GCS emulator: list {bucket}: {}",
            resp.text()
        );
        let v: serde_json::Value = serde_json::from_slice(&resp.body).expect("JSON listing");
        v["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Patches to gcp-storage-emulator 2026.7.19, run before it starts, without which OpenDAL
/// 0.59's gcs service does not work against it. Each makes the emulator do what GCS does.
pub const GCS_COMPAT: &str = r#"
# Fixes to gcp-storage-emulator so that OpenDAL's gcs service works against it; each one
# makes the emulator do what the real GCS does.
import re
from http import HTTPStatus
from gcp_storage_emulator import server as _srv
from gcp_storage_emulator.handlers import objects as _obj

# 1. Uploads without a Content-Type get "contentType": null, which OpenDAL cannot parse
#    (write, stat and list fail); GCS defaults to application/octet-stream.
_ct = _obj._content_type_from_request
_obj._content_type_from_request = (
    lambda request, default=None: _ct(request, default) or "application/octet-stream")

# 2. An empty upload body reads as None and crashes the handler (no answer at all).
def _empty_ok(f):
    def g(request, response, storage, *a, **k):
        if request.data is None:
            request._data = b""
        return f(request, response, storage, *a, **k)
    return g
_obj._media_upload = _empty_ok(_obj._media_upload)

# 3. Ranges: a suffix range (bytes=-N) returned the whole object with 200, and a range past
#    the end answered 206 with "Content-Range: bytes 100-21/22"; GCS serves the last N bytes
#    and answers 416.
_download = _obj.download
def _ranged_download(request, response, storage, *a, **k):
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", request.get_header("range") or "")
    if m:
        try:
            size = len(storage.get_file(request.params["bucket_name"], request.params["object_id"]))
        except Exception:
            return _download(request, response, storage, *a, **k)
        start, end = m.groups()
        if start == "":
            start, end = max(size - int(end or 0), 0), size - 1
            if size == 0 or end < start:
                start = size
        start = int(start)
        if start >= size:
            response.status = HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE
            response["Content-Range"] = "bytes */%d" % size
            return
        headers = request._request_handler.headers
        del headers["Range"]
        headers["Range"] = "bytes=%d-%s" % (start, end)
    return _download(request, response, storage, *a, **k)
_obj.download = _ranged_download

# Not fixed: the XML API's multipart upload (POST ?uploads, …) answers 501. OpenDAL's
# writer uses it for objects of more than one part, so the tests store backups on this
# emulator with `upload=segments`; multipart uploads are tested against S3 instead.

def _patched(handlers):
    return {m: (_ranged_download if f is _download else f) for m, f in handlers.items()}
_srv.HANDLERS = tuple((regex, _patched(h)) for regex, h in _srv.HANDLERS)
"#;

// ---------------------------------------------------------------------------------------
// Azure Blob Storage (Azurite)
// ---------------------------------------------------------------------------------------

/// The Azurite release `scripts/test.sh` installs with npm (keep the two the same): the last
/// one that runs on Node.js 20 (3.36 needs Node.js 21, 3.37 Node.js 22).
pub const AZURITE_PACKAGE: &str = "azurite@3.35.0";

/// Where `scripts/test.sh` installs it (`npm install --prefix`), so that nothing global
/// changes. `COFFER_TEST_AZURITE` names another `azurite-blob` script.
pub const AZURITE_PREFIX: &str = "/var/tmp/coffer-test-tools/azurite";

/// Azurite's one storage account.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";

/// Its key: public, the same in every Azurite (Microsoft documents it).
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The REST API version the helpers use (`x-ms-version`, and the SAS's `sv`): the one
/// OpenDAL 0.59's azblob service sends.
pub const AZURE_API_VERSION: &str = "2022-11-02";

/// Azurite's Blob service (the Azure Blob Storage REST API) at `endpoint`, in memory, with
/// its one account [`AZURITE_ACCOUNT`] and key [`AZURITE_KEY`]. Only the blob service runs
/// (`azurite-blob`, no queue or table service), without telemetry, in strict mode (no
/// `--loose`, no `--skipApiVersionCheck`: OpenDAL needs neither).
///
/// OpenDAL's azblob service works against it as released: `endpoint` is this `endpoint`
/// (the account is the first path segment), with `account_name` and `account_key` (Shared
/// Key) or `sas_token`, plus `container` and `root`. Create the container first. For the
/// coffer command: `azblob://CONTAINER/FOLDER?endpoint=ENDPOINT` with `AZURE_STORAGE_ACCOUNT`
/// and `AZURE_STORAGE_KEY` (or `AZURE_STORAGE_SAS_TOKEN`) in its environment.
///
/// Azurite refuses anonymous requests (403) to anything but public containers, so the
/// helpers here authenticate with `sas_token`: an account SAS for the blob service (all
/// resource types, permissions `racwdl`, expiring in 2100) signed once, at start, with the
/// account key. That is one HMAC-SHA256 over a fixed string, where Shared Key would sign
/// every request over its canonicalized headers.
pub struct AzuriteServer {
    /// `http://127.0.0.1:PORT/devstoreaccount1`
    pub endpoint: String,
    pub addr: SocketAddr,
    /// [`AZURITE_ACCOUNT`]
    pub account_name: String,
    /// [`AZURITE_KEY`] (base64)
    pub account_key: String,
    /// An account SAS as a query string without `?` (`sv=…&sig=…`), accepted for every
    /// blob request of the account; what the helpers send.
    pub sas_token: String,
    /// How long the server took to answer its first request.
    pub startup: Duration,
    process: ServerProcess,
}

impl AzuriteServer {
    pub fn start() -> AzuriteServer {
        let script = azurite_blob();
        let process = ServerProcess::start(Spec {
            name: "azurite",
            program: Program::Node { script: &script },
            args: &|port, _dir| {
                // In memory (then --location is refused; the working directory is the
                // temporary directory); no --silent: the log shows each request.
                vec![
                    "--blobHost".into(),
                    "127.0.0.1".into(),
                    "--blobPort".into(),
                    port.to_string(),
                    "--inMemoryPersistence".into(),
                    "--disableTelemetry".into(),
                ]
            },
            env: &[],
            server_header: "Azurite-Blob",
        });
        AzuriteServer {
            endpoint: format!("http://{}/{AZURITE_ACCOUNT}", process.addr),
            addr: process.addr,
            account_name: AZURITE_ACCOUNT.into(),
            account_key: AZURITE_KEY.into(),
            sas_token: account_sas(AZURITE_ACCOUNT, AZURITE_KEY),
            startup: process.startup,
            process,
        }
    }

    /// Where the server's output goes.
    pub fn log_path(&self) -> &Path {
        &self.process.log
    }

    /// Creates a (private) container; panics unless Azurite says 201. Names are 3 to 63
    /// lowercase letters, digits and dashes.
    pub fn create_container(&self, name: &str) {
        let resp = self.request("PUT", &format!("/{name}?restype=container"), &[], b"");
        assert_eq!(
            resp.status,
            201,
            "Azurite: create container {name}: {}",
            resp.text()
        );
    }

    /// The stored bytes of a blob, or None if it does not exist.
    pub fn get_blob(&self, container: &str, name: &str) -> Option<Vec<u8>> {
        let resp = self.request("GET", &blob_path(container, name), &[], b"");
        match resp.status {
            200 => Some(resp.body),
            404 => None,
            s => panic!("Azurite: GET {container}/{name}: {s} {}", resp.text()),
        }
    }

    /// Stores a block blob directly (to plant or corrupt data behind the client's back).
    pub fn put_blob(&self, container: &str, name: &str, bytes: &[u8]) {
        let headers = [
            ("x-ms-blob-type", "BlockBlob"),
            ("Content-Type", "application/octet-stream"),
        ];
        let resp = self.request("PUT", &blob_path(container, name), &headers, bytes);
        assert_eq!(
            resp.status,
            201,
            "Azurite: PUT {container}/{name}: {}",
            resp.text()
        );
    }

    /// Deletes a blob (no error if it is missing).
    pub fn delete_blob(&self, container: &str, name: &str) {
        let resp = self.request("DELETE", &blob_path(container, name), &[], b"");
        assert!(
            resp.status == 202 || resp.status == 404,
            "Azurite: DELETE {container}/{name}: {} {}",
            resp.status,
            resp.text()
        );
    }

    /// The names of the (committed) blobs in a container under `prefix`, in order (all
    /// pages).
    pub fn list_blobs(&self, container: &str, prefix: &str) -> Vec<String> {
        let mut names = Vec::new();
        let mut marker = String::new();
        loop {
            let mut path = format!(
                "/{container}?restype=container&comp=list&prefix={}",
                pct(prefix, false)
            );
            if !marker.is_empty() {
                path.push_str(&format!("&marker={}", pct(&marker, false)));
            }
            let resp = self.request("GET", &path, &[], b"");
            assert_eq!(
                resp.status,
                200,
                "Azurite: list {container}: {}",
                resp.text()
            );
            let xml = resp.text();
            // Without a delimiter, <Name> only appears in <Blob> (the container's name is
            // an attribute); the last page has an empty <NextMarker/>.
            names.extend(xml_values(&xml, "Name"));
            marker = xml_values(&xml, "NextMarker").pop().unwrap_or_default();
            if marker.is_empty() {
                return names;
            }
        }
    }

    /// A raw request with `x-ms-version` and [`AzuriteServer::sas_token`] added. `path` is
    /// under the account (`/container/blob?query`), already encoded.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        let sep = if path.contains('?') { '&' } else { '?' };
        let path = format!("/{}{path}{sep}{}", self.account_name, self.sas_token);
        let mut all = vec![("x-ms-version", AZURE_API_VERSION)];
        all.extend_from_slice(headers);
        http(self.addr, method, &path, &all, body)
    }
}

/// The `azurite-blob` script: `COFFER_TEST_AZURITE`, else the one under [`AZURITE_PREFIX`].
fn azurite_blob() -> PathBuf {
    std::env::var_os("COFFER_TEST_AZURITE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(AZURITE_PREFIX).join("node_modules/.bin/azurite-blob"))
}

fn blob_path(container: &str, name: &str) -> String {
    format!("/{container}/{}", pct(name, true))
}

/// An account SAS (a query string) for the blob service: all resource types, permissions
/// read, add, create, write, delete and list, no start time, expiring in 2100, any
/// protocol. Since version 2020-12-06 the signature is the base64 HMAC-SHA256, keyed with
/// the decoded account key, of `account \n permissions \n services \n resource types \n
/// start \n expiry \n IP range \n protocol \n version \n encryption scope \n`.
fn account_sas(account: &str, key_base64: &str) -> String {
    use hmac::{Hmac, Mac};
    let key = base64_decode(key_base64).expect("the account key is base64");
    let (permissions, services, types) = ("racwdl", "b", "sco");
    let expiry = "2100-01-01T00:00:00Z";
    let version = AZURE_API_VERSION;
    let to_sign =
        format!("{account}\n{permissions}\n{services}\n{types}\n\n{expiry}\n\n\n{version}\n\n");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("HMAC takes any key");
    mac.update(to_sign.as_bytes());
    let signature = base64(&mac.finalize().into_bytes());
    format!(
        "sv={version}&ss={services}&srt={types}&sp={permissions}&se={}&sig={}",
        pct(expiry, false),
        pct(&signature, false)
    )
}

// ---------------------------------------------------------------------------------------
// The server processes
// ---------------------------------------------------------------------------------------

struct Spec<'a> {
    /// For messages.
    name: &'a str,
    program: Program<'a>,
    /// Command-line arguments for a port; may write files into the temporary directory.
    args: &'a dyn Fn(u16, &Path) -> Vec<String>,
    env: &'a [(&'a str, &'a str)],
    /// A text in the `Server` header of the first answer, so that another program that
    /// happens to listen on the port is not taken for this one.
    server_header: &'a str,
}

/// What runs a server, and what its interpreter needs.
enum Program<'a> {
    /// A Python module run by [`LAUNCHER`].
    Python {
        /// Modules that must import, else "not installed".
        modules: &'a [&'a str],
        /// Run as `__main__`.
        module: &'a str,
        /// Python code run first (patches to the server).
        prelude: &'a str,
    },
    /// A Node.js script run by [`NODE_LAUNCHER`]; "not installed" when it does not exist.
    Node { script: &'a Path },
}

impl Program<'_> {
    /// The command (without the server's arguments) and how it reads in messages.
    fn command(&self) -> (Command, String) {
        match self {
            Program::Python {
                modules,
                module,
                prelude,
            } => {
                let mut cmd = Command::new(python());
                cmd.arg("-c")
                    .arg(LAUNCHER)
                    .arg(modules.join(","))
                    .arg(module)
                    .arg(prelude)
                    .env("PYTHONUNBUFFERED", "1")
                    .env("PYTHONDONTWRITEBYTECODE", "1");
                (cmd, format!("{} -m {module}", python()))
            }
            Program::Node { script } => {
                let mut cmd = Command::new(node());
                cmd.arg("-e").arg(NODE_LAUNCHER).arg("--").arg(script);
                // Azurite reads these: other accounts, a SQL database for its metadata.
                cmd.env_remove("AZURITE_ACCOUNTS").env_remove("AZURITE_DB");
                (cmd, format!("{} {}", node(), script.display()))
            }
        }
    }

    /// The interpreter, for messages.
    fn interpreter(&self) -> String {
        match self {
            Program::Python { .. } => python(),
            Program::Node { .. } => node(),
        }
    }

    /// How to install the interpreter, for messages.
    fn runtime(&self) -> &'static str {
        match self {
            Program::Python { .. } => "Python 3",
            Program::Node { .. } => "Node.js",
        }
    }

    /// How to install the server, for messages.
    fn install_hint(&self) -> String {
        match self {
            Program::Python { .. } => format!(
                "run scripts/test.sh, which installs the test servers (pip install {PIP_PACKAGES})"
            ),
            Program::Node { .. } => format!(
                "run scripts/test.sh, which installs it (npm install --prefix {AZURITE_PREFIX} \
                 {AZURITE_PACKAGE}), or set COFFER_TEST_AZURITE to an azurite-blob script"
            ),
        }
    }
}

struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    /// Deleted with the handle (taken out when a failed start keeps it).
    dir: Option<TempDir>,
    /// The directory's path.
    path: PathBuf,
    log: PathBuf,
    startup: Duration,
}

/// The Python interpreter: `COFFER_TEST_PYTHON`, else `python3` from PATH.
fn python() -> String {
    std::env::var("COFFER_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// The Node.js interpreter: `COFFER_TEST_NODE`, else `node` from PATH.
fn node() -> String {
    std::env::var("COFFER_TEST_NODE").unwrap_or_else(|_| "node".into())
}

impl ServerProcess {
    fn start(spec: Spec) -> ServerProcess {
        const ATTEMPTS: u32 = 3;
        let mut attempt = 1;
        loop {
            match ServerProcess::try_start(&spec) {
                Ok(p) => return p,
                // Another program took the port between our probe and the server's bind.
                Err(failure) if failure.port_taken && attempt < ATTEMPTS => attempt += 1,
                Err(failure) => {
                    // Keep the directory, so that the log named in the message stays.
                    if let Some(dir) = failure.dir {
                        let _ = dir.keep();
                    }
                    panic!("{}", failure.message)
                }
            }
        }
    }

    fn try_start(spec: &Spec) -> Result<ServerProcess, StartFailure> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("coffer-{}-", spec.name))
            .tempdir()
            .expect("create a temporary directory");
        let port = free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = dir.path().join("server.log");
        let out = File::create(&log).expect("create the server log");
        let err = out.try_clone().expect("clone the log handle");
        let args = (spec.args)(port, dir.path());

        if let Program::Node { script } = spec.program {
            if !script.exists() {
                return Err(StartFailure {
                    port_taken: false,
                    dir: None,
                    message: format!(
                        "{} is not installed ({} does not exist): {}",
                        spec.name,
                        script.display(),
                        spec.program.install_hint()
                    ),
                });
            }
        }
        let (mut cmd, program) = spec.program.command();
        cmd.args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            // Its own process group, so that the whole group can be killed.
            .process_group(0);
        for (k, v) in spec.env {
            cmd.env(k, v);
        }
        let command_line = format!("{program} {}", args.join(" "));
        let started = Instant::now();
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return Err(StartFailure {
                    port_taken: false,
                    dir: None,
                    message: format!(
                        "{}: cannot run {}: {e}; install {} and {}",
                        spec.name,
                        spec.program.interpreter(),
                        spec.program.runtime(),
                        spec.program.install_hint()
                    ),
                });
            }
        };
        let mut process = ServerProcess {
            child,
            addr,
            path: dir.path().to_path_buf(),
            dir: Some(dir),
            log,
            startup: Duration::ZERO,
        };

        let deadline = started + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = process.child.try_wait().expect("poll the server") {
                let log_text = read_log(&process.log);
                if status.code() == Some(MISSING_MODULE) {
                    return Err(StartFailure {
                        port_taken: false,
                        dir: None,
                        message: format!(
                            "{} is not installed: {}\n{}",
                            spec.name,
                            spec.program.install_hint(),
                            log_text.trim()
                        ),
                    });
                }
                let port_taken = log_text.contains("Address already in use")
                    || log_text.contains("address already in use");
                return Err(process.failure(
                    spec,
                    &command_line,
                    &format!("exited with {status} before answering"),
                    port_taken,
                ));
            }
            if let Some(server) = probe(addr) {
                if server.contains(spec.server_header) {
                    process.startup = started.elapsed();
                    return Ok(process);
                }
                // Someone else answers on this port: ours cannot bind it.
                return Err(process.failure(
                    spec,
                    &command_line,
                    &format!("port {port} is answered by another server ({server:?})"),
                    true,
                ));
            }
            if Instant::now() > deadline {
                return Err(process.failure(
                    spec,
                    &command_line,
                    &format!("did not answer within {STARTUP_TIMEOUT:?}"),
                    false,
                ));
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    /// Stops the server and describes the failure; the directory goes with the failure.
    fn failure(
        mut self,
        spec: &Spec,
        command_line: &str,
        what: &str,
        port_taken: bool,
    ) -> StartFailure {
        self.stop();
        let log_text = read_log(&self.log);
        let message = format!(
            "{} on {}: {what}\ncommand: {command_line}\nlog ({}):\n{}",
            spec.name,
            self.addr,
            self.log.display(),
            tail(&log_text, 6000)
        );
        StartFailure {
            port_taken,
            dir: self.dir.take(),
            message,
        }
    }

    fn stop(&mut self) {
        let pid = self.child.id() as i32;
        // SAFETY: a plain kill(2) of the process group the child leads (created with
        // process_group(0) above); no memory is involved.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

struct StartFailure {
    port_taken: bool,
    /// The server's temporary directory, with its log.
    dir: Option<TempDir>,
    message: String,
}

/// A free loopback port, never the same twice in this test process.
fn free_port() -> u16 {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        if given.insert(port) {
            return port;
        }
    }
}

/// The `Server` header of an answer to `GET /`, or None if nothing answers yet.
fn probe(addr: SocketAddr) -> Option<String> {
    let resp = try_http(
        addr,
        "GET",
        "/",
        &[],
        b"",
        Duration::from_millis(500),
        Duration::from_secs(5),
    )
    .ok()?;
    Some(resp.header("server").unwrap_or("").to_string())
}

fn read_log(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

fn random_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut x = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut out = String::new();
    for _ in 0..2 {
        // splitmix64
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.push_str(&format!("{:016x}", z ^ (z >> 31)));
    }
    out
}

// ---------------------------------------------------------------------------------------
// A tiny HTTP/1.1 client
// ---------------------------------------------------------------------------------------

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// In order; names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header of that name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request on a fresh connection (`Connection: close`); panics on network errors.
/// `path` is sent as is (already percent-encoded, with any query). `Host` and
/// `Content-Length` are added.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    try_http(
        addr,
        method,
        path,
        headers,
        body,
        Duration::from_secs(5),
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("HTTP {method} http://{addr}{path}: {e}"))
}

fn try_http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    connect_timeout: Duration,
    io_timeout: Duration,
) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect_timeout(&addr, connect_timeout)?;
    stream.set_read_timeout(Some(io_timeout))?;
    stream.set_write_timeout(Some(io_timeout))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw, method == "HEAD")
}

fn parse_response(raw: &[u8], head_only: bool) -> std::io::Result<HttpResponse> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no complete response head"))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .filter(|_| status_line.starts_with("HTTP/"))
        .ok_or_else(|| bad("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut resp = HttpResponse {
        status,
        headers,
        body: Vec::new(),
    };
    let rest = &raw[end + 4..];
    if head_only {
        return Ok(resp);
    }
    resp.body = if resp
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        dechunk(rest).ok_or_else(|| bad("bad chunked body"))?
    } else if let Some(len) = resp.header("content-length").and_then(|v| v.parse().ok()) {
        if rest.len() < len {
            return Err(bad("body shorter than Content-Length"));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(resp)
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// Percent-encodes all but unreserved characters (and `/` when `keep_slash`).
pub fn pct(text: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The texts of all `<tag>…</tag>` elements (no namespaces, no nesting, entities decoded).
pub fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(
            after[..j]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
        rest = &after[j + close.len()..];
    }
    out
}

fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional); None on any other character.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = ((acc << 6) | u32::from(v)) & 0xffff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}
