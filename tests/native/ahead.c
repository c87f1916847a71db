/* lmm native test: fresh anonymous memory written page after page, the
 * pattern lmm's fault-ahead serves with fewer stops (crates/native/src/
 * ahead.rs). Each phase prints the minor faults it took (getrusage, whose
 * counts are lmm's), which must be Linux's: one per page written first, a
 * read fault (the zero page) per page read first and one more when it is
 * written after a system call, none for a page already present. A
 * checksum of every page shows that what the program wrote, and only
 * that, is there. Last, getrusage's thread, children, bad-`who` and
 * bad-buffer cases. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <errno.h>

#define PAGE 4096L

static long minflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

static unsigned long sum(volatile unsigned char *p, long pages)
{
	unsigned long s = 0;
	long i, j;

	for (i = 0; i < pages; i++)
		for (j = 0; j < PAGE; j += 512)
			s = s * 31 + p[i * PAGE + j];
	return s;
}

int main(void)
{
	long pages = 256, i, f;
	volatile unsigned char *a = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
					 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	volatile unsigned char *b = mmap(NULL, 64 * PAGE, PROT_READ | PROT_WRITE,
					 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (a == MAP_FAILED || b == MAP_FAILED)
		return 1;
	/* 1: every page written in order, twice. */
	f = minflt();
	for (i = 0; i < pages; i++)
		a[i * PAGE + (i % 7) * 100] = (unsigned char)(i * 3 + 1);
	printf("written in order: %ld faults\n", minflt() - f);
	f = minflt();
	for (i = 0; i < pages; i++)
		a[i * PAGE + 4000] = (unsigned char)i;
	printf("written again: %ld faults\n", minflt() - f);
	/* 2: two pages written, then the next ones only read (zero page), one
	 * read then written after a system call, some left untouched. */
	f = minflt();
	b[0] = 1;
	b[PAGE] = 2;
	for (i = 2; i < 6; i++)
		if (b[i * PAGE + 8] != 0)
			printf("page %ld of b is not zero\n", i);
	syscall(SYS_getppid);
	printf("two written, four read: %ld faults\n", minflt() - f);
	f = minflt();
	b[3 * PAGE + 9] = 3;
	printf("a read page written: %ld faults\n", minflt() - f);
	f = minflt();
	for (i = 20; i < 40; i++)
		b[i * PAGE] = (unsigned char)i;
	printf("written from the middle: %ld faults\n", minflt() - f);
	/* 3: unmapped while pages handed out ahead are untouched; a fresh
	 * mapping at the same place reads zeroes. */
	munmap((void *)b, 64 * PAGE);
	b = mmap((void *)b, 64 * PAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	f = minflt();
	printf("mapped again, sum %lu, ", sum(b, 64));
	printf("%ld faults\n", minflt() - f);
	printf("sum of a %lu\n", sum(a, pages));
	/* 4: a write(2) from a page handed out ahead and not yet touched by
	 * the program itself. */
	memset((void *)(a + 0), 'x', 10);
	for (i = 0; i < 16; i++)
		b[i * PAGE] = 'y';
	b[16 * PAGE] = 'z';
	if (write(1, (const void *)(b + 16 * PAGE), 1) != 1)
		return 1;
	printf(" written from b\n");
	/* 5: getrusage's other cases, whose faults and peak RSS are lmm's:
	 * the thread's (one thread: the process's), the waited-for
	 * children's, a bad `who`, a bad buffer. */
	{
		struct rusage self, thread, kids;
		pid_t child;
		int st;

		getrusage(RUSAGE_SELF, &self);
		getrusage(RUSAGE_THREAD, &thread);
		printf("thread's faults are the process's: %d\n",
		       thread.ru_minflt == self.ru_minflt);
		printf("peak RSS holds a's 1 MiB: %d\n", self.ru_maxrss >= 1024);
		child = fork();
		if (child == 0) {
			for (i = 0; i < 64; i++)
				a[i * PAGE + 1] = 1;
			_exit(0);
		}
		waitpid(child, &st, 0);
		getrusage(RUSAGE_CHILDREN, &kids);
		printf("children's faults hold its 64 copies: %d\n",
		       kids.ru_minflt >= 64 && kids.ru_minflt < 64 + 200);
		st = getrusage(7, &kids);
		printf("bad who: %d %d\n", st, errno == EINVAL);
		st = syscall(SYS_getrusage, RUSAGE_SELF, (void *)8);
		printf("bad buffer: %d %d\n", st, errno == EFAULT);
	}
	return 0;
}
