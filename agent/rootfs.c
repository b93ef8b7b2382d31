// SPDX-License-Identifier: Apache-2.0
/* Files inside a container's root, resolved and opened safely (see
 * rootfs.h). */
#include "rootfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

static atomic_bool force_fallback;
static atomic_bool no_openat2; /* the kernel said ENOSYS once */

const char *rootfs_rc_name(rootfs_rc_t rc)
{
	switch (rc) {
	case ROOTFS_OK:
		return "ok";
	case ROOTFS_ABSENT:
		return "absent";
	case ROOTFS_NOT_REGULAR:
		return "not a regular file";
	case ROOTFS_TOO_BIG:
		return "over the size cap";
	case ROOTFS_LOOP:
		return "too many symlinks";
	case ROOTFS_ERROR:
		break;
	}
	return "error";
}

void rootfs_set_fallback(bool on)
{
	atomic_store(&force_fallback, on);
}

static rootfs_rc_t rc_of_errno(int e)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR:
		return ROOTFS_ABSENT;
	case ELOOP:
		return ROOTFS_LOOP;
	default:
		return ROOTFS_ERROR;
	}
}

/* --- the fallback walk ------------------------------------------------ */

typedef struct {
	int root;
	int fds[ROOTFS_MAX_DEPTH + 1]; /* fds[0] is root (not owned) */
	size_t depth;
} walk_t;

static void walk_pop_to(walk_t *w, size_t depth)
{
	while (w->depth > depth)
		close(w->fds[w->depth--]);
}

/* Replace rest (from at) with target + "/" + rest[at...]. */
static int splice_link(char *rest, size_t *at, const char *target, size_t tlen)
{
	size_t left = strlen(rest + *at);
	if (tlen + 1 + left + 1 > PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memmove(rest + tlen + 1, rest + *at, left + 1);
	memcpy(rest, target, tlen);
	rest[tlen] = '/';
	*at = 0;
	return 0;
}

/* Resolve path inside root with O_NOFOLLOW opens and our own symlink
 * handling; the final fd is O_PATH. */
static rootfs_rc_t walk_open(int root_fd, const char *path, int *out)
{
	char rest[PATH_MAX], link[PATH_MAX];
	if (strlen(path) >= sizeof(rest)) {
		errno = ENAMETOOLONG;
		return ROOTFS_ERROR;
	}
	strcpy(rest, path);
	walk_t w = {.root = root_fd, .fds = {root_fd}, .depth = 0};
	size_t at = 0;
	int hops = 0, leaf = -1;
	rootfs_rc_t rc = ROOTFS_OK;
	while (rest[at]) {
		if (rest[at] == '/') {
			at++;
			continue;
		}
		size_t n = strcspn(rest + at, "/");
		char name[NAME_MAX + 1];
		if (n > NAME_MAX) {
			errno = ENAMETOOLONG;
			rc = ROOTFS_ERROR;
			goto out;
		}
		memcpy(name, rest + at, n);
		name[n] = '\0';
		at += n;
		if (leaf >= 0) { /* a component after a file */
			rc = ROOTFS_ABSENT;
			goto out;
		}
		if (strcmp(name, ".") == 0)
			continue;
		if (strcmp(name, "..") == 0) { /* never above the root */
			if (w.depth > 0)
				walk_pop_to(&w, w.depth - 1);
			continue;
		}
		int fd = openat(w.fds[w.depth], name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0) {
			rc = rc_of_errno(errno);
			if (fd >= 0)
				close(fd);
			goto out;
		}
		if (S_ISLNK(st.st_mode)) {
			ssize_t k = readlinkat(fd, "", link, sizeof(link) - 1);
			close(fd);
			if (++hops > ROOTFS_MAX_SYMLINKS) {
				rc = ROOTFS_LOOP;
				goto out;
			}
			if (k == 0) { /* an empty target names nothing */
				rc = ROOTFS_ABSENT;
				goto out;
			}
			if (k > 0)
				link[k] = '\0';
			if (k < 0 || splice_link(rest, &at, link, (size_t)k) < 0) {
				rc = ROOTFS_ERROR;
				goto out;
			}
			if (link[0] == '/')
				walk_pop_to(&w, 0);
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			if (w.depth == ROOTFS_MAX_DEPTH) {
				close(fd);
				rc = ROOTFS_LOOP;
				goto out;
			}
			w.fds[++w.depth] = fd;
			continue;
		}
		leaf = fd;
	}
	if (leaf >= 0) {
		*out = leaf;
		leaf = -1;
	} else {
		*out = fcntl(w.fds[w.depth], F_DUPFD_CLOEXEC, 0);
		if (*out < 0)
			rc = ROOTFS_ERROR;
	}
out:
	if (leaf >= 0)
		close(leaf);
	walk_pop_to(&w, 0);
	return rc;
}

/* --- opening ----------------------------------------------------------- */

static rootfs_rc_t resolve(int root_fd, const char *path, int *out)
{
	if (!atomic_load(&force_fallback) && !atomic_load(&no_openat2)) {
		struct open_how how = {
			.flags = O_PATH | O_CLOEXEC,
			.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
		};
		for (int tries = 0; tries < 8; tries++) {
			long fd = syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
			if (fd >= 0) {
				*out = (int)fd;
				return ROOTFS_OK;
			}
			if (errno == EAGAIN || errno == EINTR)
				continue; /* a rename raced the lookup: the kernel asks to retry */
			if (errno != ENOSYS)
				return rc_of_errno(errno);
			break;
		}
		if (errno == ENOSYS)
			atomic_store(&no_openat2, true);
		else
			return rc_of_errno(errno);
	}
	return walk_open(root_fd, path, out);
}

rootfs_rc_t rootfs_open(int root_fd, const char *path, bool dir, int *fd_out)
{
	int pfd = -1;
	rootfs_rc_t rc = resolve(root_fd, path, &pfd);
	if (rc != ROOTFS_OK)
		return rc;
	struct stat st, st2;
	if (fstat(pfd, &st) < 0) {
		close(pfd);
		return ROOTFS_ERROR;
	}
	if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
		close(pfd);
		return dir ? ROOTFS_ABSENT : ROOTFS_NOT_REGULAR;
	}
	/* reopen the very inode the O_PATH fd holds, now that its type is known */
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
	int fd = open(self, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY | (dir ? O_DIRECTORY : 0));
	int e = errno;
	close(pfd);
	if (fd < 0) {
		errno = e;
		return ROOTFS_ERROR;
	}
	if (fstat(fd, &st2) < 0 || st2.st_dev != st.st_dev || st2.st_ino != st.st_ino) {
		close(fd);
		return ROOTFS_ERROR;
	}
	*fd_out = fd;
	return ROOTFS_OK;
}

