/* lmm native test: waitid(2). A child that exits 7 is seen with WNOWAIT
 * (left waitable), then reaped by pid with its rusage (the raw system
 * call: glibc's waitid passes none); a child killed by SIGTERM is
 * CLD_KILLED; WNOHANG with a live child gives zeroes; bad arguments give
 * EINVAL and no children ECHILD. No pid is printed (lmm's and the host's
 * differ): only whether the reported one is right. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void show(const char *what, int r, const siginfo_t *si, pid_t want)
{
	printf("%s: ret=%d signo=%d code=%d status=%d pid_ok=%d\n", what, r,
	       si->si_signo, si->si_code, si->si_status, si->si_pid == want);
}

int main(void)
{
	siginfo_t si;
	struct rusage ru;
	int fds[2], r;
	char c;
	pid_t pid;

	pid = fork();
	if (pid == 0) {
		/* Some faults of its own for the rusage. */
		static char buf[64 << 10];
		memset(buf, 1, sizeof(buf));
		_exit(7);
	}
	memset(&si, 0xff, sizeof(si));
	r = waitid(P_ALL, 0, &si, WEXITED | WNOWAIT);
	show("nowait", r, &si, pid);
	memset(&si, 0xff, sizeof(si));
	memset(&ru, 0, sizeof(ru));
	r = syscall(SYS_waitid, P_PID, pid, &si, WEXITED, &ru);
	show("reaped", r, &si, pid);
	printf("rusage minflt>=16: %d\n", ru.ru_minflt >= 16);

	pid = fork();
	if (pid == 0) {
		kill(getpid(), SIGTERM);
		pause();
		_exit(1);
	}
	memset(&si, 0xff, sizeof(si));
	r = waitid(P_PID, pid, &si, WEXITED);
	show("killed", r, &si, pid);

	if (pipe(fds))
		return 1;
	pid = fork();
	if (pid == 0) {
		close(fds[1]);
		_exit(read(fds[0], &c, 1) == 0 ? 0 : 1);
	}
	close(fds[0]);
	memset(&si, 0xff, sizeof(si));
	r = waitid(P_ALL, 0, &si, WEXITED | WNOHANG);
	show("nohang", r, &si, 0);
	close(fds[1]);
	memset(&si, 0xff, sizeof(si));
	r = waitid(P_ALL, 0, &si, WEXITED);
	show("blocked", r, &si, pid);

	r = waitid(P_ALL, 0, &si, 0);
	printf("no options: ret=%d errno=%s\n", r, strerror(errno));
	r = waitid(P_PID, 0, &si, WEXITED);
	printf("pid 0: ret=%d errno=%s\n", r, strerror(errno));
	r = waitid(P_ALL, 0, &si, WEXITED);
	printf("no child: ret=%d errno=%s\n", r, strerror(errno));
	return 0;
}
