#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Installs what building and testing Bento needs on Debian 12 (measured recipe:
# ../shared/toolchain.md). Idempotent: a second run only checks (about a second).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# Rust for the kernel and for cargo: Debian's 1.85 with rust-src, pinned as a whole (apt
# would otherwise mix in the newer rustc-web candidate).
RUST_V=1.85.0+dfsg3-1~deb12u3
BINDGEN_V=0.70.1
PJDFSTEST_V=0.2.2
FSX_V=0.3.2
FIO_V=3.33   # Debian bookworm's release, built static from Debian's source tarball
FIO_SHA256=d2410e13e0f379d061d077cc5ae325835bb7c6186aa7bafc1df954cbc9b014fc

PKGS=(linux-source-6.12 build-essential bc bison flex libelf-dev libssl-dev cpio zstd
	xz-utils patch qemu-system-x86 busybox-static clang-19 libclang-19-dev lld-19 llvm-19
	"rustc-web=$RUST_V" "libstd-rust-web-dev=$RUST_V" "libstd-rust-web-1.85=$RUST_V"
	"rust-web-src=$RUST_V" "rust-web-clippy=$RUST_V" "rustfmt-web=$RUST_V" "cargo-web=$RUST_V"
	e2fsprogs python3 kmod pahole fuse3 shellcheck libncurses-dev curl ca-certificates
	gcc libc6-dev   # gcc/libc6-dev: static kselftest programs (xv6fs_test) for the guest
	git)            # make bench's git clone (host, and copied into the guest with its libraries)

missing=()
for p in "${PKGS[@]}"; do
	name=${p%%=*} want=${p#*=}
	have=$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null || true)
	case "$have" in
	"install ok installed "*)
		[ "$name" = "$want" ] || [ "${have##* }" = "$want" ] || missing+=("$p") ;;
	*) missing+=("$p") ;;
	esac
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${#missing[@]} Debian packages: ${missing[*]}"
	SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null
fi

# bindgen: 6.12 needs >= 0.65.1 and Debian's is older. Built with Debian's cargo so no
# rustup is needed.
if [ "$("$BENTO_TOOLS/bin/bindgen" --version 2>/dev/null)" != "bindgen $BINDGEN_V" ]; then
	log "installing bindgen-cli $BINDGEN_V into $BENTO_TOOLS (~2 min)"
	PATH=/usr/bin:/bin cargo install --quiet --locked "bindgen-cli@$BINDGEN_V" --root "$BENTO_TOOLS"
fi

# pjdfstest and fsx, statically linked so that they also run in the busybox guest.
if [ "$(cat "$BENTO_TOOLS/.pjdfstest-version" 2>/dev/null)" != "$PJDFSTEST_V" ]; then
	log "installing pjdfstest $PJDFSTEST_V (~2 min)"
	PATH=/usr/bin:/bin RUSTFLAGS='-C target-feature=+crt-static' cargo install --quiet --locked \
		"pjdfstest@$PJDFSTEST_V" --target x86_64-unknown-linux-gnu --root "$BENTO_TOOLS"
	echo "$PJDFSTEST_V" > "$BENTO_TOOLS/.pjdfstest-version"
fi
# fsx too: the host's FUSE tests and the guest's kselftests run the same binary.
if [ "$(cat "$BENTO_TOOLS/.fsx-version" 2>/dev/null)" != "$FSX_V static" ]; then
	log "installing fsx $FSX_V (~1 min)"
	PATH=/usr/bin:/bin RUSTFLAGS='-C target-feature=+crt-static' cargo install --quiet --locked \
		--force "fsx@$FSX_V" --target x86_64-unknown-linux-gnu --root "$BENTO_TOOLS"
	echo "$FSX_V static" > "$BENTO_TOOLS/.fsx-version"
fi
# fio for make bench: Debian's package links Ceph, Gluster and RDMA libraries; the same
# release built static from Debian's source tarball runs in the busybox guest.
if [ "$(cat "$BENTO_TOOLS/.fio-version" 2>/dev/null)" != "$FIO_V static noshm" ]; then
	log "building fio $FIO_V, static (~1 min)"
	src=$(mktemp -d "${TMPDIR:-/tmp}/bento-fio.XXXXXX")
	curl -sfL -o "$src/fio.tar.gz" \
		"http://deb.debian.org/debian/pool/main/f/fio/fio_$FIO_V.orig.tar.gz"
	echo "$FIO_SHA256  $src/fio.tar.gz" | sha256sum -c --quiet
	tar xzf "$src/fio.tar.gz" -C "$src"
	# --disable-shm: the guest kernel (tinyconfig) has no SysV IPC.
	(cd "$src/fio-$FIO_V" && ./configure --build-static --disable-native --disable-shm >/dev/null &&
		make -j"$(nproc)" fio >/dev/null 2>&1)
	mkdir -p "$BENTO_TOOLS/bin"
	install -m 755 -s "$src/fio-$FIO_V/fio" "$BENTO_TOOLS/bin/fio"
	rm -rf "$src"
	echo "$FIO_V static noshm" > "$BENTO_TOOLS/.fio-version"
fi
# pjdfstest switches to these users (Debian has `nogroup` and `nobody` already).
if [ "$(id -u)" = 0 ] && ! id tests >/dev/null 2>&1; then
	useradd -M -U -s /usr/sbin/nologin -d / tests
fi
log "dependencies ready"
