/* lmm native test: stores to an address nothing maps; Linux gives SIGSEGV. */
#include <stdio.h>

int main(void)
{
	volatile int *p = (volatile int *)0x10000000;

	printf("about to fault\n");
	fflush(stdout);
	*p = 1;
	printf("not reached\n");
	return 0;
}
