// SPDX-License-Identifier: Apache-2.0
/*
 * The issuing CA of enrollment: the certificate and key named by
 * agent_issuer_cert and agent_issuer_key (and the CAs above it, from
 * agent_issuer_chain), the checks on an agent's CSR, and the agent
 * certificates it signs. OpenSSL only; no database, no logging.
 *
 * Threads: an issuer_t is read-only once loaded. Use it from one thread at
 * a time (the enrollment service thread); it may be handed between threads.
 */
#ifndef VIGIL_ENROLL_ISSUER_H
#define VIGIL_ENROLL_ISSUER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "settings.h"

#define ISSUER_CSR_MAX (16 * 1024) /* bytes of DER */
#define ISSUER_SERIAL_BYTES 16
#define ISSUER_SERIAL_HEX_MAX 64 /* hex digits of any serial issuer_serial_hex writes */

typedef struct issuer issuer_t;

/* A certificate issued to an agent. cert_der is owned (issuer_cert_clear
 * frees it); chain_der/chain_len are borrowed from the issuer (valid while
 * it lives): the issuing CA first, then the CAs of agent_issuer_chain. */
typedef struct {
	uint8_t *cert_der;
	size_t cert_len;
	const uint8_t *const *chain_der;
	const size_t *chain_len;
	size_t n_chain;
	char serial[ISSUER_SERIAL_HEX_MAX + 1]; /* lowercase hex, 32 digits */
	int64_t not_before, not_after;		/* Unix seconds */
} issuer_cert_t;

/* Whether s sets an issuing CA (agent_issuer_cert and agent_issuer_key
 * both non-empty): enrollment is on. */
int issuer_configured(const settings_t *s);

/* Load the issuing CA from s's agent_issuer_cert, agent_issuer_key and
 * agent_issuer_chain (PEM files). The certificate must be a CA that may
 * sign certificates, the key its own. Return a new issuer (issuer_free),
 * or NULL with err set. */
issuer_t *issuer_load(const settings_t *s, char *err, size_t errlen);

/* issuer_load from file paths; chain may be NULL or "". */
issuer_t *issuer_load_files(const char *cert, const char *key, const char *chain, char *err,
			    size_t errlen);

/* Free iss. Accepts NULL. */
void issuer_free(issuer_t *iss);

/* Check an agent's untrusted CSR (len bytes of DER): at most
 * ISSUER_CSR_MAX bytes, one PKCS#10 request and nothing after it, a key
 * that is EC P-256 or P-384, Ed25519 or RSA of 2048 to 8192 bits, and a
 * signature that verifies with that key. Its names and extensions are not
 * looked at (the identity is the collector's to assign). Return 0 and
 * *pub_out (a new reference: EVP_PKEY_free it), or -1 with why set to a
 * phrase for the agent ("RSA key of 1024 bits; 2048 to 8192 allowed"). */
int issuer_check_csr(const uint8_t *der, size_t len, EVP_PKEY **pub_out, char *why, size_t whylen)
	__attribute__((warn_unused_result));

/* Sign a certificate for identity with key pub (from issuer_check_csr):
 * subject CN=identity and nothing else, a random serial of 16 bytes (first
 * byte 0x40..0x7f: positive, always 16 bytes), notBefore now - 5 min
 * (a tenth of the lifetime if that is less), notAfter now + lifetime_ms (no later than the issuing CA's own),
 * basicConstraints CA:FALSE and keyUsage digitalSignature (both critical),
 * extendedKeyUsage clientAuth only, subject and authority key identifiers,
 * no subjectAltName. SHA-256 (no digest for an Ed25519 issuer key).
 * Return 0 with out filled (issuer_cert_clear it), or -1 with err set. */
int issuer_issue(const issuer_t *iss, const char *identity, EVP_PKEY *pub, int64_t lifetime_ms,
		 issuer_cert_t *out, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Free what out owns and zero it. Accepts NULL. */
void issuer_cert_clear(issuer_cert_t *out);

/* The serial of cert as stored in agent_certs.serial and
 * revocations.serial: lowercase hex of its magnitude, two digits a byte,
 * no leading zero bytes ("0" for zero; a '-' before a negative one).
 * Return 0, or -1 if it does not fit in outlen. */
int issuer_serial_hex(const X509 *cert, char *out, size_t outlen);

#endif
