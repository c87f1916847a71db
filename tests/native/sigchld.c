/* lmm native test: what a SIGCHLD handler and a signal's receiver see of the
 * sender: si_code, si_pid (the sender's pid in the caller's pid space),
 * si_status, as the host prints them: lmm sends the SIGCHLD (its stubs get
 * none from the host) and turns the host pids of kill and tgkill into its
 * own; sigqueue carries what the sender wrote. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int nchld, code[8], status[8];
static volatile pid_t from[8];
static volatile int usr_code;
static volatile pid_t usr_pid;

static void on_chld(int sig, siginfo_t *si, void *uc)
{
	(void)sig; (void)uc;
	if (nchld < 8) {
		code[nchld] = si->si_code;
		from[nchld] = si->si_pid;
		status[nchld] = si->si_status;
	}
	nchld++;
}

static void on_usr(int sig, siginfo_t *si, void *uc)
{
	(void)sig; (void)uc;
	usr_code = si->si_code;
	usr_pid = si->si_pid;
}

int main(void)
{
	struct sigaction sa;
	sigset_t all, none;
	pid_t kids[3];

	memset(&sa, 0, sizeof sa);
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sa.sa_sigaction = on_chld;
	sigaction(SIGCHLD, &sa, NULL);
	sa.sa_sigaction = on_usr;
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&all);
	sigaddset(&all, SIGCHLD);
	sigaddset(&all, SIGUSR1);
	sigprocmask(SIG_BLOCK, &all, &none);

	/* A child that exits 3, one killed by SIGTERM, one that signals its
	 * parent before it exits 0: each reaped before the next starts. */
	for (int i = 0; i < 3; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			if (i == 1)
				pause();
			if (i == 2)
				kill(getppid(), SIGUSR1);
			_exit(i == 0 ? 3 : 0);
		}
		if (i == 1)
			kill(kids[i], SIGTERM);
		while (nchld <= i)
			sigsuspend(&none);
		waitpid(kids[i], NULL, 0);
	}
	for (int i = 0; i < 3 && i < nchld; i++)
		printf("SIGCHLD %d: code %d, from the child %s, status %d\n", i,
		       code[i], from[i] == kids[i] ? "yes" : "no", status[i]);
	printf("SIGCHLDs: %d\n", nchld);
	printf("SIGUSR1: code %d, from the child %s\n", usr_code,
	       usr_pid == kids[2] ? "yes" : "no");
	/* To itself: kill gives SI_USER, sigqueue SI_QUEUE, tgkill SI_TKILL,
	 * each with its own pid. */
	kill(getpid(), SIGUSR1);
	sigsuspend(&none);
	printf("kill self: code %d, from me %s\n", usr_code, usr_pid == getpid() ? "yes" : "no");
	sigqueue(getpid(), SIGUSR1, (union sigval){ .sival_int = 5 });
	sigsuspend(&none);
	printf("sigqueue self: code %d, from me %s\n", usr_code, usr_pid == getpid() ? "yes" : "no");
	syscall(SYS_tgkill, getpid(), gettid(), SIGUSR1);
	sigsuspend(&none);
	printf("tgkill self: code %d, from me %s\n", usr_code, usr_pid == getpid() ? "yes" : "no");
	/* Bad input: no siginfo, a pid nobody has, an SI_USER siginfo to
	 * another process (EPERM: only the kernel makes those). */
	{
		siginfo_t si;
		long r;

		r = syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR1, NULL);
		printf("rt_sigqueueinfo(NULL): %ld %s\n", r, strerror(errno));
		memset(&si, 0, sizeof si);
		si.si_signo = SIGUSR1;
		si.si_code = SI_QUEUE;
		r = syscall(SYS_rt_sigqueueinfo, 999999, SIGUSR1, &si);
		printf("rt_sigqueueinfo(no such pid): %ld %s\n", r, strerror(errno));
		kids[0] = fork();
		if (kids[0] == 0) {
			pause();
			_exit(0);
		}
		si.si_code = SI_USER;
		r = syscall(SYS_rt_tgsigqueueinfo, kids[0], kids[0], SIGUSR1, &si);
		printf("rt_tgsigqueueinfo(SI_USER to another): %ld %s\n", r, strerror(errno));
		kill(kids[0], SIGKILL);
		/* A zombie takes a signal (and drops it). */
		usleep(50000);
		r = kill(kids[0], 0);
		printf("kill of a zombie: %ld\n", r);
		waitpid(kids[0], NULL, 0);
	}
	/* SIGCHLD ignored: children are reaped as they exit, no zombie is
	 * left, and a wait blocks until the last is gone, then fails with
	 * ECHILD. */
	{
		long r;
		int st;

		signal(SIGCHLD, SIG_IGN);
		for (int i = 0; i < 3; i++) {
			kids[i] = fork();
			if (kids[i] == 0) {
				usleep(20000 * (i + 1));
				_exit(i);
			}
		}
		r = wait(&st);
		printf("SIG_IGN: wait %ld %s\n", r, strerror(errno));
		kids[0] = fork();
		if (kids[0] == 0)
			_exit(9);
		usleep(50000);
		r = kill(kids[0], 0);
		printf("SIG_IGN: the exited child is %s\n",
		       r == 0 ? "a zombie" : "gone");
		r = waitpid(kids[0], &st, 0);
		printf("SIG_IGN: waitpid %ld %s\n", r, strerror(errno));
	}
	/* SA_NOCLDWAIT with a handler: no zombie either, but the SIGCHLD
	 * comes. */
	{
		struct sigaction sa = { .sa_sigaction = on_chld,
					.sa_flags = SA_SIGINFO | SA_NOCLDWAIT };
		int before = nchld, st;
		long r;

		sigaction(SIGCHLD, &sa, NULL);
		kids[0] = fork();
		if (kids[0] == 0)
			_exit(5);
		while (nchld == before)
			sigsuspend(&none);
		r = wait(&st);
		printf("SA_NOCLDWAIT: wait %ld %s, SIGCHLD status %d\n", r,
		       strerror(errno), status[before < 8 ? before : 7]);
	}
	return 0;
}
