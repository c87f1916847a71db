/* lmm native test: POSIX timers and sendmmsg/recvmmsg, run by the host
 * after lmm faulted in what each reads and writes. As in events.c, every
 * buffer the kernel touches lies on a page the stub does not have at the
 * call (never touched, or made copy-on-write by a fork just before), so a
 * buffer missing from lmm's table would be the host's EFAULT. Prints what
 * the host prints.
 *
 *   timer_create (SIGEV_SIGNAL, each tick with the timer's siginfo while
 *   the program forks, glibc's SIGEV_THREAD, SIGEV_THREAD_ID to a
 *   named thread, a tid that is no thread of the process), timer_settime
 *   and its old value, timer_gettime, timer_getoverrun, timer_delete;
 *   sendmmsg/recvmmsg with names, iovecs and SCM_RIGHTS across pages,
 *   msg_len, a bad element, and recvmmsg's timeout; a timer deleted by
 *   exec ("exec ID" as arguments: the new image's look at it). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <stddef.h>
/* The tid of SIGEV_THREAD_ID (glibc names it only as a union member). */
_Static_assert(offsetof(struct sigevent, _sigev_un._tid) == 16, "sigev tid");

#include "pages.h"

/* The kernel's timer calls, on kernel timer ids (an int). */
static long k_create(clockid_t clk, struct sigevent *sev, int *id)
{
	return syscall(SYS_timer_create, clk, sev, id);
}

static long k_settime(int id, const struct itimerspec *new,
		      struct itimerspec *old)
{
	return syscall(SYS_timer_settime, id, 0, new, old);
}

static const char *err(long r)
{
	return r < 0 ? strerror(errno) : "ok";
}

static volatile sig_atomic_t ticks, other, timer;

/* Counts the timer's ticks, and those whose siginfo is not the timer's. */
static void tick(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	ticks++;
	other += si->si_code != SI_TIMER || si->si_value.sival_int != 42 ||
		 si->si_timerid != timer;
}

/* SIGEV_SIGNAL: a periodic timer counted by a handler while the program
 * forks (lmm runs calls in the stub meanwhile: each tick must come with
 * the timer's siginfo all the same), its old value, timer_gettime, then timer_getoverrun of a blocked signal's expiries,
 * timer_delete and EINVAL after. */
