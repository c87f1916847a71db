/* lmm native test: the program reads its own /proc files and the system's,
 * with open/read/write only (no malloc, so nothing is mapped after the
 * maps are read): prints what its pagemap says of a page it wrote and of
 * one it never touched, /proc/self/maps, the MemTotal line of
 * /proc/meminfo and the VmRSS line of /proc/self/status. With argument
 * `smaps`, prints only /proc/self/smaps. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char buf[1 << 16];
static char pages[3 * 4096];
static char line[256];

/* Reads the whole file `path` into buf (NUL-terminated); its length. */
static long slurp(const char *path)
{
	long n = 0, r;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -1;
	while ((r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
		n += r;
	close(fd);
	buf[n] = 0;
	return n;
}

/* Writes the line of buf starting with `key`. */
static void print_line(const char *key)
{
	char *p = strstr(buf, key), *e;

	if (!p)
		return;
	e = strchr(p, '\n');
	write(1, p, e ? e - p + 1 : strlen(p));
}

/* The pagemap entry of the page at `va`. */
static uint64_t pagemap(uintptr_t va)
{
	uint64_t e = 0;
	/* O_NOFOLLOW: a regular file, as Linux has it. */
	int fd = open("/proc/self/pagemap", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return 0;
	if (pread(fd, &e, 8, (va / 4096) * 8) != 8)
		e = 0;
	close(fd);
	return e;
}

int main(int argc, char **argv)
{
	char *touched = (char *)(((uintptr_t)pages + 4095) & ~(uintptr_t)4095);
	char *untouched = touched + 4096;
	uint64_t t, u;
	long n;
	int len;

	if (argc > 1 && !strcmp(argv[1], "smaps")) {
		/* Only the smaps, as the program's last act, into a buffer
		 * written whole first: reading touches no new page. */
		memset(buf, 1, sizeof(buf));
		n = slurp("/proc/self/smaps");
		if (n > 0)
			write(1, buf, n);
		return 0;
	}
	touched[0] = 1;
	t = pagemap((uintptr_t)touched);
	u = pagemap((uintptr_t)untouched);
	len = snprintf(line, sizeof(line),
		       "touched present=%d pfn_nonzero=%d\ntouched pfn=%llu\n"
		       "untouched present=%d swapped=%d\n",
		       (int)(t >> 63), (t & ((1ULL << 55) - 1)) != 0,
		       (unsigned long long)(t & ((1ULL << 55) - 1)),
		       (int)(u >> 63), (int)((u >> 62) & 1));
	write(1, line, len);
	n = slurp("/proc/self/maps");
	if (n > 0)
		write(1, buf, n);
	if (slurp("/proc/meminfo") > 0)
		print_line("MemTotal:");
	/* Last: every page the program touches is touched by now. */
	if (slurp("/proc/self/status") > 0)
		print_line("VmRSS:");
	return 0;
}
