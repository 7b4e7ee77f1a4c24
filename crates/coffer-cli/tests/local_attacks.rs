//! The client under attack from the same machine, through the real `coffer` binary: another
//! user who can write the profile folder, and files that change, shrink or are swapped while
//! a backup reads them.
//!
//! Tests that need a second user play it with `setpriv` as uid 65534 and skip, with a
//! message, when not run as root.

mod common;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const SOURCES_CHANGED: i32 = 12;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Runs `script` with `sh -c` as user nobody (uid and gid 65534, no groups).
fn as_nobody(dir: &Path, script: &str, vars: &[(&str, &str)]) -> std::process::Output {
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
            script,
        ])
        .current_dir(dir)
        .envs(vars.iter().copied())
        .output()
        .expect("cannot run setpriv")
}

#[test]
fn a_key_swapped_into_a_shared_profile_is_refused() {
    if !is_root() || !have_tool("setpriv") {
        eprintln!("SKIPPED: playing another local user needs root and setpriv");
        return;
    }
    let env = Env::enabled();
    let src = env.path("src");
    fs::create_dir(&src).unwrap();
    sample_tree(&src);
    // The setup the attack needs: a profile folder others may write, which they can reach.
    set_mode(env.tmp.path(), 0o755);
    set_mode(&env.profile, 0o777);

    // The other user replaces the key with one of their own.
    let theirs = other_key();
    let done = as_nobody(
        &env.profile,
        "rm -f key && printf '%s\\n' \"$K\" > key",
        &[("K", &theirs)],
    );
    assert!(
        done.status.success(),
        "the attacker's swap failed: {done:?}"
    );

    // The victim's next backup must not be made with that key.
    let profile = env.profile.canonicalize().unwrap();
    env.coffer()
        .arg("backup")
        .arg(&src)
        .run()
        .code(USAGE)
        .stderr_has("can be written by other users")
        .stderr_has(&format!("chmod go-w {}", profile.display()));
    assert!(
        !env.storage.join("backups").exists()
            || fs::read_dir(env.storage.join("backups")).unwrap().count() == 0,
        "a backup was made with the attacker's key"
    );

    // Following the advice, the folder is fixed; the planted key is still refused.
    set_mode(&env.profile, 0o700);
    env.coffer()
        .arg("backup")
        .arg(&src)
        .run()
        .code(USAGE)
        .stderr_has("belongs to uid 65534")
        .stderr_has(&format!("rm {}", profile.join("key").display()));
    // Every command that reads the profile refuses it, with the usage exit code.
    env.coffer()
        .json()
        .arg("status")
        .run()
        .json_error("usage", USAGE);

    // Once the planted key is gone, the profile is set up again and backs up as before.
    fs::remove_file(env.profile.join("key")).unwrap();
    env.coffer().args(["enable", "--key"]).run().ok();
    env.backup(&[&src]);
}

#[test]
fn a_group_writable_folder_above_the_profile_is_refused() {
    let env = Env::enabled();
    set_mode(env.tmp.path(), 0o770);
    let above = env.tmp.path().canonicalize().unwrap();
    env.coffer()
        .arg("status")
        .run()
        .code(USAGE)
        .stderr_has(&format!("chmod go-w {}", above.display()));
    set_mode(env.tmp.path(), 0o700);
    env.coffer().arg("status").run().ok();
}

/// Where `pid` has `file` open: the read offset of the first descriptor on it.
fn read_offset(pid: u32, file: &Path) -> Option<u64> {
    for fd in fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten() {
        if fs::read_link(fd.path()).ok().as_deref() == Some(file) {
            let info =
                fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_str()?))
                    .ok()?;
            return info
                .lines()
                .find_map(|l| l.strip_prefix("pos:"))
                .and_then(|v| v.trim().parse().ok());
        }
    }
    None
}