static void signal_timer(void)
{
	struct sigaction sa = { .sa_sigaction = tick, .sa_flags = SA_SIGINFO };
	struct sigevent *sev = fresh(4096);
	struct itimerspec *its = fresh(4096), *old = fresh(4096);
	int *id = fresh(4096);
	long r;

	check("sigaction", sigaction(SIGUSR1, &sa, NULL));
	sev->sigev_notify = SIGEV_SIGNAL;
	sev->sigev_signo = SIGUSR1;
	sev->sigev_value.sival_int = 42;
	cow();
	r = k_create(CLOCK_MONOTONIC, sev, id);
	printf("timer_create SIGEV_SIGNAL: %s, id %d\n", err(r), *id);
	timer = *id;

	its->it_value.tv_nsec = 1000000;
	its->it_interval.tv_nsec = 1000000;
	memset(old, 0xff, sizeof(*old));
	cow();
	check("timer_settime", k_settime(*id, its, old));
	printf("timer_settime old: %ld.%09ld %ld.%09ld\n",
	       old->it_value.tv_sec, old->it_value.tv_nsec,
	       old->it_interval.tv_sec, old->it_interval.tv_nsec);
	while (ticks < 20)
		cow();

	old = fresh(4096);
	cow();
	check("timer_gettime", syscall(SYS_timer_gettime, *id, old));
	printf("timer_gettime: interval %ld.%09ld, value in (0, 1ms] %d\n",
	       old->it_interval.tv_sec, old->it_interval.tv_nsec,
	       old->it_value.tv_sec == 0 && old->it_value.tv_nsec > 0 &&
		       old->it_value.tv_nsec <= 1000000);
	its = fresh(4096);
	old = fresh(4096);
	cow();
	check("timer_settime", k_settime(*id, its, old));
	printf("disarmed, old interval %ld.%09ld\n", old->it_interval.tv_sec,
	       old->it_interval.tv_nsec);
	printf("handler: ticks >= 20 %d, each with SI_TIMER, value 42 and the id %d\n",
	       ticks >= 20, !other);
	old = fresh(4096);
	cow();
	check("timer_gettime", syscall(SYS_timer_gettime, *id, old));
	printf("timer_gettime after: %ld.%09ld %ld.%09ld\n",
	       old->it_value.tv_sec, old->it_value.tv_nsec,
	       old->it_interval.tv_sec, old->it_interval.tv_nsec);
	check("timer_delete", syscall(SYS_timer_delete, *id));

	/* Overruns: SIGUSR2 blocked (for good: a deleted timer's signal is
	 * dropped, but no handler is needed) while a 1 ms timer runs 30 ms. */
	{
		sigset_t set;
		siginfo_t *si = fresh(4096);
		struct timespec *ts = fresh(4096);
		int *id2 = fresh(4096);
		long over;

		sigemptyset(&set);
		sigaddset(&set, SIGUSR2);
		sigprocmask(SIG_BLOCK, &set, NULL);
		sev = fresh(4096);
		sev->sigev_notify = SIGEV_SIGNAL;
		sev->sigev_signo = SIGUSR2;
		its = fresh(4096);
		its->it_value.tv_nsec = 1000000;
		its->it_interval.tv_nsec = 1000000;
		cow();
		r = k_create(CLOCK_MONOTONIC, sev, id2);
		printf("timer_create 2: %s, id %d\n", err(r), *id2);
		check("timer_settime", k_settime(*id2, its, NULL));
		usleep(30000);
		ts->tv_sec = 5;
		cow();
		r = sigtimedwait(&set, si, ts);
		over = syscall(SYS_timer_getoverrun, *id2);
		printf("sigtimedwait: %ld, overrun >= 10 %d, timer_getoverrun is si_overrun %d\n",
		       r, si->si_overrun >= 10, over == si->si_overrun);
		r = syscall(SYS_timer_delete, *id2);
		printf("timer_delete: %s\n", err(r));
		r = syscall(SYS_timer_getoverrun, *id2);
		printf("timer_getoverrun after delete: %ld %s\n", r, err(r));
		r = syscall(SYS_timer_delete, *id2);
		printf("timer_delete again: %ld %s\n", r, err(r));
		r = syscall(SYS_timer_gettime, *id2, fresh(4096));
		printf("timer_gettime after delete: %ld %s\n", r, err(r));
	}
}

static sem_t notified;
static volatile pid_t notify_tid;
static volatile int notify_value;

static void notify(union sigval v)
{
	notify_value = v.sival_int;
	notify_tid = gettid();
	sem_post(&notified);
}

/* glibc's SIGEV_THREAD: its helper thread is named by SIGEV_THREAD_ID. */
static void thread_timer(void)
{
	struct sigevent *sev = fresh(4096);
	struct itimerspec *its = fresh(4096);
	timer_t *t = fresh(4096);
	int r;

	sem_init(&notified, 0, 0);
	sev->sigev_notify = SIGEV_THREAD;
	sev->sigev_notify_function = notify;
	sev->sigev_value.sival_int = 7;
	its->it_value.tv_nsec = 1000000;
	cow();
	r = timer_create(CLOCK_REALTIME, sev, t);
	printf("timer_create SIGEV_THREAD: %s\n", r ? strerror(errno) : "ok");
	cow();
	r = timer_settime(*t, 0, its, NULL);
	printf("timer_settime: %s\n", r ? strerror(errno) : "ok");
	sem_wait(&notified);
	printf("SIGEV_THREAD notified: value %d, not in main %d\n",
	       notify_value, notify_tid != gettid());
	printf("timer_delete: %d\n", timer_delete(*t));
}

