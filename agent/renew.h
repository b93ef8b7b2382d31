// SPDX-License-Identifier: Apache-2.0
/*
 * Certificate renewal for the uplink: the validity of the certificate in
 * use, a request (CSR) for the key in use, and the renewed chain checked
 * against that key and written atomically over tls_cert. The uplink
 * decides when (certfile_renew_due) and switches to the new file on its
 * next connection (renew_load_ctx).
 */
#ifndef VIGIL_AGENT_RENEW_H
#define VIGIL_AGENT_RENEW_H

#include <stddef.h>
#include <stdint.h>

#include "settings.h"
#include "tls.h"
#include "vigil/v1/protocol.pb-c.h"

/* The validity (Unix ns) of the certificate ctx presents. Return 0, or -1
 * if ctx has none. */
int renew_cert_validity(SSL_CTX *ctx, int64_t *not_before_ns, int64_t *not_after_ns)
	__attribute__((warn_unused_result));

/* A DER CSR (subject CN=cn, ignored by the collector) for the private key
 * of ctx into a new buffer *der (caller frees with free()). Return 0, or
 * -1 with err set. */
int renew_csr(SSL_CTX *ctx, const char *cn, uint8_t **der, size_t *len, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Write leaf then chain[0..n) (DER) as PEM over path atomically (mode
 * 0644), after checking that every certificate parses and that the leaf
 * is for key. Set *not_after_ns (may be NULL) to the leaf's end of
 * validity. Return 0, or -1 with err set (the file is then untouched). */
int renew_write_chain(const char *path, EVP_PKEY *key, ProtobufCBinaryData leaf,
		      const ProtobufCBinaryData *chain, size_t n, int64_t *not_after_ns, char *err,
		      size_t errlen) __attribute__((warn_unused_result));

/* Write the chain of r (leaf, then chain_der) over s->tls_cert atomically,
 * after checking that the leaf is for the private key of ctx. Set
 * *not_after_ns to the leaf's end of validity. Return 0, or -1 with err
 * set (the file is then untouched). */
int renew_save(const settings_t *s, SSL_CTX *ctx, const Vigil__V1__RenewResponse *r,
	       int64_t *not_after_ns, char *err, size_t errlen) __attribute__((warn_unused_result));

/* A client context from the files the settings name (what the agent
 * builds at start and on SIGHUP). Return NULL with err set. */
SSL_CTX *renew_load_ctx(const settings_t *s, char *err, size_t errlen);

#endif
