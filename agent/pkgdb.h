// SPDX-License-Identifier: Apache-2.0
/*
 * An image's package inventory and the parsers of the files it comes from:
 * os-release, the dpkg status file (and distroless status.d/ files, same
 * paragraphs), Alpine's lib/apk/db/installed, and the header blobs that
 * rpmdb.sqlite stores (pkgdb_rpm.c). The parsers take a buffer and do no
 * I/O; the bytes come from a container and are hostile: every string kept
 * is capped at PKGDB_MAX_FIELD bytes and repaired to valid UTF-8 (see
 * text.h), the package count is capped, and what is cut is counted and
 * makes the status partial with a reason.
 */
#ifndef VIGIL_AGENT_PKGDB_H
#define VIGIL_AGENT_PKGDB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PKGDB_MAX_FIELD 256	 /* bytes per stored string, marker included */
#define PKGDB_MAX_PACKAGES 20000 /* packages per image */
#define PKGDB_REASON_MAX 256

typedef enum {
	PKGDB_FMT_NONE = 0, /* no package database found */
	PKGDB_FMT_DPKG,
	PKGDB_FMT_APK,
	PKGDB_FMT_RPM,
} pkgdb_format_t;

typedef enum {
	PKGDB_ST_OK = 0,
	PKGDB_ST_NOT_READ, /* nothing read: reason says why */
	PKGDB_ST_PARTIAL,  /* some read, some cut or skipped: reason says why */
} pkgdb_status_t;

/* One installed package. Advisories name source packages: when the
 * database names none, source_name is name and source_version is version. */
typedef struct {
	char *name;
	char *version; /* as the ecosystem writes it: dpkg "1:2.3-4", rpm "[E:]V-R" */
	char *arch;    /* "" when the database has none */
	char *source_name;
	char *source_version;
} pkgdb_pkg_t;

/* An image's inventory. Filled by one thread, then read-only and shared by
 * reference (pkgdb_inv_ref / pkgdb_inv_free). */
typedef struct {
	char *os_id;	   /* os-release ID ("debian"), NULL if unknown */
	char *os_version;  /* VERSION_ID ("12") */
	char *os_codename; /* VERSION_CODENAME ("bookworm") */
	char *os_pretty;   /* PRETTY_NAME */
	pkgdb_format_t format;
	pkgdb_status_t status;
	char reason[PKGDB_REASON_MAX]; /* "" when status is ok */
	pkgdb_pkg_t *pkgs;
	size_t n_pkgs, cap_pkgs;
	size_t max_pkgs;	/* PKGDB_MAX_PACKAGES unless set lower */
	size_t n_over_cap;	/* packages dropped over max_pkgs */
	size_t n_fields_cut;	/* strings cut at PKGDB_MAX_FIELD */
	size_t n_malformed;	/* records without a name or version, bad headers */
	size_t n_not_installed; /* dpkg records whose Status is not installed */
	atomic_int refs;
} pkgdb_inv_t;

/* Return a new, empty inventory (status ok, format none, one reference),
 * NULL on OOM. */
pkgdb_inv_t *pkgdb_inv_new(void);
/* Take one more reference to inv. */
pkgdb_inv_t *pkgdb_inv_ref(pkgdb_inv_t *inv);
/* Drop a reference; the last one frees inv. Accepts NULL. */
void pkgdb_inv_free(pkgdb_inv_t *inv);

/* Set the status to not read (overrides partial) with a reason (printf). */
void pkgdb_inv_not_read(pkgdb_inv_t *inv, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Mark the inventory partial with a reason, unless it is already not read
 * or partial (the first reason is kept). */
void pkgdb_inv_partial(pkgdb_inv_t *inv, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Turn the counters (over cap, fields cut, malformed) into a partial status
 * and reason, if any is set and the status is still ok. */
void pkgdb_inv_finish(pkgdb_inv_t *inv);

/* Add a package from (pointer, length) fields; NULL or zero-length source
 * fields fall back to name and version. Each field is capped and repaired.
 * Return 0, 1 if it was dropped over the package cap, -1 on OOM. */
int pkgdb_inv_add(pkgdb_inv_t *inv, const char *name, size_t name_len, const char *version,
		  size_t version_len, const char *arch, size_t arch_len, const char *src_name,
		  size_t src_name_len, const char *src_version, size_t src_version_len);

const char *pkgdb_format_name(pkgdb_format_t f);
const char *pkgdb_status_name(pkgdb_status_t s);

/* Parse an os-release file (KEY=VALUE lines, shell quoting: "..." with \",
 * \\, \$, \` escapes, '...' literal) into inv's os_* fields; the last
 * assignment of a key wins. Return 0, -1 on OOM. */
int pkgdb_parse_os_release(const char *buf, size_t len, pkgdb_inv_t *inv);

/* Parse dpkg status paragraphs (the status file, or one status.d/ file:
 * status_d true) and add the installed packages to inv. A package counts
 * as installed when its Status is "<want> ok installed": "hold" or
 * "deinstall" leave the files on disk, so they are kept; "config-files",
 * "half-installed", "not-installed" and the like are skipped. In status.d
 * a paragraph without Status is installed (the file exists only for
 * installed packages). Return the number of packages added, -1 on OOM. */
long pkgdb_parse_dpkg(const char *buf, size_t len, bool status_d, pkgdb_inv_t *inv);

/* Parse Alpine's lib/apk/db/installed (records of "K:value" lines separated
 * by blank lines: P name, V version, A arch, o origin, the source package)
 * and add its packages to inv. Return the number added, -1 on OOM. */
long pkgdb_parse_apk(const char *buf, size_t len, pkgdb_inv_t *inv);

/* Parse one RPM header blob as rpmdb.sqlite's Packages table stores it
 * (big-endian index count and data length, index entries of tag, type,
 * offset, count, then the data store) and add the package to inv: NAME,
 * VERSION, RELEASE, EPOCH, ARCH, SOURCERPM. Every offset and count is
 * bounds-checked. gpg-pubkey entries (keys, not software) are skipped.
 * Return 1 if a package was added, 0 if skipped (malformed is counted in
 * n_malformed), -1 on OOM. */
int pkgdb_parse_rpm_header(const uint8_t *blob, size_t len, pkgdb_inv_t *inv);

/* Split a SOURCERPM value "name-version-release.src.rpm" into the source
 * package name and "version-release". Return 0, -1 if it does not parse. */
int pkgdb_split_sourcerpm(const char *s, size_t len, size_t *name_len, const char **ver,
			  size_t *ver_len);

#endif
