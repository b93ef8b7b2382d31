// SPDX-License-Identifier: Apache-2.0
/*
 * TLS contexts and peer identity for mutual TLS between agents and
 * collectors. The only module that configures OpenSSL; connection code
 * gets an SSL object from tls_ssl_new and hands it to libevent.
 */
#ifndef VIGIL_TLS_H
#define VIGIL_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

typedef struct {
	const char *cert_file;	 /* PEM chain, leaf first */
	const char *key_file;	 /* PEM private key */
	const char *ca_file;	 /* PEM CA(s) that the peer must chain to */
	const char *min_version; /* "1.3" (default) or "1.2" */
} tls_files_t;

/* Build a server context that requires a client certificate chaining to
 * ca_file and carrying the clientAuth extended key usage.
 * Return NULL with err set on failure. Caller frees with SSL_CTX_free. */
/* Set ctx's lowest protocol version, "1.3" (also for NULL or "") or "1.2"
 * (then with ECDHE and AEAD ciphers only). Return 0, or -1 with err set. */
int tls_set_min_version(SSL_CTX *ctx, const char *v, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* err = what, then ": " and the first queued OpenSSL error if there is
 * one; the queue is cleared. */
void tls_error_text(char *err, size_t errlen, const char *what);

SSL_CTX *tls_server_ctx_new(const tls_files_t *f, char *err, size_t errlen);
/* Ask clients of ctx (a tls_server_ctx_new context) for a certificate
 * without requiring one: a certificate that is sent must still verify.
 * The caller decides what a connection without one may do. */
void tls_server_ctx_allow_no_cert(SSL_CTX *ctx);

/* OpenSSL verify callback: on top of the chain check, the leaf must carry
 * the clientAuth extended key usage. For SSL_CTX_set_verify. */
int tls_verify_client_auth(int ok, X509_STORE_CTX *store);

/* Build a client context that presents cert/key (none if cert_file is
 * NULL) and verifies the server against ca_file. Host names are checked
 * per connection (tls_ssl_new). */
SSL_CTX *tls_client_ctx_new(const tls_files_t *f, char *err, size_t errlen);

/* Create an SSL for one connection. For a client, verify_host (may be NULL)
 * is the name the server certificate must match. Caller owns the result. */
SSL *tls_ssl_new(SSL_CTX *ctx, const char *verify_host);

/* Write the peer's identity into out: the subject CN of its certificate,
 * or "sha256:<hex>" of the certificate when no CN is set or the CN is not
 * printable UTF-8.
 * Return 0, or -1 if there is no verified peer certificate. */
int tls_peer_identity(SSL *ssl, char *out, size_t outlen);

/* True if the peer of ssl (on socket fd, -1 if none yet) has sent nothing:
 * no byte read through its BIO and none waiting in the socket. */
bool tls_peer_silent(SSL *ssl, int fd);

/* The end of the validity of the peer's certificate (Unix ns), or 0. */
int64_t tls_peer_not_after_ns(SSL *ssl);

/* Room for a certificate serial in hex (RFC 5280 caps serials at 20 bytes;
 * up to 64 are read) and its NUL. */
#define TLS_SERIAL_HEX_MAX 129

/* Write the serial number of the peer's certificate into out as lower-case
 * hex without leading zeros ("0" for zero), the form revocations compare.
 * Return 0, or -1 if there is no peer certificate, the serial is negative
 * or it does not fit outlen. */
int tls_peer_serial_hex(SSL *ssl, char *out, size_t outlen);

/* Verify the peer's certificate and chain on ssl again, against the trust
 * store of ctx (a client certificate). Return 0, or -1 with why set. */
int tls_peer_still_trusted(SSL *ssl, SSL_CTX *ctx, char *why, size_t whylen);

/* Describe why the handshake on ssl failed into out: the certificate
 * verification result if it failed, else OpenSSL error err (as returned by
 * ERR_get_error or bufferevent_get_openssl_error; 0 if none). */
void tls_failure_reason(SSL *ssl, unsigned long err, char *out, size_t outlen);

/* Log every queued OpenSSL error with prefix and clear the queue. */
void tls_log_errors(const char *prefix, const char *what);

/* Take another reference to ctx / drop one (NULL is fine). */
void tls_ctx_ref(SSL_CTX *ctx);
void tls_ctx_unref(SSL_CTX *ctx);

/* Drain the calling thread's OpenSSL error queue without logging. */
void tls_clear_errors(void);

#endif
