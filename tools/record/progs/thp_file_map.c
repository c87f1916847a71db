/* thp_file_map: where the kernel places file mappings on a file system whose
 * get_unmapped_area is thp_get_unmapped_area (ext4), with ASLR off.
 *
 * Usage: thp_file_map DIR   (DIR on ext4; run under setarch -R)
 * Creates DIR/f6m (6 MiB + 24 KiB), DIR/f1m (1 MiB), then makes the
 * mappings below, one line each, in a form the test replays:
 *   map NAME LEN OFFSET SHARED HINT = ADDR
 *   unmap ADDR LEN
 *   remap ADDR OLD_LEN NEW_LEN = ADDR
 * and /proc/self/maps at the end.
 * Built static (no ld.so, no libc mappings) so that lmm can exec the same
 * binary and replay the same calls in the same address space.
 */
#include "common.h"

#include <stdlib.h>

static char dir[512];

static int make(const char *name, unsigned long size)
{
	char path[600];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)size) != 0) {
		say("cannot create %s\n", path);
		_exit(1);
	}
	return fd;
}

static int f6m, f1m;

static int fd_of(const char *name)
{
	return strcmp(name, "f6m") == 0 ? f6m : f1m;
}

static unsigned long map(const char *name, unsigned long len, unsigned long off, int shared,
			 unsigned long hint)
{
	void *p;
	if (name)
		p = mmap((void *)hint, len, PROT_READ, shared ? MAP_SHARED : MAP_PRIVATE,
			 fd_of(name), (off_t)off);
	else
		p = mmap((void *)hint, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
	say("map %s %#lx %#lx %d %#lx = ", name ? name : "anon", len, off, shared, hint);
	if (p == MAP_FAILED)
		say("-1 %s\n", strerrorname_np(errno));
	else
		say("%p\n", p);
	return (unsigned long)p;
}

static unsigned long remap(unsigned long addr, unsigned long old_len, unsigned long new_len)
{
	void *p = mremap((void *)addr, old_len, new_len, MREMAP_MAYMOVE);
	say("remap %#lx %#lx %#lx = ", addr, old_len, new_len);
	if (p == MAP_FAILED)
		say("-1 %s\n", strerrorname_np(errno));
	else
		say("%p\n", p);
	return (unsigned long)p;
}

static void unmap(unsigned long addr, unsigned long len)
{
	munmap((void *)addr, len);
	say("unmap %#lx %#lx\n", addr, len);
}

#define M (1UL << 20)
#define K 1024UL

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	snprintf(dir, sizeof dir, "%s", argv[1]);
	f6m = make("f6m", 6 * M + 24 * K);
	f1m = make("f1m", 1 * M);

	/* Covers an aligned 2 MiB of the file: placed 2 MiB aligned. */
	unsigned long a = map("f6m", 6 * M + 24 * K, 0, 0, 0);
	map("f6m", 2 * M, 0, 0, 0);
	/* One page short of a whole aligned 2 MiB: not aligned. */
	map("f6m", 2 * M - 4 * K, 0, 0, 0);
	/* Offset 4 KiB, 4 MiB long: [2M, 4M) of the file is covered; the
	 * address is congruent to the offset modulo 2 MiB. */
	map("f6m", 4 * M, 4 * K, 0, 0);
	map("f6m", 3 * M, 1 * M, 0, 0);
	/* Offset 1 MiB, 2 MiB long: no aligned stretch inside. */
	map("f6m", 2 * M, 1 * M, 0, 0);
	/* Longer than the file: the rule looks at the mapping, not i_size. */
	map("f1m", 4 * M, 0, 0, 0);
	map("f1m", 1 * M, 0, 0, 0);
	/* Shared mappings go through the same f_op. */
	map("f6m", 2 * M, 0, 1, 0);
	/* A free hint is taken as it is. */
	map("f6m", 4 * M, 0, 0, 0x10000000);
	/* A taken hint falls back to the aligned search. */
	map("f6m", 4 * M, 0, 0, a);
	/* Anonymous, for comparison (6.13+: aligned when len % 2 MiB == 0). */
	map(NULL, 2 * M, 0, 0, 0);
	map(NULL, 3 * M, 0, 0, 0);
	/* A hole left by munmap is reused when it fits with the padding. */
	unmap(a, 6 * M + 24 * K);
	map("f6m", 4 * M, 0, 0, 0);
	map("f6m", 2 * M + 8 * K, 2 * M, 0, 0);
	map("f6m", 64 * K, 0, 0, 0);
	/* mremap moves through get_unmapped_area with the VMA's file offset:
	 * a mapping of [1 MiB, 2 MiB) grown to 3 MiB covers [2 MiB, 4 MiB)
	 * and moves to an address congruent to 1 MiB. */
	unsigned long r = map("f6m", 1 * M, 1 * M, 0, 0);
	remap(r, 1 * M, 3 * M);
	checkpoint("end");
	return 0;
}
