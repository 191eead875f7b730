// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers for fs/bento and the bento crate: inline functions and macros that Rust
 * cannot call directly. Included from rust/helpers/helpers.c (linux-patches), so they are
 * built, exported and bound like the kernel's own rust_helper_* functions.
 */
#ifdef CONFIG_BENTO_FS

#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/pagemap.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/xattr.h>
#include <linux/kdev_t.h>
#include <linux/uio.h>
#include <linux/wait.h>
#include <linux/jiffies.h>

#include "services_helpers.c"

/* The per-superblock gate of fs/bento (call.rs): waits on an int becoming zero. */
void rust_helper_bento_init_waitqueue_head(struct wait_queue_head *wq)
{
	init_waitqueue_head(wq);
}

int rust_helper_bento_wait_zero_killable(struct wait_queue_head *wq, int *v)
{
	return wait_event_killable(*wq, READ_ONCE(*v) == 0);
}

void rust_helper_bento_wait_zero(struct wait_queue_head *wq, int *v)
{
	wait_event(*wq, READ_ONCE(*v) == 0);
}

long rust_helper_bento_wait_zero_timeout(struct wait_queue_head *wq, int *v, long timeout)
{
	return wait_event_timeout(*wq, READ_ONCE(*v) == 0, timeout);
}

void rust_helper_bento_wake_up_all(struct wait_queue_head *wq)
{
	wake_up_all(wq);
}

/* Whether the current task holds a journal handle (jbd2 keeps it in journal_info). */
bool rust_helper_bento_in_journal_handle(void)
{
	return current->journal_info != NULL;
}

unsigned long rust_helper_bento_msecs_to_jiffies(unsigned int ms)
{
	return msecs_to_jiffies(ms);
}

bool rust_helper_dir_emit(struct dir_context *ctx, const char *name, int namelen,
			  u64 ino, unsigned int type)
{
	return dir_emit(ctx, name, namelen, ino, type);
}

void rust_helper_i_uid_write(struct inode *inode, uid_t uid)
{
	i_uid_write(inode, uid);
}

void rust_helper_i_gid_write(struct inode *inode, gid_t gid)
{
	i_gid_write(inode, gid);
}

void rust_helper_i_size_write(struct inode *inode, loff_t size)
{
	i_size_write(inode, size);
}

loff_t rust_helper_i_size_read(const struct inode *inode)
{
	return i_size_read(inode);
}

void *rust_helper_kmap_local_folio(struct folio *folio, size_t offset)
{
	return kmap_local_folio(folio, offset);
}

void rust_helper_folio_mark_uptodate(struct folio *folio)
{
	folio_mark_uptodate(folio);
}

size_t rust_helper_folio_size(struct folio *folio)
{
	return folio_size(folio);
}

loff_t rust_helper_folio_pos(struct folio *folio)
{
	return folio_pos(folio);
}

unsigned int rust_helper_memalloc_nofs_save(void)
{
	return memalloc_nofs_save();
}

void rust_helper_memalloc_nofs_restore(unsigned int flags)
{
	memalloc_nofs_restore(flags);
}

/* The caller's credentials as the file system sees them (initial user namespace). */
void rust_helper_bento_current_cred(u32 *uid, u32 *gid, u32 *pid)
{
	*uid = from_kuid(&init_user_ns, current_fsuid());
	*gid = from_kgid(&init_user_ns, current_fsgid());
	*pid = task_tgid_nr(current);
}

const unsigned char *rust_helper_bento_dentry_name(const struct dentry *dentry, u32 *len)
{
	*len = dentry->d_name.len;
	return dentry->d_name.name;
}

/* The cache of framework inode containers (fs/bento/inode.rs). */
struct kmem_cache *rust_helper_bento_inode_cache_create(const char *name, unsigned int size,
							 void (*ctor)(void *))
{
	return kmem_cache_create(name, size, 0, SLAB_RECLAIM_ACCOUNT | SLAB_ACCOUNT, ctor);
}

void *rust_helper_bento_alloc_inode_sb(struct super_block *sb, struct kmem_cache *cache)
{
	return alloc_inode_sb(sb, cache, GFP_KERNEL);
}

void rust_helper_bento_set_delayed_kfree(struct delayed_call *done, void *buf)
{
	set_delayed_call(done, kfree_link, buf);
}

