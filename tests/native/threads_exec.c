/* lmm native test: execve in a process with several threads (Linux's
 * de_thread: every other thread ends, the exec'ing thread takes the
 * group's pid and keeps its signal mask). Threads sleep in pause() (a host
 * call) and spin in their own code meanwhile; a failed execve first leaves
 * them all running. The new image prints what it sees and exits with 7.
 *
 *   threads_exec [thread]   a thread other than main execs
 *   threads_exec leader     the main thread execs
 *   threads_exec main-exits main calls pthread_exit first; a thread execs */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;
static char *self;
static char pid_arg[32];
static volatile int spinning = 1;

static void *sleeper(void *arg)
{
	for (;;)
		pause();
	return arg;
}

static void *spinner(void *arg)
{
	while (spinning)
		;
	return arg;
}

/* Blocks SIGUSR2 (exec keeps this thread's mask), fails an exec, then
 * execs this program again. */
static void *execer(void *arg)
{
	char *argv[] = { self, "after", pid_arg, NULL };
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	if (execve("/nonexistent/program", argv, environ) < 0)
		printf("execve of a missing file: %s\n", strerror(errno));
	fflush(stdout);
	execve(self, argv, environ);
	perror("execve");
	exit(1);
	return arg;
}

/* The new image. */
static int after(const char *old_pid)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");
	sigset_t cur;
	size_t n = 8 << 20;
	char *buf = malloc(n);
	long sum = 0;

	printf("after exec: pid %s, tid is the pid: %d\n",
	       getpid() == atoi(old_pid) ? "kept" : "changed",
	       (pid_t)syscall(SYS_gettid) == getpid());
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "Threads:", 8) == 0)
			fputs(line, stdout);
	sigprocmask(SIG_SETMASK, NULL, &cur);
	printf("SIGUSR2 blocked: %d\n", sigismember(&cur, SIGUSR2));
	memset(buf, 1, n);
	for (size_t i = 0; i < n; i += 4096)
		sum += buf[i];
	printf("sum %ld\n", sum);
	return 7;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "thread";
	pthread_t t;

	if (argc > 2 && strcmp(argv[1], "after") == 0)
		return after(argv[2]);
	self = argv[0];
	snprintf(pid_arg, sizeof(pid_arg), "%d", getpid());
	if (pthread_create(&t, NULL, sleeper, NULL) ||
	    pthread_create(&t, NULL, spinner, NULL))
		return 2;
	if (strcmp(mode, "leader") == 0)
		execer(NULL);
	if (pthread_create(&t, NULL, execer, NULL))
		return 2;
	if (strcmp(mode, "main-exits") == 0)
		pthread_exit(NULL);
	pthread_join(t, NULL);
	return 3;
}
