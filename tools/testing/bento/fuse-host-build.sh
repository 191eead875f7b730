#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Builds the FUSE host (bento-fuse) and every file system version as shared objects
# that share one libbento.so (DESIGN.md §5.7): `-C prefer-dynamic` links bento and std
# dynamically, `--cfg bento_plugin` makes module_fs! export each version's ops table.
# A separate target directory keeps these flags away from the normal build.
# Prints the directory holding bento-fuse and lib{hello,hello_v2,hello_broken,xv6fs,
# xv6fs_v2}.so. Usage: fuse-host-build.sh [--release | --separate-bento]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$BENTO_ROOT"

case ${1:-} in
--separate-bento)
	# For the test that the host refuses it: hello_v2 exporting its table but with a
	# copy of bento of its own (other symbol names: nothing interposes). Prints its path.
	target=$BENTO_CACHE/fuse-separate-target
	RUSTFLAGS="--cfg bento_plugin -C metadata=separate-bento" CARGO_TARGET_DIR=$target \
		/usr/bin/cargo build --quiet -p hello_v2 --lib >&2
	echo "$target/debug/libhello_v2.so"
	exit
	;;
--release) profile=release ;;
'') profile=debug ;;
*) echo "usage: fuse-host-build.sh [--release | --separate-bento]" >&2; exit 2 ;;
esac
target=$BENTO_CACHE/fuse-host-target
sysroot=$(/usr/bin/rustc --print sysroot)
# The objects find libbento.so next to themselves ($ORIGIN, deps/) and std in the
# toolchain, wherever they are run from.
rpath="\$ORIGIN:\$ORIGIN/deps:$sysroot/lib/rustlib/x86_64-unknown-linux-gnu/lib"
RUSTFLAGS="-C prefer-dynamic --cfg bento_plugin -C link-arg=-Wl,-rpath,$rpath" \
	CARGO_TARGET_DIR=$target /usr/bin/cargo build --quiet ${1:+--release} \
	-p bento --bin bento-fuse \
	-p hello -p hello_v2 -p hello_broken -p xv6fs -p xv6fs_v2 --lib >&2
echo "$target/$profile"
