// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for agent/certfile.c and agent/renew.c: the key is made once
 * with mode 0600 and reused; a CSR of it verifies and carries its public
 * key; files are written atomically with their mode, keep their old
 * content and leave no temporary file when a write fails; certificate
 * chains are checked against the key; the renewal point is two thirds of
 * a certificate's lifetime.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "certfile.h"
#include "log.h"
#include "renew.h"

static char dir[256];

static void rm_tree(const char *d)
{
	DIR *dh = opendir(d);
	struct dirent *de;
	while (dh && (de = readdir(dh)) != NULL) {
		char p[600];
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", d, de->d_name);
		if (unlink(p) != 0)
			rm_tree(p);
	}
	if (dh)
		closedir(dh);
	rmdir(d);
}

static int setup(void **state)
{
	(void)state;
	log_set_level(LOG_LVL_ERROR);
	snprintf(dir, sizeof(dir), "/tmp/vigil-enroll-test-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char p[300];
	snprintf(p, sizeof(p), "%s/small", dir);
	umount2(p, MNT_DETACH); /* a test's tmpfs, if it failed before its umount */
	rm_tree(dir);
	return 0;
}

static void path_in(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

/* Names in d other than . and .. */
static int count_entries(const char *d)
{
	DIR *dh = opendir(d);
	struct dirent *de;
	int n = 0;
	while (dh && (de = readdir(dh)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	if (dh)
		closedir(dh);
	return n;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = calloc(1, 1 << 20);
	*len = fread(buf, 1, (1 << 20) - 1, f);
	fclose(f);
	return buf;
}

static mode_t mode_of(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

/* A self-signed certificate for key, valid from nb to na (Unix seconds). */
static X509 *self_signed(EVP_PKEY *key, const char *cn, time_t nb, time_t na)
{
	X509 *x = X509_new();
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 42);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8, (const unsigned char *)cn,
				   -1, -1, 0);
	X509_set_issuer_name(x, name);
	ASN1_TIME_set(X509_getm_notBefore(x), nb);
	ASN1_TIME_set(X509_getm_notAfter(x), na);
	X509_set_pubkey(x, key);
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	return x;
}

static uint8_t *der_of(X509 *x, size_t *len)
{
	unsigned char *out = NULL;
	int n = i2d_X509(x, &out);
	assert_true(n > 0);
	*len = (size_t)n;
	return out;
}

static void test_key_created_once(void **state)
{
	(void)state;
	char key[300];
	path_in(key, sizeof(key), "sub/agent.key"); /* the directory is made too */
	bool created = false;
	char err[600];
	EVP_PKEY *k1 = certfile_load_or_create_key(key, &created, err, sizeof(err));
	assert_non_null(k1);
	assert_true(created);
	assert_int_equal(mode_of(key), 0600);
	assert_int_equal(EVP_PKEY_get_id(k1), EVP_PKEY_EC);
	assert_int_equal(EVP_PKEY_get_bits(k1), 256);
	char sub[300];
	path_in(sub, sizeof(sub), "sub");
	assert_int_equal(count_entries(sub), 1); /* no temporary left */
	EVP_PKEY *k2 = certfile_load_or_create_key(key, &created, err, sizeof(err));
	assert_non_null(k2);
	assert_false(created);
	assert_int_equal(EVP_PKEY_eq(k1, k2), 1);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
}

static void test_key_unreadable_not_replaced(void **state)
{
	(void)state;
	char key[300];
	path_in(key, sizeof(key), "bad.key");
	FILE *f = fopen(key, "w");
	fputs("not a key\n", f);
	fclose(f);
	bool created = true;
	char err[600];
	assert_null(certfile_load_or_create_key(key, &created, err, sizeof(err)));
	assert_false(created);
	assert_non_null(strstr(err, "bad.key"));
	size_t len;
	char *text = slurp(key, &len);
	assert_string_equal(text, "not a key\n");
	free(text);
}

static void test_csr_round_trip(void **state)
{
	(void)state;
	char key[300], err[600];
	path_in(key, sizeof(key), "csr.key");
	bool created;
	EVP_PKEY *k = certfile_load_or_create_key(key, &created, err, sizeof(err));
	assert_non_null(k);
	uint8_t *der = NULL;
	size_t len = 0;
	assert_int_equal(certfile_make_csr(k, "node-1.example", &der, &len, err, sizeof(err)), 0);
	const unsigned char *p = der;
	X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)len);
	assert_non_null(req);
	assert_ptr_equal(p, der + len);
	EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
	assert_int_equal(X509_REQ_verify(req, pub), 1);
	/* the key file on disk is the key of the request */
	EVP_PKEY *again = certfile_load_or_create_key(key, &created, err, sizeof(err));
	assert_int_equal(EVP_PKEY_eq(pub, again), 1);
	char cn[128];
	assert_true(X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req), NID_commonName, cn,
					      sizeof(cn)) > 0);
	assert_string_equal(cn, "node-1.example");
	X509_REQ_free(req);
	free(der);
	/* a host name longer than a CN may be is cut, not refused */
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(certfile_make_csr(k, longname, &der, &len, err, sizeof(err)), 0);
	free(der);
	EVP_PKEY_free(k);
	EVP_PKEY_free(again);
}

