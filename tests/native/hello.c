/* lmm native test: prints a line and exits with status 3. */
#include <stdio.h>

int main(int argc, char **argv)
{
	printf("hello from %s with %d args\n", argc > 0 ? "a real program" : "?", argc);
	return 3;
}
