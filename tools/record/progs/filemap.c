/* filemap: file-backed mappings of the program's own binary (argv[0]):
 * private read-only, shared read-only, private writable (copy on write),
 * a page offset, past end of file, and the permission errors: PROT_WRITE with
 * MAP_SHARED on an O_RDONLY fd (EACCES), mprotect(PROT_WRITE) on that shared
 * mapping (EACCES), an unaligned offset (EINVAL), a bad fd (EBADF); msync.
 * Prints /proc/self/maps at each checkpoint (see common.h).
 */
#include "common.h"
#include <sys/stat.h>

int main(int argc, char **argv)
{
	(void)argc;
	checkpoint("start");

	int fd = show_int("open(argv[0], O_RDONLY)", open(argv[0], O_RDONLY));
	struct stat st;
	fstat(fd, &st);
	size_t size = (size_t)st.st_size;
	size_t pages = (size - 1) / PAGE + 1;
	say("file size %zu bytes, %zu pages\n", size, pages);

	char *priv = show_ptr("mmap(NULL, size, READ, PRIVATE, fd, 0)", mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0));
	char *shr = show_ptr("mmap(NULL, size, READ, SHARED, fd, 0)", mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0));
	say("ELF magic via private: %.3s, via shared: %.3s\n", priv + 1, shr + 1);
	checkpoint("after read-only maps");

	show_ptr("mmap(NULL, size, READ|WRITE, SHARED, O_RDONLY fd, 0) (EACCES)",
		 mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
	show_int("mprotect(shared, READ|WRITE) on O_RDONLY fd (EACCES)", mprotect(shr, PAGE, PROT_READ | PROT_WRITE));
	show_ptr("mmap(NULL, 1 page, READ, PRIVATE, fd, 0x800) unaligned offset (EINVAL)",
		 mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0x800));
	show_ptr("mmap(NULL, 1 page, READ, PRIVATE, fd 99, 0) (EBADF)", mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, 99, 0));
	show_ptr("mmap(NULL, 1 page, READ, 0 (no type), fd, 0) (EINVAL)", mmap(NULL, PAGE, PROT_READ, 0, fd, 0));

	/* Private writable at offset 1 page: copy on write, file unchanged. */
	char *cow = show_ptr("mmap(NULL, 2 pages, READ|WRITE, PRIVATE, fd, 0x1000)",
			     mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, PAGE));
	char before = cow[0];
	cow[0] = (char)(before + 1);
	say("cow: private changed %d -> %d, file (via shared) still %d\n", before, cow[0], shr[PAGE]);

	/* Longer than the file: the mapping is made, the tail beyond EOF page
	 * would SIGBUS if touched. */
	char *big = show_ptr("mmap(NULL, size + 4 pages, READ, PRIVATE, fd, 0)",
			     mmap(NULL, (pages + 4) * PAGE, PROT_READ, MAP_PRIVATE, fd, 0));
	/* Read-only private mapping made executable, then writable (allowed). */
	show_int("mprotect(priv, 1 page, READ|EXEC)", mprotect(priv, PAGE, PROT_READ | PROT_EXEC));
	show_int("mprotect(priv+1 page, 1 page, READ|WRITE) private ok", mprotect(priv + PAGE, PAGE, PROT_READ | PROT_WRITE));
	checkpoint("after cow and mprotect");

	/* msync and madvise on file mappings. */
	show_int("msync(shared, size, MS_SYNC)", msync(shr, size, MS_SYNC));
	show_int("msync(shared, 1 page, MS_ASYNC|MS_INVALIDATE)", msync(shr, PAGE, MS_ASYNC | MS_INVALIDATE));
	show_int("msync(shared, 1 page, MS_SYNC|MS_ASYNC) (EINVAL)", msync(shr, PAGE, MS_SYNC | MS_ASYNC));
	show_int("msync(shared+1, ...) unaligned (EINVAL)", msync(shr + 1, PAGE, MS_SYNC));
	show_int("madvise(priv, size, WILLNEED)", madvise(priv, size, MADV_WILLNEED));
	show_int("madvise(shared, size, RANDOM)", madvise(shr, size, MADV_RANDOM));
	show_int("madvise(cow, 2 pages, DONTNEED) drops the private copy", madvise(cow, 2 * PAGE, MADV_DONTNEED));
	say("cow after DONTNEED: %d (file value %d)\n", cow[0], shr[PAGE]);

	/* Closing the fd keeps the mappings. */
	show_int("close(fd)", close(fd));
	checkpoint("after close");

	munmap(priv, size);
	munmap(shr, size);
	munmap(cow, 2 * PAGE);
	munmap(big, (pages + 4) * PAGE);
	checkpoint("end");
	return 0;
}
