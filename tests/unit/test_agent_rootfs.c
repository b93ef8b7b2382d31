// SPDX-License-Identifier: Apache-2.0
/*
 * Tests of reading a hostile root file system (rootfs.c) and of image
 * inventories read from it (imageinv.c), on real directory trees made here
 * and through real process roots (a child chrooted into the tree): symlinks
 * out of the root (absolute, relative, through a directory) stay inside
 * it, a FIFO is refused without blocking, a 100 MiB file is refused, a
 * device or directory is not a file, a hard link is just a file, symlink
 * loops end, a process that exits is noticed. Each resolution test runs
 * with openat2 and with the fallback walk. Also: the host's own dpkg
 * status read through /proc/self/root, and the worker's hand-off.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "imageinv.h"
#include "pkgdb.h"
#include "rootfs.h"
#include "vtime.h"

static char top[64];   /* the test's temp dir */
static char root[128]; /* the container root inside it */
static int root_fd = -1;

static void mkdirs(const char *rel)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	for (char *s = p + strlen(root) + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			mkdir(p, 0755);
			*s = '/';
		}
	mkdir(p, 0755);
}

static void put(const char *rel, const char *text)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	/* never through a symlink the tests left there: it may point at a host
	 * file such as /etc/passwd */
	unlink(p);
	FILE *f = fopen(p, "wx");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void symlink_in(const char *target, const char *rel)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	unlink(p);
	assert_int_equal(symlink(target, p), 0);
}

static const char status_text[] = "Package: base-files\nStatus: install ok installed\n"
				  "Architecture: amd64\nVersion: 12.4+deb12u5\n\n"
				  "Package: libssl3\nStatus: install ok installed\n"
				  "Architecture: amd64\nSource: openssl (3.0.11-1~deb12u2)\n"
				  "Version: 3.0.11-1~deb12u2+b1\n";

/* A fresh root: etc/os-release, a dpkg status, a fake etc/shadow, and a
 * host-side secret next to the root (outside it). */
static int setup(void **state)
{
	(void)state;
	snprintf(top, sizeof(top), "/tmp/vigil-rootfs-XXXXXX");
	assert_non_null(mkdtemp(top));
	snprintf(root, sizeof(root), "%s/root", top);
	mkdir(root, 0755);
	mkdirs("etc");
	mkdirs("var/lib/dpkg");
	put("etc/os-release", "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n"
			      "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n");
	put("etc/shadow", "root:inside-the-root:19000:0:99999:7:::\n");
	put("var/lib/dpkg/status", status_text);
	char p[256];
	snprintf(p, sizeof(p), "%s/secret", top);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs("Package: host-secret\nStatus: install ok installed\nVersion: 1\n", f);
	fclose(f);
	root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(root_fd >= 0);
	rootfs_set_fallback(false);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	close(root_fd);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	assert_int_equal(system(cmd), 0);
	rootfs_set_fallback(false);
	return 0;
}

static rootfs_rc_t read_str(const char *path, char **out)
{
	size_t len;
	return rootfs_read(root_fd, path, 1 << 20, out, &len);
}

static void expect_text(const char *path, const char *prefix)
{
	char *buf = NULL;
	assert_int_equal(read_str(path, &buf), ROOTFS_OK);
	assert_memory_equal(buf, prefix, strlen(prefix));
	free(buf);
}

/* Symlinks that aim out of the root land inside it. */
static void escapes(void)
{
	symlink_in("/../../../etc/shadow", "var/lib/dpkg/status");
	expect_text("/var/lib/dpkg/status", "root:inside-the-root");
	symlink_in("../../../../../../../../etc/shadow", "var/lib/dpkg/status");
	expect_text("/var/lib/dpkg/status", "root:inside-the-root");
	expect_text("../../../../etc/shadow", "root:inside-the-root");
	char host[256];
	snprintf(host, sizeof(host), "%s/secret", top); /* the host's path of a file outside */
	symlink_in(host, "var/lib/dpkg/status");
	char *buf = NULL;
	assert_int_equal(read_str("/var/lib/dpkg/status", &buf), ROOTFS_ABSENT);
	symlink_in("/../secret", "var/lib/dpkg/status");
	assert_int_equal(read_str("/var/lib/dpkg/status", &buf), ROOTFS_ABSENT);
	/* a directory symlink to the root's parent, then a file through it */
	mkdirs("lib");
	symlink_in("/..", "lib/apk");
	assert_int_equal(read_str("/lib/apk/secret", &buf), ROOTFS_ABSENT);
	expect_text("/lib/apk/etc/shadow", "root:inside-the-root");
	/* /proc magic links lead nowhere: the root has no /proc */
	symlink_in("/proc/self/root/etc/passwd", "var/lib/dpkg/status");
	assert_int_equal(read_str("/var/lib/dpkg/status", &buf), ROOTFS_ABSENT);
	/* loops end */
	symlink_in("loop-b", "var/lib/loop-a");
	symlink_in("loop-a", "var/lib/loop-b");
	assert_int_equal(read_str("/var/lib/loop-a", &buf), ROOTFS_LOOP);
	/* a file used as a directory */
	assert_int_equal(read_str("/etc/shadow/x", &buf), ROOTFS_ABSENT);
	assert_int_equal(read_str("/etc/shadow/..", &buf), ROOTFS_ABSENT);
	assert_null(buf);
	put("var/lib/dpkg/status", status_text);
}

