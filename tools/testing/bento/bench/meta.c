// SPDX-License-Identifier: GPL-2.0
/*
 * bench_meta DIR FILES THREADS: the metadata benchmark of make bench. THREADS threads
 * each create FILES/THREADS empty files in their own directory under DIR, then stat
 * them all STAT_PASSES times (a single pass of cached stats is over in tens of
 * milliseconds, too short to time in a guest), then unlink them all; a barrier
 * separates the phases. Prints one JSON object: the rate of each phase in operations
 * per second (wall clock, all threads).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STAT_PASSES 10

static const char *dir;
static long per_thread;
static pthread_barrier_t barrier;
static double phase_start[3], phase_end[3];
static volatile int failed;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* All threads meet; one records the time. */
static void sync_point(double *t)
{
	if (pthread_barrier_wait(&barrier) == PTHREAD_BARRIER_SERIAL_THREAD)
		*t = now();
	pthread_barrier_wait(&barrier);
}

static void *worker(void *arg)
{
	long id = (long)arg;
	char path[4096];
	struct stat st;

	snprintf(path, sizeof(path), "%s/t%ld", dir, id);
	if (mkdir(path, 0755))
		failed = 1;
	for (int phase = 0; phase < 3; phase++) {
		long ops = phase == 1 ? per_thread * STAT_PASSES : per_thread;

		sync_point(&phase_start[phase]);
		for (long n = 0; n < ops && !failed; n++) {
			long i = n % per_thread;

			snprintf(path, sizeof(path), "%s/t%ld/f%ld", dir, id, i);
			if (phase == 0) {
				int fd = open(path, O_CREAT | O_WRONLY | O_EXCL, 0644);

				if (fd < 0 || close(fd))
					failed = 1;
			} else if (phase == 1) {
				if (stat(path, &st))
					failed = 1;
			} else if (unlink(path)) {
				failed = 1;
			}
		}
		sync_point(&phase_end[phase]);
	}
	snprintf(path, sizeof(path), "%s/t%ld", dir, id);
	rmdir(path);
	return NULL;
}

int main(int argc, char **argv)
{
	static const char *names[3] = { "create", "stat", "unlink" };
	long files, threads;
	pthread_t *tids;

	if (argc != 4) {
		fprintf(stderr, "usage: bench_meta DIR FILES THREADS\n");
		return 2;
	}
	dir = argv[1];
	files = atol(argv[2]);
	threads = atol(argv[3]);
	if (files <= 0 || threads <= 0 || threads > 64)
		return 2;
	per_thread = files / threads;
	pthread_barrier_init(&barrier, NULL, threads);
	tids = calloc(threads, sizeof(*tids));
	for (long t = 0; t < threads; t++)
		pthread_create(&tids[t], NULL, worker, (void *)t);
	for (long t = 0; t < threads; t++)
		pthread_join(tids[t], NULL);
	if (failed) {
		fprintf(stderr, "bench_meta: an operation failed\n");
		return 1;
	}
	printf("{");
	for (int p = 0; p < 3; p++)
		printf("%s\"%s\": %.1f", p ? ", " : "", names[p],
		       per_thread * threads * (p == 1 ? STAT_PASSES : 1) /
			       (phase_end[p] - phase_start[p]));
	printf("}\n");
	return 0;
}
