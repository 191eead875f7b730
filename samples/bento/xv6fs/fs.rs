// SPDX-License-Identifier: GPL-2.0
//! The file system: mount, the superblock state, and the [`FileSystem`] operations.
//!
//! Locking: one reader-writer lock per mount. Operations that change anything take it
//! for writing (and run in one journal transaction), lookups and reads share it. Simple
//! and obviously correct; finer locking is a later optimisation.

use bento::block::BlockDevice;
use bento::journal::{Handle, Journal};
use bento::sync::RwLock;
use bento::types::{rename_flags, whence, xattr_flags};
use bento::{
    new_inode_owner, Attr, DirSink, Entry, Errno, Extent, FileSystem, FileType, Ino, MountOptions,
    Open, OpenFlags, Request, Result, SetAttr, Statfs, TimeSet, Timespec,
};

use crate::alloc::Bitmap;
use crate::dir;
use crate::dir::DirStore;
use crate::hash::siphash13;
use crate::inode::{FREE_BUDGET, REVOKE_BUDGET};
use crate::layout::{
    corrupt, DiskInode, Superblock, BLOCK_SIZE, BLOCK_SIZE_U64, FLAG_INLINE_SYMLINK,
    INCOMPAT_SUPPORTED, INLINE_SYMLINK_MAX, NAME_MAX, ROOT_INO, RO_COMPAT_SUPPORTED, STATE_CLEAN,
    SUPERBLOCK_BLOCK, SYMLINK_MAX,
};
use crate::store::Dir;
use crate::xattr;

/// Journal credits of a namespace operation (inodes, bitmaps, a directory split on
/// each level, the superblock).
const NS_CREDITS: u32 = 64;

/// Mutable state of a mount, under its lock.
pub struct State {
    /// Block allocator.
    pub(crate) blocks: Bitmap,
    /// Inode allocator.
    pub(crate) inodes: Bitmap,
    /// First orphan (mirror of the superblock field).
    pub(crate) orphan_head: u32,
    /// Generation for the next new inode.
    pub(crate) generation: u32,
}

/// A mounted xv6fs.
pub struct Xv6Fs {
    pub(crate) dev: BlockDevice,
    pub(crate) journal: Journal,
    pub(crate) sb: Superblock,
    pub(crate) seed: u32,
    pub(crate) read_only: bool,
    pub(crate) state: RwLock<State>,
}

fn ino32(ino: Ino) -> Result<u32> {
    u32::try_from(ino).map_err(|_| Errno::ESTALE)
}

fn kind_of(mode: u32) -> Result<FileType> {
    FileType::from_mode(mode).ok_or(Errno::EINVAL)
}

impl Xv6Fs {
    /// The directory hash of `name`.
    pub(crate) fn hash(&self, name: &[u8]) -> u64 {
        siphash13(&self.sb.uuid, name)
    }

