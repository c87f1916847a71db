/* lmm native test: fork with copy-on-write, wait4, and fork + execve.
 * The parent fills a 4 MiB buffer; the child overwrites it and fills a
 * new 2 MiB one, prints a checksum and exits 3; the parent checks the
 * status, that its own buffer is unchanged (copy-on-write), and writes it
 * again. Then a child execs this program with "exec PPID", which checks
 * that getppid() is its parent's getpid() and exits 5; and an execve of a
 * missing file fails with ENOENT. No pid is printed: lmm's and the
 * host's differ. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pages.h"

#define BIG (4UL << 20)
#define NEW (2UL << 20)

static unsigned long sum(const unsigned char *p, unsigned long len)
{
	unsigned long s = 0, i;

	for (i = 0; i < len; i += 4096)
		s += p[i];
	return s;
}

int main(int argc, char **argv)
{
	unsigned char *buf, *grown;
	unsigned long i, before;
	int status;
	pid_t pid;
	char ppid[32];

	if (argc == 3 && !strcmp(argv[1], "exec")) {
		printf("exec'd: parent is %s\n",
		       getppid() == atoi(argv[2]) ? "the forker" : "wrong");
		return 5;
	}
	buf = fresh(BIG);
	for (i = 0; i < BIG; i += 4096)
		buf[i] = (unsigned char)(i >> 12);
	before = sum(buf, BIG);
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		grown = fresh(NEW);
		for (i = 0; i < BIG; i += 4096)
			buf[i] = 0x77;
		for (i = 0; i < NEW; i += 4096)
			grown[i] = 0x11;
		printf("child: sum %lu + %lu, pid %s\n", sum(buf, BIG),
		       sum(grown, NEW), getpid() != getppid() ? "new" : "same");
		fflush(stdout);
		_exit(3);
	}
	if (waitpid(pid, &status, 0) != pid) {
		perror("waitpid");
		return 1;
	}
	printf("parent: child %s %d, own buffer %s\n",
	       WIFEXITED(status) ? "exited" : "died", WEXITSTATUS(status),
	       sum(buf, BIG) == before ? "intact" : "CHANGED");
	for (i = 0; i < BIG; i += 4096)
		buf[i] ^= 1;
	printf("parent: rewritten, sum %lu\n", sum(buf, BIG));
	printf("waitpid with no child left: %s\n",
	       waitpid(-1, &status, 0) < 0 && errno == ECHILD ? "ECHILD" : "unexpected");
	fflush(stdout);
	snprintf(ppid, sizeof(ppid), "%d", (int)getpid());
	pid = fork();
	if (pid == 0) {
		char *args[] = { argv[0], "exec", ppid, NULL };

		execv("/nonexistent/program", args);
		printf("execv of a missing file: %s\n", errno == ENOENT ? "ENOENT" : "unexpected");
		fflush(stdout);
		execv(argv[0], args);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid) {
		perror("waitpid");
		return 1;
	}
	printf("parent: exec'd child exited %d\n", WEXITSTATUS(status));
	return 0;
}
