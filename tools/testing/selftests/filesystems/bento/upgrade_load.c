// SPDX-License-Identifier: GPL-2.0
/*
 * upgrade_load DIR: a verifying workload for the live-upgrade test (bento_upgrade.sh).
 *
 * Until DIR/../STOP-file (argv[2]) exists, it loops over small operations on DIR and
 * times each one: pwrite of a 4 KiB block with a pattern naming the block and its
 * generation, pread back and compare, fstat, stat of DIR, create + write + unlink of a
 * small file, and every 32 rounds an fsync. At the end it re-reads every block and
 * compares it with what it last wrote. Any failed call or wrong byte is a failure.
 *
 * Prints one line: "ops N failures F median_ns M p99_ns P", and exits 1 on any failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096
#define NBLOCKS 1024 /* a 4 MiB file */
#define MAX_SAMPLES (4 << 20)

static uint32_t gen[NBLOCKS];
static uint32_t *lat;
static size_t nlat;
static unsigned long failures;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static void record(uint64_t start)
{
	uint64_t d = now_ns() - start;

	if (nlat < MAX_SAMPLES)
		lat[nlat++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

static void fail(const char *what, long block)
{
	failures++;
	if (failures <= 10)
		fprintf(stderr, "upgrade_load: %s failed (block %ld): %s\n", what, block,
			strerror(errno));
}

static void fill(unsigned char *buf, long block, uint32_t g)
{
	for (int i = 0; i < BLOCK; i += 8) {
		uint32_t w[2] = { (uint32_t)block, g ^ (uint32_t)i };

		memcpy(buf + i, w, 8);
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	unsigned char buf[BLOCK], want[BLOCK];
	char path[4096], small[4096];
	unsigned long rounds = 0, ops = 0;
	struct stat st;
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: upgrade_load DIR STOPFILE\n");
		return 2;
	}
	lat = malloc(sizeof(*lat) * MAX_SAMPLES);
	if (!lat)
		return 2;
	snprintf(path, sizeof(path), "%s/load.dat", argv[1]);
	snprintf(small, sizeof(small), "%s/small", argv[1]);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	srand(getpid());
	while (access(argv[2], F_OK) != 0) {
		long b = rand() % NBLOCKS;
		uint64_t t;
		int sfd;

		fill(want, b, ++gen[b]);
		t = now_ns();
		if (pwrite(fd, want, BLOCK, (off_t)b * BLOCK) != BLOCK)
			fail("pwrite", b);
		record(t);
		t = now_ns();
		if (pread(fd, buf, BLOCK, (off_t)b * BLOCK) != BLOCK)
			fail("pread", b);
		else if (memcmp(buf, want, BLOCK))
			fail("compare", b);
		record(t);
		t = now_ns();
		if (fstat(fd, &st))
			fail("fstat", b);
		record(t);
		t = now_ns();
		if (stat(argv[1], &st))
			fail("stat", b);
		record(t);
		t = now_ns();
		sfd = open(small, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (sfd < 0 || write(sfd, want, 100) != 100 || close(sfd) || unlink(small))
			fail("create/write/unlink", b);
		record(t);
		ops += 5;
		if (++rounds % 32 == 0) {
			t = now_ns();
			if (fsync(fd))
				fail("fsync", b);
			record(t);
			ops++;
		}
	}
	for (long b = 0; b < NBLOCKS; b++) {
		if (!gen[b])
			continue;
		fill(want, b, gen[b]);
		if (pread(fd, buf, BLOCK, (off_t)b * BLOCK) != BLOCK)
			fail("final pread", b);
		else if (memcmp(buf, want, BLOCK))
			fail("final compare", b);
	}
	if (close(fd) || unlink(path))
		fail("close/unlink", -1);
	qsort(lat, nlat, sizeof(*lat), cmp_u32);
	printf("ops %lu failures %lu median_ns %u p99_ns %u\n", ops, failures,
	       nlat ? lat[nlat / 2] : 0, nlat ? lat[nlat * 99 / 100] : 0);
	return failures ? 1 : 0;
}
