// SPDX-License-Identifier: Apache-2.0
/*
 * The issuing CA (see issuer.h): loading its PEM files, checking agents'
 * CSRs and signing agent certificates. Every failed OpenSSL call's error is
 * read into the message and the error queue cleared.
 */
#include "enroll/issuer.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "certext.h"

#define NOT_BEFORE_SLACK_S 300
#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 8192
#define MAX_CHAIN 8

struct issuer {
	X509 *cert;
	EVP_PKEY *key;
	const EVP_MD *md; /* NULL for Ed25519 and Ed448 issuer keys */
	int64_t ca_not_after;
	/* DER of the issuing CA, then of each CA of agent_issuer_chain */
	uint8_t *chain_der[MAX_CHAIN + 1];
	size_t chain_len[MAX_CHAIN + 1];
	size_t n_chain;
};

/* Set err to the formatted message, then ": " and OpenSSL's last error if
 * there is one, and clear the error queue. Return -1. */
static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	unsigned long e = ERR_peek_last_error();
	const char *reason = e ? ERR_reason_error_string(e) : NULL;
	if (reason)
		snprintf(err, errlen, "%s: %s", msg, reason);
	else
		snprintf(err, errlen, "%s", msg);
	ERR_clear_error();
	return -1;
}

/* A passphrase callback that has none: an encrypted key fails to load
 * instead of prompting on the terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return 0;
}

static int64_t asn1_time_unix(const ASN1_TIME *t)
{
	struct tm tm;
	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return (int64_t)timegm(&tm);
}

static int add_der(issuer_t *iss, X509 *c, char *err, size_t errlen)
{
	if (iss->n_chain > MAX_CHAIN)
		return fail(err, errlen, "agent_issuer_chain: more than %d certificates",
			    MAX_CHAIN);
	uint8_t *der = NULL;
	int n = i2d_X509(c, &der);
	if (n <= 0)
		return fail(err, errlen, "cannot encode a CA certificate");
	iss->chain_der[iss->n_chain] = der;
	iss->chain_len[iss->n_chain++] = (size_t)n;
	return 0;
}

/* Read the issuing CA's certificate and key and check that they belong
 * together and may sign certificates. */
static int load_ca(issuer_t *iss, const char *cert, const char *key, char *err, size_t errlen)
{
	BIO *b = BIO_new_file(cert, "r");
	if (!b)
		return fail(err, errlen, "agent_issuer_cert %s: cannot open", cert);
	iss->cert = PEM_read_bio_X509(b, NULL, no_passphrase, NULL);
	BIO_free(b);
	if (!iss->cert)
		return fail(err, errlen, "agent_issuer_cert %s: no PEM certificate", cert);
	if (!(b = BIO_new_file(key, "r")))
		return fail(err, errlen, "agent_issuer_key %s: cannot open", key);
	iss->key = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
	BIO_free(b);
	if (!iss->key)
		return fail(err, errlen, "agent_issuer_key %s: no (unencrypted) PEM private key",
			    key);
	if (X509_check_private_key(iss->cert, iss->key) != 1)
		return fail(err, errlen, "agent_issuer_key %s is not the key of %s", key, cert);
	uint32_t flags = X509_get_extension_flags(iss->cert);
	if (!(flags & EXFLAG_CA))
		return fail(err, errlen, "agent_issuer_cert %s is not a CA (basicConstraints)",
			    cert);
	if ((flags & EXFLAG_KUSAGE) && !(X509_get_key_usage(iss->cert) & KU_KEY_CERT_SIGN))
		return fail(err, errlen,
			    "agent_issuer_cert %s may not sign certificates (keyUsage)", cert);
	int id = EVP_PKEY_get_base_id(iss->key);
	iss->md = (id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448) ? NULL : EVP_sha256();
	iss->ca_not_after = asn1_time_unix(X509_get0_notAfter(iss->cert));
	if (iss->ca_not_after <= (int64_t)time(NULL))
		return fail(err, errlen, "agent_issuer_cert %s has expired", cert);
	return add_der(iss, iss->cert, err, errlen);
}

static int load_chain(issuer_t *iss, const char *chain, char *err, size_t errlen)
{
	BIO *b = BIO_new_file(chain, "r");
	if (!b)
		return fail(err, errlen, "agent_issuer_chain %s: cannot open", chain);
	int rc = 0;
	X509 *c;
	while (rc == 0 && (c = PEM_read_bio_X509(b, NULL, no_passphrase, NULL))) {
		rc = add_der(iss, c, err, errlen);
		X509_free(c);
	}
	unsigned long e = ERR_peek_last_error();
	if (rc == 0 && e && ERR_GET_REASON(e) != PEM_R_NO_START_LINE)
		rc = fail(err, errlen, "agent_issuer_chain %s: bad PEM", chain);
	else if (rc == 0 && iss->n_chain == 1)
		rc = fail(err, errlen, "agent_issuer_chain %s: no certificate", chain);
	ERR_clear_error();
	BIO_free(b);
	return rc;
}

