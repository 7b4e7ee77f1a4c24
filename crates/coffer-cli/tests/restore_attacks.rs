//! Restores under attack from another local user (played by `nobody`, see
//! common/attacker.rs) and from an archive that leaves the target on a case-insensitive
//! file system (common/casefold.rs). The attack tests ran first against the restore that
//! wrote by path, and failed as each one's comment says; the sticky-folder test shows that
//! a shared folder like /tmp still works.

#[path = "common/attacker.rs"]
mod attacker;
#[path = "common/casefold.rs"]
mod casefold;
mod common;

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;

use attacker::{chown, Attacker, Plan, NOBODY};
use casefold::CaseInsensitive;
use common::*;

/// Not a test: the body of the attacker process, which re-runs this binary as `nobody`.
#[test]
fn attacker_body() {
    attacker::run_if_attacker();
}

/// A work area that `nobody` can walk through (the profile inside stays private), with a
/// backup of a sample tree and `extra` more small files, so that a restore takes a while.
fn victim(extra: usize) -> (Env, std::path::PathBuf) {
    let env = Env::enabled();
    set_mode(env.tmp.path(), 0o755);
    let src = env.path("src");
    fs::create_dir(&src).unwrap();
    let tree = sample_tree(&src);
    let many = tree.join("many");
    fs::create_dir(&many).unwrap();
    for i in 0..extra {
        fs::write(many.join(format!("f{i:04}")), format!("{MARKER} {i}\n")).unwrap();
    }
    env.backup(&[&tree]);
    (env, tree)
}

