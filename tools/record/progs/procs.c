/* procs: processes and the faults that decide their memory.
 *
 * - fork: a child that writes half of a written region (copy-on-write) and
 *   reads the other half, exits 3; the parent writes it all again after the
 *   child is gone (the pages are its own again: reused, not copied);
 * - vfork + execve(/bin/true), posix_spawn(/bin/true) (glibc: clone with
 *   CLONE_VM|CLONE_VFORK on a stack it maps), and a child killed by SIGSEGV
 *   on PROT_NONE memory; wait statuses;
 * - writes before mremap(MREMAP_MAYMOVE|MREMAP_DONTUNMAP): the moved VMA
 *   keeps its anon_vma and pgoff, the source stays mapped and reads zero;
 * - a MAP_GROWSDOWN region and the main stack, both grown by a touch below
 *   their start.
 *
 * Every access is announced (see touch.h).  Ends with /proc/self/maps
 * (checkpoint), smaps and the fault totals.
 */
#include "touch.h"
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>

#define GROW ((char *)0x50000000UL)
/* The written region: at a hint of its own, so that its VMA holds only
 * announced accesses (top-down it would merge with ld.so's or libc's
 * anonymous VMAs, whose pages the program touches unannounced). */
#define REGION ((char *)0x60000000UL)

extern char **environ;

/* Runs the getrusage path once so that its first use (a code page, a
 * copy-on-write stack page after fork) is not inside a measured touch. */
static void warm(void)
{
	long a, b;
	faults_now(&a, &b);
	faults_now(&a, &b);
}

static void show_status(const char *what, int st)
{
	if (WIFEXITED(st))
		say("%s: exited %d\n", what, WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		say("%s: killed by signal %d\n", what, WTERMSIG(st));
	else
		say("%s: status %#x\n", what, st);
}

int main(void)
{
	const int RW = PROT_READ | PROT_WRITE;
	const int ANON = MAP_PRIVATE | MAP_ANONYMOUS;
	char *argv_true[] = {"true", NULL};

	warm();
	char *r = show_ptr("mmap(0x60000000, 8 pages, RW, PRIVATE|ANON)", mmap(REGION, 8 * PAGE, RW, ANON, -1, 0));
	touch(r, 8 * PAGE, 1);

	/* fork: the child copies what it writes. */
	pid_t c = fork();
	if (c == 0) {
		warm();
		touch(r, 4 * PAGE, 1);
		touch(r + 4 * PAGE, 4 * PAGE, 0);
		_exit(3);
	}
	warm();
	int st;
	say("fork = %d\n", c > 0);
	waitpid(c, &st, 0);
	show_status("fork child", st);

	/* vfork + execve. */
	c = vfork();
	if (c == 0) {
		execve("/bin/true", argv_true, environ);
		_exit(127);
	}
	waitpid(c, &st, 0);
	show_status("vfork child", st);

	/* posix_spawn. */
	pid_t sp;
	int e = posix_spawn(&sp, "/bin/true", NULL, NULL, argv_true, environ);
	say("posix_spawn = %d\n", e);
	waitpid(sp, &st, 0);
	show_status("posix_spawn child", st);

	/* A child killed by SIGSEGV on PROT_NONE memory. */
	char *none = show_ptr("mmap(NULL, 1 page, NONE, PRIVATE|ANON)", mmap(NULL, PAGE, PROT_NONE, ANON, -1, 0));
	c = fork();
	if (c == 0) {
		say("touch %p %lu w: SIGSEGV\n", none, PAGE);
		*(volatile char *)none = 1;
		_exit(0);
	}
	warm();
	waitpid(c, &st, 0);
	show_status("segv child", st);

	/* The parent's pages are its own again: each write fault reuses. */
	touch(r, 8 * PAGE, 1);

	/* Writes, then MREMAP_DONTUNMAP: the pages move, the source reads zero. */
	char *n = show_ptr("mremap(r, 8 pages, 8 pages, MAYMOVE|DONTUNMAP)",
			   mremap(r, 8 * PAGE, 8 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL));
	touch(n, 8 * PAGE, 0);
	touch(r, 8 * PAGE, 0);
	touch(r, 2 * PAGE, 1);

	/* MAP_GROWSDOWN: a store three pages below its start grows it. */
	char *g = show_ptr("mmap(0x50000000, 2 pages, RW, PRIVATE|ANON|GROWSDOWN)",
			   mmap(GROW, 2 * PAGE, RW, ANON | MAP_GROWSDOWN, -1, 0));
	touch(g, PAGE, 1);
	touch(g - 3 * PAGE, PAGE, 1);

	/* The main stack: a store 256 pages below this frame grows [stack]. */
	char *low = (char *)(((uintptr_t)__builtin_frame_address(0) & ~(PAGE - 1)) - 256 * PAGE);
	touch(low, 1, 1);

	checkpoint("end");
	show_proc("smaps");
	long mn, mj;
	faults_now(&mn, &mj);
	say("faults: minflt %ld majflt %ld\n", mn, mj);
	return 0;
}
