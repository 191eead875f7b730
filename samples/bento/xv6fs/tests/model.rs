// SPDX-License-Identifier: GPL-2.0
//! Model-based test: random operations run on xv6fs (through the `FileSystem` trait)
//! and on a trivial in-memory model; after every step the results (success or errno)
//! agree, and at the end (and after a remount) the whole tree and every file's contents
//! match the model.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod common;

use std::collections::BTreeMap;

use bento::{Errno, FileSystem, FileType, Ino, SetAttr, ROOT_INO};
use common::*;

/// The model: directories as maps name → node; files as byte vectors.
#[derive(Clone, Debug, PartialEq)]
enum Node {
    File(Vec<u8>),
    Dir(BTreeMap<Vec<u8>, Node>),
}

fn dir_at<'a>(root: &'a mut Node, path: &[Vec<u8>]) -> Option<&'a mut BTreeMap<Vec<u8>, Node>> {
    let mut cur = root;
    for p in path {
        match cur {
            Node::Dir(m) => cur = m.get_mut(p)?,
            Node::File(_) => return None,
        }
    }
    match cur {
        Node::Dir(m) => Some(m),
        Node::File(_) => None,
    }
}

/// The tree as xv6fs has it.
fn snapshot(fs: &xv6fs::Xv6Fs, ino: Ino) -> Node {
    let mut m = BTreeMap::new();
    for (child, kind, name) in list(fs, ino).unwrap() {
        let node = match kind {
            FileType::Directory => snapshot(fs, child),
            _ => Node::File(read_all(fs, child).unwrap()),
        };
        m.insert(name, node);
    }
    Node::Dir(m)
}

fn resolve(fs: &xv6fs::Xv6Fs, path: &[Vec<u8>]) -> bento::Result<Ino> {
    let mut ino = ROOT_INO;
    for p in path {
        let e = fs.lookup(&REQ, ino, p)?;
        if e.attr.kind != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        ino = e.attr.ino;
    }
    Ok(ino)
}

