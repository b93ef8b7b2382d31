// SPDX-License-Identifier: Apache-2.0
/* The agent's key, requests and certificate files (see certfile.h). */
#include "certfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "log.h"
#include "tls.h"

/* Longest subject CN (X.520 ub-common-name). */
#define CN_MAX 64

/* The directory part of path into out ("." if none). */
static void dir_of(const char *path, char *out, size_t n)
{
	const char *slash = strrchr(path, '/');
	if (!slash) {
		snprintf(out, n, ".");
		return;
	}
	size_t len = slash == path ? 1 : (size_t)(slash - path);
	snprintf(out, n, "%.*s", (int)len, path);
}

/* Make path's directory (one level, 0755) if it is missing. */
static void ensure_dir(const char *path)
{
	char dir[PATH_MAX];
	dir_of(path, dir, sizeof(dir));
	struct stat st;
	if (stat(dir, &st) != 0 && errno == ENOENT && mkdir(dir, 0755) == 0)
		log_info("created directory %s", dir);
}

static void fsync_dir(const char *path)
{
	char dir[PATH_MAX];
	dir_of(path, dir, sizeof(dir));
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

static int write_all(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int certfile_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
			  bool noreplace, char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	if (!path[0] || (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= sizeof(tmp)) {
		snprintf(err, errlen, "%s: bad path", path);
		return -1;
	}
	ensure_dir(path);
	/* mkostemp creates the file 0600 with O_EXCL: never readable by
	 * others, not even for a moment */
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create a file next to %s: %s", path, strerror(errno));
		return -1;
	}
	const char *step = "write";
	int rc = -1;
	if (fchmod(fd, mode) != 0)
		step = "chmod";
	else if (write_all(fd, data, len) != 0)
		step = "write";
	else if (fsync(fd) != 0)
		step = "fsync";
	else
		rc = 0;
	int saved = errno;
	if (close(fd) != 0 && rc == 0) {
		saved = errno;
		step = "close";
		rc = -1;
	}
	if (rc == 0 && noreplace) {
		/* link() fails with EEXIST instead of replacing */
		if (link(tmp, path) != 0) {
			saved = errno;
			rc = saved == EEXIST ? 1 : -1;
			step = "link";
		}
	} else if (rc == 0 && rename(tmp, path) != 0) {
		saved = errno;
		step = "rename";
		rc = -1;
	}
	if (rc != 0 || noreplace)
		unlink(tmp);
	if (rc < 0) {
		snprintf(err, errlen, "cannot write %s (%s): %s", path, step, strerror(saved));
		return -1;
	}
	if (rc == 0)
		fsync_dir(path);
	return rc;
}

/* Read at most max bytes of path into a new buffer. */
static uint8_t *read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	uint8_t *buf = malloc(max + 1);
	size_t got = 0;
	while (buf && got <= max) {
		ssize_t n = read(fd, buf + got, max + 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
			free(buf);
			buf = NULL;
		}
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (buf && got > max) {
		snprintf(err, errlen, "%s is larger than %zu bytes", path, max);
		free(buf);
		return NULL;
	}
	if (!buf && !err[0])
		snprintf(err, errlen, "out of memory");
	*len = got;
	return buf;
}

int certfile_copy_atomic(const char *src, const char *dst, mode_t mode, size_t max, char *err,
			 size_t errlen)
{
	struct stat a, b;
	if (stat(src, &a) == 0 && stat(dst, &b) == 0 && a.st_dev == b.st_dev &&
	    a.st_ino == b.st_ino)
		return 0;
	size_t len = 0;
	err[0] = '\0';
	uint8_t *data = read_file(src, max, &len, err, errlen);
	if (!data)
		return -1;
	int rc = certfile_write_atomic(dst, data, len, mode, false, err, errlen);
	free(data);
	return rc == 0 ? 0 : -1;
}

static EVP_PKEY *load_key(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	struct stat st;
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077))
		log_warn("private key %s is readable by others (mode %03o); it should be 0600",
			 path, (unsigned)(st.st_mode & 0777));
	EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!key) {
		tls_error_text(err, errlen, "cannot read the private key");
		snprintf(err + strlen(err), errlen - strlen(err), " (%s)", path);
	}
	return key;
}

/* A new EC P-256 key written to path unless a key is there already.
 * Return 0 (written), 1 (one appeared meanwhile), -1 with err set. */
static int create_key(const char *path, EVP_PKEY **out, char *err, size_t errlen)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem = NULL;
	long n = 0;
	if (!key || !bio || !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) ||
	    (n = BIO_get_mem_data(bio, &pem)) <= 0) {
		tls_error_text(err, errlen, "cannot make an EC P-256 key");
		BIO_free(bio);
		EVP_PKEY_free(key);
		return -1;
	}
	int rc = certfile_write_atomic(path, pem, (size_t)n, 0600, true, err, errlen);
	OPENSSL_cleanse(pem, (size_t)n);
	BIO_free(bio);
	if (rc != 0) {
		EVP_PKEY_free(key);
		return rc;
	}
	*out = key;
	return 0;
}

