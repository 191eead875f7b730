#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Assembles the patched 6.12 tree in the cache, merges Kconfig.snippet, and builds
# bzImage and modules. Each step runs only when its inputs changed:
#   tarball + linux-patches       -> fresh tree (extract, patch)
#   fs/bento rust/bento samples/  -> copied file by file; unchanged files keep mtimes
#   Kconfig.snippet               -> tinyconfig + fragment
# Kbuild then rebuilds only what changed (a sample change rebuilds only modules).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

mkdir -p "$BENTO_CACHE"
# One build at a time per cache (two would race on the tree and the objects).
exec 9>"$BENTO_CACHE/.build.lock"
flock 9
[ -r "$KTARBALL" ] || { echo "missing $KTARBALL: run 'make deps'" >&2; exit 1; }

# 1. Source tree.
tree_key=$(hash_inputs "$KTARBALL" "$BENTO_ROOT/linux-patches")
if [ "$(cat "$KSRC/.bento-tree" 2>/dev/null)" != "$tree_key" ]; then
	log "assembling kernel tree in $KSRC (extract + patch)"
	rm -rf "$KSRC" "$KSRC.tmp"
	mkdir -p "$KSRC.tmp"
	tar -xf "$KTARBALL" -C "$KSRC.tmp" --strip-components=1
	while read -r p; do
		case "$p" in ''|'#'*) continue ;; esac
		log "applying $p"
		patch -d "$KSRC.tmp" -p1 --quiet --forward < "$BENTO_ROOT/linux-patches/$p"
	done < "$BENTO_ROOT/linux-patches/series"
	echo "$tree_key" > "$KSRC.tmp/.bento-tree"
	mv "$KSRC.tmp" "$KSRC"
	rm -rf "$KBUILD"   # a new tree invalidates every object
fi

# 2. Project sources: copy changed files only, drop files that vanished.
sync_dir() {
	local src=$BENTO_ROOT/$1 dst=$KSRC/$1 f
	mkdir -p "$dst"
	(cd "$src" && find . -type f ! -path './target/*' ! -name Cargo.toml ! -name Cargo.lock) |
	while read -r f; do
		if ! cmp -s "$src/$f" "$dst/$f"; then
			mkdir -p "$(dirname "$dst/$f")"
			cp "$src/$f" "$dst/$f"
		fi
	done
	(cd "$dst" && find . -type f) | while read -r f; do
		[ -e "$src/$f" ] || rm -f "$dst/$f"
	done
}
for d in fs/bento rust/bento samples/bento tools/testing/selftests/filesystems/bento; do
	sync_dir "$d"
done

# Modules must be rebuilt whenever the bento crate changes (no MODVERSIONS; fs/bento
# refuses modules with a stale build id), and Kbuild does not track that dependency.
api_key=$(hash_inputs "$BENTO_ROOT/rust/bento")
if [ -d "$KBUILD/samples/bento" ] && [ "$(cat "$KBUILD/.bento-api" 2>/dev/null)" != "$api_key" ]; then
	find "$KBUILD/samples/bento" -name '*.o' -delete
fi

# 3. Configuration.
cfg_key=$(hash_inputs "$BENTO_ROOT/Kconfig.snippet" "$KSRC/.bento-tree")
if [ "$(cat "$KBUILD/.bento-config" 2>/dev/null)" != "$cfg_key" ] || [ ! -f "$KBUILD/.config" ]; then
	log "configuring: tinyconfig + Kconfig.snippet"
	mkdir -p "$KBUILD"
	cp "$BENTO_ROOT/Kconfig.snippet" "$KSRC/kernel/configs/bento.config"
	kmake -s tinyconfig bento.config >/dev/null
	# Every line of the fragment must have survived (a missing dependency drops options
	# silently).
	missing=$(grep -E '^CONFIG_' "$BENTO_ROOT/Kconfig.snippet" | while read -r l; do
		grep -qxF "$l" "$KBUILD/.config" || echo "$l"; done)
	if [ -n "$missing" ]; then
		echo "Kconfig.snippet options not taken by Kconfig:" >&2
		echo "$missing" >&2
		exit 1
	fi
	echo "$cfg_key" > "$KBUILD/.bento-config"
fi

[ "${1:-}" = --config-only ] && exit 0

# 4. Build.
log "building bzImage and modules (-j$(nproc); a clean build takes ~6-10 min on 2 cores)"
start=$(date +%s)
set +o pipefail
# Quiet Kbuild lines ("  CC      path") become a progress count; everything else (Rust
# crates, warnings, errors) is shown.
kmake -j"$(nproc)" ${V:+V=$V} bzImage modules 2>&1 | awk '
	/^  [A-Z0-9_]+ +[^ ]/ && $1 !~ /^RUSTC/ { n++; if (n % 400 == 0) printf "  ... %d steps\n", n; fflush(); next }
	{ print; fflush() }'
rc=${PIPESTATUS[0]}
set -o pipefail
[ "$rc" = 0 ] || { echo "kernel build failed (exit $rc)" >&2; exit 1; }
echo "$api_key" > "$KBUILD/.bento-api"
rm -rf "$MODROOT"
kmake -s INSTALL_MOD_PATH="$MODROOT" modules_install >/dev/null
log "kernel ready: $KBUILD/arch/x86/boot/bzImage ($(( $(date +%s) - start )) s)"
