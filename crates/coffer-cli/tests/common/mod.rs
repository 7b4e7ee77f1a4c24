//! Helpers for the CLI end-to-end tests: run the real `coffer` binary, build sample trees,
//! compare trees, and mount small file systems.
//!
//! Every test works in its own temporary directory with its own `--profile DIR`, so the
//! tests can run in parallel. Keys only ever travel through standard input.

#![allow(dead_code)]

pub mod coffer_server;
pub mod fault_proxy;
pub mod hostile_storage;
pub mod peak_memory;
pub mod servers;
mod trees;

#[allow(unused_imports)] // not every test binary compares trees
pub use trees::*;

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

/// The documented exit codes (`crates/coffer-cli/src/exit.rs`).
pub const OK: i32 = 0;
pub const USAGE: i32 = 2;
pub const WRONG_KEY: i32 = 3;
pub const INTEGRITY: i32 = 5;
pub const IO: i32 = 6;
pub const NOT_FOUND: i32 = 8;

/// Format constants (`docs/FORMAT.md`): the header, and one sealed full chunk.
pub const HEADER_LEN: u64 = 128;
pub const SEALED_CHUNK: u64 = 65536 + 16;

/// A text that appears in the sample tree and must never appear in stored bytes.
pub const MARKER: &str = "coffer-plaintext-marker-5b1e0c";

/// 2001-09-09T01:46:40Z: an old modification time, well before the test runs.
pub const OLD: i64 = 1_000_000_000;

/// Only a guard against a hung process (the suite fails instead of hanging); never a
/// timing assertion.
const HANG_GUARD: Duration = Duration::from_secs(300);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_coffer")
}

/// The outcome of one `coffer` run.
#[derive(Debug)]
pub struct Out {
    pub what: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Asserts the exit code, showing the whole run when it differs.
    #[track_caller]
    pub fn code(&self, want: i32) -> &Self {
        assert_eq!(
            self.code, want,
            "`{}` exited {} (wanted {want})\n--- stdout:\n{}\n--- stderr:\n{}",
            self.what, self.code, self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn ok(&self) -> &Self {
        self.code(OK)
    }

    /// Asserts that standard error contains `needle`, ignoring case.
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.to_lowercase().contains(&needle.to_lowercase()),
            "`{}`: stderr does not mention {needle:?}\n--- stderr:\n{}",
            self.what,
            self.stderr
        );
        self
    }

    /// Asserts that standard output contains `needle`, ignoring case.
    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.to_lowercase().contains(&needle.to_lowercase()),
            "`{}`: stdout does not mention {needle:?}\n--- stdout:\n{}",
            self.what,
            self.stdout
        );
        self
    }

    /// Standard output parsed as one JSON document.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "`{}`: stdout is not one JSON document ({e})\n--- stdout:\n{}\n--- stderr:\n{}",
                self.what, self.stdout, self.stderr
            )
        })
    }

    /// Asserts a failure under `--json`: `{"ok":false,"error":{"class":..,"code":..}}` on
    /// stdout, with a message, and the exit code equal to `code`.
    #[track_caller]
    pub fn json_error(&self, class: &str, code: i32) -> Value {
        self.code(code);
        let v = self.json();
        assert_eq!(v["ok"], Value::Bool(false), "{v}");
        assert_eq!(v["error"]["class"], class, "{v}");
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "an error needs a message: {v}"
        );
        v
    }
}

/// One `coffer` invocation under construction.
pub struct Call {
    args: Vec<OsString>,
    stdin: Option<Vec<u8>>,
    env: Vec<(OsString, OsString)>,
}

/// `coffer --profile PROFILE ...`
pub fn coffer(profile: &Path) -> Call {
    Call {
        args: vec!["--profile".into(), profile.into()],
        stdin: None,
        env: Vec::new(),
    }
}

impl Call {
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, it: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(it.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn json(self) -> Self {
        self.arg("--json")
    }

    /// Sets an environment variable for the run.
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.env.push((key.into(), value.as_ref().to_owned()));
        self
    }

    /// Feeds `input` on standard input (otherwise it is empty, like /dev/null).
    pub fn stdin(mut self, input: impl AsRef<[u8]>) -> Self {
        self.stdin = Some(input.as_ref().to_vec());
        self
    }

