//! A case-insensitive folder for tests: on ext4 with casefold where the kernel has it
//! (an image on a loop device, `chattr +F`), otherwise on a small in-memory FUSE file
//! system that folds names the same way (case-insensitive, case-preserving). Both need
//! root.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use fuser::{
    FileAttr, FileType, Filesystem, MountOption, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyWrite, Request, TimeOrNow,
};

/// A mounted case-insensitive folder, unmounted on drop.
pub struct CaseInsensitive {
    /// The case-insensitive folder.
    pub dir: PathBuf,
    /// What it is, for messages.
    pub kind: &'static str,
    mount: PathBuf,
    _fuse: Option<fuser::BackgroundSession>,
}

impl CaseInsensitive {
    /// Mounts one under `mount` (created). `None`, with a message, when this is not root
    /// or neither casefold nor FUSE is available.
    pub fn mount(mount: &Path) -> Option<CaseInsensitive> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED: mounting a case-insensitive file system needs root");
            return None;
        }
        fs::create_dir_all(mount).unwrap();
        let ci = Self::ext4(mount).or_else(|| Self::fuse(mount))?;
        // Make sure that it does fold names.
        fs::write(ci.dir.join("Probe"), b"").unwrap();
        assert!(
            ci.dir.join("probe").exists(),
            "{} does not fold names",
            ci.kind
        );
        fs::remove_file(ci.dir.join("PROBE")).unwrap();
        Some(ci)
    }

    fn ext4(mount: &Path) -> Option<CaseInsensitive> {
        if !Path::new("/sys/fs/ext4/features/casefold").exists() {
            eprintln!("note: this kernel's ext4 has no casefold; trying FUSE");
            return None;
        }
        let image = mount.with_extension("img");
        let ok = |c: &mut Command| c.output().is_ok_and(|o| o.status.success());
        let made = ok(Command::new("truncate").args(["-s", "64M"]).arg(&image))
            && ok(Command::new("mkfs.ext4")
                .args(["-q", "-O", "casefold"])
                .arg(&image))
            && ok(Command::new("mount")
                .args(["-o", "loop"])
                .arg(&image)
                .arg(mount));
        if !made {
            eprintln!("note: cannot make a casefold ext4 image; trying FUSE");
            return None;
        }
        let dir = mount.join("ci");
        fs::create_dir(&dir).unwrap();
        if !ok(Command::new("chattr").arg("+F").arg(&dir)) {
            let _ = Command::new("umount").arg(mount).status();
            eprintln!("note: chattr +F failed; trying FUSE");
            return None;
        }
        Some(CaseInsensitive {
            dir,
            kind: "ext4 casefold",
            mount: mount.into(),
            _fuse: None,
        })
    }

    fn fuse(mount: &Path) -> Option<CaseInsensitive> {
        if !Path::new("/dev/fuse").exists() {
            eprintln!("SKIPPED: no casefold ext4 and no /dev/fuse here");
            return None;
        }
        let options = [
            MountOption::FSName("coffer-casefold-test".into()),
            MountOption::DefaultPermissions,
        ];
        match fuser::spawn_mount2(FoldingFs::new(), mount, &options) {
            Ok(session) => Some(CaseInsensitive {
                dir: mount.into(),
                kind: "case-insensitive FUSE",
                mount: mount.into(),
                _fuse: Some(session),
            }),
            Err(e) => {
                eprintln!("SKIPPED: no casefold ext4, and mounting FUSE failed: {e}");
                None
            }
        }
    }
}

impl Drop for CaseInsensitive {
    fn drop(&mut self) {
        if self._fuse.is_none() {
            let _ = Command::new("umount").arg(&self.mount).status();
        }
        // The FUSE session unmounts when it is dropped.
    }
}

/// Nothing is cached by the kernel: every lookup comes here and is folded.
const TTL: Duration = Duration::ZERO;

enum Content {
    Dir(Vec<(OsString, u64)>),
    File(Vec<u8>),
    Link(OsString),
}

struct Node {
    attr: FileAttr,
    content: Content,
}

/// An in-memory file system whose names compare case-insensitively (Unicode lower case),
/// and keep the case they were created with.
struct FoldingFs {
    nodes: HashMap<u64, Node>,
    next: u64,
}

