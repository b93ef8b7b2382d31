// SPDX-License-Identifier: Apache-2.0
/*
 * Enrollment's storage (schema/0014_enrollment.sql; the revocations table
 * of schema/0015_revocations.sql): join tokens, the enrollment and renewal
 * transactions that sign agent certificates, and the token commands'
 * queries. Blocking libpq on the caller's connection (one thread at a
 * time): for the enrollment service thread and the command line, never on
 * an event loop. Each call runs its own transaction with a statement and
 * lock timeout and leaves the connection idle; a broken connection gives
 * ENROLL_DB_ERROR (or -1) and is the caller's to make again.
 *
 * Every token problem (malformed, unknown, wrong secret, used up, expired,
 * revoked) gives the agent the same text, ENROLL_TOKEN_REFUSED_TEXT; the
 * log text says which, naming the token by its id only.
 */
#ifndef VIGIL_ENROLL_ENROLLDB_H
#define VIGIL_ENROLL_ENROLLDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "enroll/identity.h"
#include "enroll/issuer.h"
#include "enroll/token.h"

#define ENROLL_TOKEN_REFUSED_TEXT "enrollment refused: token not accepted"
#define ENROLL_MACHINE_ID_MAX 128 /* bytes */
#define ENROLL_ERROR_LEN 256
#define ENROLL_LOG_LEN 512

/* libpq's connection (libpq-fe.h), which only enrolldb.c includes. */
typedef struct pg_conn PGconn;

typedef enum {
	ENROLL_OK = 0,
	ENROLL_TOKEN_REFUSED,	 /* any token problem (the same text for each) */
	ENROLL_BAD_HOSTNAME,	 /* not usable as an identity, or reserved */
	ENROLL_BAD_REQUEST,	 /* machine id too long or not printable, no key */
	ENROLL_ALREADY_ENROLLED, /* this machine has the name; --force replaces it */
	ENROLL_NAME_REFUSED,	 /* no free name, or not the token's name pattern */
	ENROLL_NOT_MANAGED,	 /* renewal: no agent_identities row (own PKI) */
	ENROLL_REVOKED,		 /* renewal: identity or certificate revoked */
	ENROLL_EXPIRED,		 /* renewal: the certificate has expired */
	ENROLL_UNKNOWN_CERT,	 /* renewal: serial not issued to this identity */
	ENROLL_ISSUE_FAILED,	 /* signing failed (the issuing CA: see log) */
	ENROLL_DB_ERROR,	 /* PostgreSQL failed or is unreachable: transient */
} enroll_result_t;

/* A short name of r for logs and metrics ("ok", "token_refused", ...). */
const char *enroll_result_name(enroll_result_t r);

/* Connect to conninfo (blocking), naming the session "vigil-collector
 * <purpose>". Return a new connection (enrolldb_disconnect), or NULL with
 * err set. */
PGconn *enrolldb_connect(const char *conninfo, const char *purpose, char *err, size_t errlen);

/* Close pg. Accepts NULL. */
void enrolldb_disconnect(PGconn *pg);

/* ---- enrollment and renewal ------------------------------------------------ */

/* An enrollment request; every pointer borrowed, every string untrusted. */
typedef struct {
	const char *token; /* as the agent sent it; token_len bytes */
	size_t token_len;
	const char *hostname; /* hostname_len bytes */
	size_t hostname_len;
	const char *machine_id; /* NUL-terminated; "" if the agent has none */
	bool force;
	EVP_PKEY *pub;	       /* the CSR's key, from issuer_check_csr */
	int64_t lifetime_ms;   /* agent_cert_lifetime */
	const char *admin_cns; /* http_admin_cns: more reserved names; may be NULL */
} enroll_input_t;

typedef struct {
	char identity[IDENTITY_MAX + 1]; /* ENROLL_OK: the name assigned (the CN) */
	char token_id[TOKEN_ID_LEN + 1]; /* the token's id once parsed, else "" */
	int revoked;			 /* certificates revoked by --force */
	issuer_cert_t cert;		 /* ENROLL_OK: enroll_output_clear frees it */
	char error[ENROLL_ERROR_LEN];	 /* not ENROLL_OK: the text for the agent */
	char log[ENROLL_LOG_LEN];	 /* not ENROLL_OK: the text for the log */
} enroll_output_t;