    fn command(&self) -> Command {
        let mut c = Command::new(bin());
        c.args(&self.args)
            .env_remove("COFFER_PROFILE")
            .env("NO_COLOR", "1")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    fn describe(&self) -> String {
        let mut s = String::from("coffer");
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }

    /// Starts the process with its output discarded (for tests that kill it).
    pub fn spawn_quiet(self) -> Child {
        self.command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start coffer")
    }

    /// Runs to completion and collects the exit code and output.
    pub fn run(self) -> Out {
        let what = self.describe();
        let mut child = self
            .command()
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start coffer");
        if let Some(data) = &self.stdin {
            let mut w = child.stdin.take().expect("stdin is piped");
            match w.write_all(data) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
                Err(e) => panic!("writing to coffer's stdin: {e}"),
            }
        }
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let output = match rx.recv_timeout(HANG_GUARD) {
            Ok(r) => r.expect("waiting for coffer"),
            Err(_) => {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                panic!("`{what}` hung (killed after {HANG_GUARD:?})");
            }
        };
        let code = output.status.code().unwrap_or_else(|| {
            panic!("`{what}` died from a signal: {:?}", output.status);
        });
        Out {
            what,
            code,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// A temporary work area with an enabled profile and a storage folder.
pub struct Env {
    pub tmp: TempDir,
    pub profile: PathBuf,
    pub storage: PathBuf,
    /// The 64-digit key as `enable --json` printed it.
    pub key: String,
    pub key_id: String,
}

impl Env {
    /// A new work area; `enable --key --storage` on its profile.
    pub fn enabled() -> Env {
        let tmp = tempfile::Builder::new()
            .prefix("coffer-cli-test-")
            .tempdir()
            .expect("tempdir");
        let profile = tmp.path().join("profile");
        let storage = tmp.path().join("storage");
        let v = coffer(&profile)
            .json()
            .args(["enable", "--key", "--storage"])
            .arg(&storage)
            .run()
            .ok()
            .json();
        let key = v["key"]
            .as_str()
            .expect("enable --json gives key")
            .to_string();
        let key_id = v["key_id"]
            .as_str()
            .expect("enable --json gives key_id")
            .to_string();
        Env {
            tmp,
            profile,
            storage,
            key,
            key_id,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// `coffer --profile <this profile> ...`
    pub fn coffer(&self) -> Call {
        coffer(&self.profile)
    }

    /// A profile directory that was never used: a brand-new device.
    pub fn fresh_profile(&self, name: &str) -> PathBuf {
        self.path(name)
    }

    /// Backs up `paths`, returning the new backup's id.
    #[track_caller]
    pub fn backup(&self, paths: &[&Path]) -> String {
        let v = self
            .coffer()
            .json()
            .arg("backup")
            .args(paths)
            .run()
            .ok()
            .json();
        assert_eq!(v["ok"], true, "{v}");
        v["backup"]["id"]
            .as_str()
            .expect("backup --json gives backup.id")
            .to_string()
    }

    /// The ids `list --json` shows, in its order.
    #[track_caller]
    pub fn list_ids(&self) -> Vec<String> {
        let v = self.coffer().json().arg("list").run().ok().json();
        v["backups"]
            .as_array()
            .expect("list --json gives backups")
            .iter()
            .map(|b| b["id"].as_str().expect("backup id").to_string())
            .collect()
    }

    /// The stored file of backup `id`.
    pub fn stored(&self, id: &str) -> PathBuf {
        self.storage.join("backups").join(format!("{id}.coffer"))
    }
}

/// Another valid key, unrelated to any backup.
pub fn other_key() -> String {
    coffer_format::BackupKey::generate()
        .expect("random key")
        .to_display()
        .to_string()
}

/// Whether `text` is a key as people see it: 16 groups of 4 lower-case hex digits.
pub fn is_key_display(text: &str) -> bool {
    let groups: Vec<&str> = text.split_whitespace().collect();
    groups.len() == 16
        && groups.iter().all(|g| {
            g.len() == 4
                && g.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

pub fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Random bytes from the operating system.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    coffer_format::key::fill_random(&mut v).expect("random bytes");
    v
}

/// Writes `len` random (incompressible) bytes to `path`, quickly.
pub fn write_random_file(path: &Path, len: u64) {
    let mut src = fs::File::open("/dev/urandom").expect("/dev/urandom");
    let mut dst = fs::File::create(path).expect("create a random file");
    let copied = io::copy(&mut io::Read::take(&mut src, len), &mut dst).expect("write random");
    assert_eq!(copied, len);
}

pub fn set_mtime(path: &Path, secs: i64) {
    filetime::set_file_mtime(path, filetime::FileTime::from_unix_time(secs, 0))
        .unwrap_or_else(|e| panic!("set mtime of {}: {e}", path.display()));
}

pub fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// A tmpfs mounted for one test, unmounted on drop (also when the test panics).
pub struct Mount {
    pub dir: PathBuf,
}

impl Mount {
    /// Mounts a tmpfs with `options` on `dir` (created if needed). `None`, with a message,
    /// when mounting is not possible here (not root, no mount namespace, ...).
    pub fn tmpfs(dir: &Path, options: &str) -> Option<Mount> {
        fs::create_dir_all(dir).unwrap();
        match Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .output()
        {
            Ok(o) if o.status.success() => Some(Mount { dir: dir.into() }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs ({options}) on {}: {}",
                    dir.display(),
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// Whether an external tool can be run.
pub fn have_tool(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts a `coffer --json …` server process and returns it with the JSON line it prints
/// once it listens.
pub fn spawn_server(args: &[&str], data: &Path) -> (std::process::Child, Value) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = Command::new(bin())
        .arg("--json")
        .args(args)
        .arg("--data")
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    (child, v)
}