fn fold(name: &OsStr) -> String {
    name.to_string_lossy().to_lowercase()
}

impl FoldingFs {
    fn new() -> FoldingFs {
        let mut fs = FoldingFs {
            nodes: HashMap::new(),
            next: fuser::FUSE_ROOT_ID,
        };
        fs.add(FileType::Directory, 0o755, 0, 0, Content::Dir(Vec::new()));
        fs
    }

    fn add(&mut self, kind: FileType, perm: u32, uid: u32, gid: u32, content: Content) -> u64 {
        let ino = self.next;
        self.next += 1;
        let now = SystemTime::now();
        let attr = FileAttr {
            ino,
            size: 0,
            blocks: 0,
            atime: now,
            mtime: now,
            ctime: now,
            crtime: now,
            kind,
            perm: (perm & 0o7777) as u16,
            nlink: if kind == FileType::Directory { 2 } else { 1 },
            uid,
            gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        };
        self.nodes.insert(ino, Node { attr, content });
        ino
    }

    fn children(&mut self, dir: u64) -> Result<&mut Vec<(OsString, u64)>, i32> {
        match self.nodes.get_mut(&dir).map(|n| &mut n.content) {
            Some(Content::Dir(c)) => Ok(c),
            Some(_) => Err(libc::ENOTDIR),
            None => Err(libc::ENOENT),
        }
    }

    fn find(&mut self, dir: u64, name: &OsStr) -> Result<Option<u64>, i32> {
        let key = fold(name);
        Ok(self
            .children(dir)?
            .iter()
            .find(|(n, _)| fold(n) == key)
            .map(|&(_, ino)| ino))
    }

    fn touch(&mut self, ino: u64) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            let now = SystemTime::now();
            n.attr.mtime = now;
            n.attr.ctime = now;
        }
    }

    fn make(
        &mut self,
        req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        kind: FileType,
        perm: u32,
        content: Content,
    ) -> Result<&FileAttr, i32> {
        if self.find(parent, name)?.is_some() {
            return Err(libc::EEXIST);
        }
        let ino = self.add(kind, perm, req.uid(), req.gid(), content);
        self.children(parent)?.push((name.to_os_string(), ino));
        self.touch(parent);
        Ok(&self.nodes[&ino].attr)
    }

    fn remove(&mut self, parent: u64, name: &OsStr, want_dir: bool) -> Result<(), i32> {
        let ino = self.find(parent, name)?.ok_or(libc::ENOENT)?;
        match (&self.nodes[&ino].content, want_dir) {
            (Content::Dir(c), true) if !c.is_empty() => return Err(libc::ENOTEMPTY),
            (Content::Dir(_), false) => return Err(libc::EISDIR),
            (Content::Dir(_), true) => {}
            (_, true) => return Err(libc::ENOTDIR),
            (_, false) => {}
        }
        self.children(parent)?.retain(|&(_, i)| i != ino);
        self.touch(parent);
        Ok(())
    }

    fn rename(&mut self, from: (u64, &OsStr), to: (u64, &OsStr), flags: u32) -> Result<(), i32> {
        let ino = self.find(from.0, from.1)?.ok_or(libc::ENOENT)?;
        let src_is_dir = matches!(self.nodes[&ino].content, Content::Dir(_));
        if flags & !libc::RENAME_NOREPLACE != 0 {
            return Err(libc::EINVAL);
        }
        if let Some(old) = self.find(to.0, to.1)? {
            if old != ino {
                if flags & libc::RENAME_NOREPLACE != 0 {
                    return Err(libc::EEXIST);
                }
                match (&self.nodes[&old].content, src_is_dir) {
                    (Content::Dir(c), true) if !c.is_empty() => return Err(libc::ENOTEMPTY),
                    (Content::Dir(_), false) => return Err(libc::EISDIR),
                    (Content::Dir(_), true) => {}
                    (_, true) => return Err(libc::ENOTDIR),
                    (_, false) => {}
                }
                self.children(to.0)?.retain(|&(_, i)| i != old);
            }
        }
        self.children(from.0)?.retain(|&(_, i)| i != ino);
        self.children(to.0)?.push((to.1.to_os_string(), ino));
        self.touch(from.0);
        self.touch(to.0);
        Ok(())
    }
}

