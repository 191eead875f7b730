// SPDX-License-Identifier: GPL-2.0
/*
 * POSIX behaviour a kernel file system must have, checked in a directory of the file
 * system under test: data (create, read, write, overwrite, append, truncate, holes,
 * large offsets, mmap, O_DIRECT, fsync, fallocate, SEEK_DATA/SEEK_HOLE), the
 * namespace (rename and renameat2 flags, links, symlinks, device nodes and fifos,
 * directories), attributes, xattrs and statfs.
 *
 * Written for Bento's xv6fs (bento_xv6fs.sh runs it on a kernel xv6fs mount) but
 * file-system neutral: it passes on ext4 and tmpfs.
 *
 * Usage: xv6fs_test DIR [harness options]     or     XV6FS_TEST_DIR=DIR xv6fs_test
 * Each test works in a fresh subdirectory of DIR and removes it afterwards. Run as root
 * (device nodes, chown, trusted.* xattrs).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/magic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "../../kselftest_harness.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define KiB 1024L
#define MiB (1024L * KiB)
#define GiB (1024L * MiB)

static const char *test_root;

/* Byte at file offset @off of the pattern @seed: position dependent, so that
 * misplaced data (wrong block, wrong offset within a block) shows. */
static unsigned char pat(long off, unsigned int seed)
{
	uint32_t x = (uint32_t)off * 2654435761u + seed * 40503u + (uint32_t)(off >> 32);

	return (unsigned char)(x >> 13 ^ x >> 24);
}

static void fill(unsigned char *buf, long off, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = pat(off + (long)i, seed);
}

/* Offset of the first byte of [off, off+len) that differs from the pattern (seed >= 0)
 * or from zero (seed < 0); -1 if all match, -2 on a short read or error. */
static long mismatch(int fd, long off, long len, int seed)
{
	static unsigned char buf[256 * 1024];

	while (len > 0) {
		size_t n = len < (long)sizeof(buf) ? (size_t)len : sizeof(buf);
		ssize_t r = pread(fd, buf, n, off);

		if (r != (ssize_t)n)
			return -2;
		for (size_t i = 0; i < n; i++) {
			unsigned char want = seed < 0 ? 0 : pat(off + (long)i, (unsigned int)seed);

			if (buf[i] != want)
				return off + (long)i;
		}
		off += (long)n;
		len -= (long)n;
	}
	return -1;
}

/* Writes [off, off+len) of pattern @seed with pwrite in chunks of @chunk bytes. */
static int write_pat(int fd, long off, long len, unsigned int seed, size_t chunk)
{
	/* Aligned for O_DIRECT writers. */
	static unsigned char buf[256 * 1024] __attribute__((aligned(4096)));

	if (chunk > sizeof(buf))
		chunk = sizeof(buf);
	while (len > 0) {
		size_t n = len < (long)chunk ? (size_t)len : chunk;

		fill(buf, off, n, seed);
		if (pwrite(fd, buf, n, off) != (ssize_t)n)
			return -1;
		off += (long)n;
		len -= (long)n;
	}
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

static int rm_rf(const char *path)
{
	return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

FIXTURE(fs) {
	char dir[PATH_MAX];
	int dfd;
};

FIXTURE_SETUP(fs)
{
	self->dfd = -1;
	snprintf(self->dir, sizeof(self->dir), "%s/xv6fs_test.%d", test_root, getpid());
	rm_rf(self->dir);
	ASSERT_EQ(0, mkdir(self->dir, 0755))
		TH_LOG("mkdir %s: %s", self->dir, strerror(errno));
	self->dfd = open(self->dir, O_RDONLY | O_DIRECTORY);
	ASSERT_LE(0, self->dfd) TH_LOG("open %s: %s", self->dir, strerror(errno));
}

FIXTURE_TEARDOWN(fs)
{
	if (self->dfd >= 0)
		close(self->dfd);
	/* Not EXPECT_*: after a failed ASSERT its handler would log even on success. */
	if (rm_rf(self->dir) != 0) {
		TH_LOG("removing %s: %s", self->dir, strerror(errno));
		_metadata->exit_code = KSFT_FAIL;
	}
}

/* Path of @name in the test directory (four rotating buffers). */
#define P(name) path_of(self, name)
static const char *path_of(FIXTURE_DATA(fs) *self, const char *name)
{
	static char bufs[4][PATH_MAX + 64];
	static int next;
	char *b = bufs[next++ % 4];

	snprintf(b, sizeof(bufs[0]), "%s/%s", self->dir, name);
	return b;
}

/* expr must succeed (not return -1); errno is reported otherwise. */
#define OK(expr) do { \
	errno = 0; \
	long __r = (long)(expr); \
	int __e = errno; \
	ASSERT_NE(-1, __r) TH_LOG("%s: %s", #expr, strerror(__e)); \
} while (0)

/* expr must fail with errno err (one of err, err2 if err2 is nonzero). */
#define FAILS2(err, err2, expr) do { \
	errno = 0; \
	long __r = (long)(expr); \
	int __e = errno; \
	ASSERT_EQ(-1, __r) TH_LOG("%s succeeded, expected %s", #expr, strerror(err)); \
	if ((err2) && __e == (err2)) \
		break; \
	ASSERT_EQ(err, __e) \
		TH_LOG("%s: got %s, expected %s", #expr, strerror(__e), strerror(err)); \
} while (0)
#define FAILS(err, expr) FAILS2(err, 0, expr)

#define OPEN(name, flags, ...) ({ \
	int __fd = openat(self->dfd, name, flags, ##__VA_ARGS__); \
	int __e = errno; \
	ASSERT_LE(0, __fd) TH_LOG("open %s: %s", name, strerror(__e)); \
	__fd; \
})

#define FSTAT(fd) ({ \
	struct stat __st; \
	int __e = fstat(fd, &__st) ? errno : 0; \
	ASSERT_EQ(0, __e) TH_LOG("fstat: %s", strerror(__e)); \
	__st; \
})

#define LSTAT(name) ({ \
	struct stat __st; \
	int __e = fstatat(self->dfd, name, &__st, AT_SYMLINK_NOFOLLOW) ? errno : 0; \
	ASSERT_EQ(0, __e) TH_LOG("lstat %s: %s", name, strerror(__e)); \
	__st; \
})

#define STATVFS() ({ \
	struct statvfs __sv; \
	int __e = fstatvfs(self->dfd, &__sv) ? errno : 0; \
	ASSERT_EQ(0, __e) TH_LOG("statvfs: %s", strerror(__e)); \
	__sv; \
})

/* The bytes of [off, off+len) of fd are pattern @seed (or zeros: seed -1). */
#define ASSERT_DATA(fd, off, len, seed) do { \
	long __m = mismatch(fd, off, len, seed); \
	ASSERT_EQ(-1, __m) TH_LOG("[%ld, %ld) should be %s: %s at %ld", \
		(long)(off), (long)(off) + (long)(len), \
		(seed) < 0 ? "zeros" : "pattern " #seed, \
		__m == -2 ? "short read" : "wrong byte", __m); \
} while (0)

#define WRITE_PAT(fd, off, len, seed) \
	ASSERT_EQ(0, write_pat(fd, off, len, seed, 64 * KiB)) \
		TH_LOG("writing [%ld, %ld): %s", (long)(off), (long)(off) + (long)(len), \
		       strerror(errno))

static int file_with(FIXTURE_DATA(fs) *self, const char *name, const char *content)
{
	int fd = openat(self->dfd, name, O_CREAT | O_TRUNC | O_WRONLY, 0644);

	if (fd < 0)
		return -1;
	if (write(fd, content, strlen(content)) != (ssize_t)strlen(content)) {
		close(fd);
		return -1;
	}
	return close(fd);
}

/* Content of a small file, "" if it cannot be read. */
static const char *content_of(FIXTURE_DATA(fs) *self, const char *name)
{
	static char buf[4][256];
	static int next;
	char *b = buf[next++ % 4];
	int fd = openat(self->dfd, name, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, b, sizeof(buf[0]) - 1);

	if (fd >= 0)
		close(fd);
	b[n < 0 ? 0 : n] = '\0';
	return b;
}

static int renameat2_(int olddfd, const char *old, int newdfd, const char *new,
		      unsigned int flags)
{
	return (int)syscall(SYS_renameat2, olddfd, old, newdfd, new, flags);
}

static ino_t ino_of(FIXTURE_DATA(fs) *self, const char *name)
{
	struct stat st;

	return fstatat(self->dfd, name, &st, AT_SYMLINK_NOFOLLOW) ? 0 : st.st_ino;
}