/// A folder owned by `nobody` with `mode`.
fn nobodys(path: &Path, mode: u32) {
    fs::create_dir_all(path).unwrap();
    chown(path, NOBODY);
    set_mode(path, mode);
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// Attack 1: on a case-insensitive file system, `docs/a/` names the symlink `docs/A`. The
/// backup is an honest one, made on a case-sensitive file system (anyone who holds the key
/// could craft the same archive): `docs/A -> OUTSIDE`, then `docs/a/` (mode 0777), then
/// `docs/a/x`. Restored into a case-insensitive folder, nothing may be written outside, the
/// outside folder keeps its mode, and the restore fails leaving nothing.
/// Before: exit 0, `OUTSIDE/x` written, `OUTSIDE` 0755 -> 0777.
#[test]
fn a_name_that_folds_onto_a_symlink_writes_nothing_outside() {
    let env = Env::enabled();
    let Some(ci) = CaseInsensitive::mount(&env.path("ci")) else {
        return;
    };
    let outside = env.path("outside");
    fs::create_dir(&outside).unwrap();
    set_mode(&outside, 0o755);
    let tree = env.path("src/tree");
    fs::create_dir_all(tree.join("docs/a")).unwrap();
    symlink(&outside, tree.join("docs/A")).unwrap();
    fs::write(tree.join("docs/a/x"), format!("{MARKER}\n")).unwrap();
    set_mode(&tree.join("docs/a"), 0o777);
    env.backup(&[&tree]);

    let target = ci.dir.join("restored");
    let out = env.coffer().arg("restore").arg("--into").arg(&target).run();
    let written = names_in(&outside);
    let mode = mode_of(&outside);
    eprintln!(
        "{}: exit {}, outside mode {mode:o}, written there {written:?}: {}",
        ci.kind,
        out.code,
        out.stderr.trim()
    );
    assert!(
        written.is_empty(),
        "written outside the target: {written:?}"
    );
    assert_eq!(mode, 0o755, "the mode of the folder outside changed");
    out.code(INTEGRITY)
        .stderr_has("refusing unsafe archive entry")
        .stderr_has("symlink");
    assert_nothing_left(&target);
}

/// Attack 2: the staging folder is created in a folder the attacker can write to, and the
/// attacker swaps it for a symlink to a folder of their own.
/// Before: exit 0 after one swap, the whole restored tree in the attacker's folder.
#[test]
fn a_restore_into_a_folder_another_user_can_write_is_refused() {
    let (env, _tree) = victim(2000);
    let shared = env.path("shared");
    nobodys(&shared, 0o777);
    let loot = env.path("loot");
    nobodys(&loot, 0o777);
    let Some(attacker) = Attacker::start(
        env.tmp.path(),
        Plan::SwapStaging {
            parent: &shared,
            loot: &loot,
        },
    ) else {
        return;
    };
    let target = shared.join("chats");
    let out = env.coffer().arg("restore").arg("--into").arg(&target).run();
    let strikes = attacker.strikes();
    drop(attacker);
    let stolen = names_in(&loot);
    assert!(
        stolen.is_empty(),
        "the restore wrote into the attacker's folder (after {strikes} swaps): {stolen:?}"
    );
    out.code(USAGE)
        .stderr_has("refusing to restore into")
        .stderr_has("belongs to another user");
    assert!(fs::symlink_metadata(&target).is_err());

    // Root's own folder, writable by all but not sticky: refused as well, saying how to
    // fix it.
    let open = env.path("open");
    fs::create_dir(&open).unwrap();
    set_mode(&open, 0o777);
    let target = open.join("chats");
    env.coffer()
        .arg("restore")
        .arg("--into")
        .arg(&target)
        .run()
        .code(USAGE)
        .stderr_has("other users can write to")
        .stderr_has("chmod");
    assert_nothing_left(&target);
}

/// The same attacker in a sticky shared folder such as /tmp, where a restore is allowed:
/// they cannot move the staging folder, and the restore is whole.
#[test]
fn a_restore_into_a_sticky_shared_folder_works_under_attack() {
    let (env, tree) = victim(2000);
    let shared = env.path("sticky");
    fs::create_dir(&shared).unwrap();
    set_mode(&shared, 0o1777);
    let loot = env.path("loot");
    nobodys(&loot, 0o777);
    let Some(attacker) = Attacker::start(
        env.tmp.path(),
        Plan::SwapStaging {
            parent: &shared,
            loot: &loot,
        },
    ) else {
        return;
    };
    let target = shared.join("chats");
    env.coffer()
        .arg("restore")
        .arg("--into")
        .arg(&target)
        .run()
        .ok();
    assert_eq!(attacker.strikes(), 0, "the attacker moved a staging folder");
    drop(attacker);
    assert!(names_in(&loot).is_empty());
    assert_same_tree(&tree, &target.join("tree"));
}

/// Attack 3: entries named like stale staging folders of the target, planted by another
/// user in a sticky shared folder and flipped between a folder and a symlink to one of the
/// victim's own folders, must make no restore change or remove anything outside.
/// Before: the victim's folder went 0755 -> 0700 in round 6 (then 7, in a second run), and
/// the other user's planted folder was removed.
#[test]
fn planted_stale_staging_folders_change_nothing_outside() {
    let (env, tree) = victim(0);
    let shared = env.path("sticky");
    fs::create_dir(&shared).unwrap();
    set_mode(&shared, 0o1777);
    // One of the victim's own folders, outside any restore.
    let mine = env.path("mine");
    fs::create_dir_all(mine.join("sub")).unwrap();
    fs::write(mine.join("sub/keep.txt"), b"keep").unwrap();
    set_mode(&mine, 0o755);
    set_mode(&mine.join("sub"), 0o751);
    let target = shared.join("chats");
    let Some(attacker) = Attacker::start(
        env.tmp.path(),
        Plan::FlipStale {
            target: &target,
            outside: &mine,
            count: 2,
        },
    ) else {
        return;
    };
    for round in 0..20 {
        let out = env.coffer().arg("restore").arg("--into").arg(&target).run();
        let damage = (mode_of(&mine), mode_of(&mine.join("sub")));
        assert_eq!(
            damage,
            (0o755, 0o751),
            "round {round}: a restore changed the modes of a folder outside"
        );
        assert!(mine.join("sub/keep.txt").exists(), "round {round}");
        out.ok();
        assert_same_tree(&tree, &target.join("tree"));
        fs::remove_dir_all(&target).unwrap();
    }
    drop(attacker);

    // Planted entries that stay put: another user's folder and a symlink are left alone.
    for e in fs::read_dir(&shared).unwrap().flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            fs::remove_dir_all(&p).unwrap();
        } else {
            fs::remove_file(&p).unwrap();
        }
    }
    let theirs = shared.join(".chats.coffer-restore-cafecafe");
    nobodys(&theirs, 0o755);
    fs::write(theirs.join("theirs.txt"), b"theirs").unwrap();
    chown(&theirs.join("theirs.txt"), NOBODY);
    let link = shared.join(".chats.coffer-restore-deadbeef");
    symlink(&mine, &link).unwrap();
    env.coffer()
        .arg("restore")
        .arg("--into")
        .arg(&target)
        .run()
        .ok();
    assert!(
        theirs.join("theirs.txt").exists(),
        "another user's entry was removed"
    );
    assert!(
        fs::symlink_metadata(&link).is_ok(),
        "the symlink was removed"
    );
    assert_eq!((mode_of(&mine), mode_of(&mine.join("sub"))), (0o755, 0o751));
    assert!(mine.join("sub/keep.txt").exists());
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Attack 4: another user makes the empty folder the victim is about to restore into, open
/// to all (`mkdir /tmp/vt && chmod 777 /tmp/vt`), in a sticky shared folder like /tmp. The
/// restore must refuse it before downloading anything and leave it as it was; a folder of
/// the victim's own that is open to all is restored without the write bits for others,
/// unless sticky.
/// Before: exit 0, the target root's own with mode 0777, so that the other user could
/// rename, remove or swap the restored entries.
#[test]
fn an_empty_target_of_another_user_is_refused() {
    if !is_root() {
        eprintln!("SKIPPED: playing another user needs root");
        return;
    }
    let (env, tree) = victim(0);
    let shared = env.path("sticky");
    fs::create_dir(&shared).unwrap();
    set_mode(&shared, 0o1777);
    let theirs = shared.join("vt");
    nobodys(&theirs, 0o777);
    let out = env.coffer().arg("restore").arg("--into").arg(&theirs).run();
    let md = fs::symlink_metadata(&theirs).unwrap();
    eprintln!(
        "exit {}, target uid {} mode {:o}: {}",
        out.code,
        md.uid(),
        md.mode() & 0o7777,
        out.stderr.trim()
    );
    assert_eq!(md.uid(), NOBODY, "the other user's folder was replaced");
    assert!(names_in(&theirs).is_empty(), "restored into their folder");
    out.code(USAGE)
        .stderr_has("refusing to restore into")
        .stderr_has("belongs to another user")
        .stderr_has("name a new folder");
    assert!(names_in(&shared).iter().all(|n| n == "vt"), "left behind");

    for (made, restored) in [
        (0o777, 0o755),
        (0o775, 0o755),
        (0o1777, 0o1777),
        (0o750, 0o750),
    ] {
        let mine = shared.join(format!("mine-{made:o}"));
        fs::create_dir(&mine).unwrap();
        set_mode(&mine, made);
        env.coffer()
            .arg("restore")
            .arg("--into")
            .arg(&mine)
            .run()
            .ok();
        assert_eq!(mode_of(&mine), restored, "made {made:o}");
        assert_same_tree(&tree, &mine.join("tree"));
    }
}

