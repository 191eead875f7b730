// SPDX-License-Identifier: GPL-2.0
/*
 * bento_getxattr PATH NAME: prints the value of extended attribute NAME of PATH (the
 * guest's busybox has no getfattr). Exits 1 with the error on failure.
 */
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <sys/xattr.h>

int main(int argc, char **argv)
{
	char buf[4096];
	ssize_t n;

	if (argc != 3) {
		fprintf(stderr, "usage: bento_getxattr PATH NAME\n");
		return 2;
	}
	n = getxattr(argv[1], argv[2], buf, sizeof(buf));
	if (n < 0) {
		printf("%s\n", strerror(errno));
		return 1;
	}
	fwrite(buf, 1, n, stdout);
	putchar('\n');
	return 0;
}