static nlink_t nlink_of(FIXTURE_DATA(fs) *self, const char *name)
{
	struct stat st;

	return fstatat(self->dfd, name, &st, AT_SYMLINK_NOFOLLOW) ? 0 : st.st_nlink;
}

/* ---- files and data ---------------------------------------------------------- */

TEST_F(fs, create_open_errors)
{
	char name[300];
	struct stat st;
	int fd;

	fd = OPEN("f", O_CREAT | O_EXCL | O_RDWR, 0640);
	st = FSTAT(fd);
	EXPECT_TRUE(S_ISREG(st.st_mode));
	EXPECT_EQ(0640, st.st_mode & 07777);
	EXPECT_EQ(0, st.st_size);
	EXPECT_EQ(1, st.st_nlink);
	EXPECT_EQ(geteuid(), st.st_uid);
	EXPECT_EQ(getegid(), st.st_gid);
	close(fd);
	FAILS(EEXIST, openat(self->dfd, "f", O_CREAT | O_EXCL | O_RDWR, 0644));
	FAILS(ENOENT, openat(self->dfd, "missing", O_RDONLY));
	FAILS(ENOTDIR, openat(self->dfd, "f/x", O_RDONLY));
	FAILS(ENOTDIR, openat(self->dfd, "f", O_RDONLY | O_DIRECTORY));
	FAILS(EISDIR, openat(self->dfd, ".", O_RDWR));
	memset(name, 'n', 255);
	name[255] = '\0';
	close(OPEN(name, O_CREAT | O_EXCL | O_WRONLY, 0644));
	EXPECT_EQ(0, faccessat(self->dfd, name, F_OK, 0));
	name[255] = 'n';
	name[256] = '\0';
	FAILS(ENAMETOOLONG, openat(self->dfd, name, O_CREAT | O_WRONLY, 0644));
}

TEST_F(fs, write_read)
{
	const long size = 3 * MiB + 123;
	static unsigned char buf[4097];
	long off = 0;
	int fd;

	/* Odd chunk sizes: every write straddles block boundaries differently. */
	fd = OPEN("f", O_CREAT | O_RDWR, 0644);
	ASSERT_EQ(0, write_pat(fd, 0, size, 1, 7777));
	EXPECT_EQ(size, FSTAT(fd).st_size);
	close(fd);

	fd = OPEN("f", O_RDONLY);
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		ASSERT_LE(0, n) TH_LOG("read: %s", strerror(errno));
		if (n == 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			ASSERT_EQ(pat(off + i, 1), buf[i]) TH_LOG("byte %ld", off + (long)i);
		}
		off += n;
	}
	EXPECT_EQ(size, off);
	ASSERT_DATA(fd, 4095, 2, 1);
	ASSERT_DATA(fd, 48 * KiB - 1, 3, 1);	/* around the end of xv6fs's direct blocks */
	ASSERT_DATA(fd, size - 10, 10, 1);
	EXPECT_EQ(0, pread(fd, buf, 10, size));	/* at EOF */
	EXPECT_EQ(3, pread(fd, buf, 10, size - 3));
	close(fd);
}

TEST_F(fs, overwrite)
{
	int fd = OPEN("f", O_CREAT | O_RDWR, 0644);

	WRITE_PAT(fd, 0, 20 * KiB, 1);
	WRITE_PAT(fd, 4000, 5000, 2);
	WRITE_PAT(fd, 16 * KiB, 4 * KiB, 3);	/* one whole block */
	EXPECT_EQ(20 * KiB, FSTAT(fd).st_size);
	ASSERT_DATA(fd, 0, 4000, 1);
	ASSERT_DATA(fd, 4000, 5000, 2);
	ASSERT_DATA(fd, 9000, 16 * KiB - 9000, 1);
	ASSERT_DATA(fd, 16 * KiB, 4 * KiB, 3);
	close(fd);
	/* O_TRUNC empties it and frees its blocks. */
	fd = OPEN("f", O_RDWR | O_TRUNC);
	EXPECT_EQ(0, FSTAT(fd).st_size);
	EXPECT_EQ(0, FSTAT(fd).st_blocks);
	close(fd);
}

TEST_F(fs, append)
{
	int fd;

	ASSERT_EQ(0, file_with(self, "f", "hello"));
	fd = OPEN("f", O_WRONLY | O_APPEND);
	ASSERT_EQ(0, lseek(fd, 0, SEEK_SET));
	ASSERT_EQ(5, write(fd, "world", 5));
	EXPECT_EQ(10, lseek(fd, 0, SEEK_CUR));
	ASSERT_EQ(1, write(fd, "!", 1));
	close(fd);
	EXPECT_STREQ("helloworld!", content_of(self, "f"));
}

TEST_F(fs, write_past_eof)
{
	int fd = OPEN("f", O_CREAT | O_RDWR, 0644);

	WRITE_PAT(fd, 10000, 10, 1);
	EXPECT_EQ(10010, FSTAT(fd).st_size);
	ASSERT_DATA(fd, 0, 10000, -1);
	ASSERT_DATA(fd, 10000, 10, 1);
	close(fd);
}

/*
 * A write cut short by a fault in its buffer: the size is what was copied, the blocks
 * allocated ahead for the rest are freed, and growing the file shows zeros there.
 */
