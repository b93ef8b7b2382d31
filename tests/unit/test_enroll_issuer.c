// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for collector/enroll/issuer.c against a throwaway PKI made in
 * the test (a root CA, an issuing CA under it, files in a temporary
 * directory): loading the issuing CA and what is refused there; the CSR
 * checks (key types and sizes, signature, size, trailing bytes); and the
 * certificates issued: CN is the assigned identity and not the CSR's,
 * nothing of the CSR's extensions is copied, clientAuth only, CA:FALSE,
 * key identifiers, the serial's form, validity, and a chain that verifies
 * against the root for a client and not for a server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "enroll/issuer.h"

#define LIFETIME_MS (INT64_C(7) * 86400 * 1000)

typedef struct {
	char dir[64];
	char cert[128], key[128], chain[128], leaf[128], other_key[128], junk[128];
	EVP_PKEY *root_key, *ca_key;
	X509 *root, *ca;
	issuer_t *iss;
} pki_t;

static EVP_PKEY *keygen_ec(const char *curve)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
	assert_non_null(k);
	return k;
}

static EVP_PKEY *keygen_rsa(size_t bits)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits);
	assert_non_null(k);
	return k;
}

static EVP_PKEY *keygen_ed25519(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(k);
	return k;
}

static EVP_PKEY *keygen_dsa(void)
{
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "DSA", NULL);
	EVP_PKEY *params = NULL, *key = NULL;
	assert_non_null(pc);
	assert_int_equal(EVP_PKEY_paramgen_init(pc), 1);
	assert_int_equal(EVP_PKEY_CTX_set_dsa_paramgen_bits(pc, 1024), 1);
	assert_int_equal(EVP_PKEY_paramgen(pc, &params), 1);
	EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_from_pkey(NULL, params, NULL);
	assert_non_null(kc);
	assert_int_equal(EVP_PKEY_keygen_init(kc), 1);
	assert_int_equal(EVP_PKEY_keygen(kc, &key), 1);
	EVP_PKEY_CTX_free(kc);
	EVP_PKEY_CTX_free(pc);
	EVP_PKEY_free(params);
	return key;
}

