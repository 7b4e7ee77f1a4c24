//! A storage provider that replays, renames or hides backups (SPEC 3.2, 3.6): an old backup
//! copied under a newer name, a real header in front of garbage, another key's backups in
//! the same place, the newest backup hidden. Each is run through the real `coffer` binary
//! against a local folder (and one case against a WebDAV server, where backups are
//! segmented), playing the provider by editing the stored files.
//!
//! What must hold: `list` marks as "this device's key" only backups whose header
//! authenticates under the key and names the backup it is stored as; `verify`, `restore` and
//! `decrypt` never take a renamed copy for the backup it is named as; `prune` counts and
//! deletes only backups that verify, so it never deletes the real newest one; and a device
//! that knows its last backup warns when storage no longer shows it.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::servers::WebDavServer;
use common::*;
use serde_json::Value;

/// A name later than any real backup's: where a replaying provider puts an old copy.
const FUTURE: &str = "20991231T235959999Z-00000000";

/// An enabled work area with two backups of one file, whose contents say which backup
/// they are. Returns (env, the file's folder, old id, new id).
fn two_backups() -> (Env, PathBuf, String, String) {
    let env = Env::enabled();
    let src = env.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("version.txt"), "old\n").unwrap();
    let old = env.backup(&[&src]);
    fs::write(src.join("version.txt"), "new\n").unwrap();
    let new = env.backup(&[&src]);
    assert!(new > old, "ids sort in time order");
    (env, src, old, new)
}

/// `list --json`, keyed by id.
fn list_rows(call: Call) -> (Value, Vec<Value>) {
    let v = call.json().arg("list").run().ok().json();
    let rows = v["backups"].as_array().expect("backups").clone();
    (v, rows)
}

fn row<'a>(rows: &'a [Value], id: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("list does not show {id}: {rows:?}"))
}

/// The human `list` line of `id`.
fn list_line(out: &Out, id: &str) -> String {
    out.stdout
        .lines()
        .find(|l| l.contains(id))
        .unwrap_or_else(|| panic!("list does not show {id}:\n{}", out.stdout))
        .to_string()
}

