/* lmm native test: a shared writable mapping of a host file, and the
 * file's own system calls on it, agree as they do with Linux's one page
 * cache. Usage: shfile DIR (the three-page case) or shfile DIR big MIB (a
 * MIB-sized mapping written whole, then read back with read()). Creates
 * DIR/shfile.dat and leaves it there for the caller to compare. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096UL

static sigjmp_buf env;

static void on_bus(int sig)
{
	siglongjmp(env, sig);
}

/* The signal a read of *p raises (0 if none); its value in *out. */
static int probe(volatile unsigned char *p, unsigned char *out)
{
	int sig = sigsetjmp(env, 1);

	if (sig == 0) {
		*out = *p;
		return 0;
	}
	return sig;
}

static unsigned long fnv(const unsigned char *p, unsigned long len)
{
	unsigned long h = 14695981039346656037UL, i;

	for (i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211UL;
	return h;
}

static unsigned char pattern(unsigned long i)
{
	return (unsigned char)(i * 7 + (i >> 12) + 3);
}

/* The writeback counters of /proc/vmstat, on stderr (they differ from
 * one kernel to another; stdout must not). */
static void vmstat_to_stderr(void)
{
	char line[256];
	FILE *f = fopen("/proc/vmstat", "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "nr_vmscan_write ", 16) || !strncmp(line, "nr_written ", 11) ||
		    !strncmp(line, "pgsteal_", 8))
			fputs(line, stderr);
	fclose(f);
}

static int big(int fd, unsigned long mib)
{
	unsigned long len = mib << 20, i, h = 14695981039346656037UL, want;
	unsigned long chunk = 1UL << 20, done = 0, bad = 0;
	unsigned char *p, *buf;

	if (ftruncate(fd, len))
		return 30;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return 31;
	for (i = 0; i < len; i++)
		p[i] = pattern(i);
	want = fnv(p, len);
	buf = malloc(chunk);
	if (!buf || lseek(fd, 0, SEEK_SET) != 0)
		return 32;
	while (done < len) {
		ssize_t n = read(fd, buf, chunk);

		if (n <= 0)
			return 33;
		for (i = 0; i < (unsigned long)n; i++) {
			bad += buf[i] != pattern(done + i);
			h = (h ^ buf[i]) * 1099511628211UL;
		}
		done += n;
	}
	printf("big %lu MiB: read back %lu bytes, %lu differ, sum %s\n", mib, done, bad,
	       h == want ? "matches" : "differs");
	if (munmap(p, len))
		return 34;
	vmstat_to_stderr();
	return bad != 0 || h != want;
}

int main(int argc, char **argv)
{
	char path[4096];
	unsigned char *p, *q, buf[3 * PG], v;
	unsigned long i;
	struct stat st;
	struct sigaction sa;
	int fd, sig, status;
	pid_t pid;

	if (argc < 2)
		return 2;
	snprintf(path, sizeof(path), "%s/shfile.dat", argv[1]);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return 3;
	if (argc == 4 && !strcmp(argv[2], "big"))
		return big(fd, strtoul(argv[3], NULL, 10));

	/* Three pages, written through the mapping, msync'd, read back. */
	if (ftruncate(fd, 3 * PG))
		return 4;
	p = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return 5;
	for (i = 0; i < 3 * PG; i++)
		p[i] = pattern(i);
	if (msync(p, 3 * PG, MS_SYNC))
		return 6;
	if (pread(fd, buf, 3 * PG, 0) != (ssize_t)(3 * PG))
		return 7;
	printf("msync: read() sees the stores: %d, sum %016lx\n", !memcmp(buf, p, 3 * PG),
	       fnv(buf, 3 * PG));

	/* A store after msync, not synced: read() sees it all the same. */
	memcpy(p + 2 * PG + 7, "stored", 6);
	if (lseek(fd, 2 * PG, SEEK_SET) != (off_t)(2 * PG) || read(fd, buf, 16) != 16)
		return 8;
	printf("store: read() sees it: %d\n", !memcmp(buf + 7, "stored", 6));

	/* write() and pwrite() are seen by the mapping. */
	if (pwrite(fd, "hello, mapping", 14, PG + 100) != 14)
		return 9;
	printf("pwrite: the mapping sees it: %d\n", !memcmp(p + PG + 100, "hello, mapping", 14));
	if (lseek(fd, 10, SEEK_SET) != 10 || write(fd, "written", 7) != 7)
		return 10;
	printf("write: the mapping sees it: %d, neighbours kept: %d\n", !memcmp(p + 10, "written", 7),
	       p[9] == pattern(9) && p[17] == pattern(17));

	/* A forked child shares the mapping: its store is seen by the
	 * parent's read() once it exited, its pwrite() by the parent's
	 * mapping. */
	pid = fork();
	if (pid < 0)
		return 18;
	if (pid == 0) {
		memcpy(p + 2 * PG + 200, "child", 5);
		_exit(pwrite(fd, "CHILD", 5, 2 * PG + 300) != 5);
	}
	if (waitpid(pid, &status, 0) != pid || status != 0)
		return 19;
	if (pread(fd, buf, 5, 2 * PG + 200) != 5)
		return 20;
	printf("fork: the child's store is in the file: %d, its pwrite in the mapping: %d\n",
	       !memcmp(buf, "child", 5), !memcmp(p + 2 * PG + 300, "CHILD", 5));

	/* fsync after a store through the mapping. */
	p[PG] = 'F';
	if (fsync(fd) || pread(fd, buf, 1, PG) != 1)
		return 11;
	printf("fsync: the file has the store: %d\n", buf[0] == 'F');

	/* pwrite past the end grows the file; a four-page mapping sees the
	 * tail, zeroes after it. */
	if (pwrite(fd, "tail", 4, 3 * PG + 50) != 4 || fstat(fd, &st))
		return 12;
	q = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (q == MAP_FAILED)
		return 13;
	printf("grown to %ld: tail seen: %d, zero after: %d, same page as p: %d\n", (long)st.st_size,
	       !memcmp(q + 3 * PG + 50, "tail", 4), q[3 * PG + 54] == 0 && q[3 * PG + 4095] == 0,
	       !memcmp(q, p, 3 * PG));

	/* ftruncate down to a page and a half: the cut page is SIGBUS, the
	 * partial page's tail reads zero. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_bus;
	sigaction(SIGBUS, &sa, NULL);
	if (ftruncate(fd, PG + PG / 2))
		return 14;
	sig = probe(p + 2 * PG, &v);
	printf("truncated: p[2 pages] gives %s\n", sig == SIGBUS ? "SIGBUS" : sig ? "another signal" : "no signal");
	sig = probe(q + 3 * PG, &v);
	printf("truncated: q[3 pages] gives %s\n", sig == SIGBUS ? "SIGBUS" : sig ? "another signal" : "no signal");
	sig = probe(p + PG + PG / 2 + 10, &v);
	printf("truncated: past the end in the last page: signal %d, byte %d\n", sig, v);
	printf("truncated: kept before the end: %d\n", !memcmp(p + PG + 100, "hello, mapping", 14));

	/* A last store, then munmap: the file has it once unmapped. */
	p[PG + 1] = 'M';
	if (munmap(p, 3 * PG) || munmap(q, 4 * PG))
		return 15;
	if (pread(fd, buf, 2, PG) != 2)
		return 16;
	printf("munmap: the file has the store: %d\n", buf[1] == 'M');
	if (fstat(fd, &st) || pread(fd, buf, sizeof(buf), 0) != st.st_size)
		return 17;
	printf("final: %ld bytes, sum %016lx\n", (long)st.st_size, fnv(buf, st.st_size));
	close(fd);
	return 0;
}
