/* lmm native test: threads. Four pthreads each write a buffer of their
 * own (MIB MiB, 4 by default) and sum it, and add to a shared counter
 * under a mutex; while all five threads are alive the program reads its
 * own /proc/self/status and prints the Threads: line; the threads are
 * joined and the sums printed. The output does not depend on timing. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NTHREADS 4
#define ADDS 10000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t alive, done;
static unsigned long counter;
static size_t mib = 4;

struct job {
	int id;
	unsigned long sum;
};

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
	return j;
}

int main(int argc, char **argv)
{
	pthread_t t[NTHREADS];
	struct job jobs[NTHREADS];
	char line[256];
	FILE *f;

	if (argc > 1)
		mib = strtoul(argv[1], NULL, 10);
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
	pthread_barrier_wait(&done);
	for (int i = 0; i < NTHREADS; i++) {
		void *ret;
		pthread_join(t[i], &ret);
		if (ret != &jobs[i]) {
			printf("thread %d failed\n", i);
			return 3;
		}
		printf("thread %d: sum %lu\n", i, jobs[i].sum);
	}
	printf("counter %lu\n", counter);
	return 0;
}