issuer_t *issuer_load_files(const char *cert, const char *key, const char *chain, char *err,
			    size_t errlen)
{
	if (!cert || !cert[0] || !key || !key[0]) {
		snprintf(err, errlen, "agent_issuer_cert and agent_issuer_key must both be set");
		return NULL;
	}
	issuer_t *iss = calloc(1, sizeof(*iss));
	if (!iss) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (load_ca(iss, cert, key, err, errlen) != 0 ||
	    (chain && chain[0] && load_chain(iss, chain, err, errlen) != 0)) {
		issuer_free(iss);
		return NULL;
	}
	return iss;
}

int issuer_configured(const settings_t *s)
{
	return s->agent_issuer_cert && s->agent_issuer_cert[0] && s->agent_issuer_key &&
	       s->agent_issuer_key[0];
}

issuer_t *issuer_load(const settings_t *s, char *err, size_t errlen)
{
	return issuer_load_files(s->agent_issuer_cert, s->agent_issuer_key, s->agent_issuer_chain,
				 err, errlen);
}

void issuer_free(issuer_t *iss)
{
	if (!iss)
		return;
	for (size_t i = 0; i < iss->n_chain; i++)
		OPENSSL_free(iss->chain_der[i]);
	X509_free(iss->cert);
	EVP_PKEY_free(iss->key);
	free(iss);
}

/* ---- CSRs ------------------------------------------------------------------ */

/* Whether the CSR's key is of an allowed type and size; if not, why. */
static int key_allowed(EVP_PKEY *pub, char *why, size_t whylen)
{
	int id = EVP_PKEY_get_base_id(pub);
	if (id == EVP_PKEY_ED25519)
		return 0;
	if (id == EVP_PKEY_RSA) {
		int bits = EVP_PKEY_get_bits(pub);
		if (bits >= RSA_MIN_BITS && bits <= RSA_MAX_BITS)
			return 0;
		snprintf(why, whylen, "RSA key of %d bits; %d to %d allowed", bits, RSA_MIN_BITS,
			 RSA_MAX_BITS);
		return -1;
	}
	if (id == EVP_PKEY_EC) {
		char group[64];
		size_t gl = 0;
		if (EVP_PKEY_get_group_name(pub, group, sizeof(group), &gl) != 1) {
			ERR_clear_error();
			snprintf(why, whylen,
				 "EC key without a named curve; P-256 or P-384 allowed");
			return -1;
		}
		int nid = OBJ_sn2nid(group);
		if (nid == NID_X9_62_prime256v1 || nid == NID_secp384r1)
			return 0;
		snprintf(why, whylen, "EC key on curve %.40s; P-256 or P-384 allowed", group);
		return -1;
	}
	const char *name = id == EVP_PKEY_DSA	    ? "DSA"
			   : id == EVP_PKEY_RSA_PSS ? "RSA-PSS"
						    : OBJ_nid2sn(id);
	snprintf(why, whylen,
		 "%.40s keys are not allowed (EC P-256 or P-384, Ed25519, RSA %d to %d)",
		 name && id != NID_undef ? name : "unknown", RSA_MIN_BITS, RSA_MAX_BITS);
	return -1;
}

int issuer_check_csr(const uint8_t *der, size_t len, EVP_PKEY **pub_out, char *why, size_t whylen)
{
	*pub_out = NULL;
	if (!der || len == 0) {
		snprintf(why, whylen, "no CSR");
		return -1;
	}
	if (len > ISSUER_CSR_MAX) {
		snprintf(why, whylen, "CSR of %zu bytes; at most %d allowed", len, ISSUER_CSR_MAX);
		return -1;
	}
	const unsigned char *p = der;
	X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)len);
	if (!req) {
		ERR_clear_error();
		snprintf(why, whylen, "not a DER PKCS#10 certificate request");
		return -1;
	}
	int rc = -1;
	EVP_PKEY *pub = NULL;
	if (p != der + len) {
		snprintf(why, whylen, "bytes after the certificate request");
	} else if (!(pub = X509_REQ_get_pubkey(req))) {
		ERR_clear_error();
		snprintf(why, whylen, "the request's public key cannot be read");
	} else if (key_allowed(pub, why, whylen) == 0) {
		if (X509_REQ_verify(req, pub) == 1)
			rc = 0;
		else
			snprintf(why, whylen, "the request's signature does not verify");
		ERR_clear_error();
	}
	X509_REQ_free(req);
	if (rc == 0)
		*pub_out = pub;
	else
		EVP_PKEY_free(pub);
	return rc;
}