TEST_F(fs, short_write)
{
	long pg = sysconf(_SC_PAGESIZE);
	int fd = OPEN("f", O_CREAT | O_RDWR, 0644);
	unsigned char *buf = mmap(NULL, 64 * pg, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(MAP_FAILED, buf);
	fill(buf, 0, 3 * pg, 3);
	ASSERT_EQ(0, munmap(buf + 3 * pg, 61 * pg));
	EXPECT_EQ(3 * pg, write(fd, buf, 64 * pg));
	EXPECT_EQ(3 * pg, FSTAT(fd).st_size);
	EXPECT_EQ(3 * pg / 512, FSTAT(fd).st_blocks);
	ASSERT_DATA(fd, 0, 3 * pg, 3);
	ASSERT_EQ(0, ftruncate(fd, 64 * pg));
	EXPECT_EQ(3 * pg / 512, FSTAT(fd).st_blocks);
	ASSERT_DATA(fd, 3 * pg, 61 * pg, -1);
	munmap(buf, 3 * pg);
	close(fd);
}

TEST_F(fs, truncate)
{
	int fd = OPEN("f", O_CREAT | O_RDWR, 0644);
	struct stat st;
	blkcnt_t full;

	/* Down into a block, then up: the cut-off tail must read as zeros. */
	WRITE_PAT(fd, 0, 10000, 1);
	OK(ftruncate(fd, 5000));
	EXPECT_EQ(5000, FSTAT(fd).st_size);
	ASSERT_DATA(fd, 0, 5000, 1);
	OK(ftruncate(fd, 20000));
	EXPECT_EQ(20000, FSTAT(fd).st_size);
	ASSERT_DATA(fd, 0, 5000, 1);
	ASSERT_DATA(fd, 5000, 15000, -1);

	/* The same deep in the file (indirect blocks partly freed). */
	WRITE_PAT(fd, 0, 6 * MiB, 2);
	OK(fsync(fd));	/* allocated by now, even with delayed allocation */
	full = FSTAT(fd).st_blocks;
	OK(truncate(P("f"), 4 * MiB + 100));
	st = FSTAT(fd);
	EXPECT_EQ(4 * MiB + 100, st.st_size);
	EXPECT_GT(full, st.st_blocks);
	OK(ftruncate(fd, 6 * MiB));
	ASSERT_DATA(fd, 0, 4 * MiB + 100, 2);
	ASSERT_DATA(fd, 4 * MiB + 100, 2 * MiB - 100, -1);

	OK(ftruncate(fd, 3));
	ASSERT_DATA(fd, 0, 3, 2);
	OK(ftruncate(fd, 0));
	st = FSTAT(fd);
	EXPECT_EQ(0, st.st_size);
	EXPECT_EQ(0, st.st_blocks);
	/* Up from nothing: sparse. */
	OK(ftruncate(fd, 1 * GiB));
	st = FSTAT(fd);
	EXPECT_EQ(1 * GiB, st.st_size);
	EXPECT_GE(8, st.st_blocks);
	ASSERT_DATA(fd, 512 * MiB - 10, 20, -1);
	FAILS(EINVAL, ftruncate(fd, -1));
	close(fd);
}

TEST_F(fs, sparse)
{
	int fd = OPEN("f", O_CREAT | O_RDWR, 0644);
	struct stat st;

	WRITE_PAT(fd, 0, 4096, 1);
	WRITE_PAT(fd, 1 * MiB, 10, 2);
	WRITE_PAT(fd, 100 * MiB + 3, 4096, 3);
	st = FSTAT(fd);
	EXPECT_EQ(100 * MiB + 3 + 4096, st.st_size);
	/* Three blocks of data and a few of indirection, not 100 MiB. */
	EXPECT_GT(512 * 512, st.st_blocks) TH_LOG("st_blocks %ld", (long)st.st_blocks);
	ASSERT_DATA(fd, 0, 4096, 1);
	ASSERT_DATA(fd, 4096, 1 * MiB - 4096, -1);
	ASSERT_DATA(fd, 1 * MiB, 10, 2);
	ASSERT_DATA(fd, 1 * MiB + 10, 4 * MiB, -1);
	ASSERT_DATA(fd, 100 * MiB - 4096, 4099, -1);
	ASSERT_DATA(fd, 100 * MiB + 3, 4096, 3);
	/* Persisted the same way. */
	OK(fsync(fd));
	ASSERT_DATA(fd, 1 * MiB - 5, 5, -1);
	ASSERT_DATA(fd, 1 * MiB, 10, 2);
	close(fd);
}

TEST_F(fs, large_file)
{
	const long off = 5 * GiB;
	int fd = OPEN("f", O_CREAT | O_RDWR, 0644);
	struct stat st;

	WRITE_PAT(fd, off, 4096, 7);
	st = FSTAT(fd);
	EXPECT_EQ(off + 4096, st.st_size);
	EXPECT_GT(256, st.st_blocks) TH_LOG("st_blocks %ld", (long)st.st_blocks);
	ASSERT_DATA(fd, off, 4096, 7);
	ASSERT_DATA(fd, 4 * GiB - 100, 200, -1);
	ASSERT_DATA(fd, off - 4096, 4096, -1);
	close(fd);
	fd = OPEN("f", O_RDONLY);
	EXPECT_EQ(off + 4096, FSTAT(fd).st_size);
	EXPECT_EQ(off + 4096, lseek(fd, 0, SEEK_END));
	ASSERT_DATA(fd, off + 4000, 96, 7);
	close(fd);
	fd = OPEN("f", O_RDWR | O_TRUNC);
	EXPECT_EQ(0, FSTAT(fd).st_blocks);
	close(fd);
}

TEST_F(fs, unlinked_open_file)
{
	struct statvfs before, open_, after;
	struct stat st;
	int fd;

	fd = OPEN("f", O_CREAT | O_RDWR, 0644);
	WRITE_PAT(fd, 0, 4 * MiB, 1);
	OK(fsync(fd));
	OK(syncfs(self->dfd));
	before = STATVFS();
	OK(unlinkat(self->dfd, "f", 0));
	FAILS(ENOENT, fstatat(self->dfd, "f", &st, 0));
	st = FSTAT(fd);
	EXPECT_EQ(0, st.st_nlink);
	EXPECT_EQ(4 * MiB, st.st_size);
	ASSERT_DATA(fd, 0, 4 * MiB, 1);
	WRITE_PAT(fd, 4 * MiB, 8192, 2);
	ASSERT_DATA(fd, 4 * MiB - 10, 10, 1);
	ASSERT_DATA(fd, 4 * MiB, 8192, 2);
	OK(fsync(fd));
	OK(syncfs(self->dfd));
	open_ = STATVFS();
	/* Still allocated while open ... */
	EXPECT_GE(before.f_bfree, open_.f_bfree);
	close(fd);
	/* ... and freed after the last close. */
	OK(syncfs(self->dfd));
	after = STATVFS();
	EXPECT_LE(open_.f_bfree + (unsigned long)(3 * MiB / after.f_frsize), after.f_bfree)
		TH_LOG("f_bfree %lu with the unlinked file open, %lu after close",
		       (unsigned long)open_.f_bfree, (unsigned long)after.f_bfree);
}

TEST_F(fs, mmap_shared)
{
	const long size = 3 * 4096 + 100;
	long pg = sysconf(_SC_PAGESIZE);
	unsigned char *p;
	int fd = OPEN("f", O_CREAT | O_RDWR, 0644);

	WRITE_PAT(fd, 0, size, 1);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p) TH_LOG("mmap: %s", strerror(errno));
	/* The mapping sees the written data ... */
	for (long i = 0; i < size; i++) {
		ASSERT_EQ(pat(i, 1), p[i]) TH_LOG("mapped byte %ld", i);
	}
	/* ... and writes through it reach the file. */
	fill(p + 1000, 1000, 9000, 2);
	OK(msync(p, size, MS_SYNC));
	/* pwrite is visible through the mapping. */
	WRITE_PAT(fd, 12000, 50, 3);
	for (long i = 12000; i < 12050; i++) {
		ASSERT_EQ(pat(i, 3), p[i]) TH_LOG("mapped byte %ld after pwrite", i);
	}
	/* Bytes past EOF in the last page are not part of the file. */
	memset(p + size, 0xff, (size_t)(((size + pg - 1) / pg) * pg - size));
	OK(munmap(p, size));
	EXPECT_EQ(size, FSTAT(fd).st_size);
	ASSERT_DATA(fd, 0, 1000, 1);
	ASSERT_DATA(fd, 1000, 9000, 2);
	ASSERT_DATA(fd, 10000, 2000, 1);
	ASSERT_DATA(fd, 12000, 50, 3);
	ASSERT_DATA(fd, 12050, size - 12050, 1);
	close(fd);
	/* Read back through a new open, after the pages may have been dropped. */
	fd = OPEN("f", O_RDONLY);
	ASSERT_DATA(fd, 1000, 9000, 2);
	close(fd);
}

TEST_F(fs, mmap_write_into_holes)
{
	const long size = 64 * KiB;
	unsigned char *p;
	int fd = OPEN("f", O_CREAT | O_RDWR, 0644);

	/* Every page of the mapping starts as a hole: the fault must allocate. */
	OK(ftruncate(fd, size));
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p) TH_LOG("mmap: %s", strerror(errno));
	for (long i = 0; i < size; i++) {
		ASSERT_EQ(0, p[i]) TH_LOG("mapped hole byte %ld", i);
	}
	fill(p + 4096, 4096, size - 8192, 4);
	OK(msync(p, size, MS_SYNC));
	OK(munmap(p, size));
	OK(fsync(fd));
	close(fd);
	fd = OPEN("f", O_RDONLY);
	EXPECT_EQ(size, FSTAT(fd).st_size);
	EXPECT_LE((size - 8192) / 512, FSTAT(fd).st_blocks);
	ASSERT_DATA(fd, 0, 4096, -1);
	ASSERT_DATA(fd, 4096, size - 8192, 4);
	ASSERT_DATA(fd, size - 4096, 4096, -1);
	close(fd);
}

TEST_F(fs, mmap_private)
{
	unsigned char *p;
	int fd = OPEN("f", O_CREAT | O_RDWR, 0644);

	WRITE_PAT(fd, 0, 8192, 1);
	p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	ASSERT_NE(MAP_FAILED, p) TH_LOG("mmap: %s", strerror(errno));
	memset(p, 0xab, 8192);
	OK(munmap(p, 8192));
	ASSERT_DATA(fd, 0, 8192, 1);
	close(fd);
}

TEST_F(fs, fsync)
{
	int fd = OPEN("f", O_CREAT | O_RDWR, 0644);
	int ro;

	WRITE_PAT(fd, 0, 100 * KiB, 1);
	OK(fsync(fd));
	WRITE_PAT(fd, 50 * KiB, 100 * KiB, 2);
	OK(fdatasync(fd));
	OK(sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
			   SYNC_FILE_RANGE_WAIT_AFTER));
	OK(fsync(self->dfd));
	OK(syncfs(fd));
	ro = OPEN("f", O_RDONLY);
	OK(fsync(ro));
	ASSERT_DATA(ro, 0, 50 * KiB, 1);
	ASSERT_DATA(ro, 50 * KiB, 100 * KiB, 2);
	close(ro);
	close(fd);
}