/* Enroll one agent, in one transaction: lock the token's row and check it
 * (secret, not revoked, not expired, uses left); only then check the host
 * name (so that reserved names are not told to whoever has no token) and
 * make the identity from it (a name held by another machine, by an agent of a hand-made
 * certificate or by a revoked identity gets the first free "-2", "-3", ...
 * variant; the same machine's name is ENROLL_ALREADY_ENROLLED unless force,
 * which revokes that identity's live certificates: agent_certs.revoked_at
 * and a revocations row per serial); check the token's name pattern; sign
 * with iss; record the identity and the certificate; count the use; commit.
 * Nothing is written unless ENROLL_OK. Return the result with out filled
 * (enroll_output_clear it in every case). */
enroll_result_t enrolldb_enroll(PGconn *pg, const issuer_t *iss, const enroll_input_t *in,
				enroll_output_t *out) __attribute__((warn_unused_result));

/* Free what out holds and zero it. Accepts NULL. */
void enroll_output_clear(enroll_output_t *out);

typedef struct {
	issuer_cert_t cert;	      /* ENROLL_OK: renew_output_clear frees it */
	char error[ENROLL_ERROR_LEN]; /* not ENROLL_OK: the text for the agent */
	char log[ENROLL_LOG_LEN];     /* not ENROLL_OK: the text for the log */
} renew_output_t;

/* Renew the certificate of identity (the CN of a mutual-TLS connection)
 * whose serial is serial_hex (issuer_serial_hex of the peer certificate)
 * with key pub (from issuer_check_csr), in one transaction: the identity
 * must have an agent_identities row (ENROLL_NOT_MANAGED: hand-made
 * certificates are not renewed) and not be revoked, the serial must be one
 * enrollment issued to it, not revoked nor expired; then a certificate is
 * signed for lifetime_ms and recorded (kind 'renew'). The caller checks
 * the connection's own certificate times too. Return the result with out
 * filled (renew_output_clear it in every case). */
enroll_result_t enrolldb_renew(PGconn *pg, const issuer_t *iss, const char *identity,
			       const char *serial_hex, EVP_PKEY *pub, int64_t lifetime_ms,
			       renew_output_t *out) __attribute__((warn_unused_result));

/* Free what out holds and zero it. Accepts NULL. */
void renew_output_clear(renew_output_t *out);

/* ---- join tokens (`vigil-collector enroll-token`) ------------------------- */

typedef struct {
	int64_t uses_max;	  /* uses allowed; 0 = unlimited */
	int64_t expires_s;	  /* lifetime in seconds from now (> 0) */
	const char *labels_json;  /* a JSON object of string values */
	const char *name_pattern; /* glob the identity must match; NULL = any */
	const char *created_by;	  /* the Unix user */
} enrolldb_token_spec_t;

/* Store a new token by id and hash (token_generate). Return 0 with
 * expires_at set (UTC, "YYYY-MM-DDTHH:MM:SSZ"), or -1 with err set. */
int enrolldb_token_create(PGconn *pg, const char *id, const uint8_t hash[TOKEN_HASH_LEN],
			  const enrolldb_token_spec_t *spec, char *expires_at, size_t expires_len,
			  char *err, size_t errlen) __attribute__((warn_unused_result));

/* One token as listed: never its secret or hash. Borrowed strings. */
typedef struct {
	const char *id, *status;     /* status: active, used up, expired or revoked */
	const char *uses, *uses_max; /* uses_max: a number or "unlimited" */
	const char *expires_at, *created_at, *created_by;
	const char *labels, *name_pattern; /* labels: JSON; name_pattern: "" if none */
} enrolldb_token_row_t;

typedef void (*enrolldb_token_fn)(void *ctx, const enrolldb_token_row_t *row);

/* Call fn for every token, newest first. Return 0, or -1 with err set. */
int enrolldb_token_list(PGconn *pg, enrolldb_token_fn fn, void *ctx, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Revoke the token id. Return 1 if revoked, 0 if there is no such token
 * that is not revoked yet, -1 with err set. */
int enrolldb_token_revoke(PGconn *pg, const char *id, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
