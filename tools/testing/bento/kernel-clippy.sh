#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Kernel-side clippy: builds rust/ (the bento crate), fs/bento and samples/bento with
# CLIPPY=1 (the kernel's lint set) and fails on any warning.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
out=$(kmake -s CLIPPY=1 fs/bento/ samples/bento/ 2>&1) || { echo "$out"; exit 1; }
if grep -qE '^(warning|error)' <<<"$out"; then
	echo "$out"
	exit 1
fi
echo "kernel clippy: clean"