static const EVP_MD *md_for(EVP_PKEY *k)
{
	int id = EVP_PKEY_get_base_id(k);
	return id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448 ? NULL : EVP_sha256();
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/* A certificate for key named cn, signed by signer (self-signed if NULL),
 * valid for secs from now; a CA if ca. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *signer, EVP_PKEY *signer_key, long secs,
		       bool ca)
{
	X509 *x = X509_new();
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(rand() & 0xffff) + 1);
	X509_NAME *n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"Vigil test", -1,
				   -1, 0);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, signer ? X509_get_subject_name(signer) : n);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), secs);
	assert_int_equal(X509_set_pubkey(x, key), 1);
	add_ext(x, signer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	add_ext(x, signer, NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "digitalSignature");
	add_ext(x, signer, NID_subject_key_identifier, "hash");
	add_ext(x, signer, NID_authority_key_identifier, "keyid:always");
	EVP_PKEY *sk = signer_key ? signer_key : key;
	assert_true(X509_sign(x, sk, md_for(sk)) > 0);
	return x;
}

static void write_cert(const char *path, X509 *x, X509 *more)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	if (more)
		assert_int_equal(PEM_write_X509(f, more), 1);
	fclose(f);
}

static void write_key(const char *path, EVP_PKEY *k)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
}

static int setup(void **state)
{
	pki_t *p = calloc(1, sizeof(*p));
	snprintf(p->dir, sizeof(p->dir), "/tmp/vigil-enroll-test-XXXXXX");
	if (!p || !mkdtemp(p->dir))
		return -1;
	snprintf(p->cert, sizeof(p->cert), "%s/issuer.pem", p->dir);
	snprintf(p->key, sizeof(p->key), "%s/issuer.key", p->dir);
	snprintf(p->chain, sizeof(p->chain), "%s/chain.pem", p->dir);
	snprintf(p->leaf, sizeof(p->leaf), "%s/leaf.pem", p->dir);
	snprintf(p->other_key, sizeof(p->other_key), "%s/other.key", p->dir);
	snprintf(p->junk, sizeof(p->junk), "%s/junk.pem", p->dir);
	p->root_key = keygen_ec("P-256");
	p->ca_key = keygen_ec("P-256");
	p->root = make_cert(p->root_key, "Vigil test root", NULL, NULL, 86400 * 30, true);
	p->ca = make_cert(p->ca_key, "Vigil test agent issuer", p->root, p->root_key, 86400 * 30,
			  true);
	write_cert(p->cert, p->ca, NULL);
	write_key(p->key, p->ca_key);
	write_cert(p->chain, p->root, NULL);
	EVP_PKEY *lk = keygen_ec("P-256");
	X509 *leaf = make_cert(lk, "not-a-ca", p->ca, p->ca_key, 86400, false);
	write_cert(p->leaf, leaf, NULL);
	write_key(p->other_key, lk);
	X509_free(leaf);
	EVP_PKEY_free(lk);
	FILE *f = fopen(p->junk, "w");
	fputs("-----BEGIN CERTIFICATE-----\nnot base64 at all !!\n-----END CERTIFICATE-----\n", f);
	fclose(f);
	char err[512];
	p->iss = issuer_load_files(p->cert, p->key, p->chain, err, sizeof(err));
	if (!p->iss) {
		fprintf(stderr, "issuer_load_files: %s\n", err);
		return -1;
	}
	*state = p;
	return 0;
}

static int teardown(void **state)
{
	pki_t *p = *state;
	issuer_free(p->iss);
	X509_free(p->root);
	X509_free(p->ca);
	EVP_PKEY_free(p->root_key);
	EVP_PKEY_free(p->ca_key);
	const char *files[] = {p->cert, p->key, p->chain, p->leaf, p->other_key, p->junk};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		unlink(files[i]);
	rmdir(p->dir);
	free(p);
	return 0;
}

/* A CSR (DER, malloc'd) for key with subject CN=cn; with extras, also a
 * subjectAltName and extendedKeyUsage serverAuth requested. */
static uint8_t *make_csr(EVP_PKEY *key, const char *cn, bool extras, size_t *len)
{
	X509_REQ *req = X509_REQ_new();
	assert_non_null(req);
	X509_NAME *n = X509_REQ_get_subject_name(req);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
	if (extras) {
		STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
		X509_EXTENSION *san = X509V3_EXT_nconf_nid(NULL, NULL, NID_subject_alt_name,
							   "DNS:collector.example,DNS:admin");
		X509_EXTENSION *eku = X509V3_EXT_nconf_nid(NULL, NULL, NID_ext_key_usage,
							   "serverAuth,clientAuth");
		assert_non_null(san);
		assert_non_null(eku);
		sk_X509_EXTENSION_push(exts, san);
		sk_X509_EXTENSION_push(exts, eku);
		assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	}
	assert_true(X509_REQ_sign(req, key, md_for(key)) > 0);
	unsigned char *der = NULL;
	int n_der = i2d_X509_REQ(req, &der);
	assert_true(n_der > 0);
	uint8_t *out = malloc((size_t)n_der);
	memcpy(out, der, (size_t)n_der);
	*len = (size_t)n_der;
	OPENSSL_free(der);
	X509_REQ_free(req);
	return out;
}

/* Check a CSR of key; return what issuer_check_csr returned, with why. */
static int check_key(EVP_PKEY *key, char *why, size_t whylen)
{
	size_t len;
	uint8_t *der = make_csr(key, "admin", false, &len);
	EVP_PKEY *pub = NULL;
	int rc = issuer_check_csr(der, len, &pub, why, whylen);
	if (rc == 0) {
		assert_non_null(pub);
		assert_int_equal(EVP_PKEY_eq(pub, key), 1);
	} else {
		assert_null(pub);
		assert_true(why[0] != '\0');
	}
	EVP_PKEY_free(pub);
	free(der);
	return rc;
}

static void test_load_refuses(void **state)
{
	pki_t *p = *state;
	char err[512];
	/* the key of another certificate */
	assert_null(issuer_load_files(p->cert, p->other_key, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "is not the key of"));
	/* a certificate that is not a CA */
	assert_null(issuer_load_files(p->leaf, p->other_key, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "not a CA"));
	assert_null(issuer_load_files(p->cert, p->key, p->junk, err, sizeof(err)));
	assert_non_null(strstr(err, "agent_issuer_chain"));
	assert_null(issuer_load_files(p->cert, p->key, p->key, err, sizeof(err)));
	assert_null(issuer_load_files("/nonexistent/x.pem", p->key, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot open"));
	assert_null(issuer_load_files(p->cert, "", NULL, err, sizeof(err)));
	assert_null(issuer_load_files(p->key, p->key, NULL, err, sizeof(err)));
	assert_int_equal(ERR_peek_error(), 0); /* the error queue is left empty */
	/* no chain file: the issuing CA alone */
	issuer_t *iss = issuer_load_files(p->cert, p->key, "", err, sizeof(err));
	assert_non_null(iss);
	issuer_free(iss);
	issuer_free(NULL);
}

static void test_csr_keys_allowed(void **state)
{
	(void)state;
	char why[256];
	EVP_PKEY *keys[] = {keygen_ec("P-256"), keygen_ec("P-384"), keygen_ed25519(),
			    keygen_rsa(2048)};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (check_key(keys[i], why, sizeof(why)) != 0)
			fail_msg("key %zu refused: %s", i, why);
		EVP_PKEY_free(keys[i]);
	}
}

static void test_csr_keys_refused(void **state)
{
	(void)state;
	char why[256];
	EVP_PKEY *k = keygen_rsa(1024);
	assert_int_equal(check_key(k, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "RSA key of 1024 bits"));
	EVP_PKEY_free(k);
	k = keygen_dsa();
	assert_int_equal(check_key(k, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "DSA keys are not allowed"));
	EVP_PKEY_free(k);
	k = keygen_ec("secp256k1");
	assert_int_equal(check_key(k, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "curve secp256k1"));
	EVP_PKEY_free(k);
	k = keygen_ec("P-521");
	assert_int_equal(check_key(k, why, sizeof(why)), -1);
	EVP_PKEY_free(k);
	k = EVP_PKEY_Q_keygen(NULL, NULL, "ED448");
	assert_non_null(k);
	assert_int_equal(check_key(k, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "not allowed"));
	EVP_PKEY_free(k);
	assert_int_equal(ERR_peek_error(), 0);
}

static void test_csr_bytes_refused(void **state)
{
	(void)state;
	char why[256];
	EVP_PKEY *k = keygen_ec("P-256"), *pub = NULL;
	size_t len;
	uint8_t *der = make_csr(k, "web-1", true, &len);
	assert_int_equal(issuer_check_csr(der, len, &pub, why, sizeof(why)), 0);
	EVP_PKEY_free(pub);
	/* a flipped bit in the signature (the last bytes of the DER) */
	der[len - 3] ^= 0x01;
	assert_int_equal(issuer_check_csr(der, len, &pub, why, sizeof(why)), -1);
	assert_null(pub);
	assert_non_null(strstr(why, "signature"));
	der[len - 3] ^= 0x01;
	/* a flipped bit in the signed part (the subject's CN) */
	uint8_t *cn = memmem(der, len, "web-1", 5);
	assert_non_null(cn);
	cn[4] = '2';
	assert_int_equal(issuer_check_csr(der, len, &pub, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "signature"));
	cn[4] = '1';
	/* bytes after the request */
	uint8_t *more = malloc(len + 1);
	memcpy(more, der, len);
	more[len] = 0;
	assert_int_equal(issuer_check_csr(more, len + 1, &pub, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "after"));
	/* cut short */
	assert_int_equal(issuer_check_csr(der, len - 1, &pub, why, sizeof(why)), -1);
	free(more);
	/* 1 MiB: refused on its size before it is parsed */
	size_t big = 1024 * 1024;
	uint8_t *huge = calloc(1, big);
	memcpy(huge, der, len);
	assert_int_equal(issuer_check_csr(huge, big, &pub, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "at most 16384"));
	assert_int_equal(issuer_check_csr(huge, ISSUER_CSR_MAX + 1, &pub, why, sizeof(why)), -1);
	free(huge);
	assert_int_equal(issuer_check_csr(der, 0, &pub, why, sizeof(why)), -1);
	assert_int_equal(issuer_check_csr(NULL, 10, &pub, why, sizeof(why)), -1);
	const uint8_t garbage[] = {0x30, 0x82, 0x01, 0x00, 0x02, 0x01, 0x00};
	assert_int_equal(issuer_check_csr(garbage, sizeof(garbage), &pub, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "PKCS#10"));
	assert_int_equal(ERR_peek_error(), 0);
	free(der);
	EVP_PKEY_free(k);
}

/* Issue for identity from a CSR of key asking for CN=admin, SANs and
 * serverAuth; return the certificate (X509_free) and out. */
static X509 *issue(const issuer_t *iss, EVP_PKEY *key, const char *identity, int64_t lifetime_ms,
		   issuer_cert_t *out)
{
	size_t len;
	char why[256], err[512];
	uint8_t *der = make_csr(key, "admin", true, &len);
	EVP_PKEY *pub = NULL;
	assert_int_equal(issuer_check_csr(der, len, &pub, why, sizeof(why)), 0);
	free(der);
	if (issuer_issue(iss, identity, pub, lifetime_ms, out, err, sizeof(err)) != 0)
		fail_msg("issuer_issue: %s", err);
	EVP_PKEY_free(pub);
	const unsigned char *p = out->cert_der;
	X509 *x = d2i_X509(NULL, &p, (long)out->cert_len);
	assert_non_null(x);
	assert_ptr_equal(p, out->cert_der + out->cert_len);
	return x;
}

static int ext_critical(X509 *x, int nid)
{
	int i = X509_get_ext_by_NID(x, nid, -1);
	assert_true(i >= 0);
	return X509_EXTENSION_get_critical(X509_get_ext(x, i));
}

static void check_profile(X509 *x, const char *identity)
{
	/* the subject is CN=identity and nothing else */
	X509_NAME *subj = X509_get_subject_name(x);
	assert_int_equal(X509_NAME_entry_count(subj), 1);
	char cn[128];
	assert_int_equal(X509_NAME_get_text_by_NID(subj, NID_commonName, cn, sizeof(cn)),
			 (int)strlen(identity));
	assert_string_equal(cn, identity);
	/* nothing of the CSR's extensions */
	assert_int_equal(X509_get_ext_by_NID(x, NID_subject_alt_name, -1), -1);
	assert_int_equal(X509_get_ext_count(x), 5);
	/* clientAuth only */
	EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
	assert_non_null(eku);
	assert_int_equal(sk_ASN1_OBJECT_num(eku), 1);
	assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)), NID_client_auth);
	EXTENDED_KEY_USAGE_free(eku);
	assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_CLIENT);
	assert_false(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
	/* not a CA; digitalSignature only; both critical */
	assert_false(X509_get_extension_flags(x) & EXFLAG_CA);
	assert_true(X509_get_extension_flags(x) & EXFLAG_BCONS);
	assert_int_equal(ext_critical(x, NID_basic_constraints), 1);
	assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
	assert_int_equal(ext_critical(x, NID_key_usage), 1);
	assert_int_equal(ext_critical(x, NID_ext_key_usage), 0);
	assert_non_null(X509_get0_subject_key_id(x));
	assert_int_equal(X509_get_version(x), X509_VERSION_3);
}

