// SPDX-License-Identifier: Apache-2.0
/*
 * The X.509v3 extensions of an agent's client certificate, written once for
 * the collector's issuing CA (collector/enroll/issuer.c) and the load
 * generator's simulated agents (bench/loadgen/lg_cert.c).
 */
#ifndef VIGIL_CERTEXT_H
#define VIGIL_CERTEXT_H

#include <openssl/x509.h>

/* How the authority key identifier names the issuer's key. */
typedef enum {
	CERTEXT_AKID_ALWAYS, /* its key identifier, required ("keyid:always") */
	CERTEXT_AKID_IF_ANY, /* its key identifier if it has one ("keyid") */
} certext_akid_t;

/* Add to x, issued by issuer, the extensions of an agent's client
 * certificate: basicConstraints critical CA:FALSE, keyUsage critical
 * digitalSignature, extendedKeyUsage clientAuth, a subject key identifier
 * (a hash of x's public key, which must be set) and an authority key
 * identifier as akid says. Return 0, or -1 with OpenSSL's error queued
 * (the caller reads and clears it). */
int certext_add_client(X509 *x, X509 *issuer, certext_akid_t akid)
	__attribute__((warn_unused_result));

#endif
