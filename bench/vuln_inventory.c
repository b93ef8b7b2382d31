// SPDX-License-Identifier: Apache-2.0
/*
 * vigil-vuln-inventory: the agent's image inventory reader on its own.
 *
 *   vigil-vuln-inventory [PACKAGES [RUNS]]
 *       Write a Debian-like root (os-release and a dpkg status file of
 *       PACKAGES realistic paragraphs, default 400) in a temp dir, read its
 *       inventory RUNS times (default 50) as the agent does (resolution in
 *       the root, caps, parsing) and print one line of key=value:
 *       inventory_ms (the median), inventory_p95_ms, packages, status_bytes.
 *   vigil-vuln-inventory --pid PID
 *       Read the inventory of process PID's root and print it as JSON
 *       (the integration tests run it on real containers).
 *
 * The machine is shared and noisy: nothing here fails on a timing.
 */
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imageinv.h"
#include "pkgdb.h"
#include "vtime.h"

static int print_json(const pkgdb_inv_t *inv, bool exited)
{
	json_t *pk = json_array();
	for (size_t i = 0; i < inv->n_pkgs; i++) {
		const pkgdb_pkg_t *p = &inv->pkgs[i];
		json_array_append_new(pk, json_pack("{s:s,s:s,s:s,s:s,s:s}", "name", p->name,
						    "version", p->version, "arch", p->arch,
						    "source_name", p->source_name, "source_version",
						    p->source_version));
	}
	json_t *o = json_pack("{s:s?,s:s?,s:s?,s:s?,s:s,s:s,s:s,s:b,s:o}", "os_id", inv->os_id,
			      "os_version", inv->os_version, "os_codename", inv->os_codename,
			      "os_pretty", inv->os_pretty, "format", pkgdb_format_name(inv->format),
			      "status", pkgdb_status_name(inv->status), "reason", inv->reason,
			      "exited", exited, "packages", pk);
	if (!o)
		return 1;
	char *s = json_dumps(o, JSON_COMPACT);
	puts(s ? s : "null");
	free(s);
	json_decref(o);
	return 0;
}

static void put(const char *root, const char *rel, const char *text, size_t len)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	FILE *f = fopen(p, "w");
	if (!f || fwrite(text, 1, len, f) != len) {
		perror(p);
		exit(1);
	}
	fclose(f);
}

/* A status file of n paragraphs shaped like Debian 12's. */
static char *make_status(int n, size_t *len)
{
	size_t cap = (size_t)n * 2048 + 1, at = 0;
	char *s = malloc(cap);
	if (!s)
		exit(1);
	for (int i = 0; i < n; i++)
		at += (size_t)snprintf(
			s + at, cap - at,
			"Package: libexample%d\n"
			"Status: install ok installed\n"
			"Priority: optional\n"
			"Section: libs\n"
			"Installed-Size: %d\n"
			"Maintainer: Debian Example Maintainers <example@lists.debian.org>\n"
			"Architecture: amd64\n"
			"Multi-Arch: same\n"
			"Source: example%d (%d.%d.%d-1)\n"
			"Version: %d.%d.%d-1+b%d\n"
			"Depends: libc6 (>= 2.34), libgcc-s1 (>= 3.0), zlib1g (>= 1:1.2.0)\n"
			"Conffiles:\n"
			" /etc/example%d.conf 0123456789abcdef0123456789abcdef\n"
			"Description: example library %d - shared library\n"
			" This package contains the shared library of an example that has a\n"
			" description of a few lines, like most Debian packages have.\n"
			" .\n"
			" It is used to measure the reading of a package inventory.\n"
			"Homepage: https://example.org/%d\n\n",
			i, 100 + i, i / 3, i % 7, i % 11, i % 5, i % 7, i % 11, i % 5, i % 3, i, i,
			i);
	*len = at;
	return s;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int bench(int n, int runs)
{
	char top[] = "/tmp/vigil-vuln-inventory-XXXXXX";
	if (!mkdtemp(top))
		return 1;
	char p[256];
	static const char *const dirs[] = {"etc", "var", "var/lib", "var/lib/dpkg"};
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s/%s", top, dirs[i]);
		mkdir(p, 0755);
	}
	static const char osr[] = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n"
				  "VERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n";
	put(top, "etc/os-release", osr, sizeof(osr) - 1);
	size_t len;
	char *status = make_status(n, &len);
	put(top, "var/lib/dpkg/status", status, len);
	free(status);
	int root = open(top, O_PATH | O_DIRECTORY | O_CLOEXEC);
	int64_t *t = calloc((size_t)runs, sizeof(*t));
	size_t got = 0;
	int rc = 0;
	for (int i = 0; i < runs && root >= 0 && t; i++) {
		int64_t t0 = vtime_mono_ns();
		pkgdb_inv_t *inv = imageinv_read_root(root, NULL, NULL, NULL);
		t[i] = vtime_mono_ns() - t0;
		if (!inv || inv->status != PKGDB_ST_OK) {
			fprintf(stderr, "read: %s\n", inv ? inv->reason : "out of memory");
			rc = 1;
		} else {
			got = inv->n_pkgs;
		}
		pkgdb_inv_free(inv);
	}
	if (root >= 0)
		close(root);
	snprintf(p, sizeof(p), "rm -rf '%s'", top);
	if (system(p) != 0)
		rc = 1;
	if (rc || !t)
		return 1;
	qsort(t, (size_t)runs, sizeof(*t), cmp_i64);
	int p95 = (runs * 95 + 99) / 100 - 1; /* nearest rank */
	printf("inventory_ms=%.3f inventory_p95_ms=%.3f packages=%zu status_bytes=%zu\n",
	       (double)t[runs / 2] / 1e6, (double)t[p95] / 1e6, got, len);
	free(t);
	return got == (size_t)n ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--pid") == 0) {
		bool exited = false;
		pkgdb_inv_t *inv = imageinv_read_pid((pid_t)atoi(argv[2]), NULL, &exited);
		if (!inv)
			return 1;
		int rc = print_json(inv, exited);
		pkgdb_inv_free(inv);
		return rc;
	}
	int n = argc > 1 ? atoi(argv[1]) : 400;
	int runs = argc > 2 ? atoi(argv[2]) : 50;
	if (n <= 0 || runs <= 0) {
		fprintf(stderr, "usage: %s [PACKAGES [RUNS]] | --pid PID\n", argv[0]);
		return 2;
	}
	return bench(n, runs);
}
