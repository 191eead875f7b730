// SPDX-License-Identifier: GPL-2.0
//! The hello file system, shared by every version's crate root (`hello`, `hello_v2`,
//! `hello_broken`), which sets [`crate::VERSION`] and [`crate::BROKEN_IMPORT`].
//!
//! Its state is the mount time (the times of its inodes) and the `delay_ms=N` option
//! (a read of `hello` from offset 0 sleeps that long: a deliberately slow file system, for tests of the
//! upgrade's drain timeout); both are handed to the next version on live upgrade.
//! Version 2 adds a file, `version`.

use core::sync::atomic::{AtomicU32, Ordering};

use bento::bytes::{Reader, Writer};
use bento::upgrade::Handover;
use bento::{
    Attr, DirSink, Entry, Errno, FileSystem, FileType, Ino, MountOptions, Request, Result, Statfs,
    Timespec, ROOT_INO,
};

const HELLO_INO: Ino = 2;
const VERSION_INO: Ino = 3;
const HELLO_NAME: &[u8] = b"hello";
const VERSION_NAME: &[u8] = b"version";
const HELLO_DATA: &[u8] = b"Hello, world!\n";
/// The contents of `version` (version 2 on).
const VERSION_DATA: &[u8] = match crate::VERSION {
    1 => b"1\n",
    2 => b"2\n",
    _ => b"3\n",
};
/// Longest `delay_ms`.
const MAX_DELAY_MS: u32 = 60_000;
/// Handover blob: magic, delay, mount time (seconds, nanoseconds).
const STATE_MAGIC: u32 = 0x6865_6c6f;
const STATE_LEN: usize = 20;

/// Instances this module imported (`hello_broken` fails all but the first).
static IMPORTS: AtomicU32 = AtomicU32::new(0);

/// The file system: one value per mount.
pub struct HelloFs {
    /// Mount time: the times of every inode.
    mounted: Timespec,
    /// How long reads of `hello` sleep.
    delay_ms: u32,
}

impl HelloFs {
    fn has_version_file() -> bool {
        crate::VERSION >= 2
    }

    fn attr(&self, ino: Ino) -> Result<Attr> {
        let (kind, perm, nlink, size) = match ino {
            ROOT_INO => (FileType::Directory, 0o755, 2, 0),
            HELLO_INO => (FileType::RegularFile, 0o444, 1, HELLO_DATA.len() as u64),
            VERSION_INO if Self::has_version_file() => {
                (FileType::RegularFile, 0o444, 1, VERSION_DATA.len() as u64)
            }
            _ => return Err(Errno::ENOENT),
        };
        let t = self.mounted;
        Ok(Attr {
            ino,
            size,
            blocks: size.div_ceil(512),
            atime: t,
            mtime: t,
            ctime: t,
            kind,
            perm,
            nlink,
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            generation: 0,
        })
    }
}

fn parse_ms(v: &[u8]) -> Option<u32> {
    let s = core::str::from_utf8(v).ok()?;
    s.parse::<u32>().ok().filter(|&ms| ms <= MAX_DELAY_MS)
}

impl FileSystem for HelloFs {
    const STATE_VERSION: u32 = 1;

    fn mount(opts: &MountOptions<'_>) -> Result<Self> {
        let mut delay_ms = 0;
        for (key, value) in opts.iter() {
            match (key, value.and_then(parse_ms)) {
                (b"delay_ms", Some(ms)) => delay_ms = ms,
                _ => {
                    bento::error!("hello: unknown mount option '{}'", bento::log::Bytes(key));
                    return Err(Errno::EINVAL);
                }
            }
        }
        Ok(HelloFs {
            mounted: bento::time::now(),
            delay_ms,
        })
    }

    fn export_state(&self) -> Result<Handover> {
        let mut state = Handover::new(Self::STATE_VERSION, true);
        let mut w = Writer::new(state.blob_mut(STATE_LEN)?);
        w.u32(0, STATE_MAGIC);
        w.u32(4, self.delay_ms);
        w.i64(8, self.mounted.sec);
        w.u32(16, self.mounted.nsec);
        w.finish()?;
        Ok(state)
    }

    fn import_state(state: Handover) -> Result<Self> {
        let blob = state.blob();
        let r = Reader::new(blob);
        let (magic, delay_ms, sec, nsec) = (r.u32(0), r.u32(4), r.i64(8), r.u32(16));
        if r.finish().is_err() || blob.len() != STATE_LEN || magic != STATE_MAGIC {
            bento::error!("hello: bad upgrade state ({} bytes)", blob.len());
            return Err(Errno::EINVAL);
        }
        if crate::BROKEN_IMPORT && IMPORTS.load(Ordering::Relaxed) > 0 {
            bento::error!("hello: this build refuses every import but the first (a test)");
            return Err(Errno::EIO);
        }
        IMPORTS.fetch_add(1, Ordering::Relaxed);
        Ok(HelloFs {
            mounted: Timespec::new(sec, nsec),
            delay_ms: delay_ms.min(MAX_DELAY_MS),
        })
    }

