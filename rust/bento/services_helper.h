/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Headers for the kernel backends of the bento services (block: buffer heads; journal:
 * jbd2). Included from bindings_helper.h.
 */
#include <linux/blkdev.h>
#include <linux/buffer_head.h>
#include <linux/jbd2.h>

/*
 * Allocation flags for the jbd2 and block calls that take them: the services run inside
 * file system operations, where reclaim must not re-enter the file system.
 */
const gfp_t RUST_CONST_HELPER_BENTO_GFP_NOFS = GFP_NOFS;
