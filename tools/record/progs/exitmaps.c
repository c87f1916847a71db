/* exitmaps: run a program and every process it creates under ptrace, and
 * save each one's /proc/PID/maps, smaps and stat at the moment it exits
 * (PTRACE_EVENT_EXIT stops a task in do_exit before its memory is released,
 * so these are the files as they stood at exit_group, faults included).
 *
 *   exitmaps OUT PROGRAM [ARGS...]
 *
 * OUT gets, for each process in the order the processes were created (the
 * program first, then each fork/vfork/clone child as its parent created
 * it), a block
 *
 *   === process N: parent M, exit STATUS ===
 *   --- maps ---  ... raw bytes ...
 *   --- smaps --- ...
 *   --- stat ---  ...
 *
 * (parent -1 for the program itself; STATUS "exited C" or "killed by
 * signal S").  Pids are not written: a replay matches processes by their
 * creation order, which is the same under strace for these programs.
 * Run it with ASLR off (setarch -R), as the strace recordings are.
 * No stdio or malloc in the traced side: the tracer only reads /proc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAXP 256

struct proc {
	pid_t pid;
	int parent; /* index, -1 for the root */
	int seen;   /* its first stop was consumed */
	char *text; /* the dump taken at its exit event */
	size_t len;
	char status[64];
};

static struct proc procs[MAXP];
static int nprocs;

static int index_of(pid_t pid)
{
	for (int i = nprocs - 1; i >= 0; i--)
		if (procs[i].pid == pid)
			return i;
	return -1;
}

static int add(pid_t pid, int parent)
{
	if (nprocs == MAXP) {
		fprintf(stderr, "exitmaps: too many processes\n");
		exit(1);
	}
	procs[nprocs] = (struct proc){.pid = pid, .parent = parent};
	return nprocs++;
}

static void append(struct proc *p, const char *s, size_t n)
{
	p->text = realloc(p->text, p->len + n);
	if (!p->text) {
		perror("exitmaps: realloc");
		exit(1);
	}
	memcpy(p->text + p->len, s, n);
	p->len += n;
}

static void dump(struct proc *p, const char *file)
{
	char path[64], buf[65536];
	snprintf(path, sizeof path, "/proc/%d/%s", (int)p->pid, file);
	snprintf(buf, sizeof buf, "--- %s ---\n", file);
	append(p, buf, strlen(buf));
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "exitmaps: %s: %s\n", path, strerror(errno));
		return;
	}
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n <= 0)
			break;
		append(p, buf, (size_t)n);
	}
	close(fd);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: exitmaps OUT PROGRAM [ARGS...]\n");
		return 2;
	}
	pid_t root = fork();
	if (root < 0) {
		perror("exitmaps: fork");
		return 1;
	}
	if (root == 0) {
		ptrace(PTRACE_TRACEME, 0, NULL, NULL);
		raise(SIGSTOP);
		execvp(argv[2], argv + 2);
		perror("exitmaps: exec");
		_exit(127);
	}
	int st;
	if (waitpid(root, &st, 0) != root || !WIFSTOPPED(st)) {
		fprintf(stderr, "exitmaps: the child did not stop\n");
		return 1;
	}
	long opts = PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE |
		    PTRACE_O_TRACEEXEC | PTRACE_O_TRACEEXIT | PTRACE_O_EXITKILL;
	ptrace(PTRACE_SETOPTIONS, root, NULL, (void *)opts);
	procs[add(root, -1)].seen = 1;
	ptrace(PTRACE_CONT, root, NULL, NULL);

	int live = 1;
	while (live > 0) {
		pid_t pid = waitpid(-1, &st, __WALL);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		int i = index_of(pid);
		if (i < 0) {
			/* A new child whose stop came before its parent's event. */
			i = add(pid, -2);
			live++;
		}
		struct proc *p = &procs[i];
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			if (WIFEXITED(st))
				snprintf(p->status, sizeof p->status, "exited %d", WEXITSTATUS(st));
			else
				snprintf(p->status, sizeof p->status, "killed by signal %d", WTERMSIG(st));
			p->pid = -1;
			live--;
			continue;
		}
		if (!WIFSTOPPED(st))
			continue;
		int sig = WSTOPSIG(st), event = st >> 16, deliver = 0;
		if (event == PTRACE_EVENT_FORK || event == PTRACE_EVENT_VFORK ||
		    event == PTRACE_EVENT_CLONE) {
			unsigned long child;
			ptrace(PTRACE_GETEVENTMSG, pid, NULL, &child);
			int k = index_of((pid_t)child);
			if (k < 0) {
				add((pid_t)child, i);
				live++;
			} else {
				procs[k].parent = i;
			}
		} else if (event == PTRACE_EVENT_EXIT) {
			dump(p, "maps");
			dump(p, "smaps");
			dump(p, "stat");
		} else if (event == PTRACE_EVENT_EXEC) {
		} else if (sig == SIGSTOP && !p->seen) {
			/* The stop every auto-attached child starts with. */
		} else if (sig != SIGTRAP) {
			deliver = sig;
		}
		p->seen = 1;
		ptrace(PTRACE_CONT, pid, NULL, (void *)(long)deliver);
	}

	FILE *out = fopen(argv[1], "w");
	if (!out) {
		perror(argv[1]);
		return 1;
	}
	for (int i = 0; i < nprocs; i++) {
		fprintf(out, "=== process %d: parent %d, exit %s ===\n", i, procs[i].parent,
			procs[i].status[0] ? procs[i].status : "unknown");
		fwrite(procs[i].text, 1, procs[i].len, out);
	}
	fclose(out);
	return 0;
}
