//! Backups in real storage servers, started on loopback for each test: an S3 API server
//! (moto), a WebDAV server (wsgidav), a GCS emulator and an Azure Blob emulator (Azurite). Each provider gets the whole
//! cycle (backup, list, verify, restore, prune); the fault tests put the suite's own
//! fault-injecting proxy between `coffer` and the server.
//!
//! After every fault: no backup is lost, no partial backup is listed, and the error says
//! what happened.

mod common;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::thread;
use std::time::Duration;

use common::fault_proxy::{Fault, FaultProxy};
use common::servers::{AzuriteServer, GcsEmulator, S3Server, WebDavServer};
use common::*;
use serde_json::Value;
use tempfile::TempDir;

const BUCKET: &str = "coffer-test";
/// A secret the tests hand to `coffer` and then look for in everything it prints.
const SECRET: &str = "coffer-test-secret-7f3a9c";

/// One storage server, and how `coffer` reaches it.
enum Server {
    S3(S3Server),
    Dav(WebDavServer),
    Gcs(GcsEmulator),
    Azure(AzuriteServer),
}

impl Server {
    fn s3() -> Server {
        let s = S3Server::start();
        s.create_bucket(BUCKET);
        Server::S3(s)
    }

    fn webdav() -> Server {
        Server::Dav(WebDavServer::start_with_password(SECRET))
    }

    fn gcs() -> Server {
        let s = GcsEmulator::start();
        s.create_bucket(BUCKET);
        Server::Gcs(s)
    }

    fn azure() -> Server {
        let s = AzuriteServer::start();
        s.create_container(BUCKET);
        Server::Azure(s)
    }

    fn addr(&self) -> std::net::SocketAddr {
        match self {
            Server::Azure(s) => s.addr,
            Server::S3(s) => s.addr,
            Server::Dav(s) => s.addr,
            Server::Gcs(s) => s.addr,
        }
    }

    /// The storage URL for a server reached at `host_port`, with extra query settings.
    fn url(&self, host_port: &str, extra: &str) -> String {
        match self {
            Server::S3(_) => {
                format!(
                    "s3://{BUCKET}/phone?endpoint=http://{host_port}{}",
                    amp(extra)
                )
            }
            Server::Dav(_) => format!(
                "webdav://{host_port}/dav/phone?username=coffer{}",
                amp(extra)
            ),
            Server::Gcs(_) => format!(
                "gs://{BUCKET}/phone?endpoint=http://{host_port}&allow_anonymous=true\
                 &disable_vm_metadata=true&disable_config_load=true\
                 &upload=segments{}",
                amp(extra)
            ),
            Server::Azure(s) => format!(
                "azblob://{BUCKET}/phone?endpoint=http://{host_port}/{}{}",
                s.account_name,
                amp(extra)
            ),
        }
    }

    /// Credentials, from each provider's usual variables.
    fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Server::S3(_) => vec![
                ("AWS_ACCESS_KEY_ID", "AKIACOFFERTEST".into()),
                ("AWS_SECRET_ACCESS_KEY", SECRET.into()),
            ],
            Server::Dav(_) => vec![("COFFER_WEBDAV_PASSWORD", SECRET.into())],
            Server::Gcs(_) => vec![],
            Server::Azure(s) => vec![
                ("AZURE_STORAGE_ACCOUNT", s.account_name.clone()),
                ("AZURE_STORAGE_KEY", s.account_key.clone()),
            ],
        }
    }

    /// Every object name the server holds under the test's prefix, sorted.
    fn object_names(&self) -> Vec<String> {
        let mut names = match self {
            Server::S3(s) => s.list_keys(BUCKET, "phone/"),
            Server::Gcs(s) => s.list_names(BUCKET, "phone/"),
            Server::Azure(s) => s.list_blobs(BUCKET, "phone/"),
            Server::Dav(s) => files_under(&s.root.join("dav/phone"), "phone/"),
        };
        names.sort();
        names
    }

    /// Every stored byte under the prefix.
    fn stored_bytes(&self) -> Vec<u8> {
        let mut all = Vec::new();
        for name in self.object_names() {
            let bytes = match self {
                Server::S3(s) => s.get_object(BUCKET, &name),
                Server::Gcs(s) => s.get_object(BUCKET, &name),
                Server::Azure(s) => s.get_blob(BUCKET, &name),
                Server::Dav(s) => std::fs::read(s.root.join("dav").join(&name)).ok(),
            };
            all.extend(bytes.unwrap_or_default());
        }
        all
    }
}

