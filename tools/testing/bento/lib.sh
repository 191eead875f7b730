# SPDX-License-Identifier: GPL-2.0
# Shared settings of the Bento build and test scripts (sourced).
# shellcheck disable=SC2034 # the variables are for the scripts that source this

# The checkout: two levels above this directory's parent.
BENTO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
# Heavy artifacts live outside the checkout, keyed by hashes of their inputs. Keep the
# path short: Rust doctest symbol names embed it and kallsyms truncates long ones.
BENTO_CACHE=${BENTO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bento}
BENTO_TOOLS=${BENTO_TOOLS:-$BENTO_CACHE/tools}
KSRC=$BENTO_CACHE/linux          # assembled, patched source tree
KBUILD=${KBUILD:-$BENTO_CACHE/build}   # O= build directory
MODROOT=$KBUILD/modroot          # modules_install target
KTARBALL=${KTARBALL:-/usr/src/linux-source-6.12.tar.xz}

# Debian's Rust 1.85 first on PATH, for cargo too: rustup's newer toolchain (first on
# these machines' PATH) would let code pass cargo and fail Kbuild (toolchain.md).
export PATH=/usr/bin:/bin:$PATH RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc

# The kernel must be built with Debian's Rust 1.85 (with rust-src), never rustup's.
KMAKE_VARS=(RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTFMT=/usr/bin/rustfmt
	CLIPPY_DRIVER=/usr/bin/clippy-driver "BINDGEN=$BENTO_TOOLS/bin/bindgen"
	HOSTRUSTC=/usr/bin/rustc)

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
