// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers for the kernel backends of the bento services (block: buffer heads; journal:
 * jbd2): inline functions, macros and bitfields Rust cannot reach. Included from
 * helpers.c; `rust_helper_bento_foo` is `kernel::bindings::bento_foo` in Rust.
 */
#include <linux/blkdev.h>
#include <linux/buffer_head.h>
#include <linux/fs.h>
#include <linux/jbd2.h>
#include <linux/sched.h>

/* Block service: buffer heads of the mounted device. */

/*
 * sb_bread(), except that bytes read from the device now lose the verified mark: the
 * mark says the file system checked the bytes since they were last read (as ext4's
 * __ext4_read_bh clears it).
 */
struct buffer_head *rust_helper_bento_sb_bread(struct super_block *sb, u64 block)
{
	struct buffer_head *bh = sb_getblk(sb, block);

	if (!bh || bh_uptodate_or_lock(bh))
		return bh;
	clear_buffer_verified(bh);
	if (__bh_read(bh, 0, true) < 0) {
		brelse(bh);
		return NULL;
	}
	return bh;
}

bool rust_helper_bento_buffer_verified(struct buffer_head *bh)
{
	return buffer_verified(bh);
}

void rust_helper_bento_set_buffer_verified(struct buffer_head *bh)
{
	set_buffer_verified(bh);
}

void rust_helper_bento_clear_buffer_verified(struct buffer_head *bh)
{
	clear_buffer_verified(bh);
}

/*
 * Starts reading each of the @n blocks at @blocks that lies below @limit into the
 * buffer cache unless it is there, under one plug so that neighbours on the disk go
 * in one request; does not wait.
 */
void rust_helper_bento_sb_breadahead_many(struct super_block *sb, const u64 *blocks,
					  unsigned int n, u64 limit)
{
	struct blk_plug plug;
	unsigned int i;

	blk_start_plug(&plug);
	for (i = 0; i < n; i++)
		if (blocks[i] < limit)
			sb_breadahead(sb, blocks[i]);
	blk_finish_plug(&plug);
}

struct buffer_head *rust_helper_bento_sb_getblk(struct super_block *sb, u64 block)
{
	return sb_getblk(sb, block);
}

/* The cached buffer of @block with a reference, or NULL; never reads. */
struct buffer_head *rust_helper_bento_sb_find_get_block(struct super_block *sb, u64 block)
{
	return sb_find_get_block(sb, block);
}

void rust_helper_bento_get_bh(struct buffer_head *bh)
{
	get_bh(bh);
}

void rust_helper_bento_brelse(struct buffer_head *bh)
{
	brelse(bh);
}

void rust_helper_bento_lock_buffer(struct buffer_head *bh)
{
	lock_buffer(bh);
}

bool rust_helper_bento_buffer_dirty(struct buffer_head *bh)
{
	return buffer_dirty(bh);
}

bool rust_helper_bento_buffer_uptodate(struct buffer_head *bh)
{
	return buffer_uptodate(bh);
}

void rust_helper_bento_set_buffer_uptodate(struct buffer_head *bh)
{
	set_buffer_uptodate(bh);
}

/* Has a journal head: jbd2 holds the buffer (a transaction or a checkpoint). */
bool rust_helper_bento_buffer_jbd(struct buffer_head *bh)
{
	return buffer_jbd(bh);
}

/* Revoked by a transaction that has not committed, and not journaled since. */
bool rust_helper_bento_buffer_revoked(struct buffer_head *bh)
{
	return buffer_revoked(bh);
}

/* The device itself is read-only (whatever the mount flags). */
bool rust_helper_bento_bdev_read_only(struct super_block *sb)
{
	return bdev_read_only(sb->s_bdev);
}

/* Whole blocks of the superblock's block size on the device. */
u64 rust_helper_bento_sb_nr_blocks(struct super_block *sb)
{
	return (u64)bdev_nr_bytes(sb->s_bdev) >> sb->s_blocksize_bits;
}

/*
 * Zeroes blocks [first, first + count) on the device. Dirty buffers of the block
 * device's cache over those blocks are cleaned (and their writes waited for) first, so
 * no stale copy can overwrite the zeros later. The caller checked the range.
 */
int rust_helper_bento_sb_zero_blocks(struct super_block *sb, u64 first, u64 count)
{
	clean_bdev_aliases(sb->s_bdev, first, count);
	return sb_issue_zeroout(sb, first, count, GFP_NOFS);
}

/* Journal service: jbd2. */