    fn lookup(&self, _req: &Request, parent: Ino, name: &[u8]) -> Result<Entry> {
        if parent != ROOT_INO {
            return Err(Errno::ENOTDIR);
        }
        let ino = match name {
            HELLO_NAME => HELLO_INO,
            VERSION_NAME if Self::has_version_file() => VERSION_INO,
            _ => return Err(Errno::ENOENT),
        };
        Ok(Entry {
            attr: self.attr(ino)?,
        })
    }

    fn getattr(&self, _req: &Request, ino: Ino) -> Result<Attr> {
        self.attr(ino)
    }

    fn read(
        &self,
        _req: &Request,
        ino: Ino,
        _fh: u64,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize> {
        let data = match ino {
            HELLO_INO => HELLO_DATA,
            VERSION_INO if Self::has_version_file() => VERSION_DATA,
            _ => return Err(Errno::EISDIR),
        };
        if ino == HELLO_INO && offset == 0 && self.delay_ms > 0 {
            bento::time::sleep_ms(self.delay_ms);
        }
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let data = data.get(start..).unwrap_or_default();
        let n = data.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), data.get(..n)) {
            dst.copy_from_slice(src);
        }
        Ok(n)
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: Ino,
        _fh: u64,
        offset: i64,
        sink: &mut dyn DirSink,
    ) -> Result {
        if ino != ROOT_INO {
            return Err(Errno::ENOTDIR);
        }
        let entries: [(Ino, FileType, &[u8]); 4] = [
            (ROOT_INO, FileType::Directory, b"."),
            (ROOT_INO, FileType::Directory, b".."),
            (HELLO_INO, FileType::RegularFile, HELLO_NAME),
            (VERSION_INO, FileType::RegularFile, VERSION_NAME),
        ];
        let shown = if Self::has_version_file() { 4 } else { 3 };
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        for (next, (ino, kind, name)) in (1i64..).zip(entries.iter().take(shown)).skip(skip) {
            if sink.add(*ino, next, *kind, name) {
                break;
            }
        }
        Ok(())
    }

    fn statfs(&self, _req: &Request, _ino: Ino) -> Result<Statfs> {
        Ok(Statfs {
            blocks: 1,
            files: 2,
            bsize: 4096,
            frsize: 4096,
            namelen: 255,
            ..Statfs::default()
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    struct Names(Vec<(Ino, i64, Vec<u8>)>, usize);

    impl DirSink for Names {
        fn add(&mut self, ino: Ino, next: i64, _kind: FileType, name: &[u8]) -> bool {
            if self.0.len() == self.1 {
                return true;
            }
            self.0.push((ino, next, name.to_vec()));
            false
        }
    }

    fn fs() -> HelloFs {
        HelloFs::mount(&MountOptions::new(b"none", b"", false)).unwrap()
    }

    #[test]
    fn rejects_unknown_options() {
        let opts = MountOptions::new(b"none", b"size=1", false);
        assert_eq!(HelloFs::mount(&opts).err(), Some(Errno::EINVAL));
    }

    #[test]
    fn lookup_and_read() {
        let (fs, req) = (fs(), Request::default());
        let e = fs.lookup(&req, ROOT_INO, b"hello").unwrap();
        assert_eq!(
            (e.attr.ino, e.attr.size, e.attr.kind),
            (HELLO_INO, 14, FileType::RegularFile)
        );
        assert_eq!(
            fs.lookup(&req, ROOT_INO, b"nope").err(),
            Some(Errno::ENOENT)
        );
        let mut buf = [0u8; 64];
        let n = fs.read(&req, HELLO_INO, 0, 7, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"world!\n");
        assert_eq!(fs.read(&req, HELLO_INO, 0, 100, &mut buf), Ok(0));
        assert_eq!(fs.read(&req, HELLO_INO, 0, u64::MAX, &mut buf), Ok(0));
    }

    #[test]
    fn readdir_resumes_at_offsets() {
        let (fs, req) = (fs(), Request::default());
        let mut all = Names(Vec::new(), usize::MAX);
        fs.readdir(&req, ROOT_INO, 0, 0, &mut all).unwrap();
        let names: Vec<&[u8]> = all.0.iter().map(|e| e.2.as_slice()).collect();
        let mut want = vec![&b"."[..], b"..", b"hello"];
        if crate::VERSION >= 2 {
            want.push(b"version");
        }
        assert_eq!(names, want);
        // One entry per call, continuing from each entry's next offset.
        let (mut off, mut seen) = (0, Vec::new());
        loop {
            let mut one = Names(Vec::new(), 1);
            fs.readdir(&req, ROOT_INO, 0, off, &mut one).unwrap();
            let Some((_, next, name)) = one.0.pop() else {
                break;
            };
            seen.push(name);
            off = next;
        }
        assert_eq!(seen.len(), want.len());
    }
}
