//! A storage provider that sends more than any real one would (attacks 5 and 9 of the
//! second client review, and the third review's): a huge segment list, a listing that
//! never ends, one listing answer that never ends, a download that trickles, errors whose
//! message is one huge line, a listing of very many made-up backups, a backup listed far
//! larger than it is. Each hostile answer comes from a real
//! server on a loopback port: a local folder, or the suite's hostile S3 server
//! (`common/hostile_storage.rs`). Each time `coffer` must end with a clear error or notice,
//! and its peak memory must stay under the 64 MiB bound of docs/PERFORMANCE.md.

mod common;

use std::fs;
use std::io::Write;
use std::time::Duration;

use common::hostile_storage::{HostileS3, Listing, Object};
use common::*;

/// The memory bound of docs/PERFORMANCE.md.
const BOUND_KIB: u64 = 64 << 10;
/// Where a run is killed: an attack that works must not take the machine with it.
const CEILING_KIB: u64 = 512 << 10;
const BUCKET: &str = "hostile";
/// A short overall deadline (`deadline` storage setting), so that a provider too slow for
/// it is found out in seconds. No assertion depends on how long anything takes.
const SHORT_DEADLINE: &str = "deadline=2s";

/// Damaged backups' ids, planted beside the real ones.
const PLANTED: &str = "20200101T000000000Z-0badc0de";
const PLANTED_LYING: &str = "20200101T000000000Z-0badf00d";

/// 16 MiB of segment list: 8,388,608 segments of 0 bytes.
fn huge_segment_list() -> Vec<u8> {
    let mut list = b"coffer-segments 1\n".to_vec();
    list.extend(b"0\n".repeat(8 << 20));
    list
}

/// A profile with one real backup (about 16 KiB) in its folder; its id and stored bytes.
fn with_one_backup() -> (Env, String, Vec<u8>) {
    let env = Env::enabled();
    let src = env.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("a.txt"), MARKER).unwrap();
    write_random_file(&src.join("noise.bin"), 16 << 10);
    let id = env.backup(&[&src]);
    let bytes = fs::read(env.stored(&id)).unwrap();
    (env, id, bytes)
}

fn hostile_coffer(env: &Env, s3: &HostileS3) -> Call {
    let mut c = env.coffer();
    for (k, v) in s3.env() {
        c = c.env(k, v);
    }
    c
}

/// The ids a `list --json` run printed.
fn listed_ids(out: &Out) -> Vec<String> {
    out.json()["backups"]
        .as_array()
        .expect("list --json gives backups")
        .iter()
        .map(|b| b["id"].as_str().expect("backup id").to_string())
        .collect()
}

/// A segment list of 16 MiB in a local folder: refused without being read, with a notice
/// that names it; the real backup beside it is still listed.
#[test]
fn a_huge_segment_list_in_a_folder_is_refused() {
    let (env, id, _) = with_one_backup();
    let planted = env
        .storage
        .join("backups")
        .join(format!("{PLANTED}.segments"));
    fs::File::create(&planted)
        .unwrap()
        .write_all(&huge_segment_list())
        .unwrap();
    let run = env.coffer().json().arg("list").run_measured(CEILING_KIB);
    eprintln!(
        "list beside a 16 MiB segment list: peak {} KiB",
        run.peak_rss_kib
    );
    run.assert_peak_under(BOUND_KIB);
    run.out
        .ok()
        .stderr_has(PLANTED)
        .stderr_has("segment list is 16777234 bytes long")
        .stderr_has("it was not read");
    assert_eq!(listed_ids(&run.out), [id]);
}

/// From a provider: a segment list listed as 16 MiB is never downloaded; one listed as 100
/// bytes but sent as 80 MiB, whatever range is asked for, is read no further than 100
/// bytes. The real backup beside them is still listed.
#[test]
fn a_provider_s_huge_segment_lists_are_not_read() {
    let (env, id, bytes) = with_one_backup();
    let s3 = HostileS3::start(BUCKET);
    s3.put(&format!("phone/backups/{id}.coffer"), Object::new(bytes));
    let huge = format!("phone/backups/{PLANTED}.segments");
    s3.put(&huge, Object::new(huge_segment_list()));
    let mut lying = b"coffer-segments 1\n".to_vec();
    lying.extend(b"0\n".repeat(40 << 20));
    s3.put(
        &format!("phone/backups/{PLANTED_LYING}.segments"),
        Object::new(lying).listed_as(100).ignoring_ranges(),
    );
    let run = hostile_coffer(&env, &s3)
        .json()
        .args(["list", "--from", &s3.url("phone", "")])
        .run_measured(CEILING_KIB);
    eprintln!(
        "list with huge and lying segment lists: peak {} KiB",
        run.peak_rss_kib
    );
    run.assert_peak_under(BOUND_KIB);
    run.out
        .ok()
        .stderr_has(PLANTED)
        .stderr_has("it was not read")
        .stderr_has(PLANTED_LYING)
        .stderr_has("longer than its listed size");
    assert_eq!(listed_ids(&run.out), [id]);
    assert!(
        !s3.stats().gets.contains_key(&huge),
        "the 16 MiB segment list was downloaded"
    );
}