static void test_escapes_openat2(void **state)
{
	(void)state;
	escapes();
}

static void test_escapes_fallback(void **state)
{
	(void)state;
	rootfs_set_fallback(true);
	escapes();
}

static void kinds(void)
{
	char *buf = NULL;
	char p[512];
	/* a FIFO with no writer: refused at once */
	snprintf(p, sizeof(p), "%s/var/lib/dpkg/status", root);
	unlink(p);
	assert_int_equal(mkfifo(p, 0644), 0);
	alarm(10);
	int64_t t0 = vtime_mono_ns();
	assert_int_equal(read_str("/var/lib/dpkg/status", &buf), ROOTFS_NOT_REGULAR);
	assert_true(vtime_mono_ns() - t0 < 1000000000);
	alarm(0);
	/* a device */
	unlink(p);
	if (mknod(p, S_IFCHR | 0644, makedev(1, 3)) == 0)
		assert_int_equal(read_str("/var/lib/dpkg/status", &buf), ROOTFS_NOT_REGULAR);
	/* a directory */
	unlink(p);
	mkdir(p, 0755);
	assert_int_equal(read_str("/var/lib/dpkg/status", &buf), ROOTFS_NOT_REGULAR);
	rmdir(p);
	/* 100 MiB (sparse): over the cap */
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 100 << 20), 0);
	close(fd);
	assert_int_equal(read_str("/var/lib/dpkg/status", &buf), ROOTFS_TOO_BIG);
	size_t len;
	assert_int_equal(rootfs_read(root_fd, "/var/lib/dpkg/status", 100 << 20, &buf, &len),
			 ROOTFS_OK);
	assert_int_equal(len, 100 << 20);
	free(buf);
	buf = NULL;
	/* a hard link to a file outside the root is just a regular file */
	unlink(p);
	char host[256];
	snprintf(host, sizeof(host), "%s/secret", top);
	assert_int_equal(link(host, p), 0);
	expect_text("/var/lib/dpkg/status", "Package: host-secret");
	unlink(p);
	put("var/lib/dpkg/status", status_text);
	/* the directory itself opens as a directory only */
	assert_int_equal(rootfs_open(root_fd, "/var/lib/dpkg", true, &fd), ROOTFS_OK);
	close(fd);
	assert_int_equal(rootfs_open(root_fd, "/var/lib/dpkg/status", true, &fd), ROOTFS_ABSENT);
	assert_int_equal(rootfs_open(root_fd, "/", true, &fd), ROOTFS_OK);
	close(fd);
}

static void test_kinds_openat2(void **state)
{
	(void)state;
	kinds();
}

static void test_kinds_fallback(void **state)
{
	(void)state;
	rootfs_set_fallback(true);
	kinds();
}

static void test_list(void **state)
{
	(void)state;
	mkdirs("var/lib/dpkg/status.d");
	char rel[64];
	for (int i = 0; i < 10; i++) {
		snprintf(rel, sizeof(rel), "var/lib/dpkg/status.d/f%d", 9 - i);
		put(rel, "x");
	}
	char **names;
	size_t n;
	bool more;
	assert_int_equal(rootfs_list(root_fd, "/var/lib/dpkg/status.d", 5, &names, &n, &more),
			 ROOTFS_OK);
	assert_int_equal(n, 5);
	assert_true(more);
	rootfs_names_free(names, n);
	assert_int_equal(rootfs_list(root_fd, "/var/lib/dpkg/status.d", 100, &names, &n, &more),
			 ROOTFS_OK);
	assert_int_equal(n, 10);
	assert_false(more);
	assert_string_equal(names[0], "f0");
	assert_string_equal(names[9], "f9");
	rootfs_names_free(names, n);
	assert_int_equal(rootfs_list(root_fd, "/etc/shadow", 5, &names, &n, &more), ROOTFS_ABSENT);
}