static void check_serial(X509 *x, const issuer_cert_t *c)
{
	const ASN1_INTEGER *s = X509_get0_serialNumber(x);
	assert_int_equal(ASN1_STRING_length(s), ISSUER_SERIAL_BYTES);
	const unsigned char *d = ASN1_STRING_get0_data(s);
	assert_true(d[0] >= 0x40 && d[0] <= 0x7f);
	assert_int_equal(strlen(c->serial), 32);
	assert_int_equal(strspn(c->serial, "0123456789abcdef"), 32);
	char hex[ISSUER_SERIAL_HEX_MAX + 1];
	assert_int_equal(issuer_serial_hex(x, hex, sizeof(hex)), 0);
	assert_string_equal(hex, c->serial);
	assert_int_equal(issuer_serial_hex(x, hex, 32), -1); /* no room for the NUL */
	assert_int_equal(issuer_serial_hex(NULL, hex, sizeof(hex)), -1);
}

/* Verify x with the chain the issuer sends, against the root alone. */
static int verify(pki_t *p, X509 *x, const issuer_cert_t *c, int purpose)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_add_cert(st, p->root);
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	for (size_t i = 0; i < c->n_chain; i++) {
		const unsigned char *d = c->chain_der[i];
		X509 *ci = d2i_X509(NULL, &d, (long)c->chain_len[i]);
		assert_non_null(ci);
		sk_X509_push(untrusted, ci);
	}
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509_STORE_CTX_init(ctx, st, x, untrusted);
	X509_STORE_CTX_set_purpose(ctx, purpose);
	int ok = X509_verify_cert(ctx);
	X509_STORE_CTX_free(ctx);
	sk_X509_pop_free(untrusted, X509_free);
	X509_STORE_free(st);
	ERR_clear_error();
	return ok;
}