fn time(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

impl Filesystem for FoldingFs {
    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        match self.find(parent, name) {
            Ok(Some(ino)) => reply.entry(&TTL, &self.nodes[&ino].attr, 0),
            Ok(None) => reply.error(libc::ENOENT),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        match self.nodes.get(&ino) {
            Some(n) => reply.attr(&TTL, &n.attr),
            None => reply.error(libc::ENOENT),
        }
    }

    fn setattr(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<u64>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<u32>,
        reply: ReplyAttr,
    ) {
        let Some(n) = self.nodes.get_mut(&ino) else {
            return reply.error(libc::ENOENT);
        };
        if let Some(m) = mode {
            n.attr.perm = (m & 0o7777) as u16;
        }
        n.attr.uid = uid.unwrap_or(n.attr.uid);
        n.attr.gid = gid.unwrap_or(n.attr.gid);
        if let (Some(s), Content::File(data)) = (size, &mut n.content) {
            data.resize(s as usize, 0);
            n.attr.size = s;
        }
        if let Some(t) = atime {
            n.attr.atime = time(t);
        }
        if let Some(t) = mtime {
            n.attr.mtime = time(t);
        }
        n.attr.ctime = SystemTime::now();
        reply.attr(&TTL, &n.attr);
    }

    fn readlink(&mut self, _req: &Request<'_>, ino: u64, reply: ReplyData) {
        match self.nodes.get(&ino).map(|n| &n.content) {
            Some(Content::Link(target)) => reply.data(target.as_bytes()),
            _ => reply.error(libc::EINVAL),
        }
    }

    fn mkdir(
        &mut self,
        req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let dir = Content::Dir(Vec::new());
        match self.make(req, parent, name, FileType::Directory, mode & !umask, dir) {
            Ok(attr) => reply.entry(&TTL, attr, 0),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        match self.remove(parent, name, false) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        match self.remove(parent, name, true) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn symlink(
        &mut self,
        req: &Request<'_>,
        parent: u64,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let link = Content::Link(target.as_os_str().to_os_string());
        let size = target.as_os_str().len() as u64;
        match self.make(req, parent, link_name, FileType::Symlink, 0o777, link) {
            Ok(attr) => {
                let mut attr = *attr;
                attr.size = size;
                if let Some(n) = self.nodes.get_mut(&attr.ino) {
                    n.attr.size = size;
                }
                reply.entry(&TTL, &attr, 0)
            }
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: u32,
        reply: ReplyEmpty,
    ) {
        match self.rename((parent, name), (newparent, newname), flags) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        match self.nodes.get(&ino).map(|n| &n.content) {
            Some(Content::File(data)) => {
                let start = (offset as usize).min(data.len());
                let end = (start + size as usize).min(data.len());
                reply.data(&data[start..end]);
            }
            _ => reply.error(libc::EINVAL),
        }
    }

    fn write(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        data: &[u8],
        _write_flags: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyWrite,
    ) {
        let Some(n) = self.nodes.get_mut(&ino) else {
            return reply.error(libc::ENOENT);
        };
        let Content::File(content) = &mut n.content else {
            return reply.error(libc::EINVAL);
        };
        let end = offset as usize + data.len();
        if content.len() < end {
            content.resize(end, 0);
        }
        content[offset as usize..end].copy_from_slice(data);
        n.attr.size = content.len() as u64;
        n.attr.mtime = SystemTime::now();
        reply.written(data.len() as u32);
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        let children = match self.children(ino) {
            Ok(c) => c.clone(),
            Err(e) => return reply.error(e),
        };
        let mut entries = vec![
            (ino, FileType::Directory, OsString::from(".")),
            (ino, FileType::Directory, OsString::from("..")),
        ];
        for (name, child) in children {
            entries.push((child, self.nodes[&child].attr.kind, name));
        }
        for (i, (child, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            if reply.add(child, i as i64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn create(
        &mut self,
        req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let file = Content::File(Vec::new());
        match self.make(
            req,
            parent,
            name,
            FileType::RegularFile,
            mode & !umask,
            file,
        ) {
            Ok(attr) => reply.created(&TTL, attr, 0, 0, 0),
            Err(e) => reply.error(e),
        }
    }
}