fn run(seed: u64, steps: u32) {
    let (dir, dev) = fresh(&format!("model-{seed}"), 32);
    let mut fs = mount(&dev).unwrap();
    let mut model = Node::Dir(BTreeMap::new());
    let mut rng = Rng(seed);
    let names: Vec<Vec<u8>> = ["a", "b", "c", "dir1", "dir2"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    let dirs: Vec<Vec<Vec<u8>>> = vec![
        vec![],
        vec![b"dir1".to_vec()],
        vec![b"dir2".to_vec()],
        vec![b"dir1".to_vec(), b"dir2".to_vec()],
    ];
    for step in 0..steps {
        let d = &dirs[rng.below(dirs.len() as u64) as usize];
        let name = names[rng.below(names.len() as u64) as usize].clone();
        let Ok(parent) = resolve(&fs, d) else {
            assert!(
                dir_at(&mut model, d).is_none(),
                "step {step}: {d:?} exists in the model only"
            );
            continue;
        };
        let m = dir_at(&mut model, d)
            .unwrap_or_else(|| panic!("step {step}: {d:?} exists in xv6fs only"));
        let op = rng.below(9);
        let got: bento::Result<()> = match op {
            0 => fs.mkdir(&REQ, parent, &name, 0o755).map(|_| ()),
            1 => fs.create(&REQ, parent, &name, 0o100644, 0).map(|_| ()),
            2 => fs.unlink(&REQ, parent, &name),
            3 => fs.rmdir(&REQ, parent, &name),
            4 | 5 => {
                let off = rng.below(20000);
                let len = rng.below(9000) as usize;
                let byte = rng.step() as u8;
                match fs.lookup(&REQ, parent, &name) {
                    Ok(e) if e.attr.kind == FileType::RegularFile => fs
                        .file_write(&REQ, e.attr.ino, 0, off, &vec![byte; len], 0)
                        .map(|_| ()),
                    Ok(_) => Err(Errno::EISDIR),
                    Err(e) => Err(e),
                }
                .inspect(|()| {
                    if let Some(Node::File(data)) = m.get_mut(&name) {
                        let end = off as usize + len;
                        if data.len() < end {
                            data.resize(end, 0);
                        }
                        data[off as usize..end].fill(byte);
                    }
                })
            }
            6 => {
                let size = rng.below(15000);
                match fs.lookup(&REQ, parent, &name) {
                    Ok(e) if e.attr.kind == FileType::RegularFile => fs
                        .file_setattr(
                            &REQ,
                            e.attr.ino,
                            &SetAttr {
                                size: Some(size),
                                ..SetAttr::default()
                            },
                        )
                        .map(|_| ()),
                    Ok(_) => Err(Errno::EISDIR),
                    Err(e) => Err(e),
                }
                .inspect(|()| {
                    if let Some(Node::File(data)) = m.get_mut(&name) {
                        data.resize(size as usize, 0);
                    }
                })
            }
            8 => {
                // fallocate: allocate (unwritten blocks), keep-size, or punch a hole.
                let off = rng.below(20000);
                let len = 1 + rng.below(30000);
                let mode = [0, KEEP_SIZE, PUNCH_HOLE | KEEP_SIZE][rng.below(3) as usize];
                match fs.lookup(&REQ, parent, &name) {
                    Ok(e) if e.attr.kind == FileType::RegularFile => fs
                        .file_fallocate(&REQ, e.attr.ino, 0, off, len, mode)
                        .map(|_| ()),
                    Ok(_) => Err(Errno::EISDIR),
                    Err(e) => Err(e),
                }
                .inspect(|()| {
                    if let Some(Node::File(data)) = m.get_mut(&name) {
                        let end = (off + len) as usize;
                        let size = data.len();
                        match mode {
                            0 if size < end => data.resize(end, 0),
                            KEEP_SIZE | 0 => {}
                            _ => data[(off as usize).min(size)..end.min(size)].fill(0),
                        }
                    }
                })
            }
            _ => {
                let to = names[rng.below(names.len() as u64) as usize].clone();
                let got = fs.rename(&REQ, parent, &name, parent, &to, 0);
                let want = match (m.get(&name), m.get(&to)) {
                    (None, _) => Err(Errno::ENOENT),
                    _ if name == to => Ok(()),
                    (Some(Node::Dir(_)), Some(Node::File(_))) => Err(Errno::ENOTDIR),
                    (Some(Node::File(_)), Some(Node::Dir(_))) => Err(Errno::EISDIR),
                    (Some(Node::Dir(_)), Some(Node::Dir(c))) if !c.is_empty() => {
                        Err(Errno::ENOTEMPTY)
                    }
                    _ => {
                        let node = m.remove(&name).unwrap();
                        m.insert(to.clone(), node);
                        Ok(())
                    }
                };
                assert_eq!(
                    got,
                    want,
                    "step {step}: rename {d:?}/{} -> {}",
                    String::from_utf8_lossy(&name),
                    String::from_utf8_lossy(&to)
                );
                continue;
            }
        };
        // The model's answer for the namespace operations.
        let want: bento::Result<()> = match op {
            0 | 1 if m.contains_key(&name) => Err(Errno::EEXIST),
            0 => {
                m.insert(name.clone(), Node::Dir(BTreeMap::new()));
                Ok(())
            }
            1 => {
                m.insert(name.clone(), Node::File(Vec::new()));
                Ok(())
            }
            2 => match m.get(&name) {
                None => Err(Errno::ENOENT),
                Some(Node::Dir(_)) => Err(Errno::EISDIR),
                Some(Node::File(_)) => {
                    m.remove(&name);
                    Ok(())
                }
            },
            3 => match m.get(&name) {
                None => Err(Errno::ENOENT),
                Some(Node::File(_)) => Err(Errno::ENOTDIR),
                Some(Node::Dir(c)) if !c.is_empty() => Err(Errno::ENOTEMPTY),
                Some(Node::Dir(_)) => {
                    m.remove(&name);
                    Ok(())
                }
            },
            4..=6 | 8 => match m.get(&name) {
                None => Err(Errno::ENOENT),
                Some(Node::Dir(_)) => Err(Errno::EISDIR),
                Some(Node::File(_)) => Ok(()),
            },
            _ => unreachable!(),
        };
        assert_eq!(
            got,
            want,
            "step {step}: op {op} on {d:?}/{}",
            String::from_utf8_lossy(&name)
        );
        if step % 50 == 49 {
            assert_eq!(snapshot(&fs, ROOT_INO), model, "step {step}: trees differ");
        }
    }
    assert_eq!(snapshot(&fs, ROOT_INO), model, "final trees differ");
    drop(fs);
    fs = mount(&dev).unwrap();
    assert_eq!(
        snapshot(&fs, ROOT_INO),
        model,
        "trees differ after a remount"
    );
    drop(fs);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn random_operations_match_the_model() {
    for seed in [1u64, 2, 3, 4, 5] {
        run(seed * 0x2545_f491_4f6c_dd1d, 1500);
    }
}
