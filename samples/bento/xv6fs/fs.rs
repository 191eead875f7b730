// SPDX-License-Identifier: GPL-2.0
//! The file system: mount, the superblock state, and the [`FileSystem`] operations.
//!
//! Locking, outermost first (a lock is never taken while holding one further down):
//! - the **mount lock** (`Xv6Fs::state`, a reader-writer lock): every operation shares
//!   it; those changing several inodes at once (`rename`, `rmdir`, `link`), mount and
//!   remount's own work and the upgrade's export hold it alone ([`Access`]);
//! - the **inode locks** ([`Xv6Fs::ilock`], a table of reader-writer locks shared by
//!   inode number): held for writing to change an inode (its fields, its block tree, a
//!   directory's entries), for reading to read a block tree or a directory. A thread
//!   holds **one at a time**: `unlink` removes the entry under the directory's lock,
//!   then drops the link under the file's, in one transaction (a crash keeps both or
//!   neither). Reading an inode's fields alone needs no lock: an inode is read and
//!   written whole under its block's buffer lock;
//! - the **orphan list** (`State::orphans`): its links (`orphan_next`) are its own, not
//!   the inodes' ([`Xv6Fs::iput`] keeps the link on disk);
//! - the **allocators** (`State::blocks`, `State::inodes`; never both at once);
//! - buffer locks (inside the block and journal services).
//!
//! So operations on different directories and files run in parallel. Nothing depends
//! on the VFS's own locking (the FUSE build is reached by several threads too).
//!
//! **A journal handle is the outermost lock** (jbd2's rule, which ext4 follows): a write
//! starts its handle *before* taking the state lock and stops it *after* releasing it
//! ([`Xv6Fs::transact`]), and nothing waits for a commit (a blocking `Journal::start`,
//! `force_commit`) while holding the lock. Otherwise, in the kernel: a commit writes the
//! ordered file data, which locks page-cache folios; a reader holding a folio lock calls
//! `map_blocks`, which waits for the state lock; a writer holding the state lock waits in
//! `start` for that commit. The framework's own handle around a buffered write
//! (`DATA_CREDITS`) is outermost too: `map_blocks` and `setattr` nest in it.
//!
//! Work that takes several transactions (truncation, freeing an inode, orphan
//! processing, hole punching, `fallocate`) drops the lock and stops the handle between
//! them (handle → lock → a bounded chunk → unlock → stop → next), and reads again what it
//! needs (the inode) after locking again: other operations run in between.
//!
//! Live upgrade (`export_state`/`import_state`, the blob in [`crate::upgrade`]): the
//! device and the journal go to the next version as they are; what lives only in memory
//! ([`State`]: allocator counts and hints, the orphan set, the generation) goes in the
//! blob. The on-disk structures are re-read from the buffer cache, never rescanned.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use bento::block::BlockDevice;
use bento::collections::{BTreeMap, Vec};
use bento::journal::{Handle, Journal};
use bento::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockWriteGuard};
use bento::types::{rename_flags, whence, xattr_flags};
use bento::upgrade::Handover;
use bento::{
    new_inode_owner, Attr, DirSink, Entry, Errno, Extent, FileSystem, FileType, Ino, MountOptions,
    Open, OpenFlags, Request, Result, SetAttr, Statfs, TimeSet, Timespec,
};

use crate::alloc::Bitmap;
use crate::dir;
use crate::dir::DirStore;
use crate::hash::siphash13;
use crate::inode::{FREE_BUDGET, MAP_CREDITS, REVOKE_BUDGET};
use crate::layout::{
    corrupt, DiskInode, Superblock, BLOCK_SIZE, BLOCK_SIZE_U64, FLAG_INLINE_SYMLINK,
    INCOMPAT_SUPPORTED, INCOMPAT_UNWRITTEN, INLINE_SYMLINK_MAX, INODES_PER_BLOCK, NAME_MAX,
    ROOT_INO, RO_COMPAT_SUPPORTED, STATE_CLEAN, SUPERBLOCK_BLOCK, SYMLINK_MAX,
};
use crate::store::Dir;
use crate::xattr;

/// Journal credits of a namespace operation (inodes, bitmaps, a directory split on
/// each level, the superblock), and of each chunk of a multi-transaction operation.
const NS_CREDITS: u32 = 64;

/// Journal credits of a `setattr` that does not truncate: the inode.
const SETATTR_CREDITS: u32 = 1;

/// Journal credits of writing the superblock alone.
const SB_CREDITS: u32 = 1;

/// How many times an allocation that ran out of space is retried after a commit.
const ALLOC_RETRIES: u32 = 3;

/// What a mount keeps in memory, under the mount lock; each part has its own lock (see
/// the module documentation), so operations sharing the mount lock use them in parallel.
pub struct State {
    /// Block allocator.
    pub(crate) blocks: Mutex<Bitmap>,
    /// Inode allocator.
    pub(crate) inodes: Mutex<Bitmap>,
    /// The orphan list.
    pub(crate) orphans: Mutex<Orphans>,
    /// Generation of the last new inode.
    pub(crate) generation: AtomicU32,
}

impl State {
    /// The state of a mount from its allocators (`blocks` becomes
    /// [`Bitmap::for_blocks`]), orphan list and inode generation.
    pub(crate) fn new(
        blocks: Bitmap,
        inodes: Bitmap,
        orphans: Orphans,
        generation: u32,
    ) -> Result<State> {
        Ok(State {
            blocks: bento::new_mutex!(blocks.for_blocks(), "xv6fs::block_allocator")?,
            inodes: bento::new_mutex!(inodes, "xv6fs::inode_allocator")?,
            orphans: bento::new_mutex!(orphans, "xv6fs::orphans")?,
            generation: AtomicU32::new(generation),
        })
    }
}

/// The orphan list in memory.
pub struct Orphans {
    /// First orphan (mirror of the superblock field).
    pub(crate) head: u32,
    /// The inodes on the list with their neighbours, filled from the disk before the
    /// first change to it ([`Xv6Fs::process_orphans`]). An inode goes on the list once,
    /// whatever its reasons (no links left, a truncation in progress), and comes off
    /// once. The back links spare a walk of the disk's (singly linked) list to take an
    /// inode off.
    pub(crate) set: BTreeMap<u32, Link>,
    /// Of the inodes in `set` because `map_blocks` allocated past their size, the
    /// file block their allocations there end at, so that the `setattr` giving the size
    /// knows whether any lie past it without a walk (missing, after a remount or an
    /// upgrade: it walks).
    pub(crate) ahead: BTreeMap<u32, u64>,
    /// `set` was filled from the disk (a read-write mount; a read-only one leaves it
    /// empty until it becomes read-write).
    pub(crate) loaded: bool,
    /// The links in `set` are known (not yet after a live upgrade, whose blob carries
    /// only the numbers: [`Xv6Fs::link_orphans`]).
    pub(crate) linked: bool,
}

