// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: the parsers of image package databases (dpkg status
 * and status.d paragraphs, apk's installed database, os-release, an RPM
 * header blob, a SOURCERPM name). The first byte picks the parser. Every
 * string kept must be valid UTF-8 within the field cap, and the package
 * count within its cap.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pkgdb.h"
#include "utf8.h"

static void check_str(const char *s)
{
	if (s && (strlen(s) > PKGDB_MAX_FIELD || !utf8_valid(s, strlen(s))))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *buf = (const char *)data + 1;
	size_t len = size - 1;
	pkgdb_inv_t *inv = pkgdb_inv_new();
	if (!inv)
		return 0;
	inv->max_pkgs = 64;
	switch (data[0] % 6) {
	case 0:
		pkgdb_parse_dpkg(buf, len, false, inv);
		break;
	case 1:
		pkgdb_parse_dpkg(buf, len, true, inv);
		break;
	case 2:
		pkgdb_parse_apk(buf, len, inv);
		break;
	case 3:
		pkgdb_parse_os_release(buf, len, inv);
		break;
	case 4:
		pkgdb_parse_rpm_header(data + 1, len, inv);
		break;
	default: {
		size_t nl, vl;
		const char *v;
		if (pkgdb_split_sourcerpm(buf, len, &nl, &v, &vl) == 0 &&
		    (nl == 0 || vl == 0 || v < buf || v + vl > buf + len))
			abort();
		break;
	}
	}
	pkgdb_inv_finish(inv);
	if (inv->n_pkgs > inv->max_pkgs)
		abort();
	for (size_t i = 0; i < inv->n_pkgs; i++) {
		const pkgdb_pkg_t *p = &inv->pkgs[i];
		if (!p->name[0] || !p->version[0])
			abort();
		check_str(p->name);
		check_str(p->version);
		check_str(p->arch);
		check_str(p->source_name);
		check_str(p->source_version);
	}
	check_str(inv->os_id);
	check_str(inv->os_version);
	check_str(inv->os_codename);
	check_str(inv->os_pretty);
	pkgdb_inv_free(inv);
	return 0;
}