    fn check_writable(&self) -> Result {
        if self.read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    /// Writes the superblock (with the current orphan head) in `h`.
    fn write_sb(&self, h: &Handle<'_>, st: &State) -> Result {
        let mut sb = self.sb.clone();
        sb.orphan_head = st.orphan_head;
        sb.state &= !STATE_CLEAN;
        let buf = self.dev.read(SUPERBLOCK_BLOCK)?;
        h.modify(&buf, |b| sb.encode(b))?
    }

    /// Puts inode `ino` on the orphan list.
    fn orphan_add(
        &self,
        h: &Handle<'_>,
        st: &mut State,
        ino: u32,
        inode: &mut DiskInode,
    ) -> Result {
        inode.orphan_next = st.orphan_head;
        st.orphan_head = ino;
        self.write_sb(h, st)
    }

    /// Takes inode `ino` off the orphan list (`inode` is its in-memory copy, written by
    /// the caller).
    fn orphan_remove(
        &self,
        h: &Handle<'_>,
        st: &mut State,
        ino: u32,
        inode: &mut DiskInode,
    ) -> Result {
        if st.orphan_head == ino {
            st.orphan_head = inode.orphan_next;
            inode.orphan_next = 0;
            return self.write_sb(h, st);
        }
        let mut prev = st.orphan_head;
        let mut steps = 0u32;
        while prev != 0 {
            let mut p = self.iread(prev)?;
            if p.orphan_next == ino {
                p.orphan_next = inode.orphan_next;
                inode.orphan_next = 0;
                return self.iput(h, prev, &p);
            }
            prev = p.orphan_next;
            steps = steps.saturating_add(1);
            if steps > self.sb.ninodes {
                return Err(corrupt(format_args!("orphan list loops")));
            }
        }
        Ok(())
    }

    /// Frees an inode with no links left: its blocks (over as many transactions as
    /// needed), its xattr block, its number; and takes it off the orphan list.
    fn release_inode(&self, st: &mut State, ino: u32) -> Result {
        loop {
            let h = self.journal.start_with_revokes(NS_CREDITS, REVOKE_BUDGET)?;
            let mut inode = self.iread(ino)?;
            let done = if inode.flags & FLAG_INLINE_SYMLINK != 0 {
                true
            } else {
                self.free_from(st, &h, ino, &mut inode, 0)?
            };
            if done {
                if inode.xattr_block != 0 {
                    let b = inode.xattr_block;
                    st.blocks.release(&self.dev, &h, b)?;
                    h.revoke(u64::from(b))?;
                    self.journal.defer_free(h.tid(), u64::from(b), 1)?;
                }
                self.orphan_remove(&h, st, ino, &mut inode)?;
                self.iput(&h, ino, &DiskInode::default())?;
                st.inodes.release(&self.dev, &h, ino)?;
            } else {
                self.iput(&h, ino, &inode)?;
            }
            h.stop()?;
            if done {
                return Ok(());
            }
        }
    }

    /// After a crash: frees or truncates every inode on the orphan list.
    fn process_orphans(&self, st: &mut State) -> Result {
        let mut n = 0u32;
        while st.orphan_head != 0 {
            let ino = st.orphan_head;
            let inode = self.iread(ino)?;
            if inode.nlink == 0 {
                self.release_inode(st, ino)?;
            } else {
                self.truncate_blocks(st, ino, inode.size)?;
                let h = self.journal.start(NS_CREDITS)?;
                let mut inode = self.iread(ino)?;
                self.orphan_remove(&h, st, ino, &mut inode)?;
                self.iput(&h, ino, &inode)?;
                h.stop()?;
            }
            n = n.saturating_add(1);
            if n > self.sb.ninodes {
                return Err(corrupt(format_args!("orphan list loops")));
            }
        }
        if n > 0 {
            bento::info!("xv6fs: recovered {n} orphan inode(s)");
        }
        Ok(())
    }

    /// Frees the blocks of `ino` past `size` (several transactions if large).
    fn truncate_blocks(&self, st: &mut State, ino: u32, size: u64) -> Result {
        let keep = size.div_ceil(BLOCK_SIZE_U64);
        loop {
            let h = self.journal.start_with_revokes(NS_CREDITS, REVOKE_BUDGET)?;
            let mut inode = self.iget(ino)?;
            let done = self.free_from(st, &h, ino, &mut inode, keep)?;
            self.iput(&h, ino, &inode)?;
            h.stop()?;
            if done {
                return Ok(());
            }
        }
    }

    /// Looks `name` up in directory `parent`.
    fn find(&self, parent: u32, name: &[u8]) -> Result<Option<(u32, FileType)>> {
        let pi = self.iget(parent)?;
        if pi.kind() != Some(FileType::Directory) {
            return Err(Errno::ENOTDIR);
        }
        if name.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let d = Dir::reader(self, parent, pi);
        match name {
            b"." => Ok(Some((parent, FileType::Directory))),
            b".." => Ok(Some((dir::parent(&d)?, FileType::Directory))),
            _ => dir::lookup(&d, self.hash(name), name),
        }
    }

    fn entry(&self, ino: u32) -> Result<Entry> {
        Ok(Entry {
            attr: self.attr(ino, &self.iget(ino)?)?,
        })
    }

    /// Creates an inode of `mode` named `name` in `parent`; `init` fills kind-specific
    /// parts (directory block, symlink target) in the same transaction.
    /// Out of space, but blocks freed by uncommitted transactions would make room:
    /// commit them (no handle may be held). Returns whether that can help.
    pub(crate) fn commit_for_space(&self, st: &State) -> Result<bool> {
        if st.blocks.free() == 0 {
            return Ok(false);
        }
        self.journal.force_commit()?;
        Ok(true)
    }

    /// [`Xv6Fs::make_once`], once more after a commit if it ran out of space.
    #[allow(clippy::type_complexity)]
    fn make(
        &self,
        req: &Request,
        parent: Ino,
        name: &[u8],
        mode: u32,
        rdev: u32,
        init: &dyn Fn(&Xv6Fs, &Handle<'_>, &mut State, u32, &mut DiskInode) -> Result,
    ) -> Result<Entry> {
        match self.make_once(req, parent, name, mode, rdev, init) {
            Err(Errno::ENOSPC) if self.commit_for_space(&self.state.read())? => {
                self.make_once(req, parent, name, mode, rdev, init)
            }
            r => r,
        }
    }

    fn make_once(
        &self,
        req: &Request,
        parent: Ino,
        name: &[u8],
        mode: u32,
        rdev: u32,
        init: &dyn Fn(&Xv6Fs, &Handle<'_>, &mut State, u32, &mut DiskInode) -> Result,
    ) -> Result<Entry> {
        self.check_writable()?;
        dir::check_name(name)?;
        let parent = ino32(parent)?;
        let kind = kind_of(mode)?;
        let mut st = self.state.write();
        if self.find(parent, name)?.is_some() {
            return Err(Errno::EEXIST);
        }
        let mut pi = self.iget(parent)?;
        if kind == FileType::Directory && pi.nlink >= u32::from(u16::MAX) {
            return Err(Errno::EMLINK);
        }
        let pattr = self.attr(parent, &pi)?;
        // Revokes: undoing a failed make frees the new inode's block (metadata).
        let h = self.journal.start_with_revokes(NS_CREDITS, REVOKE_BUDGET)?;
        let ino = st.inodes.alloc(&self.dev, &h, None, &|_| true)?;
        let (uid, gid, perm) = new_inode_owner(req, &pattr, kind, mode);
        let now = bento::time::now();
        st.generation = st.generation.wrapping_add(1);
        let mut inode = DiskInode {
            mode: kind.mode_bits() | perm,
            uid,
            gid,
            nlink: if kind == FileType::Directory { 2 } else { 1 },
            atime: now,
            mtime: now,
            ctime: now,
            crtime: now,
            generation: st.generation,
            rdev: if matches!(kind, FileType::CharDevice | FileType::BlockDevice) {
                rdev
            } else {
                0
            },
            ..DiskInode::default()
        };
        let made = init(self, &h, &mut st, ino, &mut inode).and_then(|()| {
            self.iput(&h, ino, &inode)?;
            let d = Dir::writer(self, parent, pi.clone(), &h, &mut st);
            dir::insert(&d, self.hash(name), name, ino, kind)?;
            pi = d.into_inode();
            Ok(())
        });
        if let Err(e) = made {
            // Undo in the same transaction: the number and any blocks go back.
            let _ = self.free_from(&mut st, &h, ino, &mut inode, 0);
            let _ = self.iput(&h, ino, &DiskInode::default());
            let _ = st.inodes.release(&self.dev, &h, ino);
            let _ = h.stop();
            return Err(e);
        }
        if kind == FileType::Directory {
            pi.nlink = pi.nlink.saturating_add(1);
        }
        pi.mtime = now;
        pi.ctime = now;
        self.iput(&h, parent, &pi)?;
        h.stop()?;
        Ok(Entry {
            attr: self.attr(ino, &inode)?,
        })
    }

    /// Drops one link of `ino` (`dir_gone`: a directory being removed, all links go).
    fn unlink_inode(
        &self,
        h: &Handle<'_>,
        st: &mut State,
        ino: u32,
        dir_gone: bool,
        now: Timespec,
    ) -> Result {
        let mut inode = self.iget(ino)?;
        inode.nlink = if dir_gone {
            0
        } else {
            inode.nlink.saturating_sub(1)
        };
        inode.ctime = now;
        if inode.nlink == 0 {
            // Freed when the kernel forgets it (it may still be open).
            self.orphan_add(h, st, ino, &mut inode)?;
        }
        self.iput(h, ino, &inode)
    }
}

impl FileSystem for Xv6Fs {
    fn mount(opts: &MountOptions<'_>) -> Result<Self> {
        let mut read_only = opts.read_only;
        for (key, value) in opts.iter() {
            match (key, value) {
                (b"errors", Some(b"continue" | b"remount-ro" | b"panic")) => {}
                _ => {
                    bento::error!("xv6fs: unknown mount option '{}'", bento::log::Bytes(key));
                    return Err(Errno::EINVAL);
                }
            }
        }
        let dev = opts.open_device(BLOCK_SIZE)?;
        read_only |= dev.read_only();
        let sb = {
            let buf = dev.read(SUPERBLOCK_BLOCK)?;
            let g = buf.lock();
            Superblock::decode(&g)?
        };
        if sb.incompat & !INCOMPAT_SUPPORTED != 0 {
            bento::error!(
                "xv6fs: unsupported incompatible features {:#x}",
                sb.incompat & !INCOMPAT_SUPPORTED
            );
            return Err(Errno::EINVAL);
        }
        if sb.ro_compat & !RO_COMPAT_SUPPORTED != 0 && !read_only {
            bento::error!(
                "xv6fs: unsupported features {:#x}: mount read-only",
                sb.ro_compat
            );
            return Err(Errno::EROFS);
        }
        if u64::from(sb.nblocks) > dev.nr_blocks() {
            bento::error!(
                "xv6fs: file system has {} blocks, device only {}",
                sb.nblocks,
                dev.nr_blocks()
            );
            return Err(Errno::EINVAL);
        }
        // Recovery may rewrite the superblock: read it again afterwards.
        let journal = Journal::load(&dev, u64::from(sb.journal_start), u64::from(sb.journal_len))?;
        let sb = {
            let buf = dev.read(SUPERBLOCK_BLOCK)?;
            let g = buf.lock();
            Superblock::decode(&g)?
        };
        let blocks = Bitmap::load(
            &dev,
            sb.block_bitmap_start,
            sb.nblocks,
            sb.data_start,
            "block bitmap",
        )?;
        let inodes = Bitmap::load(
            &dev,
            sb.inode_bitmap_start,
            sb.ninodes,
            ROOT_INO.saturating_add(1),
            "inode bitmap",
        )?;
        let state = State {
            blocks,
            inodes,
            orphan_head: sb.orphan_head,
            generation: u32::try_from(bento::time::now().sec & 0xffff_ffff).unwrap_or(0),
        };
        let fs = Xv6Fs {
            seed: sb.csum_seed(),
            dev,
            journal,
            sb,
            read_only,
            state: RwLock::new(state)?,
        };
        let root = fs.iget(ROOT_INO)?;
        if root.kind() != Some(FileType::Directory) {
            return Err(corrupt(format_args!("root inode is not a directory")));
        }
        if !read_only {
            let mut st = fs.state.write();
            fs.process_orphans(&mut st)?;
            let h = fs.journal.start(4)?;
            fs.write_sb(&h, &st)?;
            h.stop()?;
        }
        Ok(fs)
    }

    fn lookup(&self, _req: &Request, parent: Ino, name: &[u8]) -> Result<Entry> {
        let _st = self.state.read();
        match self.find(ino32(parent)?, name)? {
            Some((ino, _)) => self.entry(ino),
            None => Err(Errno::ENOENT),
        }
    }

    fn forget(&self, ino: Ino) {
        let Ok(ino) = ino32(ino) else { return };
        let mut st = self.state.write();
        // An unlinked inode goes when the kernel lets go of it.
        if let Ok(inode) = self.iread(ino) {
            if inode.mode != 0 && inode.nlink == 0 && !self.read_only {
                if let Err(e) = self.release_inode(&mut st, ino) {
                    bento::error!("xv6fs: freeing inode {ino}: {e}");
                }
            }
        }
    }

    fn getattr(&self, _req: &Request, ino: Ino) -> Result<Attr> {
        let _st = self.state.read();
        let ino = ino32(ino)?;
        self.attr(ino, &self.iget(ino)?)
    }

    fn setattr(&self, _req: &Request, ino: Ino, set: &SetAttr) -> Result<Attr> {
        self.check_writable()?;
        let ino = ino32(ino)?;
        let mut st = self.state.write();
        let mut inode = self.iget(ino)?;
        let now = bento::time::now();
        if let Some(size) = set.size {
            if inode.kind() != Some(FileType::RegularFile) {
                return Err(Errno::EINVAL);
            }
            if size < inode.size {
                // Blocks past the new end go, possibly over several transactions: the
                // orphan list finishes the job after a crash.
                let h = self.journal.start(NS_CREDITS)?;
                inode.size = size;
                self.orphan_add(&h, &mut st, ino, &mut inode)?;
                self.iput(&h, ino, &inode)?;
                h.stop()?;
                // The framework zeroed the rest of the block holding the new end (file
                // data is its business), so a later extension reads zeros.
                self.truncate_blocks(&mut st, ino, size)?;
                inode = self.iget(ino)?;
                let h = self.journal.start(NS_CREDITS)?;
                self.orphan_remove(&h, &mut st, ino, &mut inode)?;
                self.iput(&h, ino, &inode)?;
                h.stop()?;
            } else if size > crate::layout::MAX_FILE_BLOCKS.saturating_mul(BLOCK_SIZE_U64) {
                return Err(Errno::EFBIG);
            }
            // Growing makes a hole: the bytes past the old end are zero already.
            inode.size = size;
            inode.mtime = now;
        }
        if let Some(mode) = set.mode {
            inode.mode = (inode.mode & 0o170000) | (mode & 0o7777);
        }
        if let Some(uid) = set.uid {
            inode.uid = uid;
        }
        if let Some(gid) = set.gid {
            inode.gid = gid;
        }
        let pick = |t: TimeSet| match t {
            TimeSet::Now => now,
            TimeSet::At(t) => t,
        };
        if let Some(t) = set.atime {
            inode.atime = pick(t);
        }
        if let Some(t) = set.mtime {
            inode.mtime = pick(t);
        }
        inode.ctime = set.ctime.unwrap_or(now);
        let h = self.journal.start(NS_CREDITS)?;
        self.iput(&h, ino, &inode)?;
        h.stop()?;
        self.attr(ino, &inode)
    }

    fn readlink(&self, _req: &Request, ino: Ino, buf: &mut [u8]) -> Result<usize> {
        let _st = self.state.read();
        let ino = ino32(ino)?;
        let mut inode = self.iget(ino)?;
        if inode.kind() != Some(FileType::Symlink) {
            return Err(Errno::EINVAL);
        }
        if inode.flags & FLAG_INLINE_SYMLINK != 0 {
            let data = inode.inline_data();
            let n = usize::try_from(inode.size).unwrap_or(0).min(buf.len());
            buf.get_mut(..n)
                .ok_or(Errno::EIO)?
                .copy_from_slice(data.get(..n).ok_or(Errno::EIO)?);
            return Ok(n);
        }
        // A long target lives in block 0 (metadata, read through the buffer cache).
        let (b, _) = self.bmap(None, None, ino, &mut inode, 0)?;
        if b == 0 {
            return Err(corrupt(format_args!("symlink {ino}: no target block")));
        }
        let n = usize::try_from(inode.size)
            .unwrap_or(usize::MAX)
            .min(buf.len())
            .min(BLOCK_SIZE);
        let bh = self.dev.read(u64::from(b))?;
        let g = bh.lock();
        buf.get_mut(..n)
            .ok_or(Errno::EIO)?
            .copy_from_slice(g.get(..n).ok_or(Errno::EIO)?);
        Ok(n)
    }

    fn mknod(
        &self,
        req: &Request,
        parent: Ino,
        name: &[u8],
        mode: u32,
        rdev: u32,
    ) -> Result<Entry> {
        if kind_of(mode)? == FileType::Directory || kind_of(mode)? == FileType::Symlink {
            return Err(Errno::EINVAL);
        }
        self.make(req, parent, name, mode, rdev, &|_, _, _, _, _| Ok(()))
    }

    fn mkdir(&self, req: &Request, parent: Ino, name: &[u8], mode: u32) -> Result<Entry> {
        let parent32 = ino32(parent)?;
        let mode = FileType::Directory.mode_bits() | (mode & 0o7777);
        self.make(req, parent, name, mode, 0, &|fs, h, st, ino, inode| {
            let d = Dir::writer(fs, ino, inode.clone(), h, st);
            d.append()?;
            dir::init(&d, parent32)?;
            *inode = DiskInode {
                nlink: 2,
                ..d.into_inode()
            };
            Ok(())
        })
    }

    fn symlink(&self, req: &Request, parent: Ino, name: &[u8], target: &[u8]) -> Result<Entry> {
        if target.is_empty() || target.len() > SYMLINK_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let mode = FileType::Symlink.mode_bits() | 0o777;
        self.make(req, parent, name, mode, 0, &|fs, h, st, ino, inode| {
            inode.size = target.len() as u64;
            if target.len() <= INLINE_SYMLINK_MAX {
                inode.flags |= FLAG_INLINE_SYMLINK;
                inode.set_inline_data(target);
                return Ok(());
            }
            // A long target gets block 0: metadata, journaled (and revoked when freed).
            let (b, _) = fs.bmap(Some(st), Some(h), ino, inode, 0)?;
            let bh = fs.dev.get(u64::from(b))?;
            h.create(&bh, |g| {
                g.fill(0);
                g.get_mut(..target.len())
                    .ok_or(Errno::EIO)
                    .map(|t| t.copy_from_slice(target))
            })?
        })
    }

    fn unlink(&self, _req: &Request, parent: Ino, name: &[u8]) -> Result {
        self.check_writable()?;
        let parent = ino32(parent)?;
        let mut st = self.state.write();
        let (ino, kind) = self.find(parent, name)?.ok_or(Errno::ENOENT)?;
        if kind == FileType::Directory {
            return Err(Errno::EISDIR);
        }
        let now = bento::time::now();
        let h = self.journal.start(NS_CREDITS)?;
        self.edit_dir(&h, &mut st, parent, now, 0, |d| {
            dir::remove(d, self.hash(name), name).map(|_| ())
        })?;
        self.unlink_inode(&h, &mut st, ino, false, now)?;
        h.stop()
    }

    fn rmdir(&self, _req: &Request, parent: Ino, name: &[u8]) -> Result {
        self.check_writable()?;
        let parent = ino32(parent)?;
        let mut st = self.state.write();
        let (ino, kind) = self.find(parent, name)?.ok_or(Errno::ENOENT)?;
        if kind != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        if !dir::is_empty(&Dir::reader(self, ino, self.iget(ino)?))? {
            return Err(Errno::ENOTEMPTY);
        }
        let now = bento::time::now();
        let h = self.journal.start(NS_CREDITS)?;
        self.edit_dir(&h, &mut st, parent, now, -1, |d| {
            dir::remove(d, self.hash(name), name).map(|_| ())
        })?;
        self.unlink_inode(&h, &mut st, ino, true, now)?;
        h.stop()
    }

    fn rename(
        &self,
        _req: &Request,
        parent: Ino,
        name: &[u8],
        newparent: Ino,
        newname: &[u8],
        flags: u32,
    ) -> Result {
        self.check_writable()?;
        dir::check_name(newname)?;
        if flags & !(rename_flags::NOREPLACE | rename_flags::EXCHANGE) != 0
            || flags == rename_flags::NOREPLACE | rename_flags::EXCHANGE
        {
            return Err(Errno::EINVAL);
        }
        let (parent, newparent) = (ino32(parent)?, ino32(newparent)?);
        let mut st = self.state.write();
        let (src, skind) = self.find(parent, name)?.ok_or(Errno::ENOENT)?;
        let dst = self.find(newparent, newname)?;
        if parent == newparent && name == newname {
            return Ok(());
        }
        let now = bento::time::now();
        if flags & rename_flags::EXCHANGE != 0 {
            let (dst, dkind) = dst.ok_or(Errno::ENOENT)?;
            let h = self.journal.start(NS_CREDITS)?;
            self.swap_entry(&h, &mut st, parent, name, dst, dkind, now)?;
            self.swap_entry(&h, &mut st, newparent, newname, src, skind, now)?;
            if parent != newparent {
                for (ino, kind, from, to) in [
                    (src, skind, parent, newparent),
                    (dst, dkind, newparent, parent),
                ] {
                    if kind == FileType::Directory {
                        self.reparent(&h, &mut st, ino, from, to)?;
                    }
                }
            }
            for ino in [src, dst] {
                let mut i = self.iget(ino)?;
                i.ctime = now;
                self.iput(&h, ino, &i)?;
            }
            return h.stop();
        }
        if let Some((dst, dkind)) = dst {
            if flags & rename_flags::NOREPLACE != 0 {
                return Err(Errno::EEXIST);
            }
            if dst == src {
                return Ok(());
            }
            match (skind == FileType::Directory, dkind == FileType::Directory) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) if !dir::is_empty(&Dir::reader(self, dst, self.iget(dst)?))? => {
                    return Err(Errno::ENOTEMPTY)
                }
                _ => {}
            }
            let h = self.journal.start(NS_CREDITS)?;
            self.swap_entry(&h, &mut st, newparent, newname, src, skind, now)?;
            self.unlink_inode(&h, &mut st, dst, dkind == FileType::Directory, now)?;
            if dkind == FileType::Directory {
                let mut np = self.iget(newparent)?;
                np.nlink = np.nlink.saturating_sub(1);
                self.iput(&h, newparent, &np)?;
            }
            self.finish_move(&h, &mut st, parent, name, src, skind, newparent, now)?;
            return h.stop();
        }
        let h = self.journal.start(NS_CREDITS)?;
        self.edit_dir(&h, &mut st, newparent, now, 0, |d| {
            dir::insert(d, self.hash(newname), newname, src, skind)
        })?;
        self.finish_move(&h, &mut st, parent, name, src, skind, newparent, now)?;
        h.stop()
    }

    fn link(&self, _req: &Request, ino: Ino, newparent: Ino, newname: &[u8]) -> Result<Entry> {
        self.check_writable()?;
        dir::check_name(newname)?;
        let (ino, newparent) = (ino32(ino)?, ino32(newparent)?);
        let mut st = self.state.write();
        let mut inode = self.iget(ino)?;
        if inode.kind() == Some(FileType::Directory) {
            return Err(Errno::EPERM);
        }
        if inode.nlink >= u32::from(u16::MAX) {
            return Err(Errno::EMLINK);
        }
        if self.find(newparent, newname)?.is_some() {
            return Err(Errno::EEXIST);
        }
        let now = bento::time::now();
        let h = self.journal.start(NS_CREDITS)?;
        let kind = inode.kind().ok_or(Errno::EIO)?;
        self.edit_dir(&h, &mut st, newparent, now, 0, |d| {
            dir::insert(d, self.hash(newname), newname, ino, kind)
        })?;
        inode.nlink = inode.nlink.saturating_add(1);
        inode.ctime = now;
        if inode.nlink == 1 {
            // Linked again (O_TMPFILE style): no longer an orphan.
            self.orphan_remove(&h, &mut st, ino, &mut inode)?;
        }
        self.iput(&h, ino, &inode)?;
        h.stop()?;
        Ok(Entry {
            attr: self.attr(ino, &inode)?,
        })
    }

    fn create(
        &self,
        req: &Request,
        parent: Ino,
        name: &[u8],
        mode: u32,
        _flags: OpenFlags,
    ) -> Result<(Entry, Open)> {
        let mode = FileType::RegularFile.mode_bits() | (mode & 0o7777);
        Ok((self.mknod(req, parent, name, mode, 0)?, Open::default()))
    }

    fn fsync(&self, _req: &Request, _ino: Ino, _fh: u64, _datasync: bool) -> Result {
        // Committing writes the data of every file first (data=ordered), then the
        // metadata; a device flush covers overwrites that changed no metadata.
        self.journal.force_commit()?;
        self.dev.sync()
    }

    fn fsyncdir(&self, req: &Request, ino: Ino, fh: u64, datasync: bool) -> Result {
        self.fsync(req, ino, fh, datasync)
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: Ino,
        _fh: u64,
        offset: i64,
        sink: &mut dyn DirSink,
    ) -> Result {
        let _st = self.state.read();
        let ino32 = ino32(ino)?;
        let inode = self.iget(ino32)?;
        if inode.kind() != Some(FileType::Directory) {
            return Err(Errno::ENOTDIR);
        }
        let d = Dir::reader(self, ino32, inode);
        if offset <= 0 && sink.add(ino, 1, FileType::Directory, b".") {
            return Ok(());
        }
        if offset <= 1 && sink.add(u64::from(dir::parent(&d)?), 2, FileType::Directory, b"..") {
            return Ok(());
        }
        dir::readdir(&d, offset.max(2), &mut |e| {
            sink.add(
                u64::from(e.ino),
                e.cookie().saturating_add(1),
                e.kind,
                e.name,
            )
        })
    }

    fn statfs(&self, _req: &Request, _ino: Ino) -> Result<Statfs> {
        let st = self.state.read();
        Ok(Statfs {
            blocks: u64::from(self.sb.nblocks.saturating_sub(self.sb.data_start)),
            bfree: u64::from(st.blocks.free()),
            bavail: u64::from(st.blocks.free()),
            files: u64::from(self.sb.ninodes.saturating_sub(1)),
            ffree: u64::from(st.inodes.free()),
            bsize: BLOCK_SIZE as u32,
            namelen: NAME_MAX as u32,
            frsize: BLOCK_SIZE as u32,
        })
    }

    fn setxattr(&self, req: &Request, ino: Ino, name: &[u8], value: &[u8], flags: i32) -> Result {
        if flags & !(xattr_flags::CREATE | xattr_flags::REPLACE) != 0 {
            return Err(Errno::EINVAL);
        }
        self.change_xattr(req, ino, name, Some(value), flags)
    }

    fn getxattr(&self, req: &Request, ino: Ino, name: &[u8], buf: &mut [u8]) -> Result<usize> {
        let _st = self.state.read();
        let ino = ino32(ino)?;
        let (ns, short) = xattr::split_name(req, name, false)?;
        xattr::get(self, ino, &self.iget(ino)?, ns, short, buf)
    }

    fn listxattr(&self, req: &Request, ino: Ino, buf: &mut [u8]) -> Result<usize> {
        let _st = self.state.read();
        let ino = ino32(ino)?;
        xattr::list(self, req, ino, &self.iget(ino)?, buf)
    }

    fn removexattr(&self, req: &Request, ino: Ino, name: &[u8]) -> Result {
        self.change_xattr(req, ino, name, None, xattr_flags::REPLACE)
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: Ino,
        _fh: u64,
        offset: u64,
        length: u64,
        mode: i32,
    ) -> Result {
        const KEEP_SIZE: i32 = 1;
        const PUNCH_HOLE: i32 = 2;
        self.check_writable()?;
        let ino = ino32(ino)?;
        let end = offset.checked_add(length).ok_or(Errno::EFBIG)?;
        if length == 0 {
            return Err(Errno::EINVAL);
        }
        let mut st = self.state.write();
        match self.iget(ino)?.kind() {
            Some(FileType::RegularFile) => {}
            Some(FileType::Directory) => return Err(Errno::EISDIR),
            _ => return Err(Errno::ENODEV),
        }
        if mode == PUNCH_HOLE | KEEP_SIZE {
            return self.punch_hole(&mut st, ino, offset, end);
        }
        if mode & !KEEP_SIZE != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        if end > crate::layout::MAX_FILE_BLOCKS.saturating_mul(BLOCK_SIZE_U64) {
            return Err(Errno::EFBIG);
        }
        // Allocate every missing block, zeroed on the device (there are no unwritten
        // extents): the only file data xv6fs writes itself.
        let mut fblk = offset / BLOCK_SIZE_U64;
        let last = end.div_ceil(BLOCK_SIZE_U64);
        let mut retried = false;
        loop {
            let h = self.journal.start(NS_CREDITS)?;
            let mut inode = self.iget(ino)?;
            let mut budget = FREE_BUDGET;
            let r = (|| -> Result {
                while fblk < last && h.credits_left() >= 16 && budget > 0 {
                    let (b, n) = self.lookup_run(ino, &inode, fblk, last.saturating_sub(fblk))?;
                    if b == 0 {
                        let (first, n) = self.alloc_run(&mut st, &h, ino, &mut inode, fblk, n)?;
                        self.dev.zero_blocks(u64::from(first), n)?;
                        budget = budget.saturating_sub(u32::try_from(n).unwrap_or(u32::MAX));
                        fblk = fblk.saturating_add(n);
                    } else {
                        fblk = fblk.saturating_add(n);
                    }
                }
                Ok(())
            })();
            if r.is_ok() && mode & KEEP_SIZE == 0 && end > inode.size && fblk >= last {
                inode.size = end;
            }
            inode.ctime = bento::time::now();
            self.iput(&h, ino, &inode)?;
            h.stop()?;
            match r {
                Ok(()) if fblk >= last => return Ok(()),
                Ok(()) => {}
                // Freed blocks become usable when their transaction commits.
                Err(Errno::ENOSPC) if !retried && self.commit_for_space(&st)? => retried = true,
                Err(e) => return Err(e),
            }
        }
    }

    fn lseek(&self, _req: &Request, ino: Ino, _fh: u64, offset: i64, wh: i32) -> Result<i64> {
        let _st = self.state.read();
        let ino = ino32(ino)?;
        let inode = self.iget(ino)?;
        let start = u64::try_from(offset).map_err(|_| Errno::EINVAL)?;
        if start >= inode.size {
            return Err(Errno::ENXIO);
        }
        let want_data = match wh {
            whence::SEEK_DATA => true,
            whence::SEEK_HOLE => false,
            _ => return Err(Errno::EINVAL),
        };
        let mut fblk = start / BLOCK_SIZE_U64;
        let last = inode.size.div_ceil(BLOCK_SIZE_U64);
        while fblk < last {
            let (b, n) = self.lookup_run(ino, &inode, fblk, last.saturating_sub(fblk))?;
            if (b != 0) == want_data {
                let pos = fblk.saturating_mul(BLOCK_SIZE_U64).max(start);
                return i64::try_from(pos).map_err(|_| Errno::EOVERFLOW);
            }
            fblk = fblk.saturating_add(n);
        }
        if want_data {
            Err(Errno::ENXIO)
        } else {
            i64::try_from(inode.size).map_err(|_| Errno::EOVERFLOW)
        }
    }

    fn block_device(&self) -> Option<&BlockDevice> {
        Some(&self.dev)
    }

    fn map_blocks(&self, ino: Ino, file_block: u64, count: u32, create: bool) -> Result<Extent> {
        let ino = ino32(ino)?;
        let count = u64::from(count.max(1));
        {
            let _st = self.state.read();
            let inode = self.iget(ino)?;
            check_regular(&inode)?;
            let (b, n) = self.lookup_run(ino, &inode, file_block, count)?;
            if b != 0 || !create {
                return Ok(extent(b, n, false));
            }
        }
        self.check_writable()?;
        let mut st = self.state.write();
        match self.map_alloc(&mut st, ino, file_block, count) {
            // Freed blocks become usable when their transaction commits.
            Err(Errno::ENOSPC) if self.commit_for_space(&st)? => {
                self.map_alloc(&mut st, ino, file_block, count)
            }
            r => r,
        }
    }
}

/// Only regular files have their blocks mapped for the framework: directory and
/// symlink blocks are metadata.
fn check_regular(inode: &DiskInode) -> Result {
    match inode.kind() {
        Some(FileType::RegularFile) => Ok(()),
        Some(FileType::Directory) => Err(Errno::EISDIR),
        _ => Err(Errno::EINVAL),
    }
}

fn extent(disk_block: u32, len: u64, new: bool) -> Extent {
    Extent {
        disk_block: u64::from(disk_block),
        len: u32::try_from(len).unwrap_or(u32::MAX).max(1),
        new,
    }
}

impl Xv6Fs {
    /// Changes the entries of directory `dir` with `f` in transaction `h`, then adds
    /// `nlink_delta` to its link count, stamps its mtime and ctime and writes it.
    fn edit_dir(
        &self,
        h: &Handle<'_>,
        st: &mut State,
        dir: u32,
        now: Timespec,
        nlink_delta: i32,
        f: impl FnOnce(&Dir<'_, '_>) -> Result,
    ) -> Result {
        let d = Dir::writer(self, dir, self.iget(dir)?, h, st);
        f(&d)?;
        let mut di = d.into_inode();
        di.nlink = di.nlink.saturating_add_signed(nlink_delta);
        di.mtime = now;
        di.ctime = now;
        self.iput(h, dir, &di)
    }

