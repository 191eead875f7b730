// SPDX-License-Identifier: GPL-2.0
//! Command line of a FUSE program: `NAME [-f] [-d] [-o OPTIONS] SOURCE MOUNTPOINT`.
//!
//! `-o` may also come after the operands, as `mount.fuse3` passes it. Options the
//! framework understands (the generic mount flags) are taken out; the rest are the file
//! system's, handed to [`FileSystem::mount`](crate::FileSystem::mount) as in the kernel.

use std::ffi::OsString;
use std::path::PathBuf;

/// Parsed command line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Args {
    /// Stay in the foreground (`-f`).
    pub foreground: bool,
    /// Mount source (device, image file, or free text such as `none`).
    pub source: OsString,
    /// Where to mount.
    pub mountpoint: PathBuf,
    /// Read-only mount.
    pub read_only: bool,
    /// Let other users access the mount (`allow_other`).
    pub allow_other: bool,
    /// Unmount when the program dies (`auto_unmount`).
    pub auto_unmount: bool,
    /// Generic flags passed on to the FUSE mount (`nodev`, `noexec`, ...).
    pub flags: Vec<String>,
    /// File system specific options, comma separated.
    pub fs_options: String,
}

/// Generic mount flags handled by the FUSE mount itself.
const GENERIC_FLAGS: &[&str] = &[
    "dev", "nodev", "suid", "nosuid", "exec", "noexec", "atime", "noatime", "sync", "async",
    "dirsync",
];

impl Args {
    /// Parses the arguments after the program name. On error returns a message for the
    /// usage line.
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Args, String> {
        let mut out = Args::default();
        let mut operands = Vec::new();
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            match arg.to_str() {
                Some("-f") => out.foreground = true,
                Some("-o") => {
                    let opts = it.next().ok_or("-o needs an argument")?;
                    out.add_options(opts.to_str().ok_or("options must be UTF-8")?)?;
                }
                Some(s) if s.starts_with("-o") && s.len() > 2 => out.add_options(&s[2..])?,
                Some("-h" | "--help") => return Err(String::new()),
                Some(s) if s.starts_with('-') && s.len() > 1 => {
                    return Err(format!("unknown flag '{s}'"))
                }
                _ => operands.push(arg),
            }
        }
        let [source, mountpoint]: [OsString; 2] = operands
            .try_into()
            .map_err(|_| "want exactly SOURCE and MOUNTPOINT".to_string())?;
        out.source = source;
        out.mountpoint = mountpoint.into();
        Ok(out)
    }

    fn add_options(&mut self, opts: &str) -> Result<(), String> {
        for opt in opts.split(',').filter(|o| !o.is_empty()) {
            match opt {
                "ro" => self.read_only = true,
                "rw" => self.read_only = false,
                "allow_other" => self.allow_other = true,
                "auto_unmount" => self.auto_unmount = true,
                // Always on: permissions are checked by the kernel, as in the kernel build.
                "default_permissions" => {}
                o if GENERIC_FLAGS.contains(&o) => self.flags.push(o.to_string()),
                o => {
                    if !self.fs_options.is_empty() {
                        self.fs_options.push(',');
                    }
                    self.fs_options.push_str(o);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::parse(args.iter().map(OsString::from))
    }

    #[test]
    fn operands_and_options_in_any_order() {
        let a = parse(&["-f", "-o", "ro,size=3", "img", "/mnt"]).unwrap();
        let b = parse(&["img", "/mnt", "-o", "ro,size=3", "-f"]).unwrap();
        assert_eq!(a, b);
        assert!(a.foreground && a.read_only);
        assert_eq!(a.source, "img");
        assert_eq!(a.mountpoint, PathBuf::from("/mnt"));
        assert_eq!(a.fs_options, "size=3");
    }

    #[test]
    fn generic_flags_are_not_fs_options() {
        let a = parse(&["-onodev,noexec,default_permissions,foo", "none", "/m"]).unwrap();
        assert_eq!(a.flags, ["nodev", "noexec"]);
        assert_eq!(a.fs_options, "foo");
    }

    #[test]
    fn bad_command_lines() {
        assert!(parse(&["none"]).is_err());
        assert!(parse(&["a", "b", "c"]).is_err());
        assert!(parse(&["-x", "a", "b"]).is_err());
        assert!(parse(&["a", "b", "-o"]).is_err());
    }
}
