// SPDX-License-Identifier: Apache-2.0
/*
 * The agent's credential files: its private key (made on the node, EC
 * P-256, mode 0600, never sent anywhere), certificate signing requests of
 * that key, certificate chains and CA files written atomically (a
 * temporary file in the same directory, fsync, rename), and when a
 * certificate is due for renewal. Used by `vigil-agent enroll` and by the
 * uplink's renewal.
 */
#ifndef VIGIL_AGENT_CERTFILE_H
#define VIGIL_AGENT_CERTFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* One DER certificate, borrowed. */
typedef struct {
	const uint8_t *data;
	size_t len;
} certfile_der_t;

/* Write len bytes of data to path with exactly mode: a new temporary file
 * (O_EXCL, created 0600) next to path, written, fsync'd, then renamed over
 * path, and the directory fsync'd. With noreplace an existing path is kept
 * (return 1). On failure path is untouched and no temporary is left.
 * Return 0, 1 (noreplace and path exists), or -1 with err set. */
int certfile_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
			  bool noreplace, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Copy the file src (at most max bytes) to dst as certfile_write_atomic
 * does, unless both name the same file. Return 0, or -1 with err set. */
int certfile_copy_atomic(const char *src, const char *dst, mode_t mode, size_t max, char *err,
			 size_t errlen) __attribute__((warn_unused_result));

/* Load the PEM private key at path; if there is no file there, make an EC
 * P-256 key and write it there (mode 0600; a key that appears meanwhile is
 * kept and loaded). *created tells which. Caller frees with EVP_PKEY_free.
 * Return NULL with err set on failure. */
EVP_PKEY *certfile_load_or_create_key(const char *path, bool *created, char *err, size_t errlen);

/* Make a PKCS#10 request for key with subject CN=cn, signed by key
 * (SHA-256, or none for Ed25519), in DER into a new buffer *der (caller
 * frees with free()). Return 0, or -1 with err set. */
int certfile_make_csr(EVP_PKEY *key, const char *cn, uint8_t **der, size_t *len, char *err,
		      size_t errlen) __attribute__((warn_unused_result));

/* The PEM text of leaf then chain[0..n) in a new NUL-terminated buffer
 * (caller frees with free()), *len its length. Every certificate must
 * parse; when key is not NULL the leaf must be for key. *not_after_ns (may
 * be NULL) gets the leaf's end of validity. Return NULL with err set. */
char *certfile_chain_pem(certfile_der_t leaf, const certfile_der_t *chain, size_t n, EVP_PKEY *key,
			 size_t *len, int64_t *not_after_ns, char *err, size_t errlen);

/* The validity of x as Unix nanoseconds. Return 0, or -1 if unreadable. */
int certfile_validity(const X509 *x, int64_t *not_before_ns, int64_t *not_after_ns)
	__attribute__((warn_unused_result));

/* True when a certificate valid from not_before to not_after is due for
 * renewal at now: at two thirds of its lifetime or later (also once it has
 * expired). False for a validity that does not make sense. Pure. */
bool certfile_renew_due(int64_t not_before_ns, int64_t not_after_ns, int64_t now_ns);

/* Format t (Unix ns) as "YYYY-MM-DD HH:MM:SS UTC" into out. */
void certfile_time_str(int64_t t_ns, char *out, size_t outlen);

#endif
