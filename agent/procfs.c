// SPDX-License-Identifier: Apache-2.0
/* /proc parsers and readers (see procfs.h). */
#include "procfs.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "text.h"

static const char *const cap_names[] = {
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_DAC_READ_SEARCH",
	"CAP_FOWNER",
	"CAP_FSETID",
	"CAP_KILL",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST",
	"CAP_NET_ADMIN",
	"CAP_NET_RAW",
	"CAP_IPC_LOCK",
	"CAP_IPC_OWNER",
	"CAP_SYS_MODULE",
	"CAP_SYS_RAWIO",
	"CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE",
	"CAP_SYS_PACCT",
	"CAP_SYS_ADMIN",
	"CAP_SYS_BOOT",
	"CAP_SYS_NICE",
	"CAP_SYS_RESOURCE",
	"CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG",
	"CAP_MKNOD",
	"CAP_LEASE",
	"CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL",
	"CAP_SETFCAP",
	"CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN",
	"CAP_SYSLOG",
	"CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND",
	"CAP_AUDIT_READ",
	"CAP_PERFMON",
	"CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
};
#define N_CAPS (sizeof(cap_names) / sizeof(cap_names[0]))

int procfs_cap_names(uint64_t mask, ctr_strv_t *out)
{
	for (unsigned i = 0; i < 64; i++) {
		if (!(mask & (UINT64_C(1) << i)))
			continue;
		char unknown[16];
		const char *n = cap_names[0];
		if (i < N_CAPS) {
			n = cap_names[i];
		} else {
			snprintf(unknown, sizeof(unknown), "CAP_%u", i);
			n = unknown;
		}
		if (ctr_strv_push(out, n, strlen(n), NULL) != 0)
			return -1;
	}
	return 0;
}

int procfs_cap_number(const char *name)
{
	if (!name)
		return -1;
	if (strncasecmp(name, "CAP_", 4) == 0)
		name += 4;
	for (size_t i = 0; i < N_CAPS; i++)
		if (strcasecmp(name, cap_names[i] + 4) == 0)
			return (int)i;
	return -1;
}

/* Value after "Key:" on a line of status, or NULL. */
static const char *field(const char *line, size_t n, const char *key, size_t *vlen)
{
	size_t kl = strlen(key);
	if (n <= kl || memcmp(line, key, kl) != 0 || line[kl] != ':')
		return NULL;
	size_t i = kl + 1;
	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	*vlen = n - i;
	return line + i;
}

static bool parse_u64(const char *s, size_t n, int base, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;
	for (; i < n; i++) {
		int d;
		char c = s[i];
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			break;
		if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
			return false;
		v = v * (uint64_t)base + (uint64_t)d;
	}
	if (i == 0)
		return false;
	*out = v;
	return true;
}

int procfs_parse_status(const char *buf, size_t len, procfs_status_t *out)
{
	memset(out, 0, sizeof(*out));
	bool have_eff = false, have_bnd = false;
	size_t pos = 0;
	while (pos < len) {
		size_t eol = pos;
		while (eol < len && buf[eol] != '\n')
			eol++;
		const char *l = buf + pos;
		size_t n = eol - pos, vl;
		const char *v;
		uint64_t x;
		if ((v = field(l, n, "PPid", &vl)) && parse_u64(v, vl, 10, &x)) {
			out->ppid = (uint32_t)x;
			out->have_ppid = true;
		} else if ((v = field(l, n, "Uid", &vl)) || (v = field(l, n, "Gid", &vl))) {
			/* real, effective, saved, fs */
			uint64_t real;
			bool have_real = parse_u64(v, vl, 10, &real);
			size_t i = 0;
			while (i < vl && isdigit((unsigned char)v[i]))
				i++;
			while (i < vl && (v[i] == ' ' || v[i] == '\t'))
				i++;
			if (have_real && parse_u64(v + i, vl - i, 10, &x) && real <= UINT32_MAX &&
			    x <= UINT32_MAX) {
				if (l[0] == 'U') {
					out->uid = (uint32_t)x;
					out->ruid = (uint32_t)real;
					out->have_uid = true;
				} else {
					out->gid = (uint32_t)x;
					out->rgid = (uint32_t)real;
				}
			}
		} else if ((v = field(l, n, "NoNewPrivs", &vl)) && parse_u64(v, vl, 10, &x)) {
			out->no_new_privs = x != 0;
			out->have_nnp = true;
		} else if ((v = field(l, n, "Seccomp", &vl)) && parse_u64(v, vl, 10, &x) &&
			   x <= 2) {
			out->seccomp = (unsigned)x;
			out->have_seccomp = true;
		} else if ((v = field(l, n, "Seccomp_filters", &vl)) && parse_u64(v, vl, 10, &x) &&
			   x <= UINT32_MAX) {
			out->seccomp_filters = (uint32_t)x;
			out->have_filters = true;
		} else if ((v = field(l, n, "CapEff", &vl)) && parse_u64(v, vl, 16, &x)) {
			out->cap_eff = x;
			have_eff = true;
		} else if ((v = field(l, n, "CapBnd", &vl)) && parse_u64(v, vl, 16, &x)) {
			out->cap_bnd = x;
			have_bnd = true;
		}
		pos = eol + 1;
	}
	out->have_caps = have_eff && have_bnd;
	return out->have_ppid ? 0 : -1;
}

