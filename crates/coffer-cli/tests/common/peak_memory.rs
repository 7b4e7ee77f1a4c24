//! Runs `coffer` and measures its peak resident memory: the kernel's high-water mark of
//! the process's own memory (`VmHWM` in `/proc/PID/status`), read every 2 ms while it runs.
//! A memory bound is then an assertion on a size, never on a time.
//!
//! Not `ru_maxrss` from `wait4`: `Command` spawns with `vfork` semantics, so the child
//! starts out in the test process's memory, and the kernel counts that memory's peak in
//! the child's `ru_maxrss` when it execs (a test holding 100 MB of hostile answers would
//! see every child "peak" at 100 MB). The high-water mark of the memory `coffer` itself
//! runs in only grows, so a reading misses at most what is allocated in the last 2 ms.

use std::io::{Read, Write};
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use super::{Call, Out, HANG_GUARD};

/// One measured run.
#[derive(Debug)]
pub struct Measured {
    pub out: Out,
    /// The largest resident set the process had, in KiB.
    pub peak_rss_kib: u64,
    /// Killed on passing the ceiling given (its exit code is then -9).
    pub killed_at_ceiling: bool,
}

impl Measured {
    /// Asserts a peak under `bound_kib`, showing the run when it is not.
    #[track_caller]
    pub fn assert_peak_under(&self, bound_kib: u64) -> &Self {
        assert!(
            self.peak_rss_kib > 0,
            "`{}`: no memory reading",
            self.out.what
        );
        assert!(
            !self.killed_at_ceiling && self.peak_rss_kib < bound_kib,
            "`{}` peaked at {} KiB of memory (bound {bound_kib} KiB{})\n--- stderr:\n{}",
            self.out.what,
            self.peak_rss_kib,
            if self.killed_at_ceiling {
                ", killed at the test's ceiling"
            } else {
                ""
            },
            self.out.stderr
        );
        self
    }
}

/// The peak resident set of `pid` so far, in KiB (0 once its memory is gone).
fn peak_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

impl Call {
    /// Runs to completion like [`Call::run`], and measures the peak memory. A process
    /// whose resident memory passes `ceiling_kib` is killed at once, so that an attack
    /// that works cannot take the test machine down with it.
    pub fn run_measured(self, ceiling_kib: u64) -> Measured {
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
        if let (Some(data), Some(mut w)) = (self.stdin.clone(), child.stdin.take()) {
            thread::spawn(move || {
                let _ = w.write_all(&data);
            });
        }
        let drain = |r: Option<Box<dyn Read + Send>>| {
            thread::spawn(move || {
                let mut s = Vec::new();
                if let Some(mut r) = r {
                    let _ = r.read_to_end(&mut s);
                }
                String::from_utf8_lossy(&s).into_owned()
            })
        };
        let stdout = drain(
            child
                .stdout
                .take()
                .map(|r| Box::new(r) as Box<dyn Read + Send>),
        );
        let stderr = drain(
            child
                .stderr
                .take()
                .map(|r| Box::new(r) as Box<dyn Read + Send>),
        );
        let pid = child.id();
        let started = Instant::now();
        let mut killed_at_ceiling = false;
        let mut status = 0;
        let mut peak = 0;
        loop {
            // Read before reaping: once reaped, the pid may be another process's.
            peak = peak.max(peak_kib(pid));
            // SAFETY: `pid` is our own child, not yet reaped; the pointer is valid.
            let r = unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) };
            if r == pid as i32 {
                break;
            }
            assert!(r == 0, "waitpid on coffer failed");
            let over = peak > ceiling_kib;
            if over || started.elapsed() > HANG_GUARD {
                // SAFETY: a signal to our own unreaped child.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                if over {
                    killed_at_ceiling = true;
                } else {
                    panic!("`{what}` hung (killed after {HANG_GUARD:?})");
                }
            }
            thread::sleep(Duration::from_millis(2));
        }
        // The std handle is left unwaited: waitpid reaped the process.
        drop(child);
        let code = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else if killed_at_ceiling {
            -9
        } else {
            panic!("`{what}` died from signal {}", libc::WTERMSIG(status));
        };
        Measured {
            out: Out {
                what,
                code,
                stdout: stdout.join().unwrap_or_default(),
                stderr: stderr.join().unwrap_or_default(),
            },
            peak_rss_kib: peak,
            killed_at_ceiling,
        }
    }
}