/*
 * data=ordered: before a transaction commits, write back the ranges of file data its
 * handles ordered (jbd2_journal_inode_ranged_write). 6.12 has no default for this
 * callback; this is ocfs2's, over the whole dirty range with WB_SYNC_ALL.
 */
static int bento_submit_inode_data_buffers(struct jbd2_inode *jinode)
{
	return filemap_fdatawrite_range(jinode->i_vfs_inode->i_mapping,
					jinode->i_dirty_start, jinode->i_dirty_end);
}

/*
 * Sets up a journal made by jbd2_journal_init_dev and not yet loaded: data=ordered
 * writeback callbacks, and cache flushes around commit records (JBD2_BARRIER, as ext4's
 * default "barrier" option), without which a commit is not durable on a device with a
 * volatile write cache.
 */
/*
 * The log lives inside the file system's device: log block n is device block
 * j_blk_offset + n (block 0 is the journal superblock, at j_blk_offset), as in the
 * userspace implementation. jbd2 maps a journal made by jbd2_journal_init_dev() one to
 * one onto the device otherwise (an external journal device).
 */
static int bento_jbd2_bmap(journal_t *journal, sector_t *block)
{
	if (*block >= journal->j_total_len)
		return -EFSCORRUPTED;
	*block += journal->j_blk_offset;
	return 0;
}

void rust_helper_bento_jbd2_setup(journal_t *journal)
{
	journal->j_bmap = bento_jbd2_bmap;
	journal->j_submit_inode_data_buffers = bento_submit_inode_data_buffers;
	journal->j_finish_inode_data_buffers = jbd2_journal_finish_inode_data_buffers;
	write_lock(&journal->j_state_lock);
	journal->j_flags |= JBD2_BARRIER;
	write_unlock(&journal->j_state_lock);
}

bool rust_helper_bento_jbd2_aborted(journal_t *journal)
{
	return is_journal_aborted(journal);
}

/* Whether transaction @tid was started: it is before the next id jbd2 hands out. */
bool rust_helper_bento_jbd2_tid_started(journal_t *journal, tid_t tid)
{
	bool started;

	read_lock(&journal->j_state_lock);
	started = tid_gt(journal->j_transaction_sequence, tid);
	read_unlock(&journal->j_state_lock);
	return started;
}

/* The id of the most recently committed transaction. */
tid_t rust_helper_bento_jbd2_commit_sequence(journal_t *journal)
{
	return READ_ONCE(journal->j_commit_sequence);
}

/* The next transaction id jbd2 hands out. */
tid_t rust_helper_bento_jbd2_next_tid(journal_t *journal)
{
	tid_t tid;

	read_lock(&journal->j_state_lock);
	tid = journal->j_transaction_sequence;
	read_unlock(&journal->j_state_lock);
	return tid;
}

/* The handle the current task holds (current->journal_info), or NULL. */
handle_t *rust_helper_bento_jbd2_current_handle(void)
{
	return journal_current_handle();
}

/* The journal of a handle, or NULL for one detached from its transaction. */
journal_t *rust_helper_bento_jbd2_handle_journal(handle_t *handle)
{
	if (handle->h_reserved)
		return handle->h_journal;
	return handle->h_transaction ? handle->h_transaction->t_journal : NULL;
}

/* The id of the handle's transaction (0 for a handle detached from it). */
tid_t rust_helper_bento_jbd2_handle_tid(handle_t *handle)
{
	return handle->h_transaction ? handle->h_transaction->t_tid : 0;
}

void rust_helper_bento_jbd2_handle_set_sync(handle_t *handle)
{
	handle->h_sync = 1;
}

int rust_helper_bento_jbd2_handle_buffer_credits(handle_t *handle)
{
	return jbd2_handle_buffer_credits(handle);
}

/*
 * After write (or create) access to @bh was granted to @handle: whether filing it with
 * jbd2_journal_dirty_metadata would need a buffer credit the handle does not have (the
 * buffer was not changed by this transaction yet, and the handle has no credit left).
 * jbd2 itself finds out only in dirty_metadata, after the change, with a WARN.
 */
bool rust_helper_bento_jbd2_dirty_needs_missing_credit(handle_t *handle,
						       struct buffer_head *bh)
{
	struct journal_head *jh;
	bool needs;

	if (jbd2_handle_buffer_credits(handle) > 0)
		return false;
	jh = jbd2_journal_grab_journal_head(bh);
	if (!jh)
		return true;
	spin_lock(&jh->b_state_lock);
	needs = !jh->b_modified;
	spin_unlock(&jh->b_state_lock);
	jbd2_journal_put_journal_head(jh);
	return needs;
}
