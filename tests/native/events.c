/* lmm native test: the calls of event-driven and threaded programs, run by
 * the host after lmm faulted in what each reads and writes. Every buffer
 * the kernel touches lies on a page the stub does not have at the call:
 * either never touched (a fresh mapping the kernel writes into) or made
 * copy-on-write by a fork just before (lmm unmaps those from the stub), so
 * a buffer missing from lmm's table would be the host's EFAULT. Prints
 * what the host prints.
 *
 *   poll, ppoll, select, pselect6, epoll_create1/ctl/wait/pwait/pwait2,
 *   eventfd2, timerfd_create/settime/gettime, signalfd4, pipe2,
 *   socketpair, sendto/recvfrom, sendmsg/recvmsg, getsockname,
 *   getsockopt, ioctl FIONBIO/FIONREAD, close_range (the descriptors
 *   lmm keeps survive it), a thread waiting in epoll_wait without a
 *   timeout while the main thread forks (lmm stops it meanwhile: the wait
 *   must go on, not fail with EINTR), and one in epoll_wait,
 *   epoll_pwait2 and sigtimedwait with a timeout while the main thread
 *   forks (each must time out after its whole time, as on Linux). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pages.h"

static int waiter_efd, waiter_ep;

/* Waits without a timeout for the main thread's eventfd write. */
static void *waiter(void *arg)
{
	struct epoll_event *ev = fresh(4096);
	int n = epoll_wait(waiter_ep, ev, 1, -1);

	if (n < 0)
		printf("waiter: %s\n", strerror(errno));
	else
		printf("waiter: %d event, data %llu\n", n,
		       (unsigned long long)ev[0].data.u64);
	return arg;
}

static volatile int timed_done;
static int timed_efd, timed_ep;

/* Milliseconds since *t0. */
static long ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 +
	       (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Three timed waits of 200 ms that nothing ends but their timeout. */
static void *timed_waiter(void *arg)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event *ev = fresh(4096);
	struct timespec *ts = fresh(4096), t0;
	sigset_t set;
	long r;

	check("epoll_create1", ep);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = epoll_wait(ep, ev, 1, 200);
	printf("timed epoll_wait: %ld, whole time %d\n", r,
	       ms_since(&t0) >= 200);
	ts->tv_sec = 0;
	ts->tv_nsec = 200000000;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = syscall(SYS_epoll_pwait2, ep, ev, 1, ts, NULL, 8);
	printf("timed epoll_pwait2: %ld, whole time %d, timespec kept %ld\n",
	       r, ms_since(&t0) >= 200, ts->tv_nsec);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = sigtimedwait(&set, NULL, ts);
	printf("timed sigtimedwait: %ld %s, whole time %d\n", r,
	       r < 0 ? strerror(errno) : "", ms_since(&t0) >= 200);
	timed_done = 1;
	/* And one that an event ends, after the main thread's forks. */
	r = epoll_wait(timed_ep, ev, 1, 10000);
	printf("timed epoll_wait with an event: %ld, data %llu\n", r,
	       (unsigned long long)ev[0].data.u64);
	return arg;
}

