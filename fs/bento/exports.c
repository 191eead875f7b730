// SPDX-License-Identifier: GPL-2.0
/*
 * Exports of the Rust entry points fs/bento offers file system modules. They are
 * `#[no_mangle] extern "C"` functions in registry.rs; the bento crate's kernel backend
 * is their only caller.
 */
#include <linux/export.h>
#include <linux/module.h>

int bento_register_fs(const void *ops, struct module *owner);
void bento_unregister_fs(const void *ops);

EXPORT_SYMBOL_GPL(bento_register_fs);
EXPORT_SYMBOL_GPL(bento_unregister_fs);
