/* lmm native test: process groups and sessions, which lmm keeps in its
 * own process table (the program sees lmm's pids, as in a pid namespace).
 * setpgid, getpgid, getpgrp, setsid and getsid with their errors (ESRCH,
 * EPERM, EACCES after exec, EINVAL), kill of a group, wait4 and waitid of
 * a group. Prints what the host prints (no pid). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void say(const char *what, long r)
{
	printf("%s: %ld %s\n", what, r, r < 0 ? strerror(errno) : "");
}

int main(void)
{
	pid_t me, c;
	siginfo_t si;
	int st;

	/* Its own group, as a job-control shell's child: so on the host too. */
	say("setpgid(0, 0)", setpgid(0, 0));
	me = getpid();
	printf("leads its group: %d, getpgid(0) the same: %d\n",
	       getpgrp() == me, getpgid(0) == me);
	printf("session not its own: %d\n", getsid(0) != me);
	say("setsid as a group leader", setsid());
	say("setpgid of no process", setpgid(999999, 0));
	say("setpgid to a negative group", setpgid(0, -1));
	say("getpgid of no process", getpgid(999999));
	say("getsid of no process", getsid(999999));
	say("setpgid into a group nobody has", setpgid(0, 999999));
	fflush(stdout);

	c = fork();
	if (c == 0) {
		int in_parents = getpgrp() == getpgid(getppid());

		printf("child: in its parent's group %d\n", in_parents);
		printf("child: setsid gives its pid %d\n", setsid() == getpid());
		printf("child: leads both %d\n",
		       getsid(0) == getpid() && getpgrp() == getpid());
		say("child: setpgid as a session leader", setpgid(0, 0));
		fflush(stdout);
		pause();
		_exit(0);
	}
	usleep(150000);
	say("setpgid of a child in another session", setpgid(c, c));
	kill(c, SIGKILL);
	waitpid(c, &st, 0);

	/* A child moved to a group of its own, then signalled as a group. */
	c = fork();
	if (c == 0) {
		pause();
		_exit(0);
	}
	say("setpgid of a child", setpgid(c, c));
	printf("its group is its pid: %d\n", getpgid(c) == c);
	say("kill of its group", kill(-c, SIGTERM));
	printf("wait4 of its group: the child %d", wait4(-c, &st, 0, NULL) == c);
	printf(", killed by %d\n", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	say("kill of a group nobody has", kill(-999999, SIGTERM));

	/* wait4(0) takes children of the caller's group only. */
	fflush(stdout);
	c = fork();
	if (c == 0) {
		setpgid(0, 0);
		_exit(3);
	}
	setpgid(c, c);
	say("wait4(0) with its only child in another group", wait4(0, &st, WNOHANG, NULL));
	memset(&si, 0, sizeof(si));
	printf("waitid P_PGID: %d", waitid(P_PGID, c, &si, WEXITED));
	printf(", the child %d, status %d\n", si.si_pid == c, si.si_status);

	/* A child that exec'd may no longer be moved. */
	fflush(stdout);
	c = fork();
	if (c == 0) {
		execl("/bin/sleep", "sleep", "0.3", (char *)NULL);
		_exit(127);
	}
	usleep(150000);
	say("setpgid of a child that exec'd", setpgid(c, c));
	waitpid(c, &st, 0);
	say("kill(0, 0)", kill(0, 0));
	return 0;
}