TEST_F(fs, statfs)
{
	struct statvfs a, b, c, d;
	unsigned long blocks;
	int fd;

	OK(syncfs(self->dfd));
	a = STATVFS();
	EXPECT_LT(0, a.f_bsize);
	EXPECT_LT(0, a.f_frsize);
	EXPECT_LT(0, a.f_blocks);
	EXPECT_GE(a.f_blocks, a.f_bfree);
	EXPECT_GE(a.f_bfree, a.f_bavail);
	EXPECT_LE(255, a.f_namemax);
	EXPECT_GE(a.f_files, a.f_ffree);
	EXPECT_LT(0, a.f_ffree);
	/* Some room to write into. */
	ASSERT_LT(8 * MiB / a.f_frsize, a.f_bavail);

	blocks = 4 * MiB / a.f_frsize;
	fd = OPEN("f", O_CREAT | O_RDWR, 0644);
	WRITE_PAT(fd, 0, 4 * MiB, 1);
	OK(fsync(fd));
	close(fd);
	b = STATVFS();
	EXPECT_LE(a.f_bfree - b.f_bfree, a.f_bfree);	/* no wrap */
	EXPECT_LE(blocks * 3 / 4, a.f_bfree - b.f_bfree)
		TH_LOG("f_bfree %lu before writing 4 MiB, %lu after",
		       (unsigned long)a.f_bfree, (unsigned long)b.f_bfree);
	EXPECT_GT(a.f_ffree, b.f_ffree)
		TH_LOG("f_ffree %lu before a create, %lu after",
		       (unsigned long)a.f_ffree, (unsigned long)b.f_ffree);
	/* And back after the unlink. */
	OK(unlinkat(self->dfd, "f", 0));
	OK(syncfs(self->dfd));
	c = STATVFS();
	EXPECT_LE(b.f_bfree + blocks * 3 / 4, c.f_bfree)
		TH_LOG("f_bfree %lu before the unlink of 4 MiB, %lu after",
		       (unsigned long)b.f_bfree, (unsigned long)c.f_bfree);
	/* statfs(2) on a file agrees with the directory. */
	close(OPEN("g", O_CREAT | O_WRONLY, 0644));
	ASSERT_EQ(0, statvfs(P("g"), &d));
	EXPECT_EQ(c.f_blocks, d.f_blocks);
	EXPECT_EQ(c.f_fsid, d.f_fsid);
}

TEST_F(fs, seek_data_hole)
{
	int fd = OPEN("f", O_CREAT | O_RDWR, 0644);

	/* Empty file: no data, the hole at EOF is ENXIO too. */
	FAILS(ENXIO, lseek(fd, 0, SEEK_DATA));
	FAILS(ENXIO, lseek(fd, 0, SEEK_HOLE));

	/* data [0, 4K), hole, data [1M, 1M+4K), hole to 2M */
	WRITE_PAT(fd, 0, 4096, 1);
	WRITE_PAT(fd, 1 * MiB, 4096, 2);
	OK(ftruncate(fd, 2 * MiB));
	EXPECT_EQ(0, lseek(fd, 0, SEEK_DATA));
	EXPECT_EQ(4096, lseek(fd, 0, SEEK_HOLE));
	EXPECT_EQ(100, lseek(fd, 100, SEEK_DATA));
	EXPECT_EQ(1 * MiB, lseek(fd, 4096, SEEK_DATA));
	EXPECT_EQ(8192, lseek(fd, 8192, SEEK_HOLE));
	EXPECT_EQ(1 * MiB + 4096, lseek(fd, 1 * MiB, SEEK_HOLE));
	FAILS(ENXIO, lseek(fd, 1 * MiB + 4096, SEEK_DATA));
	EXPECT_EQ(1 * MiB + 8192, lseek(fd, 1 * MiB + 8192, SEEK_HOLE));
	FAILS(ENXIO, lseek(fd, 2 * MiB, SEEK_DATA));
	FAILS(ENXIO, lseek(fd, 2 * MiB, SEEK_HOLE));
	/* The same after the data reached the disk. */
	OK(fsync(fd));
	EXPECT_EQ(4096, lseek(fd, 0, SEEK_HOLE));
	EXPECT_EQ(1 * MiB, lseek(fd, 4096, SEEK_DATA));
	EXPECT_EQ(1 * MiB + 4096, lseek(fd, 1 * MiB + 1, SEEK_HOLE));
	/* A file without holes: one hole, at EOF. */
	OK(ftruncate(fd, 1 * MiB + 4096));
	WRITE_PAT(fd, 4096, 1 * MiB - 4096, 3);
	EXPECT_EQ(1 * MiB + 4096, lseek(fd, 0, SEEK_HOLE));
	EXPECT_EQ(5000, lseek(fd, 5000, SEEK_DATA));
	close(fd);
}

TEST_F(fs, fallocate)
{
	int fd = OPEN("f", O_CREAT | O_RDWR, 0644);
	struct stat st;

	/* Mode 0: allocated, zeros, size extended. */
	if (fallocate(fd, 0, 0, 1 * MiB) != 0) {
		ASSERT_EQ(0, errno) TH_LOG("fallocate(0, 0, 1 MiB): %s", strerror(errno));
	}
	st = FSTAT(fd);
	EXPECT_EQ(1 * MiB, st.st_size);
	EXPECT_LE(1 * MiB / 512, st.st_blocks);
	ASSERT_DATA(fd, 0, 1 * MiB, -1);
	WRITE_PAT(fd, 100 * KiB + 5, 5000, 1);
	ASSERT_DATA(fd, 0, 100 * KiB + 5, -1);
	ASSERT_DATA(fd, 100 * KiB + 5, 5000, 1);
	ASSERT_DATA(fd, 100 * KiB + 5005, 1 * MiB - 100 * KiB - 5005, -1);
	/* Over existing data: changes nothing. */
	OK(fallocate(fd, 0, 0, 200 * KiB));
	ASSERT_DATA(fd, 100 * KiB + 5, 5000, 1);
	EXPECT_EQ(1 * MiB, FSTAT(fd).st_size);
	/* Past EOF, not block aligned: size is offset + len exactly. */
	OK(fallocate(fd, 0, 2 * MiB + 1, 10));
	EXPECT_EQ(2 * MiB + 11, FSTAT(fd).st_size);
	ASSERT_DATA(fd, 1 * MiB, 1 * MiB + 11, -1);
	close(fd);

	/* KEEP_SIZE: blocks without a size change. */
	fd = OPEN("g", O_CREAT | O_RDWR, 0644);
	OK(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 1 * MiB));
	st = FSTAT(fd);
	EXPECT_EQ(0, st.st_size);
	EXPECT_LE(1 * MiB / 512, st.st_blocks);
	WRITE_PAT(fd, 0, 100, 2);
	EXPECT_EQ(100, FSTAT(fd).st_size);
	ASSERT_DATA(fd, 0, 100, 2);
	FAILS(EINVAL, fallocate(fd, 0, 0, 0));
	FAILS(EINVAL, fallocate(fd, 0, -1, 10));
	close(fd);
}

/*
 * Drops fd's clean cached pages, so that the next reads come from the disk:
 * fadvise, or (a kernel without it, as the test guest's) the whole page cache.
 */
static int drop_cache(int fd)
{
	int dc;

	if (posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0)
		return 0;
	dc = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (dc < 0 || write(dc, "1", 1) != 1) {
		close(dc);
		return -1;
	}
	return close(dc);
}

/*
 * Fills the free space but 8 MiB with pattern 7 and frees it again, so that the next
 * allocations reuse blocks holding old data (an allocator that moves on through the
 * disk gets there only when it wraps around). Not on tmpfs (the reference run: memory).
 */
static void stale_blocks(FIXTURE_DATA(fs) *self)
{
	struct statfs sf;
	long len;
	int fd;

	if (statfs(P("."), &sf) || sf.f_type == TMPFS_MAGIC)
		return;
	len = (long)sf.f_bavail * (long)sf.f_bsize - 8 * MiB;
	if (len > 1 * GiB)
		len = 1 * GiB;
	fd = open(P("stale"), O_CREAT | O_RDWR, 0644);
	if (fd < 0 || (len > 0 && (write_pat(fd, 0, len, 7, 256 * KiB) || fsync(fd))))
		perror("stale blocks");
	close(fd);
	unlink(P("stale"));
	sync();
}

/*
 * Whole blocks written where fallocate left unwritten blocks, or into holes inside the
 * file (mapped ahead of the data, a run at a time): what was written reads back and the
 * rest reads as zeros, never what the blocks held before, also when a fault in the
 * buffer cuts the write short, and after the data left the page cache.
 */
