/* lmm native test: the memory system calls. Maps, writes, unmaps part,
 * grows with mremap, write-protects, drops with MADV_DONTNEED, moves the
 * break, maps and unmaps one page again and again; prints what it reads
 * back. With argument "ro" it then writes to
 * the write-protected page, which Linux answers with SIGSEGV. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PG 4096UL

static unsigned long sum(const unsigned char *p, unsigned long len)
{
	unsigned long s = 0, i;

	for (i = 0; i < len; i += PG)
		s += p[i];
	return s;
}

int main(int argc, char **argv)
{
	unsigned long i, n = 512;
	unsigned char *p, *q, *b;

	p = mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 1;
	for (i = 0; i < n; i++)
		p[i * PG] = (unsigned char)(i + 1);
	printf("mmap sum=%lu\n", sum(p, n * PG));
	if (munmap(p + 256 * PG, 256 * PG))
		return 2;
	q = mremap(p, 256 * PG, 1024 * PG, MREMAP_MAYMOVE);
	if (q == MAP_FAILED)
		return 3;
	printf("mremap sum=%lu\n", sum(q, 1024 * PG));
	for (i = 256; i < 1024; i++)
		q[i * PG] = 7;
	printf("grown sum=%lu\n", sum(q, 1024 * PG));
	if (madvise(q, 128 * PG, MADV_DONTNEED))
		return 4;
	printf("dontneed sum=%lu\n", sum(q, 1024 * PG));
	if (mprotect(q, 1024 * PG, PROT_READ))
		return 5;
	printf("readonly sum=%lu\n", sum(q, 1024 * PG));
	/* Maps, touches and unmaps the same page 40 times (as python's
	 * marshal does): each store is a new fault at the same address and
	 * instruction, not one that keeps coming back. */
	for (i = 0, n = 0; i < 40; i++) {
		unsigned char *r = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (r == MAP_FAILED)
			return 7;
		r[0] = (unsigned char)i;
		n += r[0];
		munmap(r, 4 * PG);
	}
	printf("remap loop sum=%lu\n", n);
	b = sbrk(0);
	if (sbrk(64 * PG) == (void *)-1)
		return 6;
	memset(b, 3, 64 * PG);
	printf("brk sum=%lu\n", sum(b, 64 * PG));
	fflush(stdout);
	if (argc > 1 && !strcmp(argv[1], "ro"))
		q[5 * PG] = 1;
	printf("done\n");
	return 0;
}