int procfs_parse_cmdline(const char *buf, size_t len, size_t max_total, ctr_strv_t *argv,
			 bool *truncated)
{
	size_t pos = 0, used = 0;
	/* Only NUL bytes: the process zeroed its arguments (to hide them),
	 * which says nothing of what they were. */
	size_t zeros = 0;
	while (zeros < len && buf[zeros] == '\0')
		zeros++;
	if (len > 1 && zeros == len)
		return 1;
	/* a trailing NUL ends the last argument, it does not start one */
	if (len && buf[len - 1] == '\0')
		len--;
	if (len == 0)
		return 0;
	for (;;) {
		const char *s = buf + pos;
		const char *nul = memchr(s, '\0', len - pos);
		size_t n = nul ? (size_t)(nul - s) : len - pos;
		size_t room = max_total > used ? max_total - used : 0;
		if (room < sizeof(TEXT_TRUNC_MARKER) + 1) {
			*truncated = true;
			break;
		}
		/* the argument and its separator must fit in room */
		size_t cap = room - 1 < text_max() ? room - 1 : text_max();
		char *a = text_dup_n(s, n, cap, truncated);
		if (!a)
			return -1;
		char **nv = realloc(argv->v, (argv->n + 1) * sizeof(*nv));
		if (!nv) {
			free(a);
			return -1;
		}
		argv->v = nv;
		nv[argv->n++] = a;
		used += strlen(a) + 1;
		if (!nul)
			break;
		pos = (size_t)(nul - buf) + 1;
		if (pos > len)
			break;
	}
	return 0;
}

int procfs_parse_stat(const char *buf, size_t len, uint64_t *starttime, uint32_t *ppid, char *state)
{
	/* comm may hold spaces and parentheses: fields start after the last ')' */
	const char *rp = NULL;
	for (size_t i = len; i > 0; i--) {
		if (buf[i - 1] == ')') {
			rp = buf + i - 1;
			break;
		}
	}
	if (!rp)
		return -1;
	size_t pos = (size_t)(rp - buf) + 1;
	/* field 3 (state) is the first after ")" */
	int fieldno = 2;
	uint64_t v;
	bool have_start = false, have_ppid = false;
	while (pos < len) {
		while (pos < len && buf[pos] == ' ')
			pos++;
		if (pos >= len)
			break;
		fieldno++;
		size_t start = pos;
		while (pos < len && buf[pos] != ' ' && buf[pos] != '\n')
			pos++;
		if (fieldno == 3 && state)
			*state = buf[start];
		if (fieldno == 4 && parse_u64(buf + start, pos - start, 10, &v)) {
			*ppid = (uint32_t)v;
			have_ppid = true;
		}
		if (fieldno == 22) {
			if (!parse_u64(buf + start, pos - start, 10, &v))
				return -1;
			*starttime = v;
			have_start = true;
			break;
		}
	}
	return have_start && have_ppid ? 0 : -1;
}

int procfs_parse_stat_tty(const char *buf, size_t len, uint32_t *tty_nr)
{
	const char *rp = NULL;
	for (size_t i = len; i > 0; i--) {
		if (buf[i - 1] == ')') {
			rp = buf + i - 1;
			break;
		}
	}
	if (!rp)
		return -1;
	size_t pos = (size_t)(rp - buf) + 1;
	int fieldno = 2;
	while (pos < len) {
		while (pos < len && buf[pos] == ' ')
			pos++;
		if (pos >= len)
			break;
		fieldno++;
		size_t start = pos;
		while (pos < len && buf[pos] != ' ' && buf[pos] != '\n')
			pos++;
		if (fieldno == 7) {
			/* a signed int in the text; the kernel's dev_t encoding */
			const char *s = buf + start;
			size_t n = pos - start;
			uint64_t v;
			if (n && s[0] == '-') {
				*tty_nr = 0;
				return 0;
			}
			if (!parse_u64(s, n, 10, &v) || v > UINT32_MAX)
				return -1;
			*tty_nr = (uint32_t)v;
			return 0;
		}
	}
	return -1;
}

