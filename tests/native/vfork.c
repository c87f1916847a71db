/* lmm native test: vfork + execve, and posix_spawn (glibc's clone with
 * CLONE_VM|CLONE_VFORK on a stack of its own), each running this program
 * again with "child", which prints and exits 4. */
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
	char *args[] = { argv[0], "child", NULL };
	int status, err;
	pid_t pid;

	if (argc == 2 && !strcmp(argv[1], "child")) {
		printf("child runs\n");
		return 4;
	}
	fflush(stdout);
	pid = vfork();
	if (pid == 0) {
		execv(argv[0], args);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid)
		return 1;
	printf("vfork: child exited %d\n", WEXITSTATUS(status));
	fflush(stdout);
	err = posix_spawn(&pid, argv[0], NULL, NULL, args, environ);
	if (err || waitpid(pid, &status, 0) != pid)
		return 1;
	printf("posix_spawn: child exited %d\n", WEXITSTATUS(status));
	return 0;
}
