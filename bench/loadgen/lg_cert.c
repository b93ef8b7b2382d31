// SPDX-License-Identifier: Apache-2.0
/* In-memory client certificates for simulated agents (see lg_cert.h). */
#include "lg_cert.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "certext.h"

struct lg_issuer {
	X509 *cert;
	EVP_PKEY *key;
	const EVP_MD *md;	/* NULL for keys that fix their own digest (Ed25519) */
	STACK_OF(X509) * chain; /* the issuer itself when it is not a root */
};

static void set_err(char *err, size_t errlen, const char *what, const char *file)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "";
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s%s%s%s%s", what, file ? " " : "", file ? file : "", e ? ": " : "",
		 buf);
	ERR_clear_error();
}

static X509 *read_cert(const char *file, STACK_OF(X509) * *rest, char *err, size_t errlen)
{
	FILE *f = fopen(file, "r");
	if (!f) {
		snprintf(err, errlen, "cannot open %s: %m", file);
		return NULL;
	}
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	if (!x) {
		set_err(err, errlen, "no PEM certificate in", file);
		fclose(f);
		return NULL;
	}
	if (rest) {
		*rest = NULL;
		X509 *more;
		while ((more = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
			if (!*rest)
				*rest = sk_X509_new_null();
			if (!*rest || !sk_X509_push(*rest, more)) {
				X509_free(more);
				break;
			}
		}
	}
	ERR_clear_error(); /* end of file reads as an error */
	fclose(f);
	return x;
}

static EVP_PKEY *read_key(const char *file, char *err, size_t errlen)
{
	FILE *f = fopen(file, "r");
	if (!f) {
		snprintf(err, errlen, "cannot open %s: %m", file);
		return NULL;
	}
	EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!k)
		set_err(err, errlen, "no PEM private key in", file);
	return k;
}

lg_issuer_t *lg_issuer_load(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
	lg_issuer_t *iss = calloc(1, sizeof(*iss));
	if (!iss) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	iss->cert = read_cert(cert_file, NULL, err, errlen);
	if (!iss->cert)
		goto fail;
	iss->key = read_key(key_file, err, errlen);
	if (!iss->key)
		goto fail;
	if (X509_check_private_key(iss->cert, iss->key) != 1) {
		set_err(err, errlen, "issuer key does not match certificate", cert_file);
		goto fail;
	}
	int nid = 0;
	if (EVP_PKEY_get_default_digest_nid(iss->key, &nid) == 2 && nid == NID_undef)
		iss->md = NULL;
	else
		iss->md = EVP_sha256();
	/* An intermediate CA goes along with each leaf; a root does not. */
	if (X509_check_issued(iss->cert, iss->cert) != X509_V_OK) {
		iss->chain = sk_X509_new_null();
		if (!iss->chain || !X509_up_ref(iss->cert) ||
		    !sk_X509_push(iss->chain, iss->cert)) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	ERR_clear_error();
	return iss;
fail:
	lg_issuer_free(iss);
	return NULL;
}

void lg_issuer_free(lg_issuer_t *iss)
{
	if (!iss)
		return;
	X509_free(iss->cert);
	EVP_PKEY_free(iss->key);
	sk_X509_pop_free(iss->chain, X509_free);
	free(iss);
}

static int random_serial(X509 *x)
{
	unsigned char rnd[16];
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -1;
	rnd[0] &= 0x7f; /* positive */
	rnd[0] |= 0x40; /* full length */
	BIGNUM *bn = BN_bin2bn(rnd, sizeof(rnd), NULL);
	if (!bn)
		return -1;
	int rc = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ? 0 : -1;
	BN_free(bn);
	return rc;
}

/* Issue one identity named cn. Return 0 or -1 (OpenSSL error queued). */
static int issue_one(const lg_issuer_t *iss, const char *cn, lg_ident_t *out)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	if (!key || !x)
		goto fail;
	if (!X509_set_version(x, X509_VERSION_3) || random_serial(x) != 0 ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 86400) || !X509_set_pubkey(x, key) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(iss->cert)))
		goto fail;
	X509_NAME *name = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
					-1, 0))
		goto fail;
	if (certext_add_client(x, iss->cert, CERTEXT_AKID_IF_ANY) != 0)
		goto fail;
	if (!X509_sign(x, iss->key, iss->md))
		goto fail;
	out->cert = x;
	out->key = key;
	out->chain = NULL;
	if (iss->chain) {
		out->chain = X509_chain_up_ref(iss->chain);
		if (!out->chain)
			goto fail_out;
	}
	return 0;
