/* Announced user accesses for the lmm recording programs.
 *
 * strace shows system calls, not the program's loads and stores, yet those
 * decide what a replay must reproduce (demand paging, copy-on-write, stack
 * growth, anon_vma and so VMA merges).  Every access a replay must make is
 * done here, one byte per page over [p, p + len), and announced right after
 * it on fd 1 as one line
 *
 *     touch ADDR LEN r|w: minflt N majflt M
 *
 * with the faults getrusage(RUSAGE_SELF) counted for exactly that loop.  The
 * write(2) of the line is in an strace log taken with %desc, so the log
 * itself says where (after which line, in which process) each access
 * happened and what it cost on the real kernel.  An access expected to kill
 * the process is announced before it, as "touch ADDR LEN w: SIGSEGV".
 */
#ifndef LMM_RECORD_TOUCH_H
#define LMM_RECORD_TOUCH_H

#include "common.h"
#include <sys/resource.h>

static void faults_now(long *minflt, long *majflt)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	*minflt = ru.ru_minflt;
	*majflt = ru.ru_majflt;
}

/* One byte per page of [p, p + len): a store of a tag, or a load. */
static __attribute__((noinline)) void touch(void *p, size_t len, int write)
{
	long mn0, mj0, mn1, mj1;
	volatile unsigned char *c = p;
	faults_now(&mn0, &mj0);
	for (size_t off = 0; off < len; off += PAGE) {
		if (write)
			c[off] = (unsigned char)(0xa0 + off / PAGE);
		else
			(void)c[off];
	}
	faults_now(&mn1, &mj1);
	say("touch %p %zu %c: minflt %ld majflt %ld\n", p, len, write ? 'w' : 'r',
	    mn1 - mn0, mj1 - mj0);
}

/* The raw bytes of /proc/self/FILE (smaps, stat, ...) under a header. */
static void show_proc(const char *file)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/%s", file);
	say("=== /proc/self/%s ===\n", file);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return;
	for (;;) {
		ssize_t n = read(fd, out_buf, sizeof out_buf);
		if (n <= 0)
			break;
		out_raw(out_buf, (size_t)n);
	}
	close(fd);
}

#endif
