// SPDX-License-Identifier: Apache-2.0
/* Certificate renewal for the uplink (see renew.h). */
#include "renew.h"

#include <stdio.h>
#include <stdlib.h>

#include "certfile.h"

int renew_cert_validity(SSL_CTX *ctx, int64_t *not_before_ns, int64_t *not_after_ns)
{
	X509 *x = ctx ? SSL_CTX_get0_certificate(ctx) : NULL;
	return x ? certfile_validity(x, not_before_ns, not_after_ns) : -1;
}

int renew_csr(SSL_CTX *ctx, const char *cn, uint8_t **der, size_t *len, char *err, size_t errlen)
{
	EVP_PKEY *key = ctx ? SSL_CTX_get0_privatekey(ctx) : NULL;
	if (!key) {
		snprintf(err, errlen, "no private key loaded");
		return -1;
	}
	return certfile_make_csr(key, cn, der, len, err, errlen);
}

int renew_write_chain(const char *path, EVP_PKEY *key, ProtobufCBinaryData leaf,
		      const ProtobufCBinaryData *chain, size_t n, int64_t *not_after_ns, char *err,
		      size_t errlen)
{
	certfile_der_t *ders = calloc(n + 1, sizeof(*ders));
	if (!ders) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		ders[i] = (certfile_der_t){chain[i].data, chain[i].len};
	size_t len = 0;
	char *pem = certfile_chain_pem((certfile_der_t){leaf.data, leaf.len}, ders, n, key, &len,
				       not_after_ns, err, errlen);
	free(ders);
	if (!pem)
		return -1;
	int rc = certfile_write_atomic(path, pem, len, 0644, false, err, errlen);
	free(pem);
	return rc == 0 ? 0 : -1;
}

int renew_save(const settings_t *s, SSL_CTX *ctx, const Vigil__V1__RenewResponse *r,
	       int64_t *not_after_ns, char *err, size_t errlen)
{
	EVP_PKEY *key = ctx ? SSL_CTX_get0_privatekey(ctx) : NULL;
	if (!key) {
		snprintf(err, errlen, "no private key loaded");
		return -1;
	}
	return renew_write_chain(s->tls_cert, key, r->certificate_der, r->chain_der, r->n_chain_der,
				 not_after_ns, err, errlen);
}

SSL_CTX *renew_load_ctx(const settings_t *s, char *err, size_t errlen)
{
	tls_files_t f = {s->tls_cert, s->tls_key, s->ca, s->tls_min_version};
	return tls_client_ctx_new(&f, err, errlen);
}