/* ---- issuing ------------------------------------------------------------- */

/* Serial, names, validity and key of x. */
static int set_fields(const issuer_t *iss, X509 *x, const char *identity, EVP_PKEY *pub,
		      int64_t lifetime_ms, issuer_cert_t *out)
{
	uint8_t sb[ISSUER_SERIAL_BYTES];
	if (RAND_bytes(sb, sizeof(sb)) != 1)
		return -1;
	sb[0] = (uint8_t)((sb[0] & 0x3f) | 0x40);
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < sizeof(sb); i++) {
		out->serial[2 * i] = hex[sb[i] >> 4];
		out->serial[2 * i + 1] = hex[sb[i] & 15];
	}
	out->serial[2 * sizeof(sb)] = '\0';
	BIGNUM *bn = BN_bin2bn(sb, sizeof(sb), NULL);
	ASN1_INTEGER *ai = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	int ok = ai && X509_set_serialNumber(x, ai) == 1;
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	X509_NAME *name = X509_NAME_new();
	ok = ok && name &&
	     X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
					(const unsigned char *)identity, -1, -1, 0) == 1 &&
	     X509_set_subject_name(x, name) == 1 &&
	     X509_set_issuer_name(x, X509_get_subject_name(iss->cert)) == 1;
	X509_NAME_free(name);
	int64_t now = (int64_t)time(NULL);
	/* Clock slack, at most a tenth of the lifetime: agents renew at two
	 * thirds of notAfter - notBefore, which a long slack would pull to
	 * the moment of issue for a short lifetime. */
	int64_t slack = lifetime_ms / 10000;
	out->not_before = now - (slack < NOT_BEFORE_SLACK_S ? slack : NOT_BEFORE_SLACK_S);
	out->not_after = now + (lifetime_ms + 999) / 1000;
	if (out->not_after > iss->ca_not_after)
		out->not_after = iss->ca_not_after;
	ok = ok && out->not_after > now && X509_set_version(x, X509_VERSION_3) == 1 &&
	     ASN1_TIME_set(X509_getm_notBefore(x), (time_t)out->not_before) &&
	     ASN1_TIME_set(X509_getm_notAfter(x), (time_t)out->not_after) &&
	     X509_set_pubkey(x, pub) == 1;
	return ok ? 0 : -1;
}

int issuer_issue(const issuer_t *iss, const char *identity, EVP_PKEY *pub, int64_t lifetime_ms,
		 issuer_cert_t *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	size_t il = identity ? strlen(identity) : 0;
	if (il == 0 || il > 64 || !pub || lifetime_ms < 1)
		return fail(err, errlen, "issue: bad identity, key or lifetime");
	if (iss->ca_not_after <= (int64_t)time(NULL))
		return fail(err, errlen, "issue: the issuing CA has expired");
	X509 *x = X509_new();
	if (!x)
		return fail(err, errlen, "issue: out of memory");
	int rc = -1;
	if (set_fields(iss, x, identity, pub, lifetime_ms, out) != 0) {
		fail(err, errlen, "issue: cannot set the certificate's fields");
		goto done;
	}
	if (certext_add_client(x, iss->cert, CERTEXT_AKID_ALWAYS) != 0) {
		fail(err, errlen, "issue: cannot add the extensions");
		goto done;
	}
	if (X509_sign(x, iss->key, iss->md) <= 0) {
		fail(err, errlen, "issue: cannot sign");
		goto done;
	}
	int n = i2d_X509(x, &out->cert_der);
	if (n <= 0) {
		fail(err, errlen, "issue: cannot encode");
		goto done;
	}
	out->cert_len = (size_t)n;
	out->chain_der = (const uint8_t *const *)iss->chain_der;
	out->chain_len = iss->chain_len;
	out->n_chain = iss->n_chain;
	rc = 0;
done:
	X509_free(x);
	if (rc != 0)
		issuer_cert_clear(out);
	return rc;
}

void issuer_cert_clear(issuer_cert_t *out)
{
	if (!out)
		return;
	OPENSSL_free(out->cert_der);
	memset(out, 0, sizeof(*out));
}

int issuer_serial_hex(const X509 *cert, char *out, size_t outlen)
{
	const ASN1_INTEGER *ai = cert ? X509_get0_serialNumber(cert) : NULL;
	BIGNUM *bn = ai ? ASN1_INTEGER_to_BN(ai, NULL) : NULL;
	char *h = bn ? BN_bn2hex(bn) : NULL;
	int rc = -1;
	if (h && strlen(h) < outlen) {
		for (size_t i = 0; h[i]; i++)
			out[i] = (char)tolower((unsigned char)h[i]);
		out[strlen(h)] = '\0';
		rc = 0;
	}
	OPENSSL_free(h);
	BN_free(bn);
	ERR_clear_error();
	return rc;
}
