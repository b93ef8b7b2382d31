// SPDX-License-Identifier: Apache-2.0
/* /proc/PID/cgroup -> container id and runtime (see cgroup.h). */
#include "cgroup.h"

#include <string.h>

#include "vigil/v1/events.pb-c.h"

bool cgroup_is_id(const char *s, size_t n)
{
	if (n != CGROUP_ID_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return true;
}

typedef struct {
	const char *prefix;
	const char *suffix;
	int runtime;
} scope_rule_t;

/* Component names that carry the id with a prefix and optional suffix. */
static const scope_rule_t rules[] = {
	{"docker-", ".scope", VIGIL__V1__RUNTIME__RUNTIME_DOCKER},
	{"libpod-", ".scope", VIGIL__V1__RUNTIME__RUNTIME_PODMAN},
	{"libpod-", "", VIGIL__V1__RUNTIME__RUNTIME_PODMAN},
	{"cri-containerd-", ".scope", VIGIL__V1__RUNTIME__RUNTIME_CONTAINERD},
	{"crio-", ".scope", VIGIL__V1__RUNTIME__RUNTIME_CRIO},
	{"crio-", "", VIGIL__V1__RUNTIME__RUNTIME_CRIO},
	{"runc-", ".scope", VIGIL__V1__RUNTIME__RUNTIME_RUNC},
};

static bool has_component(const char *path, size_t end, const char *name)
{
	size_t nl = strlen(name);
	for (size_t i = 0; i + nl <= end; i++) {
		if ((i == 0 || path[i - 1] == '/') && memcmp(path + i, name, nl) == 0 &&
		    (i + nl == end || path[i + nl] == '/'))
			return true;
	}
	return false;
}

/* Does component c (n bytes) name a container? */
static bool match_component(const char *path, size_t start, size_t n, cgroup_match_t *out)
{
	const char *c = path + start;
	for (size_t r = 0; r < sizeof(rules) / sizeof(rules[0]); r++) {
		size_t pl = strlen(rules[r].prefix), sl = strlen(rules[r].suffix);
		if (n != pl + CGROUP_ID_LEN + sl || memcmp(c, rules[r].prefix, pl) != 0 ||
		    memcmp(c + pl + CGROUP_ID_LEN, rules[r].suffix, sl) != 0 ||
		    !cgroup_is_id(c + pl, CGROUP_ID_LEN))
			continue;
		memcpy(out->id, c + pl, CGROUP_ID_LEN);
		out->id[CGROUP_ID_LEN] = '\0';
		out->runtime = rules[r].runtime;
		return true;
	}
	if (!cgroup_is_id(c, n))
		return false;
	memcpy(out->id, c, CGROUP_ID_LEN);
	out->id[CGROUP_ID_LEN] = '\0';
	/* A bare id: /docker/ID is Docker's cgroupfs layout, kubepods is a
	 * CRI runtime we cannot tell apart from here, else runc-style. */
	if (has_component(path, start, "docker"))
		out->runtime = VIGIL__V1__RUNTIME__RUNTIME_DOCKER;
	else if (memmem(path, start, "kubepods", 8))
		out->runtime = VIGIL__V1__RUNTIME__RUNTIME_UNKNOWN;
	else
		out->runtime = VIGIL__V1__RUNTIME__RUNTIME_RUNC;
	return true;
}

bool cgroup_parse_path(const char *path, size_t len, cgroup_match_t *out)
{
	/* innermost first: walk the components from the end */
	size_t end = len;
	while (end > 0) {
		while (end > 0 && path[end - 1] == '/')
			end--;
		size_t start = end;
		while (start > 0 && path[start - 1] != '/')
			start--;
		if (end > start && match_component(path, start, end - start, out))
			return true;
		end = start;
	}
	return false;
}

bool cgroup_parse(const char *buf, size_t len, cgroup_match_t *out)
{
	bool found = false;
	size_t pos = 0;
	while (pos < len) {
		size_t eol = pos;
		while (eol < len && buf[eol] != '\n')
			eol++;
		/* hierarchy-ID:controller-list:cgroup-path */
		const char *line = buf + pos;
		size_t n = eol - pos;
		const char *c1 = memchr(line, ':', n);
		const char *c2 = c1 ? memchr(c1 + 1, ':', n - (size_t)(c1 + 1 - line)) : NULL;
		if (c2) {
			const char *path = c2 + 1;
			size_t pl = n - (size_t)(path - line);
			cgroup_match_t m;
			if (cgroup_parse_path(path, pl, &m)) {
				bool v2 = (c1 == line + 1 && line[0] == '0' && c2 == c1 + 1);
				/* the v2 line wins; else the first v1 line that names one */
				if (!found || v2)
					*out = m;
				found = true;
				if (v2)
					return true;
			}
		}
		pos = eol + 1;
	}
	return found;
}

bool cgroup_path_of(const char *buf, size_t len, const char *controller, char *out, size_t cap)
{
	size_t cl = strlen(controller);
	size_t pos = 0;
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t eol = nl ? (size_t)(nl - buf) : len;
		const char *line = buf + pos;
		size_t n = eol - pos;
		pos = eol + 1;
		const char *c1 = memchr(line, ':', n);
		const char *c2 = c1 ? memchr(c1 + 1, ':', n - (size_t)(c1 + 1 - line)) : NULL;
		if (!c2)
			continue;
		const char *list = c1 + 1;
		size_t ll = (size_t)(c2 - list);
		bool match = false;
		if (cl == 0) {
			match = c1 == line + 1 && line[0] == '0' && ll == 0;
		} else {
			/* "cpu,cpuacct", "name=systemd": whole names only */
			size_t i = 0;
			while (i <= ll && !match) {
				const char *comma = memchr(list + i, ',', ll - i);
				size_t e = comma ? (size_t)(comma - list) : ll;
				match = e - i == cl && memcmp(list + i, controller, cl) == 0;
				i = e + 1;
			}
		}
		if (!match)
			continue;
		const char *path = c2 + 1;
		size_t pl = (size_t)(line + n - path);
		if (pl == 0 || pl >= cap || path[0] != '/' || memmem(path, pl, "..", 2) ||
		    memchr(path, '\0', pl))
			return false;
		memcpy(out, path, pl);
		out[pl] = '\0';
		return true;
	}
	return false;
}