    /// Sets (`value` Some) or removes an extended attribute, in one transaction.
    fn change_xattr(
        &self,
        req: &Request,
        ino: Ino,
        name: &[u8],
        value: Option<&[u8]>,
        flags: i32,
    ) -> Result {
        self.check_writable()?;
        let ino = ino32(ino)?;
        let (ns, short) = xattr::split_name(req, name, true)?;
        let mut st = self.state.write();
        // One revoke: removing the last attribute frees the xattr block.
        let h = self.journal.start_with_revokes(NS_CREDITS, 1)?;
        let mut inode = self.iget(ino)?;
        xattr::set(self, &h, &mut st, ino, &mut inode, ns, short, value, flags)?;
        inode.ctime = bento::time::now();
        self.iput(&h, ino, &inode)?;
        h.stop()
    }

    /// Points entry `name` of `parent` at `ino`.
    #[allow(clippy::too_many_arguments)]
    fn swap_entry(
        &self,
        h: &Handle<'_>,
        st: &mut State,
        parent: u32,
        name: &[u8],
        ino: u32,
        kind: FileType,
        now: Timespec,
    ) -> Result {
        self.edit_dir(h, st, parent, now, 0, |d| {
            dir::replace(d, self.hash(name), name, ino, kind).map(|_| ())
        })
    }

