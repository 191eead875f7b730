# SPDX-License-Identifier: GPL-2.0
# Bento for Linux 6.12: build, boot and test.
#
#   make run                 build everything that is stale, boot the guest with the
#                            bento file systems mounted, and give a shell
#   make run CMD='ls /mnt'   same, but run CMD in the guest and exit with its status
#   make check               every test; ends with "N passed, N failed, N skipped"
#   make check-debug         the guest's kselftests on the debug kernel (lockdep, KASAN, ...,
#                            built with LLVM=-19; not part of check); same last line
#   make kernel-debug        only build the debug kernel; make run-debug: boot it
#   make bench               benchmarks in one guest run: ext4 (ordered, journal), kernel
#                            and FUSE xv6fs, tmpfs; then on the host (no emulation, root):
#                            ext4, FUSE xv6fs, tmpfs; ratios to ext4 of the same run in
#                            $(BENTO_CACHE)/bench/bench.md (+ .json, .png). BENCH_ARGS:
#                            --quick (tiny; make check runs it), --reps N, --fs "NAMES",
#                            --host-only, --no-host
#
# Heavy artifacts (kernel tree, build, initramfs) live in $(BENTO_CACHE), outside the
# checkout, keyed by hashes of their inputs.

SHELL := /bin/bash
# Debian's Rust 1.85 (the kernel's compiler) before rustup's, for cargo too.
export PATH := /usr/bin:/bin:$(PATH)
export RUSTC := /usr/bin/rustc
export RUSTDOC := /usr/bin/rustdoc
T := tools/testing/bento
CARGO := /usr/bin/cargo
# (cargo clippy / cargo fmt would pick rustup's from ~/.cargo/bin: call Debian's directly)
export BENTO_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/bento

.PHONY: all deps kernel modules fuse run check menuconfig fmt clippy clean help
.PHONY: kernel-debug run-debug check-debug bench

all: kernel fuse

help:
	@sed -n 's/^#   //p' Makefile

deps:
	@bash $(T)/deps.sh

kernel: deps
	@bash $(T)/build-kernel.sh

# Kbuild rebuilds only what changed; after a sample-only change that is the modules.
modules: kernel

fuse: deps
	$(CARGO) build --workspace
	@# Cargo cannot name a binary with a dot: give the tools their usual names.
	@for t in mkfs fsck; do [ -e target/debug/$$t-xv6fs ] && ln -sf $$t-xv6fs target/debug/$$t.xv6fs; done; true

run: kernel
	@bash $(T)/guest.sh "$(CMD)"

check:
	@bash $(T)/check.sh

bench:
	@bash $(T)/bench/bench.sh $(BENCH_ARGS)

# The debug kernel: Kconfig.snippet + $(T)/debug.config, LLVM=-19, in its own tree, build
# directory and lock in $(BENTO_CACHE) (BENTO_VARIANT=debug, see $(T)/lib.sh).
kernel-debug: deps
	@BENTO_VARIANT=debug bash $(T)/build-kernel.sh

run-debug: kernel-debug
	@BENTO_VARIANT=debug bash $(T)/guest.sh "$(CMD)"

check-debug:
	@BENTO_VARIANT=debug bash $(T)/check-guest.sh --build

menuconfig: deps
	@bash -c '. $(T)/lib.sh && bash $(T)/build-kernel.sh --config-only && kmake menuconfig'

fmt:
	/usr/bin/cargo-fmt --all
	/usr/bin/rustfmt --edition 2021 fs/bento/bentofs.rs

clippy: kernel
	/usr/bin/cargo-clippy clippy --workspace --all-targets -- -D warnings
	@bash $(T)/kernel-clippy.sh

clean:
	rm -rf target
	@echo "kernel build cache kept in $(BENTO_CACHE) (rm -rf it to start over)"