/// Whether every thread of `pid` is stopped (or has ended: a zombie stops nothing more).
fn all_stopped(pid: u32) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    tasks.flatten().all(|t| {
        fs::read_to_string(t.path().join("stat")).map_or(true, |stat| {
            // The state follows the command name in parentheses.
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with(['T', 't', 'Z', 'X']))
        })
    })
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill has no memory effects; the pid is our own child, not yet reaped.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Runs `coffer --json backup SRC` and, once the backup is inside `file` (some bytes
/// read, not all), freezes the process, calls `meddle`, and lets it go on. The process is
/// frozen while `meddle` runs, so what its next read sees does not depend on timing.
/// `None` if the backup finished before it could be caught inside the file.
fn backup_meddling(env: &Env, src: &Path, file: &Path, meddle: impl FnOnce()) -> Option<Out> {
    backup_meddling_with(env, &["--json"], src, file, meddle)
}

fn backup_meddling_with(
    env: &Env,
    flags: &[&str],
    src: &Path,
    file: &Path,
    meddle: impl FnOnce(),
) -> Option<Out> {
    let size = fs::metadata(file).unwrap().len();
    let mut child = Command::new(bin())
        .arg("--profile")
        .arg(&env.profile)
        .args(flags)
        .arg("backup")
        .arg(src)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start coffer");
    let pid = child.id();
    let mut meddle = Some(meddle);
    while child.try_wait().unwrap().is_none() {
        signal(pid, libc::SIGSTOP);
        while !all_stopped(pid) {
            std::thread::yield_now();
        }
        let inside = read_offset(pid, file).is_some_and(|pos| pos > 0 && pos < size);
        if inside {
            (meddle.take().expect("meddled once"))();
        }
        signal(pid, libc::SIGCONT);
        if inside {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    if meddle.is_some() {
        eprintln!("the backup finished before it was caught inside the file; trying again");
        return None;
    }
    Some(Out {
        what: format!("coffer {} backup {}", flags.join(" "), src.display()),
        code: status.code().expect("coffer died from a signal"),
        stdout: out,
        stderr: err,
    })
}

/// A source folder holding one large file of random bytes: (folder, file).
fn big_source(env: &Env, attempt: u32) -> (PathBuf, PathBuf) {
    let src = env.path(&format!("src{attempt}"));
    fs::create_dir(&src).unwrap();
    let file = src.join("chat.db");
    write_random_file(&file, (24 << 20) << attempt);
    (src.canonicalize().unwrap(), file.canonicalize().unwrap())
}

/// Retries `run` with ever larger files until the backup is caught inside the file.
fn caught(env: &Env, mut run: impl FnMut(&Path, &Path) -> Option<Out>) -> (PathBuf, PathBuf, Out) {
    for attempt in 0..4 {
        let (src, file) = big_source(env, attempt);
        if let Some(out) = run(&src, &file) {
            return (src, file, out);
        }
    }
    panic!("never caught the backup while it read the file");
}

#[test]
fn a_file_that_shrinks_during_a_backup_fails_it_and_keeps_the_last_backup() {
    let env = Env::enabled();
    let first = env.path("first");
    fs::create_dir(&first).unwrap();
    sample_tree(&first);
    let last = env.backup(&[&first]);

    let (_src, file, out) = caught(&env, |src, file| {
        backup_meddling(&env, src, file, || {
            fs::OpenOptions::new()
                .write(true)
                .open(file)
                .unwrap()
                .set_len(1000)
                .unwrap();
        })
    });
    let v = out.json_error("io", IO);
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains(&file.display().to_string()), "{v}");
    assert!(
        message.contains("shrank") && message.contains("run the backup again"),
        "{v}"
    );
    assert_eq!(v["error"]["retryable"], true, "{v}");
    // Nothing was committed: the newest backup is still the last good one, intact.
    assert_eq!(env.list_ids(), std::slice::from_ref(&last));
    env.coffer().arg("verify").run().ok().stdout_has(&last);
}

#[test]
fn a_file_that_grows_during_a_backup_is_kept_as_read_with_a_warning_and_exit_12() {
    let env = Env::enabled();
    let mut original = Vec::new();
    let (src, file, out) = caught(&env, |src, file| {
        original = fs::read(file).unwrap();
        backup_meddling(&env, src, file, || {
            let mut f = fs::OpenOptions::new().append(true).open(file).unwrap();
            std::io::Write::write_all(&mut f, b"written while the backup read").unwrap();
        })
    });
    out.code(SOURCES_CHANGED);
    let v = out.json();
    assert_eq!(v["ok"], true, "{v}");
    let warnings = v["backup"]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{v}");
    assert_eq!(warnings[0]["path"], file.display().to_string());
    assert_eq!(warnings[0]["change"], "grew");
    assert_eq!(warnings[0]["read"], original.len() as u64);

    // The backup holds the bytes read: the file as it was when its entry began.
    let target = env.path("restored");
    env.coffer()
        .arg("restore")
        .arg("--into")
        .arg(&target)
        .run()
        .ok();
    let name = src.file_name().unwrap();
    assert!(fs::read(target.join(name).join("chat.db")).unwrap() == original);
}

#[test]
fn a_file_written_during_a_backup_is_named_on_stderr_with_exit_12() {
    let env = Env::enabled();
    let (_src, file, out) = caught(&env, |src, file| {
        backup_meddling_with(&env, &[], src, file, || {
            let f = fs::OpenOptions::new().write(true).open(file).unwrap();
            // What any write in place does: a new modification time, the same length.
            f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        })
    });
    out.code(SOURCES_CHANGED)
        .stdout_has("Backed up 1 files")
        .stderr_has(&format!(
            "warning: {} changed while it was read",
            file.display()
        ))
        .stderr_has("run the backup again");
    assert_eq!(env.list_ids().len(), 1, "the backup was made");
}

#[test]
fn a_symlink_named_on_the_command_line_is_followed() {
    let env = Env::enabled();
    let real = env.path("phone/real-chats");
    fs::create_dir_all(&real).unwrap();
    let tree = sample_tree(&real);
    let link = env.path("chats");
    std::os::unix::fs::symlink(&tree, &link).unwrap();
    let note = env.path("note-link");
    std::os::unix::fs::symlink(tree.join("a.txt"), &note).unwrap();
    let target = env.path("restored");
    let v = env
        .coffer()
        .json()
        .arg("backup")
        .arg(&link)
        .arg(&note)
        .run()
        .ok()
        .json();
    assert_eq!(
        v["backup"]["contents"]["symlinks"], 2,
        "only the tree's own links: {v}"
    );
    env.coffer()
        .arg("restore")
        .arg("--into")
        .arg(&target)
        .run()
        .ok();
    let restored = target.join("chats");
    assert!(
        fs::symlink_metadata(&restored).unwrap().is_dir(),
        "the link itself was stored, not the folder"
    );
    assert_same_tree(&tree, &restored);
    assert_eq!(
        fs::read(target.join("note-link")).unwrap(),
        fs::read(tree.join("a.txt")).unwrap()
    );
}

#[test]
fn a_fifo_named_on_the_command_line_is_refused_without_hanging() {
    let env = Env::enabled();
    let fifo = env.path("pipe");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    env.coffer()
        .arg("backup")
        .arg(&fifo)
        .run()
        .code(USAGE)
        .stderr_has("is a FIFO, not a file or folder");
}
