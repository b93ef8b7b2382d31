// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for the package database parsers behind image inventories:
 * os-release quoting, dpkg status paragraphs (Source with a version,
 * deinstalled packages, status.d files), apk's installed database with
 * origins, RPM header blobs (bounds, epochs, SOURCERPM), rpmdb.sqlite from
 * memory, and the caps on fields and package counts; truncated and garbage
 * inputs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "pkgdb.h"
#include "pkgdb_sqlite.h"
#include "text.h"
#include "utf8.h"

static pkgdb_inv_t *inv_new(void)
{
	pkgdb_inv_t *inv = pkgdb_inv_new();
	assert_non_null(inv);
	return inv;
}

static const pkgdb_pkg_t *find(const pkgdb_inv_t *inv, const char *name)
{
	for (size_t i = 0; i < inv->n_pkgs; i++)
		if (strcmp(inv->pkgs[i].name, name) == 0)
			return &inv->pkgs[i];
	return NULL;
}

static void assert_pkg(const pkgdb_inv_t *inv, const char *name, const char *ver, const char *arch,
		       const char *sname, const char *sver)
{
	const pkgdb_pkg_t *p = find(inv, name);
	assert_non_null(p);
	assert_string_equal(p->version, ver);
	assert_string_equal(p->arch, arch);
	assert_string_equal(p->source_name, sname);
	assert_string_equal(p->source_version, sver);
}

/* --- os-release --------------------------------------------------------- */

