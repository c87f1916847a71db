/*
 * exec_errno: the kernel's answer to execve for each file, without running
 * any of the file's code.
 *
 * Usage: exec_errno DIR < names
 * For each file name read from stdin (one per line, relative to DIR), a
 * child with DIR as its working directory, ASLR off (ADDR_NO_RANDOMIZE)
 * and an 8 MiB stack rlimit calls execve(NAME, {NAME}, {}) under ptrace.
 * The tracer reads execve's return value at its syscall-exit stop
 * (PTRACE_GET_SYSCALL_INFO), even when the exec failed after its point of
 * no return, where the task is then killed and the caller never sees it.
 * A successful exec is killed at that stop, before its first instruction.
 * Prints one line "NAME RESULT [fatal]":
 *   RESULT  "ok", or the errno's name (ENOEXEC, EACCES, ...);
 *   fatal   the exec failed after the point of no return: the kernel
 *           kills the task (bprm_execve: force_fatal_sig(SIGSEGV)).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void finish(pid_t pid)
{
	int st;
	kill(pid, SIGKILL);
	while (waitpid(pid, &st, __WALL) >= 0 && !WIFEXITED(st) && !WIFSIGNALED(st))
		ptrace(PTRACE_CONT, pid, 0, 0);
}

static const char *outcome(const char *dir, const char *name, char *buf, size_t n)
{
	pid_t pid = fork();
	if (pid < 0)
		return "fork-failed";
	if (pid == 0) {
		struct rlimit rl = { 8 << 20, RLIM_INFINITY };
		if (chdir(dir) != 0 || personality(ADDR_NO_RANDOMIZE) < 0 ||
		    setrlimit(RLIMIT_STACK, &rl) != 0 ||
		    ptrace(PTRACE_TRACEME, 0, 0, 0) != 0)
			_exit(126);
		kill(getpid(), SIGSTOP);
		char *argv[] = { (char *)name, NULL };
		char *envp[] = { NULL };
		syscall(SYS_execve, name, argv, envp);
		_exit(127);
	}
	int st;
	if (waitpid(pid, &st, __WALL) < 0 || !WIFSTOPPED(st))
		return "no-initial-stop";
	ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL);
	int in_execve = 0;
	for (;;) {
		if (ptrace(PTRACE_SYSCALL, pid, 0, 0) != 0)
			return "ptrace-failed";
		if (waitpid(pid, &st, __WALL) < 0)
			return "wait-failed";
		if (WIFEXITED(st) || WIFSIGNALED(st))
			return "died-before-execve";
		if (WSTOPSIG(st) != (SIGTRAP | 0x80))
			continue; /* the legacy post-exec SIGTRAP never comes first */
		struct __ptrace_syscall_info si;
		if (ptrace(PTRACE_GET_SYSCALL_INFO, pid, sizeof si, &si) <= 0)
			return "no-syscall-info";
		if (si.op == PTRACE_SYSCALL_INFO_ENTRY) {
			in_execve = si.entry.nr == SYS_execve;
			continue;
		}
		if (si.op != PTRACE_SYSCALL_INFO_EXIT || !in_execve)
			continue;
		long rval = si.exit.rval;
		if (rval == 0) {
			finish(pid);
			return "ok";
		}
		const char *e = strerrorname_np((int)-rval);
		/* Did the kernel kill the task (point of no return passed)? */
		ptrace(PTRACE_CONT, pid, 0, 0);
		int fatal = 0;
		while (waitpid(pid, &st, __WALL) >= 0) {
			if (WIFEXITED(st) || WIFSIGNALED(st)) {
				fatal = WIFSIGNALED(st);
				break;
			}
			if (WSTOPSIG(st) == SIGSEGV) {
				fatal = 1;
				break;
			}
			ptrace(PTRACE_CONT, pid, 0, WSTOPSIG(st));
		}
		finish(pid);
		snprintf(buf, n, "%s%s", e ? e : "errno?", fatal ? " fatal" : "");
		return buf;
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR < names\n", argv[0]);
		return 2;
	}
	char line[8192], buf[64];
	while (fgets(line, sizeof line, stdin)) {
		line[strcspn(line, "\n")] = 0;
		if (!*line)
			continue;
		printf("%s %s\n", line, outcome(argv[1], line, buf, sizeof buf));
		fflush(stdout);
	}
	return 0;
}
