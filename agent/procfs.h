/*
 * /proc: pure parsers for the files the agent reads (status, cmdline,
 * stat, namespace links) and the thin readers that fetch them for one
 * pid. Parsers take a buffer and do no I/O; readers never block for long
 * (procfs) and report a vanished process as -1 with errno ENOENT/ESRCH.
 */
#ifndef VIGIL_AGENT_PROCFS_H
#define VIGIL_AGENT_PROCFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ctr.h"

typedef struct {
	uint32_t ppid;
	uint32_t uid, gid; /* effective */
	uint64_t cap_eff, cap_bnd;
	bool have_ppid, have_uid, have_caps;
} procfs_status_t;

/* Parse the text of /proc/PID/status. Return 0 if PPid was found, else -1. */
int procfs_parse_status(const char *buf, size_t len, procfs_status_t *out);

/* Append the NUL-separated arguments of a /proc/PID/cmdline to argv, each
 * capped (text.h) and all together at most max_total bytes; set
 * *truncated if anything was cut. Return 0, or -1 on OOM. */
int procfs_parse_cmdline(const char *buf, size_t len, size_t max_total, ctr_strv_t *argv,
			 bool *truncated);

/* Field 22 (starttime, clock ticks after boot) of /proc/PID/stat, field 4
 * (ppid) and field 3 (state: R, S, Z, ...) into *state if not NULL.
 * Return 0, or -1 if the text does not parse. */
int procfs_parse_stat(const char *buf, size_t len, uint64_t *starttime, uint32_t *ppid,
		      char *state);

/* Parse "net:[4026531840]" into 4026531840. Return 0 or -1. */
int procfs_parse_ns_link(const char *buf, size_t len, uint64_t *inode);

/* Append the names (CAP_CHOWN, ...) of the bits set in mask. */
int procfs_cap_names(uint64_t mask, ctr_strv_t *out);

/* Parse a capability name ("CAP_SYS_ADMIN" or "SYS_ADMIN", any case).
 * Return its number, or -1. */
int procfs_cap_number(const char *name);

/* ---- readers (I/O) ---- */

/* Read at most cap - 1 bytes of ROOT/PID/NAME into buf, NUL-terminate.
 * Return the length, or -1 with errno set. */
ssize_t procfs_read(const char *root, uint32_t pid, const char *name, char *buf, size_t cap);

/* readlink ROOT/PID/NAME into buf (NUL-terminated). Return length or -1. */
ssize_t procfs_readlink(const char *root, uint32_t pid, const char *name, char *buf, size_t cap);

/* The inode of namespace ns ("pid", "net", ...) of pid. Return 0 or -1. */
int procfs_ns(const char *root, uint32_t pid, const char *ns, uint64_t *inode);

/* Seconds since the epoch at boot (btime of ROOT/stat), or 0. */
int64_t procfs_boot_time(const char *root);

#endif
