//! schemathesis (PyPI, pinned to [`VERSION`]; `scripts/test.sh` installs it) run against a
//! live server: it reads the OpenAPI document, generates valid and invalid requests from it,
//! and checks every answer against the document (status, content type, headers, schema) and
//! against HTTP itself (undocumented methods, ignored auth, valid input refused, invalid
//! input accepted).
//!
//! It runs as `python3 -m schemathesis.cli` (`COFFER_TEST_PYTHON` names another Python), in a
//! temporary working folder, with its configuration written there for the run. When it is
//! not installed the caller skips with a note, except on CI (`CI` set, as CI services do),
//! where a test that silently proves nothing would be worse than a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The version the runs are tuned for (checks and configuration keys change between releases).
pub const VERSION: &str = "4.32.5";
/// What `scripts/test.sh` installs (keep the two the same).
pub const PIP_PACKAGE: &str = "schemathesis==4.32.5";

/// The environment variable the run's `Authorization` header is read from.
const AUTHORIZATION_VAR: &str = "COFFER_TEST_AUTHORIZATION";

/// Only a guard against a hung run (the test fails instead of hanging); never a timing
/// assertion. The runs themselves are bounded by their example counts.
const HANG_GUARD: Duration = Duration::from_secs(240);

pub struct Schemathesis {
    python: String,
}

/// One run: which document, against which server, how.
pub struct Run<'a> {
    /// Shown in messages.
    pub name: &'a str,
    /// The document's location: a URL (the one the server serves) or a file.
    pub document: &'a str,
    pub base_url: &'a str,
    /// PEM certificates to trust: the server's own, self-signed.
    pub ca_bundle: &'a Path,
    /// The `Authorization` header for every request, if any.
    pub authorization: Option<&'a str>,
    /// The `schemathesis.toml` for this run.
    pub config: String,
    /// `examples,coverage,fuzzing,stateful`, or some of them.
    pub phases: &'a str,
    /// Test cases per operation and phase.
    pub max_examples: u32,
    /// Where the run keeps its files (configuration, reports).
    pub workdir: &'a Path,
    /// Also records every request and answer here, as a HAR file.
    pub har: Option<&'a Path>,
}

/// What a run printed, and whether it found anything.
pub struct Outcome {
    pub passed: bool,
    pub output: String,
    /// The command, for reproducing it by hand.
    pub command: String,
}

