/* lmm native test: mallocs N MiB (argv[1], default 16), writes every page,
 * then reads it all back and prints a checksum that a wrong page would
 * change. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	unsigned long mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 16;
	unsigned long len = mib << 20, sum = 0, i;
	unsigned char *p = malloc(len);

	if (!p) {
		fprintf(stderr, "malloc failed\n");
		return 1;
	}
	for (i = 0; i < len; i += 4096)
		p[i] = (unsigned char)(i >> 12) ^ 0x5a;
	for (i = 0; i < len; i += 4096)
		sum += p[i];
	printf("pages=%lu sum=%lu\n", len >> 12, sum);
	free(p);
	return 0;
}
