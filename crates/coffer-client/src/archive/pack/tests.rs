//! Packing under attack: files that shrink, grow or are swapped while the backup reads them.

use super::*;
use std::os::unix::fs::symlink;
use std::sync::mpsc;
use std::time::Duration;

/// What is done to a file behind the packer's back.
type Meddle = Box<dyn FnOnce(&Path)>;

/// A source file that something meddles with right after the packer's first read.
struct Meddled {
    file: fs::File,
    path: PathBuf,
    meddle: Option<Meddle>,
}

impl Read for Meddled {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        if let Some(meddle) = self.meddle.take() {
            meddle(&self.path);
        }
        Ok(n)
    }
}

impl SourceFile for Meddled {
    fn metadata_now(&self) -> io::Result<fs::Metadata> {
        self.file.metadata()
    }
}

/// A 1 MiB file of varied bytes, opened; the packer reads it in four pieces.
fn big_file(dir: &Path) -> (PathBuf, Vec<u8>) {
    let path = dir.join("chat.db");
    let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8 + 1).collect();
    fs::write(&path, &data).unwrap();
    (path, data)
}

fn append_meddled(
    path: &Path,
    meddle: impl FnOnce(&Path) + 'static,
) -> (Result<Option<SourceChange>, ClientError>, Vec<u8>) {
    let file = fs::File::open(path).unwrap();
    let md = file.metadata().unwrap();
    let mut source = Meddled {
        file,
        path: path.to_path_buf(),
        meddle: Some(Box::new(meddle)),
    };
    let mut b = Builder::new(Vec::new());
    let res = append_file(&mut b, &mut source, &md, path, Path::new("chat.db"));
    (res, b.into_inner().unwrap())
}

/// The entries of a tar: (path, type, contents).
fn entries(tar: &[u8]) -> Vec<(String, EntryType, Vec<u8>)> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let kind = e.header().entry_type();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (path, kind, data)
        })
        .collect()
}

#[test]
fn a_file_that_shrinks_while_read_fails_instead_of_becoming_zeros() {
    let d = tempfile::tempdir().unwrap();
    let (path, _) = big_file(d.path());
    let (res, _) = append_meddled(&path, |p| {
        fs::OpenOptions::new()
            .write(true)
            .open(p)
            .unwrap()
            .set_len(100_000)
            .unwrap();
    });
    match res {
        Err(ClientError::SourceShrank {
            path: p,
            size,
            read,
        }) => {
            assert_eq!(
                (p, size, read),
                (path.clone(), 1 << 20, (FILE_IO / 4) as u64)
            );
        }
        other => panic!("a shrunk file was not refused: {other:?}"),
    }
    let err = ClientError::SourceShrank {
        path: path.clone(),
        size: 1,
        read: 0,
    };
    assert!(err.to_string().contains(&path.display().to_string()));
    assert!(err.to_string().contains("run the backup again"));
    assert!(err.is_retryable());
}

#[test]
fn a_file_that_grows_while_read_keeps_the_bytes_read_and_is_reported() {
    let d = tempfile::tempdir().unwrap();
    let (path, data) = big_file(d.path());
    let (res, tar) = append_meddled(&path, |p| {
        let mut f = fs::OpenOptions::new().append(true).open(p).unwrap();
        f.write_all(b"appended meanwhile").unwrap();
    });
    assert_eq!(
        res.unwrap(),
        Some(SourceChange::Grew {
            read: 1 << 20,
            now: (1 << 20) + 18
        })
    );
    let got = entries(&tar);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].2, data,
        "the entry holds exactly the bytes first seen"
    );
}

#[test]
fn a_file_written_in_place_while_read_is_reported() {
    let d = tempfile::tempdir().unwrap();
    let (path, _) = big_file(d.path());
    let (res, _) = append_meddled(&path, |p| {
        let f = fs::OpenOptions::new().write(true).open(p).unwrap();
        // A new modification time, as any write would give it.
        f.set_modified(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1))
            .unwrap();
    });
    assert_eq!(res.unwrap(), Some(SourceChange::Modified));
    let (res, _) = append_meddled(&path, |_| {});
    assert_eq!(res.unwrap(), None, "an untouched file raises no warning");
}

