// SPDX-License-Identifier: GPL-2.0
//! Bento sample: a read-only file system whose root holds one file, `hello`, containing
//! `Hello, world!\n`. The same source builds as `hello.ko` (Kbuild) and as the FUSE
//! program `hello` (cargo).
#![forbid(unsafe_code)]
// What fails only in the kernel (overflow checks, 16 KiB stacks, panics = BUG): deny it
// here so that the FUSE build's clippy catches it first (DESIGN.md §2).
#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::large_stack_arrays,
    clippy::large_stack_frames
)]

use bento::{
    Attr, DirSink, Entry, Errno, FileSystem, FileType, Ino, MountOptions, Request, Result, Statfs,
    Timespec, ROOT_INO,
};

const HELLO_INO: Ino = 2;
const HELLO_NAME: &[u8] = b"hello";
const HELLO_DATA: &[u8] = b"Hello, world!\n";

/// The file system: stateless, so one unit value per mount.
struct HelloFs;

fn attr(ino: Ino) -> Result<Attr> {
    let (kind, perm, nlink, size) = match ino {
        ROOT_INO => (FileType::Directory, 0o755, 2, 0),
        HELLO_INO => (FileType::RegularFile, 0o444, 1, HELLO_DATA.len() as u64),
        _ => return Err(Errno::ENOENT),
    };
    let t = Timespec::new(0, 0);
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

impl FileSystem for HelloFs {
    fn mount(opts: &MountOptions<'_>) -> Result<Self> {
        if let Some((key, _)) = opts.iter().next() {
            bento::error!("hello: unknown mount option '{}'", bento::log::Bytes(key));
            return Err(Errno::EINVAL);
        }
        Ok(HelloFs)
    }

    fn lookup(&self, _req: &Request, parent: Ino, name: &[u8]) -> Result<Entry> {
        if parent != ROOT_INO {
            return Err(Errno::ENOTDIR);
        }
        if name != HELLO_NAME {
            return Err(Errno::ENOENT);
        }
        Ok(Entry {
            attr: attr(HELLO_INO)?,
        })
    }

    fn getattr(&self, _req: &Request, ino: Ino) -> Result<Attr> {
        attr(ino)
    }

    fn read(
        &self,
        _req: &Request,
        ino: Ino,
        _fh: u64,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize> {
        if ino != HELLO_INO {
            return Err(Errno::EISDIR);
        }
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let data = HELLO_DATA.get(start..).unwrap_or_default();
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
        let entries: [(Ino, FileType, &[u8]); 3] = [
            (ROOT_INO, FileType::Directory, b"."),
            (ROOT_INO, FileType::Directory, b".."),
            (HELLO_INO, FileType::RegularFile, HELLO_NAME),
        ];
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        for (next, (ino, kind, name)) in (1i64..).zip(entries.iter()).skip(skip) {
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

bento::module_fs! {
    type: HelloFs,
    name: "hello",
    version: 1,
    description: "Bento sample: read-only hello world file system",
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
        assert_eq!(names, [&b"."[..], b"..", b"hello"]);
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
        assert_eq!(seen.len(), 3);
    }
}
