//! `prune` deletes nothing unless what it leaves behind is sound (SPEC 3.6): the newest
//! backup it keeps must read whole under the key (a header that verifies says whose a
//! backup is, not that its body is intact), and storage must still show the last backup
//! this device made (otherwise the provider may be hiding newer ones).

mod common;

use std::fs;

use common::*;

/// An enabled work area with `n` backups of one small folder, oldest first.
fn backups(n: usize) -> (Env, Vec<String>) {
    let env = Env::enabled();
    let src = env.path("src");
    fs::create_dir(&src).unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        fs::write(src.join("version.txt"), format!("backup {i}\n")).unwrap();
        ids.push(env.backup(&[&src]));
    }
    (env, ids)
}

#[test]
fn prune_deletes_nothing_when_the_newest_kept_backup_is_damaged_past_its_header() {
    let (env, ids) = backups(2);
    let (old, new) = (&ids[0], &ids[1]);
    // Storage rots (or a provider overwrites) everything after the newest backup's header:
    // the header still verifies, so `list` calls it this device's.
    let path = env.stored(new);
    let mut bytes = fs::read(&path).unwrap();
    let header = coffer_format::HEADER_LEN;
    bytes[header..].fill(0);
    fs::write(&path, &bytes).unwrap();

    env.coffer()
        .args(["prune", "--keep", "1"])
        .run()
        .code(5)
        .stderr_has("prune deleted nothing")
        .stderr_has(new);
    assert!(
        env.stored(old).exists(),
        "prune deleted the only backup that reads whole"
    );
    // A dry run downloads nothing and still says what it would do.
    env.coffer()
        .args(["prune", "--keep", "1", "--dry-run"])
        .run()
        .ok()
        .stdout_has(old);
    assert!(env.stored(old).exists());
}

#[test]
fn prune_checks_the_newest_kept_backup_then_deletes() {
    let (env, ids) = backups(3);
    env.coffer()
        .args(["prune", "--keep", "1"])
        .run()
        .ok()
        .stdout_has("Verifying")
        .stdout_has(&ids[2]);
    assert!(!env.stored(&ids[0]).exists() && !env.stored(&ids[1]).exists());
    assert!(env.stored(&ids[2]).exists());
}

#[test]
fn prune_deletes_nothing_while_the_last_backup_is_hidden_unless_forced() {
    let (env, ids) = backups(3);
    // The provider hides the newest backup, the one this device made last.
    let hidden = env.path("hidden.coffer");
    fs::rename(env.stored(&ids[2]), &hidden).unwrap();

    env.coffer()
        .args(["prune", "--keep", "1"])
        .run()
        .code(2)
        .stderr_has("is not in storage")
        .stderr_has("--force");
    assert!(
        env.stored(&ids[0]).exists() && env.stored(&ids[1]).exists(),
        "prune deleted backups while storage hid the newest"
    );

    env.coffer()
        .args(["prune", "--keep", "1", "--force"])
        .run()
        .ok();
    assert!(!env.stored(&ids[0]).exists());
    assert!(env.stored(&ids[1]).exists());
}
