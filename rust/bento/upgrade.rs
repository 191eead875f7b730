// SPDX-License-Identifier: GPL-2.0
//! Live upgrade: what a mounted instance hands to the next version of its file system.
//!
//! Loading a newer version of a mounted file system (another module, same name, higher
//! version) switches every superblock to it without unmounting. For each superblock the
//! framework stops new calls into the file system, waits for the running ones to return,
//! then calls the old version's [`FileSystem::export_state`] and the new version's
//! [`FileSystem::import_state`] with the [`Handover`] it returned, and resumes the calls
//! on the new instance. The versions are different crates, so nothing of the file
//! system's own types crosses: only this container, whose handles are `bento` types
//! (the same in both, since every module is built against the one `bento`), and a small
//! byte blob the file system encodes itself (with [`crate::bytes`]).
//!
//! If any superblock's import fails, every superblock stays on the old version: the new
//! instances made so far are dropped and the old ones get [`FileSystem::resume`]. So:
//! - `export_state` must leave the old instance usable (it is dropped only after every
//!   import succeeded), and
//! - `import_state` must not change anything on disk or outside the new instance, so
//!   that dropping it undoes it; and dropping the old instance after a successful switch
//!   must not either (the handles it shares with the new one stay open).
//!
//! The project's `docs/upgrade-guide.md` gives the rules on what may change between
//! versions.
//!
//! ```
//! use bento::upgrade::Handover;
//! use bento::bytes::{Reader, Writer};
//! # fn main() -> bento::Result {
//! // Old version: export a counter.
//! let mut state = Handover::new(1, false);
//! let blob = state.blob_mut(8)?;
//! Writer::new(blob).u64(0, 42);
//! // New version: import it.
//! let r = Reader::new(state.blob());
//! let counter = r.u64(0);
//! r.finish()?;
//! assert_eq!((state.version(), counter), (1, 42));
//! # Ok(())
//! # }
//! ```

use crate::block::BlockDevice;
use crate::collections::Vec;
use crate::errno::{Errno, Result};
use crate::journal::Journal;
use crate::sync::Arc;

/// The state one version of a file system hands the next on live upgrade: the open
/// handles of the mount plus a versioned blob. Made by [`FileSystem::export_state`],
/// consumed by [`FileSystem::import_state`].
///
/// [`FileSystem::export_state`]: crate::FileSystem::export_state
/// [`FileSystem::import_state`]: crate::FileSystem::import_state
pub struct Handover {
    version: u32,
    read_only: bool,
    device: Option<BlockDevice>,
    journal: Option<Arc<Journal>>,
    blob: Vec<u8>,
}

impl Handover {
    /// An empty handover in state format `version` (the exporter's
    /// [`FileSystem::STATE_VERSION`](crate::FileSystem::STATE_VERSION)), for a mount that
    /// is read-only or not.
    pub fn new(version: u32, read_only: bool) -> Self {
        Handover {
            version,
            read_only,
            device: None,
            journal: None,
            blob: Vec::new(),
        }
    }

    /// The state format the exporter wrote.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Whether the mount is read-only.
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// Hands over the mount's block device.
    pub fn set_device(&mut self, dev: BlockDevice) {
        self.device = Some(dev);
    }

    /// Hands over the mount's journal. The old instance keeps its reference until it is
    /// dropped; the journal stays loaded as long as either holds it.
    pub fn set_journal(&mut self, journal: Arc<Journal>) {
        self.journal = Some(journal);
    }

    /// Takes the block device (`EINVAL` if none was handed over).
    pub fn take_device(&mut self) -> Result<BlockDevice> {
        self.device.take().ok_or(Errno::EINVAL)
    }

    /// Takes the journal (`EINVAL` if none was handed over).
    pub fn take_journal(&mut self) -> Result<Arc<Journal>> {
        self.journal.take().ok_or(Errno::EINVAL)
    }

    /// Makes the blob `len` zeroed bytes and returns it for writing.
    pub fn blob_mut(&mut self, len: usize) -> Result<&mut [u8]> {
        self.blob = Vec::zeroed(len)?;
        Ok(&mut self.blob)
    }

    /// The blob as the exporter wrote it.
    pub fn blob(&self) -> &[u8] {
        &self.blob
    }
}