/* Copy a mountinfo field of n bytes into out, undoing the kernel's octal
 * escapes (\040 for a space, ...); cut to cap - 1 bytes. */
static void unescape(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 1 < cap; i++) {
		if (s[i] == '\\' && i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3' &&
		    s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
			out[o++] = (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 +
					  (s[i + 3] - '0'));
			i += 3;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
}

/* Has the comma-separated list (n bytes) the option opt? */
static bool has_opt(const char *list, size_t n, const char *opt)
{
	size_t ol = strlen(opt), pos = 0;
	while (pos <= n) {
		const char *c = memchr(list + pos, ',', n - pos);
		size_t e = c ? (size_t)(c - list) : n;
		if (e - pos == ol && memcmp(list + pos, opt, ol) == 0)
			return true;
		if (!c)
			break;
		pos = e + 1;
	}
	return false;
}

#define MOUNTINFO_LINES_MAX 4096

/* Parse one mountinfo line (n bytes, no newline) into m. */
static bool mountinfo_line(const char *l, size_t n, procfs_mount_t *m)
{
	/* id parent maj:min root mount-point options [optional...] - fstype source super */
	const char *f[6];
	size_t fl[6];
	size_t pos = 0;
	int k = 0;
	while (k < 6) {
		while (pos < n && l[pos] == ' ')
			pos++;
		if (pos >= n)
			return false;
		f[k] = l + pos;
		while (pos < n && l[pos] != ' ')
			pos++;
		fl[k] = (size_t)(l + pos - f[k]);
		k++;
	}
	memset(m, 0, sizeof(*m));
	unescape(f[3], fl[3], m->root, sizeof(m->root));
	unescape(f[4], fl[4], m->mount_point, sizeof(m->mount_point));
	m->read_only = has_opt(f[5], fl[5], "ro");
	bool shared = false, slave = false, unbindable = false, sep = false;
	while (pos < n) {
		while (pos < n && l[pos] == ' ')
			pos++;
		if (pos >= n)
			break;
		const char *t = l + pos;
		while (pos < n && l[pos] != ' ')
			pos++;
		size_t tl = (size_t)(l + pos - t);
		if (tl == 1 && t[0] == '-') {
			sep = true;
			break;
		}
		if (tl > 7 && memcmp(t, "shared:", 7) == 0)
			shared = true;
		else if (tl > 7 && memcmp(t, "master:", 7) == 0)
			slave = true;
		else if (tl == 10 && memcmp(t, "unbindable", 10) == 0)
			unbindable = true;
	}
	if (!sep)
		return false;
	const char *g[3] = {"", "", ""};
	size_t gl[3] = {0, 0, 0};
	for (int j = 0; j < 3; j++) {
		while (pos < n && l[pos] == ' ')
			pos++;
		if (pos >= n)
			break;
		g[j] = l + pos;
		while (pos < n && l[pos] != ' ')
			pos++;
		gl[j] = (size_t)(l + pos - g[j]);
	}
	if (!gl[0])
		return false;
	unescape(g[0], gl[0], m->fstype, sizeof(m->fstype));
	unescape(g[1], gl[1], m->source, sizeof(m->source));
	unescape(g[2], gl[2], m->super_opts, sizeof(m->super_opts));
	m->propagation = shared	      ? "shared"
			 : slave      ? "slave"
			 : unbindable ? "unbindable"
				      : "private";
	return true;
}

int procfs_parse_mountinfo(const char *buf, size_t len,
			   bool (*cb)(void *arg, const procfs_mount_t *m), void *arg)
{
	if (len > PROCFS_MOUNTINFO_MAX)
		len = PROCFS_MOUNTINFO_MAX;
	procfs_mount_t *m = malloc(sizeof(*m));
	if (!m)
		return 0;
	int count = 0, lines = 0;
	size_t pos = 0;
	while (pos < len && lines < MOUNTINFO_LINES_MAX) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t eol = nl ? (size_t)(nl - buf) : len;
		lines++;
		if (mountinfo_line(buf + pos, eol - pos, m)) {
			count++;
			if (!cb(arg, m))
				break;
		}
		pos = eol + 1;
	}
	free(m);
	return count;
}

