/* lmm native test: a program that starts a thread. lmm does not run
 * threads yet: pthread_create must fail (lmm says why on stderr) and the
 * program exit with status 2, not hang. */
#include <pthread.h>
#include <stdio.h>

static void *work(void *arg)
{
	return arg;
}

int main(void)
{
	pthread_t t;
	int err = pthread_create(&t, NULL, work, NULL);

	if (err) {
		printf("pthread_create failed\n");
		return 2;
	}
	pthread_join(t, NULL);
	printf("thread ran\n");
	return 0;
}