#[test]
fn a_file_written_with_its_modification_time_put_back_is_reported() {
    use std::io::{Seek, SeekFrom, Write};
    use std::os::unix::fs::MetadataExt;
    let d = tempfile::tempdir().unwrap();
    let (path, _) = big_file(d.path());
    let (res, _) = append_meddled(&path, |p| {
        // What `rsync --inplace -t` or `cp -p` onto the file do: new bytes, old mtime.
        let before = fs::metadata(p).unwrap();
        let mut f = fs::OpenOptions::new().write(true).open(p).unwrap();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.write_all(b"HEADHEAD").unwrap();
        f.set_modified(before.modified().unwrap()).unwrap();
        let after = fs::metadata(p).unwrap();
        assert_eq!(
            (after.mtime(), after.mtime_nsec(), after.len()),
            (before.mtime(), before.mtime_nsec(), before.len()),
            "size and mtime look untouched"
        );
    });
    assert_eq!(res.unwrap(), Some(SourceChange::Modified));
}

/// Packs `src`, running `swap` on the entry at `victim` between its lstat and its open.
fn pack_swapping(
    src: &Path,
    victim: PathBuf,
    swap: impl Fn(&Path) + Send + 'static,
) -> (PackReport, Vec<u8>) {
    let src = src.to_path_buf();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let hook = |p: &Path| {
            if p == victim {
                swap(p)
            }
        };
        let _ = tx.send(pack_with(&[src], Vec::new(), &hook));
    });
    // A guard against a hang (a FIFO waited on), never a timing assertion.
    rx.recv_timeout(Duration::from_secs(120))
        .expect("packing hung")
        .unwrap()
}

#[test]
fn a_file_swapped_for_a_fifo_is_skipped_with_a_warning_not_waited_on() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("a"), b"a").unwrap();
    fs::write(src.join("db"), b"db").unwrap();
    let victim = src.join("db");
    let (report, tar) = pack_swapping(&src, victim.clone(), |p| {
        fs::remove_file(p).unwrap();
        rustix::fs::mkfifoat(rustix::fs::CWD, p, rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
    });
    assert_eq!(
        report.warnings,
        vec![SourceWarning {
            path: victim,
            change: SourceChange::Replaced {
                was: "file",
                now: "FIFO"
            }
        }]
    );
    let names: Vec<String> = entries(&tar).into_iter().map(|e| e.0).collect();
    assert_eq!(names, ["src", "src/a"]);
}

#[test]
fn a_file_or_folder_swapped_for_a_symlink_is_not_followed() {
    let d = tempfile::tempdir().unwrap();
    let secret = b"outside the backup source";
    fs::create_dir(d.path().join("outside")).unwrap();
    fs::write(d.path().join("outside/secret"), secret).unwrap();
    let src = d.path().join("src");
    fs::create_dir_all(src.join("media")).unwrap();
    fs::write(src.join("media/photo"), b"photo").unwrap();
    fs::write(src.join("db"), b"db").unwrap();

    let outside = d.path().join("outside");
    let target = outside.join("secret");
    let (report, tar) = pack_swapping(&src, src.join("db"), move |p| {
        fs::remove_file(p).unwrap();
        symlink(&target, p).unwrap();
    });
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(entries(&tar).iter().all(|e| e.2 != secret));

    let (report, tar) = pack_swapping(&src, src.join("media"), move |p| {
        fs::rename(p, p.with_file_name("media.old")).unwrap();
        symlink(&outside, p).unwrap();
    });
    assert_eq!(
        report.warnings[0].change,
        SourceChange::Replaced {
            was: "folder",
            now: "symlink"
        }
    );
    let got = entries(&tar);
    assert!(
        got.iter().all(|e| e.2 != secret),
        "a swapped folder was followed"
    );
    assert!(got.iter().all(|e| !e.0.starts_with("src/media/")));
}

