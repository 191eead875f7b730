#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# git for the git-clone benchmark of make bench (bench.sh for the guest, host.sh):
#   git.sh repo OUT.git DIR TREE
#       a bare repository of DIR/TREE (the kernel's fs/: 2500 files): one commit with a
#       fixed author and date, so the same tree gives the same repository (one pack,
#       no loose objects, no hooks);
#   git.sh guest OUTDIR
#       the host's git (Debian's, deps.sh) for the busybox guest, which has no libc:
#       OUTDIR/git (the binary), OUTDIR/lib/ (the shared libraries ldd lists and the
#       dynamic loader) and OUTDIR/interp (the loader's path, the binary's PT_INTERP).
#       The guest copies the loader to that path and runs git with LD_LIBRARY_PATH on
#       the libraries and GIT_EXEC_PATH on a directory holding git and git-upload-pack
#       (a local clone runs "sh -c git-upload-pack" for the references, then copies
#       the objects itself: no other program).
set -euo pipefail

# No system or user configuration; a fixed identity for commits and reflogs.
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@bento GIT_COMMITTER_NAME=bench \
	GIT_COMMITTER_EMAIL=bench@bento GIT_AUTHOR_DATE=2000-01-01T00:00:00Z \
	GIT_COMMITTER_DATE=2000-01-01T00:00:00Z

case ${1:-} in
repo)
	[ $# = 4 ] || { echo "usage: git.sh repo OUT.git DIR TREE" >&2; exit 2; }
	out=$2 dir=$3 tree=$4
	rm -rf "$out"
	git init -q --bare --template= --initial-branch=main "$out"
	export GIT_DIR=$out GIT_WORK_TREE=$dir GIT_INDEX_FILE=$out/bench-index
	# -f: every file, as tar takes them (the kernel's .gitignore files name none here).
	git add -A -f -- "$tree"
	git commit -q -m "$tree of the kernel tree"
	rm -f "$GIT_INDEX_FILE"
	git repack -a -d -q
	git prune-packed
	;;
guest)
	[ $# = 2 ] || { echo "usage: git.sh guest OUTDIR" >&2; exit 2; }
	out=$2
	git=$(command -v git) || { echo "git.sh: no git (run deps.sh)" >&2; exit 1; }
	interp=$(readelf -lW "$git" | sed -n 's/.*Requesting program interpreter: \(.*\)\]/\1/p')
	[ -n "$interp" ] || { echo "git.sh: $git has no interpreter" >&2; exit 1; }
	rm -rf "$out"
	mkdir -p "$out/lib"
	cp "$git" "$out/git"
	echo "$interp" >"$out/interp"
	cp -L "$interp" "$out/lib/${interp##*/}"
	# "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)": under its soname.
	ldd "$git" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' |
		while read -r name path; do
			cp -L "$path" "$out/lib/$name"
		done
	;;
*)
	echo "usage: git.sh repo OUT.git DIR TREE | git.sh guest OUTDIR" >&2
	exit 2 ;;
esac
