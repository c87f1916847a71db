/* mmap_basic: anonymous mmap placement, MAP_FIXED, MAP_FIXED_NOREPLACE,
 * munmap splits, mprotect split and re-merge, madvise, mincore, fork.
 * Prints /proc/self/maps at each checkpoint (see common.h).
 */
#include "common.h"
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#define HINT   ((void *)0x10000000UL)
#define FIXED  ((void *)0x20000000UL)
#define NOREP  ((void *)0x30000000UL)
#define LOW32  MAP_32BIT

int main(void)
{
	const int RW = PROT_READ | PROT_WRITE;
	const int ANON = MAP_PRIVATE | MAP_ANONYMOUS;

	checkpoint("start");

	/* Top-down placement of various sizes. */
	char *a = show_ptr("mmap(NULL, 4096, RW, PRIVATE|ANON)", mmap(NULL, PAGE, RW, ANON, -1, 0));
	char *b = show_ptr("mmap(NULL, 3 pages, RW, PRIVATE|ANON)", mmap(NULL, 3 * PAGE, RW, ANON, -1, 0));
	char *c = show_ptr("mmap(NULL, 2 MiB, RW, PRIVATE|ANON)", mmap(NULL, 2UL << 20, RW, ANON, -1, 0));
	char *d = show_ptr("mmap(NULL, 4 MiB, RW, PRIVATE|ANON)", mmap(NULL, 4UL << 20, RW, ANON, -1, 0));
	char *e = show_ptr("mmap(NULL, 5 pages, PROT_NONE, PRIVATE|ANON)", mmap(NULL, 5 * PAGE, PROT_NONE, ANON, -1, 0));
	char *f = show_ptr("mmap(NULL, 1 MiB+1, READ, PRIVATE|ANON|NORESERVE)",
			   mmap(NULL, (1UL << 20) + 1, PROT_READ, ANON | MAP_NORESERVE, -1, 0));
	show_int("mmap(NULL, 0, ...) (EINVAL)", (long)mmap(NULL, 0, RW, ANON, -1, 0));
	fill(a, PAGE, 1);
	fill(b, 3 * PAGE, 2);
	checkpoint("after top-down mmaps");

	/* A hint that is free is honoured; an unaligned hint is rounded down. */
	char *h = show_ptr("mmap(0x10000000, 2 pages, RW, PRIVATE|ANON)", mmap(HINT, 2 * PAGE, RW, ANON, -1, 0));
	char *h2 = show_ptr("mmap(0x10010123, 1 page, RW, PRIVATE|ANON)",
			    mmap((void *)0x10010123UL, PAGE, RW, ANON, -1, 0));
	/* A hint that collides falls back to the top-down search. */
	char *h3 = show_ptr("mmap(0x10000000 again, 1 page, RW, PRIVATE|ANON)", mmap(HINT, PAGE, RW, ANON, -1, 0));
	checkpoint("after hints");

	/* MAP_FIXED of 16 pages, then MAP_FIXED over its middle with PROT_READ. */
	char *x = show_ptr("mmap(0x20000000, 16 pages, RW, PRIVATE|ANON|FIXED)",
			   mmap(FIXED, 16 * PAGE, RW, ANON | MAP_FIXED, -1, 0));
	fill(x, 16 * PAGE, 10);
	show_ptr("mmap(0x20008000, 2 pages, READ, PRIVATE|ANON|FIXED)",
		 mmap((char *)FIXED + 8 * PAGE, 2 * PAGE, PROT_READ, ANON | MAP_FIXED, -1, 0));
	show_ptr("mmap(0x20000800, 1 page, FIXED) unaligned (EINVAL)",
		 mmap((char *)FIXED + 0x800, PAGE, RW, ANON | MAP_FIXED, -1, 0));
	checkpoint("after MAP_FIXED");

	/* MAP_FIXED_NOREPLACE: collisions fail with EEXIST. */
	show_ptr("mmap(0x20001000, 1 page, NOREPLACE) inside (EEXIST)",
		 mmap((char *)FIXED + PAGE, PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0));
	show_ptr("mmap(0x1ffff000, 2 pages, NOREPLACE) overlapping start (EEXIST)",
		 mmap((char *)FIXED - PAGE, 2 * PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0));
	show_ptr("mmap(0x2000f000, 2 pages, NOREPLACE) overlapping end (EEXIST)",
		 mmap((char *)FIXED + 15 * PAGE, 2 * PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0));
	char *n = show_ptr("mmap(0x30000000, 8 pages, NOREPLACE) free",
			   mmap(NOREP, 8 * PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0));
	show_ptr("mmap(0x30008000, 8 pages, NOREPLACE) adjacent (merges)",
		 mmap((char *)NOREP + 8 * PAGE, 8 * PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0));
	checkpoint("after MAP_FIXED_NOREPLACE");

	/* munmap of a middle part splits a VMA. */
	show_int("munmap(0x20004000, 2 pages)", munmap((char *)FIXED + 4 * PAGE, 2 * PAGE));
	show_int("munmap(0x20000800, 1 page) unaligned (EINVAL)", munmap((char *)FIXED + 0x800, PAGE));
	show_int("munmap(0x50000000, 1 page) nothing mapped", munmap((void *)0x50000000UL, PAGE));
	show_int("munmap(e+1 page, 1 page) middle of PROT_NONE", munmap(e + PAGE, PAGE));
	check("fixed head", x, 4 * PAGE, 10);
	checkpoint("after munmap splits");

	/* mprotect split into three, then restore: the pieces merge again. */
	show_int("mprotect(0x30004000, 2 pages, READ)", mprotect(n + 4 * PAGE, 2 * PAGE, PROT_READ));
	checkpoint("after mprotect split");
	show_int("mprotect(0x30004000, 2 pages, RW)", mprotect(n + 4 * PAGE, 2 * PAGE, RW));
	checkpoint("after mprotect re-merge");
	show_int("mprotect(0x30000000, 1 page, READ) head", mprotect(n, PAGE, PROT_READ));
	show_int("mprotect(0x3000f000, 1 page, READ|EXEC) tail", mprotect(n + 15 * PAGE, PAGE, PROT_READ | PROT_EXEC));
	show_int("mprotect(0x20003000, 4 pages) over hole (ENOMEM)", mprotect((char *)FIXED + 3 * PAGE, 4 * PAGE, PROT_READ));
	show_int("mprotect(0x30000001) unaligned (EINVAL)", mprotect(n + 1, PAGE, PROT_READ));
	checkpoint("after mprotect head/tail");

	/* madvise. */
	fill(n + PAGE, 4 * PAGE, 40);
	show_int("madvise(0x30001000, 2 pages, DONTNEED)", madvise(n + PAGE, 2 * PAGE, MADV_DONTNEED));
	say("after DONTNEED: first byte %d, untouched page byte %d\n", n[PAGE], n[3 * PAGE]);
	show_int("madvise(0x30008000, 2 pages, DONTFORK)", madvise(n + 8 * PAGE, 2 * PAGE, MADV_DONTFORK));
	show_int("madvise(0x30000000, 1 page, 12345) (EINVAL)", madvise(n, PAGE, 12345));
	show_int("madvise(c, 2 MiB, HUGEPAGE)", madvise(c, 2UL << 20, MADV_HUGEPAGE));
	show_int("madvise(d, 4 MiB, NOHUGEPAGE)", madvise(d, 4UL << 20, MADV_NOHUGEPAGE));
	show_int("madvise(0x50000000, 1 page, WILLNEED) unmapped (ENOMEM)", madvise((void *)0x50000000UL, PAGE, MADV_WILLNEED));
	checkpoint("after madvise");

	/* mincore: which pages of n[0..16) are resident. */
	unsigned char vec[16];
	show_int("mincore(0x30000000, 16 pages)", mincore(n, 16 * PAGE, vec));
	say("mincore vec:");
	for (int i = 0; i < 16; i++)
		say(" %d", vec[i] & 1);
	say("\n");
	show_int("mincore(0x50000000, 1 page) unmapped (ENOMEM)", mincore((void *)0x50000000UL, PAGE, vec));

	/* Special flags the parser must know. */
	char *s = show_ptr("mmap(NULL, 16 pages, RW, PRIVATE|ANON|STACK|GROWSDOWN)",
			   mmap(NULL, 16 * PAGE, RW, ANON | MAP_STACK | MAP_GROWSDOWN, -1, 0));
	char *p = show_ptr("mmap(NULL, 4 pages, RW, PRIVATE|ANON|POPULATE)", mmap(NULL, 4 * PAGE, RW, ANON | MAP_POPULATE, -1, 0));
	char *l = show_ptr("mmap(NULL, 1 page, RW, PRIVATE|ANON|LOCKED)", mmap(NULL, PAGE, RW, ANON | MAP_LOCKED, -1, 0));
	char *lo = show_ptr("mmap(NULL, 1 page, RW, PRIVATE|ANON|32BIT)", mmap(NULL, PAGE, RW, ANON | LOW32, -1, 0));
	char *sh = show_ptr("mmap(NULL, 2 pages, RW, SHARED|ANON)", mmap(NULL, 2 * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
	show_int("mincore(p, 4 pages)", mincore(p, 4 * PAGE, vec));
	say("mincore populate vec: %d %d %d %d\n", vec[0] & 1, vec[1] & 1, vec[2] & 1, vec[3] & 1);
	checkpoint("after special flags");

	/* fork: the child writes shared memory, unmaps, exits 3; a second child
	 * touches PROT_NONE memory and dies of SIGSEGV. */
	sh[0] = 'P';
	pid_t pid = fork();
	if (pid == 0) {
		sh[0] = 'C';
		munmap(x, PAGE);
		mprotect(a, PAGE, PROT_READ);
		checkpoint("child after munmap/mprotect");
		_exit(3);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	say("child 1 exited: %d, shared byte now %c\n", WEXITSTATUS(st), sh[0]);
	pid = fork();
	if (pid == 0) {
		*(volatile char *)e = 1; /* PROT_NONE: SIGSEGV */
		_exit(0);
	}
	waitpid(pid, &st, 0);
	say("child 2 signalled: %d (%s)\n", WIFSIGNALED(st) ? WTERMSIG(st) : 0, WIFSIGNALED(st) ? sigabbrev_np(WTERMSIG(st)) : "-");
	checkpoint("parent after children");

	/* Tear down. */
	munmap(a, PAGE);
	munmap(b, 3 * PAGE);
	munmap(c, 2UL << 20);
	munmap(d, 4UL << 20);
	munmap(e, 5 * PAGE);
	munmap(f, (1UL << 20) + 1);
	munmap(h, 2 * PAGE);
	munmap(h2, PAGE);
	munmap(h3, PAGE);
	munmap(x, 16 * PAGE);
	munmap(n, 16 * PAGE);
	munmap(s, 16 * PAGE);
	munmap(p, 4 * PAGE);
	munmap(l, PAGE);
	munmap(lo, PAGE);
	munmap(sh, 2 * PAGE);
	checkpoint("end");
	return 0;
}