static void test_issue_profile(void **state)
{
	pki_t *p = *state;
	EVP_PKEY *k = keygen_ec("P-256");
	issuer_cert_t c;
	int64_t now = (int64_t)time(NULL);
	X509 *x = issue(p->iss, k, "web-1", LIFETIME_MS, &c);
	check_profile(x, "web-1");
	check_serial(x, &c);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), k), 1);
	/* the authority key id is the issuing CA's key id */
	const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(x);
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(p->ca);
	assert_non_null(aki);
	assert_int_equal(ASN1_OCTET_STRING_cmp(aki, ski), 0);
	/* validity: 5 minutes back, the lifetime ahead */
	assert_true(c.not_before >= now - 301 && c.not_before <= now - 299 + 2);
	assert_true(c.not_after >= now + LIFETIME_MS / 1000 - 1 &&
		    c.not_after <= now + LIFETIME_MS / 1000 + 2);
	assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notAfter(x), (time_t)c.not_after), 0);
	assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notBefore(x), (time_t)c.not_before), 0);
	/* two certificates never share a serial */
	issuer_cert_t c2;
	X509 *x2 = issue(p->iss, k, "web-1", LIFETIME_MS, &c2);
	assert_string_not_equal(c.serial, c2.serial);
	X509_free(x2);
	issuer_cert_clear(&c2);
	X509_free(x);
	issuer_cert_clear(&c);
	issuer_cert_clear(NULL);
	EVP_PKEY_free(k);
}