fn warnings(v: &Value) -> Vec<String> {
    v["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("no warnings array: {v}"))
        .iter()
        .map(|w| w.as_str().expect("a warning is text").to_string())
        .collect()
}

fn restore_into(env: &Env, target: &Path, id: Option<&str>) -> Out {
    let mut call = env.coffer().arg("restore").arg("--into").arg(target);
    if let Some(id) = id {
        call = call.args(["--backup", id]);
    }
    call.run()
}

#[test]
fn an_old_backup_replayed_under_a_future_name_is_never_taken_for_the_newest() {
    let (env, _src, old, new) = two_backups();
    // The provider copies the old backup under a name later than every real one.
    fs::copy(env.stored(&old), env.stored(FUTURE)).unwrap();

    // list: the copy is damaged, never "this device's key"; the real ones are ours.
    let (_, rows) = list_rows(env.coffer());
    let replayed = row(&rows, FUTURE);
    assert_eq!(replayed["this_device_key"], false, "{replayed}");
    assert_eq!(replayed["status"], "damaged", "{replayed}");
    let problem = replayed["problem"]
        .as_str()
        .expect("a damaged row says why");
    assert!(problem.contains("renamed or replayed"), "{problem}");
    assert!(
        problem.contains(&old),
        "the problem names the real id: {problem}"
    );
    for id in [&old, &new] {
        assert_eq!(row(&rows, id)["status"], "ours");
        assert_eq!(row(&rows, id)["this_device_key"], true);
    }
    let human = env.coffer().arg("list").run();
    human.ok();
    let line = list_line(&human, FUTURE);
    assert!(!line.contains("this device's key"), "{line}");
    assert!(line.contains("damaged"), "{line}");
    assert!(list_line(&human, &new).contains("this device's key"));

    // verify without --backup checks the real newest, and warns about the copy.
    let v = env.coffer().json().arg("verify").run().ok().json();
    assert_eq!(v["verified"]["id"], new.as_str(), "{v}");
    let passed = v["verified"]["passed_over"]
        .as_array()
        .expect("passed_over");
    assert_eq!(passed.len(), 1, "{v}");
    assert_eq!(passed[0]["id"], FUTURE, "{v}");
    env.coffer()
        .arg("verify")
        .run()
        .ok()
        .stdout_has(&new)
        .stderr_has(FUTURE)
        .stderr_has("renamed or replayed");

    // Asked for by name, the copy is refused as an integrity failure.
    env.coffer()
        .args(["verify", "--backup", FUTURE])
        .run()
        .code(INTEGRITY)
        .stderr_has("renamed or replayed")
        .stderr_has(&old);
    let target = env.path("by-name");
    restore_into(&env, &target, Some(FUTURE))
        .code(INTEGRITY)
        .stderr_has("renamed or replayed");
    assert_nothing_left(&target);
    let payload = env.path("payload.tar.zst");
    env.coffer()
        .args(["decrypt", "--backup", FUTURE, "--output"])
        .arg(&payload)
        .run()
        .code(INTEGRITY);
    assert_nothing_left(&payload);

    // restore without --backup restores the real newest, and says which and from when.
    let target = env.path("restored");
    let out = restore_into(&env, &target, None);
    out.ok().stdout_has(&new).stderr_has(FUTURE);
    let made = &new[..8];
    assert!(
        out.stdout
            .contains(&format!("{}-{}-{}", &made[..4], &made[4..6], &made[6..8])),
        "restore says when the backup was made:\n{}",
        out.stdout
    );
    assert_eq!(
        fs::read_to_string(target.join("src/version.txt")).unwrap(),
        "new\n"
    );
    let target = env.path("restored-json");
    let v = env
        .coffer()
        .json()
        .args(["restore", "--into"])
        .arg(&target)
        .run()
        .ok()
        .json();
    assert_eq!(v["restored"]["id"], new.as_str(), "{v}");
    let created = v["restored"]["created"].as_str().expect("created");
    assert!(created.ends_with('Z') && created.starts_with(&format!("{}-", &new[..4])));

    // prune --keep 1 keeps the real newest and leaves the copy alone.
    let v = env
        .coffer()
        .json()
        .args(["prune", "--keep", "1"])
        .run()
        .ok()
        .json();
    assert_eq!(v["removed"], serde_json::json!([old]), "{v}");
    assert_eq!(v["kept"], serde_json::json!([new]), "{v}");
    let left = v["left_alone"].as_array().expect("left_alone");
    assert_eq!(left.len(), 1, "{v}");
    assert_eq!(left[0]["id"], FUTURE, "{v}");
    assert!(
        env.stored(&new).exists(),
        "prune deleted the real newest backup"
    );
    assert!(
        env.stored(FUTURE).exists(),
        "prune deleted what is not its own"
    );
    assert!(!env.stored(&old).exists());
}

#[test]
fn a_backup_renamed_over_another_is_damaged_and_the_rollback_is_noticed() {
    let (env, _src, old, new) = two_backups();
    // The provider rolls back: the newest name now holds the old backup.
    fs::copy(env.stored(&old), env.stored(&new)).unwrap();

    let (v, rows) = list_rows(env.coffer());
    assert_eq!(row(&rows, &new)["status"], "damaged", "{v}");
    assert_eq!(row(&rows, &old)["status"], "ours", "{v}");
    let w = warnings(&v);
    assert!(
        w.iter()
            .any(|w| w.contains(&new) && w.contains("this device made")),
        "{w:?}"
    );

    // Restore falls back to the newest backup that verifies, and says so.
    let target = env.path("restored");
    restore_into(&env, &target, None)
        .ok()
        .stdout_has(&old)
        .stderr_has(&new);
    assert_eq!(
        fs::read_to_string(target.join("src/version.txt")).unwrap(),
        "old\n"
    );
    env.coffer()
        .args(["verify", "--backup", &new])
        .run()
        .code(INTEGRITY)
        .stderr_has("renamed or replayed");
}

#[test]
fn a_real_header_in_front_of_garbage_is_damaged_and_prune_leaves_it() {
    let (env, _src, old, new) = two_backups();
    let header = fs::read(env.stored(&new)).unwrap()[..HEADER_LEN as usize].to_vec();
    let garbage = [header.as_slice(), &random_bytes(5000)].concat();
    fs::write(env.stored(FUTURE), &garbage).unwrap();
    // And a cut header, and a header with one bit of its MAC flipped, under other names.
    let cut = "20991231T235959998Z-00000000";
    fs::write(env.stored(cut), &header[..60]).unwrap();
    let flipped_name = "20991231T235959997Z-00000000";
    let mut flipped = fs::read(env.stored(&new)).unwrap();
    flipped[HEADER_LEN as usize - 1] ^= 1;
    fs::write(env.stored(flipped_name), &flipped).unwrap();

    let (_, rows) = list_rows(env.coffer());
    for id in [FUTURE, cut, flipped_name] {
        let r = row(&rows, id);
        assert_eq!(r["this_device_key"], false, "{r}");
        assert_eq!(r["status"], "damaged", "{r}");
    }
    let human = env.coffer().arg("list").run();
    human.ok();
    for id in [FUTURE, cut, flipped_name] {
        let line = list_line(&human, id);
        assert!(!line.contains("this device's key"), "{line}");
        assert!(line.contains("damaged"), "{line}");
    }

    env.coffer()
        .args(["prune", "--keep", "1", "--dry-run"])
        .run()
        .ok()
        .stdout_has(&old)
        .stdout_has("left alone");
    env.coffer().args(["prune", "--keep", "1"]).run().ok();
    assert!(
        env.stored(&new).exists(),
        "prune deleted the real newest backup"
    );
    assert!(!env.stored(&old).exists());
    for id in [FUTURE, cut, flipped_name] {
        assert!(env.stored(id).exists(), "prune deleted {id}, not its own");
    }
}

#[test]
fn another_keys_backups_are_shown_without_the_mark_and_left_alone_by_prune() {
    let (env, _src, old, new) = two_backups();
    // A second device with its own key backs up into the same folder, later.
    let other = env.path("other-profile");
    let e = coffer(&other)
        .json()
        .args(["enable", "--key", "--storage"])
        .arg(&env.storage)
        .run()
        .ok()
        .json();
    let other_key_id = e["key_id"].as_str().unwrap().to_string();
    let file = env.path("other.txt");
    fs::write(&file, "someone else's\n").unwrap();
    let theirs = coffer(&other)
        .json()
        .arg("backup")
        .arg(&file)
        .run()
        .ok()
        .json()["backup"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let (_, rows) = list_rows(env.coffer());
    let r = row(&rows, &theirs);
    assert_eq!(r["status"], "other_key", "{r}");
    assert_eq!(r["this_device_key"], false, "{r}");
    assert_eq!(r["key_id"], other_key_id.as_str(), "{r}");
    let human = env.coffer().arg("list").run();
    let line = list_line(&human, &theirs);
    assert!(line.contains(&other_key_id) && !line.contains("this device's key"));

    // Restoring with this key skips the other key's newer backup.
    let target = env.path("restored");
    restore_into(&env, &target, None).ok().stdout_has(&new);

    // prune counts only this key's backups.
    let v = env
        .coffer()
        .json()
        .args(["prune", "--keep", "1"])
        .run()
        .ok()
        .json();
    assert_eq!(v["removed"], serde_json::json!([old]), "{v}");
    assert_eq!(v["kept"], serde_json::json!([new]), "{v}");
    assert_eq!(v["left_alone"][0]["id"], theirs.as_str(), "{v}");
    assert!(env.stored(&theirs).exists() && env.stored(&new).exists());
}

#[test]
fn a_hidden_newest_backup_is_noticed_by_list_status_prune_and_restore() {
    let (env, _src, old, new) = two_backups();
    // The provider hides the newest backup.
    let hidden = env.path("hidden.coffer");
    fs::rename(env.stored(&new), &hidden).unwrap();
    let missing = |text: &str| {
        text.contains(&new) && text.contains("is not in storage") && text.contains("provider")
    };

    let (v, _) = list_rows(env.coffer());
    assert!(warnings(&v).iter().any(|w| missing(w)), "{v}");
    let out = env.coffer().arg("list").run();
    out.ok();
    assert!(missing(&out.stderr), "list warns:\n{}", out.stderr);

    let v = env.coffer().json().arg("status").run().ok().json();
    assert!(warnings(&v).iter().any(|w| missing(w)), "{v}");
    let out = env.coffer().arg("status").run();
    assert!(missing(&out.stderr) || missing(&out.stdout), "{out:?}");

    let v = env
        .coffer()
        .json()
        .args(["prune", "--keep", "1", "--dry-run"])
        .run()
        .ok()
        .json();
    assert!(warnings(&v).iter().any(|w| missing(w)), "{v}");

    let target = env.path("restored");
    let out = restore_into(&env, &target, None);
    out.ok().stdout_has(&old);
    assert!(missing(&out.stderr), "restore warns:\n{}", out.stderr);

    // Once storage shows it again, all is quiet.
    fs::rename(&hidden, env.stored(&new)).unwrap();
    let (v, _) = list_rows(env.coffer());
    assert!(warnings(&v).is_empty(), "{v}");
    let v = env.coffer().json().arg("status").run().ok().json();
    assert!(warnings(&v).is_empty(), "{v}");
}

#[test]
fn without_the_key_list_shows_fingerprints_and_says_the_marks_need_it() {
    let (env, _src, _old, new) = two_backups();
    fs::copy(env.stored(&new), env.stored(FUTURE)).unwrap();
    let stranger = env.path("no-key-profile");
    let v = coffer(&stranger)
        .json()
        .arg("list")
        .arg("--from")
        .arg(&env.storage)
        .run()
        .ok()
        .json();
    for r in v["backups"].as_array().unwrap() {
        assert_eq!(r["status"], "unchecked", "{r}");
        assert_eq!(r["this_device_key"], false, "{r}");
        assert_eq!(r["key_id"], env.key_id.as_str(), "{r}");
    }
    assert_eq!(v["checked"], false, "{v}");
    let out = coffer(&stranger)
        .arg("list")
        .arg("--from")
        .arg(&env.storage)
        .run();
    out.ok();
    assert!(!out.stdout.contains("this device's key"), "{}", out.stdout);
    assert!(
        (out.stdout.clone() + &out.stderr).contains("need the key"),
        "list says the marks need the key:\n{}{}",
        out.stdout,
        out.stderr
    );
}

/// One WebDAV device: every backup there is stored as segments.
struct DavDevice {
    _tmp: tempfile::TempDir,
    profile: PathBuf,
    src: PathBuf,
    password: String,
}

impl DavDevice {
    fn coffer(&self) -> Call {
        coffer(&self.profile).env("COFFER_WEBDAV_PASSWORD", &self.password)
    }

    fn backup(&self, contents: &str) -> String {
        fs::write(self.src.join("version.txt"), contents).unwrap();
        let v = self
            .coffer()
            .json()
            .arg("backup")
            .arg(&self.src)
            .run()
            .ok()
            .json();
        v["backup"]["id"].as_str().unwrap().to_string()
    }
}

#[test]
fn a_segmented_backup_replayed_under_a_future_name_is_refused() {
    let dav = WebDavServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let d = DavDevice {
        profile: tmp.path().join("profile"),
        src: tmp.path().join("src"),
        password: dav.password.clone().unwrap(),
        _tmp: tmp,
    };
    fs::create_dir(&d.src).unwrap();
    let url = format!("webdav://{}/dav/phone?username=coffer", dav.addr);
    d.coffer()
        .args(["enable", "--key", "--storage", &url])
        .run()
        .ok();
    let old = d.backup("old\n");
    let new = d.backup("new\n");

    // The provider copies the old backup's segment list and segments under a future name.
    let root = dav.root.join("dav/phone");
    assert!(root.join(format!("backups/{old}.segments")).exists());
    fs::copy(
        root.join(format!("backups/{old}.segments")),
        root.join(format!("backups/{FUTURE}.segments")),
    )
    .unwrap();
    let (from, to) = (
        root.join("segments").join(&old),
        root.join("segments").join(FUTURE),
    );
    fs::create_dir_all(&to).unwrap();
    for e in fs::read_dir(&from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }

    let (_, rows) = list_rows(d.coffer());
    assert_eq!(row(&rows, FUTURE)["status"], "damaged");
    assert_eq!(row(&rows, FUTURE)["segments"], 1);
    assert_eq!(row(&rows, &new)["status"], "ours");

    d.coffer()
        .args(["verify", "--backup", FUTURE])
        .run()
        .code(INTEGRITY)
        .stderr_has("renamed or replayed");
    let target = d._tmp.path().join("restored");
    d.coffer()
        .args(["restore", "--into"])
        .arg(&target)
        .run()
        .ok()
        .stdout_has(&new)
        .stderr_has(FUTURE);
    assert_eq!(
        fs::read_to_string(target.join("src/version.txt")).unwrap(),
        "new\n"
    );

    d.coffer().args(["prune", "--keep", "1"]).run().ok();
    assert!(root.join(format!("backups/{new}.segments")).exists());
    assert!(root.join(format!("backups/{FUTURE}.segments")).exists());
    assert!(!root.join(format!("backups/{old}.segments")).exists());
}
