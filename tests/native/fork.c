/* lmm native test: fork is not supported yet; the program must get an
 * error (ENOSYS), not hang. */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	printf("fork: %s\n", pid < 0 && errno == ENOSYS ? "ENOSYS" : "unexpected");
	return 0;
}