static void test_os_release(void **state)
{
	(void)state;
	static const char debian[] = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"
				     "NAME=\"Debian GNU/Linux\"\n"
				     "VERSION_ID=\"12\"\n"
				     "VERSION=\"12 (bookworm)\"\n"
				     "VERSION_CODENAME=bookworm\n"
				     "ID=debian\n"
				     "HOME_URL=\"https://www.debian.org/\"\n";
	pkgdb_inv_t *inv = inv_new();
	assert_int_equal(pkgdb_parse_os_release(debian, strlen(debian), inv), 0);
	assert_string_equal(inv->os_id, "debian");
	assert_string_equal(inv->os_version, "12");
	assert_string_equal(inv->os_codename, "bookworm");
	assert_string_equal(inv->os_pretty, "Debian GNU/Linux 12 (bookworm)");
	pkgdb_inv_free(inv);

	static const struct {
		const char *text, *id, *pretty;
	} cases[] = {
		{"ID='alpine'\nPRETTY_NAME='Alpine Linux v3.19'\n", "alpine", "Alpine Linux v3.19"},
		{"ID=\"ubuntu\"\r\nPRETTY_NAME=\"Ubuntu \\\"22.04\\\" \\$x \\\\ \\n\"\r\n",
		 "ubuntu", "Ubuntu \"22.04\" $x \\ \\n"},
		/* comments, blank lines, leading blanks; the last assignment wins */
		{"# ID=no\n\n  ID=first\nID=rhel # a comment\nPRETTY_NAME=a\\ b'c d'\"e\"\n",
		 "rhel", "a bc de"},
		/* an unterminated quote runs to the end of its line */
		{"ID=\"fedora\nPRETTY_NAME=\"x", "fedora", "x"},
		/* control characters and invalid UTF-8 are repaired */
		{"ID=a\x01\xff\n", "a??", NULL},
		{"=x\nID\nID=\n", "", NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		inv = inv_new();
		assert_int_equal(pkgdb_parse_os_release(cases[i].text, strlen(cases[i].text), inv),
				 0);
		assert_string_equal(inv->os_id, cases[i].id);
		if (cases[i].pretty)
			assert_string_equal(inv->os_pretty, cases[i].pretty);
		else
			assert_null(inv->os_pretty);
		pkgdb_inv_free(inv);
	}
}

static void test_os_release_long(void **state)
{
	(void)state;
	size_t n = 5000;
	char *buf = malloc(n + 32);
	assert_non_null(buf);
	memcpy(buf, "PRETTY_NAME=", 12);
	memset(buf + 12, 'x', n);
	memcpy(buf + 12 + n, "\nID=x", 6);
	pkgdb_inv_t *inv = inv_new();
	assert_int_equal(pkgdb_parse_os_release(buf, strlen(buf), inv), 0);
	assert_int_equal(strlen(inv->os_pretty), PKGDB_MAX_FIELD);
	assert_non_null(strstr(inv->os_pretty, TEXT_TRUNC_MARKER));
	assert_string_equal(inv->os_id, "x");
	assert_int_equal(inv->n_fields_cut, 1);
	pkgdb_inv_finish(inv);
	assert_int_equal(inv->status, PKGDB_ST_PARTIAL);
	assert_non_null(strstr(inv->reason, "fields cut"));
	pkgdb_inv_free(inv);
	free(buf);
}

/* --- dpkg --------------------------------------------------------------- */

/* From a Debian 12 status file, as dpkg writes it. */
static const char dpkg_status[] =
	"Package: libc6\n"
	"Status: install ok installed\n"
	"Priority: optional\n"
	"Section: libs\n"
	"Installed-Size: 12986\n"
	"Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>\n"
	"Architecture: amd64\n"
	"Multi-Arch: same\n"
	"Source: glibc\n"
	"Version: 2.36-9+deb12u4\n"
	"Replaces: libc6-amd64\n"
	"Depends: libgcc-s1\n"
	"Conffiles:\n"
	" /etc/ld.so.conf.d/x86_64-linux-gnu.conf d4e7a7b88a71b5ffd9e2644e71a0cfab\n"
	"Description: GNU C Library: Shared libraries\n"
	" Contains the standard libraries that are used by nearly all programs on\n"
	" the system.\n"
	" .\n"
	" Package: not-a-package\n"
	"Homepage: https://www.gnu.org/software/libc/libc.html\n"
	"\n"
	"Package: libssl3\n"
	"Status: install ok installed\n"
	"Priority: optional\n"
	"Architecture: amd64\n"
	"Multi-Arch: same\n"
	"Source: openssl (3.0.11-1~deb12u2)\n"
	"Version: 3.0.11-1~deb12u2+b1\n"
	"Description: Secure Sockets Layer toolkit - shared libraries\n"
	"\n"
	"Package: bash\n"
	"Essential: yes\n"
	"Status: hold ok installed\n"
	"Architecture: amd64\n"
	"Version: 5.2.15-2+b2\n"
	"\n"
	"Package: vim-tiny\n"
	"Status: deinstall ok config-files\n"
	"Architecture: amd64\n"
	"Source: vim\n"
	"Version: 2:9.0.1378-2\n"
	"\n"
	"Package: half\n"
	"Status: install reinstreq half-installed\n"
	"Architecture: amd64\n"
	"Version: 1.0\n"
	"\n"
	"\n"
	"package: tzdata\n"
	"status:   install ok installed  \n"
	"architecture: all\n"
	"version: 2024a-0+deb12u1\n";

static void test_dpkg_status(void **state)
{
	(void)state;
	pkgdb_inv_t *inv = inv_new();
	assert_int_equal(pkgdb_parse_dpkg(dpkg_status, strlen(dpkg_status), false, inv), 4);
	assert_int_equal(inv->n_pkgs, 4);
	assert_pkg(inv, "libc6", "2.36-9+deb12u4", "amd64", "glibc", "2.36-9+deb12u4");
	assert_pkg(inv, "libssl3", "3.0.11-1~deb12u2+b1", "amd64", "openssl", "3.0.11-1~deb12u2");
	assert_pkg(inv, "bash", "5.2.15-2+b2", "amd64", "bash", "5.2.15-2+b2");
	assert_pkg(inv, "tzdata", "2024a-0+deb12u1", "all", "tzdata", "2024a-0+deb12u1");
	assert_null(find(inv, "vim-tiny"));
	assert_null(find(inv, "half"));
	assert_null(find(inv, "not-a-package"));
	assert_int_equal(inv->n_not_installed, 2);
	assert_int_equal(inv->n_malformed, 0);
	pkgdb_inv_finish(inv);
	assert_int_equal(inv->status, PKGDB_ST_OK);
	assert_string_equal(inv->reason, "");
	pkgdb_inv_free(inv);
}

static void test_dpkg_status_d(void **state)
{
	(void)state;
	/* distroless: one file per package, Status present or not */
	static const char f1[] = "Package: base-files\nVersion: 12.4+deb12u5\n"
				 "Architecture: amd64\n";
	static const char f2[] = "Package: libssl3\nStatus: install ok installed\n"
				 "Source: openssl (3.0.13-1~deb12u1)\nVersion: 3.0.13-1~deb12u1\n"
				 "Architecture: arm64\n";
	pkgdb_inv_t *inv = inv_new();
	assert_int_equal(pkgdb_parse_dpkg(f1, strlen(f1), true, inv), 1);
	assert_int_equal(pkgdb_parse_dpkg(f2, strlen(f2), true, inv), 1);
	assert_pkg(inv, "base-files", "12.4+deb12u5", "amd64", "base-files", "12.4+deb12u5");
	assert_pkg(inv, "libssl3", "3.0.13-1~deb12u1", "arm64", "openssl", "3.0.13-1~deb12u1");
	/* the same paragraph without Status in the status file is not installed */
	assert_int_equal(pkgdb_parse_dpkg(f1, strlen(f1), false, inv), 0);
	assert_int_equal(inv->n_malformed, 1);
	pkgdb_inv_free(inv);
}

static void test_dpkg_bad(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		size_t len; /* 0: strlen */
		long added;
		size_t malformed;
	} cases[] = {
		{"", 0, 0, 0},
		{"\n\n\n", 0, 0, 0},
		/* truncated in the middle of a paragraph: what is there counts */
		{"Package: a\nStatus: install ok installed\nVersion: 1\n\nPackage: b\nStatus: inst",
		 0, 1, 0},
		{"Package: a\nStatus: install ok installed\nVersi", 0, 0, 1},
		/* no Package, no Version, empty values */
		{"Status: install ok installed\nVersion: 1\n\nPackage: x\nStatus: install ok "
		 "installed\nVersion:\n",
		 0, 0, 2},
		/* garbage */
		{"\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00", 10, 0, 1},
		/* Status with too many or too few words */
		{"Package: a\nStatus: install ok installed extra\nVersion: 1\n", 0, 0, 0},
		{"Package: a\nStatus: installed\nVersion: 1\n", 0, 0, 0},
		/* Source with an unclosed version */
		{"Package: a\nStatus: install ok installed\nVersion: 1\nSource: b (2\n", 0, 1, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		pkgdb_inv_t *inv = inv_new();
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);
		assert_int_equal(pkgdb_parse_dpkg(cases[i].text, len, false, inv), cases[i].added);
		assert_int_equal(inv->n_malformed, cases[i].malformed);
		for (size_t k = 0; k < inv->n_pkgs; k++) {
			const pkgdb_pkg_t *p = &inv->pkgs[k];
			assert_true(utf8_valid(p->name, strlen(p->name)));
			assert_string_equal(p->source_version, p->version);
		}
		pkgdb_inv_free(inv);
	}
	pkgdb_inv_t *inv = inv_new();
	static const char nul[] = "Package: a\0b\nStatus: install ok installed\nVersion: 1\n";
	assert_int_equal(pkgdb_parse_dpkg(nul, sizeof(nul) - 1, false, inv), 1);
	assert_string_equal(inv->pkgs[0].name, "a?b");
	pkgdb_inv_free(inv);
}

