/* Helpers of the lmm native tests that put a system call's buffers on
 * pages the stub does not have at the call. Included by events.c,
 * timers.c, files.c and fork.c. */
#ifndef LMM_NATIVE_PAGES_H
#define LMM_NATIVE_PAGES_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* A fresh mapping of n bytes, never touched. */
static void *fresh(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

/* Makes every private page copy-on-write (a fork whose child exits). */
static void cow(void)
{
	pid_t p = fork();

	if (p == 0)
		_exit(0);
	waitpid(p, NULL, 0);
}

/* Ends the program with the call's error if it failed. */
static void check(const char *what, long r)
{
	if (r < 0) {
		printf("%s: %s\n", what, strerror(errno));
		exit(1);
	}
}

#endif