/// Attack 5: a restore's cleanup of stale staging folders must spare a live one, a
/// concurrent restore into the same target (here a folder the test holds locked as a live
/// restore does), and names that only look alike, such as the staging folder of a target
/// named `rt3.coffer-restore-x`.
/// Before: exit 0, but the live `.rt3.coffer-restore-e18c7a16` was removed (the restore
/// that owned it then failed), and so were all the look-alikes.
#[test]
fn a_live_staging_folder_and_look_alikes_are_not_removed_as_stale() {
    use std::os::fd::AsRawFd;
    let (env, tree) = victim(0);
    let parent = env.path("out");
    fs::create_dir(&parent).unwrap();
    set_mode(&parent, 0o755);
    let with_file = |name: &str| {
        let p = parent.join(name);
        fs::create_dir(&p).unwrap();
        fs::write(p.join("f"), b"in progress").unwrap();
        p
    };
    let live = with_file(".rt3.coffer-restore-e18c7a16");
    let held = fs::File::open(&live).unwrap();
    // SAFETY: a valid open descriptor.
    let locked = unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(locked, 0);
    let stale = with_file(".rt3.coffer-restore-0badf00d");
    let look_alikes: Vec<_> = [
        ".rt3.coffer-restore-x.coffer-restore-0123abcd",
        ".rt3.coffer-restore-E18C7A16",
        ".rt3.coffer-restore-e18c7a1",
        ".rt3.coffer-restore-e18c7a16x",
    ]
    .into_iter()
    .map(with_file)
    .collect();
    let target = parent.join("rt3");
    env.coffer()
        .arg("restore")
        .arg("--into")
        .arg(&target)
        .run()
        .ok();
    assert_same_tree(&tree, &target.join("tree"));
    let survived = |p: &Path| p.join("f").exists();
    assert!(survived(&live), "the live staging folder was removed");
    for p in &look_alikes {
        assert!(survived(p), "{} was removed", p.display());
    }
    assert!(!stale.exists(), "a stale staging folder was left");
    drop(held);
}