static void test_dpkg_caps(void **state)
{
	(void)state;
	/* 30 packages against a cap of 10; one name of 1000 bytes */
	size_t cap = 64 * 1024, len = 0;
	char *buf = malloc(cap);
	assert_non_null(buf);
	for (int i = 0; i < 30; i++)
		len += (size_t)snprintf(buf + len, cap - len,
					"Package: p%d\nStatus: install ok installed\nVersion: "
					"1.%d\n\n",
					i, i);
	len += (size_t)snprintf(buf + len, cap - len, "Package: ");
	memset(buf + len, 'n', 1000);
	len += 1000;
	len += (size_t)snprintf(buf + len, cap - len,
				"\nStatus: install ok installed\nVersion: 1\n");
	pkgdb_inv_t *inv = inv_new();
	assert_int_equal(pkgdb_parse_dpkg(buf, len, false, inv), 31);
	assert_int_equal(inv->n_fields_cut, 2); /* name and source name */
	assert_int_equal(strlen(inv->pkgs[30].name), PKGDB_MAX_FIELD);
	pkgdb_inv_free(inv);

	inv = inv_new();
	inv->max_pkgs = 10;
	assert_int_equal(pkgdb_parse_dpkg(buf, len, false, inv), 10);
	assert_int_equal(inv->n_pkgs, 10);
	assert_int_equal(inv->n_over_cap, 21);
	pkgdb_inv_finish(inv);
	assert_int_equal(inv->status, PKGDB_ST_PARTIAL);
	assert_non_null(strstr(inv->reason, "21 packages over the cap of 10"));
	pkgdb_inv_free(inv);
	free(buf);
}

/* --- apk ---------------------------------------------------------------- */