TEST_F(fs, fallocate_then_write)
{
	long pg = sysconf(_SC_PAGESIZE);
	unsigned char *buf;
	int fd;

	stale_blocks(self);
	fd = OPEN("f", O_CREAT | O_RDWR, 0644);
	OK(fallocate(fd, 0, 0, 2 * MiB));
	OK(ftruncate(fd, 4 * MiB));
	ASSERT_DATA(fd, 0, 4 * MiB, -1);
	WRITE_PAT(fd, 64 * KiB, 1 * MiB, 1);
	WRITE_PAT(fd, 3 * MiB, 512 * KiB, 2);
	buf = mmap(NULL, 64 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	ASSERT_EQ(0, munmap(buf + 3 * pg, 61 * pg));
	fill(buf, 1536 * KiB, 3 * pg, 3);
	EXPECT_EQ(3 * pg, pwrite(fd, buf, 64 * pg, 1536 * KiB));
	fill(buf, 2 * MiB + 64 * KiB, 3 * pg, 4);
	EXPECT_EQ(3 * pg, pwrite(fd, buf, 64 * pg, 2 * MiB + 64 * KiB));
	munmap(buf, 3 * pg);
	EXPECT_EQ(4 * MiB, FSTAT(fd).st_size);
	for (int pass = 0; pass < 2; pass++) {
		ASSERT_DATA(fd, 0, 64 * KiB, -1);
		ASSERT_DATA(fd, 64 * KiB, 1 * MiB, 1);
		ASSERT_DATA(fd, 1088 * KiB, 448 * KiB, -1);
		ASSERT_DATA(fd, 1536 * KiB, 3 * pg, 3);
		ASSERT_DATA(fd, 1536 * KiB + 3 * pg, 512 * KiB - 3 * pg + 64 * KiB, -1);
		ASSERT_DATA(fd, 2 * MiB + 64 * KiB, 3 * pg, 4);
		ASSERT_DATA(fd, 2 * MiB + 64 * KiB + 3 * pg, 960 * KiB - 3 * pg, -1);
		ASSERT_DATA(fd, 3 * MiB, 512 * KiB, 2);
		ASSERT_DATA(fd, 3 * MiB + 512 * KiB, 512 * KiB, -1);
		/* Again from the disk. */
		OK(fsync(fd));
		OK(drop_cache(fd));
	}
	close(fd);
}

/*
 * Readers of blocks a writer is filling see zeros or the new data, never what the
 * blocks held before: ROUNDS files of 1 MiB, each first laid out with fallocate
 * (unwritten blocks) or, with holes, as a hole inside the file; the writer writes it
 * in 256 KiB pieces, buffered (mapped ahead of the data) or O_DIRECT (which must not
 * map a block before its data is on the disk), while a child reads it from the disk
 * over and over.
 */
static void race_reader(struct __test_metadata *_metadata, FIXTURE_DATA(fs) *self,
			int rounds, int holes, int direct)
{
	const long len = 1 * MiB;
	int status;
	pid_t child;

	stale_blocks(self);
	for (int r = 0; r < rounds; r++) {
		char name[32];
		int fd, wfd;

		snprintf(name, sizeof(name), "f%d", r);
		fd = OPEN(name, O_CREAT | O_RDWR, 0644);
		if (holes && r % 2)
			OK(ftruncate(fd, len));
		else
			OK(fallocate(fd, 0, 0, len));
		wfd = direct ? openat(self->dfd, name, O_RDWR | O_DIRECT) : fd;
		if (wfd < 0 && errno == EINVAL)
			SKIP(return, "O_DIRECT not supported (open: EINVAL)");
		ASSERT_LE(0, wfd) TH_LOG("open: %s", strerror(errno));
		child = fork();
		ASSERT_LE(0, child);
		if (child == 0) {
			static unsigned char b[64 * 1024];

			for (int i = 0; i < 40; i++) {
				/* From the disk, not the zeros cached by the last pass. */
				drop_cache(fd);
				for (long off = 0; off < len; off += sizeof(b)) {
					if (pread(fd, b, sizeof(b), off) != (ssize_t)sizeof(b))
						_exit(2);
					for (size_t k = 0; k < sizeof(b); k++)
						if (b[k] && b[k] != pat(off + (long)k, 1))
							_exit(1);
				}
			}
			_exit(0);
		}
		ASSERT_EQ(0, write_pat(wfd, 0, len, 1, 256 * KiB))
			TH_LOG("write: %s", strerror(errno));
		ASSERT_EQ(child, waitpid(child, &status, 0));
		ASSERT_TRUE(WIFEXITED(status));
		ASSERT_EQ(0, WEXITSTATUS(status))
			TH_LOG("round %d (%s): a reader saw old data", r,
			       holes && r % 2 ? "hole" : "unwritten");
		ASSERT_DATA(fd, 0, len, 1);
		if (wfd != fd)
			close(wfd);
		close(fd);
	}
}

TEST_F(fs, read_while_writing_unwritten)
{
	race_reader(_metadata, self, 24, 0, 0);
}

TEST_F(fs, read_while_writing_direct)
{
	race_reader(_metadata, self, 24, 1, 1);
}

TEST_F(fs, punch_hole)
{
	const long size = 16 * KiB;
	int fd = OPEN("f", O_CREAT | O_RDWR, 0644);
	struct stat before, after;
	long bs;

	WRITE_PAT(fd, 0, size, 1);
	OK(fsync(fd));
	before = FSTAT(fd);
	/* A hole must be punched with KEEP_SIZE. */
	FAILS(EOPNOTSUPP, fallocate(fd, FALLOC_FL_PUNCH_HOLE, 1000, 10000));
	/* [1000, 11000): partial block 0, all of block 1, partial block 2. */
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1000, 10000) != 0) {
		ASSERT_EQ(0, errno) TH_LOG("punching [1000, 11000): %s", strerror(errno));
	}
	after = FSTAT(fd);
	EXPECT_EQ(size, after.st_size);
	EXPECT_GE(before.st_blocks - 8, after.st_blocks)
		TH_LOG("st_blocks %ld before punching a 4 KiB block out, %ld after",
		       (long)before.st_blocks, (long)after.st_blocks);
	ASSERT_DATA(fd, 0, 1000, 1);
	ASSERT_DATA(fd, 1000, 10000, -1);
	ASSERT_DATA(fd, 11000, size - 11000, 1);
	/* The blocks wholly inside are a hole now (block 1 with 4 KiB blocks). */
	bs = after.st_blksize;
	if (bs >= 512 && bs <= 4096) {
		EXPECT_EQ((1000 + bs - 1) / bs * bs, lseek(fd, 0, SEEK_HOLE));
		EXPECT_EQ(11000 / bs * bs, lseek(fd, 4096, SEEK_DATA));
	}
	/* The same once on disk. */
	OK(fsync(fd));
	ASSERT_DATA(fd, 1000, 10000, -1);
	ASSERT_DATA(fd, 11000, size - 11000, 1);
	/* Past EOF: nothing changes. */
	OK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, size, 1 * MiB));
	EXPECT_EQ(size, FSTAT(fd).st_size);
	/* Writing into the hole again. */
	WRITE_PAT(fd, 5000, 100, 2);
	ASSERT_DATA(fd, 4096, 5000 - 4096, -1);
	ASSERT_DATA(fd, 5000, 100, 2);
	/* The whole file: no data left. */
	OK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, size));
	ASSERT_DATA(fd, 0, size, -1);
	FAILS(ENXIO, lseek(fd, 0, SEEK_DATA));
	EXPECT_EQ(0, FSTAT(fd).st_blocks);
	close(fd);
}

TEST_F(fs, o_direct)
{
	const size_t len = 64 * KiB;
	unsigned char *buf;
	int fd, bfd;

	fd = openat(self->dfd, "f", O_CREAT | O_RDWR | O_DIRECT, 0644);
	if (fd < 0 && errno == EINVAL)
		SKIP(return, "O_DIRECT not supported (open: EINVAL)");
	ASSERT_LE(0, fd) TH_LOG("open O_DIRECT: %s", strerror(errno));
	ASSERT_EQ(0, posix_memalign((void **)&buf, 4096, len));
	fill(buf, 0, len, 1);
	ASSERT_EQ((ssize_t)len, pwrite(fd, buf, len, 0)) TH_LOG("pwrite: %s", strerror(errno));
	memset(buf, 0, len);
	ASSERT_EQ((ssize_t)len, pread(fd, buf, len, 0)) TH_LOG("pread: %s", strerror(errno));
	for (size_t i = 0; i < len; i++) {
		ASSERT_EQ(pat((long)i, 1), buf[i]) TH_LOG("O_DIRECT byte %zu", i);
	}
	/* Buffered and direct I/O see each other's writes. */
	bfd = OPEN("f", O_RDWR);
	ASSERT_DATA(bfd, 0, len, 1);
	WRITE_PAT(bfd, 4096, 4096, 2);
	ASSERT_EQ(4096, pread(fd, buf, 4096, 4096)) TH_LOG("pread: %s", strerror(errno));
	for (size_t i = 0; i < 4096; i++) {
		ASSERT_EQ(pat(4096 + (long)i, 2), buf[i]) TH_LOG("O_DIRECT byte %zu", 4096 + i);
	}
	close(bfd);
	close(fd);
	free(buf);
}

/* ---- the namespace ------------------------------------------------------------ */

