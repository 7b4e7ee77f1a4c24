//! Human and `--json` output, and progress bars on a terminal.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use coffer_client::{ClientError, Progress, Silent};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::exit;

pub struct Output {
    pub json: bool,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Output { json }
    }

    /// A line for people; suppressed under `--json`.
    pub fn say(&self, line: impl AsRef<str>) {
        if !self.json {
            println!("{}", line.as_ref());
        }
    }

    /// A warning for people, on standard error; under `--json` the result document carries
    /// it too.
    pub fn warn(&self, line: impl AsRef<str>) {
        eprintln!("warning: {}", line.as_ref());
    }

    /// The result document under `--json`.
    pub fn json(&self, value: Value) {
        if self.json {
            println!("{value}");
        }
    }

    /// Reports an error and returns the exit code.
    pub fn error(&self, err: &anyhow::Error) -> i32 {
        let (code, class) = exit::classify(err);
        if err.is::<exit::SourcesChanged>() {
            // Not a failure: the command printed its result and warnings already.
            return code;
        }
        let message = message(err);
        let retryable = err
            .downcast_ref::<ClientError>()
            .is_some_and(ClientError::is_retryable);
        if self.json {
            println!(
                "{}",
                json!({"ok": false, "error": {"class": class, "code": code, "message": message, "retryable": retryable}})
            );
        } else {
            eprintln!("error: {message}");
            if retryable {
                eprintln!("(this may be temporary; trying again can help)");
            }
        }
        code
    }

    /// Progress bars when standard error is a terminal and output is for people.
    pub fn progress(&self) -> Arc<dyn Progress> {
        if !self.json && std::io::stderr().is_terminal() {
            Arc::new(Bars(Mutex::new(None)))
        } else {
            Arc::new(Silent)
        }
    }
}

struct Bars(Mutex<Option<ProgressBar>>);

impl Progress for Bars {
    fn start(&self, label: &str, total: Option<u64>) {
        let bar = match total {
            Some(t) => ProgressBar::new(t),
            None => ProgressBar::no_length(),
        };
        let style = ProgressStyle::with_template(
            "{msg:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(label.to_string());
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(bar);
        }
    }

    fn advance(&self, bytes: u64) {
        if let Ok(slot) = self.0.lock() {
            if let Some(bar) = slot.as_ref() {
                bar.inc(bytes);
            }
        }
    }

    fn finish(&self) {
        if let Ok(mut slot) = self.0.lock() {
            if let Some(bar) = slot.take() {
                bar.finish_and_clear();
            }
        }
    }
}

/// The error and its causes, each cause once: library errors often already quote their
/// source in their own message.
fn message(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}

/// Bytes for people: 1.5 MiB.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