fn amp(extra: &str) -> String {
    if extra.is_empty() {
        String::new()
    } else {
        format!("&{extra}")
    }
}

fn files_under(dir: &Path, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let name = format!("{prefix}{}", e.file_name().to_string_lossy());
        if e.path().is_dir() {
            out.extend(files_under(&e.path(), &format!("{name}/")));
        } else {
            out.push(name);
        }
    }
    out
}

/// A profile whose storage is `url`, and a work area.
struct Device {
    tmp: TempDir,
    profile: PathBuf,
    env: Vec<(&'static str, String)>,
    key: String,
}

impl Device {
    fn enable(server: &Server, url: &str) -> Device {
        let tmp = tempfile::Builder::new()
            .prefix("coffer-cloud-test-")
            .tempdir()
            .expect("tempdir");
        let profile = tmp.path().join("profile");
        let mut d = Device {
            tmp,
            profile,
            env: server.env(),
            key: String::new(),
        };
        let v = d
            .coffer()
            .json()
            .args(["enable", "--key", "--storage", url])
            .run()
            .ok()
            .json();
        d.key = v["key"].as_str().expect("enable gives key").to_string();
        d
    }

    fn coffer(&self) -> Call {
        let mut c = coffer(&self.profile);
        for (k, v) in &self.env {
            c = c.env(k, v);
        }
        c
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    #[track_caller]
    fn backup(&self, paths: &[&Path]) -> String {
        let v = self
            .coffer()
            .json()
            .arg("backup")
            .args(paths)
            .run()
            .ok()
            .json();
        v["backup"]["id"].as_str().expect("backup id").to_string()
    }

    #[track_caller]
    fn list(&self) -> Vec<Value> {
        let v = self.coffer().json().arg("list").run().ok().json();
        v["backups"].as_array().expect("backups").clone()
    }

    fn list_ids(&self) -> Vec<String> {
        self.list()
            .iter()
            .map(|b| b["id"].as_str().expect("id").to_string())
            .collect()
    }

    /// Restores the newest backup into a new folder and checks it equals `src`.
    #[track_caller]
    fn assert_restores(&self, src: &Path, into: &str) {
        let target = self.restore(into, None);
        assert_same_tree(src, &target.join(src.file_name().unwrap()));
    }

    /// Restores the newest backup (or `id`) into a new folder and returns it.
    #[track_caller]
    fn restore(&self, into: &str, id: Option<&str>) -> PathBuf {
        let target = self.path(into);
        let mut c = self.coffer().arg("restore").arg("--into").arg(&target);
        if let Some(id) = id {
            c = c.args(["--backup", id]);
        }
        c.run().ok();
        target
    }
}

/// Sample data: the usual tree plus a file big enough to need several upload parts or
/// segments (5 MiB each).
fn data(d: &Device, big: u64) -> PathBuf {
    let root = sample_tree(d.tmp.path());
    write_random_file(&root.join("big.bin"), big);
    root
}

/// The whole cycle against one provider.
fn full_cycle(server: Server) {
    let url = server.url(&server.addr().to_string(), "");
    let d = Device::enable(&server, &url);
    let src = data(&d, 19 << 20);

    let first = d.backup(&[&src]);
    std::fs::write(src.join("version.txt"), "second").unwrap();
    let second = d.backup(&[&src]);
    std::fs::write(src.join("version.txt"), "third").unwrap();
    let third = d.backup(&[&src]);

    // list: id, time, size and key fingerprint for each, oldest first.
    let rows = d.list();
    let ids: Vec<&str> = rows.iter().map(|b| b["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [&first, &second, &third]);
    for row in &rows {
        assert!(row["size"].as_u64().unwrap() > 19 << 20, "{row}");
        assert!(row["time"].as_str().unwrap().ends_with('Z'), "{row}");
        assert!(is_hex(row["key_id"].as_str().unwrap(), 16), "{row}");
        assert_eq!(row["this_device_key"], true, "{row}");
    }
    d.coffer()
        .arg("list")
        .run()
        .ok()
        .stdout_has(&first)
        .stdout_has("KEY FINGERPRINT");

    // Nothing but ciphertext is stored, under names that say nothing about the contents.
    let stored = server.stored_bytes();
    assert!(
        !stored.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
        "plaintext reached the provider"
    );
    for name in server.object_names() {
        let rest = name.strip_prefix("phone/").unwrap();
        assert!(
            rest.starts_with("backups/") || rest.starts_with("segments/"),
            "unexpected object {name}"
        );
    }

    // verify: the whole backup is authenticated, and nothing is written.
    for id in [&first, &third] {
        d.coffer()
            .json()
            .args(["verify", "--backup", id])
            .run()
            .ok()
            .stdout_has("\"verified\"");
    }

    // restore on a brand-new device: only the key and the URL are needed.
    let phone = Device {
        tmp: tempfile::tempdir().unwrap(),
        profile: PathBuf::new(),
        env: server.env(),
        key: d.key.clone(),
    };
    let target = phone.path("restored");
    coffer(&phone.path("new-profile"))
        .envs(&phone.env)
        .args(["restore", "--key-stdin", "--from", &url, "--into"])
        .arg(&target)
        .stdin(format!("{}\n", d.key))
        .run()
        .ok();
    assert_same_tree(&src, &target.join(src.file_name().unwrap()));
    // An older backup restores as it was.
    let older = d.restore("older", Some(&second));
    let name = src.file_name().unwrap();
    assert_eq!(
        std::fs::read_to_string(older.join(name).join("version.txt")).unwrap(),
        "second"
    );

    // prune: by count, then by age; the newest always stays.
    let v = d
        .coffer()
        .json()
        .args(["prune", "--keep", "2"])
        .run()
        .ok()
        .json();
    assert_eq!(v["removed"], serde_json::json!([first]));
    assert_eq!(d.list_ids(), [second.clone(), third.clone()]);
    d.coffer()
        .args(["prune", "--older-than", "0s", "--dry-run"])
        .run()
        .ok()
        .stdout_has("Would delete");
    assert_eq!(
        d.list_ids(),
        [second.clone(), third.clone()],
        "a dry run deletes nothing"
    );
    d.coffer().args(["prune", "--older-than", "0s"]).run().ok();
    assert_eq!(d.list_ids(), std::slice::from_ref(&third));
    // Nothing of the pruned backups is left behind.
    let names = server.object_names();
    assert!(
        names.iter().all(|n| n.contains(&third)),
        "left after prune: {names:?}"
    );
    d.assert_restores(&src, "after-prune");
}

trait CallEnv {
    fn envs(self, env: &[(&'static str, String)]) -> Self;
}

impl CallEnv for Call {
    fn envs(mut self, env: &[(&'static str, String)]) -> Self {
        for (k, v) in env {
            self = self.env(k, v);
        }
        self
    }
}

#[test]
fn s3_full_cycle() {
    full_cycle(Server::s3());
}

#[test]
fn webdav_full_cycle() {
    full_cycle(Server::webdav());
}

#[test]
fn gcs_full_cycle() {
    full_cycle(Server::gcs());
}

#[test]
fn azure_full_cycle() {
    full_cycle(Server::azure());
}

// ---------------------------------------------------------------------------------------
// Faults, through the proxy
// ---------------------------------------------------------------------------------------

/// A device whose storage is reached through a fault proxy. `extra` adds URL settings
/// (short timeouts, fewer retries) so that failures come quickly.
fn behind_proxy(server: &Server, extra: &str) -> (FaultProxy, Device) {
    let proxy = FaultProxy::start(server.addr());
    let url = server.url(&proxy.addr().to_string(), extra);
    let d = Device::enable(server, &url);
    (proxy, d)
}

/// The backups listed, and checks that each one listed restores.
#[track_caller]
fn assert_listed_backups_intact(d: &Device, want: &[&String]) {
    let ids = d.list_ids();
    let want: Vec<&str> = want.iter().map(|s| s.as_str()).collect();
    assert_eq!(ids, want, "listed backups");
    for id in &ids {
        d.coffer().args(["verify", "--backup", id]).run().ok();
    }
}

fn cut_mid_upload(server: Server) {
    let (proxy, d) = behind_proxy(&server, "retries=4");
    let src = data(&d, 12 << 20);
    let kept = d.backup(&[&src]);

    // One connection is cut 3 MB into the upload: the request is retried and the backup
    // completes.
    proxy.set(Fault::CutUpload {
        after_bytes: 3 << 20,
        times: Some(1),
    });
    let retried = d
        .coffer()
        .json()
        .arg("backup")
        .arg(&src)
        .run()
        .ok()
        .stderr_has("retry")
        .json()["backup"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(proxy.stats().cut, 1);
    proxy.clear();
    assert_listed_backups_intact(&d, &[&kept, &retried]);

    // Every connection is cut: the backup fails, says why, and nothing new is listed.
    proxy.set(Fault::CutUpload {
        after_bytes: 1 << 20,
        times: None,
    });
    let out = d.coffer().arg("backup").arg(&src).run();
    out.code(IO).stderr_has("upload").stderr_has("kept failing");
    proxy.clear();
    assert_listed_backups_intact(&d, &[&kept, &retried]);
    d.assert_restores(&src, "restored");
}

#[test]
fn s3_cut_mid_upload() {
    cut_mid_upload(Server::s3());
}

#[test]
fn webdav_cut_mid_upload() {
    cut_mid_upload(Server::webdav());
}

#[test]
fn azure_cut_mid_upload() {
    cut_mid_upload(Server::azure());
}

/// A download cut halfway resumes where it stopped, and the restore completes (a download
/// that keeps making progress keeps going); a server whose answers are always cut before
/// any data fails cleanly once the retries are spent.
fn cut_mid_download(server: Server) {
    let (proxy, d) = behind_proxy(&server, "retries=3");
    let src = data(&d, 12 << 20);
    d.backup(&[&src]);
    proxy.set(Fault::CutDownload {
        after_bytes: 4 << 20,
        times: Some(1),
    });
    let target = d.path("restored");
    d.coffer()
        .arg("restore")
        .arg("--into")
        .arg(&target)
        .run()
        .ok()
        .stderr_has("retry 1 of 3");
    assert_eq!(proxy.stats().cut, 1);
    assert_same_tree(&src, &target.join(src.file_name().unwrap()));

    proxy.set(Fault::CutDownload {
        after_bytes: 100,
        times: None,
    });
    let again = d.path("again");
    d.coffer()
        .arg("restore")
        .arg("--into")
        .arg(&again)
        .run()
        .code(IO)
        .stderr_has("kept failing, also when retried");
    assert_nothing_left(&again);
}

#[test]
fn s3_cut_mid_download() {
    cut_mid_download(Server::s3());
}

#[test]
fn webdav_cut_mid_download() {
    cut_mid_download(Server::webdav());
}

fn server_errors(server: Server) {
    let (proxy, d) = behind_proxy(&server, "retries=3");
    let src = data(&d, 9 << 20);

    // A few 503s and 500s: retried with backoff, and the work completes.
    proxy.set(Fault::ErrorStatus {
        status: 503,
        times: Some(2),
    });
    let first = d.backup(&[&src]);
    assert_eq!(proxy.stats().error_responses, 2);
    proxy.set(Fault::ErrorStatus {
        status: 500,
        times: Some(2),
    });
    d.assert_restores(&src, "restored");
    assert_eq!(proxy.stats().error_responses, 4);

    // A server that keeps failing: a clear error once the retries are spent, and the
    // backup made before is still listed, alone.
    proxy.set(Fault::ErrorStatus {
        status: 503,
        times: None,
    });
    let out = d.coffer().arg("backup").arg(&src).run();
    out.code(IO)
        .stderr_has("kept failing, also when retried (HTTP 503)")
        .stderr_has("(HTTP 503); retry 3 of 3");
    let out = d.coffer().arg("list").run();
    out.code(IO).stderr_has("list backups");
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains(SECRET), "a credential was printed: {text}");
    }
    proxy.clear();
    assert_listed_backups_intact(&d, &[&first]);
}

#[test]
fn s3_server_errors() {
    server_errors(Server::s3());
}

#[test]
fn webdav_server_errors() {
    server_errors(Server::webdav());
}

#[test]
fn slow_network_still_completes() {
    let server = Server::s3();
    let (proxy, d) = behind_proxy(&server, "");
    let src = data(&d, 1 << 20);
    proxy.set(Fault::Slow {
        delay: Duration::from_millis(2),
        piece: 16 << 10,
    });
    let id = d.backup(&[&src]);
    d.assert_restores(&src, "restored");
    assert_eq!(d.list_ids(), [id]);
}

#[test]
fn stalled_server_times_out() {
    let server = Server::s3();
    let (proxy, d) = behind_proxy(&server, "timeout=2s&retries=1");
    let src = data(&d, 1 << 20);
    let kept = d.backup(&[&src]);
    proxy.set(Fault::Stall);
    let out = d.coffer().arg("backup").arg(&src).run();
    out.code(IO).stderr_has("timed out");
    let out = d.coffer().arg("list").run();
    out.code(IO).stderr_has("timed out");
    proxy.clear();
    assert_listed_backups_intact(&d, &[&kept]);
}

fn corrupted_download(server: Server) {
    let (proxy, d) = behind_proxy(&server, "");
    let src = data(&d, 3 << 20);
    let id = d.backup(&[&src]);

    // One bit flipped on the way down: the restore stops with an integrity error and
    // leaves nothing behind; verify says the same.
    proxy.set(Fault::CorruptDownload {
        at: 1 << 20,
        times: None,
    });
    let target = d.path("restored");
    d.coffer()
        .arg("restore")
        .arg("--into")
        .arg(&target)
        .run()
        .code(INTEGRITY)
        .stderr_has("integrity");
    assert_nothing_left(&target);
    d.coffer()
        .arg("verify")
        .run()
        .code(INTEGRITY)
        .stderr_has(&id);
    assert!(proxy.stats().corrupted >= 2);

    // The stored backup itself was never damaged.
    proxy.clear();
    d.assert_restores(&src, "restored");
}

#[test]
fn s3_corrupted_download() {
    corrupted_download(Server::s3());
}

#[test]
fn webdav_corrupted_download() {
    corrupted_download(Server::webdav());
}

/// A backup killed mid-upload is never listed; the next one works.
fn killed_mid_upload(server: Server) {
    let (proxy, d) = behind_proxy(&server, "");
    let src = data(&d, 40 << 20);
    let kept = d.backup(&[&src]);
    proxy.set(Fault::Slow {
        delay: Duration::from_millis(1),
        piece: 64 << 10,
    });
    let before = proxy.stats().bytes_up;
    let mut child: Child = d.coffer().arg("backup").arg(&src).spawn_quiet();
    // Kill once a good part of the upload has gone out (a guard stops a hung test).
    for _ in 0..6000 {
        if proxy.stats().bytes_up - before > 12 << 20 {
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    child.wait().unwrap();
    proxy.clear();
    assert_listed_backups_intact(&d, &[&kept]);
    let next = d.backup(&[&src]);
    assert_listed_backups_intact(&d, &[&kept, &next]);
}

#[test]
fn s3_killed_mid_upload() {
    killed_mid_upload(Server::s3());
}

#[test]
fn webdav_killed_mid_upload() {
    killed_mid_upload(Server::webdav());
}

/// Segments a killed upload left behind are removed once they are a day old; younger
/// ones may belong to a backup still running on another device.
#[test]
fn webdav_abandoned_segments_are_cleaned_up() {
    let server = Server::webdav();
    let url = server.url(&server.addr().to_string(), "");
    let d = Device::enable(&server, &url);
    let src = data(&d, 1 << 20);
    let kept = d.backup(&[&src]);
    let Server::Dav(dav) = &server else {
        unreachable!()
    };
    let segments = dav.root.join("dav/phone/segments");
    let backups = dav.root.join("dav/phone/backups");
    // Two complete backups from long ago: one intact (a fresh backup's payload sealed
    // again under an old id, since the id is in its authenticated header), one a fresh
    // backup renamed, with its segment list damaged. Age alone must never remove a
    // backup's segments.
    let old = [
        "20210101T000000000Z-00c0ffee".to_string(),
        "20210102T000000000Z-00c0ffee".to_string(),
    ];
    let id = d.backup(&[&src]);
    let payload = d.path("payload.tar.zst");
    d.coffer()
        .args(["decrypt", "--backup", &id, "--output"])
        .arg(&payload)
        .run()
        .ok();
    let key = coffer_format::BackupKey::parse(&d.key).unwrap();
    let old_id = coffer_format::BackupId::parse(&old[0]).unwrap();
    let sealed = coffer_format::encrypt_to_vec(
        &key,
        coffer_format::Cipher::Aes256Gcm,
        &old_id,
        &std::fs::read(&payload).unwrap(),
    )
    .unwrap();
    assert!(sealed.len() < 5 << 20, "one segment");
    std::fs::create_dir_all(segments.join(&old[0])).unwrap();
    std::fs::write(segments.join(&old[0]).join("000000"), &sealed).unwrap();
    std::fs::write(
        backups.join(format!("{}.segments", old[0])),
        format!("coffer-segments 1\n{}\n", sealed.len()),
    )
    .unwrap();
    std::fs::remove_dir_all(segments.join(&id)).unwrap();
    std::fs::remove_file(backups.join(format!("{id}.segments"))).unwrap();
    let id = d.backup(&[&src]);
    std::fs::rename(segments.join(&id), segments.join(&old[1])).unwrap();
    std::fs::write(backups.join(format!("{}.segments", old[1])), b"damaged").unwrap();
    std::fs::remove_file(backups.join(format!("{id}.segments"))).unwrap();
    for id in [
        "20200101T000000000Z-0badc0de",
        "29990101T000000000Z-0badc0de",
    ] {
        std::fs::create_dir_all(segments.join(id)).unwrap();
        std::fs::write(segments.join(id).join("000000"), b"partial").unwrap();
    }
    d.coffer().args(["prune", "--keep", "5"]).run().ok();
    assert!(!segments.join("20200101T000000000Z-0badc0de").exists());
    assert!(segments.join("29990101T000000000Z-0badc0de").exists());
    assert!(
        segments.join(&kept).exists(),
        "a complete backup's segments stay"
    );
    assert!(segments.join(&old[0]).exists() && segments.join(&old[1]).exists());
    assert_listed_backups_intact(&d, &[&old[0], &kept]);
}

/// A missing bucket is an error that says so, not an empty listing.
#[test]
fn a_missing_bucket_is_named() {
    let server = Server::s3();
    let url = server
        .url(&server.addr().to_string(), "retries=0")
        .replace(BUCKET, "no-such-bucket");
    let d = Device::enable(&server, &url);
    d.coffer()
        .arg("list")
        .run()
        .code(NOT_FOUND)
        .stderr_has("no-such-bucket")
        .stderr_has("does not exist");
}

/// Wrong credentials: refused with a clear reason, and the credential is never printed.
#[test]
fn wrong_credentials_are_named_but_never_shown() {
    let server = Server::webdav();
    let url = server.url(&server.addr().to_string(), "retries=0");
    let mut d = Device::enable(&server, &url);
    let wrong = "coffer-wrong-password-51d2";
    d.env = vec![("COFFER_WEBDAV_PASSWORD", wrong.into())];
    let src = data(&d, 1 << 10);
    for args in [vec!["backup", src.to_str().unwrap()], vec!["list"]] {
        let out = d.coffer().args(&args).run();
        out.code(IO).stderr_has("access denied");
        for text in [&out.stdout, &out.stderr] {
            assert!(!text.contains(wrong) && !text.contains(SECRET), "{text}");
        }
    }
    // The URL itself refuses to carry a secret.
    d.coffer()
        .args(["list", "--from"])
        .arg(format!("{url}&password={wrong}"))
        .run()
        .code(USAGE)
        .stderr_has("is a secret");
}

/// Damage to a segmented backup, made directly in the WebDAV server's files: a flipped
/// byte, segments swapped, a segment cut short or missing. Each makes `verify` fail and
/// names the backup; none makes it pass.
#[test]
fn webdav_damaged_segments_are_detected() {
    let server = Server::webdav();
    let url = server.url(&server.addr().to_string(), "retries=0");
    let d = Device::enable(&server, &url);
    let src = data(&d, 20 << 20);
    let id = d.backup(&[&src]);
    let Server::Dav(dav) = &server else {
        unreachable!()
    };
    let dir = dav.root.join("dav/phone/segments").join(&id);
    let seg = |n: usize| dir.join(format!("{n:06}"));
    let count = std::fs::read_dir(&dir).unwrap().count();
    assert!(count >= 3, "20 MiB makes several segments, not {count}");
    let pristine: Vec<Vec<u8>> = (0..count).map(|n| std::fs::read(seg(n)).unwrap()).collect();
    let restore_pristine = || {
        for (n, bytes) in pristine.iter().enumerate() {
            std::fs::write(seg(n), bytes).unwrap();
        }
    };

    // A flipped byte in the middle segment.
    let mut bad = pristine[1].clone();
    bad[4096] ^= 0x40;
    std::fs::write(seg(1), &bad).unwrap();
    d.coffer()
        .arg("verify")
        .run()
        .code(INTEGRITY)
        .stderr_has(&id);
    restore_pristine();

    // Two full segments swapped.
    std::fs::write(seg(0), &pristine[1]).unwrap();
    std::fs::write(seg(1), &pristine[0]).unwrap();
    d.coffer().arg("verify").run().code(INTEGRITY);
    restore_pristine();

    // A segment cut short, and one missing.
    std::fs::write(seg(1), &pristine[1][..1000]).unwrap();
    d.coffer()
        .arg("verify")
        .run()
        .code(INTEGRITY)
        .stderr_has(&id);
    std::fs::remove_file(seg(1)).unwrap();
    d.coffer()
        .arg("verify")
        .run()
        .code(INTEGRITY)
        .stderr_has("000001 is missing");
    restore_pristine();
    d.coffer().arg("verify").run().ok();

    // A damaged segment list: the backup is skipped with a note, and the others (none
    // here) are still listed.
    let list_file = dav
        .root
        .join("dav/phone/backups")
        .join(format!("{id}.segments"));
    let good = std::fs::read(&list_file).unwrap();
    std::fs::write(&list_file, b"coffer-segments 1\n12x\n").unwrap();
    let out = d.coffer().json().arg("list").run();
    out.ok().stderr_has("is not listed").stderr_has(&id);
    assert_eq!(out.json()["backups"], serde_json::json!([]));
    std::fs::write(&list_file, good).unwrap();
    assert_eq!(d.list_ids(), [id]);
}

/// Credentials can live in the profile's `[storage_options]` instead of the environment;
/// they survive the profile being rewritten and are never shown.
#[test]
fn credentials_from_the_profile() {
    let server = Server::webdav();
    let url = server.url(&server.addr().to_string(), "");
    let mut d = Device::enable(&server, &url);
    d.env.clear();
    let src = data(&d, 1 << 10);
    d.coffer()
        .arg("backup")
        .arg(&src)
        .run()
        .code(IO)
        .stderr_has("access denied");
    let config = d.profile.join("config.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!("\n[storage_options]\npassword = \"{SECRET}\"\n"));
    std::fs::write(&config, text).unwrap();
    let first = d.backup(&[&src]);
    let second = d.backup(&[&src]);
    assert_eq!(d.list_ids(), [first, second]);
    assert!(std::fs::read_to_string(&config)
        .unwrap()
        .contains("[storage_options]"));
    for args in [vec!["status"], vec!["--json", "status"], vec!["list"]] {
        let out = d.coffer().args(&args).run();
        out.ok();
        assert!(!out.stdout.contains(SECRET) && !out.stderr.contains(SECRET));
    }
    // Settings that are not the provider's are refused by name.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[storage_options]\n",
        "[storage_options]\ncolour = \"blue\"\n",
    );
    std::fs::write(&config, text).unwrap();
    d.coffer()
        .arg("list")
        .run()
        .code(USAGE)
        .stderr_has("\"colour\" is not a webdav:// setting");
}