/// A listing whose pages never end, 1000 made-up backups each: cut off at the cap on
/// entries, with an error that says so.
#[test]
fn a_listing_that_never_ends_is_cut_off() {
    let env = Env::enabled();
    let s3 = HostileS3::start(BUCKET);
    s3.set_listing(Listing::Endless {
        per_page: 1000,
        every: Duration::ZERO,
    });
    let run = hostile_coffer(&env, &s3)
        .args(["list", "--from", &s3.url("phone", "")])
        .run_measured(CEILING_KIB);
    eprintln!(
        "list of an endless listing: peak {} KiB after {} entries",
        run.peak_rss_kib,
        s3.stats().listed_entries
    );
    run.assert_peak_under(BOUND_KIB);
    run.out
        .code(IO)
        .stderr_has("more than 100000 entries")
        .stderr_has("backups/");
}

/// Listings that never end but never grow fast either: empty pages, or one made-up backup
/// a page. Neither reaches the cap on entries; the listing's deadline ends them.
#[test]
fn a_listing_that_drips_times_out() {
    let env = Env::enabled();
    for listing in [
        Listing::Endless {
            per_page: 0,
            every: Duration::from_millis(20),
        },
        Listing::Endless {
            per_page: 1,
            every: Duration::from_millis(200),
        },
    ] {
        let s3 = HostileS3::start(BUCKET);
        s3.set_listing(listing);
        let run = hostile_coffer(&env, &s3)
            .args(["list", "--from", &s3.url("phone", SHORT_DEADLINE)])
            .run_measured(CEILING_KIB);
        run.assert_peak_under(BOUND_KIB);
        run.out
            .code(IO)
            .stderr_has("timed out")
            .stderr_has("too slow");
        assert!(
            s3.stats().list_pages > 1,
            "{listing:?}: the listing was not endless"
        );
    }
}

/// One listing page whose body never ends: cut off at the cap on one answer.
#[test]
fn an_answer_that_never_ends_is_cut_off() {
    let env = Env::enabled();
    let s3 = HostileS3::start(BUCKET);
    s3.set_listing(Listing::EndlessBody);
    let run = hostile_coffer(&env, &s3)
        .args(["list", "--from", &s3.url("phone", "")])
        .run_measured(CEILING_KIB);
    eprintln!(
        "list of an endless page: peak {} KiB after {} entries",
        run.peak_rss_kib,
        s3.stats().listed_entries
    );
    run.assert_peak_under(BOUND_KIB);
    run.out.code(IO).stderr_has("answer is longer than 16 MiB");
}

/// A real backup sent 16 bytes at a time, each well within the per-read timeout (the
/// whole would take two minutes): the download's overall deadline ends it, and the error
/// says that the provider was too slow.
#[test]
fn a_trickled_download_times_out() {
    let (env, id, bytes) = with_one_backup();
    let s3 = HostileS3::start(BUCKET);
    s3.put(
        &format!("phone/backups/{id}.coffer"),
        Object::new(bytes).trickled(16, Duration::from_millis(100)),
    );
    let run = hostile_coffer(&env, &s3)
        .args(["verify", "--from", &s3.url("phone", SHORT_DEADLINE)])
        .run_measured(CEILING_KIB);
    let sent = s3.stats().gets.values().map(|g| g.1).sum::<u64>();
    eprintln!(
        "verify of a trickled download: peak {} KiB, {sent} bytes sent",
        run.peak_rss_kib
    );
    run.assert_peak_under(BOUND_KIB);
    run.out
        .code(IO)
        .stderr_has("timed out")
        .stderr_has("too slow");
    assert!(sent > 0, "the download never started");
}

/// Just under the 16 MiB that the transport reads of a whole answer.
const HUGE_MESSAGE: usize = (16 << 20) - 200;

/// A restore from `url` into a new folder of `env`.
fn restore_from(env: &Env, s3: &HostileS3, url: &str) -> Call {
    hostile_coffer(env, s3)
        .args(["restore", "--from", url, "--into"])
        .arg(env.path("restored"))
}

