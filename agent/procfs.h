// SPDX-License-Identifier: Apache-2.0
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
	uint32_t uid, gid;   /* effective */
	uint32_t ruid, rgid; /* real */
	uint64_t cap_eff, cap_bnd;
	bool have_ppid, have_uid, have_caps;
	bool have_nnp, no_new_privs;
	bool have_seccomp;	  /* Seccomp: 0 disabled, 1 strict, 2 filter */
	unsigned seccomp;	  /* the kernel's number */
	bool have_filters;	  /* Seccomp_filters (Linux 5.9+) */
	uint32_t seccomp_filters; /* filters attached */
} procfs_status_t;

/* One line of /proc/PID/mountinfo, decoded (octal escapes undone), each
 * string cut to its buffer. */
typedef struct {
	char root[512];
	char mount_point[1024];
	char fstype[64];
	char source[512];
	char super_opts[2048];
	bool read_only;		 /* per-mount "ro" */
	const char *propagation; /* "shared", "slave", "private", "unbindable" */
} procfs_mount_t;

/* Bound on the mountinfo text a parser looks at. */
#define PROCFS_MOUNTINFO_MAX (1024 * 1024)

/* Parse the text of /proc/PID/status. Return 0 if PPid was found, else -1. */
int procfs_parse_status(const char *buf, size_t len, procfs_status_t *out);

/* Append the NUL-separated arguments of a /proc/PID/cmdline to argv, each
 * capped (text.h) and all together at most max_total bytes; set
 * *truncated if anything was cut. Return 0; 1, with no argument, if
 * the text is only NUL bytes (the process zeroed its arguments); or -1 on
 * OOM. */
int procfs_parse_cmdline(const char *buf, size_t len, size_t max_total, ctr_strv_t *argv,
			 bool *truncated);

/* Field 22 (starttime, clock ticks after boot) of /proc/PID/stat, field 4
 * (ppid) and field 3 (state: R, S, Z, ...) into *state if not NULL.
 * Return 0, or -1 if the text does not parse. */
int procfs_parse_stat(const char *buf, size_t len, uint64_t *starttime, uint32_t *ppid,
		      char *state);

/* procfs_parse_stat plus field 7 (tty_nr; 0 = no controlling terminal).
 * Return 0, or -1 if the text does not parse that far. */
int procfs_parse_stat_tty(const char *buf, size_t len, uint32_t *tty_nr);

/* Call cb for each well-formed line of a /proc/PID/mountinfo text (at
 * most PROCFS_MOUNTINFO_MAX bytes are looked at, at most 4096 lines);
 * cb returns false to stop. Return the number of mounts passed to cb. */
int procfs_parse_mountinfo(const char *buf, size_t len,
			   bool (*cb)(void *arg, const procfs_mount_t *m), void *arg);

/* The value of key (e.g. "upperdir") in the comma-separated mount options
 * opts, copied into out (cap bytes). Return true if found and it fits. */
bool procfs_mount_opt(const char *opts, const char *key, char *out, size_t cap);

/* True if a /proc/PID/uid_map (or gid_map) text is the initial user
 * namespace's identity map ("0 0 4294967295"). */
bool procfs_uid_map_is_host(const char *buf, size_t len);

/* Parse /proc/PID/loginuid. Return 0 and set *uid, or -1. */
int procfs_parse_u32(const char *buf, size_t len, uint32_t *uid);

/* Clean /proc/PID/attr/current into out (cap bytes): up to the first NUL
 * or newline, control characters replaced. Return its length. */
size_t procfs_clean_label(const char *buf, size_t len, char *out, size_t cap);

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
