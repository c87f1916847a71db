/* Shared helpers for the lmm recording programs.
 *
 * Output goes through write(2) on fd 1 and a static buffer, never stdio or
 * malloc, so the programs make no brk/mmap calls of their own besides the ones
 * under test (glibc start-up aside).  Every checkpoint prints the marker
 * "=== checkpoint N: LABEL ===" and then the raw bytes of /proc/self/maps.
 */
#ifndef LMM_RECORD_COMMON_H
#define LMM_RECORD_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

#define PAGE 4096UL

static char out_buf[1 << 16];
static int checkpoint_no;

static void out_raw(const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(1, s, n);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* printf-like line output without stdio buffering. */
static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out_buf, sizeof out_buf, fmt, ap);
	va_end(ap);
	if (n > 0)
		out_raw(out_buf, (size_t)n < sizeof out_buf ? (size_t)n : sizeof out_buf - 1);
}

/* Print a result: a pointer, or the errno name when it is MAP_FAILED. */
static inline void *show_ptr(const char *what, void *p)
{
	if (p == MAP_FAILED)
		say("%s = -1 %s\n", what, strerrorname_np(errno));
	else
		say("%s = %p\n", what, p);
	return p;
}

static inline int show_int(const char *what, long r)
{
	if (r == -1)
		say("%s = -1 %s\n", what, strerrorname_np(errno));
	else
		say("%s = %ld\n", what, r);
	return (int)r;
}

static void checkpoint(const char *label)
{
	say("=== checkpoint %d: %s ===\n", checkpoint_no++, label);
	int fd = open("/proc/self/maps", O_RDONLY);
	if (fd < 0) {
		say("open /proc/self/maps failed: %s\n", strerrorname_np(errno));
		return;
	}
	for (;;) {
		ssize_t n = read(fd, out_buf, sizeof out_buf);
		if (n <= 0)
			break;
		out_raw(out_buf, (size_t)n);
	}
	close(fd);
}

/* Fill a range with a byte pattern derived from its address. */
static inline void fill(void *p, size_t len, unsigned char seed)
{
	unsigned char *c = p;
	for (size_t i = 0; i < len; i++)
		c[i] = (unsigned char)(seed + i / PAGE);
}

/* Check a range filled by fill(); prints the result. */
static inline void check(const char *what, const void *p, size_t len, unsigned char seed)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < len; i++) {
		if (c[i] != (unsigned char)(seed + i / PAGE)) {
			say("%s: data MISMATCH at +%#zx\n", what, i);
			return;
		}
	}
	say("%s: data ok\n", what);
}

#endif
