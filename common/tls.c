// SPDX-License-Identifier: Apache-2.0
/* TLS contexts and peer identity (see tls.h). */
#include "tls.h"

#include <stdio.h>
#include <sys/ioctl.h>
#include <time.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "utf8.h"

void tls_error_text(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "";
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s%s%s", what, e ? ": " : "", buf);
	ERR_clear_error();
}

static int set_min_version(SSL_CTX *ctx, const char *v, char *err, size_t errlen)
{
	int ver = TLS1_3_VERSION;
	if (v && v[0] && strcmp(v, "1.3") != 0) {
		if (strcmp(v, "1.2") != 0) {
			snprintf(err, errlen, "tls min version '%s' is not 1.2 or 1.3", v);
			return -1;
		}
		ver = TLS1_2_VERSION;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, ver)) {
		tls_error_text(err, errlen, "cannot set TLS version");
		return -1;
	}
	/* TLS 1.2, where allowed: forward secrecy and AEAD only (1.3's suites
	 * are all of that kind). */
	if (ver == TLS1_2_VERSION &&
	    !SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL")) {
		tls_error_text(err, errlen, "cannot set the TLS 1.2 ciphers");
		return -1;
	}
	return 0;
}

int tls_set_min_version(SSL_CTX *ctx, const char *v, char *err, size_t errlen)
{
	return set_min_version(ctx, v, err, errlen);
}

/* Chain verification done by OpenSSL; on top of it the leaf must carry the
 * clientAuth extended key usage. */
int tls_verify_client_auth(int ok, X509_STORE_CTX *store)
{
	if (!ok)
		return 0;
	if (X509_STORE_CTX_get_error_depth(store) != 0)
		return 1;
	X509 *leaf = X509_STORE_CTX_get_current_cert(store);
	uint32_t flags = X509_get_extension_flags(leaf);
	if (!(flags & EXFLAG_XKUSAGE) || !(X509_get_extended_key_usage(leaf) & XKU_SSL_CLIENT)) {
		X509_STORE_CTX_set_error(store, X509_V_ERR_INVALID_PURPOSE);
		return 0;
	}
	return 1;
}

static SSL_CTX *ctx_common(const SSL_METHOD *m, const tls_files_t *f, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(m);
	if (!ctx) {
		tls_error_text(err, errlen, "SSL_CTX_new");
		return NULL;
	}
	if (set_min_version(ctx, f->min_version, err, errlen) != 0)
		goto fail;
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
					 SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Idle connections give their record buffers back. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/* no certificate: a client that enrolls (it has none yet) */
	if (!f->cert_file)
		goto ca;
	if (SSL_CTX_use_certificate_chain_file(ctx, f->cert_file) != 1) {
		tls_error_text(err, errlen, "cannot load certificate");
		snprintf(err + strlen(err), errlen - strlen(err), " (%s)", f->cert_file);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, f->key_file, SSL_FILETYPE_PEM) != 1) {
		tls_error_text(err, errlen, "cannot load private key");
		snprintf(err + strlen(err), errlen - strlen(err), " (%s)", f->key_file);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_error_text(err, errlen, "private key does not match certificate");
		goto fail;
	}
ca:
	if (SSL_CTX_load_verify_locations(ctx, f->ca_file, NULL) != 1) {
		tls_error_text(err, errlen, "cannot load CA file");
		snprintf(err + strlen(err), errlen - strlen(err), " (%s)", f->ca_file);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *tls_server_ctx_new(const tls_files_t *f, char *err, size_t errlen)
{
	SSL_CTX *ctx = ctx_common(TLS_server_method(), f, err, errlen);
	if (!ctx)
		return NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
			   tls_verify_client_auth);
	SSL_CTX_set_verify_depth(ctx, 4);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(f->ca_file);
	if (names)
		SSL_CTX_set_client_CA_list(ctx, names);
	ERR_clear_error();
	return ctx;
}

void tls_server_ctx_allow_no_cert(SSL_CTX *ctx)
{
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_verify_client_auth);
}

SSL_CTX *tls_client_ctx_new(const tls_files_t *f, char *err, size_t errlen)
{
	SSL_CTX *ctx = ctx_common(TLS_client_method(), f, err, errlen);
	if (!ctx)
		return NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_verify_depth(ctx, 4);
	return ctx;
}

SSL *tls_ssl_new(SSL_CTX *ctx, const char *verify_host)
{
	SSL *ssl = SSL_new(ctx);
	if (!ssl)
		return NULL;
	if (verify_host && verify_host[0]) {
		SSL_set_tlsext_host_name(ssl, verify_host);
		/* The name is checked against the certificate's SANs only: never
		 * the subject CN, which OpenSSL would fall back to without SANs. */
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
					       X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (SSL_set1_host(ssl, verify_host) != 1) {
			SSL_free(ssl);
			return NULL;
		}
	}
	return ssl;
}