/* --- inventories of a tree --------------------------------------------- */

static void test_inventory_dpkg(void **state)
{
	(void)state;
	mkdirs("var/lib/dpkg/status.d");
	put("var/lib/dpkg/status.d/zlib1g", "Package: zlib1g\nVersion: 1:1.2.13.dfsg-1\n"
					    "Architecture: amd64\nSource: zlib\n");
	put("var/lib/dpkg/status.d/zlib1g.md5sums", "0123  /usr/lib/libz.so.1\n");
	pkgdb_inv_t *inv = imageinv_read_root(root_fd, NULL, NULL, NULL);
	assert_non_null(inv);
	assert_int_equal(inv->format, PKGDB_FMT_DPKG);
	assert_int_equal(inv->status, PKGDB_ST_OK);
	assert_string_equal(inv->os_id, "debian");
	assert_string_equal(inv->os_codename, "bookworm");
	assert_int_equal(inv->n_pkgs, 3);
	assert_string_equal(inv->pkgs[1].source_name, "openssl");
	assert_string_equal(inv->pkgs[2].source_name, "zlib");
	pkgdb_inv_free(inv);

	/* a FIFO for the status file: the rest is read, the status says why */
	char p[512];
	snprintf(p, sizeof(p), "%s/var/lib/dpkg/status", root);
	unlink(p);
	assert_int_equal(mkfifo(p, 0644), 0);
	inv = imageinv_read_root(root_fd, NULL, NULL, NULL);
	assert_int_equal(inv->status, PKGDB_ST_PARTIAL);
	assert_non_null(strstr(inv->reason, "/var/lib/dpkg/status: not a regular file"));
	assert_int_equal(inv->n_pkgs, 1);
	pkgdb_inv_free(inv);
	/* 100 MiB status, no status.d: not read */
	unlink(p);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_int_equal(ftruncate(fd, 100 << 20), 0);
	close(fd);
	snprintf(p, sizeof(p), "rm -rf '%s/var/lib/dpkg/status.d'", root);
	assert_int_equal(system(p), 0);
	inv = imageinv_read_root(root_fd, NULL, NULL, NULL);
	assert_int_equal(inv->format, PKGDB_FMT_DPKG);
	assert_int_equal(inv->status, PKGDB_ST_NOT_READ);
	assert_non_null(strstr(inv->reason, "over the cap"));
	pkgdb_inv_free(inv);
	/* a small package cap */
	put("var/lib/dpkg/status", status_text);
	imageinv_opts_t o = {.max_pkgs = 1};
	inv = imageinv_read_root(root_fd, &o, NULL, NULL);
	assert_int_equal(inv->status, PKGDB_ST_PARTIAL);
	assert_int_equal(inv->n_pkgs, 1);
	assert_non_null(strstr(inv->reason, "1 packages over the cap of 1"));
	pkgdb_inv_free(inv);
}