static void test_issue_chain_verifies(void **state)
{
	pki_t *p = *state;
	EVP_PKEY *k = keygen_ed25519();
	issuer_cert_t c;
	X509 *x = issue(p->iss, k, "node-7.k8s", LIFETIME_MS, &c);
	/* the issuing CA, then the root of agent_issuer_chain */
	assert_int_equal(c.n_chain, 2);
	unsigned char *ca_der = NULL, *root_der = NULL;
	int ca_len = i2d_X509(p->ca, &ca_der), root_len = i2d_X509(p->root, &root_der);
	assert_int_equal(c.chain_len[0], (size_t)ca_len);
	assert_memory_equal(c.chain_der[0], ca_der, (size_t)ca_len);
	assert_int_equal(c.chain_len[1], (size_t)root_len);
	assert_memory_equal(c.chain_der[1], root_der, (size_t)root_len);
	OPENSSL_free(ca_der);
	OPENSSL_free(root_der);
	assert_int_equal(verify(p, x, &c, X509_PURPOSE_SSL_CLIENT), 1);
	/* never good for a server */
	assert_int_not_equal(verify(p, x, &c, X509_PURPOSE_SSL_SERVER), 1);
	X509_free(x);
	issuer_cert_clear(&c);
	EVP_PKEY_free(k);
}

static void test_issue_refuses(void **state)
{
	pki_t *p = *state;
	EVP_PKEY *k = keygen_ec("P-256");
	issuer_cert_t c;
	char err[256];
	assert_int_equal(issuer_issue(p->iss, "", k, LIFETIME_MS, &c, err, sizeof(err)), -1);
	assert_int_equal(issuer_issue(p->iss, NULL, k, LIFETIME_MS, &c, err, sizeof(err)), -1);
	assert_int_equal(issuer_issue(p->iss, "web-1", NULL, LIFETIME_MS, &c, err, sizeof(err)),
			 -1);
	assert_int_equal(issuer_issue(p->iss, "web-1", k, 0, &c, err, sizeof(err)), -1);
	assert_null(c.cert_der);
	EVP_PKEY_free(k);
}

/* An issuing CA that expires in an hour (signing with Ed25519, so without
 * a digest): a certificate never outlives it. */
static void test_issue_short_ca(void **state)
{
	pki_t *p = *state;
	EVP_PKEY *ca_key = keygen_ed25519();
	X509 *ca = make_cert(ca_key, "Vigil short issuer", p->root, p->root_key, 3600, true);
	char cert[160], key[160], err[512];
	snprintf(cert, sizeof(cert), "%s/short.pem", p->dir);
	snprintf(key, sizeof(key), "%s/short.key", p->dir);
	write_cert(cert, ca, NULL);
	write_key(key, ca_key);
	issuer_t *iss = issuer_load_files(cert, key, NULL, err, sizeof(err));
	if (!iss)
		fail_msg("issuer_load_files: %s", err);
	EVP_PKEY *k = keygen_rsa(2048);
	issuer_cert_t c;
	X509 *x = issue(iss, k, "web-1", LIFETIME_MS, &c);
	assert_int_equal(c.n_chain, 1);
	assert_true(ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(ca)) <= 0);
	assert_true(c.not_after <= (int64_t)time(NULL) + 3600 + 1);
	check_profile(x, "web-1");
	/* it verifies with the root, the issuing CA as the chain */
	assert_int_equal(verify(p, x, &c, X509_PURPOSE_SSL_CLIENT), 1);
	X509_free(x);
	issuer_cert_clear(&c);
	issuer_free(iss);
	EVP_PKEY_free(k);
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	unlink(cert);
	unlink(key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_refuses),
		cmocka_unit_test(test_csr_keys_allowed),
		cmocka_unit_test(test_csr_keys_refused),
		cmocka_unit_test(test_csr_bytes_refused),
		cmocka_unit_test(test_issue_profile),
		cmocka_unit_test(test_issue_chain_verifies),
		cmocka_unit_test(test_issue_refuses),
		cmocka_unit_test(test_issue_short_ca),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
