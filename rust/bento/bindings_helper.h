/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Headers for which bindgen generates the bindings fs/bento and the kernel backend of
 * the bento crate use. Included from rust/bindings/bindings_helper.h (linux-patches).
 */
#include <linux/buffer_head.h>
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/fs_parser.h>
#include <linux/highmem.h>
#include <linux/kmod.h>
#include <linux/module.h>
#include <linux/pagemap.h>
#include <linux/rwsem.h>
#include <linux/sched/mm.h>
#include <linux/statfs.h>

const unsigned int RUST_CONST_HELPER_BENTO_I_NEW = I_NEW;
const unsigned long RUST_CONST_HELPER_SB_RDONLY = SB_RDONLY;
const loff_t RUST_CONST_HELPER_MAX_LFS_FILESIZE = MAX_LFS_FILESIZE;