static void test_inventory_apk_rpm(void **state)
{
	(void)state;
	char p[512];
	snprintf(p, sizeof(p), "rm -rf '%s/var/lib/dpkg' '%s/etc/os-release'", root, root);
	assert_int_equal(system(p), 0);
	mkdirs("usr/lib");
	put("usr/lib/os-release",
	    "ID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME=\"Alpine Linux v3.19\"\n");
	mkdirs("lib/apk/db");
	put("lib/apk/db/installed", "P:musl\nV:1.2.4_git20230717-r4\nA:x86_64\no:musl\n\n"
				    "P:libcrypto3\nV:3.1.4-r5\nA:x86_64\no:openssl\n");
	pkgdb_inv_t *inv = imageinv_read_root(root_fd, NULL, NULL, NULL);
	assert_int_equal(inv->format, PKGDB_FMT_APK);
	assert_int_equal(inv->status, PKGDB_ST_OK);
	assert_string_equal(inv->os_id, "alpine");
	assert_string_equal(inv->os_version, "3.19.1");
	assert_int_equal(inv->n_pkgs, 2);
	assert_string_equal(inv->pkgs[1].source_name, "openssl");
	pkgdb_inv_free(inv);

	snprintf(p, sizeof(p), "rm -rf '%s/lib/apk'", root);
	assert_int_equal(system(p), 0);
	inv = imageinv_read_root(root_fd, NULL, NULL, NULL);
	assert_int_equal(inv->format, PKGDB_FMT_NONE);
	assert_int_equal(inv->status, PKGDB_ST_OK);
	assert_int_equal(inv->n_pkgs, 0);
	pkgdb_inv_free(inv);

	mkdirs("var/lib/rpm");
	put("var/lib/rpm/Packages", "\0\0\0\0\x61\x15\x61\0");
	inv = imageinv_read_root(root_fd, NULL, NULL, NULL);
	assert_int_equal(inv->format, PKGDB_FMT_RPM);
	assert_int_equal(inv->status, PKGDB_ST_NOT_READ);
	assert_non_null(strstr(inv->reason, "Berkeley DB"));
	pkgdb_inv_free(inv);

	put("var/lib/rpm/rpmdb.sqlite", "not a database, just text long enough to be looked at. "
					"not a database, just text long enough to be looked at.");
	inv = imageinv_read_root(root_fd, NULL, NULL, NULL);
	assert_int_equal(inv->format, PKGDB_FMT_RPM);
	assert_int_equal(inv->status, PKGDB_ST_NOT_READ);
	assert_non_null(strstr(inv->reason, "not an sqlite database"));
	pkgdb_inv_free(inv);
}

/* --- through a real process root --------------------------------------- */

/* A child chrooted into the root, sleeping, with a proc file system of
 * its own mount namespace at /proc when with_proc; -1 if not root. */
