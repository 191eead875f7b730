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

#endif /* CONFIG_BENTO_FS */
