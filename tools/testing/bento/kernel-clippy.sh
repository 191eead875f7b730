#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Kernel-side clippy (the kernel's lint set, as `make CLIPPY=1`) on the bento crate,
# fs/bento and the samples, without disturbing the build: each object's own rustc
# command (from its Kbuild .cmd file) is re-run through clippy-driver with its outputs
# sent to a scratch directory. Fails on any warning.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# Kbuild exports this to use unstable options with a stable compiler.
export RUSTC_BOOTSTRAP=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$KBUILD"
shopt -s nullglob
status=0 n=0
for cmdfile in rust/.bento.o.cmd fs/bento/.*.o.cmd samples/bento/*/.*.o.cmd; do
	cmd=$(sed -n 's/^savedcmd_[^ ]* := //p' "$cmdfile")
	case $cmd in *clippy-driver*|*' /usr/bin/rustc '*) ;; *) continue ;; esac
	# Drop the objtool step after ';', redirect every output into $tmp.
	cmd=${cmd%%; *}
	cmd=$(sed -E -e 's# /usr/bin/(rustc|clippy-driver) # /usr/bin/clippy-driver #' \
		-e 's# --emit=[^ ]+##g' -e "s# --out-dir [^ ]+# --out-dir $tmp#" <<<"$cmd")
	n=$((n + 1))
	out=$(eval "$cmd --emit=metadata=$tmp/out.rmeta" 2>&1) || status=1
	if grep -qE '^(warning|error)' <<<"$out"; then
		echo "$out"
		status=1
	fi
done
[ "$n" -gt 0 ] || { echo "no bento objects built yet: run make kernel" >&2; exit 1; }
[ "$status" = 0 ] && echo "kernel clippy: $n crates clean"
exit "$status"
