/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Headers for which bindgen generates the bindings fs/bento and the kernel backend of
 * the bento crate use. Included from rust/bindings/bindings_helper.h (linux-patches).
 */
#include <linux/buffer_head.h>
#include <linux/crc32c.h>
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
#include <linux/mm.h>
#include <linux/mpage.h>
#include <linux/namei.h>
#include <linux/slab.h>
#include <linux/xattr.h>
#include <linux/falloc.h>
#include <linux/iomap.h>
#include <linux/exportfs.h>
#include <linux/uio.h>
#include <linux/kobject.h>
#include <linux/sysfs.h>
#include <linux/wait.h>
#include <linux/ktime.h>
#include "services_helper.h"

const unsigned int RUST_CONST_HELPER_BENTO_I_NEW = I_NEW;
const unsigned long RUST_CONST_HELPER_SB_RDONLY = SB_RDONLY;
const loff_t RUST_CONST_HELPER_MAX_LFS_FILESIZE = MAX_LFS_FILESIZE;
const unsigned int RUST_CONST_HELPER_BENTO_I_DIRTY_INODE = I_DIRTY_INODE;
const unsigned int RUST_CONST_HELPER_BENTO_ATTR_MODE = ATTR_MODE;
const unsigned int RUST_CONST_HELPER_BENTO_ATTR_UID = ATTR_UID;
const unsigned int RUST_CONST_HELPER_BENTO_ATTR_GID = ATTR_GID;
const unsigned int RUST_CONST_HELPER_BENTO_ATTR_SIZE = ATTR_SIZE;
const unsigned int RUST_CONST_HELPER_BENTO_ATTR_ATIME = ATTR_ATIME;
const unsigned int RUST_CONST_HELPER_BENTO_ATTR_MTIME = ATTR_MTIME;
const unsigned int RUST_CONST_HELPER_BENTO_ATTR_CTIME = ATTR_CTIME;
const unsigned int RUST_CONST_HELPER_BENTO_ATTR_FILE = ATTR_FILE;
const int RUST_CONST_HELPER_BENTO_SEEK_DATA = SEEK_DATA;
const int RUST_CONST_HELPER_BENTO_SEEK_HOLE = SEEK_HOLE;
const int RUST_CONST_HELPER_BENTO_FALLOC_FL_KEEP_SIZE = FALLOC_FL_KEEP_SIZE;
const int RUST_CONST_HELPER_BENTO_FALLOC_FL_PUNCH_HOLE = FALLOC_FL_PUNCH_HOLE;
const int RUST_CONST_HELPER_BENTO_PATH_MAX = PATH_MAX;
const unsigned int RUST_CONST_HELPER_BENTO_XATTR_NAME_MAX = XATTR_NAME_MAX;
const unsigned int RUST_CONST_HELPER_BENTO_IOMAP_WRITE = IOMAP_WRITE;
const unsigned int RUST_CONST_HELPER_BENTO_IOMAP_HOLE = IOMAP_HOLE;
const unsigned int RUST_CONST_HELPER_BENTO_IOMAP_MAPPED = IOMAP_MAPPED;
const unsigned int RUST_CONST_HELPER_BENTO_IOMAP_F_NEW = IOMAP_F_NEW;
const unsigned int RUST_CONST_HELPER_BENTO_IOMAP_DIO_FORCE_WAIT = IOMAP_DIO_FORCE_WAIT;
const int RUST_CONST_HELPER_BENTO_IOCB_DIRECT = IOCB_DIRECT;
const fmode_t RUST_CONST_HELPER_BENTO_FMODE_CAN_ODIRECT = FMODE_CAN_ODIRECT;
