//! Another local user, played by a copy of the test binary running as `nobody`.
//!
//! A test calls [`Attacker::start`] with a plan; the copy, started under
//! `setpriv --reuid=65534`, runs the test `attacker_body` of the same binary, which calls
//! [`run_if_attacker`] and carries the plan out until it is killed. The binary is copied
//! into the work area first, so that `nobody` can run it wherever the build lives.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PLAN: &str = "COFFER_TEST_ATTACK";
const ARGS: &str = "COFFER_TEST_ATTACK_ARGS";
pub const NOBODY: u32 = 65534;
/// Only a guard against a hung attacker start; never a timing assertion.
const START_GUARD: Duration = Duration::from_secs(60);

/// What the attacker does until it is stopped.
pub enum Plan<'a> {
    /// Watches `parent` for restore staging folders and swaps each one for a symlink to
    /// `loot`, moving the real folder aside.
    SwapStaging { parent: &'a Path, loot: &'a Path },
    /// Plants `count` entries named like stale staging folders of `target` in its parent,
    /// and keeps exchanging each between a folder of its own and a symlink to `outside`.
    FlipStale {
        target: &'a Path,
        outside: &'a Path,
        count: usize,
    },
}

/// The running attacker; killed on drop.
pub struct Attacker {
    child: Child,
    pub status: PathBuf,
}

impl Attacker {
    /// Starts the attack as user nobody. `None`, with a message, when this is not root or
    /// setpriv cannot run.
    pub fn start(work: &Path, plan: Plan<'_>) -> Option<Attacker> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED: playing another user needs root");
            return None;
        }
        if !super::have_tool("setpriv") {
            eprintln!("SKIPPED: setpriv is not installed");
            return None;
        }
        let status = work.join("attacker-status");
        fs::create_dir_all(&status).unwrap();
        chown(&status, NOBODY);
        let exe = work.join("attacker-bin");
        if !exe.exists() {
            fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
            fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let (name, args): (&str, Vec<&Path>) = match &plan {
            Plan::SwapStaging { parent, loot } => ("swap-staging", vec![parent, loot]),
            Plan::FlipStale {
                target, outside, ..
            } => ("flip-stale", vec![target, outside]),
        };
        let mut args: Vec<String> = args.iter().map(|p| p.display().to_string()).collect();
        if let Plan::FlipStale { count, .. } = plan {
            args.push(count.to_string());
        }
        let stderr = work.join("attacker-stderr");
        let ready = status.join("ready");
        // A copy just written may be briefly busy for exec (ETXTBSY) while another thread of
        // this test process forks: try again then.
        for _ in 0..5 {
            let mut child = Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&exe)
                .args([
                    "attacker_body",
                    "--exact",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(PLAN, name)
                .env(ARGS, args.join("\n"))
                .env("COFFER_TEST_ATTACK_STATUS", &status)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(fs::File::create(&stderr).unwrap())
                .spawn()
                .expect("cannot start setpriv");
            let started = Instant::now();
            while !ready.exists() {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if started.elapsed() > START_GUARD {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("the attacker hung");
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            if ready.exists() {
                return Some(Attacker { child, status });
            }
            let _ = child.wait();
            let said = fs::read_to_string(&stderr).unwrap_or_default();
            assert!(
                said.contains("Text file busy"),
                "the attacker did not start: {said}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the attacker could not be started");
    }

    /// How many times the attacker struck so far.
    pub fn strikes(&self) -> u64 {
        fs::read_dir(&self.status)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().starts_with("strike-"))
                    .count() as u64
            })
            .unwrap_or(0)
    }
}

impl Drop for Attacker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn chown(path: &Path, uid: u32) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    let rc = unsafe { libc::lchown(c.as_ptr(), uid, uid) };
    assert_eq!(rc, 0, "chown {}", path.display());
}

/// The attacker's side: carries out the plan named in the environment, if any.
pub fn run_if_attacker() {
    let Ok(plan) = std::env::var(PLAN) else {
        return;
    };
    let args: Vec<PathBuf> = std::env::var(ARGS)
        .unwrap_or_default()
        .lines()
        .map(PathBuf::from)
        .collect();
    let status = PathBuf::from(std::env::var("COFFER_TEST_ATTACK_STATUS").unwrap());
    match plan.as_str() {
        "swap-staging" => swap_staging(&args[0], &args[1], &status),
        "flip-stale" => {
            let count = args[2].to_string_lossy().parse().unwrap();
            flip_stale(&args[0], &args[1], count, &status)
        }
        other => panic!("unknown attack {other}"),
    }
}

fn strike(status: &Path, n: u64) {
    let _ = fs::write(status.join(format!("strike-{n}")), b"");
}

fn swap_staging(parent: &Path, loot: &Path, status: &Path) -> ! {
    fs::write(status.join("ready"), b"").unwrap();
    let mut n = 0u64;
    loop {
        let Ok(rd) = fs::read_dir(parent) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name();
            let is_staging = name.to_string_lossy().contains(".coffer-restore-");
            if !is_staging || !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let path = e.path();
            if fs::rename(&path, parent.join(format!("taken-{n}"))).is_ok() {
                let _ = symlink(loot, &path);
                n += 1;
                strike(status, n);
            }
        }
    }
}

fn flip_stale(target: &Path, outside: &Path, count: usize, status: &Path) -> ! {
    let parent = target.parent().unwrap();
    let name = target.file_name().unwrap().to_string_lossy().into_owned();
    let c = |p: PathBuf| CString::new(p.as_os_str().as_bytes()).unwrap();
    let outside = c(outside.to_path_buf());
    for i in 0..count {
        let planted = c(parent.join(format!(".{name}.coffer-restore-{i:08x}")));
        let spare = c(parent.join(format!("spare-{i}")));
        let outside = outside.clone();
        // One thread per pair, so that each entry flips as fast as the kernel allows.
        std::thread::spawn(move || loop {
            // SAFETY: valid NUL-terminated paths.
            unsafe {
                let swapped = libc::renameat2(
                    libc::AT_FDCWD,
                    planted.as_ptr(),
                    libc::AT_FDCWD,
                    spare.as_ptr(),
                    libc::RENAME_EXCHANGE,
                ) == 0;
                if !swapped {
                    // The victim removed one side: a folder on one side, a symlink on
                    // the other.
                    let mut st: libc::stat = std::mem::zeroed();
                    let (missing, other) = if libc::lstat(planted.as_ptr(), &mut st) != 0 {
                        (&planted, &spare)
                    } else {
                        (&spare, &planted)
                    };
                    let other_is_dir = libc::lstat(other.as_ptr(), &mut st) == 0
                        && st.st_mode & libc::S_IFMT == libc::S_IFDIR;
                    if other_is_dir {
                        libc::symlink(outside.as_ptr(), missing.as_ptr());
                    } else {
                        libc::mkdir(missing.as_ptr(), 0o777);
                    }
                }
            }
        });
    }
    fs::write(status.join("ready"), b"").unwrap();
    loop {
        std::thread::park();
    }
}