static void test_write_atomic_modes(void **state)
{
	(void)state;
	char f[300], err[600];
	path_in(f, sizeof(f), "cert.pem");
	assert_int_equal(certfile_write_atomic(f, "one\n", 4, 0644, false, err, sizeof(err)), 0);
	assert_int_equal(mode_of(f), 0644);
	assert_int_equal(certfile_write_atomic(f, "two\n", 4, 0600, false, err, sizeof(err)), 0);
	assert_int_equal(mode_of(f), 0600);
	size_t len;
	char *text = slurp(f, &len);
	assert_string_equal(text, "two\n");
	free(text);
	/* noreplace keeps what is there */
	assert_int_equal(certfile_write_atomic(f, "three\n", 6, 0600, true, err, sizeof(err)), 1);
	text = slurp(f, &len);
	assert_string_equal(text, "two\n");
	free(text);
	assert_int_equal(count_entries(dir), 1);
}

static void test_write_atomic_failures(void **state)
{
	(void)state;
	char d[300], err[600];
	/* the target is a directory: rename fails, nothing is left behind */
	path_in(d, sizeof(d), "adir");
	assert_int_equal(mkdir(d, 0755), 0);
	assert_int_equal(certfile_write_atomic(d, "x", 1, 0644, false, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "adir"));
	assert_int_equal(count_entries(dir), 1);
	/* a full file system: the old file stays whole, no temporary is left */
	char small[300], f[400];
	path_in(small, sizeof(small), "small");
	assert_int_equal(mkdir(small, 0755), 0);
	if (mount("tmpfs", small, "tmpfs", 0, "size=64k") != 0) {
		print_message("no tmpfs (not root?): full file system case skipped\n");
		return;
	}
	snprintf(f, sizeof(f), "%s/cert.pem", small);
	assert_int_equal(certfile_write_atomic(f, "old\n", 4, 0644, false, err, sizeof(err)), 0);
	size_t big = 1 << 20;
	char *data = malloc(big);
	memset(data, 'x', big);
	assert_int_equal(certfile_write_atomic(f, data, big, 0644, false, err, sizeof(err)), -1);
	free(data);
	size_t len;
	char *text = slurp(f, &len);
	assert_string_equal(text, "old\n");
	free(text);
	assert_int_equal(count_entries(small), 1);
	assert_int_equal(umount2(small, 0), 0);
}

static void test_copy_atomic(void **state)
{
	(void)state;
	char a[300], b[300], err[600];
	path_in(a, sizeof(a), "ca-in.pem");
	path_in(b, sizeof(b), "ca-out.pem");
	assert_int_equal(certfile_write_atomic(a, "CA\n", 3, 0600, false, err, sizeof(err)), 0);
	assert_int_equal(certfile_copy_atomic(a, b, 0644, 1024, err, sizeof(err)), 0);
	assert_int_equal(mode_of(b), 0644);
	size_t len;
	char *text = slurp(b, &len);
	assert_string_equal(text, "CA\n");
	free(text);
	/* the same file: left as it is */
	assert_int_equal(certfile_copy_atomic(a, a, 0644, 1024, err, sizeof(err)), 0);
	assert_int_equal(mode_of(a), 0600);
	/* larger than allowed */
	assert_int_equal(certfile_copy_atomic(a, b, 0644, 2, err, sizeof(err)), -1);
	/* missing source */
	path_in(a, sizeof(a), "missing.pem");
	assert_int_equal(certfile_copy_atomic(a, b, 0644, 1024, err, sizeof(err)), -1);
	text = slurp(b, &len);
	assert_string_equal(text, "CA\n");
	free(text);
}

