// SPDX-License-Identifier: GPL-2.0
//! Interoperability of the userspace journal with the real jbd2 format, through
//! e2fsprogs (`mke2fs`, `debugfs`, `e2fsck`), on the journal of a fresh ext4 image:
//!
//! - transactions written by this journal and left dirty are replayed by `e2fsck` and
//!   parsed by `debugfs logdump`;
//! - transactions written by `debugfs`'s journal writer are replayed by this journal
//!   exactly as `e2fsck` replays them.
//!
//! Only journal replay of free blocks is relied on, not ext4 metadata. The tests skip
//! (with a message) when e2fsprogs is not installed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bento::block::BlockDevice;
use bento::journal::Journal;
use common::{pattern, read_block, Image, BS};

fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(PathBuf::from)
        .chain(std::env::split_paths(&path))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The e2fsprogs tools, or `None` (and a message) when one is missing.
fn tools() -> Option<[PathBuf; 3]> {
    let t = ["mke2fs", "debugfs", "e2fsck"].map(tool);
    match t {
        [Some(a), Some(b), Some(c)] => Some([a, b, c]),
        _ => {
            eprintln!("SKIPPED: e2fsprogs (mke2fs, debugfs, e2fsck) not installed");
            None
        }
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("cannot run an e2fsprogs tool")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

struct Ext4 {
    img: Image,
    debugfs: PathBuf,
    e2fsck: PathBuf,
}

impl Ext4 {
    /// A fresh 256 MiB (sparse) ext4 image with a 4 MiB journal, which mke2fs places
    /// in one extent at this size.
    fn new(tag: &str) -> Option<Ext4> {
        let [mke2fs, debugfs, e2fsck] = tools()?;
        let img = Image::new(tag, 0);
        let out = run(Command::new(mke2fs)
            .args(["-q", "-F", "-t", "ext4", "-b", "4096"])
            .args(["-O", "metadata_csum,64bit", "-J", "size=4"])
            .arg(&img.path)
            .arg("256M"));
        assert!(out.status.success(), "mke2fs failed: {}", text(&out));
        Some(Ext4 {
            img,
            debugfs,
            e2fsck,
        })
    }

    fn debugfs(&self, write: bool, request: &str) -> String {
        let mut cmd = Command::new(&self.debugfs);
        if write {
            cmd.arg("-w");
        }
        let out = run(cmd.arg("-R").arg(request).arg(&self.img.path));
        assert!(out.status.success(), "debugfs {request}: {}", text(&out));
        text(&out)
    }

    /// The journal inode's blocks as `(start, len)`; they must be one extent.
    fn journal_area(&self) -> (u64, u64) {
        let stat = self.debugfs(false, "stat <8>");
        let extents = stat
            .lines()
            .skip_while(|l| !l.starts_with("EXTENTS:"))
            .nth(1)
            .expect("no extents for the journal inode");
        // "(0-1023):32801-33824"
        let (logical, physical) = extents.trim().split_once("):").expect("extent format");
        assert_eq!(logical, "(0-1023", "journal not in one extent: {extents}");
        let (a, b) = physical.split_once('-').unwrap();
        let (a, b): (u64, u64) = (a.parse().unwrap(), b.trim().parse().unwrap());
        (a, b - a + 1)
    }

    /// `n` free blocks of the file system.
    fn free_blocks(&self, n: usize) -> Vec<u64> {
        let out = self.debugfs(false, &format!("ffb {n} 20000"));
        let list = out
            .lines()
            .find_map(|l| l.strip_prefix("Free blocks found: "))
            .expect("ffb output");
        let v: Vec<u64> = list
            .split_whitespace()
            .map(|b| b.parse().unwrap())
            .collect();
        assert_eq!(v.len(), n);
        v
    }

    fn e2fsck(&self, path: &Path) -> String {
        let out = run(Command::new(&self.e2fsck).arg("-fy").arg(path));
        let code = out.status.code().unwrap_or(8);
        // 0: clean, 1: errors corrected (the journal replay counts).
        assert!(code <= 1, "e2fsck exit {code}: {}", text(&out));
        text(&out)
    }

    /// A sparse copy of the image.
    fn copy(&self, tag: &str) -> Image {
        let c = Image::new(tag, 0);
        let out = run(Command::new("cp")
            .arg("--sparse=always")
            .arg(&self.img.path)
            .arg(&c.path));
        assert!(out.status.success(), "cp failed: {}", text(&out));
        c
    }
}

fn magic_block(seed: u32) -> Vec<u8> {
    let mut b = pattern(seed);
    b[..4].copy_from_slice(&0xc03b_3998u32.to_be_bytes());
    b
}

#[test]
fn our_transactions_are_replayed_by_e2fsck() {
    let Some(fs) = Ext4::new("ours-e2fsck") else {
        return;
    };
    let (jstart, jlen) = fs.journal_area();
    let f = fs.free_blocks(4);
    {
        let dev = BlockDevice::open(&fs.img.path, false, BS).unwrap();
        // mke2fs leaves a journal without features: loading upgrades it to the pinned
        // ones (64BIT | CSUM_V3 | REVOKE), as the kernel does on mount.
        let j = Journal::load(&dev, jstart, jlen).unwrap();
        let h = j.start(3).unwrap();
        let data = [pattern(1), magic_block(2), pattern(3)];
        for (b, d) in f.iter().zip(&data) {
            h.modify(&dev.read(*b).unwrap(), |x| x.copy_from_slice(d))
                .unwrap();
        }
        h.stop().unwrap();
        j.force_commit().unwrap();
        // The next transaction frees f[2] (revoke) and writes f[3].
        let h = j.start_with_revokes(1, 1).unwrap();
        h.revoke(f[2]).unwrap();
        h.modify(&dev.read(f[3]).unwrap(), |x| x.copy_from_slice(&pattern(4)))
            .unwrap();
        h.stop().unwrap();
        j.force_commit().unwrap();
        // Crash: leave the journal dirty, nothing checkpointed.
        dev.set_write_limit(Some(0));
        drop(j);
    }
    for b in &f {
        assert!(
            read_block(&fs.img.path, *b) == vec![0; BS],
            "block {b} written in place"
        );
    }
    // The file system must say that its journal needs recovery.
    fs.debugfs(true, "feature needs_recovery");

    let dump = fs.debugfs(false, "logdump");
    for want in [
        "type 1 (descriptor block)",
        "type 2 (commit block)",
        "type 5 (revoke table)",
    ] {
        assert!(dump.contains(want), "logdump lacks {want:?}:\n{dump}");
    }
    assert!(!dump.to_lowercase().contains("bad"), "logdump:\n{dump}");

    let out = fs.e2fsck(&fs.img.path);
    assert!(out.contains("recovering journal"), "e2fsck:\n{out}");
    assert!(!out.to_lowercase().contains("checksum"), "e2fsck:\n{out}");
    let got = |b: u64| read_block(&fs.img.path, b);
    assert!(got(f[0]) == pattern(1), "block 0 replayed");
    assert!(
        got(f[1]) == magic_block(2),
        "escaped block replayed and unescaped"
    );
    assert!(got(f[2]) == vec![0; BS], "revoked block not replayed");
    assert!(got(f[3]) == pattern(4), "second transaction replayed");
}

/// Has debugfs write transactions (with `open_args` for `journal_open`) and compares
/// this journal's replay with e2fsck's.
fn debugfs_transactions_replay_like_e2fsck(open_args: &str) {
    let Some(fs) = Ext4::new("debugfs-ours") else {
        return;
    };
    let (jstart, jlen) = fs.journal_area();
    let f = fs.free_blocks(5);
    let data = Image::new("debugfs-data", 0);
    let mut bytes = magic_block(11);
    bytes.extend(pattern(12));
    std::fs::write(&data.path, &bytes).unwrap();
    let d = data.path.display();
    let cmds = [
        format!("jo {open_args}"),
        // Transaction 1: f0, f1.
        format!("jw -b {},{} {d}", f[0], f[1]),
        // Transaction 2 revokes f1.
        format!("jw -r {} {d}", f[1]),
        // Transaction 3: f2, f3.
        format!("jw -b {},{} {d}", f[2], f[3]),
        // Transaction 4 is never committed.
        format!("jw -b {} -c {d}", f[4]),
        "jc".to_string(),
    ];
    let script = Image::new("debugfs-cmds", 0);
    std::fs::write(&script.path, cmds.join("\n") + "\n").unwrap();
    let out = run(Command::new(&fs.debugfs)
        .arg("-w")
        .arg("-f")
        .arg(&script.path)
        .arg(&fs.img.path));
    assert!(out.status.success(), "debugfs: {}", text(&out));

    let theirs = fs.copy("debugfs-e2fsck");
    let out = fs.e2fsck(&theirs.path);
    assert!(out.contains("recovering journal"), "e2fsck:\n{out}");

    let dev = BlockDevice::open(&fs.img.path, false, BS).unwrap();
    let j = Journal::load(&dev, jstart, jlen).unwrap();
    let r = j.recovery();
    assert!(r.was_dirty);
    assert_eq!(r.transactions(), 3);
    assert_eq!(r.revoked_blocks, 1);
    assert_eq!(r.replayed_blocks, 3);
    j.close().unwrap();
    drop(dev);

    let want = [
        magic_block(11),
        vec![0; BS],
        magic_block(11),
        pattern(12),
        vec![0; BS],
    ];
    for (b, w) in f.iter().zip(&want) {
        let ours = read_block(&fs.img.path, *b);
        let e2fsck = read_block(&theirs.path, *b);
        assert!(
            ours == e2fsck,
            "block {b}: this journal and e2fsck disagree"
        );
        assert!(ours == *w, "block {b}: unexpected contents");
    }
}

#[test]
fn debugfs_csum_v3_transactions_replay_like_e2fsck() {
    debugfs_transactions_replay_like_e2fsck("-c -v 3");
}

#[test]
fn debugfs_unchecksummed_transactions_replay_like_e2fsck() {
    debugfs_transactions_replay_like_e2fsck("");
}