    /// A directory moved from `from` to `to`: its `..` and both link counts.
    fn reparent(&self, h: &Handle<'_>, st: &mut State, ino: u32, from: u32, to: u32) -> Result {
        let d = Dir::writer(self, ino, self.iget(ino)?, h, st);
        dir::set_parent(&d, to)?;
        let mut f = self.iget(from)?;
        f.nlink = f.nlink.saturating_sub(1);
        self.iput(h, from, &f)?;
        let mut t = self.iget(to)?;
        t.nlink = t.nlink.saturating_add(1);
        self.iput(h, to, &t)
    }

    /// The end of a move: the old entry goes, a moved directory gets its new parent.
    #[allow(clippy::too_many_arguments)]
    fn finish_move(
        &self,
        h: &Handle<'_>,
        st: &mut State,
        parent: u32,
        name: &[u8],
        src: u32,
        skind: FileType,
        newparent: u32,
        now: Timespec,
    ) -> Result {
        self.edit_dir(h, st, parent, now, 0, |d| {
            dir::remove(d, self.hash(name), name).map(|_| ())
        })?;
        if skind == FileType::Directory && parent != newparent {
            self.reparent(h, st, src, parent, newparent)?;
        }
        let mut s = self.iget(src)?;
        s.ctime = now;
        self.iput(h, src, &s)
    }

