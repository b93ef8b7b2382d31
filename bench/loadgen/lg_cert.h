// SPDX-License-Identifier: Apache-2.0
/*
 * Client identities of the simulated agents: either issued in memory by a
 * CA given on the command line (one fresh EC P-256 key and certificate per
 * agent), or one certificate loaded from files and shared by all agents.
 */
#ifndef VIGIL_LG_CERT_H
#define VIGIL_LG_CERT_H

#include <stddef.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

typedef struct {
	X509 *cert;
	EVP_PKEY *key;
	STACK_OF(X509) * chain; /* certificates sent after the leaf; may be NULL */
	char *name;		/* the agent's name when the collector chose it (enrolled);
				 * NULL: <prefix><index as 5 digits> */
} lg_ident_t;

typedef struct lg_issuer lg_issuer_t;

/* Load a CA certificate and its private key (PEM). Return NULL with err
 * set on failure. Caller frees with lg_issuer_free. */
lg_issuer_t *lg_issuer_load(const char *cert_file, const char *key_file, char *err, size_t errlen);
void lg_issuer_free(lg_issuer_t *iss);

/* Issue count identities, CN = prefix + index as 5 digits, clientAuth,
 * valid from one hour ago for one day, random serial, using up to threads
 * threads. Fill out[0..count). Return 0, or -1 with err set (out is then
 * cleared). Caller clears each with lg_ident_clear. */
int lg_ident_issue_all(const lg_issuer_t *iss, const char *prefix, unsigned count, unsigned threads,
		       lg_ident_t *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Load one identity from a PEM chain (leaf first) and a PEM key.
 * Return 0, or -1 with err set. */
int lg_ident_load(const char *cert_file, const char *key_file, lg_ident_t *out, char *err,
		  size_t errlen) __attribute__((warn_unused_result));

/* Take a reference on every object of src into dst (for sharing; not the
 * name). */
void lg_ident_share(lg_ident_t *dst, const lg_ident_t *src);
void lg_ident_clear(lg_ident_t *id);

/* Make id the only certificate that ssl presents. Return 0 or -1. */
int lg_ident_use(SSL *ssl, const lg_ident_t *id) __attribute__((warn_unused_result));

#endif
