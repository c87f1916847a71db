/* lmm native test: execveat(2). Run with its own absolute path as argv[0]:
 * a child execs this program by name relative to a directory descriptor,
 * another by its own descriptor with AT_EMPTY_PATH; each prints what it
 * got as AT_EXECFN (Linux's /dev/fd/N/NAME and /dev/fd/N) and exits with
 * its argument. Then the errors: a missing file (ENOENT), an empty path
 * without AT_EMPTY_PATH (ENOENT), unknown flags (EINVAL) and a symlink
 * with AT_SYMLINK_NOFOLLOW (ELOOP). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void run(int dirfd, const char *path, int flags, const char *code)
{
	char *args[] = { "execveat-child", "child", (char *)code, NULL };
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		execveat(dirfd, path, args, environ, flags);
		printf("execveat failed: %s\n", strerror(errno));
		_exit(99);
	}
	waitpid(pid, &status, 0);
	printf("child %s exited %d\n", code, WEXITSTATUS(status));
}

static void fails(const char *what, int dirfd, const char *path, int flags)
{
	char *args[] = { "x", NULL };
	int r = execveat(dirfd, path, args, environ, flags);

	printf("%s: ret=%d errno=%s\n", what, r, strerror(errno));
}

int main(int argc, char **argv)
{
	char dir[4096], base[4096], link[64];
	int dirfd, fd;

	if (argc == 3 && !strcmp(argv[1], "child")) {
		printf("child %s: argv0=%s execfn=%s\n", argv[2], argv[0],
		       (const char *)getauxval(AT_EXECFN));
		fflush(stdout);
		return atoi(argv[2]);
	}
	snprintf(dir, sizeof(dir), "%s", argv[0]);
	snprintf(base, sizeof(base), "%s", basename(argv[0]));
	dirfd = open(dirname(dir), O_RDONLY | O_DIRECTORY);
	fd = open(argv[0], O_RDONLY);
	if (dirfd < 0 || fd < 0) {
		perror("open");
		return 1;
	}
	fflush(stdout);
	run(dirfd, base, 0, "3");
	fflush(stdout);
	run(fd, "", AT_EMPTY_PATH, "4");
	fails("missing", dirfd, "no-such-file", 0);
	fails("empty path", fd, "", 0);
	fails("bad flags", dirfd, base, 0x1);
	snprintf(link, sizeof(link), "execveat-link-%d", getpid());
	if (symlinkat(base, dirfd, link)) {
		perror("symlinkat");
		return 1;
	}
	fails("symlink nofollow", dirfd, link, AT_SYMLINK_NOFOLLOW);
	unlinkat(dirfd, link, 0);
	return 0;
}