TEST_F(fs, rename)
{
	ino_t ino;
	int fd;

	ASSERT_EQ(0, file_with(self, "a", "A"));
	ino = ino_of(self, "a");
	OK(renameat(self->dfd, "a", self->dfd, "b"));
	FAILS(ENOENT, faccessat(self->dfd, "a", F_OK, 0));
	EXPECT_STREQ("A", content_of(self, "b"));
	EXPECT_EQ(ino, ino_of(self, "b"));
	/* Over an existing file: it is replaced, an open descriptor keeps it alive. */
	ASSERT_EQ(0, file_with(self, "c", "C"));
	fd = OPEN("c", O_RDONLY);
	OK(renameat(self->dfd, "b", self->dfd, "c"));
	EXPECT_STREQ("A", content_of(self, "c"));
	EXPECT_EQ(0, FSTAT(fd).st_nlink);
	close(fd);
	/* Onto itself, or a hard link of itself: nothing happens. */
	OK(renameat(self->dfd, "c", self->dfd, "c"));
	OK(linkat(self->dfd, "c", self->dfd, "c2", 0));
	OK(renameat(self->dfd, "c", self->dfd, "c2"));
	EXPECT_STREQ("A", content_of(self, "c"));
	EXPECT_EQ(2, nlink_of(self, "c"));
	/* Between directories. */
	OK(mkdirat(self->dfd, "d1", 0755));
	OK(mkdirat(self->dfd, "d2", 0755));
	OK(renameat(self->dfd, "c", self->dfd, "d1/x"));
	OK(renameat(self->dfd, "d1/x", self->dfd, "d2/y"));
	EXPECT_STREQ("A", content_of(self, "d2/y"));
	FAILS(ENOENT, renameat(self->dfd, "missing", self->dfd, "z"));
	FAILS(ENOENT, renameat(self->dfd, "d2/y", self->dfd, "nodir/y"));
}

TEST_F(fs, rename_directories)
{
	struct stat st;
	ino_t d2;

	OK(mkdirat(self->dfd, "d1", 0755));
	OK(mkdirat(self->dfd, "d2", 0755));
	OK(mkdirat(self->dfd, "d1/sub", 0755));
	OK(mkdirat(self->dfd, "d1/sub/inner", 0755));
	ASSERT_EQ(0, file_with(self, "d1/sub/f", "F"));
	EXPECT_EQ(3, nlink_of(self, "d1"));
	/* Moving a directory moves its ".." link. */
	OK(renameat(self->dfd, "d1/sub", self->dfd, "d2/sub"));
	EXPECT_EQ(2, nlink_of(self, "d1"));
	EXPECT_EQ(3, nlink_of(self, "d2"));
	d2 = ino_of(self, "d2");
	OK(fstatat(self->dfd, "d2/sub/..", &st, 0));
	EXPECT_EQ(d2, st.st_ino);
	EXPECT_STREQ("F", content_of(self, "d2/sub/f"));
	/* Not into itself. */
	FAILS(EINVAL, renameat(self->dfd, "d2", self->dfd, "d2/sub/inner/d2"));
	/* Over a non-empty directory: ENOTEMPTY (or EEXIST). */
	OK(mkdirat(self->dfd, "d1/full", 0755));
	ASSERT_EQ(0, file_with(self, "d1/full/f", "x"));
	FAILS2(ENOTEMPTY, EEXIST, renameat(self->dfd, "d2/sub", self->dfd, "d1/full"));
	/* Over an empty one: replaced. */
	OK(mkdirat(self->dfd, "d1/empty", 0755));
	EXPECT_EQ(4, nlink_of(self, "d1"));
	OK(renameat(self->dfd, "d2/sub", self->dfd, "d1/empty"));
	EXPECT_EQ(4, nlink_of(self, "d1"));	/* one subdirectory replaced another */
	EXPECT_EQ(2, nlink_of(self, "d2"));
	EXPECT_STREQ("F", content_of(self, "d1/empty/f"));
	/* Kinds must match. */
	ASSERT_EQ(0, file_with(self, "file", "x"));
	FAILS(EISDIR, renameat(self->dfd, "file", self->dfd, "d2"));
	FAILS(ENOTDIR, renameat(self->dfd, "d2", self->dfd, "file"));
	FAILS2(EINVAL, EBUSY, renameat(self->dfd, "d2", self->dfd, "."));
}

TEST_F(fs, renameat2_noreplace)
{
	int r;

	ASSERT_EQ(0, file_with(self, "a", "A"));
	ASSERT_EQ(0, file_with(self, "b", "B"));
	r = renameat2_(self->dfd, "a", self->dfd, "b", RENAME_NOREPLACE);
	ASSERT_EQ(-1, r);
	ASSERT_EQ(EEXIST, errno) TH_LOG("RENAME_NOREPLACE onto a file: %s", strerror(errno));
	EXPECT_STREQ("A", content_of(self, "a"));
	EXPECT_STREQ("B", content_of(self, "b"));
	OK(renameat2_(self->dfd, "a", self->dfd, "c", RENAME_NOREPLACE));
	EXPECT_STREQ("A", content_of(self, "c"));
	FAILS(ENOENT, faccessat(self->dfd, "a", F_OK, 0));
	FAILS(EINVAL, renameat2_(self->dfd, "c", self->dfd, "b",
				 RENAME_NOREPLACE | RENAME_EXCHANGE));
}

TEST_F(fs, renameat2_exchange)
{
	ino_t a, b, p1;
	struct stat st;

	ASSERT_EQ(0, file_with(self, "a", "A"));
	ASSERT_EQ(0, file_with(self, "b", "B"));
	a = ino_of(self, "a");
	b = ino_of(self, "b");
	OK(renameat2_(self->dfd, "a", self->dfd, "b", RENAME_EXCHANGE));
	EXPECT_STREQ("B", content_of(self, "a"));
	EXPECT_STREQ("A", content_of(self, "b"));
	EXPECT_EQ(b, ino_of(self, "a"));
	EXPECT_EQ(a, ino_of(self, "b"));
	FAILS(ENOENT, renameat2_(self->dfd, "a", self->dfd, "missing", RENAME_EXCHANGE));
	/* A file and a directory in different parents: the ".." links move. */
	OK(mkdirat(self->dfd, "p1", 0755));
	OK(mkdirat(self->dfd, "p2", 0755));
	OK(mkdirat(self->dfd, "p2/dir", 0755));
	ASSERT_EQ(0, file_with(self, "p1/file", "F"));
	OK(renameat2_(self->dfd, "p1/file", self->dfd, "p2/dir", RENAME_EXCHANGE));
	EXPECT_STREQ("F", content_of(self, "p2/dir"));
	OK(fstatat(self->dfd, "p1/file", &st, 0));
	EXPECT_TRUE(S_ISDIR(st.st_mode));
	EXPECT_EQ(3, nlink_of(self, "p1"));
	EXPECT_EQ(2, nlink_of(self, "p2"));
	p1 = ino_of(self, "p1");
	OK(fstatat(self->dfd, "p1/file/..", &st, 0));
	EXPECT_EQ(p1, st.st_ino);
}

TEST_F(fs, hard_links)
{
	ino_t ino;
	int fd;

	ASSERT_EQ(0, file_with(self, "a", "one"));
	ino = ino_of(self, "a");
	OK(linkat(self->dfd, "a", self->dfd, "b", 0));
	EXPECT_EQ(2, nlink_of(self, "a"));
	EXPECT_EQ(2, nlink_of(self, "b"));
	EXPECT_EQ(ino, ino_of(self, "b"));
	OK(mkdirat(self->dfd, "d", 0755));
	OK(linkat(self->dfd, "b", self->dfd, "d/c", 0));
	EXPECT_EQ(3, nlink_of(self, "a"));
	/* One inode: a write through one name shows through the others. */
	fd = OPEN("b", O_WRONLY | O_APPEND);
	ASSERT_EQ(3, write(fd, "two", 3));
	close(fd);
	EXPECT_STREQ("onetwo", content_of(self, "d/c"));
	OK(unlinkat(self->dfd, "a", 0));
	EXPECT_EQ(2, nlink_of(self, "b"));
	EXPECT_STREQ("onetwo", content_of(self, "b"));
	FAILS(EEXIST, linkat(self->dfd, "b", self->dfd, "d/c", 0));
	FAILS(EPERM, linkat(self->dfd, "d", self->dfd, "dlink", 0));
	FAILS(ENOENT, linkat(self->dfd, "missing", self->dfd, "x", 0));
	OK(unlinkat(self->dfd, "d/c", 0));
	EXPECT_EQ(1, nlink_of(self, "b"));
}