/// An orphan's neighbours on the list (0: none).
#[derive(Clone, Copy, Default)]
pub struct Link {
    /// The inode before it (0: it is the head).
    pub(crate) prev: u32,
    /// The inode after it, as its `orphan_next` on the disk says.
    pub(crate) next: u32,
}

/// How many inode locks a mount has ([`Xv6Fs::ilock`]): inodes share them by number.
const INODE_LOCKS: usize = 64;

/// A mounted xv6fs.
pub struct Xv6Fs {
    pub(crate) dev: BlockDevice,
    /// Shared with the next version on live upgrade (the old instance keeps a reference
    /// until it is dropped).
    pub(crate) journal: Arc<Journal>,
    pub(crate) sb: Superblock,
    pub(crate) seed: u32,
    /// Mounted read-only (`remount` changes it).
    pub(crate) read_only: AtomicBool,
    /// The mount lock and the state it guards (see the module documentation).
    pub(crate) state: RwLock<State>,
    /// The inode locks, [`INODE_LOCKS`] of them.
    ilocks: Vec<RwLock<()>>,
}

fn ino32(ino: Ino) -> Result<u32> {
    u32::try_from(ino).map_err(|_| Errno::ESTALE)
}

fn kind_of(mode: u32) -> Result<FileType> {
    FileType::from_mode(mode).ok_or(Errno::EINVAL)
}

/// How a transaction holds the mount ([`Xv6Fs::tx`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// An operation: shares the mount (it takes the inode locks it needs); `EROFS` on a
    /// read-only mount.
    Checked,
    /// An operation changing several inodes at once: holds the mount alone; `EROFS` on a
    /// read-only mount.
    Alone,
    /// Mount and remount's own work (orphans, the superblock state), done while the
    /// mount is still read-only to the world: holds the mount alone.
    Internal,
}

impl Xv6Fs {
    /// The journal (tests use it to play the framework's outer handle).
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The directory hash of `name`.
    pub(crate) fn hash(&self, name: &[u8]) -> u64 {
        siphash13(&self.sb.uuid, name)
    }

    fn is_read_only(&self) -> bool {
        self.read_only.load(Ordering::Acquire)
    }

    /// The lock of inode `ino` (see the module documentation: one at a time).
    pub(crate) fn ilock(&self, ino: u32) -> Result<&RwLock<()>> {
        let i = usize::try_from(ino)
            .ok()
            .and_then(|i| i.checked_rem(INODE_LOCKS))
            .unwrap_or(0);
        self.ilocks.get(i).ok_or(Errno::EIO)
    }