bool tls_peer_silent(SSL *ssl, int fd)
{
	BIO *rbio = ssl ? SSL_get_rbio(ssl) : NULL;
	if (rbio && BIO_number_read(rbio) > 0)
		return false;
	int waiting = 0;
	return fd < 0 || ioctl(fd, FIONREAD, &waiting) != 0 || waiting == 0;
}

int64_t tls_peer_not_after_ns(SSL *ssl)
{
	X509 *cert = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
	struct tm tm;
	if (!cert || ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1)
		return 0;
	time_t t = timegm(&tm);
	return t > 0 ? (int64_t)t * 1000000000 : 0;
}

int tls_peer_serial_hex(SSL *ssl, char *out, size_t outlen)
{
	static const char hexdig[] = "0123456789abcdef";
	X509 *cert = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
	const ASN1_INTEGER *sn = cert ? X509_get0_serialNumber(cert) : NULL;
	if (!sn || ASN1_STRING_type(sn) == V_ASN1_NEG_INTEGER || outlen < 2)
		return -1;
	const unsigned char *b = ASN1_STRING_get0_data(sn);
	int n = ASN1_STRING_length(sn);
	size_t o = 0;
	for (int i = 0; i < n; i++) {
		const char d[2] = {hexdig[b[i] >> 4], hexdig[b[i] & 15]};
		for (int k = 0; k < 2; k++) {
			if (o == 0 && d[k] == '0')
				continue; /* leading zeros */
			if (o + 1 >= outlen)
				return -1;
			out[o++] = d[k];
		}
	}
	if (o == 0)
		out[o++] = '0';
	out[o] = '\0';
	return 0;
}

int tls_peer_still_trusted(SSL *ssl, SSL_CTX *ctx, char *why, size_t whylen)
{
	X509 *cert = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
	X509_STORE *store = ctx ? SSL_CTX_get_cert_store(ctx) : NULL;
	X509_STORE_CTX *vctx = X509_STORE_CTX_new();
	int rc = -1;
	snprintf(why, whylen, "no peer certificate");
	if (cert && store && vctx &&
	    X509_STORE_CTX_init(vctx, store, cert, SSL_get_peer_cert_chain(ssl)) == 1) {
		X509_STORE_CTX_set_purpose(vctx, X509_PURPOSE_SSL_CLIENT);
		if (X509_verify_cert(vctx) == 1) {
			rc = 0;
			why[0] = '\0';
		} else {
			snprintf(why, whylen, "%s",
				 X509_verify_cert_error_string(X509_STORE_CTX_get_error(vctx)));
		}
	}
	X509_STORE_CTX_free(vctx);
	ERR_clear_error();
	return rc;
}

int tls_peer_identity(SSL *ssl, char *out, size_t outlen)
{
	X509 *cert = SSL_get0_peer_certificate(ssl);
	if (!cert || SSL_get_verify_result(ssl) != X509_V_OK)
		return -1;
	X509_NAME *subj = X509_get_subject_name(cert);
	int idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
	if (idx >= 0) {
		ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
		unsigned char *utf8 = NULL;
		int n = ASN1_STRING_to_UTF8(&utf8, d);
		/* A CN that is not clean printable UTF-8 is not used: repairing it
		 * could make two certificates one identity. */
		char probe[512];
		bool clean = n > 0 && (size_t)n < outlen && (size_t)n < sizeof(probe) &&
			     utf8_valid((const char *)utf8, (size_t)n);
		if (clean) {
			memcpy(probe, utf8, (size_t)n);
			probe[n] = '\0';
			clean = utf8_sanitize(probe) == 0;
		}
		if (clean) {
			memcpy(out, utf8, (size_t)n);
			out[n] = '\0';
			OPENSSL_free(utf8);
			return 0;
		}
		OPENSSL_free(utf8);
	}
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (!X509_digest(cert, EVP_sha256(), md, &mdlen) || outlen < 8 + 2 * (size_t)mdlen)
		return -1;
	memcpy(out, "sha256:", 7);
	for (unsigned int i = 0; i < mdlen; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
	return 0;
}

void tls_failure_reason(SSL *ssl, unsigned long e, char *out, size_t outlen)
{
	long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
	char buf[256] = "";
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	if (vr != X509_V_OK)
		snprintf(out, outlen, "certificate verify failed: %s%s%s",
			 X509_verify_cert_error_string(vr), e ? "; " : "", buf);
	else if (e)
		snprintf(out, outlen, "%s", buf);
	else
		snprintf(out, outlen, "connection closed during handshake");
}

void tls_log_errors(const char *prefix, const char *what)
{
	unsigned long e;
	while ((e = ERR_get_error()) != 0) {
		char buf[256];
		ERR_error_string_n(e, buf, sizeof(buf));
		log_msg(LOG_LVL_WARN, prefix, "%s: %s", what, buf);
	}
}

void tls_clear_errors(void)
{
	ERR_clear_error();
}

void tls_ctx_ref(SSL_CTX *ctx)
{
	if (ctx)
		SSL_CTX_up_ref(ctx);
}

void tls_ctx_unref(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}
