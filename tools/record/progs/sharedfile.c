/* sharedfile: a shared file mapping written by two processes.
 *
 * A tmpfs file (/dev/shm, so that its pages are shmem pages as on lmm's
 * tmpfs) is created, sized with ftruncate, written once with pwrite and
 * mapped MAP_SHARED read-write; a fork child writes two pages through the
 * mapping and exits; the parent reads them (one fault: fault-around maps
 * every cached page), checks the child's bytes, writes the other two,
 * msyncs, maps the file again read-only at an offset, and unlinks it (maps
 * then say "(deleted)").  A memfd is shared the same way.  Every access is
 * announced (see touch.h).  Ends with /proc/self/maps (checkpoint), smaps
 * and the fault totals.
 */
#include "touch.h"
#include <stdlib.h>
#include <sys/wait.h>

#define PATH "/dev/shm/lmm-sharedfile"

static void warm(void)
{
	long a, b;
	faults_now(&a, &b);
	faults_now(&a, &b);
}

int main(void)
{
	const int RW = PROT_READ | PROT_WRITE;

	warm();
	int fd = show_int("open(" PATH ", O_RDWR|O_CREAT|O_TRUNC)", open(PATH, O_RDWR | O_CREAT | O_TRUNC, 0600));
	show_int("ftruncate(fd, 4 pages)", ftruncate(fd, 4 * PAGE));
	show_int("pwrite(fd, \"page3\", 5, 3 pages)", pwrite(fd, "page3", 5, 3 * PAGE));
	char *s = show_ptr("mmap(NULL, 4 pages, RW, SHARED, fd, 0)", mmap(NULL, 4 * PAGE, RW, MAP_SHARED, fd, 0));

	pid_t c = fork();
	if (c == 0) {
		warm();
		touch(s, 2 * PAGE, 1);
		_exit(0);
	}
	warm();
	int st;
	waitpid(c, &st, 0);
	say("child exited %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	touch(s, 2 * PAGE, 0);
	say("page 0 byte %#x, page 1 byte %#x, page 3 \"%.5s\"\n", (unsigned char)s[0],
	    (unsigned char)s[PAGE], s + 3 * PAGE);
	touch(s + 2 * PAGE, 2 * PAGE, 1);
	show_int("msync(s, 4 pages, MS_SYNC)", msync(s, 4 * PAGE, MS_SYNC));

	char *ro = show_ptr("mmap(NULL, 2 pages, READ, SHARED, fd, 1 page)",
			    mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, fd, PAGE));
	touch(ro, 2 * PAGE, 0);
	say("ro page 0 byte %#x\n", (unsigned char)ro[0]);
	show_int("unlink(" PATH ")", unlink(PATH));
	show_int("close(fd)", close(fd));

	/* A memfd shared with a child. */
	int m = show_int("memfd_create(\"lmm\", 0)", memfd_create("lmm", 0));
	show_int("ftruncate(m, 2 pages)", ftruncate(m, 2 * PAGE));
	char *mm = show_ptr("mmap(NULL, 2 pages, RW, SHARED, m, 0)", mmap(NULL, 2 * PAGE, RW, MAP_SHARED, m, 0));
	c = fork();
	if (c == 0) {
		warm();
		touch(mm, PAGE, 1);
		_exit(0);
	}
	warm();
	waitpid(c, &st, 0);
	touch(mm, 2 * PAGE, 0);
	say("memfd page 0 byte %#x\n", (unsigned char)mm[0]);

	checkpoint("end");
	show_proc("smaps");
	long mn, mj;
	faults_now(&mn, &mj);
	say("faults: minflt %ld majflt %ld\n", mn, mj);
	return 0;
}
