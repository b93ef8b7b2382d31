// SPDX-License-Identifier: Apache-2.0
/*
 * Reading files from a container's root file system, which its processes
 * control and may have made hostile. Every path is resolved inside the
 * root: openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) where the kernel
 * has it (Linux 5.6+), else a walk of the components that opens each with
 * O_NOFOLLOW and resolves symlinks itself against the same root (at most
 * ROOTFS_MAX_SYMLINKS hops; ".." stops at the root; a symlink's text is a
 * plain path there, so /proc magic links lead nowhere outside). The file
 * is first opened O_PATH and fstat'ed: only a regular file (or a directory,
 * where one is asked for) is then opened for reading, so a FIFO, socket or
 * device is refused without being opened at all (no blocking, no device
 * side effects); reads are capped.
 *
 * What a path cannot show: a hard link inside the root to a file outside
 * it (made before the container started, or through a volume) is just a
 * regular file here. The caps on type and size are what holds for it.
 *
 * The root is a directory fd of /proc/PID/root opened by the caller; a
 * rootfs_proc_t tells whether that process is still the same one, so that
 * a result read while it exited (its pid may be reused) is discarded.
 */
#ifndef VIGIL_AGENT_ROOTFS_H
#define VIGIL_AGENT_ROOTFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ROOTFS_MAX_SYMLINKS 40
#define ROOTFS_MAX_DEPTH 64 /* directories deep, in the fallback walk */

typedef enum {
	ROOTFS_OK = 0,
	ROOTFS_ABSENT,	    /* no such file (or a component is not a directory) */
	ROOTFS_NOT_REGULAR, /* a FIFO, socket, device, symlink loop end, or a directory */
	ROOTFS_TOO_BIG,	    /* over the size cap (at open or while reading) */
	ROOTFS_LOOP,	    /* too many symlinks, or too deep */
	ROOTFS_ERROR,	    /* another error; errno has it */
} rootfs_rc_t;

const char *rootfs_rc_name(rootfs_rc_t rc);

/* Force the fallback walk even where openat2 exists (tests). */
void rootfs_set_fallback(bool on);

/* Open path (absolute or relative, always taken inside the root) under
 * root_fd for reading: O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, and
 * O_DIRECTORY when dir is true. The file must be a regular file (dir:
 * a directory). Store the fd in *fd_out (the caller closes it). */
rootfs_rc_t rootfs_open(int root_fd, const char *path, bool dir, int *fd_out)
	__attribute__((warn_unused_result));

/* Read a regular file inside the root: at most max bytes, refused as
 * ROOTFS_TOO_BIG when it is (or grows) larger. *buf_out (NUL-terminated,
 * the caller frees) and *len_out are set on ROOTFS_OK. */
rootfs_rc_t rootfs_read(int root_fd, const char *path, size_t max, char **buf_out, size_t *len_out)
	__attribute__((warn_unused_result));

/* The names in a directory inside the root, "." and ".." left out, at most
 * max of them (*more set when there were more). Each name is a string in
 * *names_out (an array the caller frees with rootfs_names_free), sorted. */
rootfs_rc_t rootfs_list(int root_fd, const char *path, size_t max, char ***names_out, size_t *n_out,
			bool *more) __attribute__((warn_unused_result));
void rootfs_names_free(char **names, size_t n);

/* A process being read from. */
typedef struct {
	pid_t pid;
	int pidfd;	     /* -1 where pidfd_open is missing */
	uint64_t start_time; /* /proc/PID/stat field 22, the fallback check */
} rootfs_proc_t;

/* Pin pid (under proc_root, e.g. "/proc") before opening its root: a pidfd,
 * or else its start time. Return 0, -1 if the process is gone. */
int rootfs_proc_open(rootfs_proc_t *p, const char *proc_root, pid_t pid)
	__attribute__((warn_unused_result));
/* Open proc_root/PID/root as a directory fd (O_PATH), then check the
 * process is still the one pinned. Return the fd, -1 if it is gone. */
int rootfs_proc_root(const rootfs_proc_t *p, const char *proc_root);
/* Whether the pinned process is still running (not exited, not reused). */
bool rootfs_proc_alive(const rootfs_proc_t *p, const char *proc_root);
void rootfs_proc_close(rootfs_proc_t *p);

#endif
