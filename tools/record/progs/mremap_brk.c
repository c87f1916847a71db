/* mremap_brk: brk growth and shrink (sbrk and the raw system call), and
 * mremap shrink, grow in place, MAYMOVE, FIXED, DONTUNMAP, "expand merge" and
 * the error cases.  Prints /proc/self/maps at each checkpoint (see common.h).
 *
 * glibc 2.36's mremap() wrapper reads a fifth argument whenever
 * MREMAP_FIXED or MREMAP_DONTUNMAP is set, so it is always passed.
 */
#include "common.h"

#define A ((char *)0x40000000UL)
#define B ((char *)0x41000000UL)
#define D ((char *)0x42000000UL)
#define M ((char *)0x43000000UL)

static long raw_brk(void *p)
{
	return syscall(SYS_brk, p);
}

int main(void)
{
	const int RW = PROT_READ | PROT_WRITE;
	const int ANONFIX = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;

	checkpoint("start");

	/* brk */
	char *b0 = sbrk(0);
	say("sbrk(0) = %p\n", b0);
	char *r = sbrk(4 * PAGE);
	say("sbrk(4 pages) = %p\n", r);
	fill(b0, 4 * PAGE, 7);
	checkpoint("after sbrk grow");
	r = sbrk(-(long)(2 * PAGE));
	say("sbrk(-2 pages) = %p, sbrk(0) = %p\n", r, sbrk(0));
	check("brk after shrink", b0, 2 * PAGE, 7);
	checkpoint("after sbrk shrink");
	long cur = raw_brk(NULL);
	say("brk(NULL) = %#lx\n", cur);
	say("brk(cur + 0x21000) = %#lx\n", raw_brk((char *)cur + 0x21000));
	say("brk(cur + 0x21800) sub-page = %#lx\n", raw_brk((char *)cur + 0x21800));
	say("brk(start - 1 page) below start = %#lx\n", raw_brk(b0 - PAGE));
	say("brk(1 TiB) beyond reach = %#lx\n", raw_brk((char *)cur + (1UL << 40)));
	checkpoint("after raw brk grow");
	say("brk(start + 1 page) = %#lx\n", raw_brk(b0 + PAGE));
	say("brk(start) = %#lx\n", raw_brk(b0));
	checkpoint("after raw brk shrink to start");

	/* mremap shrink. */
	show_ptr("mmap(0x40000000, 8 pages, RW, FIXED)", mmap(A, 8 * PAGE, RW, ANONFIX, -1, 0));
	fill(A, 8 * PAGE, 20);
	show_ptr("mremap(0x40000000, 8 pages, 4 pages, 0) shrink", mremap(A, 8 * PAGE, 4 * PAGE, 0));
	checkpoint("after mremap shrink");

	/* Grow in place into free space. */
	show_ptr("mremap(0x40000000, 4 pages, 10 pages, 0) grow in place", mremap(A, 4 * PAGE, 10 * PAGE, 0));
	check("grown in place", A, 4 * PAGE, 20);
	checkpoint("after mremap grow in place");

	/* Blocked growth: ENOMEM without MAYMOVE, a move with it. */
	show_ptr("mmap(0x4000a000, 1 page, READ, FIXED) blocker", mmap(A + 10 * PAGE, PAGE, PROT_READ, ANONFIX, -1, 0));
	show_ptr("mremap(0x40000000, 10 pages, 12 pages, 0) blocked (ENOMEM)", mremap(A, 10 * PAGE, 12 * PAGE, 0));
	char *mv = show_ptr("mremap(0x40000000, 10 pages, 12 pages, MAYMOVE)", mremap(A, 10 * PAGE, 12 * PAGE, MREMAP_MAYMOVE));
	check("moved", mv, 4 * PAGE, 20);
	checkpoint("after mremap MAYMOVE");

	/* FIXED: move to a chosen address, with a smaller length. */
	char *fx = show_ptr("mremap(mv, 12 pages, 6 pages, MAYMOVE|FIXED, 0x41000000)",
			    mremap(mv, 12 * PAGE, 6 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, B));
	check("fixed", fx, 4 * PAGE, 20);
	checkpoint("after mremap FIXED");

	/* DONTUNMAP: the source stays mapped (and reads as zero). */
	char *du = show_ptr("mremap(0x41000000, 6 pages, 6 pages, MAYMOVE|DONTUNMAP, NULL)",
			    mremap(B, 6 * PAGE, 6 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL));
	check("dontunmap dest", du, 4 * PAGE, 20);
	say("dontunmap source first byte: %d\n", B[0]);
	checkpoint("after mremap DONTUNMAP");

	/* Error cases. */
	/* glibc's wrapper rejects unknown flags itself (no system call), so
	 * the raw system call is used to show the kernel's answer. */
	show_ptr("mremap(0x41000000, 1 page, 1 page, 0x10) bad flags via glibc (EINVAL)", mremap(B, PAGE, PAGE, 0x10, NULL));
	show_ptr("syscall(SYS_mremap, 0x41000000, 1 page, 1 page, 0x10) bad flags (EINVAL)",
		 (void *)syscall(SYS_mremap, B, PAGE, PAGE, 0x10, NULL));
	show_ptr("mremap(0x41000010, ...) unaligned (EINVAL)", mremap(B + 0x10, PAGE, PAGE, 0));
	show_ptr("mremap(0x41000000, 1 page, 0, 0) new_len 0 (EINVAL)", mremap(B, PAGE, 0, 0));
	show_ptr("mremap(FIXED without MAYMOVE) (EINVAL)", mremap(B, PAGE, PAGE, MREMAP_FIXED, D));
	show_ptr("mremap(DONTUNMAP, 1 page -> 2 pages) (EINVAL)",
		 mremap(B, PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL));
	show_ptr("mremap(0x50000000 unmapped) (EFAULT)", mremap((char *)0x50000000UL, PAGE, 2 * PAGE, MREMAP_MAYMOVE));
	show_ptr("mremap(0x41000000, 20 pages, ...) crosses VMA end (EFAULT)",
		 mremap(B, 20 * PAGE, 21 * PAGE, MREMAP_MAYMOVE));
	show_ptr("mremap(FIXED onto overlapping range) (EINVAL)",
		 mremap(B, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, B + PAGE));
	show_ptr("mremap(private, old_len 0) (EINVAL)", mremap(B, 0, PAGE, MREMAP_MAYMOVE));

	/* old_len 0 on a shared mapping duplicates it. */
	char *sh = show_ptr("mmap(NULL, 2 pages, RW, SHARED|ANON)", mmap(NULL, 2 * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
	sh[0] = 'S';
	char *dup = show_ptr("mremap(sh, 0, 2 pages, MAYMOVE) duplicate", mremap(sh, 0, 2 * PAGE, MREMAP_MAYMOVE));
	if (dup != MAP_FAILED)
		say("duplicate sees %c\n", dup[0]);
	checkpoint("after mremap errors and duplicate");

	/* Expand merge: two unfaulted anonymous VMAs with a hole between;
	 * growing the first in place to meet the second merges them. */
	show_ptr("mmap(0x43000000, 4 pages, RW, FIXED)", mmap(M, 4 * PAGE, RW, ANONFIX, -1, 0));
	show_ptr("mmap(0x43008000, 4 pages, RW, FIXED)", mmap(M + 8 * PAGE, 4 * PAGE, RW, ANONFIX, -1, 0));
	checkpoint("before expand merge");
	show_ptr("mremap(0x43000000, 4 pages, 8 pages, 0) expand merge", mremap(M, 4 * PAGE, 8 * PAGE, 0));
	checkpoint("after expand merge");

	/* A faulted VMA moved next to an unfaulted one. */
	show_ptr("mmap(0x42000000, 2 pages, RW, FIXED)", mmap(D, 2 * PAGE, RW, ANONFIX, -1, 0));
	fill(D, 2 * PAGE, 60);
	show_ptr("mremap(0x42000000, 2 pages, 2 pages, MAYMOVE|FIXED, 0x4300c000) next to merged",
		 mremap(D, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, M + 12 * PAGE));
	check("moved next to merged", M + 12 * PAGE, 2 * PAGE, 60);
	checkpoint("end");
	return 0;
}