bool procfs_mount_opt(const char *opts, const char *key, char *out, size_t cap)
{
	size_t kl = strlen(key);
	const char *p = opts;
	while (p && *p) {
		const char *c = strchr(p, ',');
		size_t n = c ? (size_t)(c - p) : strlen(p);
		if (n > kl && memcmp(p, key, kl) == 0 && p[kl] == '=') {
			size_t vl = n - kl - 1;
			if (vl == 0 || vl >= cap)
				return false;
			memcpy(out, p + kl + 1, vl);
			out[vl] = '\0';
			return true;
		}
		p = c ? c + 1 : NULL;
	}
	return false;
}

bool procfs_uid_map_is_host(const char *buf, size_t len)
{
	/* exactly one line: 0 0 4294967295 (any spacing) */
	uint64_t v[3];
	size_t pos = 0;
	for (int i = 0; i < 3; i++) {
		while (pos < len && (buf[pos] == ' ' || buf[pos] == '\t'))
			pos++;
		size_t st = pos;
		while (pos < len && isdigit((unsigned char)buf[pos]))
			pos++;
		if (!parse_u64(buf + st, pos - st, 10, &v[i]))
			return false;
	}
	while (pos < len && (buf[pos] == ' ' || buf[pos] == '\t' || buf[pos] == '\n'))
		pos++;
	return pos == len && v[0] == 0 && v[1] == 0 && v[2] == UINT32_MAX;
}

int procfs_parse_u32(const char *buf, size_t len, uint32_t *uid)
{
	uint64_t v;
	size_t n = 0;
	while (n < len && isdigit((unsigned char)buf[n]))
		n++;
	if (!parse_u64(buf, n, 10, &v) || v > UINT32_MAX)
		return -1;
	while (n < len && (buf[n] == '\n' || buf[n] == ' '))
		n++;
	if (n != len)
		return -1;
	*uid = (uint32_t)v;
	return 0;
}

size_t procfs_clean_label(const char *buf, size_t len, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 1 < cap; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (c == '\0' || c == '\n')
			break;
		out[o++] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
	}
	out[o] = '\0';
	return o;
}

int procfs_parse_ns_link(const char *buf, size_t len, uint64_t *inode)
{
	const char *lb = memchr(buf, '[', len);
	if (!lb)
		return -1;
	size_t off = (size_t)(lb - buf) + 1;
	if (!parse_u64(buf + off, len - off, 10, inode))
		return -1;
	return 0;
}

ssize_t procfs_read(const char *root, uint32_t pid, const char *name, char *buf, size_t cap)
{
	char path[256];
	if (pid)
		snprintf(path, sizeof(path), "%s/%u/%s", root, pid, name);
	else
		snprintf(path, sizeof(path), "%s/%s", root, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t have = 0;
	while (have + 1 < cap) {
		ssize_t n = read(fd, buf + have, cap - 1 - have);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		if (n == 0)
			break;
		have += (size_t)n;
	}
	close(fd);
	buf[have] = '\0';
	return (ssize_t)have;
}

ssize_t procfs_readlink(const char *root, uint32_t pid, const char *name, char *buf, size_t cap)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%u/%s", root, pid, name);
	ssize_t n = readlink(path, buf, cap - 1);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

int procfs_ns(const char *root, uint32_t pid, const char *ns, uint64_t *inode)
{
	char name[32], link[64];
	snprintf(name, sizeof(name), "ns/%s", ns);
	ssize_t n = procfs_readlink(root, pid, name, link, sizeof(link));
	if (n < 0)
		return -1;
	return procfs_parse_ns_link(link, (size_t)n, inode);
}

/* /proc/stat lists every interrupt before btime: large on big hosts. */
#define PROC_STAT_MAX (1024 * 1024)

int64_t procfs_boot_time(const char *root)
{
	char *buf = malloc(PROC_STAT_MAX);
	if (!buf)
		return 0;
	ssize_t n = procfs_read(root, 0, "stat", buf, PROC_STAT_MAX);
	const char *p = n < 0 ? NULL : strstr(buf, "\nbtime ");
	int64_t t = p ? strtoll(p + 7, NULL, 10) : 0;
	free(buf);
	return t;
}