EVP_PKEY *certfile_load_or_create_key(const char *path, bool *created, char *err, size_t errlen)
{
	*created = false;
	if (access(path, F_OK) != 0 && errno == ENOENT) {
		EVP_PKEY *key = NULL;
		int rc = create_key(path, &key, err, errlen);
		if (rc < 0)
			return NULL;
		if (rc == 0) {
			*created = true;
			return key;
		}
	}
	return load_key(path, err, errlen);
}

int certfile_make_csr(EVP_PKEY *key, const char *cn, uint8_t **der, size_t *len, char *err,
		      size_t errlen)
{
	*der = NULL;
	*len = 0;
	char name[CN_MAX + 1];
	snprintf(name, sizeof(name), "%s", cn && cn[0] ? cn : "vigil-agent");
	X509_REQ *req = X509_REQ_new();
	X509_NAME *subj = X509_NAME_new();
	const EVP_MD *md = EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
	unsigned char *out = NULL;
	int n = -1;
	if (req && subj && X509_REQ_set_version(req, 0) == 1 &&
	    X509_NAME_add_entry_by_NID(subj, NID_commonName, MBSTRING_UTF8,
				       (const unsigned char *)name, -1, -1, 0) == 1 &&
	    X509_REQ_set_subject_name(req, subj) == 1 && X509_REQ_set_pubkey(req, key) == 1 &&
	    X509_REQ_sign(req, key, md) > 0)
		n = i2d_X509_REQ(req, &out);
	X509_NAME_free(subj);
	X509_REQ_free(req);
	if (n <= 0) {
		tls_error_text(err, errlen, "cannot make a certificate request");
		return -1;
	}
	*der = malloc((size_t)n);
	if (*der) {
		memcpy(*der, out, (size_t)n);
		*len = (size_t)n;
	}
	OPENSSL_free(out);
	if (!*der) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static X509 *parse_der(certfile_der_t d)
{
	const unsigned char *p = d.data;
	if (!d.data || d.len == 0 || d.len > LONG_MAX)
		return NULL;
	X509 *x = d2i_X509(NULL, &p, (long)d.len);
	if (x && p != d.data + d.len) {
		X509_free(x);
		return NULL;
	}
	return x;
}

char *certfile_chain_pem(certfile_der_t leaf, const certfile_der_t *chain, size_t n, EVP_PKEY *key,
			 size_t *len, int64_t *not_after_ns, char *err, size_t errlen)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *out = NULL;
	if (!bio) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i <= n; i++) {
		X509 *x = parse_der(i == 0 ? leaf : chain[i - 1]);
		if (!x) {
			snprintf(err, errlen, "certificate %zu of the chain does not parse", i);
			goto done;
		}
		int64_t nb = 0, na = 0;
		bool bad_key = i == 0 && key && X509_check_private_key(x, key) != 1;
		if (i == 0 && not_after_ns)
			*not_after_ns = certfile_validity(x, &nb, &na) == 0 ? na : 0;
		int ok = !bad_key && PEM_write_bio_X509(bio, x);
		X509_free(x);
		if (bad_key) {
			snprintf(err, errlen, "the certificate is not for this agent's key");
			goto done;
		}
		if (!ok) {
			tls_error_text(err, errlen, "cannot encode the certificate");
			goto done;
		}
	}
	char *data = NULL;
	long dl = BIO_get_mem_data(bio, &data);
	out = dl > 0 ? malloc((size_t)dl + 1) : NULL;
	if (out) {
		memcpy(out, data, (size_t)dl);
		out[dl] = '\0';
		*len = (size_t)dl;
	} else {
		snprintf(err, errlen, "out of memory");
	}
done:
	BIO_free(bio);
	ERR_clear_error();
	return out;
}

static int asn1_ns(const ASN1_TIME *t, int64_t *ns)
{
	struct tm tm;
	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return -1;
	int64_t s = (int64_t)timegm(&tm);
	const int64_t lim = INT64_MAX / 1000000000;
	*ns = s > lim ? INT64_MAX : s < -lim ? -INT64_MAX : s * 1000000000;
	return 0;
}

int certfile_validity(const X509 *x, int64_t *not_before_ns, int64_t *not_after_ns)
{
	if (!x || asn1_ns(X509_get0_notBefore(x), not_before_ns) != 0 ||
	    asn1_ns(X509_get0_notAfter(x), not_after_ns) != 0)
		return -1;
	return 0;
}

bool certfile_renew_due(int64_t not_before_ns, int64_t not_after_ns, int64_t now_ns)
{
	if (not_after_ns <= not_before_ns)
		return false;
	/* not_after - lifetime/3, in unsigned arithmetic: the difference of
	 * two int64 values may not fit in one */
	uint64_t life = (uint64_t)not_after_ns - (uint64_t)not_before_ns;
	int64_t point = (int64_t)((uint64_t)not_after_ns - life / 3);
	return now_ns >= point;
}

void certfile_time_str(int64_t t_ns, char *out, size_t outlen)
{
	time_t t = (time_t)(t_ns / 1000000000);
	struct tm tm;
	if (!gmtime_r(&t, &tm) || strftime(out, outlen, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(out, outlen, "?");
}