static pid_t chrooted_child_proc(bool with_proc)
{
	if (geteuid() != 0)
		return -1;
	int ready[2];
	assert_int_equal(pipe(ready), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
		if (with_proc && (unshare(CLONE_NEWNS) < 0 ||
				  mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0))
			_exit(1);
		if (chroot(root) < 0 || chdir("/") < 0)
			_exit(1);
		if (with_proc &&
		    (mkdir("/proc", 0555), mount("proc", "/proc", "proc", 0, NULL) < 0))
			_exit(1);
		if (write(ready[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(ready[1]);
	char c;
	if (read(ready[0], &c, 1) != 1) {
		waitpid(pid, NULL, 0);
		fail_msg("the chrooted child failed");
	}
	close(ready[0]);
	return pid;
}

static pid_t chrooted_child(void)
{
	return chrooted_child_proc(false);
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void test_process_root(void **state)
{
	(void)state;
	pid_t pid = chrooted_child();
	if (pid < 0)
		skip();
	/* an absolute symlink out of the root, read through /proc/PID/root */
	symlink_in("/etc/../../../../etc/shadow", "var/lib/dpkg/shadow-link");
	rootfs_proc_t proc;
	assert_int_equal(rootfs_proc_open(&proc, "/proc", pid), 0);
	int rfd = rootfs_proc_root(&proc, "/proc");
	assert_true(rfd >= 0);
	char *buf;
	size_t len;
	assert_int_equal(rootfs_read(rfd, "/var/lib/dpkg/shadow-link", 4096, &buf, &len),
			 ROOTFS_OK);
	assert_non_null(strstr(buf, "inside-the-root"));
	free(buf);
	bool exited;
	pkgdb_inv_t *inv = imageinv_read_root(rfd, NULL, &proc, &exited);
	assert_false(exited);
	assert_int_equal(inv->status, PKGDB_ST_OK);
	assert_int_equal(inv->n_pkgs, 2);
	pkgdb_inv_free(inv);

	inv = imageinv_read_pid(pid, NULL, &exited);
	assert_false(exited);
	assert_int_equal(inv->n_pkgs, 2);
	pkgdb_inv_free(inv);

	/* the process exits while its root is being read: the result is discarded */
	assert_true(rootfs_proc_alive(&proc, "/proc"));
	reap(pid);
	assert_false(rootfs_proc_alive(&proc, "/proc"));
	inv = imageinv_read_root(rfd, NULL, &proc, &exited);
	assert_true(exited);
	assert_int_equal(inv->status, PKGDB_ST_NOT_READ);
	assert_non_null(strstr(inv->reason, "exited"));
	pkgdb_inv_free(inv);
	close(rfd);
	rootfs_proc_close(&proc);

	/* a gone pid is not read at all */
	inv = imageinv_read_pid(pid, NULL, &exited);
	assert_true(exited);
	assert_int_equal(inv->status, PKGDB_ST_NOT_READ);
	assert_int_equal(inv->n_pkgs, 0);
	pkgdb_inv_free(inv);
}

/* Magic links of a /proc inside the root (/proc/self/root is the reader's,
 * the host's root) are refused by openat2 and are plain paths in the fallback walk. */
static void test_magic_links(void **state)
{
	(void)state;
	pid_t pid = chrooted_child_proc(true);
	if (pid < 0)
		skip();
	mkdirs("hostetc");
	put("hostetc/hostname", "inside\n");
	symlink_in("/proc/self/root/etc/hostname", "var/lib/dpkg/status");
	symlink_in("/proc/self/fd", "var/lib/fds");
	rootfs_proc_t proc;
	assert_int_equal(rootfs_proc_open(&proc, "/proc", pid), 0);
	int rfd = rootfs_proc_root(&proc, "/proc");
	assert_true(rfd >= 0);
	char *buf = NULL;
	size_t len;
	/* the child's /proc is there */
	assert_int_equal(rootfs_read(rfd, "/proc/self/stat", 4096, &buf, &len), ROOTFS_OK);
	free(buf);
	buf = NULL;
	assert_int_equal(rootfs_read(rfd, "/var/lib/dpkg/status", 4096, &buf, &len), ROOTFS_LOOP);
	assert_int_equal(rootfs_read(rfd, "/proc/self/root/etc/hostname", 4096, &buf, &len),
			 ROOTFS_LOOP);
	rootfs_set_fallback(true);
	/* /proc/self/root reads as "/": the root's own /etc, which has no hostname */
	assert_int_equal(rootfs_read(rfd, "/var/lib/dpkg/status", 4096, &buf, &len), ROOTFS_ABSENT);
	symlink_in("/proc/self/root/hostetc/hostname", "var/lib/dpkg/status");
	assert_int_equal(rootfs_read(rfd, "/var/lib/dpkg/status", 4096, &buf, &len), ROOTFS_OK);
	assert_string_equal(buf, "inside\n");
	free(buf);
	buf = NULL;
	assert_int_not_equal(rootfs_read(rfd, "/var/lib/fds/0", 4096, &buf, &len), ROOTFS_OK);
	assert_null(buf);
	close(rfd);
	rootfs_proc_close(&proc);
	reap(pid);
}

/* The start-time check alone (where pidfd_open is missing). */
static void test_proc_start_time(void **state)
{
	(void)state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	rootfs_proc_t proc;
	assert_int_equal(rootfs_proc_open(&proc, "/proc", pid), 0);
	close(proc.pidfd);
	proc.pidfd = -1;
	assert_true(rootfs_proc_alive(&proc, "/proc"));
	kill(pid, SIGKILL);
	/* a zombie is not alive either */
	for (int i = 0; i < 100 && rootfs_proc_alive(&proc, "/proc"); i++)
		usleep(10000);
	assert_false(rootfs_proc_alive(&proc, "/proc"));
	waitpid(pid, NULL, 0);
	assert_false(rootfs_proc_alive(&proc, "/proc"));
	assert_int_equal(rootfs_proc_open(&proc, "/proc", pid), -1);
}

/* The host's own dpkg database through /proc/self/root. */
static void test_host_dpkg(void **state)
{
	(void)state;
	FILE *f = popen("dpkg-query -W -f='${db:Status-Status} ${db:Status-Eflag}\\n' 2>/dev/null"
			" | grep -c '^installed ok$'",
			"r");
	long want = 0;
	if (!f || fscanf(f, "%ld", &want) != 1)
		want = 0;
	if (f)
		pclose(f);
	if (want == 0)
		skip();
	bool exited;
	int64_t t0 = vtime_mono_ns();
	pkgdb_inv_t *inv = imageinv_read_pid(getpid(), NULL, &exited);
	int64_t ms = (vtime_mono_ns() - t0) / 1000000;
	assert_false(exited);
	assert_int_equal(inv->format, PKGDB_FMT_DPKG);
	assert_int_equal(inv->status, PKGDB_ST_OK);
	assert_int_equal((long)inv->n_pkgs, want);
	assert_non_null(inv->os_id);
	printf("host: %s %s, %zu packages in %lld ms\n", inv->os_id,
	       inv->os_version ? inv->os_version : "?", inv->n_pkgs, (long long)ms);
	pkgdb_inv_free(inv);
}

/* --- the worker --------------------------------------------------------- */

static size_t wait_results(imageinv_t *w, imageinv_result_t *out, size_t max)
{
	struct pollfd p = {.fd = imageinv_fd(w), .events = POLLIN};
	for (int i = 0; i < 100; i++) {
		size_t n = imageinv_poll(w, out, max);
		if (n)
			return n;
		poll(&p, 1, 100);
	}
	return 0;
}

static void test_worker(void **state)
{
	(void)state;
	pid_t pid = chrooted_child();
	if (pid < 0)
		skip();
	imageinv_opts_t o = {.queue_max = 2, .cache_max = 1};
	imageinv_t *w = imageinv_new(&o);
	assert_non_null(w);
	assert_int_equal(imageinv_submit(w, pid, ""), IMAGEINV_INVALID);
	assert_int_equal(imageinv_submit(w, 0, "sha256:a"), IMAGEINV_INVALID);
	assert_int_equal(imageinv_submit(w, pid, "sha256:a"), IMAGEINV_QUEUED);
	imageinv_submit_t again = imageinv_submit(w, pid, "sha256:a");
	assert_true(again == IMAGEINV_PENDING || again == IMAGEINV_CACHED);
	imageinv_result_t r[4];
	size_t n = wait_results(w, r, 4);
	if (again == IMAGEINV_CACHED && n < 2)
		n += wait_results(w, r + n, 4 - n);
	assert_int_equal(n, again == IMAGEINV_CACHED ? 2 : 1);
	assert_string_equal(r[0].image_id, "sha256:a");
	assert_false(r[0].cached);
	assert_false(r[0].exited);
	assert_int_equal(r[0].inv->n_pkgs, 2);
	for (size_t i = 0; i < n; i++)
		imageinv_result_clear(&r[i]);

	/* read once: the next answer comes from the cache, at once */
	assert_int_equal(imageinv_submit(w, pid, "sha256:a"), IMAGEINV_CACHED);
	assert_int_equal(imageinv_poll(w, r, 4), 1);
	assert_true(r[0].cached);
	assert_int_equal(r[0].inv->n_pkgs, 2);
	imageinv_result_clear(&r[0]);
	pkgdb_inv_t *c = imageinv_cached(w, "sha256:a");
	assert_non_null(c);
	pkgdb_inv_free(c);
	assert_null(imageinv_cached(w, "sha256:b"));

	/* the queue is bounded: results not polled count */
	assert_int_equal(imageinv_submit(w, pid, "sha256:b"), IMAGEINV_QUEUED);
	assert_int_equal(imageinv_submit(w, pid, "sha256:c"), IMAGEINV_QUEUED);
	assert_int_equal(imageinv_submit(w, pid, "sha256:d"), IMAGEINV_FULL);
	n = 0;
	for (int i = 0; i < 10 && n < 2; i++)
		n += wait_results(w, r + n, 4 - n);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++)
		imageinv_result_clear(&r[i]);
	/* cache_max 1: "a" was evicted */
	assert_null(imageinv_cached(w, "sha256:a"));

	/* a container gone: its result says so and is not cached */
	reap(pid);
	assert_int_equal(imageinv_submit(w, pid, "sha256:e"), IMAGEINV_QUEUED);
	assert_int_equal(wait_results(w, r, 4), 1);
	assert_true(r[0].exited);
	assert_int_equal(r[0].inv->status, PKGDB_ST_NOT_READ);
	imageinv_result_clear(&r[0]);
	assert_null(imageinv_cached(w, "sha256:e"));

	/* results not polled are freed with the worker */
	assert_int_equal(imageinv_submit(w, getpid(), "sha256:c"), IMAGEINV_CACHED);
	imageinv_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_escapes_openat2, setup, teardown),
		cmocka_unit_test_setup_teardown(test_escapes_fallback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kinds_openat2, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kinds_fallback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inventory_dpkg, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inventory_apk_rpm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_process_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_magic_links, setup, teardown),
		cmocka_unit_test(test_proc_start_time),
		cmocka_unit_test(test_host_dpkg),
		cmocka_unit_test_setup_teardown(test_worker, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
