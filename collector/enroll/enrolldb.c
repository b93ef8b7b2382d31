// SPDX-License-Identifier: Apache-2.0
/*
 * Enrollment's storage (see enrolldb.h): the one file of collector/enroll/
 * that speaks libpq. Statements take text parameters; a token's hash
 * travels as hex. A transaction that fails rolls back before the call
 * returns, so the connection is idle between calls.
 */
#include "enroll/enrolldb.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>

#define BEGIN_SQL "BEGIN; SET LOCAL statement_timeout = '15s'; SET LOCAL lock_timeout = '10s'"
#define MAX_SUFFIX 1000 /* "-2" .. "-1000": then no free name */
#define MAX_ATTEMPTS 3	/* transactions tried when two enrollments race */
#define DB_ERROR_TEXT "enrollment failed: the collector's database is unavailable; try again later"
#define ISSUE_ERROR_TEXT "the collector could not sign a certificate; try again later"

/* The caller's connection and what went wrong on it, for one call. */
typedef struct {
	PGconn *pg;
	char err[256];	  /* the last database error */
	char sqlstate[6]; /* and its SQLSTATE, "" if none */
} db_t;

/* The outcome of a statement inside a transaction. */
typedef enum {
	Q_OK,
	Q_FAIL,
	Q_RETRY
} q_rc_t;

const char *enroll_result_name(enroll_result_t r)
{
	static const char *const names[] = {
		"ok",		"token_refused", "bad_hostname", "bad_request", "already_enrolled",
		"name_refused", "not_managed",	 "revoked",	 "expired",	"unknown_cert",
		"issue_failed", "db_error",
	};
	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "unknown";
}

/* ---- connection ----------------------------------------------------------- */

static void note_error(db_t *db, const PGresult *r)
{
	const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(db->pg);
	const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	size_t n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		n--;
	snprintf(db->err, sizeof(db->err), "%.*s", (int)n, n ? msg : "no answer");
	snprintf(db->sqlstate, sizeof(db->sqlstate), "%s", st ? st : "");
}

/* Run sql with n text parameters (NULL ones are SQL NULL). Return the
 * result (PQclear it), or NULL with db->err set. */
static PGresult *run(db_t *db, const char *sql, int n, const char *const *vals)
{
	PGresult *r = PQexecParams(db->pg, sql, n, NULL, vals, NULL, NULL, 0);
	ExecStatusType s = PQresultStatus(r);
	if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK)
		return r;
	note_error(db, r);
	PQclear(r);
	return NULL;
}

/* Run sql and drop its result. Return 0, or -1 with db->err set. */
static int exec0(db_t *db, const char *sql, int n, const char *const *vals)
{
	PGresult *r = run(db, sql, n, vals);
	PQclear(r);
	return r ? 0 : -1;
}

/* Begin a transaction with a statement and lock timeout on an idle
 * connection. Return 0, or -1 with db->err set. */
static int begin(db_t *db)
{
	if (PQstatus(db->pg) != CONNECTION_OK) {
		note_error(db, NULL);
		return -1;
	}
	if (PQtransactionStatus(db->pg) != PQTRANS_IDLE && exec0(db, "ROLLBACK", 0, NULL) != 0)
		return -1;
	PGresult *r = PQexec(db->pg, BEGIN_SQL);
	int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
	if (rc != 0)
		note_error(db, r);
	PQclear(r);
	return rc;
}

/* End a failed transaction, if one is open. */
static void rollback(db_t *db)
{
	if (PQtransactionStatus(db->pg) != PQTRANS_IDLE)
		(void)exec0(db, "ROLLBACK", 0, NULL);
}

PGconn *enrolldb_connect(const char *conninfo, const char *purpose, char *err, size_t errlen)
{
	char name[64];
	snprintf(name, sizeof(name), "vigil-collector %s", purpose ? purpose : "");
	const char *keys[] = {"dbname", "application_name", NULL};
	const char *vals[] = {conninfo, name, NULL};
	PGconn *pg = PQconnectdbParams(keys, vals, 1);
	if (pg && PQstatus(pg) == CONNECTION_OK)
		return pg;
	snprintf(err, errlen, "%s", pg ? PQerrorMessage(pg) : "out of memory");
	size_t n = strlen(err);
	while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
		err[--n] = '\0';
	PQfinish(pg);
	return NULL;
}