/* setattr_copy's rule for the mode: drop S_ISGID unless the caller may keep it. */
umode_t rust_helper_bento_setattr_mode(struct mnt_idmap *idmap, struct inode *inode,
				       const struct iattr *attr)
{
	umode_t mode = attr->ia_mode;
	vfsgid_t vfsgid = (attr->ia_valid & ATTR_GID) ? attr->ia_vfsgid :
							  i_gid_into_vfsgid(idmap, inode);

	if (!S_ISDIR(inode->i_mode) && !in_group_or_capable(idmap, inode, vfsgid))
		mode &= ~S_ISGID;
	return mode;
}

u32 rust_helper_bento_iattr_uid(struct mnt_idmap *idmap, struct inode *inode,
				const struct iattr *attr)
{
	return from_kuid(&init_user_ns, from_vfsuid(idmap, i_user_ns(inode), attr->ia_vfsuid));
}

u32 rust_helper_bento_iattr_gid(struct mnt_idmap *idmap, struct inode *inode,
				const struct iattr *attr)
{
	return from_kgid(&init_user_ns, from_vfsgid(idmap, i_user_ns(inode), attr->ia_vfsgid));
}

/* Device numbers cross to file systems in the 32-bit userspace encoding (as FUSE's). */
u32 rust_helper_bento_encode_dev(dev_t dev)
{
	return new_encode_dev(dev);
}

dev_t rust_helper_bento_decode_dev(u32 dev)
{
	return new_decode_dev(dev);
}

void rust_helper_bento_map_bh(struct buffer_head *bh, struct super_block *sb, sector_t block,
			      size_t size, bool new)
{
	map_bh(bh, sb, block);
	bh->b_size = size;
	if (new)
		set_buffer_new(bh);
}

void rust_helper_bento_file_mmap(struct file *file, struct vm_area_struct *vma,
				 const struct vm_operations_struct *ops)
{
	file_accessed(file);
	vma->vm_ops = ops;
}

void rust_helper_bento_sb_start_pagefault(struct super_block *sb)
{
	sb_start_pagefault(sb);
}

void rust_helper_bento_sb_end_pagefault(struct super_block *sb)
{
	sb_end_pagefault(sb);
}

/* block_page_mkwrite()'s result as a fault code (0: the folio is locked). */
vm_fault_t rust_helper_bento_block_page_mkwrite_return(int err)
{
	return err ? vmf_fs_error(err) : VM_FAULT_LOCKED;
}

void rust_helper_bento_invalidate_lock(struct address_space *mapping, bool shared)
{
	if (shared)
		filemap_invalidate_lock_shared(mapping);
	else
		filemap_invalidate_lock(mapping);
}

void rust_helper_bento_invalidate_unlock(struct address_space *mapping, bool shared)
{
	if (shared)
		filemap_invalidate_unlock_shared(mapping);
	else
		filemap_invalidate_unlock(mapping);
}

void rust_helper_bento_folio_zero_range(struct folio *folio, size_t start, size_t len)
{
	folio_zero_range(folio, start, len);
}

/* errors=remount-ro, as ext4 does it: the flag alone (the journal is aborted first). */
void rust_helper_bento_sb_set_rdonly(struct super_block *sb)
{
	WRITE_ONCE(sb->s_flags, sb->s_flags | SB_RDONLY);
}

struct folio *rust_helper_bento_page_folio(struct page *page)
{
	return page_folio(page);
}

void rust_helper_bento_inode_lock_shared(struct inode *inode)
{
	inode_lock_shared(inode);
}

void rust_helper_bento_inode_unlock_shared(struct inode *inode)
{
	inode_unlock_shared(inode);
}

void rust_helper_bento_file_accessed(struct file *file)
{
	file_accessed(file);
}

ssize_t rust_helper_bento_generic_write_sync(struct kiocb *iocb, ssize_t count)
{
	return generic_write_sync(iocb, count);
}

void rust_helper_bento_mark_inode_dirty(struct inode *inode)
{
	mark_inode_dirty(inode);
}

size_t rust_helper_bento_iov_iter_count(const struct iov_iter *i)
{
	return iov_iter_count(i);
}

void rust_helper_bento_iov_iter_truncate(struct iov_iter *i, u64 count)
{
	iov_iter_truncate(i, count);
}

void rust_helper_bento_iov_iter_reexpand(struct iov_iter *i, size_t count)
{
	iov_iter_reexpand(i, count);
}

void rust_helper_bento_inode_lock(struct inode *inode)
{
	inode_lock(inode);
}

void rust_helper_bento_inode_unlock(struct inode *inode)
{
	inode_unlock(inode);
}

#endif /* CONFIG_BENTO_FS */
