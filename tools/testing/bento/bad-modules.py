#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Makes copies of a bento fs module whose ops table the registry must refuse.

Usage: bad-modules.py MODULE.ko OUTDIR

Writes OUTDIR/badbuild.ko (another bento build id), OUTDIR/badabi.ko (another ops ABI
version) and OUTDIR/badstate.ko (a state format nobody reads) by patching the module's
`__BENTO_OPS` table (`bento::abi::FsOps`, #[repr(C)]): abi_version u32 @0, size u32 @4,
layout u64 @8, build_id u64 @16, name ptr @24, version u32 @32, state_version u32 @36,
state_compat u32 @40. bento_upgrade.sh loads them with insmod and expects ENOEXEC,
ENOEXEC and EPROTO, each with a kernel log line.
"""
import os
import re
import struct
import subprocess
import sys


def table_offset(ko):
    """File offset of the module's __BENTO_OPS symbol."""
    sections = {}
    for line in subprocess.run(["readelf", "-SW", ko], check=True, capture_output=True,
                               text=True).stdout.splitlines():
        m = re.match(r"\s*\[\s*(\d+)\]\s+(\S+)\s+\S+\s+[0-9a-f]+\s+([0-9a-f]+)", line)
        if m:
            sections[int(m.group(1))] = int(m.group(3), 16)
    for line in subprocess.run(["readelf", "-sW", ko], check=True, capture_output=True,
                               text=True).stdout.splitlines():
        f = line.split()
        if len(f) >= 8 and "__BENTO_OPS" in f[7] and f[6].isdigit():
            return sections[int(f[6])] + int(f[1], 16)
    sys.exit(f"bad-modules.py: no __BENTO_OPS symbol in {ko}")


def main():
    ko, out = sys.argv[1], sys.argv[2]
    data = bytearray(open(ko, "rb").read())
    off = table_offset(ko)
    abi, = struct.unpack_from("<I", data, off)
    if abi == 0 or abi > 1000:
        sys.exit(f"bad-modules.py: {ko}: no ops table at {off:#x} (abi {abi})")
    os.makedirs(out, exist_ok=True)
    patches = {
        "badbuild.ko": [(off + 16, "<Q", struct.unpack_from("<Q", data, off + 16)[0] ^ 1)],
        "badabi.ko": [(off, "<I", abi + 100)],
        "badstate.ko": [(off + 36, "<I", 77), (off + 40, "<I", 77)],
    }
    for name, edits in patches.items():
        copy = bytearray(data)
        for at, fmt, value in edits:
            struct.pack_into(fmt, copy, at, value)
        with open(os.path.join(out, name), "wb") as f:
            f.write(copy)


if __name__ == "__main__":
    main()