static bool parse_dec(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	if (n == 0 || n > 20)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		uint64_t d = (uint64_t)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

static size_t trim(const char *buf, size_t len)
{
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		len--;
	return len;
}

/* v1 reports "no limit" as LLONG_MAX rounded down to a page. */
#define V1_NO_LIMIT_MIN (UINT64_C(0x7FFFFFFFFFFFF000) - UINT64_C(1) * 1024 * 1024)

int cgroup_parse_limit(const char *buf, size_t len, cgroup_limit_t *out)
{
	len = trim(buf, len);
	out->unlimited = false;
	out->value = 0;
	if ((len == 3 && memcmp(buf, "max", 3) == 0) || (len == 2 && memcmp(buf, "-1", 2) == 0)) {
		out->unlimited = true;
		return 0;
	}
	if (!parse_dec(buf, len, &out->value))
		return -1;
	if (out->value >= V1_NO_LIMIT_MIN) {
		out->unlimited = true;
		out->value = 0;
	}
	return 0;
}

int cgroup_parse_cpu_max(const char *buf, size_t len, bool *unlimited, uint64_t *quota_us,
			 uint64_t *period_us)
{
	len = trim(buf, len);
	const char *sp = memchr(buf, ' ', len);
	if (!sp)
		return -1;
	size_t ql = (size_t)(sp - buf);
	if (!parse_dec(sp + 1, len - ql - 1, period_us) || *period_us == 0)
		return -1;
	*quota_us = 0;
	*unlimited = ql == 3 && memcmp(buf, "max", 3) == 0;
	if (!*unlimited && !parse_dec(buf, ql, quota_us))
		return -1;
	return 0;
}

int cgroup_parse_frozen(const char *buf, size_t len, bool v2, bool *frozen)
{
	if (!v2) {
		len = trim(buf, len);
		if (len == 6 && memcmp(buf, "THAWED", 6) == 0)
			*frozen = false;
		else if ((len == 6 && memcmp(buf, "FROZEN", 6) == 0) ||
			 (len == 8 && memcmp(buf, "FREEZING", 8) == 0))
			*frozen = true;
		else
			return -1;
		return 0;
	}
	size_t pos = 0;
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t eol = nl ? (size_t)(nl - buf) : len;
		if (eol - pos == 8 && memcmp(buf + pos, "frozen ", 7) == 0 &&
		    (buf[pos + 7] == '0' || buf[pos + 7] == '1')) {
			*frozen = buf[pos + 7] == '1';
			return 0;
		}
		pos = eol + 1;
	}
	return -1;
}