static void test_chain_checked_against_key(void **state)
{
	(void)state;
	EVP_PKEY *mine = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");
	time_t now = time(NULL);
	X509 *leaf = self_signed(mine, "node-1", now - 300, now + 3600);
	X509 *ca = self_signed(other, "issuer", now - 300, now + 7200);
	size_t ll, cl;
	uint8_t *ld = der_of(leaf, &ll), *cd = der_of(ca, &cl);
	certfile_der_t chain[1] = {{cd, cl}};
	char err[600];
	size_t len = 0;
	int64_t na = 0;
	char *pem = certfile_chain_pem((certfile_der_t){ld, ll}, chain, 1, mine, &len, &na, err,
				       sizeof(err));
	assert_non_null(pem);
	assert_int_equal(na, (int64_t)(now + 3600) * 1000000000);
	/* two certificates, leaf first */
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	X509 *first = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	X509 *second = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	assert_int_equal(X509_cmp(first, leaf), 0);
	assert_int_equal(X509_cmp(second, ca), 0);
	X509_free(first);
	X509_free(second);
	BIO_free(bio);
	free(pem);
	/* a leaf for another key is refused */
	assert_null(certfile_chain_pem((certfile_der_t){cd, cl}, NULL, 0, mine, &len, &na, err,
				       sizeof(err)));
	assert_non_null(strstr(err, "key"));
	/* trailing bytes and garbage are refused */
	assert_null(certfile_chain_pem((certfile_der_t){ld, ll - 1}, NULL, 0, mine, &len, NULL, err,
				       sizeof(err)));
	uint8_t *padded = malloc(ll + 1);
	memcpy(padded, ld, ll);
	padded[ll] = 0;
	assert_null(certfile_chain_pem((certfile_der_t){padded, ll + 1}, NULL, 0, mine, &len, NULL,
				       err, sizeof(err)));
	certfile_der_t junk[1] = {{(const uint8_t *)"junk", 4}};
	assert_null(certfile_chain_pem((certfile_der_t){ld, ll}, junk, 1, mine, &len, NULL, err,
				       sizeof(err)));
	free(padded);
	/* renew_write_chain: the file, 0644, the leaf checked too */
	char f[300];
	path_in(f, sizeof(f), "agent.crt");
	ProtobufCBinaryData pl = {ll, ld}, pc[1] = {{cl, cd}};
	assert_int_equal(renew_write_chain(f, mine, pl, pc, 1, &na, err, sizeof(err)), 0);
	assert_int_equal(mode_of(f), 0644);
	assert_int_equal(renew_write_chain(f, other, pl, pc, 1, &na, err, sizeof(err)), -1);
	X509 *x = NULL;
	FILE *fp = fopen(f, "r");
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_int_equal(X509_cmp(x, leaf), 0);
	int64_t nb = 0;
	assert_int_equal(certfile_validity(x, &nb, &na), 0);
	assert_int_equal(nb, (int64_t)(now - 300) * 1000000000);
	X509_free(x);
	OPENSSL_free(ld);
	OPENSSL_free(cd);
	X509_free(leaf);
	X509_free(ca);
	EVP_PKEY_free(mine);
	EVP_PKEY_free(other);
}

static void test_renew_due(void **state)
{
	(void)state;
	const int64_t S = 1000000000, DAY = 86400 * S;
	static const struct {
		int64_t nb, na, now;
		bool due;
	} cases[] = {
		{0, 300, 0, false},	{0, 300, 199, false}, {0, 300, 200, true},
		{0, 300, 299, true},	{0, 300, 301, true}, /* expired: still asked for */
		{0, 300, -5, false},			     /* not valid yet */
		{300, 300, 300, false},			     /* no lifetime */
		{300, 0, 300, false},			     /* upside down */
		{0, 3, 1, false},			     /* 3 ns: 2/3 point at 2 */
		{0, 3, 2, true},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(certfile_renew_due(cases[i].nb, cases[i].na, cases[i].now),
				 cases[i].due);
	/* seven days, backdated five minutes: due after about 4 d 16 h */
	int64_t issued = 1700000000 * S, nb = issued - 300 * S, na = issued + 7 * DAY;
	assert_false(certfile_renew_due(nb, na, issued + 4 * DAY));
	assert_true(certfile_renew_due(nb, na, issued + 5 * DAY));
	/* extremes do not overflow */
	assert_false(certfile_renew_due(INT64_MIN, INT64_MAX, 0));
	assert_true(certfile_renew_due(INT64_MIN, INT64_MAX, INT64_MAX / 3 + 1));
	assert_false(certfile_renew_due(INT64_MIN, INT64_MAX, INT64_MAX / 3 - 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_key_created_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_unreadable_not_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_csr_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_atomic_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_atomic_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_atomic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chain_checked_against_key, setup, teardown),
		cmocka_unit_test(test_renew_due),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