    /// Locks inode `ino` for changing.
    pub(crate) fn ilock_write(&self, ino: u32) -> Result<RwLockWriteGuard<'_, ()>> {
        Ok(self.ilock(ino)?.write())
    }

    fn check_writable(&self) -> Result {
        if self.is_read_only() {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    /// Runs `f` in one transaction, sharing the mount lock, in jbd2's order: the handle
    /// (`credits` blocks, `revokes` revoke records) is started before the lock is taken
    /// and stopped after it is released; `f` takes the inode locks it needs. `EROFS` on a
    /// read-only mount (checked again under the lock, so nothing changes once `remount`
    /// made the mount read-only). On a thread already holding a handle (the
    /// framework's), the handle nests in it.
    fn transact<R>(
        &self,
        credits: u32,
        revokes: u32,
        f: impl FnOnce(&Handle<'_>, &State) -> Result<R>,
    ) -> Result<R> {
        self.tx(Access::Checked, credits, revokes, f)
    }

    /// [`Xv6Fs::transact`], holding the mount as `access` says.
    fn tx<R>(
        &self,
        access: Access,
        credits: u32,
        revokes: u32,
        f: impl FnOnce(&Handle<'_>, &State) -> Result<R>,
    ) -> Result<R> {
        let checked = access != Access::Internal;
        if checked {
            self.check_writable()?;
        }
        let h = self.journal.start_with_revokes(credits, revokes)?;
        let run = |st: &State| {
            if checked && self.is_read_only() {
                Err(Errno::EROFS)
            } else {
                f(&h, st)
            }
        };
        let r = if access == Access::Checked {
            run(&self.state.read())
        } else {
            run(&self.state.write())
        };
        let stopped = h.stop();
        let r = r?;
        stopped?;
        Ok(r)
    }

    /// Out of space, but blocks freed by uncommitted transactions would make room:
    /// commits them. Returns whether that can help (some block is free and some free
    /// is waiting for its commit). Called with no lock and no handle held, since it
    /// waits for a commit. On a thread holding a handle (the framework's around a
    /// buffered write) the journal refuses (`EINVAL`): then it returns `false` and the
    /// operation fails with `ENOSPC`, which the framework retries after it committed
    /// itself.
    fn commit_for_space(&self) -> Result<bool> {
        let free = self.state.read().blocks.lock().free();
        let data = u64::from(self.sb.data_start);
        let len = u64::from(self.sb.nblocks).saturating_sub(data);
        if free == 0 || self.journal.first_pending(data, len).is_none() {
            return Ok(false);
        }
        match self.journal.force_commit() {
            Ok(()) => Ok(true),
            Err(Errno::EINVAL) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Runs `op`, and again after a commit while it fails with `ENOSPC` and committing
    /// can help, at most [`ALLOC_RETRIES`] times (as ext4's `ext4_should_retry_alloc`):
    /// a free made in several transactions by another thread (a truncation) may need
    /// more than one commit before its blocks are all reusable.
    fn retry_enospc<R>(&self, mut op: impl FnMut() -> Result<R>) -> Result<R> {
        let mut retries = 0u32;
        loop {
            match op() {
                Err(Errno::ENOSPC) if retries < ALLOC_RETRIES && self.commit_for_space()? => {
                    retries = retries.saturating_add(1);
                }
                r => return r,
            }
        }
    }

    /// Writes the superblock in `h`, with orphan head `orphan_head` and the clean bit
    /// set (`clean`: no read-write mount is active) or not.
    fn write_sb(&self, h: &Handle<'_>, orphan_head: u32, clean: bool) -> Result {
        let mut sb = self.sb.clone();
        sb.orphan_head = orphan_head;
        if clean {
            sb.state |= STATE_CLEAN;
        } else {
            sb.state &= !STATE_CLEAN;
        }
        let buf = self.dev.read(SUPERBLOCK_BLOCK)?;
        h.modify(&buf, |b| sb.encode(b))?
    }

    /// Puts inode `ino` on the orphan list, unless it is on it already. Going on the
    /// list, `inode` (the caller's copy, given its link here) is written whole under
    /// the list's lock; a caller that changes it further writes it again ([`Xv6Fs::iput`]).
    /// Returns the list, still locked, for a caller with more to record about the
    /// orphan, and whether `inode` was written.
    fn orphan_add<'a>(
        &self,
        h: &Handle<'_>,
        st: &'a State,
        ino: u32,
        inode: &mut DiskInode,
    ) -> Result<(MutexGuard<'a, Orphans>, bool)> {
        let mut o = st.orphans.lock();
        if o.set.contains_key(&ino) {
            return Ok((o, false));
        }
        self.link_orphans(&mut o)?;
        let next = o.head;
        o.set.insert(ino, Link { prev: 0, next })?;
        inode.orphan_next = next;
        let r = self
            .iput_with_link(h, ino, inode)
            .and_then(|()| self.write_sb(h, ino, false));
        if let Err(e) = r {
            o.set.remove(&ino);
            return Err(e);
        }
        if let Some(l) = o.set.get_mut(&next) {
            l.prev = ino;
        }
        o.head = ino;
        Ok((o, true))
    }

    /// Takes inode `ino` off the orphan list if it is on it: its predecessor's link (or
    /// the list's head) skips it, and `inode` (the caller's copy, its link now 0) is
    /// written whole under the list's lock. Returns whether it was; a caller that changes
    /// `inode` further writes it again ([`Xv6Fs::iput`]), one whose `inode` was not
    /// written writes it too.
    fn orphan_remove(
        &self,
        h: &Handle<'_>,
        st: &State,
        ino: u32,
        inode: &mut DiskInode,
    ) -> Result<bool> {
        let mut o = st.orphans.lock();
        if !o.set.contains_key(&ino) {
            return Ok(false);
        }
        self.link_orphans(&mut o)?;
        let Link { prev, next } = o.set.get(&ino).copied().unwrap_or_default();
        if prev == 0 {
            if o.head != ino {
                return Err(corrupt(format_args!("orphan list: inode {ino} missing")));
            }
            self.write_sb(h, next, false)?;
            o.head = next;
        } else {
            self.set_orphan_link(h, prev, next)?;
            if let Some(l) = o.set.get_mut(&prev) {
                l.next = next;
            }
        }
        if let Some(l) = o.set.get_mut(&next) {
            l.prev = prev;
        }
        inode.orphan_next = 0;
        o.set.remove(&ino);
        o.ahead.remove(&ino);
        self.iput_with_link(h, ino, inode)?;
        Ok(true)
    }

    /// Reads the orphan list from the disk into `st.orphans`.
    fn load_orphans(&self, st: &State) -> Result {
        let mut o = st.orphans.lock();
        o.set.clear();
        o.ahead.clear();
        o.loaded = false;
        o.linked = false;
        self.walk_orphans(&mut o, true)?;
        o.loaded = true;
        Ok(())
    }

    /// Makes sure the back links of `o` are known before the list changes: a live
    /// upgrade hands over only the orphans' numbers (its blob), which the first change
    /// afterwards links from the disk (the new version reads nothing while the mount is
    /// held).
    fn link_orphans(&self, o: &mut Orphans) -> Result {
        if o.linked {
            return Ok(());
        }
        self.walk_orphans(o, false)
    }

    /// Walks the orphan list on the disk from `o.head`, linking the members of
    /// `o.set` (`add`: adding them first, the set being empty); every member must be
    /// visited once.
    fn walk_orphans(&self, o: &mut Orphans, add: bool) -> Result {
        let (mut prev, mut ino) = (0u32, o.head);
        let mut steps = 0u32;
        while ino != 0 {
            let members = u32::try_from(o.set.len()).unwrap_or(u32::MAX);
            if (!add && steps > members) || steps > self.sb.ninodes {
                return Err(corrupt(format_args!("orphan list loops")));
            }
            let next = self.iread(ino)?.orphan_next;
            let link = Link { prev, next };
            let known = if add {
                o.set.insert(ino, link)?.is_none()
            } else {
                o.set.get_mut(&ino).map(|l| *l = link).is_some()
            };
            if !known {
                return Err(corrupt(format_args!(
                    "orphan list: inode {ino} on the disk's list, not in memory's"
                )));
            }
            (prev, ino) = (ino, next);
            steps = steps.saturating_add(1);
        }
        if usize::try_from(steps).ok() != Some(o.set.len()) {
            return Err(corrupt(format_args!(
                "orphan list: {} in memory, {steps} on the disk",
                o.set.len()
            )));
        }
        o.linked = true;
        Ok(())
    }

    /// Frees an inode with no links left: its blocks (one transaction per chunk), then
    /// its xattr block and its number, taking it off the orphan list.
    fn release_inode(&self, access: Access, ino: u32) -> Result {
        loop {
            // One more revoke than a truncation chunk uses: the xattr block.
            let revokes = REVOKE_BUDGET.saturating_add(1);
            let done = self.tx(access, NS_CREDITS, revokes, |h, st| {
                let _il = self.ilock_write(ino)?;
                let mut inode = self.iread(ino)?;
                let done = if inode.flags & FLAG_INLINE_SYMLINK != 0 {
                    Ok(true)
                } else {
                    self.free_from(st, h, ino, &mut inode, 0)
                };
                if !matches!(done, Ok(true)) {
                    // Keep the inode in step with the bitmap, even after an error.
                    self.iput(h, ino, &inode)?;
                    return done;
                }
                if inode.xattr_block != 0 {
                    let b = inode.xattr_block;
                    st.blocks.lock().release(&self.dev, h, b)?;
                    h.revoke(u64::from(b))?;
                    self.journal.defer_free(h.tid(), u64::from(b), 1)?;
                }
                // The inode goes (zeros) as it leaves the list: one write.
                if !self.orphan_remove(h, st, ino, &mut DiskInode::default())? {
                    self.iput(h, ino, &DiskInode::default())?;
                }
                st.inodes.lock().release(&self.dev, h, ino)?;
                Ok(true)
            })?;
            if done {
                return Ok(());
            }
        }
    }

    /// After a crash (at mount, or when a read-only mount becomes read-write): frees
    /// or truncates every inode on the orphan list.
    fn process_orphans(&self) -> Result {
        self.load_orphans(&self.state.write())?;
        let mut n = 0u32;
        loop {
            let (ino, inode) = {
                let st = self.state.read();
                let head = st.orphans.lock().head;
                if head == 0 {
                    break;
                }
                (head, self.iread(head)?)
            };
            if inode.nlink == 0 {
                self.release_inode(Access::Internal, ino)?;
            } else {
                self.truncate_blocks(Access::Internal, ino, inode.size)?;
                self.tx(Access::Internal, NS_CREDITS, 0, |h, st| {
                    let mut inode = self.iread(ino)?;
                    if !self.orphan_remove(h, st, ino, &mut inode)? {
                        self.iput(h, ino, &inode)?;
                    }
                    Ok(())
                })?;
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

    /// Frees the blocks of `ino` past `size`, one transaction per chunk.
    fn truncate_blocks(&self, access: Access, ino: u32, size: u64) -> Result {
        let keep = size.div_ceil(BLOCK_SIZE_U64);
        loop {
            let done = self.tx(access, NS_CREDITS, REVOKE_BUDGET, |h, st| {
                let _il = self.ilock_write(ino)?;
                let mut inode = self.iget(ino)?;
                let done = self.free_from(st, h, ino, &mut inode, keep);
                // Keep the inode in step with the bitmap, even after an error.
                self.iput(h, ino, &inode)?;
                done
            })?;
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
    /// parts (directory block, symlink target) in the same transaction. Again after a
    /// commit if it ran out of space (with no lock and no handle held).
    #[allow(clippy::type_complexity)]
    fn make(
        &self,
        req: &Request,
        parent: Ino,
        name: &[u8],
        mode: u32,
        rdev: u32,
        init: &dyn Fn(&Xv6Fs, &Handle<'_>, &State, u32, &mut DiskInode) -> Result,
    ) -> Result<Entry> {
        self.retry_enospc(|| self.make_once(req, parent, name, mode, rdev, init))
    }

    #[allow(clippy::type_complexity)]
    fn make_once(
        &self,
        req: &Request,
        parent: Ino,
        name: &[u8],
        mode: u32,
        rdev: u32,
        init: &dyn Fn(&Xv6Fs, &Handle<'_>, &State, u32, &mut DiskInode) -> Result,
    ) -> Result<Entry> {
        self.check_writable()?;
        dir::check_name(name)?;
        let parent = ino32(parent)?;
        let kind = kind_of(mode)?;
        // Revokes: undoing a failed make frees the new inode's block (metadata).
        self.transact(NS_CREDITS, REVOKE_BUDGET, |h, st| {
            let _pl = self.ilock_write(parent)?;
            let mut pi = self.iget(parent)?;
            if pi.kind() != Some(FileType::Directory) {
                return Err(Errno::ENOTDIR);
            }
            // EEXIST (and the name's checks) before anything is allocated.
            let hash = self.hash(name);
            let key = dir::new_key(&Dir::reader(self, parent, pi.clone()), hash, name)?;
            if kind == FileType::Directory && pi.nlink >= u32::from(u16::MAX) {
                return Err(Errno::EMLINK);
            }
            let pattr = self.attr(parent, &pi)?;
            // Whether the inode's table block holds no other inode: decided under the
            // allocator's lock, so no other create can count on the block's old contents.
            let (ino, fresh) = {
                let mut inodes = st.inodes.lock();
                let ino = inodes.alloc(&self.dev, h, None, &crate::alloc::never_pending)?;
                (ino, inodes.others_clear(&self.dev, ino, INODES_PER_BLOCK)?)
            };
            let (uid, gid, perm) = new_inode_owner(req, &pattr, kind, mode);
            let now = bento::time::now();
            let generation = st
                .generation
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_add(1);
            let mut inode = DiskInode {
                mode: kind.mode_bits() | perm,
                uid,
                gid,
                nlink: if kind == FileType::Directory { 2 } else { 1 },
                atime: now,
                mtime: now,
                ctime: now,
                crtime: now,
                generation,
                rdev: if matches!(kind, FileType::CharDevice | FileType::BlockDevice) {
                    rdev
                } else {
                    0
                },
                ..DiskInode::default()
            };
            let made = init(self, h, st, ino, &mut inode).and_then(|()| {
                self.iput_new(h, ino, &inode, fresh)?;
                let d = Dir::writer(self, parent, pi.clone(), h, st);
                dir::insert_at(&d, key, name, ino, kind)?;
                pi = d.into_inode();
                Ok(())
            });
            if let Err(e) = made {
                // Undo in the same transaction: the number and any blocks go back.
                let _ = self.free_from(st, h, ino, &mut inode, 0);
                let _ = self.iput_new(h, ino, &DiskInode::default(), false);
                let _ = st.inodes.lock().release(&self.dev, h, ino);
                return Err(e);
            }
            if kind == FileType::Directory {
                pi.nlink = pi.nlink.saturating_add(1);
            }
            pi.mtime = now;
            pi.ctime = now;
            self.iput(h, parent, &pi)?;
            Ok(Entry {
                attr: self.attr(ino, &inode)?,
            })
        })
    }

    /// Drops one link of `ino` (`dir_gone`: a directory being removed, all links go).
    fn unlink_inode(
        &self,
        h: &Handle<'_>,
        st: &State,
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
        // An inode with no links left is freed when the kernel forgets it (it may still
        // be open); going on the orphan list writes it.
        if inode.nlink == 0 && self.orphan_add(h, st, ino, &mut inode)?.1 {
            return Ok(());
        }
        self.iput(h, ino, &inode)
    }
}

impl FileSystem for Xv6Fs {
    /// Credits of the framework's outer handle around a page's allocation, in which
    /// `map_blocks` (and a `setattr` that does not truncate) nest: one `map_blocks`
    /// allocation (at most [`MAP_CREDITS`] = 9: three indirect blocks on the path, four
    /// bitmap blocks, the inode, the superblock for the orphan list; see `inode.rs`)
    /// plus the inode again ([`SETATTR_CREDITS`] = 1). `map_blocks` allocates one run
    /// per call, whose blocks share one bitmap block and one indirect block, so the
    /// run's length does not change the count.
    const DATA_CREDITS: u32 = MAP_CREDITS + SETATTR_CREDITS;

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
        let sb = read_superblock(&dev)?;
        check_superblock(&dev, &sb, read_only)?;
        // Recovery may rewrite the superblock: read it again afterwards.
        let journal = Journal::load(&dev, u64::from(sb.journal_start), u64::from(sb.journal_len))?;
        let journal = Arc::new(journal)?;
        let sb = read_superblock(&dev)?;
        let blocks = Bitmap::load(
            &dev,
            sb.block_bitmap_start,
            sb.nblocks,
            sb.data_start,
            BLOCK_BITMAP,
        )?;
        let inodes = Bitmap::load(
            &dev,
            sb.inode_bitmap_start,
            sb.ninodes,
            FIRST_INODE,
            INODE_BITMAP,
        )?;
        let orphans = Orphans {
            head: sb.orphan_head,
            set: BTreeMap::new(),
            ahead: BTreeMap::new(),
            loaded: false,
            linked: false,
        };
        let generation = u32::try_from(bento::time::now().sec & 0xffff_ffff).unwrap_or(0);
        let state = State::new(blocks, inodes, orphans, generation)?;
        let fs = Xv6Fs::assemble(dev, journal, sb, read_only, state)?;
        let root = fs.iget(ROOT_INO)?;
        if root.kind() != Some(FileType::Directory) {
            return Err(corrupt(format_args!("root inode is not a directory")));
        }
        if !read_only {
            fs.start_writing()?;
        }
        Ok(fs)
    }

    /// State format 1: [`crate::upgrade`] describes the blob.
    const STATE_VERSION: u32 = crate::upgrade::STATE_VERSION;

    /// Hands the device, the journal and the in-memory state to the next version. The
    /// mount lock is held (alone) while the blob is written; nothing is stopped, so
    /// `resume` has nothing to restart and this instance stays usable as it is.
    fn export_state(&self) -> Result<Handover> {
        let st = self.state.write();
        let mut state = Handover::new(Self::STATE_VERSION, self.is_read_only());
        crate::upgrade::encode(&st, &self.sb, &mut state)?;
        state.set_device(self.dev.clone());
        state.set_journal(self.journal.clone());
        Ok(state)
    }

    /// Takes over a mount from the version that exported `state`: the superblock (checked
    /// as `mount` checks it), the allocators and the orphan set come from the blob.
    /// Nothing is read or written: the pause of an upgrade waits for no I/O.
    fn import_state(mut state: Handover) -> Result<Self> {
        let version = state.version();
        if !(Self::STATE_COMPAT..=Self::STATE_VERSION).contains(&version) {
            bento::error!(
                "xv6fs: upgrade state format {version}; this version reads {}..={}",
                Self::STATE_COMPAT,
                Self::STATE_VERSION
            );
            return Err(Errno::EINVAL);
        }
        let read_only = state.read_only();
        let (dev, journal) = match (state.take_device(), state.take_journal()) {
            (Ok(dev), Ok(journal)) => (dev, journal),
            _ => {
                bento::error!("xv6fs: upgrade state without its device or journal");
                return Err(Errno::EINVAL);
            }
        };
        if dev.block_size() != BLOCK_SIZE {
            bento::error!(
                "xv6fs: upgrade state: device block size {}",
                dev.block_size()
            );
            return Err(Errno::EINVAL);
        }
        let (st, sb) = crate::upgrade::decode(state.blob())?;
        check_superblock(&dev, &sb, read_only)?;
        Xv6Fs::assemble(dev, journal, sb, read_only, st)
    }

    fn remount(&self, read_only: bool) -> Result {
        match (read_only, self.is_read_only()) {
            (true, true) => return Ok(()),
            // Read-write here but read-only for the framework: it turned the mount
            // read-only itself after an error (errors=remount-ro), aborting the journal.
            // Writable again only if the journal takes a transaction (it refuses with
            // EROFS once aborted); the orphans are not processed again (some may be
            // open).
            (false, false) => {
                return self.tx(Access::Internal, SB_CREDITS, 0, |h, st| {
                    self.write_sb(h, st.orphans.lock().head, false)
                })
            }
            _ => {}
        }
        if read_only {
            // From now on every transaction fails with EROFS (checked under the lock,
            // so none is midway once the superblock below is written).
            self.read_only.store(true, Ordering::Release);
            let r = self
                .tx(Access::Internal, SB_CREDITS, 0, |h, st| {
                    self.write_sb(h, st.orphans.lock().head, true)
                })
                .and_then(|()| self.journal.force_commit())
                .and_then(|()| self.dev.sync());
            if r.is_err() {
                // The mount stays read-write, as the framework sees it.
                self.read_only.store(false, Ordering::Release);
            }
            return r;
        }
        if self.dev.read_only() {
            bento::error!("xv6fs: the device is read-only");
            return Err(Errno::EROFS);
        }
        if self.sb.ro_compat & !RO_COMPAT_SUPPORTED != 0 {
            bento::error!(
                "xv6fs: unsupported features {:#x}: stays read-only",
                self.sb.ro_compat
            );
            return Err(Errno::EROFS);
        }
        self.start_writing()?;
        self.read_only.store(false, Ordering::Release);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: Ino, name: &[u8]) -> Result<Entry> {
        let _st = self.state.read();
        let parent = ino32(parent)?;
        let found = {
            let _pl = self.ilock(parent)?.read();
            self.find(parent, name)?
        };
        match found {
            Some((ino, _)) => self.entry(ino),
            None => Err(Errno::ENOENT),
        }
    }

    fn forget(&self, ino: Ino) {
        let Ok(ino) = ino32(ino) else { return };
        if self.is_read_only() {
            return;
        }
        // An unlinked inode goes when the kernel lets go of it.
        let unlinked = {
            let _st = self.state.read();
            self.iread(ino)
                .is_ok_and(|inode| inode.mode != 0 && inode.nlink == 0)
        };
        if unlinked {
            if let Err(e) = self.release_inode(Access::Checked, ino) {
                bento::error!("xv6fs: freeing inode {ino}: {e}");
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
        let now = bento::time::now();
        let check_size = |inode: &DiskInode, size: u64| {
            if inode.kind() != Some(FileType::RegularFile) {
                return Err(Errno::EINVAL);
            }
            if size > crate::layout::MAX_FILE_BLOCKS.saturating_mul(BLOCK_SIZE_U64) {
                return Err(Errno::EFBIG);
            }
            Ok(())
        };
        let mut truncated = false;
        if let Some(size) = set.size {
            let (shrinks, settles) = {
                let st = self.state.read();
                let inode = self.iget(ino)?;
                let (orphan, ahead) = {
                    let o = st.orphans.lock();
                    (o.set.contains_key(&ino), o.ahead.get(&ino).copied())
                };
                let orphan = orphan && inode.nlink > 0;
                let shrinks = size < inode.size;
                let keep = size.div_ceil(BLOCK_SIZE_U64);
                let tail = if orphan && !shrinks {
                    check_size(&inode, size)?;
                    match ahead {
                        Some(end) => end > keep,
                        None => self.mapped_from(ino, &inode, keep)?,
                    }
                } else {
                    false
                };
                (shrinks, orphan.then_some(tail))
            };
            if let (false, Some(tail)) = (shrinks, settles) {
                // The size after a write whose blocks were allocated past the old size
                // (`map_blocks`): what lies past it goes (a short write), and the orphan
                // list lets go.
                if tail {
                    self.truncate_blocks(Access::Checked, ino, size)?;
                }
                truncated = true;
            } else if shrinks {
                // Blocks past the new end go, over as many transactions as needed: the
                // orphan list finishes the job after a crash. The framework zeroed the
                // rest of the block holding the new end (file data is its business), so
                // a later extension reads zeros.
                truncated = self.transact(NS_CREDITS, 0, |h, st| {
                    let _il = self.ilock_write(ino)?;
                    let mut inode = self.iget(ino)?;
                    check_size(&inode, size)?;
                    if size >= inode.size {
                        return Ok(false);
                    }
                    inode.size = size;
                    if !self.orphan_add(h, st, ino, &mut inode)?.1 {
                        self.iput(h, ino, &inode)?;
                    }
                    Ok(true)
                })?;
                if truncated {
                    self.truncate_blocks(Access::Checked, ino, size)?;
                }
            }
        }
        let credits = if truncated {
            NS_CREDITS
        } else {
            SETATTR_CREDITS
        };
        self.transact(credits, 0, |h, st| {
            let _il = self.ilock_write(ino)?;
            let mut inode = self.iget(ino)?;
            if let Some(size) = set.size {
                check_size(&inode, size)?;
                // Growing makes a hole (the bytes past the old end are zero already), or
                // takes in what a write put there: its data goes to the disk before this
                // transaction commits (data=ordered, as for new blocks).
                if size > inode.size {
                    h.order_data(u64::from(ino), inode.size, size.saturating_sub(inode.size))?;
                }
                inode.size = size;
                inode.mtime = now;
                // Off the orphan list, unless it lost its last link meanwhile (then
                // it stays there until it is forgotten).
                if truncated && inode.nlink > 0 {
                    self.orphan_remove(h, st, ino, &mut inode)?;
                }
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
            self.iput(h, ino, &inode)?;
            self.attr(ino, &inode)
        })
    }

    fn readlink(&self, _req: &Request, ino: Ino, buf: &mut [u8]) -> Result<usize> {
        let _st = self.state.read();
        let ino = ino32(ino)?;
        let _il = self.ilock(ino)?.read();
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
        self.transact(NS_CREDITS, 0, |h, st| {
            if name.len() > NAME_MAX {
                return Err(Errno::ENAMETOOLONG);
            }
            if name == b"." || name == b".." {
                return Err(Errno::EISDIR);
            }
            let now = bento::time::now();
            let mut ino = 0;
            {
                let _pl = self.ilock_write(parent)?;
                self.edit_dir(h, st, parent, now, 0, |d| {
                    let (i, _) = dir::remove_if(d, self.hash(name), name, &mut |_, kind| {
                        if kind == FileType::Directory {
                            Err(Errno::EISDIR)
                        } else {
                            Ok(())
                        }
                    })?;
                    ino = i;
                    Ok(())
                })?;
            }
            // Then the file, under its own lock (one inode lock at a time), in the same
            // transaction.
            let _il = self.ilock_write(ino)?;
            self.unlink_inode(h, st, ino, false, now)
        })
    }

    fn rmdir(&self, _req: &Request, parent: Ino, name: &[u8]) -> Result {
        self.check_writable()?;
        let parent = ino32(parent)?;
        self.tx(Access::Alone, NS_CREDITS, 0, |h, st| {
            let (ino, kind) = self.find(parent, name)?.ok_or(Errno::ENOENT)?;
            if kind != FileType::Directory {
                return Err(Errno::ENOTDIR);
            }
            if !dir::is_empty(&Dir::reader(self, ino, self.iget(ino)?))? {
                return Err(Errno::ENOTEMPTY);
            }
            let now = bento::time::now();
            self.edit_dir(h, st, parent, now, -1, |d| {
                dir::remove(d, self.hash(name), name).map(|_| ())
            })?;
            self.unlink_inode(h, st, ino, true, now)
        })
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
        self.tx(Access::Alone, NS_CREDITS, 0, |h, st| {
            let (src, skind) = self.find(parent, name)?.ok_or(Errno::ENOENT)?;
            let dst = self.find(newparent, newname)?;
            if parent == newparent && name == newname {
                return Ok(());
            }
            let now = bento::time::now();
            if flags & rename_flags::EXCHANGE != 0 {
                let (dst, dkind) = dst.ok_or(Errno::ENOENT)?;
                self.swap_entry(h, st, parent, name, dst, dkind, now)?;
                self.swap_entry(h, st, newparent, newname, src, skind, now)?;
                if parent != newparent {
                    for (ino, kind, from, to) in [
                        (src, skind, parent, newparent),
                        (dst, dkind, newparent, parent),
                    ] {
                        if kind == FileType::Directory {
                            self.reparent(h, st, ino, from, to)?;
                        }
                    }
                }
                for ino in [src, dst] {
                    let mut i = self.iget(ino)?;
                    i.ctime = now;
                    self.iput(h, ino, &i)?;
                }
                return Ok(());
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
                self.swap_entry(h, st, newparent, newname, src, skind, now)?;
                self.unlink_inode(h, st, dst, dkind == FileType::Directory, now)?;
                if dkind == FileType::Directory {
                    let mut np = self.iget(newparent)?;
                    np.nlink = np.nlink.saturating_sub(1);
                    self.iput(h, newparent, &np)?;
                }
                return self.finish_move(h, st, parent, name, src, skind, newparent, now);
            }
            self.edit_dir(h, st, newparent, now, 0, |d| {
                dir::insert(d, self.hash(newname), newname, src, skind)
            })?;
            self.finish_move(h, st, parent, name, src, skind, newparent, now)
        })
    }

    fn link(&self, _req: &Request, ino: Ino, newparent: Ino, newname: &[u8]) -> Result<Entry> {
        self.check_writable()?;
        dir::check_name(newname)?;
        let (ino, newparent) = (ino32(ino)?, ino32(newparent)?);
        self.tx(Access::Alone, NS_CREDITS, 0, |h, st| {
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
            let kind = inode.kind().ok_or(Errno::EIO)?;
            self.edit_dir(h, st, newparent, now, 0, |d| {
                dir::insert(d, self.hash(newname), newname, ino, kind)
            })?;
            inode.nlink = inode.nlink.saturating_add(1);
            inode.ctime = now;
            if inode.nlink == 1 {
                // Linked again (O_TMPFILE style): no longer an orphan.
                self.orphan_remove(h, st, ino, &mut inode)?;
            }
            self.iput(h, ino, &inode)?;
            Ok(Entry {
                attr: self.attr(ino, &inode)?,
            })
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
        // Every change is in the journal as it happens: committing writes the data of
        // every file first (data=ordered), then the metadata; a device flush covers
        // overwrites that changed no metadata.
        self.journal.commit_for_fsync(&self.dev)
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
        let _il = self.ilock(ino32)?.read();
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
        let (bfree, ffree) = {
            let st = self.state.read();
            let bfree = st.blocks.lock().free();
            let ffree = st.inodes.lock().free();
            (bfree, ffree)
        };
        Ok(Statfs {
            blocks: u64::from(self.sb.nblocks.saturating_sub(self.sb.data_start)),
            bfree: u64::from(bfree),
            bavail: u64::from(bfree),
            files: u64::from(self.sb.ninodes.saturating_sub(1)),
            ffree: u64::from(ffree),
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
        let _il = self.ilock(ino)?.read();
        let (ns, short) = xattr::split_name(req, name, false)?;
        let inode = self.iget(ino)?;
        if xattr::is_version_attr(ino, ns, short) {
            return xattr::get_version(buf);
        }
        xattr::get(self, ino, &inode, ns, short, buf)
    }

    fn listxattr(&self, req: &Request, ino: Ino, buf: &mut [u8]) -> Result<usize> {
        let _st = self.state.read();
        let ino = ino32(ino)?;
        let _il = self.ilock(ino)?.read();
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
        let kind = {
            let _st = self.state.read();
            self.iget(ino)?.kind()
        };
        match kind {
            Some(FileType::RegularFile) => {}
            Some(FileType::Directory) => return Err(Errno::EISDIR),
            _ => return Err(Errno::ENODEV),
        }
        if mode == PUNCH_HOLE | KEEP_SIZE {
            return self.punch_hole(ino, offset, end);
        }
        if mode & !KEEP_SIZE != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        if end > crate::layout::MAX_FILE_BLOCKS.saturating_mul(BLOCK_SIZE_U64) {
            return Err(Errno::EFBIG);
        }
        // Allocate every missing block, marked unwritten (it reads as zeros until a
        // write clears the mark in `map_blocks`), or, on a file system without that
        // feature, zeroed on the device: the only file data xv6fs writes itself. One
        // transaction per chunk.
        let unwritten = self.sb.incompat & INCOMPAT_UNWRITTEN != 0;
        let mut fblk = offset / BLOCK_SIZE_U64;
        let last = end.div_ceil(BLOCK_SIZE_U64);
        let mut retries = 0u32;
        loop {
            let from = fblk;
            let r = self.transact(NS_CREDITS, 0, |h, st| {
                let _il = self.ilock_write(ino)?;
                let mut inode = self.iget(ino)?;
                check_regular(&inode)?;
                let mut budget = FREE_BUDGET;
                let r = (|| -> Result {
                    while fblk < last && budget > 0 {
                        let run = self.lookup_run(ino, &inode, fblk, last.saturating_sub(fblk))?;
                        if run.block != 0 {
                            fblk = fblk.saturating_add(run.len);
                            continue;
                        }
                        if h.credits_left() < self.alloc_credits(ino, &inode, fblk)? {
                            break;
                        }
                        let (first, n) =
                            self.alloc_run(st, h, ino, &mut inode, fblk, run.len, unwritten)?;
                        // Zeroed before the lock goes, so no reader maps it unzeroed,
                        // and on the device before the allocation commits (as ordered
                        // data would be; nothing is in the page cache to order).
                        if !unwritten {
                            self.dev.zero_blocks(u64::from(first), n)?;
                        }
                        budget = budget.saturating_sub(u32::try_from(n).unwrap_or(u32::MAX));
                        fblk = fblk.saturating_add(n);
                    }
                    Ok(())
                })();
                if r.is_ok() && mode & KEEP_SIZE == 0 && end > inode.size && fblk >= last {
                    inode.size = end;
                }
                inode.ctime = bento::time::now();
                // Written even after an error: keeps the inode in step with the bitmap.
                self.iput(h, ino, &inode)?;
                Ok(r)
            })?;
            match r {
                Ok(()) if fblk >= last => return Ok(()),
                // Not even one run fit in the handle (a nested one, short of credits).
                Ok(()) if fblk == from => return Err(Errno::ENOSPC),
                Ok(()) => {}
                // Freed blocks become usable when their transaction commits.
                Err(Errno::ENOSPC) if retries < ALLOC_RETRIES && self.commit_for_space()? => {
                    retries = retries.saturating_add(1);
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn lseek(&self, _req: &Request, ino: Ino, _fh: u64, offset: i64, wh: i32) -> Result<i64> {
        let _st = self.state.read();
        let ino = ino32(ino)?;
        let _il = self.ilock(ino)?.read();
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
            // Unwritten blocks read as zeros: a hole, as for ext4 (whose page cache
            // may hold data there; here the first write marks them written).
            let run = self.lookup_run(ino, &inode, fblk, last.saturating_sub(fblk))?;
            if run.is_data() == want_data {
                let pos = fblk.saturating_mul(BLOCK_SIZE_U64).max(start);
                return i64::try_from(pos).map_err(|_| Errno::EOVERFLOW);
            }
            fblk = fblk.saturating_add(run.len);
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
            let _il = self.ilock(ino)?.read();
            let inode = self.iget(ino)?;
            check_regular(&inode)?;
            // Unwritten blocks are holes to the framework until a write takes them.
            let run = self.lookup_run(ino, &inode, file_block, count)?;
            if run.is_data() {
                return Ok(extent(run.block, run.len, false));
            }
            if !create {
                return Ok(extent(0, run.len, false));
            }
        }
        self.check_writable()?;
        // Freed blocks become usable when their transaction commits (not done on a
        // thread holding the framework's handle: it retries after committing).
        self.retry_enospc(|| self.map_alloc(ino, file_block, count))
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

/// What the block bitmap allocates, for messages.
pub(crate) const BLOCK_BITMAP: &str = "block bitmap";
/// What the inode bitmap allocates, for messages.
pub(crate) const INODE_BITMAP: &str = "inode bitmap";
/// The first inode number the inode bitmap hands out.
pub(crate) const FIRST_INODE: u32 = ROOT_INO.saturating_add(1);

/// Reads and decodes the superblock (from the buffer cache if it is there).
fn read_superblock(dev: &BlockDevice) -> Result<Superblock> {
    let buf = dev.read(SUPERBLOCK_BLOCK)?;
    let g = buf.lock();
    Superblock::decode(&g)
}

/// Whether this version can mount `sb` on `dev` (read-only or not): its features and
/// its size.
fn check_superblock(dev: &BlockDevice, sb: &Superblock, read_only: bool) -> Result {
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
    Ok(())
}

impl Xv6Fs {
    /// The instance of a mount (`mount`, or a live upgrade's `import_state`) from its
    /// parts; checks the root inode. Reads only.
    fn assemble(
        dev: BlockDevice,
        journal: Arc<Journal>,
        sb: Superblock,
        read_only: bool,
        state: State,
    ) -> Result<Xv6Fs> {
        let mut fs = Xv6Fs {
            seed: sb.csum_seed(),
            dev,
            journal,
            sb,
            read_only: AtomicBool::new(read_only),
            state: bento::new_rwlock!(state, "xv6fs::mount")?,
            ilocks: Vec::new(),
        };
        for _ in 0..INODE_LOCKS {
            fs.ilocks.push(bento::new_rwlock!((), "xv6fs::inode")?)?;
        }
        Ok(fs)
    }

    /// Makes the file system ready for writing (a read-write mount, or a read-only one
    /// becoming read-write): processes the orphan list and marks the superblock not
    /// clean. Runs before the mount is writable to anyone else.
    fn start_writing(&self) -> Result {
        self.process_orphans()?;
        self.tx(Access::Internal, SB_CREDITS, 0, |h, st| {
            self.write_sb(h, st.orphans.lock().head, false)
        })
    }

    /// Changes the entries of directory `dir` with `f` in transaction `h`, then adds
    /// `nlink_delta` to its link count, stamps its mtime and ctime and writes it.
    fn edit_dir(
        &self,
        h: &Handle<'_>,
        st: &State,
        dir: u32,
        now: Timespec,
        nlink_delta: i32,
        f: impl FnOnce(&Dir<'_, '_>) -> Result,
    ) -> Result {
        let di = self.iget(dir)?;
        if di.kind() != Some(FileType::Directory) {
            return Err(Errno::ENOTDIR);
        }
        let d = Dir::writer(self, dir, di, h, st);
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
        if xattr::is_version_attr(ino, ns, short) {
            return Err(Errno::EPERM);
        }
        // One revoke: removing the last attribute frees the xattr block.
        self.transact(NS_CREDITS, 1, |h, st| {
            let _il = self.ilock_write(ino)?;
            let mut inode = self.iget(ino)?;
            xattr::set(self, h, st, ino, &mut inode, ns, short, value, flags)?;
            inode.ctime = bento::time::now();
            self.iput(h, ino, &inode)
        })
    }

    /// Points entry `name` of `parent` at `ino`.
    #[allow(clippy::too_many_arguments)]
    fn swap_entry(
        &self,
        h: &Handle<'_>,
        st: &State,
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
    fn reparent(&self, h: &Handle<'_>, st: &State, ino: u32, from: u32, to: u32) -> Result {
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
        st: &State,
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

    /// `map_blocks` with `create` on a hole or unwritten blocks: allocates one run, or
    /// marks one unwritten run written, in one transaction (nested in the framework's
    /// handle around a buffered write, if any: then it fits in the credits left, which
    /// `DATA_CREDITS` makes enough for one call). Either way the framework gets the run
    /// as new: its blocks hold garbage until written.
    fn map_alloc(&self, ino: u32, fblk: u64, count: u64) -> Result<Extent> {
        self.transact(MAP_CREDITS, 0, |h, st| {
            let _il = self.ilock_write(ino)?;
            let mut inode = self.iget(ino)?;
            check_regular(&inode)?;
            // Mapped meanwhile (before this thread took the lock)?
            let run = self.lookup_run(ino, &inode, fblk, count)?;
            if run.is_data() {
                return Ok(extent(run.block, run.len, false));
            }
            // A run wholly past the size: its first block is the one being written
            // (its data and the new size come in this transaction), the others wait
            // for a size change in a later one (the framework writes the run first,
            // then sets the size), or never (a short write, a crash). The orphan list
            // keeps them until a `setattr` gives the size (and frees what lies past
            // it), or recovery frees them, so blocks past the size stay zero.
            let past_end = fblk.saturating_mul(BLOCK_SIZE_U64) >= inode.size;
            let need = self
                .alloc_credits(ino, &inode, fblk)?
                .saturating_add(u32::from(past_end));
            if h.credits_left() < need {
                // Only in a nested handle that earlier calls used up: nothing changed,
                // the framework retries with a new handle.
                bento::warn!(
                    "xv6fs: map_blocks of inode {ino}: {} journal credits left, {need} needed",
                    h.credits_left()
                );
                return Err(Errno::ENOSPC);
            }
            // The framework writes the new blocks: their data goes before the commit.
            let r = if run.unwritten {
                // Unwritten blocks past the size are taken one at a time, needing no
                // orphan: the `setattr` that settles an orphan frees every block past
                // the size, which would take `KEEP_SIZE` preallocation with it.
                let n = if past_end { 1 } else { run.len };
                self.mark_written(h, ino, &mut inode, fblk, n)
                    .map(|()| (run.block, n))
            } else {
                self.alloc_run(st, h, ino, &mut inode, fblk, run.len, false)
            };
            let r = r.and_then(|run| {
                h.order_data(
                    u64::from(ino),
                    fblk.saturating_mul(BLOCK_SIZE_U64),
                    run.1.saturating_mul(BLOCK_SIZE_U64),
                )
                .map(|()| run)
            });
            let r = match r {
                Ok(run) if past_end && run.1 > 1 => self
                    .orphan_add(h, st, ino, &mut inode)
                    .and_then(|(mut o, _)| {
                        let end = fblk.saturating_add(run.1);
                        let was = o.ahead.get(&ino).copied().unwrap_or(0);
                        o.ahead.insert(ino, was.max(end))?;
                        Ok(run)
                    }),
                r => r,
            };
            // Indirect blocks may have been added even if the run failed: keep the
            // inode in step with the bitmap.
            let w = self.iput(h, ino, &inode);
            let (first, n) = r?;
            w?;
            Ok(extent(first, n, true))
        })
    }

    /// Hole punching: frees the blocks lying wholly inside `[start, end)` clipped to the
    /// file size (the framework zeroed the partial blocks at the edges, as
    /// `FileSystem::fallocate` says), one transaction per chunk.
    fn punch_hole(&self, ino: u32, start: u64, end: u64) -> Result {
        let size = {
            let _st = self.state.read();
            self.iget(ino)?.size
        };
        if start >= size {
            return Ok(());
        }
        let end = end.min(size);
        let mut fblk = start.div_ceil(BLOCK_SIZE_U64);
        let last = end / BLOCK_SIZE_U64;
        loop {
            let from = fblk;
            self.transact(NS_CREDITS, 0, |h, st| {
                let _il = self.ilock_write(ino)?;
                let mut inode = self.iget(ino)?;
                check_regular(&inode)?;
                let mut budget = FREE_BUDGET;
                let r = (|| -> Result {
                    while fblk < last && h.credits_left() >= 8 && budget > 0 {
                        let run = self.lookup_run(ino, &inode, fblk, last.saturating_sub(fblk))?;
                        if run.block == 0 {
                            fblk = fblk.saturating_add(run.len);
                            continue;
                        }
                        let mut i = 0u64;
                        while i < run.len && h.credits_left() >= 8 && budget > 0 {
                            let k = u32::try_from(i).map_err(|_| Errno::EIO)?;
                            let blk = run.block.saturating_add(k);
                            let f = fblk.saturating_add(i);
                            self.clear_block(st, h, ino, &mut inode, f, blk)?;
                            budget = budget.saturating_sub(1);
                            i = i.saturating_add(1);
                        }
                        fblk = fblk.saturating_add(i);
                    }
                    Ok(())
                })();
                inode.ctime = bento::time::now();
                inode.mtime = inode.ctime;
                // Written even after an error: keeps the inode in step with the bitmap.
                self.iput(h, ino, &inode)?;
                r
            })?;
            if fblk >= last {
                return Ok(());
            }
            if fblk == from {
                // Not even one block fit in the handle (a nested one, short of credits).
                return Err(Errno::ENOSPC);
            }
        }
    }
}