static volatile pid_t target_tid, got_tid;
static pthread_barrier_t ready;

static void took(int sig)
{
	(void)sig;
	got_tid = gettid();
}

/* Waits, SIGRTMIN+3 unblocked, for the timer naming this thread. */
static void *target(void *arg)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN + 3);
	target_tid = gettid();
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	pthread_barrier_wait(&ready);
	while (!got_tid)
		pause();
	return arg;
}

/* SIGEV_THREAD_ID naming one thread (the main thread has the signal
 * blocked), then tids that are no thread of the process: EINVAL. */
static void thread_id_timer(void)
{
	struct sigaction sa = { .sa_handler = took };
	struct sigevent *sev = fresh(4096);
	struct itimerspec *its = fresh(4096);
	int *id = fresh(4096);
	sigset_t set;
	pthread_t t;
	pid_t child;
	long r;

	sigaction(SIGRTMIN + 3, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN + 3);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_barrier_init(&ready, NULL, 2);
	if (pthread_create(&t, NULL, target, NULL))
		exit(2);
	pthread_barrier_wait(&ready);
	sev->sigev_notify = SIGEV_THREAD_ID;
	sev->sigev_signo = SIGRTMIN + 3;
	sev->_sigev_un._tid = target_tid;
	its->it_value.tv_nsec = 2000000;
	cow();
	r = k_create(CLOCK_MONOTONIC, sev, id);
	printf("timer_create SIGEV_THREAD_ID: %s, id %d, sigevent kept %d\n",
	       err(r), *id, sev->_sigev_un._tid == target_tid &&
				     sev->sigev_notify == SIGEV_THREAD_ID);
	check("timer_settime", k_settime(*id, its, NULL));
	pthread_join(t, NULL);
	printf("taken by the named thread %d, not main %d\n",
	       got_tid == target_tid, got_tid != gettid());
	check("timer_delete", syscall(SYS_timer_delete, *id));

	/* A child process's pid, 0, -1: no thread of ours. */
	child = fork();
	if (child == 0) {
		pause();
		_exit(0);
	}
	for (int i = 0; i < 3; i++) {
		pid_t bad[] = { child, 0, -1 };

		sev = fresh(4096);
		id = fresh(4096);
		sev->sigev_notify = SIGEV_THREAD_ID;
		sev->sigev_signo = SIGRTMIN + 3;
		sev->_sigev_un._tid = bad[i];
		cow();
		r = k_create(CLOCK_MONOTONIC, sev, id);
		printf("SIGEV_THREAD_ID to %s: %ld %s, id untouched %d\n",
		       (const char *[]){ "a child", "0", "-1" }[i], r, err(r),
		       *id == 0);
	}
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
}

/* An AF_UNIX datagram socket pair, each end bound to an autobind
 * (abstract, 5 hex digits) name, so that names go both ways. */
