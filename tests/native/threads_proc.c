/* lmm native test: a threaded program's view of /proc/PID/task/ and
 * /proc/thread-self/. Two threads fault 100 and 200 pages of their own;
 * then the main thread lists /proc/self/task (opendir + readdir), reads
 * each thread's task/TID/stat (its tid as the pid, its own minflt, -1 as
 * a thread's exit signal, num_threads), status (Tgid, Pid) and maps (the
 * process's), names a thread through task/TID/comm (pthread_setname_np),
 * and each thread reads /proc/thread-self. Prints what the host prints. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static pthread_barrier_t ready, done;
static pid_t tids[3];
static int self_ok[3], link_ok[3];
static char buf[1 << 16], buf2[1 << 16];

/* The whole of file `path` into `into` (read only, no allocation). */
static long slurp(const char *path, char *into)
{
	int fd = open(path, O_RDONLY);
	long n = 0, r;

	if (fd < 0)
		return -errno;
	while ((r = read(fd, into + n, (1 << 16) - 1 - n)) > 0)
		n += r;
	into[n] = 0;
	close(fd);
	return n;
}

/* Field `i` of a stat line after "pid (comm)" (0: state). */
static long field(const char *stat, int i)
{
	const char *p = strrchr(stat, ')') + 2;

	while (i-- > 0)
		p = strchr(p, ' ') + 1;
	return atol(p);
}

static void *worker(void *arg)
{
	long i = (long)arg, pages = 100 * i;
	char *m = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char path[64], link[64];
	long n;

	tids[i] = syscall(SYS_gettid);
	for (long p = 0; p < pages; p++)
		m[p * 4096] = 1;
	pthread_barrier_wait(&ready);
	pthread_barrier_wait(&done);
	/* Each thread's own view. */
	slurp("/proc/thread-self/stat", buf2 + 32768 * (i - 1));
	n = readlink("/proc/thread-self", link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	snprintf(path, sizeof(path), "%d/task/%d", getpid(), tids[i]);
	self_ok[i] = atol(buf2 + 32768 * (i - 1)) == tids[i];
	link_ok[i] = strcmp(link, path) == 0;
	return NULL;
}

int main(void)
{
	pthread_t t[3];
	char path[64], name[16];
	int listed = 0, entries = 0;
	DIR *d;
	struct dirent *e;

	tids[0] = getpid();
	pthread_barrier_init(&ready, NULL, 3);
	pthread_barrier_init(&done, NULL, 3);
	for (long i = 1; i <= 2; i++)
		if (pthread_create(&t[i], NULL, worker, (void *)i))
			return 2;
	pthread_barrier_wait(&ready);

	d = opendir("/proc/self/task");
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		entries++;
		for (int i = 0; i < 3; i++)
			listed += atoi(e->d_name) == tids[i];
	}
	closedir(d);
	printf("task entries %d, the three tids %d\n", entries, listed);

	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tids[i]);
		slurp(path, buf);
		printf("task %d stat: pid is tid %d, minflt %s, exit_signal %ld, "
		       "num_threads %ld\n", i, atol(buf) == tids[i],
		       i == 0 ? "-" :
		       (field(buf, 7) >= 100 * i && field(buf, 7) < 100 * i + 40) ?
		       "its pages" : "other",
		       field(buf, 35), field(buf, 17));
		snprintf(path, sizeof(path), "/proc/self/task/%d/status", tids[i]);
		slurp(path, buf);
		snprintf(name, sizeof(name), "\nPid:\t%d\n", tids[i]);
		printf("task %d status: Pid %d", i, strstr(buf, name) != NULL);
		snprintf(name, sizeof(name), "Tgid:\t%d\n", tids[0]);
		printf(", Tgid %d\n", strstr(buf, name) != NULL);
	}
	snprintf(path, sizeof(path), "/proc/self/task/%d/maps", tids[2]);
	slurp(path, buf);
	slurp("/proc/self/maps", buf2);
	printf("task maps are the process's: %d\n", strcmp(buf, buf2) == 0);
	printf("a tid of none: %ld\n", slurp("/proc/self/task/999999/stat", buf));

	printf("setname: %d", pthread_setname_np(t[1], "worker-1"));
	pthread_getname_np(t[1], name, sizeof(name));
	printf(", getname: %s\n", name);
	fflush(stdout);

	pthread_barrier_wait(&done);
	for (int i = 1; i <= 2; i++) {
		pthread_join(t[i], NULL);
		printf("thread %d: thread-self/stat is its own %d, link %d\n", i,
		       self_ok[i], link_ok[i]);
	}
	return 0;
}
