/* lmm native test: threads. Four pthreads each write a buffer of their
 * own (MIB MiB, 4 by default) and sum it, and add to a shared counter
 * under a mutex; while all five threads are alive the program reads its
 * own /proc/self/status and prints the Threads: line; the threads are
 * joined and the sums printed. The output does not depend on timing.
 * `threads MIB main-exits`: the main thread leaves with pthread_exit
 * while the others run, and thread 0 joins the others and prints. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NTHREADS 4
#define ADDS 10000

struct job {
	int id;
	unsigned long sum;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t alive, done;
static unsigned long counter;
static size_t mib = 4;
static pthread_t t[NTHREADS];
static struct job *jobs_of_main;
static int main_exits;

static void report(int from)
{
	for (int i = from; i < NTHREADS; i++) {
		void *ret;
		pthread_join(t[i], &ret);
		if (ret != &jobs_of_main[i]) {
			printf("thread %d failed\n", i);
			exit(3);
		}
	}
	for (int i = 0; i < NTHREADS; i++)
		printf("thread %d: sum %lu\n", i, jobs_of_main[i].sum);
	printf("counter %lu\n", counter);
}

static void *work(void *arg)
{
	struct job *j = arg;
	size_t len = mib << 20;
	unsigned char *buf = malloc(len);

	if (!buf)
		return NULL;
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(i * (j->id + 1) + j->id);
	for (size_t i = 0; i < len; i += 64)
		j->sum += buf[i];
	for (int i = 0; i < ADDS; i++) {
		pthread_mutex_lock(&lock);
		counter += j->id + 1;
		pthread_mutex_unlock(&lock);
	}
	pthread_barrier_wait(&alive);
	pthread_barrier_wait(&done);
	free(buf);
	if (main_exits && j->id == 0)
		report(1);
	return j;
}

int main(int argc, char **argv)
{
	static struct job jobs[NTHREADS];
	char line[256];
	FILE *f;

	if (argc > 1)
		mib = strtoul(argv[1], NULL, 10);
	main_exits = argc > 2 && strcmp(argv[2], "main-exits") == 0;
	jobs_of_main = jobs;
	pthread_barrier_init(&alive, NULL, NTHREADS + 1);
	pthread_barrier_init(&done, NULL, NTHREADS + 1);
	for (int i = 0; i < NTHREADS; i++) {
		jobs[i].id = i;
		jobs[i].sum = 0;
		int err = pthread_create(&t[i], NULL, work, &jobs[i]);
		if (err) {
			printf("pthread_create failed: %s\n", strerror(err));
			return 2;
		}
	}
	pthread_barrier_wait(&alive);
	f = fopen("/proc/self/status", "r");
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "Threads:", 8) == 0)
			fputs(line, stdout);
	if (f)
		fclose(f);
	fflush(stdout);
	pthread_barrier_wait(&done);
	if (main_exits)
		pthread_exit(NULL);
	report(0);
	return 0;
}