rootfs_rc_t rootfs_read(int root_fd, const char *path, size_t max, char **buf_out, size_t *len_out)
{
	int fd;
	rootfs_rc_t rc = rootfs_open(root_fd, path, false, &fd);
	if (rc != ROOTFS_OK)
		return rc;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return ROOTFS_ERROR;
	}
	if (st.st_size < 0 || (uint64_t)st.st_size > max) {
		close(fd);
		return ROOTFS_TOO_BIG;
	}
	size_t cap = (size_t)st.st_size + 1, len = 0;
	char *buf = malloc(cap + 1);
	if (!buf) {
		close(fd);
		return ROOTFS_ERROR;
	}
	for (;;) {
		if (len == cap) { /* it grew since fstat */
			size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			if (ncap <= cap) {
				rc = ROOTFS_TOO_BIG;
				break;
			}
			char *nb = realloc(buf, ncap + 1);
			if (!nb) {
				rc = ROOTFS_ERROR;
				break;
			}
			buf = nb;
			cap = ncap;
		}
		ssize_t k = read(fd, buf + len, cap - len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			rc = ROOTFS_ERROR;
			break;
		}
		if (k == 0)
			break;
		len += (size_t)k;
	}
	close(fd);
	if (rc == ROOTFS_OK && len > max)
		rc = ROOTFS_TOO_BIG;
	if (rc != ROOTFS_OK) {
		free(buf);
		return rc;
	}
	buf[len] = '\0';
	*buf_out = buf;
	*len_out = len;
	return ROOTFS_OK;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void rootfs_names_free(char **names, size_t n)
{
	if (!names)
		return;
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

rootfs_rc_t rootfs_list(int root_fd, const char *path, size_t max, char ***names_out, size_t *n_out,
			bool *more)
{
	int fd;
	rootfs_rc_t rc = rootfs_open(root_fd, path, true, &fd);
	if (rc != ROOTFS_OK)
		return rc;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return ROOTFS_ERROR;
	}
	char **names = calloc(max ? max : 1, sizeof(*names));
	size_t n = 0;
	*more = false;
	if (!names)
		rc = ROOTFS_ERROR;
	struct dirent *de;
	while (rc == ROOTFS_OK && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == max) {
			*more = true;
			break;
		}
		if (!(names[n] = strdup(de->d_name)))
			rc = ROOTFS_ERROR;
		else
			n++;
	}
	closedir(d);
	if (rc != ROOTFS_OK) {
		rootfs_names_free(names, n);
		return rc;
	}
	qsort(names, n, sizeof(*names), name_cmp);
	*names_out = names;
	*n_out = n;
	return ROOTFS_OK;
}

/* --- the process read from -------------------------------------------- */

/* Field 22 of /proc/PID/stat (start time in clock ticks); 0 if it cannot
 * be read or the process is a zombie. */
static uint64_t proc_start_time(const char *proc_root, pid_t pid)
{
	char path[PATH_MAX], buf[1024];
	snprintf(path, sizeof(path), "%s/%d/stat", proc_root, (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
		return 0;
	p += 2; /* field 3, the state */
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return 0;
		p++;
	}
	return strtoull(p, NULL, 10);
}

int rootfs_proc_open(rootfs_proc_t *p, const char *proc_root, pid_t pid)
{
	p->pid = pid;
	p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	p->start_time = proc_start_time(proc_root, pid);
	if (p->start_time == 0 || !rootfs_proc_alive(p, proc_root)) {
		rootfs_proc_close(p);
		return -1;
	}
	return 0;
}

bool rootfs_proc_alive(const rootfs_proc_t *p, const char *proc_root)
{
	if (p->pidfd >= 0) {
		struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
		if (poll(&pfd, 1, 0) != 0) /* readable: it exited */
			return false;
	}
	return proc_start_time(proc_root, p->pid) == p->start_time;
}

int rootfs_proc_root(const rootfs_proc_t *p, const char *proc_root)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%d/root", proc_root, (int)p->pid);
	int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (!rootfs_proc_alive(p, proc_root)) {
		close(fd);
		return -1;
	}
	return fd;
}

void rootfs_proc_close(rootfs_proc_t *p)
{
	if (p->pidfd >= 0)
		close(p->pidfd);
	p->pidfd = -1;
}
