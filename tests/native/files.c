/* lmm native test: the file, credential and priority calls a shell, cp
 * or python's multiprocessing make, run by the host after lmm faulted in
 * what each reads and writes. Every buffer (a path, a struct) lies on a
 * page the stub does not have at the call (a fresh mapping, or one a fork
 * made copy-on-write), so a buffer missing from lmm's table would be the
 * host's EFAULT. Prints what the host prints (no pid, inode or time).
 *
 *   link, symlink, rename, renameat2, linkat, chmod, fchmodat, chown,
 *   fchownat, truncate, creat, utimensat, utimes, getdents,
 *   setxattr/getxattr/listxattr/removexattr (where the file system has
 *   them), sendfile, copy_file_range, splice, flock, times, getgroups,
 *   getresuid, getresgid, capget, getpriority/setpriority of the caller by its
 *   own pid (lmm's, turned into the stub's), ioprio_get, prctl
 *   PR_CAPBSET_READ and PR_GET_DUMPABLE, and their errors for a NULL or
 *   unmapped path and a negative count; and mappings of files without
 *   a name (O_TMPFILE, unlinked after the open), which /proc/self/maps
 *   shows as "(deleted)". */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/xattr.h>

#include "pages.h"

/* `s` copied to a fresh page, made copy-on-write: the path argument. */
static char *path(const char *s)
{
	char *p = fresh(4096);

	strcpy(p, s);
	cow();
	return p;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/tmp/lmm-files";
	char buf[256];
	struct stat st;
	long r;
	int fd, out;

	snprintf(buf, sizeof(buf), "rm -rf %s && mkdir -p %s", dir, dir);
	if (system(buf))
		return 2;
	check("chdir", chdir(dir));
	fd = creat(path("a"), 0644);
	check("creat", fd);
	check("write", write(fd, "hello, files\n", 13));
	close(fd);
	fd = open("a", O_RDWR);
	check("open a", fd);
	check("link", link(path("a"), path("b")));
	check("symlink", symlink(path("a"), path("c")));
	check("rename", rename(path("b"), path("d")));
	check("renameat2", syscall(SYS_renameat2, AT_FDCWD, path("d"), AT_FDCWD,
				   path("e"), RENAME_NOREPLACE));
	r = syscall(SYS_renameat2, AT_FDCWD, path("e"), AT_FDCWD, path("a"),
		    RENAME_NOREPLACE);
	printf("renameat2 onto a file: %ld %s\n", r, strerror(errno));
	check("linkat", linkat(AT_FDCWD, path("e"), AT_FDCWD, path("f"), 0));
	check("chmod", chmod(path("a"), 0600));
	check("fchmodat", fchmodat(AT_FDCWD, path("e"), 0640, 0));
	check("chown", chown(path("a"), getuid(), getgid()));
	check("fchownat", fchownat(AT_FDCWD, path("c"), getuid(), getgid(),
				   AT_SYMLINK_NOFOLLOW));
	check("stat", stat("a", &st));
	printf("a: mode %o, links %lu, size %ld\n", st.st_mode & 07777,
	       (unsigned long)st.st_nlink, (long)st.st_size);
	out = creat(path("t"), 0644);
	check("creat t", out);
	check("write", write(out, "0123456789", 10));
	close(out);
	check("truncate", truncate(path("t"), 4));
	check("stat", stat("t", &st));
	printf("truncate: size %ld\n", (long)st.st_size);
	{
		struct timespec *ts = fresh(4096);
		struct timeval *tv = fresh(4096);

		ts[0] = (struct timespec){ .tv_sec = 1000 };
		ts[1] = (struct timespec){ .tv_sec = 2000, .tv_nsec = 5 };
		cow();
		check("utimensat", utimensat(AT_FDCWD, path("a"), ts, 0));
		check("stat", stat("a", &st));
		printf("utimensat: atime %ld mtime %ld.%09ld\n",
		       (long)st.st_atime, (long)st.st_mtime,
		       st.st_mtim.tv_nsec);
		tv[0] = (struct timeval){ .tv_sec = 3000 };
		tv[1] = (struct timeval){ .tv_sec = 4000 };
		cow();
		check("utimes", utimes(path("f"), tv));
		check("stat", stat("f", &st));
		printf("utimes: mtime %ld, size %ld\n", (long)st.st_mtime,
		       (long)st.st_size);
	}
	{
		/* getdents: the names, sorted (the order is the file system's). */
		char *d = fresh(8192);
		int dfd = open(".", O_RDONLY | O_DIRECTORY);
		char names[16][8];
		int n = 0;

		check("open .", dfd);
		cow();
		r = syscall(SYS_getdents, dfd, d, 8192);
		check("getdents", r);
		for (long off = 0; off < r && n < 16;) {
			unsigned short reclen = *(unsigned short *)(d + off + 16);
			const char *name = d + off + 18;

			if (name[0] != '.')
				snprintf(names[n++], 8, "%s", name);
			off += reclen;
		}
		qsort(names, n, 8, (int (*)(const void *, const void *))strcmp);
		printf("getdents:");
		for (int i = 0; i < n; i++)
			printf(" %s", names[i]);
		printf("\n");
		close(dfd);
	}
	{
		char *v = fresh(4096);
		char *list = fresh(4096);

		strcpy(v, "blue");
		cow();
		r = setxattr(path("a"), path("user.colour"), v, 4, 0);
		if (r == 0) {
			char *got = fresh(4096);

			r = getxattr(path("a"), path("user.colour"), got, 64);
			printf("xattr: get %ld %.4s", r, got);
			r = listxattr(path("a"), list, 4096);
			printf(", list %ld %s", r, list);
			check("removexattr",
			      removexattr(path("a"), path("user.colour")));
			r = getxattr("a", "user.colour", NULL, 0);
			printf(", after remove %ld\n", r);
		} else {
			printf("xattr: %s\n", strerror(errno));
		}
	}
	{
		off_t *off = fresh(4096);
		loff_t *o1 = fresh(4096), *o2 = fresh(4096);
		int p[2];
		char *got = fresh(4096);

		out = open("g", O_CREAT | O_RDWR | O_TRUNC, 0644);
		check("open g", out);
		*off = 7;
		cow();
		r = sendfile(out, fd, off, 6);
		printf("sendfile: %ld, offset %ld\n", r, (long)*off);
		*o1 = 0;
		*o2 = 6;
		cow();
		r = copy_file_range(fd, o1, out, o2, 5, 0);
		printf("copy_file_range: %ld, offsets %ld %ld\n", r, (long)*o1,
		       (long)*o2);
		check("pipe", pipe(p));
		*o1 = 0;
		cow();
		r = splice(out, o1, p[1], NULL, 64, 0);
		printf("splice: %ld, offset %ld", r, (long)*o1);
		close(p[1]);
		r = read(p[0], got, 64);
		printf(", read %ld: %.5s|%.5s\n", r, got, got + 6);
	}
	check("flock", flock(fd, LOCK_EX));
	check("flock", flock(fd, LOCK_UN));
	{
		struct tms *t = fresh(4096);
		gid_t *groups = fresh(4096);
		uid_t *ids = fresh(4096);
		int n;

		r = times(t);
		printf("times: %d\n", r > 0);
		n = getgroups(0, NULL);
		cow();
		printf("getgroups: %d\n", getgroups(n, groups) == n);
		cow();
		check("getresuid", getresuid(&ids[0], &ids[1], &ids[2]));
		printf("getresuid: %d\n", ids[0] == getuid() && ids[1] == geteuid());
		ids = fresh(4096);
		check("getresgid", getresgid(&ids[0], &ids[1], &ids[2]));
		printf("getresgid: %d\n", ids[0] == getgid());
	}
	errno = 0;
	r = getpriority(PRIO_PROCESS, getpid());
	printf("getpriority by pid: %ld %s\n", r, strerror(errno));
	check("setpriority", setpriority(PRIO_PROCESS, getpid(), 3));
	printf("after setpriority: %d\n", getpriority(PRIO_PROCESS, 0));
	r = setpriority(PRIO_PROCESS, 999999, 3);
	printf("setpriority of no process: %ld %s\n", r, strerror(errno));
	r = syscall(SYS_ioprio_get, 1, 0);
	printf("ioprio_get: %d\n", r >= 0);
	{
		/* Bad input: a NULL path, a path on an unmapped page, a
		 * negative group count. */
		char *gone = fresh(4096);

		munmap(gone, 4096);
		r = link(NULL, "x");
		printf("link(NULL): %ld %s\n", r, strerror(errno));
		r = rename("a", gone);
		printf("rename onto an unmapped path: %ld %s\n", r, strerror(errno));
		r = chmod(gone, 0600);
		printf("chmod of an unmapped path: %ld %s\n", r, strerror(errno));
		r = syscall(SYS_getgroups, -1, gone);
		printf("getgroups(-1): %ld %s\n", r, strerror(errno));
	}
	{
		/* capget of the caller (pid 0), version 3: two sets. */
		uint32_t *hdr = fresh(4096), *data = fresh(4096);

		hdr[0] = 0x20080522;
		hdr[1] = 0;
		cow();
		r = syscall(SYS_capget, hdr, data);
		printf("capget: %ld, version %#x, effective %s\n", r, hdr[0],
		       data[0] ? "some" : "none");
	}
	printf("prctl PR_CAPBSET_READ: %d, PR_GET_DUMPABLE: %d\n",
	       prctl(PR_CAPBSET_READ, 0) >= 0, prctl(PR_GET_DUMPABLE));
	{
		/* Files without a name, mapped. */
		int t = open(".", O_TMPFILE | O_RDWR, 0600);
		int u = open("u", O_CREAT | O_RDWR, 0600);
		char *m, *n, *got = fresh(4096), line[512];
		FILE *maps;
		int deleted = 0;

		check("open O_TMPFILE", t);
		check("open u", u);
		check("ftruncate", ftruncate(t, 8192));
		m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, t, 0);
		if (m == MAP_FAILED)
			return 3;
		memcpy(m + 100, "shared", 6);
		r = pread(t, got, 6, 100);
		printf("O_TMPFILE mapping: pread %ld %.6s\n", r, got);
		check("write", write(u, "unlinked", 8));
		check("unlink", unlink("u"));
		n = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, u, 0);
		if (n == MAP_FAILED)
			return 4;
		printf("unlinked mapping: %.8s\n", n);
		maps = fopen("/proc/self/maps", "r");
		while (maps && fgets(line, sizeof(line), maps))
			deleted += strstr(line, dir) && strstr(line, " (deleted)\n");
		printf("maps: %d deleted files of the directory\n", deleted);
	}
	snprintf(buf, sizeof(buf), "rm -rf %s", dir);
	return system(buf);
}