void enrolldb_disconnect(PGconn *pg)
{
	if (pg)
		PQfinish(pg);
}

/* ---- results ---------------------------------------------------------------- */

static enroll_result_t refuse(char *error, char *log, enroll_result_t r, const char *log_fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Set the agent's text (error, ENROLL_ERROR_LEN) from r unless it is set,
 * and the log text from log_fmt. Return r. */
static enroll_result_t refuse(char *error, char *log, enroll_result_t r, const char *log_fmt, ...)
{
	va_list ap;
	va_start(ap, log_fmt);
	vsnprintf(log, ENROLL_LOG_LEN, log_fmt, ap);
	va_end(ap);
	if (error[0])
		return r;
	if (r == ENROLL_TOKEN_REFUSED)
		snprintf(error, ENROLL_ERROR_LEN, "%s", ENROLL_TOKEN_REFUSED_TEXT);
	else if (r == ENROLL_DB_ERROR)
		snprintf(error, ENROLL_ERROR_LEN, "%s", DB_ERROR_TEXT);
	else if (r == ENROLL_ISSUE_FAILED)
		snprintf(error, ENROLL_ERROR_LEN, "enrollment failed: %s", ISSUE_ERROR_TEXT);
	else
		snprintf(error, ENROLL_ERROR_LEN, "refused: %s", enroll_result_name(r));
	return r;
}

/* Whether the last error is a race another transaction won (unique
 * violation, serialization failure, deadlock): the transaction is worth
 * running again. */
static bool lost_race(const db_t *db)
{
	return !strcmp(db->sqlstate, "23505") || !strcmp(db->sqlstate, "40001") ||
	       !strcmp(db->sqlstate, "40P01");
}

static bool is_true(const PGresult *r, int row, int col)
{
	return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

static int hex_decode(const char *hex, uint8_t *out, size_t outlen)
{
	size_t n = strlen(hex);
	if (n != 2 * outlen)
		return -1;
	for (size_t i = 0; i < outlen; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

static void hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char h[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = h[in[i] >> 4];
		out[2 * i + 1] = h[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* ---- enrollment -------------------------------------------------------------- */

/* What a transaction learned of the token (its labels are copied in SQL). */
typedef struct {
	char pattern[256]; /* the schema bounds it to 255 bytes */
} token_row_t;

static const char SQL_TOKEN[] =
	"SELECT encode(secret_sha256, 'hex'), revoked_at IS NOT NULL, expires_at <= now(), "
	"uses_max IS NOT NULL AND uses >= uses_max, coalesce(name_pattern, '') "
	"FROM enroll_tokens WHERE id = $1 FOR UPDATE";

/* Lock the token's row and check it. Return ENROLL_OK with tr filled,
 * ENROLL_TOKEN_REFUSED or ENROLL_DB_ERROR (out->log set). */
static enroll_result_t check_token(db_t *db, const token_parts_t *tok, token_row_t *tr,
				   enroll_output_t *out)
{
	const char *p[] = {tok->id};
	PGresult *r = run(db, SQL_TOKEN, 1, p);
	if (!r)
		return refuse(out->error, out->log, ENROLL_DB_ERROR, "token %s: %s", tok->id,
			      db->err);
	uint8_t want[TOKEN_HASH_LEN], stored[TOKEN_HASH_LEN] = {0};
	token_hash(tok, want);
	bool found =
		PQntuples(r) == 1 && hex_decode(PQgetvalue(r, 0, 0), stored, sizeof(stored)) == 0;
	/* compared even for an unknown id, so both take the same time */
	bool match = token_hash_equal(stored, sizeof(stored), want) && found;
	const char *why = !found	     ? "unknown token"
			  : !match	     ? "wrong secret"
			  : is_true(r, 0, 1) ? "revoked"
			  : is_true(r, 0, 2) ? "expired"
			  : is_true(r, 0, 3) ? "used up"
					     : NULL;
	if (!why)
		snprintf(tr->pattern, sizeof(tr->pattern), "%s", PQgetvalue(r, 0, 4));
	OPENSSL_cleanse(want, sizeof(want));
	PQclear(r);
	if (why)
		return refuse(out->error, out->log, ENROLL_TOKEN_REFUSED, "token %s: %s", tok->id,
			      why);
	return ENROLL_OK;
}

/* Who holds a name. */
typedef enum {
	NAME_FREE,
	NAME_MINE,
	NAME_TAKEN
} name_state_t;

static const char SQL_NAME[] =
	"SELECT i.machine_id, i.revoked_at IS NOT NULL, "
	"EXISTS (SELECT 1 FROM agents a WHERE a.name = q.name), "
	"EXISTS (SELECT 1 FROM revocations r WHERE r.scope = 'agent' AND r.name = q.name) "
	"FROM (SELECT $1::text AS name) q LEFT JOIN agent_identities i ON i.name = q.name";

/* Whether name is free, this machine's live identity, or someone else's
 * (another machine's, a hand-made certificate's agent, or revoked). */
static int name_state(db_t *db, const char *name, const char *machine_id, name_state_t *state)
{
	const char *p[] = {name};
	PGresult *r = run(db, SQL_NAME, 1, p);
	if (!r)
		return -1;
	bool identity = !PQgetisnull(r, 0, 0);
	bool revoked = is_true(r, 0, 1) || is_true(r, 0, 3);
	if (identity && !revoked && strcmp(PQgetvalue(r, 0, 0), machine_id) == 0)
		*state = NAME_MINE;
	else if (identity || revoked || is_true(r, 0, 2))
		*state = NAME_TAKEN;
	else
		*state = NAME_FREE;
	PQclear(r);
	return 0;
}

/* Find the name to give: base, or its first free variant. Return
 * ENROLL_OK with out->identity and *state set, or a refusal. */
static enroll_result_t assign_name(db_t *db, const char *base, const enroll_input_t *in,
				   name_state_t *state, enroll_output_t *out)
{
	/* Enrollments of one host name (on any collector) take turns; another
	 * name's "-N" variant can still collide: that transaction is retried. */
	const char *lp[] = {base};
	if (exec0(db, "SELECT pg_advisory_xact_lock(hashtext('vigil enroll name ' || $1))", 1,
		  lp) != 0)
		return refuse(out->error, out->log, ENROLL_DB_ERROR, "name %s: %s", base, db->err);
	char cand[IDENTITY_MAX + 1];
	snprintf(cand, sizeof(cand), "%s", base);
	for (unsigned n = 1; n <= MAX_SUFFIX; n++) {
		if (n > 1 && identity_with_suffix(base, n, cand) != 0)
			break;
		if (n > 1 && identity_reserved(cand, in->admin_cns))
			continue;
		if (name_state(db, cand, in->machine_id, state) != 0)
			return refuse(out->error, out->log, ENROLL_DB_ERROR, "name %s: %s", cand,
				      db->err);
		if (*state != NAME_TAKEN) {
			snprintf(out->identity, sizeof(out->identity), "%s", cand);
			return ENROLL_OK;
		}
	}
	snprintf(out->error, sizeof(out->error),
		 "enrollment refused: no free identity for host name %s", base);
	return refuse(out->error, out->log, ENROLL_NAME_REFUSED, "no free variant of %s", base);
}

static const char SQL_FORCE[] =
	"WITH c AS (UPDATE agent_certs SET revoked_at = now() "
	"  WHERE agent_name = $1 AND revoked_at IS NULL RETURNING serial), "
	"r AS (INSERT INTO revocations (scope, serial, reason, revoked_by) "
	"  SELECT 'agent', serial, 'replaced by re-enrollment (--force)', $2 FROM c RETURNING 1) "
	"UPDATE agent_identities SET machine_id = $3, token_id = $4, enrolled_at = now(), "
	"labels = (SELECT labels FROM enroll_tokens WHERE id = $4) "
	"WHERE name = $1 RETURNING (SELECT count(*) FROM r)";
static const char SQL_NEW_IDENTITY[] =
	"INSERT INTO agent_identities (name, machine_id, labels, token_id) "
	"SELECT $1, $2, labels, id FROM enroll_tokens WHERE id = $3";

/* Write the identity: a new row, or (force) the same machine's row taken
 * over, its live certificates revoked. */
static q_rc_t write_identity(db_t *db, const enroll_input_t *in, name_state_t state,
			     enroll_output_t *out)
{
	if (state == NAME_FREE) {
		const char *p[] = {out->identity, in->machine_id, out->token_id};
		if (exec0(db, SQL_NEW_IDENTITY, 3, p) == 0)
			return Q_OK;
		return lost_race(db) ? Q_RETRY : Q_FAIL;
	}
	char by[64];
	snprintf(by, sizeof(by), "enroll --force (token %s)", out->token_id);
	const char *p[] = {out->identity, by, in->machine_id, out->token_id};
	PGresult *r = run(db, SQL_FORCE, 4, p);
	if (!r)
		return lost_race(db) ? Q_RETRY : Q_FAIL;
	out->revoked = PQntuples(r) == 1 ? atoi(PQgetvalue(r, 0, 0)) : 0;
	PQclear(r);
	return Q_OK;
}

static const char SQL_CERT[] =
	"INSERT INTO agent_certs (serial, agent_name, kind, token_id, not_before, not_after) "
	"VALUES ($1, $2, $3, $4, to_timestamp($5::bigint), to_timestamp($6::bigint))";

/* Sign for identity and record the certificate (kind, token_id or NULL).
 * Return ENROLL_OK with *cert set, or ENROLL_ISSUE_FAILED / ENROLL_DB_ERROR
 * (error and log set). */
static enroll_result_t sign_and_record(db_t *db, const issuer_t *iss, const char *identity,
				       EVP_PKEY *pub, int64_t lifetime_ms, const char *kind,
				       const char *token_id, issuer_cert_t *cert, char *error,
				       char *log)
{
	char err[256];
	if (issuer_issue(iss, identity, pub, lifetime_ms, cert, err, sizeof(err)) != 0)
		return refuse(error, log, ENROLL_ISSUE_FAILED, "%s: %s", identity, err);
	char nb[24], na[24];
	snprintf(nb, sizeof(nb), "%lld", (long long)cert->not_before);
	snprintf(na, sizeof(na), "%lld", (long long)cert->not_after);
	const char *p[] = {cert->serial, identity, kind, token_id, nb, na};
	if (exec0(db, SQL_CERT, 6, p) != 0) {
		issuer_cert_clear(cert);
		return refuse(error, log, ENROLL_DB_ERROR, "%s: recording the certificate: %s",
			      identity, db->err);
	}
	return ENROLL_OK;
}

/* The steps after the token: name, identity, certificate, use. */
static enroll_result_t enroll_steps(db_t *db, const issuer_t *iss, const enroll_input_t *in,
				    const char *base, const token_row_t *tr, enroll_output_t *out,
				    bool *retry)
{
	name_state_t state;
	enroll_result_t rc = assign_name(db, base, in, &state, out);
	if (rc != ENROLL_OK)
		return rc;
	if (!identity_matches_pattern(tr->pattern, out->identity)) {
		snprintf(out->error, sizeof(out->error),
			 "enrollment refused: identity %s does not match the token's name pattern",
			 out->identity);
		return refuse(out->error, out->log, ENROLL_NAME_REFUSED,
			      "token %s: %s does not match the name pattern", out->token_id,
			      out->identity);
	}
	if (state == NAME_MINE && !in->force) {
		snprintf(out->error, sizeof(out->error),
			 "enrollment refused: host already enrolled as %s; use --force",
			 out->identity);
		return refuse(out->error, out->log, ENROLL_ALREADY_ENROLLED,
			      "%s already enrolled (same machine id)", out->identity);
	}
	q_rc_t q = write_identity(db, in, state, out);
	if (q != Q_OK) {
		*retry = q == Q_RETRY;
		return refuse(out->error, out->log, ENROLL_DB_ERROR, "%s: writing the identity: %s",
			      out->identity, db->err);
	}
	rc = sign_and_record(db, iss, out->identity, in->pub, in->lifetime_ms, "enroll",
			     out->token_id, &out->cert, out->error, out->log);
	if (rc != ENROLL_OK)
		return rc;
	const char *p[] = {out->token_id};
	if (exec0(db, "UPDATE enroll_tokens SET uses = uses + 1 WHERE id = $1", 1, p) != 0)
		return refuse(out->error, out->log, ENROLL_DB_ERROR, "token %s: counting: %s",
			      out->token_id, db->err);
	return ENROLL_OK;
}

/* The checks that need no database: the token's form, the machine id
 * and the key. */
static enroll_result_t check_request(const enroll_input_t *in, token_parts_t *tok,
				     enroll_output_t *out)
{
	if (token_parse(in->token, in->token_len, tok) != 0)
		return refuse(out->error, out->log, ENROLL_TOKEN_REFUSED, "malformed token");
	memcpy(out->token_id, tok->id, sizeof(out->token_id));
	const char *m = in->machine_id;
	size_t ml = strnlen(m, ENROLL_MACHINE_ID_MAX + 1);
	bool printable = ml <= ENROLL_MACHINE_ID_MAX;
	for (size_t i = 0; printable && i < ml; i++)
		printable = m[i] > 0x20 && m[i] < 0x7f;
	if (!printable || !in->pub) {
		snprintf(out->error, sizeof(out->error), "enrollment refused: %s",
			 in->pub ? "the machine id is over 128 bytes or not printable ASCII"
				 : "no public key");
		return refuse(out->error, out->log, ENROLL_BAD_REQUEST, "token %s: bad request",
			      out->token_id);
	}
	return ENROLL_OK;
}

/* The identity's base name from the host name, once the token is good (so
 * that nobody without a token learns the reserved names). */
static enroll_result_t check_hostname(const enroll_input_t *in, char base[IDENTITY_MAX + 1],
				      enroll_output_t *out)
{
	identity_rc_t irc = identity_normalize(in->hostname, in->hostname_len, base);
	if (irc == IDENTITY_OK && identity_reserved(base, in->admin_cns))
		irc = IDENTITY_RESERVED;
	if (irc == IDENTITY_OK)
		return ENROLL_OK;
	snprintf(out->error, sizeof(out->error), "enrollment refused: %s%s%s", identity_why(irc),
		 irc == IDENTITY_RESERVED ? ": " : "", irc == IDENTITY_RESERVED ? base : "");
	return refuse(out->error, out->log, ENROLL_BAD_HOSTNAME, "token %s: %s", out->token_id,
		      identity_why(irc));
}

/* One enrollment transaction. *retry is set if it lost a race worth
 * running again. */
static enroll_result_t enroll_txn(db_t *db, const issuer_t *iss, const enroll_input_t *in,
				  const token_parts_t *tok, enroll_output_t *out, bool *retry)
{
	*retry = false;
	if (begin(db) != 0)
		return refuse(out->error, out->log, ENROLL_DB_ERROR, "%s", db->err);
	token_row_t tr;
	char base[IDENTITY_MAX + 1];
	enroll_result_t rc = check_token(db, tok, &tr, out);
	if (rc == ENROLL_OK)
		rc = check_hostname(in, base, out);
	if (rc == ENROLL_OK)
		rc = enroll_steps(db, iss, in, base, &tr, out, retry);
	if (rc == ENROLL_OK && exec0(db, "COMMIT", 0, NULL) != 0) {
		*retry = lost_race(db);
		rc = refuse(out->error, out->log, ENROLL_DB_ERROR, "commit: %s", db->err);
	}
	if (rc != ENROLL_OK) {
		issuer_cert_clear(&out->cert);
		rollback(db);
	}
	return rc;
}

enroll_result_t enrolldb_enroll(PGconn *pg, const issuer_t *iss, const enroll_input_t *in,
				enroll_output_t *out)
{
	db_t d = {.pg = pg}, *db = &d;
	memset(out, 0, sizeof(*out));
	token_parts_t tok;
	enroll_input_t req = *in;
	if (!req.machine_id)
		req.machine_id = "";
	enroll_result_t rc = check_request(&req, &tok, out);
	bool retry = rc == ENROLL_OK;
	for (int i = 0; retry && i < MAX_ATTEMPTS; i++) {
		out->error[0] = out->log[0] = '\0';
		out->identity[0] = '\0';
		out->revoked = 0;
		rc = enroll_txn(db, iss, &req, &tok, out, &retry);
	}
	token_clear(&tok);
	return rc;
}

void enroll_output_clear(enroll_output_t *out)
{
	if (!out)
		return;
	issuer_cert_clear(&out->cert);
	memset(out, 0, sizeof(*out));
}

/* ---- renewal ------------------------------------------------------------------- */

static const char SQL_RENEW[] =
	"SELECT i.revoked_at IS NOT NULL OR EXISTS (SELECT 1 FROM revocations r "
	"  WHERE r.scope = 'agent' AND r.name = i.name), "
	"c.serial IS NOT NULL, "
	"c.revoked_at IS NOT NULL OR EXISTS (SELECT 1 FROM revocations r "
	"  WHERE r.scope = 'agent' AND r.serial = $2), "
	"c.not_after <= now() "
	"FROM agent_identities i LEFT JOIN agent_certs c ON c.serial = $2 AND c.agent_name = "
	"i.name "
	"WHERE i.name = $1 FOR UPDATE OF i";

/* Lock the identity's row and check it and the serial. */
static enroll_result_t check_renewal(db_t *db, const char *identity, const char *serial,
				     renew_output_t *out)
{
	const char *p[] = {identity, serial};
	PGresult *r = run(db, SQL_RENEW, 2, p);
	if (!r)
		return refuse(out->error, out->log, ENROLL_DB_ERROR, "renewal of %s: %s", identity,
			      db->err);
	enroll_result_t rc = ENROLL_OK;
	const char *why = NULL;
	if (PQntuples(r) != 1) {
		rc = ENROLL_NOT_MANAGED;
		why = "the identity was not enrolled (its certificate is not renewed here)";
	} else if (is_true(r, 0, 0)) {
		rc = ENROLL_REVOKED;
		why = "the identity is revoked";
	} else if (!is_true(r, 0, 1)) {
		rc = ENROLL_UNKNOWN_CERT;
		why = "the certificate was not issued to this identity by enrollment";
	} else if (is_true(r, 0, 2)) {
		rc = ENROLL_REVOKED;
		why = "the certificate is revoked";
	} else if (is_true(r, 0, 3)) {
		rc = ENROLL_EXPIRED;
		why = "the certificate has expired";
	}
	PQclear(r);
	if (rc == ENROLL_OK)
		return rc;
	snprintf(out->error, sizeof(out->error), "renewal refused: %s", why);
	return refuse(out->error, out->log, rc, "renewal of %s (serial %s): %s", identity, serial,
		      why);
}

enroll_result_t enrolldb_renew(PGconn *pg, const issuer_t *iss, const char *identity,
			       const char *serial_hex, EVP_PKEY *pub, int64_t lifetime_ms,
			       renew_output_t *out)
{
	db_t d = {.pg = pg}, *db = &d;
	memset(out, 0, sizeof(*out));
	char serial[ISSUER_SERIAL_HEX_MAX + 1];
	size_t sl = serial_hex ? strnlen(serial_hex, sizeof(serial)) : 0;
	if (!identity || !identity[0] || sl == 0 || sl >= sizeof(serial) || !pub) {
		snprintf(out->error, sizeof(out->error), "renewal refused: bad request");
		return refuse(out->error, out->log, ENROLL_BAD_REQUEST, "renewal: bad arguments");
	}
	for (size_t i = 0; i <= sl; i++)
		serial[i] = (char)(serial_hex[i] >= 'A' && serial_hex[i] <= 'F'
					   ? serial_hex[i] - 'A' + 'a'
					   : serial_hex[i]);
	if (begin(db) != 0)
		return refuse(out->error, out->log, ENROLL_DB_ERROR, "renewal of %s: %s", identity,
			      db->err);
	enroll_result_t rc = check_renewal(db, identity, serial, out);
	if (rc == ENROLL_OK)
		rc = sign_and_record(db, iss, identity, pub, lifetime_ms, "renew", NULL, &out->cert,
				     out->error, out->log);
	if (rc == ENROLL_OK && exec0(db, "COMMIT", 0, NULL) != 0)
		rc = refuse(out->error, out->log, ENROLL_DB_ERROR, "renewal of %s: commit: %s",
			    identity, db->err);
	if (rc != ENROLL_OK) {
		issuer_cert_clear(&out->cert);
		rollback(db);
	}
	if (rc == ENROLL_DB_ERROR || rc == ENROLL_ISSUE_FAILED)
		snprintf(out->error, sizeof(out->error), "renewal failed: %s",
			 rc == ENROLL_DB_ERROR
				 ? "the collector's database is unavailable; try again later"
				 : ISSUE_ERROR_TEXT);
	return rc;
}

void renew_output_clear(renew_output_t *out)
{
	if (!out)
		return;
	issuer_cert_clear(&out->cert);
	memset(out, 0, sizeof(*out));
}

/* ---- join tokens ------------------------------------------------------------------ */

#define TS_FMT "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'"

static const char SQL_TOKEN_CREATE[] =
	"INSERT INTO enroll_tokens (id, secret_sha256, uses_max, expires_at, labels, name_pattern, "
	"created_by) VALUES ($1, decode($2, 'hex'), $3::int, now() + $4::bigint * interval '1 "
	"second', $5::jsonb, $6, $7) RETURNING to_char(expires_at AT TIME ZONE 'UTC', " TS_FMT ")";

int enrolldb_token_create(PGconn *pg, const char *id, const uint8_t hash[TOKEN_HASH_LEN],
			  const enrolldb_token_spec_t *spec, char *expires_at, size_t expires_len,
			  char *err, size_t errlen)
{
	db_t d = {.pg = pg}, *db = &d;
	char hex[2 * TOKEN_HASH_LEN + 1], uses[24], secs[24];
	hex_encode(hash, TOKEN_HASH_LEN, hex);
	snprintf(uses, sizeof(uses), "%lld", (long long)spec->uses_max);
	snprintf(secs, sizeof(secs), "%lld", (long long)spec->expires_s);
	const char *p[] = {id,
			   hex,
			   spec->uses_max > 0 ? uses : NULL,
			   secs,
			   spec->labels_json ? spec->labels_json : "{}",
			   spec->name_pattern && spec->name_pattern[0] ? spec->name_pattern : NULL,
			   spec->created_by ? spec->created_by : ""};
	PGresult *r = PQstatus(db->pg) == CONNECTION_OK ? run(db, SQL_TOKEN_CREATE, 7, p) : NULL;
	if (!r || PQntuples(r) != 1) {
		snprintf(err, errlen, "%s", r ? "no row stored" : db->err);
		PQclear(r);
		return -1;
	}
	snprintf(expires_at, expires_len, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

static const char SQL_TOKEN_LIST[] =
	"SELECT id, CASE WHEN revoked_at IS NOT NULL THEN 'revoked' "
	"WHEN expires_at <= now() THEN 'expired' "
	"WHEN uses_max IS NOT NULL AND uses >= uses_max THEN 'used up' ELSE 'active' END, "
	"uses::text, coalesce(uses_max::text, 'unlimited'), "
	"to_char(expires_at AT TIME ZONE 'UTC', " TS_FMT "), "
	"to_char(created_at AT TIME ZONE 'UTC', " TS_FMT "), created_by, labels::text, "
	"coalesce(name_pattern, '') FROM enroll_tokens ORDER BY created_at DESC, id";

int enrolldb_token_list(PGconn *pg, enrolldb_token_fn fn, void *ctx, char *err, size_t errlen)
{
	db_t d = {.pg = pg}, *db = &d;
	PGresult *r = PQstatus(db->pg) == CONNECTION_OK ? run(db, SQL_TOKEN_LIST, 0, NULL) : NULL;
	if (!r) {
		snprintf(err, errlen, "%s", db->err);
		return -1;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		enrolldb_token_row_t row = {
			PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
			PQgetvalue(r, i, 3), PQgetvalue(r, i, 4), PQgetvalue(r, i, 5),
			PQgetvalue(r, i, 6), PQgetvalue(r, i, 7), PQgetvalue(r, i, 8),
		};
		fn(ctx, &row);
	}
	PQclear(r);
	return 0;
}

int enrolldb_token_revoke(PGconn *pg, const char *id, char *err, size_t errlen)
{
	db_t d = {.pg = pg}, *db = &d;
	const char *p[] = {id};
	PGresult *r = PQstatus(db->pg) == CONNECTION_OK
			      ? run(db,
				    "UPDATE enroll_tokens SET revoked_at = now() "
				    "WHERE id = $1 AND revoked_at IS NULL",
				    1, p)
			      : NULL;
	if (!r) {
		snprintf(err, errlen, "%s", db->err);
		return -1;
	}
	int n = atoi(PQcmdTuples(r));
	PQclear(r);
	return n > 0 ? 1 : 0;
}
