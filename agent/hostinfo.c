// SPDX-License-Identifier: Apache-2.0
/* Node facts (see hostinfo.h). */
#include "hostinfo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "procfs.h"
#include "text.h"

static void copy_clean(char *dst, unsigned n, const char *src)
{
	char *c = text_dup_n(src, strlen(src), n - 1, NULL);
	snprintf(dst, n, "%s", c ? c : "");
	free(c);
}

static void value_of(const char *text, const char *key, char *out, unsigned n)
{
	size_t kl = strlen(key);
	const char *p = text;
	out[0] = '\0';
	while (p && *p) {
		if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
			const char *v = p + kl + 1;
			size_t vl = strcspn(v, "\n");
			if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
				v++;
				vl -= 2;
			}
			char tmp[256];
			if (vl >= sizeof(tmp))
				vl = sizeof(tmp) - 1;
			memcpy(tmp, v, vl);
			tmp[vl] = '\0';
			copy_clean(out, n, tmp);
			return;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
}

int hostinfo_parse_os_release(const char *text, char *out, unsigned outlen)
{
	value_of(text, "PRETTY_NAME", out, outlen);
	if (out[0])
		return 0;
	char name[128], ver[128];
	value_of(text, "NAME", name, sizeof(name));
	value_of(text, "VERSION_ID", ver, sizeof(ver));
	if (!name[0])
		return -1;
	snprintf(out, outlen, "%s%s%s", name, ver[0] ? " " : "", ver);
	return 0;
}

void hostinfo_read(hostinfo_t *h, const char *hostname, const char *proc_root)
{
	memset(h, 0, sizeof(*h));
	struct utsname u;
	if (uname(&u) == 0) {
		copy_clean(h->hostname, sizeof(h->hostname), u.nodename);
		char k[300];
		snprintf(k, sizeof(k), "%s %s", u.sysname, u.release);
		copy_clean(h->kernel, sizeof(h->kernel), k);
	}
	if (hostname && hostname[0])
		copy_clean(h->hostname, sizeof(h->hostname), hostname);
	FILE *f = fopen("/etc/os-release", "r");
	if (!f)
		f = fopen("/usr/lib/os-release", "r");
	if (f) {
		char text[8192];
		size_t n = fread(text, 1, sizeof(text) - 1, f);
		text[n] = '\0';
		fclose(f);
		hostinfo_parse_os_release(text, h->os, sizeof(h->os));
	}
	char id[128];
	ssize_t n = procfs_read(proc_root, 0, "sys/kernel/random/boot_id", id, sizeof(id));
	if (n > 0) {
		id[strcspn(id, "\n")] = '\0';
		copy_clean(h->boot_id, sizeof(h->boot_id), id);
	}
	snprintf(h->agent_version, sizeof(h->agent_version), "vigil-agent/%s", VIGIL_VERSION);
}
