// SPDX-License-Identifier: Apache-2.0
/* RPM header blobs as rpmdb.sqlite stores them, parsed with strict bounds
 * checks (see pkgdb.h). Pure: buffers in, no I/O. */
#include <stdio.h>
#include <string.h>

#include "pkgdb.h"

enum {
	RPMTAG_NAME = 1000,
	RPMTAG_VERSION = 1001,
	RPMTAG_RELEASE = 1002,
	RPMTAG_EPOCH = 1003,
	RPMTAG_ARCH = 1022,
	RPMTAG_SOURCERPM = 1044,
};

enum {
	RPM_INT32_TYPE = 4,
	RPM_STRING_TYPE = 6,
	RPM_STRING_ARRAY_TYPE = 8,
	RPM_I18NSTRING_TYPE = 9,
};

#define RPM_MAX_INDEX 0xffff		  /* entries, as rpm itself allows */
#define RPM_MAX_DATA (256u * 1024 * 1024) /* data store bytes */

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

typedef struct {
	const char *p;
	size_t n;
} rstr_t;

/* The string an entry points at, NUL-terminated inside the data store. */
static int entry_string(const uint8_t *data, uint32_t dl, uint32_t type, uint32_t off,
			uint32_t count, rstr_t *out)
{
	if (type != RPM_STRING_TYPE && type != RPM_STRING_ARRAY_TYPE && type != RPM_I18NSTRING_TYPE)
		return -1;
	if (count < 1 || off >= dl)
		return -1;
	const uint8_t *nul = memchr(data + off, '\0', dl - off);
	if (!nul)
		return -1;
	out->p = (const char *)data + off;
	out->n = (size_t)(nul - (data + off));
	return 0;
}

int pkgdb_split_sourcerpm(const char *s, size_t len, size_t *name_len, const char **ver,
			  size_t *ver_len)
{
	static const char *const sfx[] = {".src.rpm", ".nosrc.rpm"};
	size_t n = len;
	for (size_t i = 0; i < 2; i++) {
		size_t k = strlen(sfx[i]);
		if (len > k && memcmp(s + len - k, sfx[i], k) == 0) {
			n = len - k;
			break;
		}
	}
	if (n == len)
		return -1;
	/* name-version-release: the last two dashes */
	size_t rel_dash = n, ver_dash = n;
	for (size_t i = n; i-- > 0;) {
		if (s[i] != '-')
			continue;
		if (rel_dash == n) {
			rel_dash = i;
		} else {
			ver_dash = i;
			break;
		}
	}
	if (ver_dash == n || ver_dash == 0 || rel_dash == ver_dash + 1 || rel_dash + 1 == n)
		return -1;
	*name_len = ver_dash;
	*ver = s + ver_dash + 1;
	*ver_len = n - ver_dash - 1;
	return 0;
}

/* "[E:]V-R" into out; false if it does not fit. */
static bool evr(char *out, size_t cap, bool have_epoch, uint32_t epoch, rstr_t v, rstr_t r)
{
	int n;
	if (have_epoch)
		n = snprintf(out, cap, "%u:%.*s-%.*s", epoch, (int)v.n, v.p, (int)r.n, r.p);
	else
		n = snprintf(out, cap, "%.*s-%.*s", (int)v.n, v.p, (int)r.n, r.p);
	return n > 0 && (size_t)n < cap;
}

int pkgdb_parse_rpm_header(const uint8_t *blob, size_t len, pkgdb_inv_t *inv)
{
	if (len < 8)
		goto bad;
	uint32_t il = be32(blob), dl = be32(blob + 4);
	if (il < 1 || il > RPM_MAX_INDEX || dl > RPM_MAX_DATA)
		goto bad;
	size_t idx_end = 8 + (size_t)il * 16;
	if (idx_end > len || dl > len - idx_end)
		goto bad;
	const uint8_t *data = blob + idx_end;
	rstr_t name = {0}, ver = {0}, rel = {0}, arch = {0}, srpm = {0};
	bool have_epoch = false;
	uint32_t epoch = 0;
	for (uint32_t i = 0; i < il; i++) {
		const uint8_t *e = blob + 8 + (size_t)i * 16;
		uint32_t tag = be32(e), type = be32(e + 4), off = be32(e + 8), count = be32(e + 12);
		rstr_t *dst = NULL;
		switch (tag) {
		case RPMTAG_NAME:
			dst = &name;
			break;
		case RPMTAG_VERSION:
			dst = &ver;
			break;
		case RPMTAG_RELEASE:
			dst = &rel;
			break;
		case RPMTAG_ARCH:
			dst = &arch;
			break;
		case RPMTAG_SOURCERPM:
			dst = &srpm;
			break;
		case RPMTAG_EPOCH:
			if (have_epoch)
				continue;
			if (type != RPM_INT32_TYPE || count < 1 || off % 4 || off > dl ||
			    dl - off < 4)
				goto bad;
			epoch = be32(data + off);
			have_epoch = true;
			continue;
		default:
			continue;
		}
		if (dst->p)
			continue; /* the first one counts */
		if (entry_string(data, dl, type, off, count, dst) < 0)
			goto bad;
	}
	if (!name.p || !ver.p || !rel.p || name.n == 0 || ver.n == 0)
		goto bad;
	if (name.n == 10 && memcmp(name.p, "gpg-pubkey", 10) == 0)
		return 0;
	/* 2 * PKGDB_MAX_FIELD: a longer one is cut (and counted) when stored */
	char version[2 * PKGDB_MAX_FIELD], src_version[2 * PKGDB_MAX_FIELD];
	if (!evr(version, sizeof(version), have_epoch, epoch, ver, rel))
		snprintf(version, sizeof(version), "%.*s", (int)ver.n, ver.p);
	const char *sn = NULL, *sv = NULL;
	size_t sn_len = 0, sv_len = 0;
	if (srpm.p && pkgdb_split_sourcerpm(srpm.p, srpm.n, &sn_len, &sv, &sv_len) == 0) {
		sn = srpm.p;
		/* the source package's version-release, with the package's epoch */
		if (have_epoch) {
			int k = snprintf(src_version, sizeof(src_version), "%u:%.*s", epoch,
					 (int)sv_len, sv);
			if (k > 0 && (size_t)k < sizeof(src_version)) {
				sv = src_version;
				sv_len = (size_t)k;
			}
		}
	}
	int rc = pkgdb_inv_add(inv, name.p, name.n, version, strlen(version), arch.p, arch.n, sn,
			       sn_len, sv, sv_len);
	if (rc < 0)
		return -1;
	return rc == 0 ? 1 : 0;
bad:
	inv->n_malformed++;
	return 0;
}
