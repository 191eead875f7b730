#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Assembles the patched 6.12 tree in the cache, merges Kconfig.snippet, and builds
# bzImage and modules. Each step runs only when its inputs changed:
#   tarball + linux-patches       -> fresh tree (extract, patch)
#   fs/bento rust/bento samples/  -> copied file by file; unchanged files keep mtimes
#   Kconfig.snippet               -> tinyconfig + fragment
# Kbuild then rebuilds only what changed (a sample change rebuilds only modules).
# BENTO_VARIANT=debug (make kernel-debug) builds the debug kernel the same way in its own
# tree, build directory and lock (lib.sh), with debug.config too and LLVM=-19.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

mkdir -p "$BENTO_CACHE"
# One build at a time per cache and variant (two would race on the tree and the objects).
exec 9>"$BENTO_LOCK"
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
cfg_key=$(hash_inputs "${KFRAGMENTS[@]}" "$KSRC/.bento-tree")
if [ "$(cat "$KBUILD/.bento-config" 2>/dev/null)" != "$cfg_key" ] || [ ! -f "$KBUILD/.config" ]; then
	log "configuring: tinyconfig + ${KFRAGMENTS[*]##*/}"
	mkdir -p "$KBUILD"
	# Kconfig.snippet as bento.config, the others as bento-NAME (debug.config ->
	# bento-debug.config).
	targets=(tinyconfig bento.config)
	cp "${KFRAGMENTS[0]}" "$KSRC/kernel/configs/bento.config"
	for f in "${KFRAGMENTS[@]:1}"; do
		cp "$f" "$KSRC/kernel/configs/bento-${f##*/}"
		targets+=("bento-${f##*/}")
	done
	kmake -s "${targets[@]}" >/dev/null
	# Every line of the fragments must have survived (a missing dependency drops options
	# silently).
	missing=$(cat "${KFRAGMENTS[@]}" | grep -E '^CONFIG_' | while read -r l; do
		grep -qxF "$l" "$KBUILD/.config" || echo "$l"; done)
	if [ -n "$missing" ]; then
		echo "${KFRAGMENTS[*]##*/}: options not taken by Kconfig:" >&2
		echo "$missing" >&2
		exit 1
	fi
	echo "$cfg_key" > "$KBUILD/.bento-config"
fi

[ "${1:-}" = --config-only ] && exit 0

# 4. Build.
log "building ${BENTO_VARIANT:+$BENTO_VARIANT }bzImage and modules (-j$(nproc); a clean build" \
	"takes ~6-10 min on 2 cores${BENTO_VARIANT:+, the debug kernel ~13-18 min})"
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
log "${BENTO_VARIANT:+$BENTO_VARIANT }kernel ready: $KBUILD/arch/x86/boot/bzImage ($(( $(date +%s) - start )) s)"
