/* Known memory accesses for the lackey replay tests.
 *
 * Freestanding (no libc, built with -nostdlib -static -no-pie), so that a
 * `valgrind --tool=lackey --trace-mem=yes` trace of it holds only these
 * instructions and the tests can check exactly which pages it touched:
 *
 *   1. a one-byte store (S) to the first byte of each of the 16 pages of
 *      `arr` (.bss, page aligned), in order;
 *   2. an unaligned 8-byte store (S) that straddles pages 3 and 4 of `arr`;
 *   3. a one-byte load (L) from byte 1 of each page, in order;
 *   4. an `incq` (a load then a store of the same 8 bytes: lackey's M)
 *      that straddles pages 7 and 8;
 *   5. one store to `word` (.data).
 *
 * It prints `arr 0xADDR` and `word 0xADDR` (the link-time addresses, which
 * valgrind keeps for an ET_EXEC) and exits with status 0.
 */

#define PAGE 4096L
#define NPAGES 16

static char arr[NPAGES * PAGE] __attribute__((aligned(4096)));
static volatile long word = 1;

__asm__(".globl _start\n"
	"_start:\n"
	"	xor %ebp, %ebp\n"
	"	and $-16, %rsp\n"
	"	call main\n"
	"	mov %eax, %edi\n"
	"	mov $231, %eax\n" /* exit_group */
	"	syscall\n"
	"	hlt\n");

static long sys_write(int fd, const char *buf, long len)
{
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(1L), "D"((long)fd), "S"(buf), "d"(len)
			 : "rcx", "r11", "memory");
	return ret;
}

/* Writes "NAME 0xHEX\n". */
static void print_addr(const char *name, unsigned long v)
{
	char buf[64];
	int n = 0;
	while (*name)
		buf[n++] = *name++;
	buf[n++] = ' ';
	buf[n++] = '0';
	buf[n++] = 'x';
	char hex[16];
	int h = 0;
	do {
		hex[h++] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	while (h > 0)
		buf[n++] = hex[--h];
	buf[n++] = '\n';
	sys_write(1, buf, n);
}

int main(void);

int main(void)
{
	volatile char *a = arr;
	long sum = 0;

	for (long i = 0; i < NPAGES; i++)
		a[i * PAGE] = (char)i;
	*(volatile long *)(arr + 4 * PAGE - 4) = -1;
	for (long i = 0; i < NPAGES; i++)
		sum += a[i * PAGE + 1];
	__asm__ volatile("incq %0" : "+m"(*(long *)(arr + 8 * PAGE - 4)));
	word = sum;

	print_addr("arr", (unsigned long)arr);
	print_addr("word", (unsigned long)&word);
	return 0;
}