int main(void)
{
	int p[2], sv[2];
	char *page = fresh(3 * 4096);
	/* Two pollfds across a page boundary. */
	struct pollfd *pfd = (struct pollfd *)(page + 4096 - 8);
	uint64_t one = 1;
	long r;
	int n;

	check("pipe2", pipe2(p, O_CLOEXEC));
	check("write", write(p[1], "x", 1));
	pfd[0] = (struct pollfd){ .fd = p[0], .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = p[1], .events = POLLOUT };
	cow();
	r = poll(pfd, 2, 0);
	printf("poll: %ld, revents %x %x\n", r, pfd[0].revents, pfd[1].revents);

	{
		struct timespec *ts = fresh(4096);
		sigset_t *mask = fresh(4096);

		ts->tv_sec = 0;
		ts->tv_nsec = 0;
		sigemptyset(mask);
		pfd[0].revents = pfd[1].revents = 0;
		cow();
		r = ppoll(pfd, 2, ts, mask);
		printf("ppoll: %ld, revents %x %x\n", r, pfd[0].revents,
		       pfd[1].revents);
	}

	{
		fd_set *r = fresh(4096), *w = fresh(4096);
		struct timeval *tv = fresh(4096);
		struct timespec *ts = fresh(4096);

		FD_ZERO(r);
		FD_ZERO(w);
		FD_SET(p[0], r);
		FD_SET(p[1], w);
		tv->tv_sec = 0;
		tv->tv_usec = 0;
		cow();
		n = select(p[1] + 1, r, w, NULL, tv);
		printf("select: %d, read %d write %d\n", n, FD_ISSET(p[0], r),
		       FD_ISSET(p[1], w));
		FD_ZERO(r);
		FD_SET(p[0], r);
		ts->tv_sec = 0;
		ts->tv_nsec = 0;
		cow();
		n = pselect(p[0] + 1, r, NULL, NULL, ts, NULL);
		printf("pselect6: %d, read %d\n", n, FD_ISSET(p[0], r));
	}

	{
		int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		int ep = epoll_create1(EPOLL_CLOEXEC);
		struct epoll_event *ev = fresh(4096);
		struct epoll_event *out;
		struct timespec *ts = fresh(4096);
		sigset_t *mask = fresh(4096);

		check("eventfd", efd);
		check("epoll_create1", ep);
		ev->events = EPOLLIN;
		ev->data.u64 = 42;
		cow();
		check("epoll_ctl", epoll_ctl(ep, EPOLL_CTL_ADD, efd, ev));
		check("write", write(efd, &one, 8));
		/* Events straddling a page boundary of untouched pages. */
		out = (struct epoll_event *)((char *)fresh(8192) + 4096 - 6);
		r = epoll_wait(ep, out, 2, 0);
		printf("epoll_wait: %ld, events %x data %llu\n", r, out[0].events,
		       (unsigned long long)out[0].data.u64);
		sigemptyset(mask);
		out = fresh(4096);
		r = epoll_pwait(ep, out, 8, 0, mask);
		printf("epoll_pwait: %ld, data %llu\n", r,
		       (unsigned long long)out[0].data.u64);
		ts->tv_sec = 0;
		ts->tv_nsec = 0;
		out = fresh(4096);
		r = syscall(SYS_epoll_pwait2, ep, out, 8, ts, NULL, 8);
		printf("epoll_pwait2: %ld, data %llu\n", r,
		       (unsigned long long)out[0].data.u64);
		r = epoll_wait(ep, out, 0, 0);
		printf("epoll_wait(maxevents 0): %ld %s\n", r, strerror(errno));
		check("epoll_ctl del", epoll_ctl(ep, EPOLL_CTL_DEL, efd, NULL));
		printf("after EPOLL_CTL_DEL: %d\n", epoll_wait(ep, out, 8, 0));
	}

	{
		int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
		struct itimerspec *it = fresh(4096), *old = fresh(4096),
				  *cur = fresh(4096);
		uint64_t *cnt = fresh(4096);
		struct pollfd *tp = fresh(4096);

		check("timerfd_create", tfd);
		memset(it, 0, sizeof(*it));
		it->it_value.tv_nsec = 1000000;
		cow();
		check("timerfd_settime", timerfd_settime(tfd, 0, it, old));
		tp->fd = tfd;
		tp->events = POLLIN;
		r = poll(tp, 1, -1);
		printf("timerfd: poll %ld, old %ld", r, (long)old->it_value.tv_nsec);
		r = read(tfd, cnt, 8);
		printf(", read %ld: %llu", r, (unsigned long long)*cnt);
		check("timerfd_gettime", timerfd_gettime(tfd, cur));
		printf(", now %ld\n", (long)cur->it_value.tv_nsec);
	}

	{
		sigset_t *mask = fresh(4096);
		struct signalfd_siginfo *si = fresh(4096);
		int sfd;

		sigemptyset(mask);
		sigaddset(mask, SIGUSR1);
		check("sigprocmask", sigprocmask(SIG_BLOCK, mask, NULL));
		cow();
		sfd = signalfd(-1, mask, SFD_CLOEXEC);
		check("signalfd", sfd);
		check("kill", kill(getpid(), SIGUSR1));
		r = read(sfd, si, sizeof(*si));
		printf("signalfd: read %ld, signo %u\n", r, si->ssi_signo);
	}

	{
		int *fds = fresh(4096);
		char *buf = fresh(4096);
		struct sockaddr_storage *sa = fresh(4096);
		socklen_t *len = fresh(4096);
		struct msghdr *msg = fresh(4096);
		struct iovec *iov = fresh(4096);
		char *data = fresh(4096);
		int *val = fresh(4096);
		int on = 1;

		check("socketpair", socketpair(AF_UNIX, SOCK_DGRAM, 0, fds));
		sv[0] = fds[0];
		sv[1] = fds[1];
		check("sendto", sendto(sv[0], "ping", 4, 0, NULL, 0));
		*len = sizeof(*sa);
		cow();
		r = recvfrom(sv[1], buf, 4096, 0, (struct sockaddr *)sa, len);
		printf("recvfrom: %ld %.4s, addrlen %u\n", r, buf, *len);
		memcpy(data, "pong", 4);
		iov->iov_base = data;
		iov->iov_len = 4;
		memset(msg, 0, sizeof(*msg));
		msg->msg_iov = iov;
		msg->msg_iovlen = 1;
		cow();
		check("sendmsg", sendmsg(sv[1], msg, 0));
		iov->iov_base = fresh(4096);
		iov->iov_len = 64;
		msg->msg_name = fresh(4096);
		msg->msg_namelen = sizeof(struct sockaddr_storage);
		cow();
		r = recvmsg(sv[0], msg, 0);
		printf("recvmsg: %ld %.4s, namelen %u\n", r,
		       (char *)iov->iov_base, msg->msg_namelen);
		sa = fresh(4096);
		*len = sizeof(*sa);
		cow();
		check("getsockname", getsockname(sv[0], (struct sockaddr *)sa, len));
		printf("getsockname: family %d, len %u\n", sa->ss_family, *len);
		*len = sizeof(int);
		cow();
		check("getsockopt", getsockopt(sv[0], SOL_SOCKET, SO_TYPE, val, len));
		printf("getsockopt SO_TYPE: %d, len %u\n", *val, *len);
		check("ioctl FIONBIO", ioctl(sv[0], FIONBIO, &on));
		check("sendto", sendto(sv[1], "abc", 3, 0, NULL, 0));
		val = fresh(4096);
		check("ioctl FIONREAD", ioctl(sv[0], FIONREAD, val));
		printf("FIONREAD: %d\n", *val);
	}

	{
		pthread_t t;
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 7 };

		waiter_efd = eventfd(0, EFD_CLOEXEC);
		waiter_ep = epoll_create1(EPOLL_CLOEXEC);
		check("epoll_ctl", epoll_ctl(waiter_ep, EPOLL_CTL_ADD, waiter_efd, &ev));
		if (pthread_create(&t, NULL, waiter, NULL))
			return 2;
		/* Forks while the waiter sleeps in epoll_wait: lmm stops it
		 * for each. */
		for (int i = 0; i < 5; i++) {
			usleep(20000);
			cow();
		}
		check("write", write(waiter_efd, &one, 8));
		pthread_join(t, NULL);
		/* Forks while the other waits with timeouts. */
		timed_efd = eventfd(0, EFD_CLOEXEC);
		timed_ep = epoll_create1(EPOLL_CLOEXEC);
		ev.data.u64 = 9;
		check("epoll_ctl", epoll_ctl(timed_ep, EPOLL_CTL_ADD, timed_efd, &ev));
		if (pthread_create(&t, NULL, timed_waiter, NULL))
			return 2;
		while (!timed_done) {
			usleep(20000);
			cow();
		}
		for (int i = 0; i < 3; i++) {
			usleep(20000);
			cow();
		}
		check("write", write(timed_efd, &one, 8));
		pthread_join(t, NULL);
	}

	/* Every descriptor from 3 up, lmm's RAM memfd in the stub aside. */
	check("close_range", syscall(SYS_close_range, 3, ~0U, 0));
	n = fcntl(p[0], F_GETFD);
	printf("close_range: pipe %d %s\n", n, strerror(errno));
	{
		/* New memory is still mirrored from lmm's RAM. */
		char *big = fresh(1 << 20);
		long sum = 0;

		memset(big, 3, 1 << 20);
		for (int i = 0; i < 1 << 20; i += 4096)
			sum += big[i];
		printf("after close_range: %ld\n", sum);
	}
	return 0;
}
