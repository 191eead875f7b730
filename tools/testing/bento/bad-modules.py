#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Makes copies of a bento fs module whose ops table the registry must refuse.

Usage: bad-modules.py MODULE.ko|LIBFS.so OUTDIR

Writes OUTDIR/badbuild.EXT (another bento build id), OUTDIR/badabi.EXT (another ops ABI
version) and OUTDIR/badstate.EXT (a state format nobody reads) by patching the ops table
(`bento::abi::FsOps`, #[repr(C)]): abi_version u32 @0, size u32 @4, layout u64 @8,
build_id u64 @16, anchor ptr @24, name ptr @32, version u32 @40, state_version u32 @44,
state_compat u32 @48. The table is a kernel module's `__BENTO_OPS` or a FUSE host
version's `BENTO_FS_OPS`. bento_upgrade.sh loads the modules with insmod,
fuse-upgrade.sh the shared objects through bento-fuse; both expect ENOEXEC, ENOEXEC and
EPROTO, each with a log line.
"""
import os
import re
import struct
import subprocess
import sys


def table_offset(ko):
    """File offset of the ops table symbol (a section offset in a module, an address in
    a shared object: both are the section's file offset + value - section address)."""
    sections = {}
    for line in subprocess.run(["readelf", "-SW", ko], check=True, capture_output=True,
                               text=True).stdout.splitlines():
        m = re.match(r"\s*\[\s*(\d+)\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)", line)
        if m:
            sections[int(m.group(1))] = (int(m.group(3), 16), int(m.group(4), 16))
    for line in subprocess.run(["readelf", "-sW", ko], check=True, capture_output=True,
                               text=True).stdout.splitlines():
        f = line.split()
        if len(f) >= 8 and (f[7] == "BENTO_FS_OPS" or "__BENTO_OPS" in f[7]) and f[6].isdigit():
            addr, off = sections[int(f[6])]
            return off + int(f[1], 16) - addr
    sys.exit(f"bad-modules.py: no ops table symbol in {ko}")


def main():
    ko, out = sys.argv[1], sys.argv[2]
    data = bytearray(open(ko, "rb").read())
    off = table_offset(ko)
    abi, = struct.unpack_from("<I", data, off)
    if abi == 0 or abi > 1000:
        sys.exit(f"bad-modules.py: {ko}: no ops table at {off:#x} (abi {abi})")
    os.makedirs(out, exist_ok=True)
    ext = os.path.splitext(ko)[1]
    patches = {
        "badbuild" + ext: [(off + 16, "<Q", struct.unpack_from("<Q", data, off + 16)[0] ^ 1)],
        "badabi" + ext: [(off, "<I", abi + 100)],
        "badstate" + ext: [(off + 44, "<I", 77), (off + 48, "<I", 77)],
    }
    for name, edits in patches.items():
        copy = bytearray(data)
        for at, fmt, value in edits:
            struct.pack_into(fmt, copy, at, value)
        with open(os.path.join(out, name), "wb") as f:
            f.write(copy)


if __name__ == "__main__":
    main()