static void bound_pair(int sv[2])
{
	sa_family_t fam = AF_UNIX;

	check("socketpair", socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
	check("bind", bind(sv[0], (struct sockaddr *)&fam, sizeof(fam)));
	check("bind", bind(sv[1], (struct sockaddr *)&fam, sizeof(fam)));
}

static void mmsg(void)
{
	int sv[2], p[2];
	struct sockaddr_un *to = fresh(4096), from;
	socklen_t len = sizeof(*to), fromlen = sizeof(from);
	/* Three mmsghdrs across a page boundary, each message's parts on
	 * pages of their own or across boundaries too. */
	char *vpage = fresh(8192);
	struct mmsghdr *v = (struct mmsghdr *)(vpage + 4096 - 64);
	struct iovec *iov = (struct iovec *)((char *)fresh(8192) + 4096 - 16);
	char *data = (char *)fresh(8192) + 4096 - 6;
	char *ctl = (char *)fresh(8192) + 4096 - 8;
	struct cmsghdr *cm = (struct cmsghdr *)ctl;
	long r;

	bound_pair(sv);
	check("pipe", pipe(p));
	check("getsockname", getsockname(sv[0], (struct sockaddr *)to, &len));
	check("getsockname", getsockname(sv[1], (struct sockaddr *)&from, &fromlen));
	memcpy(data, "hello world", 11);
	iov[0] = (struct iovec){ data, 6 };
	iov[1] = (struct iovec){ data + 6, 5 };
	iov[2] = (struct iovec){ data, 5 };
	iov[3] = (struct iovec){ data + 6, 5 };
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	memcpy(CMSG_DATA(cm), &p[1], sizeof(int));
	for (int i = 0; i < 3; i++) {
		v[i].msg_hdr.msg_name = to;
		v[i].msg_hdr.msg_namelen = len;
		v[i].msg_len = 99;
	}
	v[0].msg_hdr.msg_iov = iov;
	v[0].msg_hdr.msg_iovlen = 2;
	v[1].msg_hdr.msg_iov = iov + 2;
	v[1].msg_hdr.msg_iovlen = 1;
	v[1].msg_hdr.msg_control = ctl;
	v[1].msg_hdr.msg_controllen = CMSG_SPACE(sizeof(int));
	v[2].msg_hdr.msg_iov = iov + 3;
	v[2].msg_hdr.msg_iovlen = 1;
	cow();
	r = sendmmsg(sv[1], v, 3, 0);
	printf("sendmmsg: %ld, msg_len %u %u %u\n", r, v[0].msg_len,
	       v[1].msg_len, v[2].msg_len);

	{
		char *rpage = fresh(8192);
		struct mmsghdr *w = (struct mmsghdr *)(rpage + 4096 - 128);
		struct iovec *riov = (struct iovec *)((char *)fresh(8192) + 4096 - 24);
		char *buf = (char *)fresh(8192) + 4096 - 10;
		char *rctl = (char *)fresh(8192) + 4096 - 12;
		char *names = (char *)fresh(8192) + 4096 - 120;
		struct timespec *ts = fresh(4096);
		struct cmsghdr *rcm;
		int fd;

		for (int i = 0; i < 4; i++) {
			riov[i] = (struct iovec){ buf + 16 * i, 16 };
			w[i].msg_hdr.msg_iov = &riov[i];
			w[i].msg_hdr.msg_iovlen = 1;
			w[i].msg_hdr.msg_name = names + 110 * i;
			w[i].msg_hdr.msg_namelen = 110;
		}
		w[1].msg_hdr.msg_control = rctl;
		w[1].msg_hdr.msg_controllen = CMSG_SPACE(sizeof(int));
		ts->tv_sec = 10;
		cow();
		/* Three queued, four asked for: MSG_WAITFORONE returns three. */
		r = recvmmsg(sv[0], w, 4, MSG_WAITFORONE, ts);
		printf("recvmmsg: %ld, msg_len %u %u %u, timeout left < 10s %d\n",
		       r, w[0].msg_len, w[1].msg_len, w[2].msg_len,
		       ts->tv_sec < 10);
		printf("data: %.11s|%.5s|%.5s\n", buf, buf + 16, buf + 32);
		for (int i = 0; i < 3; i++)
			printf("name %d: len %u, the sender's %d\n", i,
			       w[i].msg_hdr.msg_namelen,
			       w[i].msg_hdr.msg_namelen == fromlen &&
				       !memcmp(names + 110 * i, &from, fromlen));
		rcm = CMSG_FIRSTHDR(&w[1].msg_hdr);
		printf("control: len %zu, SCM_RIGHTS %d\n",
		       (size_t)w[1].msg_hdr.msg_controllen,
		       rcm && rcm->cmsg_type == SCM_RIGHTS);
		if (rcm) {
			char c = 0;

			memcpy(&fd, CMSG_DATA(rcm), sizeof(int));
			check("write", write(fd, "!", 1));
			check("read", read(p[0], &c, 1));
			printf("the passed descriptor writes the pipe: %c\n", c);
			close(fd);
		}
	}

	/* A zero timeout: one message, then the time is up. */
	{
		struct mmsghdr *w = fresh(4096);
		char *buf = fresh(4096);
		struct iovec *riov = fresh(4096);
		struct timespec *ts = fresh(4096);

		check("send", send(sv[1], "ab", 2, 0));
		check("send", send(sv[1], "cd", 2, 0));
		for (int i = 0; i < 2; i++) {
			riov[i] = (struct iovec){ buf + 8 * i, 8 };
			w[i].msg_hdr.msg_iov = &riov[i];
			w[i].msg_hdr.msg_iovlen = 1;
		}
		cow();
		r = recvmmsg(sv[0], w, 2, 0, ts);
		printf("recvmmsg, zero timeout: %ld %.2s, timeout %ld.%09ld\n",
		       r, buf, ts->tv_sec, ts->tv_nsec);
		cow();
		r = recvmmsg(sv[0], w, 2, MSG_DONTWAIT, NULL);
		printf("recvmmsg, the rest: %ld %.2s\n", r, buf);
		r = recvmmsg(sv[0], w, 2, MSG_DONTWAIT, NULL);
		printf("recvmmsg, none: %ld %s\n", r, err(r));
	}

	/* A bad second element: one sent; a bad first: EFAULT. */
	{
		struct mmsghdr *w = fresh(4096);
		struct iovec *good = fresh(4096);
		char *gone = fresh(4096);

		munmap(gone, 4096);
		*good = (struct iovec){ "xy", 2 };
		w[0].msg_hdr.msg_iov = good;
		w[0].msg_hdr.msg_iovlen = 1;
		w[1].msg_hdr.msg_iov = (struct iovec *)gone;
		w[1].msg_hdr.msg_iovlen = 1;
		w[2] = w[0];
		cow();
		r = sendmmsg(sv[1], w, 3, 0);
		printf("sendmmsg, bad second: %ld %s, msg_len %u\n", r, err(r),
		       w[0].msg_len);
		r = sendmmsg(sv[1], w + 1, 2, 0);
		printf("sendmmsg, bad first: %ld %s\n", r, err(r));
		r = sendmmsg(sv[1], (struct mmsghdr *)gone, 1, 0);
		printf("sendmmsg, bad vector: %ld %s\n", r, err(r));
		r = sendmmsg(sv[1], (struct mmsghdr *)gone, 0, 0);
		printf("sendmmsg, none: %ld %s\n", r, err(r));
	}
}

/* The new image: the old image's timer `id` is gone (exec deleted it). */
static int after_exec(const char *id)
{
	struct itimerspec *cur = fresh(4096);
	long r = syscall(SYS_timer_gettime, atoi(id), cur);

	printf("after exec, the old timer: %ld %s\n", r, err(r));
	return 0;
}

int main(int argc, char **argv)
{
	int id;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 2 && !strcmp(argv[1], "exec"))
		return after_exec(argv[2]);
	signal_timer();
	thread_timer();
	thread_id_timer();
	mmsg();

	/* A timer left armed across exec: the new image must not get it. */
	{
		struct sigevent sev = { .sigev_notify = SIGEV_NONE };
		struct itimerspec its = { .it_value.tv_sec = 100 };

		check("timer_create", k_create(CLOCK_MONOTONIC, &sev, &id));
		char arg[16];

		check("timer_settime", k_settime(id, &its, NULL));
		snprintf(arg, sizeof(arg), "%d", id);
		execl(argv[0], argv[0], "exec", arg, (char *)NULL);
		printf("execl: %s\n", strerror(errno));
	}
	return 1;
}