TEST_F(fs, directories)
{
	struct stat st;

	OK(mkdirat(self->dfd, "d", 0750));
	st = LSTAT("d");
	EXPECT_TRUE(S_ISDIR(st.st_mode));
	EXPECT_EQ(0750, st.st_mode & 07777);
	EXPECT_EQ(2, st.st_nlink);
	FAILS(EEXIST, mkdirat(self->dfd, "d", 0755));
	ASSERT_EQ(0, file_with(self, "f", "x"));
	FAILS(EEXIST, mkdirat(self->dfd, "f", 0755));
	FAILS(ENOTDIR, mkdirat(self->dfd, "f/d", 0755));
	/* Subdirectories count in the parent's link count, files do not. */
	OK(mkdirat(self->dfd, "d/s1", 0755));
	OK(mkdirat(self->dfd, "d/s2", 0755));
	ASSERT_EQ(0, file_with(self, "d/file", "x"));
	EXPECT_EQ(4, nlink_of(self, "d"));
	FAILS2(ENOTEMPTY, EEXIST, unlinkat(self->dfd, "d", AT_REMOVEDIR));
	FAILS(EISDIR, unlinkat(self->dfd, "d", 0));
	FAILS(ENOTDIR, unlinkat(self->dfd, "f", AT_REMOVEDIR));
	FAILS(EINVAL, unlinkat(self->dfd, "d/s1/.", AT_REMOVEDIR));
	OK(unlinkat(self->dfd, "d/s1", AT_REMOVEDIR));
	EXPECT_EQ(3, nlink_of(self, "d"));
	FAILS(ENOENT, unlinkat(self->dfd, "d/s1", AT_REMOVEDIR));
	OK(unlinkat(self->dfd, "d/s2", AT_REMOVEDIR));
	OK(unlinkat(self->dfd, "d/file", 0));
	EXPECT_EQ(2, nlink_of(self, "d"));
	OK(unlinkat(self->dfd, "d", AT_REMOVEDIR));
}

TEST_F(fs, removed_directory_stays_open)
{
	struct dirent *e;
	int fd;
	DIR *d;

	OK(mkdirat(self->dfd, "d", 0755));
	fd = OPEN("d", O_RDONLY | O_DIRECTORY);
	OK(unlinkat(self->dfd, "d", AT_REMOVEDIR));
	EXPECT_EQ(0, FSTAT(fd).st_nlink);
	FAILS(ENOENT, openat(fd, "new", O_CREAT | O_WRONLY, 0644));
	FAILS(ENOENT, mkdirat(fd, "new", 0755));
	d = fdopendir(fd);
	ASSERT_NE(NULL, d);
	while ((e = readdir(d))) {
		EXPECT_TRUE(!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			TH_LOG("entry %s in a removed directory", e->d_name);
	}
	closedir(d);
}

TEST_F(fs, readdir)
{
	enum { N = 300 };
	static bool seen[N];
	int dots = 0, n = 0;
	struct dirent *e;
	char name[64];
	DIR *d;

	OK(mkdirat(self->dfd, "d", 0755));
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "d/file-with-a-longer-name-%03d", i);
		close(OPEN(name, O_CREAT | O_EXCL | O_WRONLY, 0644));
	}
	OK(mkdirat(self->dfd, "d/sub", 0755));
	OK(symlinkat("x", self->dfd, "d/link"));
	d = opendir(P("d"));
	ASSERT_NE(NULL, d);
	while ((e = readdir(d))) {
		int i;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) {
			dots++;
			EXPECT_TRUE(e->d_type == DT_DIR || e->d_type == DT_UNKNOWN);
		} else if (!strcmp(e->d_name, "sub")) {
			EXPECT_TRUE(e->d_type == DT_DIR || e->d_type == DT_UNKNOWN);
		} else if (!strcmp(e->d_name, "link")) {
			EXPECT_TRUE(e->d_type == DT_LNK || e->d_type == DT_UNKNOWN);
		} else if (sscanf(e->d_name, "file-with-a-longer-name-%d", &i) == 1 &&
			   i >= 0 && i < N) {
			EXPECT_FALSE(seen[i]) TH_LOG("%s listed twice", e->d_name);
			seen[i] = true;
			n++;
			EXPECT_TRUE(e->d_type == DT_REG || e->d_type == DT_UNKNOWN);
			snprintf(name, sizeof(name), "d/%.29s", e->d_name);
			EXPECT_EQ(ino_of(self, name), e->d_ino) TH_LOG("d_ino of %s", e->d_name);
		} else {
			EXPECT_TRUE(false) TH_LOG("unexpected entry %s", e->d_name);
		}
	}
	EXPECT_EQ(2, dots);
	EXPECT_EQ(N, n);
	/* Half of them removed: a rewound listing shows the other half. */
	for (int i = 0; i < N; i += 2) {
		snprintf(name, sizeof(name), "d/file-with-a-longer-name-%03d", i);
		OK(unlinkat(self->dfd, name, 0));
	}
	rewinddir(d);
	n = 0;
	while ((e = readdir(d)))
		n++;
	EXPECT_EQ(N / 2 + 4, n);
	closedir(d);
}

TEST_F(fs, symlinks)
{
	/* ext4 and others take at most a block (less its NUL), PATH_MAX at most. */
	static const int lens[] = { 1, 59, 60, 61, 200, 1000, 4095 };
	char target[4100], buf[4200];
	struct stat st;

	OK(symlinkat("target", self->dfd, "l"));
	st = LSTAT("l");
	EXPECT_TRUE(S_ISLNK(st.st_mode));
	EXPECT_EQ(6, st.st_size);
	EXPECT_EQ(6, readlinkat(self->dfd, "l", buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "target", 6));
	EXPECT_EQ(3, readlinkat(self->dfd, "l", buf, 3));	/* truncated, no error */
	/* Dangling, then followed once the target exists. */
	FAILS(ENOENT, openat(self->dfd, "l", O_RDONLY));
	ASSERT_EQ(0, file_with(self, "target", "T"));
	EXPECT_STREQ("T", content_of(self, "l"));
	FAILS(ELOOP, openat(self->dfd, "l", O_RDONLY | O_NOFOLLOW));
	/* Relative to the link's directory. */
	OK(mkdirat(self->dfd, "d", 0755));
	OK(symlinkat("../target", self->dfd, "d/up"));
	EXPECT_STREQ("T", content_of(self, "d/up"));
	OK(symlinkat("d", self->dfd, "dl"));
	EXPECT_STREQ("T", content_of(self, "dl/up"));
	/* Loops. */
	OK(symlinkat("loop2", self->dfd, "loop1"));
	OK(symlinkat("loop1", self->dfd, "loop2"));
	FAILS(ELOOP, openat(self->dfd, "loop1", O_RDONLY));
	FAILS(EINVAL, readlinkat(self->dfd, "target", buf, sizeof(buf)));
	FAILS(EEXIST, symlinkat("x", self->dfd, "target"));
	/* Targets of every size class (inline in the inode, a block), up to the limit. */
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		char name[32];

		if (lens[i] >= LSTAT(".").st_blksize)
			continue;

		for (int j = 0; j < lens[i]; j++)
			target[j] = (char)('a' + (j * 7 + lens[i]) % 26);
		target[lens[i]] = '\0';
		snprintf(name, sizeof(name), "len%d", lens[i]);
		OK(symlinkat(target, self->dfd, name));
		EXPECT_EQ(lens[i], LSTAT(name).st_size);
		ASSERT_EQ(lens[i], readlinkat(self->dfd, name, buf, sizeof(buf)));
		EXPECT_EQ(0, memcmp(buf, target, (size_t)lens[i])) TH_LOG("target of %s", name);
	}
	memset(target, 'x', 4096);
	target[4096] = '\0';
	FAILS(ENAMETOOLONG, symlinkat(target, self->dfd, "toolong"));
}