#[test]
fn vanished_entries_are_reported_and_the_rest_is_packed() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("journal"), b"j").unwrap();
    fs::write(src.join("keep"), b"k").unwrap();
    let (report, tar) = pack_swapping(&src, src.join("journal"), |p| fs::remove_file(p).unwrap());
    assert_eq!(report.warnings[0].change, SourceChange::Vanished);
    assert_eq!(report.summary.files, 1);
    assert_eq!(entries(&tar).len(), 2);
    // Unmeddled, the strict form packs it too.
    assert!(pack(std::slice::from_ref(&src), Vec::new()).is_ok());
}

#[test]
fn a_named_symlink_is_followed_and_stored_under_its_own_name() {
    let d = tempfile::tempdir().unwrap();
    let real = d.path().join("real-chats");
    fs::create_dir(&real).unwrap();
    fs::write(real.join("db"), b"messages").unwrap();
    fs::write(d.path().join("real-notes"), b"notes").unwrap();
    symlink(&real, d.path().join("chats")).unwrap();
    symlink(d.path().join("real-notes"), d.path().join("notes")).unwrap();
    let sources = [d.path().join("chats"), d.path().join("notes")];
    let (report, tar) = pack_reporting(&sources, Vec::new()).unwrap();
    assert!(report.warnings.is_empty());
    let got: Vec<(String, EntryType, Vec<u8>)> = entries(&tar);
    let shape: Vec<(&str, EntryType)> = got.iter().map(|e| (e.0.as_str(), e.1)).collect();
    assert_eq!(
        shape,
        [
            ("chats", EntryType::Directory),
            ("chats/db", EntryType::Regular),
            ("notes", EntryType::Regular)
        ]
    );
    assert_eq!(got[1].2, b"messages");
    assert_eq!(measure(&sources), 13);

    // A FIFO named on the command line is refused, not skipped and not waited on.
    let fifo = d.path().join("fifo");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    let res = source_names(&[fifo]);
    assert!(
        matches!(&res, Err(ClientError::Usage(m)) if m.contains("FIFO")),
        "{res:?}"
    );
}

#[test]
fn symlinks_inside_are_stored_as_symlinks() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    fs::create_dir(&src).unwrap();
    let long = "t/".repeat(80) + "target";
    symlink(&long, src.join("long")).unwrap();
    symlink("/etc/passwd", src.join("abs")).unwrap();
    let (report, tar) = pack_reporting(std::slice::from_ref(&src), Vec::new()).unwrap();
    assert_eq!(report.summary.symlinks, 2);
    let mut a = tar::Archive::new(&tar[..]);
    let links: Vec<(String, String)> = a
        .entries()
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let target = e.link_name().unwrap()?.to_string_lossy().into_owned();
            Some((e.path().unwrap().to_string_lossy().into_owned(), target))
        })
        .collect();
    assert_eq!(
        links,
        [
            ("src/abs".to_string(), "/etc/passwd".to_string()),
            ("src/long".to_string(), long)
        ]
    );
}

#[test]
fn a_tree_as_deep_as_archive_paths_allow_packs_on_a_small_stack() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    let mut deepest = src.clone();
    fs::create_dir(&deepest).unwrap();
    for _ in 0..1500 {
        deepest.push("a");
        fs::create_dir(&deepest).unwrap();
    }
    fs::write(deepest.join("f"), b"deep").unwrap();
    // Recursion needed more than a 2 MiB stack for this tree; the walk needs little.
    let packed = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || pack_reporting(&[src], io::sink()).map(|(report, _)| report))
        .unwrap()
        .join()
        .expect("packing overflowed its stack")
        .unwrap();
    assert_eq!(
        (packed.summary.directories, packed.summary.files),
        (1501, 1)
    );
}
