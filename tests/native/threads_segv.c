/* lmm native test: a thread's store where nothing is mapped kills the
 * whole process with SIGSEGV, while another thread sleeps in pause()
 * and the main thread waits in pthread_join (or, with an argument, has
 * left with pthread_exit): the run ends, as on Linux, never hangs. */
#include <pthread.h>
#include <unistd.h>

static void *bad(void *arg)
{
	*(volatile int *)16 = 1;
	return arg;
}

static void *idle(void *arg)
{
	for (;;)
		pause();
	return arg;
}

int main(int argc, char **argv)
{
	pthread_t t, u;

	(void)argv;
	pthread_create(&u, NULL, idle, NULL);
	pthread_create(&t, NULL, bad, NULL);
	if (argc > 1)
		pthread_exit(NULL);
	pthread_join(t, NULL);
	return 0;
}