    /// `map_blocks` with `create` on a hole: allocates a run in one transaction.
    fn map_alloc(&self, st: &mut State, ino: u32, fblk: u64, count: u64) -> Result<Extent> {
        let h = self.journal.start(NS_CREDITS)?;
        let mut inode = self.iget(ino)?;
        check_regular(&inode)?;
        // Mapped meanwhile (before this thread took the lock)?
        let (b, n) = self.lookup_run(ino, &inode, fblk, count)?;
        if b != 0 {
            h.stop()?;
            return Ok(extent(b, n, false));
        }
        let r = self.alloc_run(st, &h, ino, &mut inode, fblk, n);
        // Indirect blocks may have been added even if the run failed: keep the inode
        // in step with the bitmap.
        let w = self.iput(&h, ino, &inode);
        let s = h.stop();
        let (first, n) = r?;
        w?;
        s?;
        Ok(extent(first, n, true))
    }

    /// Hole punching: frees the blocks lying wholly inside `[start, end)` clipped to the
    /// file size (the framework zeroed the partial blocks at the edges, as
    /// `FileSystem::fallocate` says).
    fn punch_hole(&self, st: &mut State, ino: u32, start: u64, end: u64) -> Result {
        let size = self.iget(ino)?.size;
        if start >= size {
            return Ok(());
        }
        let end = end.min(size);
        let mut fblk = start.div_ceil(BLOCK_SIZE_U64);
        let last = end / BLOCK_SIZE_U64;
        loop {
            let h = self.journal.start(NS_CREDITS)?;
            let mut inode = self.iget(ino)?;
            let mut budget = FREE_BUDGET;
            while fblk < last && h.credits_left() >= 8 && budget > 0 {
                let (b, n) = self.lookup_run(ino, &inode, fblk, last.saturating_sub(fblk))?;
                if b == 0 {
                    fblk = fblk.saturating_add(n);
                    continue;
                }
                let mut i = 0u64;
                while i < n && h.credits_left() >= 8 && budget > 0 {
                    let blk = b.saturating_add(u32::try_from(i).map_err(|_| Errno::EIO)?);
                    self.clear_block(st, &h, ino, &mut inode, fblk.saturating_add(i), blk)?;
                    budget = budget.saturating_sub(1);
                    i = i.saturating_add(1);
                }
                fblk = fblk.saturating_add(i);
            }
            inode.ctime = bento::time::now();
            inode.mtime = inode.ctime;
            self.iput(&h, ino, &inode)?;
            h.stop()?;
            if fblk >= last {
                return Ok(());
            }
        }
    }
}