TEST_F(fs, special_files)
{
	char c = 0;
	struct stat st;
	int fd;

	OK(mknodat(self->dfd, "fifo", S_IFIFO | 0644, 0));
	st = LSTAT("fifo");
	EXPECT_TRUE(S_ISFIFO(st.st_mode));
	EXPECT_EQ(0644, st.st_mode & 07777);
	OK(mkfifoat(self->dfd, "fifo2", 0600));
	EXPECT_TRUE(S_ISFIFO(LSTAT("fifo2").st_mode));
	/* A fifo on this fs is a pipe. */
	fd = OPEN("fifo", O_RDWR | O_NONBLOCK);
	ASSERT_EQ(1, write(fd, "x", 1));
	ASSERT_EQ(1, read(fd, &c, 1));
	EXPECT_EQ('x', c);
	EXPECT_EQ(0, FSTAT(fd).st_size);
	close(fd);

	OK(mknodat(self->dfd, "null", S_IFCHR | 0666, makedev(1, 3)));
	st = LSTAT("null");
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(makedev(1, 3), st.st_rdev);
	/* It opens the device (/dev/null), unless the mount is nodev (FUSE's are). */
	if (!(STATVFS().f_flag & ST_NODEV)) {
		fd = OPEN("null", O_RDWR);
		EXPECT_EQ(3, write(fd, "abc", 3));
		EXPECT_EQ(0, read(fd, &c, 1));
		close(fd);
	}
	OK(mknodat(self->dfd, "blk", S_IFBLK | 0600, makedev(259, 65537)));
	st = LSTAT("blk");
	EXPECT_TRUE(S_ISBLK(st.st_mode));
	EXPECT_EQ(makedev(259, 65537), st.st_rdev);
	OK(mknodat(self->dfd, "sock", S_IFSOCK | 0644, 0));
	EXPECT_TRUE(S_ISSOCK(LSTAT("sock").st_mode));
	OK(mknodat(self->dfd, "reg", S_IFREG | 0644, 0));
	EXPECT_TRUE(S_ISREG(LSTAT("reg").st_mode));
	FAILS(EEXIST, mknodat(self->dfd, "fifo", S_IFIFO | 0644, 0));
	/* The nodes can be renamed and removed like files. */
	OK(renameat(self->dfd, "null", self->dfd, "null2"));
	EXPECT_EQ(makedev(1, 3), LSTAT("null2").st_rdev);
	OK(unlinkat(self->dfd, "fifo2", 0));
}

/* ---- attributes ---------------------------------------------------------------- */

TEST_F(fs, attributes)
{
	struct timespec ts[2] = { { 1234567890, 123456789 }, { 1000000000, 987654321 } };
	struct stat st, st2;
	int fd = OPEN("f", O_CREAT | O_RDWR, 0644);

	OK(fchmod(fd, 04751));
	EXPECT_EQ(04751, FSTAT(fd).st_mode & 07777);
	OK(fchown(fd, 1000, 1001));
	st = FSTAT(fd);
	EXPECT_EQ(1000, st.st_uid);
	EXPECT_EQ(1001, st.st_gid);
	/* Nanosecond timestamps are kept as given. */
	OK(futimens(fd, ts));
	st = FSTAT(fd);
	EXPECT_EQ(ts[0].tv_sec, st.st_atim.tv_sec);
	EXPECT_EQ(ts[0].tv_nsec, st.st_atim.tv_nsec);
	EXPECT_EQ(ts[1].tv_sec, st.st_mtim.tv_sec);
	EXPECT_EQ(ts[1].tv_nsec, st.st_mtim.tv_nsec);
	/* A write moves mtime and ctime to now. */
	ASSERT_EQ(1, write(fd, "x", 1));
	st2 = FSTAT(fd);
	EXPECT_LT(ts[1].tv_sec + 100, st2.st_mtim.tv_sec);
	EXPECT_LE(st.st_ctim.tv_sec, st2.st_ctim.tv_sec);
	/* A write by root clears set-user-ID. */
	EXPECT_EQ(0, st2.st_mode & S_ISUID);
	/* Times survive a reopen (they were written to the inode, not only cached). */
	OK(futimens(fd, ts));
	close(fd);
	OK(fstatat(self->dfd, "f", &st, 0));
	EXPECT_EQ(ts[1].tv_nsec, st.st_mtim.tv_nsec);
	OK(utimensat(self->dfd, "f", NULL, 0));
	OK(fstatat(self->dfd, "f", &st, 0));
	EXPECT_LT(ts[1].tv_sec + 100, st.st_mtim.tv_sec);
	OK(fchownat(self->dfd, "f", 0, 0, 0));
	OK(fchmodat(self->dfd, "f", 0600, 0));
	OK(fstatat(self->dfd, "f", &st, 0));
	EXPECT_EQ(0600 | S_IFREG, st.st_mode);
	EXPECT_EQ(0, st.st_uid);
}

TEST_F(fs, xattrs)
{
	char big[600], buf[4096];	/* big: fits an xattr block of 1 KiB even */
	const char *f = P("f");
	ssize_t n;

	ASSERT_EQ(0, file_with(self, "f", "x"));
	if (setxattr(f, "user.a", "v1", 2, XATTR_CREATE) != 0) {
		ASSERT_EQ(0, errno) TH_LOG("setxattr user.a: %s", strerror(errno));
	}
	EXPECT_EQ(2, getxattr(f, "user.a", buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "v1", 2));
	EXPECT_EQ(2, getxattr(f, "user.a", NULL, 0));	/* size query */
	FAILS(ERANGE, getxattr(f, "user.a", buf, 1));
	FAILS(EEXIST, setxattr(f, "user.a", "v2", 2, XATTR_CREATE));
	FAILS(ENODATA, setxattr(f, "user.b", "v2", 2, XATTR_REPLACE));
	FAILS(ENODATA, getxattr(f, "user.b", buf, sizeof(buf)));
	OK(setxattr(f, "user.a", "value-2", 7, XATTR_REPLACE));
	EXPECT_EQ(7, getxattr(f, "user.a", buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "value-2", 7));
	/* Empty and large values, other namespaces. */
	OK(setxattr(f, "user.empty", "", 0, 0));
	EXPECT_EQ(0, getxattr(f, "user.empty", buf, sizeof(buf)));
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)pat((long)i, 5);
	OK(setxattr(f, "user.big", big, sizeof(big), 0));
	EXPECT_EQ((ssize_t)sizeof(big), getxattr(f, "user.big", buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, big, sizeof(big)));
	OK(setxattr(f, "trusted.t", "T", 1, 0));
	EXPECT_EQ(1, getxattr(f, "trusted.t", buf, sizeof(buf)));
	/* The list: every name once, NUL-terminated. */
	n = listxattr(f, NULL, 0);
	ASSERT_LT(0, n) TH_LOG("listxattr size: %s", strerror(errno));
	ASSERT_EQ(n, listxattr(f, buf, sizeof(buf)));
	FAILS(ERANGE, listxattr(f, buf, 3));
	{
		const char *want[] = { "user.a", "user.empty", "user.big", "trusted.t" };
		int found[4] = { 0 };

		for (char *p = buf; p < buf + n; p += strlen(p) + 1)
			for (int i = 0; i < 4; i++)
				found[i] += !strcmp(p, want[i]);
		for (int i = 0; i < 4; i++) {
			EXPECT_EQ(1, found[i]) TH_LOG("%s listed %d times", want[i], found[i]);
		}
	}
	OK(removexattr(f, "user.a"));
	FAILS(ENODATA, getxattr(f, "user.a", buf, sizeof(buf)));
	FAILS(ENODATA, removexattr(f, "user.a"));
	EXPECT_EQ((ssize_t)sizeof(big), getxattr(f, "user.big", buf, sizeof(buf)));
	/* On a directory too; user.* is refused on symlinks by the VFS. */
	OK(mkdirat(self->dfd, "d", 0755));
	OK(setxattr(P("d"), "user.d", "D", 1, 0));
	EXPECT_EQ(1, getxattr(P("d"), "user.d", buf, sizeof(buf)));
	OK(symlinkat("f", self->dfd, "l"));
	FAILS(EPERM, lsetxattr(P("l"), "user.l", "L", 1, 0));
	FAILS(ENODATA, lgetxattr(P("l"), "user.l", buf, sizeof(buf)));
	/* Names: too long, or in no namespace. */
	memset(buf, 'n', 300);
	memcpy(buf, "user.", 5);
	buf[300] = '\0';
	FAILS(ERANGE, setxattr(f, buf, "v", 1, 0));
	FAILS(EOPNOTSUPP, setxattr(f, "nonamespace", "v", 1, 0));
	/* Removing the file removes its xattrs with it (teardown checks the removal). */
}

static int usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s DIR [harness options]   (or XV6FS_TEST_DIR=DIR %s ...)\n"
		"Runs file system tests in a new subdirectory of DIR; -h: harness options.\n",
		argv0, argv0);
	return KSFT_FAIL;
}

int main(int argc, char **argv)
{
	test_root = getenv("XV6FS_TEST_DIR");
	if (argc > 1 && argv[1][0] != '-') {
		test_root = argv[1];
		argv[1] = argv[0];
		argv++;
		argc--;
	}
	if (!test_root && (argc == 1 || (strcmp(argv[1], "-l") && strcmp(argv[1], "-h"))))
		return usage(argv[0]);
	umask(0);
	return test_harness_run(argc, argv);
}
