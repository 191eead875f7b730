# SPDX-License-Identifier: GPL-2.0
# Shared settings of the Bento build and test scripts (sourced).
# shellcheck disable=SC2034 # the variables are for the scripts that source this

# The checkout: two levels above this directory's parent.
BENTO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
# Heavy artifacts live outside the checkout, keyed by hashes of their inputs. Keep the
# path short: Rust doctest symbol names embed it and kallsyms truncates long ones.
BENTO_CACHE=${BENTO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bento}
BENTO_TOOLS=${BENTO_TOOLS:-$BENTO_CACHE/tools}
# The kernel variant: BENTO_VARIANT unset or empty, the normal kernel (tinyconfig +
# Kconfig.snippet); "debug", the same tree with debug.config merged on top (lockdep,
# KASAN, ...) and built with clang (make kernel-debug, make check-debug). Each variant
# has its own tree, build, lock, initramfs and logs, so both build and boot at once.
BENTO_VARIANT=${BENTO_VARIANT:-}
case $BENTO_VARIANT in
'') BENTO_SUFFIX= ;;
debug) BENTO_SUFFIX=-debug ;;
*) echo "lib.sh: unknown BENTO_VARIANT '$BENTO_VARIANT' (known: debug)" >&2; exit 2 ;;
esac
KSRC=$BENTO_CACHE/linux$BENTO_SUFFIX          # assembled, patched source tree
KBUILD=${KBUILD:-$BENTO_CACHE/build$BENTO_SUFFIX}   # O= build directory
MODROOT=$KBUILD/modroot          # modules_install target
BENTO_LOCK=$BENTO_CACHE/.build$BENTO_SUFFIX.lock   # held by build-kernel.sh
BENTO_INITRD=$BENTO_CACHE/initramfs$BENTO_SUFFIX.cpio.gz   # guest.sh's, with MODROOT's modules
# Config fragments merged onto tinyconfig, in this order.
KFRAGMENTS=("$BENTO_ROOT/Kconfig.snippet")
KTARBALL=${KTARBALL:-/usr/src/linux-source-6.12.tar.xz}

# Debian's Rust 1.85 first on PATH, for cargo too: rustup's newer toolchain (first on
# these machines' PATH) would let code pass cargo and fail Kbuild (toolchain.md).
export PATH=/usr/bin:/bin:$PATH RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc

# The kernel must be built with Debian's Rust 1.85 (with rust-src), never rustup's.
KMAKE_VARS=(RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTFMT=/usr/bin/rustfmt
	CLIPPY_DRIVER=/usr/bin/clippy-driver "BINDGEN=$BENTO_TOOLS/bin/bindgen"
	HOSTRUSTC=/usr/bin/rustc)
if [ "$BENTO_VARIANT" = debug ]; then
	KFRAGMENTS+=("$BENTO_ROOT/tools/testing/bento/debug.config")
	# Rust with KASAN needs clang (init/Kconfig: RUST depends on !KASAN || CC_IS_CLANG):
	# clang-19, ld.lld-19 and llvm-*-19 (deps.sh), rustc 1.85's LLVM.
	KMAKE_VARS+=(LLVM=-19)
fi

kmake() {
	make -C "$KSRC" O="$KBUILD" "${KMAKE_VARS[@]}" "$@"
}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Hash of files and directories (contents and relative names), for cache keys.
hash_inputs() {
	local p
	for p in "$@"; do
		if [ -d "$p" ]; then
			(cd "$p" && find . -type f ! -path './target/*' -print0 | LC_ALL=C sort -z |
				xargs -0 -r sha256sum)
		elif [ -e "$p" ]; then
			sha256sum "$p"
		fi
	done | sha256sum | cut -c1-16
}

# bench_image FILE SIZE: a benchmark disk image of SIZE (a truncate(1) size), every block
# of it written once (zeros), so that the host has allocated all of it. A sparse image
# makes the host allocate on the first write to each part of it, as a thin-provisioned
# device does: that costs a file system whose allocator moves on through the disk
# (xv6fs) more than one that takes freed blocks again at once (ext4), which is not what
# the benchmarks compare. An existing image of that size, allocated, is kept (mkfs
# rewrites it; mkfs.ext4 then needs -E nodiscard, or it punches the file's blocks out).
bench_image() { # file size
	local bytes
	bytes=$(numfmt --from=iec "$2") || return 1
	if [ "$(stat -c %s "$1" 2>/dev/null)" = "$bytes" ] &&
		[ $(($(stat -c %b "$1") * $(stat -c %B "$1"))) -ge "$bytes" ]; then
		return 0
	fi
	rm -f "$1"
	dd if=/dev/zero of="$1" bs=1M count=$((bytes >> 20)) status=none
}
