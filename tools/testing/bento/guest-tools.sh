#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The programs the guest runs, statically linked (the guest has no libc), built once per
# change of their inputs into $BENTO_CACHE/guest-bin, and installed into a guest share:
#   SHARE/bin/         mkfs.xv6fs, fsck.xv6fs, xv6fs (FUSE) (cargo bins of samples/bento/xv6fs),
#                      pjdfstest, fsx (deps.sh), pjdfstest.sh + pjdfstest.toml
#   SHARE/selftests/filesystems/bento/xv6fs_test   (gcc -static, kselftest harness)
# The guest has /host/bin on its PATH. A program that does not build is left out with a
# warning (its tests then report it missing): a broken build must not stop a boot.
# Usage: guest-tools.sh [SHARE]      (without SHARE: build only)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

share=${1:-}
out=$BENTO_CACHE/guest-bin
mkdir -p "$out"
warn() { printf 'guest-tools.sh: warning: %s\n' "$*" >&2; }
# A static binary needs no interpreter and no shared libraries.
is_static() { ! readelf -lW "$1" 2>/dev/null | grep -q 'INTERP\|Requesting program interpreter'; }

# Runs BUILD (a function) when the KEY of its inputs differs from the last success.
build_if_stale() { # name key build
	local stamp=$out/.$1.key
	[ "$(cat "$stamp" 2>/dev/null)" = "$2" ] && return 0
	if "$3"; then
		echo "$2" > "$stamp.$$" && mv "$stamp.$$" "$stamp"
	else
		rm -f "$stamp"
		warn "building $1 failed${4:+; $4}"
	fi
}

# mkfs.xv6fs and fsck.xv6fs: Debian's toolchain, release, crt-static, own target dir
# (about a minute the first time, then seconds after a change of the sources).
build_xv6fs_bins() {
	local t=$BENTO_CACHE/guest-target bin
	log "building static mkfs.xv6fs and fsck.xv6fs for the guest"
	(cd "$BENTO_ROOT" && PATH=/usr/bin:/bin RUSTC=/usr/bin/rustc \
		RUSTFLAGS='-C target-feature=+crt-static' /usr/bin/cargo build --quiet --release \
		--target x86_64-unknown-linux-gnu -p xv6fs --bin mkfs-xv6fs --bin fsck-xv6fs \
		--bin xv6fs --target-dir "$t") || return 1
	for bin in mkfs-xv6fs:mkfs.xv6fs fsck-xv6fs:fsck.xv6fs xv6fs:xv6fs; do
		is_static "$t/x86_64-unknown-linux-gnu/release/${bin%%:*}" ||
			{ warn "${bin%%:*} is not static"; return 1; }
		# Through a private name: guests of both kernel variants may build at once.
		cp "$t/x86_64-unknown-linux-gnu/release/${bin%%:*}" "$out/${bin#*:}.$$"
		mv "$out/${bin#*:}.$$" "$out/${bin#*:}"
	done
}

# xv6fs_test: the kselftest harness comes from the kernel tree. The source includes
# "../../kselftest_harness.h" (its place in a kernel tree): -I a directory two levels
# below links to the headers.
selftest_dir=$BENTO_ROOT/tools/testing/selftests/filesystems/bento
harness=$KSRC/tools/testing/selftests
build_xv6fs_test() {
	log "building static xv6fs_test for the guest"
	[ -f "$harness/kselftest_harness.h" ] || { warn "no $harness (run 'make kernel')"; return 1; }
	mkdir -p "$out/include/filesystems/bento"
	ln -sf "$harness/kselftest_harness.h" "$harness/kselftest.h" "$out/include/"
	gcc -static -O2 -Wall -I"$out/include/filesystems/bento" \
		-o "$out/xv6fs_test.$$" "$selftest_dir/xv6fs_test.c" || return 1
	mv "$out/xv6fs_test.$$" "$out/xv6fs_test"
}

# The upgrade test's programs: plain C, no harness.
build_upgrade_tools() {
	log "building static upgrade_load and bento_getxattr for the guest"
	for prog in upgrade_load bento_getxattr; do
		gcc -static -O2 -Wall -o "$out/$prog.$$" "$selftest_dir/$prog.c" || return 1
		mv "$out/$prog.$$" "$out/$prog"
	done
}

build_if_stale xv6fs-bins "$(hash_inputs "$BENTO_ROOT/Cargo.toml" "$BENTO_ROOT/Cargo.lock" \
	"$BENTO_ROOT/rust/bento" "$BENTO_ROOT/samples/bento/xv6fs" "$0")" build_xv6fs_bins \
	"the guest gets the last good build if there is one"
build_if_stale xv6fs_test "$(hash_inputs "$selftest_dir/xv6fs_test.c" \
	"$harness/kselftest_harness.h" "$harness/kselftest.h")" build_xv6fs_test
build_if_stale upgrade-tools "$(hash_inputs "$selftest_dir/upgrade_load.c" \
	"$selftest_dir/bento_getxattr.c")" build_upgrade_tools

[ -n "$share" ] || exit 0
mkdir -p "$share/bin" "$share/selftests/filesystems/bento"
for f in "$out/mkfs.xv6fs" "$out/fsck.xv6fs" "$out/xv6fs" "$BENTO_TOOLS/bin/pjdfstest" \
	"$BENTO_TOOLS/bin/fsx"; do
	if [ ! -x "$f" ]; then
		warn "$f missing: not in the guest"
	elif ! is_static "$f"; then
		warn "$f is dynamically linked: not in the guest (run deps.sh)"
	else
		cp "$f" "$share/bin/"
	fi
done
cp "$BENTO_ROOT/tools/testing/bento/pjdfstest.sh" "$BENTO_ROOT/tools/testing/bento/pjdfstest.toml" \
	"$share/bin/"
# Where an installed kselftest's TEST_GEN_FILES live: next to the scripts.
for prog in xv6fs_test upgrade_load bento_getxattr; do
	if [ -x "$out/$prog" ]; then
		cp "$out/$prog" "$share/selftests/filesystems/bento/"
	else
		warn "$prog missing: not in the guest"
	fi
done
# Modules the registry must refuse (bento_upgrade.sh): hello_v2 with its ops table
# patched (bad-modules.py).
v2=$(find "$MODROOT" -name hello_v2.ko 2>/dev/null | head -n 1)
if [ -n "$v2" ]; then
	python3 "$BENTO_ROOT/tools/testing/bento/bad-modules.py" "$v2" \
		"$share/selftests/filesystems/bento/bad-modules" || warn "bad-modules.py failed"
else
	warn "no hello_v2.ko in $MODROOT: no bad modules for the upgrade test"
fi
