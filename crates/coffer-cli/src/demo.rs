//! `coffer demo`: a whole backup and restore on embedded defaults, told step by step.

use std::fs;
use std::os::unix::fs::{symlink, DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use coffer_client::{BackupOptions, ClientError, Profile, Storage, StorageUrl};
use coffer_format::BackupKey;
use serde_json::json;

use crate::output::{human_bytes, Output};
use crate::treecmp;

/// A sentence that appears in the sample chats, to show the stored backup hides it.
const SECRET_LINE: &str = "the spare key is under the blue flowerpot";

pub async fn run(out: &Output, keep: Option<PathBuf>) -> Result<()> {
    let (_temp, root) = match keep {
        Some(dir) => {
            if dir.exists() {
                bail!(ClientError::Usage(format!(
                    "{} already exists; name a new folder",
                    dir.display()
                )));
            }
            fs::create_dir_all(&dir)?;
            (None, dir)
        }
        None => {
            let t = tempfile::Builder::new().prefix("coffer-demo-").tempdir()?;
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    };
    let phone_a = root.join("phone-a");
    let phone_b = root.join("phone-b");
    // The phones' profiles live in here: owner-only whatever the umask, as Coffer refuses
    // a profile that other users could change.
    fs::set_permissions(&root, fs::Permissions::from_mode(0o700))?;
    for phone in [&phone_a, &phone_b] {
        fs::DirBuilder::new().mode(0o700).create(phone)?;
    }
    let cloud = root.join("cloud-drive");
    let chats = phone_a.join("chat-history");
    let step = |n: u32, text: &str| out.say(format!("\n[{n}/11] {text}"));

    out.say(format!("Coffer demo in {}", root.display()));
    step(
        1,
        "Phone A has a chat history: a SQLite message database and media files.",
    );
    let made = make_chat_history(&chats)?;
    out.say(format!(
        "      {} messages in {} chats, {} media files, {} in all.",
        made.messages,
        made.chats,
        made.media,
        human_bytes(made.bytes)
    ));

    step(
        2,
        "Phone A turns on end-to-end encrypted backups with a 64-digit key (coffer enable --key).",
    );
    let profile_a = Profile::at(phone_a.join("coffer-profile"));
    let key = BackupKey::generate()?;
    profile_a.save_key(&key)?;
    let written_down = key.to_display();
    out.say(format!(
        "      The key, shown once; the user writes it down:\n        {}",
        written_down.as_str()
    ));

    step(
        3,
        "Phone A makes a backup to its cloud drive (a folder here) (coffer backup).",
    );
    let storage = Storage::open(&StorageUrl::Fs {
        root: cloud.clone(),
    })?;
    let t = Instant::now();
    let report = coffer_client::backup(
        &storage,
        &key,
        std::slice::from_ref(&chats),
        BackupOptions::default(),
        out.progress(),
    )
    .await?;
    out.say(format!(
        "      Backup {}: {} of files became {} stored ({}), in {:.2} s.",
        report.id,
        human_bytes(report.contents.bytes),
        human_bytes(report.stored_bytes),
        report.cipher,
        t.elapsed().as_secs_f64()
    ));
    let stored_file = cloud.join("backups").join(format!("{}.coffer", report.id));
    let stored = fs::read(&stored_file).context("reading the stored backup")?;
    let leaked = stored
        .windows(SECRET_LINE.len())
        .any(|w| w == SECRET_LINE.as_bytes());
    if leaked {
        bail!("the stored backup contains plaintext");
    }
    out.say(format!(
        "      The cloud drive holds only ciphertext: the message \"{SECRET_LINE}\" is not in it."
    ));

    step(4, "Phone A is lost. Phone B starts with an empty profile, the cloud drive and the written-down key.");
    let profile_b = Profile::at(phone_b.join("coffer-profile"));
    let wrong = BackupKey::generate()?;
    let target = phone_b.join("restored");
    match coffer_client::restore(&storage, &wrong, None, &target, out.progress()).await {
        Err(ClientError::WrongKey) => out.say(
            "      A mistyped key is refused at once: \"this key does not belong to this backup\".",
        ),
        Err(e) => bail!("a wrong key gave an unexpected error: {e}"),
        Ok(_) => bail!("a wrong key restored a backup"),
    }
    if target.exists() {
        bail!("a failed restore left files behind");
    }

    step(
        5,
        "Phone B restores with the key as typed (coffer restore --key-stdin).",
    );
    let typed = BackupKey::parse(&written_down.to_uppercase().replace(' ', "-"))?;
    let t = Instant::now();
    let restored = coffer_client::restore(&storage, &typed, None, &target, out.progress()).await?;
    profile_b.save_key(&typed)?;
    out.say(format!(
        "      Restored {} files, {} folders and {} symlinks in {:.2} s.",
        restored.contents.files,
        restored.contents.directories,
        restored.contents.symlinks,
        t.elapsed().as_secs_f64()
    ));

    step(
        6,
        "Checking that phone B's chat history is identical to phone A's.",
    );
    let stats = match treecmp::compare(&chats, &target.join("chat-history"))? {
        Ok(s) => s,
        Err(diff) => bail!("the restored tree is not identical: {diff}"),
    };
    out.say(format!(
        "      Identical: {} files, {} folders, {} symlinks, {} byte for byte, with permissions, times and names.",
        stats.files,
        stats.dirs,
        stats.symlinks,
        human_bytes(stats.bytes)
    ));

    step(
        7,
        "Tampering is caught: one flipped bit in the stored backup fails verification.",
    );
    let mut bad = stored.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    fs::write(&stored_file, &bad)?;
    match coffer_client::verify(&storage, &typed, None, out.progress()).await {
        Err(e @ ClientError::Integrity { .. }) => out.say(format!("      {e}")),
        Err(e) => bail!("tampering gave an unexpected error: {e}"),
        Ok(_) => bail!("a tampered backup verified"),
    }
    fs::write(&stored_file, &stored)?;

    crate::demo_password::run(out, &root, &chats).await?;

    out.json(json!({
        "ok": true,
        "root": root,
        "backup": report,
        "restored": restored,
        "identical": true,
    }));
    out.say("\nDone: backed up, lost, restored on a new phone, identical, with a 64-digit key and with a password.");
    Ok(())
}

struct Made {
    chats: u32,
    messages: u32,
    media: u32,
    bytes: u64,
}

/// A small deterministic generator, so the sample data looks the same every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: &[&str] = &[
    "hey", "are", "we", "still", "on", "for", "dinner", "tonight", "running", "late", "sorry",
    "see", "you", "at", "the", "station", "photos", "from", "trip", "love", "these", "call", "me",
    "when", "free", "happy", "birthday", "🎉", "ok", "thanks", "café", "tomorrow",
];

fn make_chat_history(dir: &Path) -> Result<Made> {
    let media = dir.join("Media");
    for sub in ["Images", "Voice Notes", "Documents", "Stickers"] {
        fs::create_dir_all(media.join(sub))?;
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let db_path = dir.join("msgstore.db");
    let mut db = rusqlite::Connection::open(&db_path)?;
    db.execute_batch(
        "CREATE TABLE chats (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         CREATE TABLE messages (id INTEGER PRIMARY KEY, chat_id INTEGER NOT NULL REFERENCES chats(id),
             from_me INTEGER NOT NULL, sent_at INTEGER NOT NULL, body TEXT NOT NULL);
         CREATE INDEX messages_by_chat ON messages(chat_id, sent_at);",
    )?;
    let names = [
        "Mum",
        "Alex",
        "Sam",
        "Book club",
        "Flatmates",
        "Priya",
        "José",
        "Work",
    ];
    let (chats, messages) = (names.len() as u32, 20_000u32);
    let tx = db.transaction()?;
    for (i, n) in names.iter().enumerate() {
        tx.execute(
            "INSERT INTO chats (id, name) VALUES (?1, ?2)",
            (i as i64 + 1, n),
        )?;
    }
    {
        let mut ins = tx.prepare(
            "INSERT INTO messages (chat_id, from_me, sent_at, body) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let mut t = 1_700_000_000i64;
        for m in 0..messages {
            t += rng.below(600) as i64;
            let body = if m == 4242 {
                SECRET_LINE.to_string()
            } else {
                let len = 2 + rng.below(14) as usize;
                (0..len)
                    .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize])
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let chat = 1 + rng.below(chats as u64) as i64;
            ins.execute((chat, (rng.next() & 1) as i64, t, body))?;
        }
    }
    tx.commit()?;
    drop(db);
    fs::set_permissions(&db_path, fs::Permissions::from_mode(0o600))?;

    let mut media_count = 0;
    let mut put = |path: PathBuf, len: usize| -> Result<()> {
        let mut data = vec![0u8; len];
        coffer_format::key::fill_random(&mut data)?;
        fs::write(&path, data)?;
        let age = Duration::from_secs(86_400 * (1 + media_count as u64));
        filetime::set_file_mtime(
            &path,
            filetime::FileTime::from_system_time(SystemTime::now() - age),
        )?;
        media_count += 1;
        Ok(())
    };
    for i in 1..=12 {
        let len = 150_000 + rng.below(250_000) as usize;
        put(
            media
                .join("Images")
                .join(format!("IMG-20261127-WA{i:04}.jpg")),
            len,
        )?;
    }
    for i in 1..=5 {
        let len = 20_000 + rng.below(60_000) as usize;
        put(
            media
                .join("Voice Notes")
                .join(format!("PTT-20261127-WA{i:04}.opus")),
            len,
        )?;
    }
    put(media.join("Documents").join("Résumé – 2026.pdf"), 90_000)?;
    fs::write(
        media.join("Documents").join("メモ.txt"),
        "買い物リスト: 牛乳, パン\n",
    )?;
    fs::write(media.join(".nomedia"), b"")?;
    symlink(
        "Media/Images/IMG-20261127-WA0001.jpg",
        dir.join("wallpaper.jpg"),
    )?;
    let bytes = crate::treecmp::compare(dir, dir)?
        .map(|s| s.bytes)
        .unwrap_or_default();
    Ok(Made {
        chats,
        messages,
        media: media_count + 1,
        bytes,
    })
}