static const char apk_installed[] = "C:Q1AbCdEfGhIjKlMnOpQrStUvWxYz0123=\n"
				    "P:musl\n"
				    "V:1.2.4_git20230717-r4\n"
				    "A:x86_64\n"
				    "S:407760\n"
				    "I:667648\n"
				    "T:the musl c library (libc) implementation\n"
				    "U:https://musl.libc.org/\n"
				    "L:MIT\n"
				    "o:musl\n"
				    "m:Timo Teräs <timo.teras@iki.fi>\n"
				    "t:1700000000\n"
				    "c:0123456789abcdef\n"
				    "F:lib\n"
				    "R:ld-musl-x86_64.so.1\n"
				    "a:0:0:755\n"
				    "Z:Q1xyz=\n"
				    "\n"
				    "C:Q1other=\n"
				    "P:libcrypto3\n"
				    "V:3.1.4-r5\n"
				    "A:x86_64\n"
				    "o:openssl\n"
				    "\n"
				    "P:busybox-binsh\n"
				    "V:1.36.1-r15\n"
				    "A:x86_64\n"
				    "o:busybox\n";

static void test_apk(void **state)
{
	(void)state;
	pkgdb_inv_t *inv = inv_new();
	assert_int_equal(pkgdb_parse_apk(apk_installed, strlen(apk_installed), inv), 3);
	assert_pkg(inv, "musl", "1.2.4_git20230717-r4", "x86_64", "musl", "1.2.4_git20230717-r4");
	assert_pkg(inv, "libcrypto3", "3.1.4-r5", "x86_64", "openssl", "3.1.4-r5");
	assert_pkg(inv, "busybox-binsh", "1.36.1-r15", "x86_64", "busybox", "1.36.1-r15");
	pkgdb_inv_free(inv);

	static const struct {
		const char *text;
		long added;
		size_t malformed;
	} cases[] = {
		{"", 0, 0},
		{"P:a\n\n", 0, 1},
		{"V:1\nA:x\n\n", 0, 1},
		{"P:a\nV:1", 1, 0}, /* no final newline */
		{"P:a\nV:1\nX\n:\nPV:2\n", 1, 0},
		{"garbage garbage\n\x01\x02\x03", 0, 1},
		{"P:a\nV:1\n\n\n\nP:b\nV:2\no:\n", 2, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		inv = inv_new();
		assert_int_equal(pkgdb_parse_apk(cases[i].text, strlen(cases[i].text), inv),
				 cases[i].added);
		assert_int_equal(inv->n_malformed, cases[i].malformed);
		pkgdb_inv_free(inv);
	}
}

/* --- rpm ---------------------------------------------------------------- */

typedef struct {
	uint32_t tag, type;
	const char *s; /* a string, or NULL for an INT32 */
	uint32_t v;
} hent_t;

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* An RPM header blob of the entries, as rpmdb.sqlite stores one. */
static size_t make_header(uint8_t *out, size_t cap, const hent_t *e, size_t n)
{
	uint8_t data[4096];
	size_t dl = 0;
	uint8_t *idx = out + 8;
	for (size_t i = 0; i < n; i++) {
		uint32_t off;
		if (e[i].s) {
			off = (uint32_t)dl;
			size_t k = strlen(e[i].s) + 1;
			memcpy(data + dl, e[i].s, k);
			dl += k;
		} else {
			while (dl % 4)
				data[dl++] = 0;
			off = (uint32_t)dl;
			put32(data + dl, e[i].v);
			dl += 4;
		}
		put32(idx + i * 16, e[i].tag);
		put32(idx + i * 16 + 4, e[i].type);
		put32(idx + i * 16 + 8, off);
		put32(idx + i * 16 + 12, 1);
	}
	put32(out, (uint32_t)n);
	put32(out + 4, (uint32_t)dl);
	assert_true(8 + n * 16 + dl <= cap);
	memcpy(out + 8 + n * 16, data, dl);
	return 8 + n * 16 + dl;
}

static void test_rpm_header(void **state)
{
	(void)state;
	uint8_t blob[8192];
	/* an immutable region tag first, as rpm writes it */
	hent_t openssl[] = {
		{63, 7, "", 0},
		{1000, 6, "openssl-libs", 0},
		{1001, 6, "3.0.7", 0},
		{1002, 6, "25.el9_3", 0},
		{1003, 4, NULL, 1},
		{1022, 6, "x86_64", 0},
		{1044, 6, "openssl-3.0.7-25.el9_3.src.rpm", 0},
	};
	pkgdb_inv_t *inv = inv_new();
	size_t len = make_header(blob, sizeof(blob), openssl, 7);
	assert_int_equal(pkgdb_parse_rpm_header(blob, len, inv), 1);
	assert_pkg(inv, "openssl-libs", "1:3.0.7-25.el9_3", "x86_64", "openssl",
		   "1:3.0.7-25.el9_3");

	hent_t bash[] = {
		{1000, 6, "bash", 0},
		{1001, 6, "5.1.8", 0},
		{1002, 6, "6.el9", 0},
		{1022, 6, "x86_64", 0},
		{1044, 6, "bash-5.1.8-6.el9.src.rpm", 0},
	};
	len = make_header(blob, sizeof(blob), bash, 5);
	assert_int_equal(pkgdb_parse_rpm_header(blob, len, inv), 1);
	assert_pkg(inv, "bash", "5.1.8-6.el9", "x86_64", "bash", "5.1.8-6.el9");

	/* no SOURCERPM, no ARCH: the package is its own source */
	hent_t bare[] = {{1000, 6, "x", 0}, {1001, 6, "1", 0}, {1002, 6, "2", 0}};
	len = make_header(blob, sizeof(blob), bare, 3);
	assert_int_equal(pkgdb_parse_rpm_header(blob, len, inv), 1);
	assert_pkg(inv, "x", "1-2", "", "x", "1-2");

	/* gpg-pubkey is a key, not software */
	hent_t key[] = {
		{1000, 6, "gpg-pubkey", 0}, {1001, 6, "fd431d51", 0}, {1002, 6, "4ae0493b", 0}};
	len = make_header(blob, sizeof(blob), key, 3);
	assert_int_equal(pkgdb_parse_rpm_header(blob, len, inv), 0);
	assert_int_equal(inv->n_pkgs, 3);
	assert_int_equal(inv->n_malformed, 0);
	pkgdb_inv_free(inv);
}

static void test_rpm_header_bad(void **state)
{
	(void)state;
	uint8_t blob[8192];
	hent_t ok[] = {{1000, 6, "bash", 0},
		       {1001, 6, "5.1.8", 0},
		       {1002, 6, "6.el9", 0},
		       {1003, 4, NULL, 2}};
	size_t len = make_header(blob, sizeof(blob), ok, 4);
	pkgdb_inv_t *inv = inv_new();
	/* every truncation is refused, none read past the end */
	for (size_t n = 0; n < len; n++) {
		uint8_t *cut = malloc(n ? n : 1);
		assert_non_null(cut);
		memcpy(cut, blob, n);
		assert_int_equal(pkgdb_parse_rpm_header(cut, n, inv), 0);
		free(cut);
	}
	assert_int_equal(inv->n_malformed, len);
	assert_int_equal(pkgdb_parse_rpm_header(blob, len, inv), 1);
	assert_pkg(inv, "bash", "2:5.1.8-6.el9", "", "bash", "2:5.1.8-6.el9");

	/* offsets, counts and types out of bounds */
	static const struct {
		size_t at;
		uint32_t v;
	} pokes[] = {
		{0, 0},
		{0, 0x10000},
		{0, 5},
		{4, 0x7fffffff},
		{4, 1000},
		{8 + 8, 999},
		{8 + 4, 4},
		{8 + 12, 0},
		{8 + 3 * 16 + 8, 2},
		{8 + 3 * 16 + 4, 6},
		{8 + 3 * 16 + 8, 0xfffffffc},
		{8 + 1 * 16 + 8, 0xffffffff},
	};
	for (size_t i = 0; i < sizeof(pokes) / sizeof(pokes[0]); i++) {
		uint8_t copy[8192];
		memcpy(copy, blob, len);
		put32(copy + pokes[i].at, pokes[i].v);
		size_t before = inv->n_malformed;
		assert_int_equal(pkgdb_parse_rpm_header(copy, len, inv), 0);
		assert_int_equal(inv->n_malformed, before + 1);
	}
	/* a string without its NUL at the end of the data store */
	len = make_header(blob, sizeof(blob), ok, 3);
	assert_int_equal(pkgdb_parse_rpm_header(blob, len - 1, inv), 0);
	pkgdb_inv_free(inv);
}

static void test_sourcerpm(void **state)
{
	(void)state;
	static const struct {
		const char *s, *name, *ver;
	} cases[] = {
		{"bash-5.1.8-6.el9.src.rpm", "bash", "5.1.8-6.el9"},
		{"python3-pip-21.3.1-1.el9.nosrc.rpm", "python3-pip", "21.3.1-1.el9"},
		{"a-b-c-1-2.src.rpm", "a-b-c", "1-2"},
		{"bash-5.1.8.src.rpm", NULL, NULL},
		{"-1-2.src.rpm", NULL, NULL},
		{"a--2.src.rpm", NULL, NULL},
		{"a-1-.src.rpm", NULL, NULL},
		{"bash-5.1.8-6.el9", NULL, NULL},
		{".src.rpm", NULL, NULL},
		{"", NULL, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t nl, vl;
		const char *v;
		int rc = pkgdb_split_sourcerpm(cases[i].s, strlen(cases[i].s), &nl, &v, &vl);
		if (!cases[i].name) {
			assert_int_equal(rc, -1);
			continue;
		}
		assert_int_equal(rc, 0);
		assert_int_equal(nl, strlen(cases[i].name));
		assert_memory_equal(cases[i].s, cases[i].name, nl);
		assert_int_equal(vl, strlen(cases[i].ver));
		assert_memory_equal(v, cases[i].ver, vl);
	}
}

/* An rpmdb.sqlite file made the way rpm makes one, read from memory. */
static void test_rpm_sqlite(void **state)
{
	(void)state;
	char path[] = "/tmp/vigil-rpmdb-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(db,
			     "PRAGMA journal_mode=WAL;"
			     "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT,"
			     " blob BLOB NOT NULL);"
			     "CREATE TABLE Name (key TEXT NOT NULL, hnum INTEGER NOT NULL,"
			     " idx INTEGER NOT NULL, PRIMARY KEY(key, hnum, idx))",
			     NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(
		sqlite3_prepare_v2(db, "INSERT INTO Packages (blob) VALUES (?)", -1, &st, NULL),
		SQLITE_OK);
	uint8_t blob[8192];
	for (int i = 0; i < 50; i++) {
		char name[32];
		snprintf(name, sizeof(name), "pkg%d", i);
		hent_t e[] = {{1000, 6, name, 0},
			      {1001, 6, "1.0", 0},
			      {1002, 6, "1.el9", 0},
			      {1022, 6, "noarch", 0}};
		size_t len = make_header(blob, sizeof(blob), e, 4);
		if (i == 7)
			len = 5; /* one garbage blob */
		sqlite3_bind_blob(st, 1, blob, (int)len, SQLITE_TRANSIENT);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);

	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	uint8_t *buf = malloc(1 << 20);
	size_t n = fread(buf, 1, 1 << 20, f);
	fclose(f);
	unlink(path);
	char wal[64];
	snprintf(wal, sizeof(wal), "%s-wal", path);
	unlink(wal);
	snprintf(wal, sizeof(wal), "%s-shm", path);
	unlink(wal);
	assert_int_equal(buf[18], 2); /* WAL mode, as rpm leaves it */

	pkgdb_inv_t *inv = inv_new();
	assert_int_equal(pkgdb_sqlite_read(buf, n, inv, 0), 49);
	assert_int_equal(inv->n_malformed, 1);
	assert_pkg(inv, "pkg0", "1.0-1.el9", "noarch", "pkg0", "1.0-1.el9");
	pkgdb_inv_free(inv);

	/* not a database, a database without Packages, a truncated one */
	inv = inv_new();
	assert_int_equal(pkgdb_sqlite_read((uint8_t *)"hello", 5, inv, 0), -1);
	assert_int_equal(inv->status, PKGDB_ST_NOT_READ);
	pkgdb_inv_free(inv);
	inv = inv_new();
	memcpy(buf + 4096, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
	long k = pkgdb_sqlite_read(buf, 4096 + 512, inv, 0);
	assert_true(k <= 0);
	assert_int_equal(inv->status, PKGDB_ST_NOT_READ);
	pkgdb_inv_free(inv);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_os_release),
		cmocka_unit_test(test_os_release_long),
		cmocka_unit_test(test_dpkg_status),
		cmocka_unit_test(test_dpkg_status_d),
		cmocka_unit_test(test_dpkg_bad),
		cmocka_unit_test(test_dpkg_caps),
		cmocka_unit_test(test_apk),
		cmocka_unit_test(test_rpm_header),
		cmocka_unit_test(test_rpm_header_bad),
		cmocka_unit_test(test_sourcerpm),
		cmocka_unit_test(test_rpm_sqlite),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
