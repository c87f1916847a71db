/* lmm native test: what lmm still refuses of threads, with ENOSYS and a
 * line on stderr, never a hang: clone with CLONE_VM but not CLONE_THREAD
 * (a process sharing its parent's memory), while a thread runs. Meant for
 * lmm only: the host would run it. (execve with several threads runs:
 * threads_exec.c.) */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static pthread_barrier_t b;

static void *idle(void *arg)
{
	pthread_barrier_wait(&b);
	return arg;
}

int main(void)
{
	pthread_t t;
	long r;

	pthread_barrier_init(&b, NULL, 2);
	if (pthread_create(&t, NULL, idle, NULL))
		return 2;
	r = syscall(SYS_clone, CLONE_VM | SIGCHLD, 0, 0, 0, 0);
	if (r == 0)
		_exit(0);
	printf("clone CLONE_VM: %ld %s\n", r, r < 0 ? strerror(errno) : "ran");
	pthread_barrier_wait(&b);
	pthread_join(t, NULL);
	printf("done\n");
	return 0;
}
