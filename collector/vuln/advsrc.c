// SPDX-License-Identifier: Apache-2.0
/*
 * Advisory documents from files, directories and zip archives (see
 * advsrc.h). Files are opened without blocking and must be regular; sizes
 * are checked before anything is read, and again while reading.
 */
#include "vuln/advsrc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zip.h>

#include "vuln/osv.h"

typedef struct {
	advsrc_fn fn;
	void *ctx;
	advsrc_stats_t *st;
	char *err;
	size_t errlen;
} walk_t;

const char *advsrc_printable(const char *s, char *out, size_t outlen)
{
	size_t i = 0;
	for (; s[i] && i + 1 < outlen; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	out[i] = '\0';
	return out;
}

/* Set err to "FILE[ (member M)]: message"; return -1. */
__attribute__((format(printf, 4, 5))) static int fail(walk_t *w, const char *file,
						      const char *member, const char *fmt, ...)
{
	char f[512], m[512];
	int n = member ? snprintf(w->err, w->errlen,
				  "%s (member %s): ", advsrc_printable(file, f, sizeof(f)),
				  advsrc_printable(member, m, sizeof(m)))
		       : snprintf(w->err, w->errlen, "%s: ", advsrc_printable(file, f, sizeof(f)));
	if (n < 0 || (size_t)n >= w->errlen)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->err + n, w->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

/* ---- plain files --------------------------------------------------------- */

static int read_file(walk_t *w, const char *path)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return fail(w, path, NULL, "cannot open: %s", strerror(errno));
	struct stat sb;
	char *buf = NULL;
	int rc = -1;
	if (fstat(fd, &sb) != 0) {
		fail(w, path, NULL, "cannot stat: %s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		fail(w, path, NULL, "not a regular file");
		goto out;
	}
	if (sb.st_size > OSV_MAX_BYTES) {
		fail(w, path, NULL, "%lld bytes, more than the %d bytes an advisory may have",
		     (long long)sb.st_size, OSV_MAX_BYTES);
		goto out;
	}
	/* one byte more than allowed: a file that grew is caught too */
	size_t cap = (size_t)OSV_MAX_BYTES + 1, len = 0;
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf) {
		fail(w, path, NULL, "out of memory");
		goto out;
	}
	size_t want = (size_t)sb.st_size + 1;
	while (len < want && len < cap) {
		ssize_t n = read(fd, buf + len, want - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fail(w, path, NULL, "cannot read: %s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len != (size_t)sb.st_size) {
		fail(w, path, NULL, "changed size while being read");
		goto out;
	}
	w->st->files++;
	advsrc_doc_t doc = {path, NULL, buf, len};
	rc = w->fn(w->ctx, &doc);
out:
	free(buf);
	close(fd);
	return rc;
}

/* ---- zip archives -------------------------------------------------------- */

static int read_member(walk_t *w, const char *path, zip_t *z, zip_uint64_t idx,
		       const zip_stat_t *zs)
{
	zip_file_t *zf = zip_fopen_index(z, idx, 0);
	if (!zf)
		return fail(w, path, zs->name, "cannot open: %s", zip_strerror(z));
	char *buf = malloc((size_t)zs->size + 1);
	int rc = -1;
	if (!buf) {
		fail(w, path, zs->name, "out of memory");
		goto out;
	}
	zip_int64_t n = zip_fread(zf, buf, zs->size + 1);
	if (n < 0) {
		fail(w, path, zs->name, "cannot read: %s", zip_file_strerror(zf));
		goto out;
	}
	if ((zip_uint64_t)n != zs->size) {
		fail(w, path, zs->name, "holds %lld bytes, not the %llu its header says",
		     (long long)n, (unsigned long long)zs->size);
		goto out;
	}
	w->st->members++;
	advsrc_doc_t doc = {path, zs->name, buf, (size_t)n};
	rc = w->fn(w->ctx, &doc);
out:
	free(buf);
	zip_fclose(zf);
	return rc;
}

static int read_zip(walk_t *w, const char *path)
{
	int zerr = 0;
	zip_t *z = zip_open(path, ZIP_RDONLY, &zerr);
	if (!z) {
		zip_error_t ze;
		zip_error_init_with_code(&ze, zerr);
		fail(w, path, NULL, "not a readable zip archive: %s", zip_error_strerror(&ze));
		zip_error_fini(&ze);
		return -1;
	}
	w->st->archives++;
	zip_int64_t n = zip_get_num_entries(z, 0);
	int rc = 0;
	if (n > ADVSRC_MAX_MEMBERS)
		rc = fail(w, path, NULL, "%lld members, more than %d", (long long)n,
			  ADVSRC_MAX_MEMBERS);
	int64_t total = 0;
	for (zip_int64_t i = 0; rc == 0 && i < n; i++) {
		zip_stat_t zs;
		zip_stat_init(&zs);
		if (zip_stat_index(z, (zip_uint64_t)i, 0, &zs) != 0 ||
		    !(zs.valid & ZIP_STAT_NAME) || !(zs.valid & ZIP_STAT_SIZE)) {
			rc = fail(w, path, NULL, "member %lld: cannot stat: %s", (long long)i,
				  zip_strerror(z));
			break;
		}
		if (ends_with(zs.name, "/"))
			continue;
		if (!ends_with(zs.name, ".json")) {
			w->st->not_json++;
			continue;
		}
		if (zs.size > OSV_MAX_BYTES) {
			rc = fail(w, path, zs.name,
				  "%llu bytes uncompressed, more than the %d bytes an advisory "
				  "may have",
				  (unsigned long long)zs.size, OSV_MAX_BYTES);
			break;
		}
		total += (int64_t)zs.size;
		if (total > ADVSRC_MAX_ARCHIVE_BYTES) {
			rc = fail(w, path, zs.name,
				  "the archive holds more than %lld bytes uncompressed",
				  (long long)ADVSRC_MAX_ARCHIVE_BYTES);
			break;
		}
		rc = read_member(w, path, z, (zip_uint64_t)i, &zs);
	}
	zip_discard(z);
	return rc;
}

/* ---- directories --------------------------------------------------------- */

static int walk(walk_t *w, const char *path, int depth, bool named);

static int walk_dir(walk_t *w, const char *path, int depth)
{
	if (depth > ADVSRC_MAX_DEPTH)
		return fail(w, path, NULL, "more than %d directories deep", ADVSRC_MAX_DEPTH);
	struct dirent **list = NULL;
	int n = scandir(path, &list, NULL, alphasort);
	if (n < 0)
		return fail(w, path, NULL, "cannot read the directory: %s", strerror(errno));
	int rc = 0;
	for (int i = 0; i < n; i++) {
		const char *name = list[i]->d_name;
		if (rc == 0 && name[0] != '.') {
			size_t len = strlen(path) + strlen(name) + 2;
			char *child = malloc(len);
			if (!child) {
				rc = fail(w, path, NULL, "out of memory");
			} else {
				snprintf(child, len, "%s/%s", path, name);
				rc = walk(w, child, depth + 1, false);
				free(child);
			}
		}
		free(list[i]);
	}
	free(list);
	return rc;
}

/* A path named on the command line is read whatever its name; one found in
 * a directory only if it is a directory or a *.json file. */
static int walk(walk_t *w, const char *path, int depth, bool named)
{
	struct stat sb;
	if (stat(path, &sb) != 0)
		return fail(w, path, NULL, "cannot stat: %s", strerror(errno));
	if (S_ISDIR(sb.st_mode))
		return walk_dir(w, path, depth);
	if (named && ends_with(path, ".zip"))
		return read_zip(w, path);
	if (named || (S_ISREG(sb.st_mode) && ends_with(path, ".json")))
		return read_file(w, path);
	return 0;
}

int advsrc_read(const char *path, advsrc_fn fn, void *ctx, advsrc_stats_t *st, char *err,
		size_t errlen)
{
	walk_t w = {fn, ctx, st, err, errlen};
	return walk(&w, path, 0, true);
}