fn python() -> String {
    std::env::var("COFFER_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

impl Schemathesis {
    /// The pinned schemathesis. `None` (after a note on standard error) when it is missing
    /// or another version and `CI` is not set; with `CI` set, that is a test failure.
    pub fn find(test: &str) -> Option<Schemathesis> {
        let python = python();
        let version = Command::new(&python)
            .args(["-m", "schemathesis.cli", "--version"])
            .stdin(Stdio::null())
            .output();
        let found = match &version {
            Ok(out) if out.status.success() => {
                let text = String::from_utf8_lossy(&out.stdout);
                // "python -m schemathesis.cli, version 4.32.5"
                match text.trim().rsplit_once("version ") {
                    Some((_, v)) if v.trim() == VERSION => return Some(Schemathesis { python }),
                    Some((_, v)) => format!("schemathesis {} is installed", v.trim()),
                    None => format!("`{python} -m schemathesis.cli --version` said {text:?}"),
                }
            }
            Ok(_) => format!("schemathesis is not installed for {python}"),
            Err(e) => format!("cannot run {python}: {e}"),
        };
        let note = format!(
            "{test} needs schemathesis {VERSION}: {found}; run scripts/test.sh, which installs it \
             (pip install {PIP_PACKAGE})"
        );
        if on_ci() {
            panic!("{note} (CI is set, so this is a failure, not a skip)");
        }
        eprintln!("note: SKIPPED {note}");
        None
    }

    /// Runs schemathesis with every check; `passed` only when it exits 0: no failure, no
    /// error, and no warning the configuration makes fatal.
    pub fn run(&self, run: &Run) -> Outcome {
        let config = config_path(run);
        // The credential goes through the environment, not the command line, where every
        // local process could read it.
        let text = match run.authorization {
            Some(_) => format!(
                "headers = {{ Authorization = \"${{{AUTHORIZATION_VAR}}}\" }}\n{}",
                run.config
            ),
            None => run.config.clone(),
        };
        std::fs::write(&config, text).expect("write the schemathesis configuration");
        let mut args: Vec<String> = vec![
            "-m".into(),
            "schemathesis.cli".into(),
            "--no-color".into(),
            "--config-file".into(),
            config.display().to_string(),
            "run".into(),
            run.document.into(),
            "--url".into(),
            run.base_url.into(),
            "--checks".into(),
            "all".into(),
            "--phases".into(),
            run.phases.into(),
            "--max-examples".into(),
            run.max_examples.to_string(),
            "--continue-on-failure".into(),
            "--tls-verify".into(),
            run.ca_bundle.display().to_string(),
            "--request-timeout".into(),
            "30".into(),
            "--workers".into(),
            "2".into(),
            // Nothing kept between runs: each run stands alone.
            "--generation-database".into(),
            "none".into(),
        ];
        if let Some(har) = run.har {
            args.extend([
                "--report".into(),
                "har".into(),
                "--report-har-path".into(),
                har.display().to_string(),
            ]);
        }
        if let Some(seed) = std::env::var("COFFER_TEST_SCHEMATHESIS_SEED")
            .ok()
            .filter(|s| !s.is_empty())
        {
            args.extend(["--seed".into(), seed]);
        }
        let command = format!("{} {}", self.python, args.join(" "));
        let mut cmd = Command::new(&self.python);
        if let Some(value) = run.authorization {
            cmd.env(AUTHORIZATION_VAR, value);
        }
        let child = cmd
            .args(&args)
            .current_dir(run.workdir)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start schemathesis ({command}): {e}"));
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let output = match rx.recv_timeout(HANG_GUARD) {
            Ok(r) => r.expect("waiting for schemathesis"),
            Err(_) => {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                panic!(
                    "schemathesis run {} hung (killed after {HANG_GUARD:?})",
                    run.name
                );
            }
        };
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        let command = match run.authorization {
            Some(_) => format!("{AUTHORIZATION_VAR}='<authorization>' {command}"),
            None => command,
        };
        Outcome {
            passed: output.status.success(),
            output: text,
            command,
        }
    }
}

impl Outcome {
    /// Fails the test, showing the whole run, unless it passed.
    #[track_caller]
    pub fn assert_passed(&self, name: &str, config: &Path) {
        assert!(
            self.passed,
            "schemathesis found the server and docs/openapi.json disagree ({name}).\n\
             Reproduce with (the seed is printed at the end of the output; \
             COFFER_TEST_SCHEMATHESIS_SEED pins it):\n{}\nconfiguration: {}\n--- output:\n{}",
            self.command,
            config.display(),
            self.output
        );
    }
}

/// How many answers of a HAR file had `status`, by request path.
pub fn statuses_by_path(har: &Path, status: u16) -> std::collections::BTreeMap<String, usize> {
    let text = std::fs::read_to_string(har).expect("the HAR report");
    let har: serde_json::Value = serde_json::from_str(&text).expect("HAR is JSON");
    let mut counts = std::collections::BTreeMap::new();
    for entry in har["log"]["entries"].as_array().expect("HAR entries") {
        if entry["response"]["status"] == status {
            let url = entry["request"]["url"].as_str().expect("a URL");
            // https://host:port/path → /path
            let path = url.splitn(4, '/').nth(3).unwrap_or("");
            *counts.entry(format!("/{path}")).or_insert(0) += 1;
        }
    }
    counts
}

/// A `schemathesis.toml` string list.
pub fn toml_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// Where the run's configuration goes (for messages).
pub fn config_path(run: &Run) -> PathBuf {
    run.workdir.join(format!("{}.toml", run.name))
}