/// Twenty made-up backups named as newer than the real one, each header read answered by
/// a 404 whose message is one 16 MiB line: each is listed as damaged and passed over in
/// a few words, and neither memory nor what is printed grows with those lines.
#[test]
fn huge_error_messages_are_cut_short() {
    let (env, id, bytes) = with_one_backup();
    let s3 = HostileS3::start(BUCKET);
    s3.put(&format!("phone/backups/{id}.coffer"), Object::new(bytes));
    s3.set_listing(Listing::Many { count: 20 });
    s3.set_missing_message(HUGE_MESSAGE);
    let url = s3.url("phone", "");
    let run = hostile_coffer(&env, &s3)
        .args(["list", "--from", &url])
        .run_measured(CEILING_KIB);
    eprintln!(
        "list with 20 huge 404s: peak {} KiB, {} bytes printed",
        run.peak_rss_kib,
        run.out.stdout.len() + run.out.stderr.len()
    );
    run.assert_peak_under(BOUND_KIB);
    run.out
        .ok()
        .stdout_has(&id)
        .stdout_has("damaged: storage error while trying to download a backup: not found");
    assert_eq!(run.out.stdout.matches("damaged").count(), 20);
    assert!(
        run.out.stdout.len() < 20 << 10,
        "list printed {} bytes",
        run.out.stdout.len()
    );

    let run = restore_from(&env, &s3, &url).run_measured(CEILING_KIB);
    eprintln!(
        "restore past 20 huge 404s: peak {} KiB, {} bytes printed",
        run.peak_rss_kib,
        run.out.stdout.len() + run.out.stderr.len()
    );
    run.assert_peak_under(BOUND_KIB);
    run.out.ok().stderr_has("passed over").stdout_has(&id);
    assert!(
        run.out.stderr.len() < 20 << 10,
        "restore printed {} bytes of warnings",
        run.out.stderr.len()
    );
}

/// A listing refused with a 403 whose message is one 16 MiB line: a short, clear error.
#[test]
fn a_huge_listing_error_is_cut_short() {
    let env = Env::enabled();
    let s3 = HostileS3::start(BUCKET);
    s3.set_listing(Listing::Failing {
        status: 403,
        message_len: HUGE_MESSAGE,
    });
    let run = hostile_coffer(&env, &s3)
        .args(["list", "--from", &s3.url("phone", "")])
        .run_measured(CEILING_KIB);
    eprintln!(
        "list refused with a huge 403: peak {} KiB, {} bytes of error",
        run.peak_rss_kib,
        run.out.stderr.len()
    );
    run.assert_peak_under(BOUND_KIB);
    run.out.code(IO).stderr_has("access denied");
    assert!(
        run.out.stderr.len() < 2000,
        "an error of {} bytes",
        run.out.stderr.len()
    );
}

/// One honest-looking 15 MB listing page of 70,000 made-up backups named as newer than the
/// real one, each header read a short 404: `list` and `restore` get through it in bounded
/// memory, and `restore` names a few of those it passed over and counts the rest.
#[test]
#[ignore = "not fixed yet: 70,000 listed entries take `list` to 241 MiB (bound 64 MiB); see docs/SECURITY.md, known limits"]
fn a_listing_of_very_many_backups_stays_small() {
    const MANY: usize = 70_000;
    let (env, id, bytes) = with_one_backup();
    let s3 = HostileS3::start(BUCKET);
    s3.put(&format!("phone/backups/{id}.coffer"), Object::new(bytes));
    s3.set_listing(Listing::Many { count: MANY });
    let url = s3.url("phone", "");
    let run = hostile_coffer(&env, &s3)
        .args(["list", "--from", &url])
        .run_measured(CEILING_KIB);
    eprintln!("list of {MANY} backups: peak {} KiB", run.peak_rss_kib);
    run.assert_peak_under(BOUND_KIB);
    run.out.ok().stdout_has(&id);
    assert_eq!(run.out.stdout.matches("damaged: not found").count(), MANY);

    let run = restore_from(&env, &s3, &url).run_measured(CEILING_KIB);
    eprintln!(
        "restore past {MANY} backups: peak {} KiB, {} bytes of warnings",
        run.peak_rss_kib,
        run.out.stderr.len()
    );
    run.assert_peak_under(BOUND_KIB);
    run.out
        .ok()
        .stdout_has(&id)
        .stderr_has(&format!("passed over {} more backups", MANY - 10));
    assert_eq!(run.out.stderr.matches("warning: passed over ").count(), 11);
    assert!(
        run.out.stderr.len() < 64 << 10,
        "{} bytes of warnings",
        run.out.stderr.len()
    );
}

/// A real backup listed as 1 TiB and trickled after its header: the time allowed grows
/// only with what arrives, so the download ends after about the base deadline with an
/// error that says the provider was too slow, however large the size it lists.
#[test]
fn a_backup_listed_larger_than_it_is_cannot_buy_time() {
    let (env, id, bytes) = with_one_backup();
    let s3 = HostileS3::start(BUCKET);
    s3.put(
        &format!("phone/backups/{id}.coffer"),
        Object::new(bytes)
            .listed_as(1 << 40)
            .trickled_after(4096, 64, Duration::from_millis(100)),
    );
    let run = hostile_coffer(&env, &s3)
        .args(["verify", "--from", &s3.url("phone", SHORT_DEADLINE)])
        .run_measured(CEILING_KIB);
    let sent = s3.stats().gets.values().map(|g| g.1).sum::<u64>();
    eprintln!(
        "verify of a backup listed as 1 TiB, trickled: peak {} KiB, {sent} bytes sent",
        run.peak_rss_kib
    );
    run.assert_peak_under(BOUND_KIB);
    run.out
        .code(IO)
        .stderr_has("timed out")
        .stderr_has("too slow");
}