fail_out:
	out->cert = NULL;
	out->key = NULL;
fail:
	X509_free(x);
	EVP_PKEY_free(key);
	return -1;
}

typedef struct {
	const lg_issuer_t *iss;
	const char *prefix;
	lg_ident_t *out;
	unsigned from, to; /* [from, to) */
	int rc;
	char err[256];
} issue_job_t;

static void *issue_range(void *arg)
{
	issue_job_t *j = arg;
	char cn[256];
	for (unsigned i = j->from; i < j->to; i++) {
		snprintf(cn, sizeof(cn), "%s%05u", j->prefix, i);
		if (issue_one(j->iss, cn, &j->out[i]) != 0) {
			set_err(j->err, sizeof(j->err), "cannot issue certificate for", cn);
			j->rc = -1;
			return NULL;
		}
	}
	ERR_clear_error();
	return NULL;
}

int lg_ident_issue_all(const lg_issuer_t *iss, const char *prefix, unsigned count, unsigned threads,
		       lg_ident_t *out, char *err, size_t errlen)
{
	if (threads < 1)
		threads = 1;
	if (threads > count)
		threads = count ? count : 1;
	memset(out, 0, count * sizeof(*out));
	issue_job_t *jobs = calloc(threads, sizeof(*jobs));
	pthread_t *th = calloc(threads, sizeof(*th));
	if (!jobs || !th) {
		free(jobs);
		free(th);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	bool *joined = calloc(threads, sizeof(*joined));
	if (!joined) {
		free(jobs);
		free(th);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (unsigned t = 0; t < threads; t++)
		jobs[t] = (issue_job_t){iss,
					prefix,
					out,
					(unsigned)((uint64_t)count * t / threads),
					(unsigned)((uint64_t)count * (t + 1) / threads),
					0,
					""};
	/* Thread 0's share is done here; a thread that cannot start has its
	 * share done here too. */
	for (unsigned t = 1; t < threads; t++)
		joined[t] = pthread_create(&th[t], NULL, issue_range, &jobs[t]) == 0;
	issue_range(&jobs[0]);
	int rc = 0;
	for (unsigned t = 0; t < threads; t++) {
		if (t > 0 && joined[t])
			pthread_join(th[t], NULL);
		else if (t > 0)
			issue_range(&jobs[t]);
		if (jobs[t].rc != 0 && rc == 0) {
			snprintf(err, errlen, "%s", jobs[t].err);
			rc = -1;
		}
	}
	free(joined);
	free(jobs);
	free(th);
	if (rc != 0)
		for (unsigned i = 0; i < count; i++)
			lg_ident_clear(&out[i]);
	return rc;
}

int lg_ident_load(const char *cert_file, const char *key_file, lg_ident_t *out, char *err,
		  size_t errlen)
{
	memset(out, 0, sizeof(*out));
	out->cert = read_cert(cert_file, &out->chain, err, errlen);
	if (!out->cert)
		return -1;
	out->key = read_key(key_file, err, errlen);
	if (!out->key) {
		lg_ident_clear(out);
		return -1;
	}
	if (X509_check_private_key(out->cert, out->key) != 1) {
		set_err(err, errlen, "private key does not match certificate", cert_file);
		lg_ident_clear(out);
		return -1;
	}
	return 0;
}

void lg_ident_share(lg_ident_t *dst, const lg_ident_t *src)
{
	X509_up_ref(src->cert);
	EVP_PKEY_up_ref(src->key);
	dst->cert = src->cert;
	dst->key = src->key;
	dst->chain = src->chain ? X509_chain_up_ref(src->chain) : NULL;
	dst->name = NULL;
}

void lg_ident_clear(lg_ident_t *id)
{
	if (!id)
		return;
	X509_free(id->cert);
	EVP_PKEY_free(id->key);
	sk_X509_pop_free(id->chain, X509_free);
	free(id->name);
	memset(id, 0, sizeof(*id));
}

int lg_ident_use(SSL *ssl, const lg_ident_t *id)
{
	/* Drop whatever the context installed (it needs some certificate to
	 * be built), then present this agent's own. */
	SSL_certs_clear(ssl);
	if (SSL_use_cert_and_key(ssl, id->cert, id->key, id->chain, 1) != 1) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}
