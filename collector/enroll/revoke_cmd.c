// SPDX-License-Identifier: Apache-2.0
/*
 * `vigil-collector agent` and `operator` (see revoke_cmd.h). Revoking
 * writes one row of the revocations table (its trigger notifies every
 * collector) and, for an enrolled agent, marks its identity and
 * certificates revoked in the same transaction. The enrollment tables
 * (agent_identities, agent_certs) are used when they exist; an agent with
 * a hand-made certificate has no rows there and its name row is enough.
 * Everything printed that an agent chose (names, host names) is escaped
 * for the terminal.
 */
#include "enroll/revoke_cmd.h"

#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "collector.h"
#include "tls.h"
#include "utf8.h"

#define NAME_MAX_BYTES 255
#define REASON_MAX_BYTES 1000
#define CELL_MAX 1024
#define MAX_COLS 12

typedef struct {
	PGconn *pg;
	const char *cmd; /* "agent" or "operator", for messages */
	bool enrolled;	 /* agent_identities and agent_certs exist */
} cmd_t;

/* in escaped for a terminal into out. */
static const char *esc(const char *in, char *out, size_t outlen)
{
	utf8_escape_controls(out, outlen, in, strlen(in));
	return out;
}

/* The first line of a libpq message, escaped into out. */
static const char *esc_line(const char *in, char *out, size_t outlen)
{
	utf8_escape_controls(out, outlen, in, strcspn(in, "\n"));
	return out;
}

/* Run sql with params; the result if its status is want, else NULL after
 * printing why. */
static PGresult *run(cmd_t *c, const char *sql, int n, const char *const *params,
		     ExecStatusType want)
{
	PGresult *res = PQexecParams(c->pg, sql, n, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == want)
		return res;
	char msg[512];
	fprintf(stderr, "vigil-collector %s: %s\n", c->cmd,
		esc_line(PQresultErrorMessage(res), msg, sizeof(msg)));
	PQclear(res);
	return NULL;
}

static bool run_ok(cmd_t *c, const char *sql, int n, const char *const *params)
{
	PGresult *res = run(c, sql, n, params, PGRES_COMMAND_OK);
	PQclear(res);
	return res != NULL;
}

/* The one boolean a query returns; -1 if it failed. */
static int run_bool(cmd_t *c, const char *sql, int n, const char *const *params)
{
	PGresult *res = run(c, sql, n, params, PGRES_TUPLES_OK);
	if (!res)
		return -1;
	int v = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return v;
}

/* Print res as a table under its column names, the columns aligned. */
static void print_table(const PGresult *res)
{
	int rows = PQntuples(res), cols = PQnfields(res);
	if (cols > MAX_COLS)
		cols = MAX_COLS;
	size_t w[MAX_COLS];
	char cell[CELL_MAX];
	for (int j = 0; j < cols; j++) {
		w[j] = strlen(PQfname(res, j));
		for (int i = 0; i < rows; i++) {
			size_t l = strlen(esc(PQgetvalue(res, i, j), cell, sizeof(cell)));
			if (l > w[j])
				w[j] = l;
		}
	}
	for (int i = -1; i < rows; i++) {
		for (int j = 0; j < cols; j++) {
			const char *v = i < 0 ? PQfname(res, j)
					      : esc(PQgetvalue(res, i, j), cell, sizeof(cell));
			if (j == cols - 1)
				printf("%s\n", v);
			else
				printf("%-*s  ", (int)w[j], v);
		}
	}
}

/* Print the one row of res as "column: value" lines. */
static void print_record(const PGresult *res)
{
	char cell[CELL_MAX];
	for (int j = 0; j < PQnfields(res); j++)
		printf("%-16s %s\n", PQfname(res, j),
		       PQgetisnull(res, 0, j) ? "-"
					      : esc(PQgetvalue(res, 0, j), cell, sizeof(cell)));
}

/* Who runs the command: the user sudo was run by, or our own. */
static const char *who(void)
{
	const char *u = getenv("SUDO_USER");
	if (u && u[0])
		return u;
	struct passwd *pw = getpwuid(getuid());
	return pw ? pw->pw_name : "unknown";
}

/* A name as a certificate CN can carry it: 1 to NAME_MAX_BYTES bytes of
 * UTF-8 without control characters. */
static bool name_valid(const char *s)
{
	size_t n = strlen(s);
	char probe[NAME_MAX_BYTES + 1];
	if (n < 1 || n > NAME_MAX_BYTES || !utf8_valid(s, n))
		return false;
	memcpy(probe, s, n + 1);
	return utf8_sanitize(probe) == 0;
}

static int usage(const char *cmd)
{
	if (strcmp(cmd, "agent") == 0)
		fprintf(stderr,
			"usage: vigil-collector agent list\n"
			"       vigil-collector agent show NAME\n"
			"       vigil-collector agent revoke NAME [--reason TEXT]\n"
			"       vigil-collector agent revoke --serial HEX [--reason TEXT]\n");
	else
		fprintf(stderr,
			"usage: vigil-collector operator list\n"
			"       vigil-collector operator revoke CN [--reason TEXT]\n"
			"       vigil-collector operator revoke --serial HEX [--reason TEXT]\n");
	return 2;
}

/* ---- agent list / show ---- */

/* Times are printed in UTC to the second (the session's TimeZone is UTC). */
static const char sql_list_enrolled[] =
	"WITH n AS (SELECT name FROM agents UNION SELECT name FROM agent_identities) "
	"SELECT n.name AS \"NAME\", coalesce(a.hostname, '-') AS \"HOST\", "
	"coalesce(date_trunc('second', a.last_seen)::text, 'never') AS \"LAST SEEN\", "
	"CASE WHEN i.name IS NULL THEN 'no' ELSE 'yes' END AS \"ENROLLED\", "
	"coalesce((SELECT date_trunc('second', max(k.not_after))::text FROM agent_certs k "
	"WHERE k.agent_name = n.name AND k.revoked_at IS NULL), '-') AS \"CERT NOT AFTER\", "
	"CASE WHEN i.revoked_at IS NOT NULL OR EXISTS (SELECT 1 FROM revocations r "
	"WHERE r.scope = 'agent' AND r.name = n.name) THEN 'yes' ELSE 'no' END AS \"REVOKED\" "
	"FROM n LEFT JOIN agents a ON a.name = n.name "
	"LEFT JOIN agent_identities i ON i.name = n.name ORDER BY n.name";

static const char sql_list_plain[] =
	"SELECT a.name AS \"NAME\", coalesce(a.hostname, '-') AS \"HOST\", "
	"date_trunc('second', a.last_seen) AS \"LAST SEEN\", 'no' AS \"ENROLLED\", "
	"'-' AS \"CERT NOT AFTER\", CASE WHEN EXISTS (SELECT 1 FROM revocations r "
	"WHERE r.scope = 'agent' AND r.name = a.name) THEN 'yes' ELSE 'no' END AS \"REVOKED\" "
	"FROM agents a ORDER BY a.name";

static const char sql_show_agent[] =
	"SELECT name, hostname, agent_version, os, kernel, boot_id, protocol_version, "
	"date_trunc('second', first_seen) AS first_seen, "
	"date_trunc('second', last_seen) AS last_seen, "
	"date_trunc('second', last_hello) AS last_hello FROM agents WHERE name = $1";

static const char sql_show_identity[] =
	"SELECT machine_id, labels::text AS labels, token_id, "
	"date_trunc('second', enrolled_at) AS enrolled_at, "
	"date_trunc('second', revoked_at) AS revoked_at, revoke_reason "
	"FROM agent_identities WHERE name = $1";

static const char sql_show_certs[] =
	"SELECT k.serial AS \"SERIAL\", k.kind AS \"KIND\", "
	"date_trunc('second', k.not_before) AS \"NOT BEFORE\", "
	"date_trunc('second', k.not_after) AS \"NOT AFTER\", "
	"CASE WHEN k.revoked_at IS NOT NULL OR EXISTS (SELECT 1 FROM revocations r "
	"WHERE r.scope = 'agent' AND ltrim(lower(r.serial), '0') = ltrim(lower(k.serial), '0')) "
	"THEN 'revoked' WHEN k.not_after < now() THEN 'expired' ELSE 'valid' END AS \"STATE\" "
	"FROM agent_certs k WHERE k.agent_name = $1 ORDER BY k.issued_at";

static const char sql_show_revs_enrolled[] =
	"SELECT date_trunc('second', r.revoked_at) AS \"REVOKED AT\", "
	"CASE WHEN r.name IS NOT NULL THEN 'identity' ELSE 'certificate ' || r.serial END "
	"AS \"WHAT\", r.revoked_by AS \"BY\", r.reason AS \"REASON\" FROM revocations r "
	"WHERE r.scope = 'agent' AND (r.name = $1 OR ltrim(lower(r.serial), '0') IN "
	"(SELECT ltrim(lower(serial), '0') FROM agent_certs WHERE agent_name = $1)) "
	"ORDER BY r.id";

static const char sql_show_revs_plain[] =
	"SELECT date_trunc('second', r.revoked_at) AS \"REVOKED AT\", 'identity' AS \"WHAT\", "
	"r.revoked_by AS \"BY\", r.reason AS \"REASON\" FROM revocations r "
	"WHERE r.scope = 'agent' AND r.name = $1 ORDER BY r.id";

static int agent_list(cmd_t *c)
{
	PGresult *res =
		run(c, c->enrolled ? sql_list_enrolled : sql_list_plain, 0, NULL, PGRES_TUPLES_OK);
	if (!res)
		return 1;
	print_table(res);
	int n = PQntuples(res), revoked = 0;
	for (int i = 0; i < n; i++)
		revoked += strcmp(PQgetvalue(res, i, 5), "yes") == 0;
	fprintf(stderr, "%d agent(s), %d revoked\n", n, revoked);
	PQclear(res);
	return 0;
}

/* Print what agent_show read about name. */
static void print_agent(const char *name, PGresult *agent, PGresult *ident, PGresult *certs,
			PGresult *revs)
{
	char shown[CELL_MAX];
	printf("agent %s: %s\n", esc(name, shown, sizeof(shown)),
	       PQntuples(revs) > 0 ? "REVOKED" : "not revoked");
	if (PQntuples(agent) == 1)
		print_record(agent);
	else
		printf("(has never connected)\n");
	if (ident && PQntuples(ident) == 1) {
		printf("\nenrolled identity:\n");
		print_record(ident);
	} else {
		printf("\nnot enrolled (a certificate made outside Vigil)\n");
	}
	if (certs && PQntuples(certs) > 0) {
		printf("\ncertificates:\n");
		print_table(certs);
	}
	if (PQntuples(revs) > 0) {
		printf("\nrevocations:\n");
		print_table(revs);
	}
}

static int agent_show(cmd_t *c, const char *name)
{
	const char *p[] = {name};
	PGresult *agent = run(c, sql_show_agent, 1, p, PGRES_TUPLES_OK);
	PGresult *ident = NULL, *certs = NULL, *revs = NULL;
	int rc = 1;
	if (agent && c->enrolled) {
		ident = run(c, sql_show_identity, 1, p, PGRES_TUPLES_OK);
		certs = ident ? run(c, sql_show_certs, 1, p, PGRES_TUPLES_OK) : NULL;
	}
	if (agent && (!c->enrolled || certs))
		revs = run(c, c->enrolled ? sql_show_revs_enrolled : sql_show_revs_plain, 1, p,
			   PGRES_TUPLES_OK);
	if (revs && PQntuples(agent) == 0 && (!ident || PQntuples(ident) == 0) &&
	    PQntuples(revs) == 0) {
		char shown[CELL_MAX];
		fprintf(stderr, "vigil-collector agent show: no agent named '%s'\n",
			esc(name, shown, sizeof(shown)));
	} else if (revs) {
		print_agent(name, agent, ident, certs, revs);
		rc = 0;
	}
	PQclear(agent);
	PQclear(ident);
	PQclear(certs);
	PQclear(revs);
	return rc;
}

/* ---- revoking ---- */

/* Certificates are compared by serial without leading zeros, as the
 * collectors compare them. */
static const char sql_mark_serial[] =
	"WITH u AS (UPDATE agent_certs SET revoked_at = now() "
	"WHERE ltrim(lower(serial), '0') = $1 AND revoked_at IS NULL) "
	"SELECT agent_name FROM agent_certs WHERE ltrim(lower(serial), '0') = $1";

/* Mark the enrolled identity name (or the certificate with key serial)
 * revoked and say what changed. Return 0 or -1. */
static int mark_enrolled(cmd_t *c, const char *name, const char *serial, const char *reason)
{
	char e1[CELL_MAX];
	if (name) {
		const char *p[] = {name, reason};
		PGresult *a = run(c,
				  "UPDATE agent_identities SET revoked_at = now(), revoke_reason = "
				  "$2 WHERE name = $1 AND revoked_at IS NULL",
				  2, p, PGRES_COMMAND_OK);
		PGresult *k = a ? run(c,
				      "UPDATE agent_certs SET revoked_at = now() WHERE agent_name "
				      "= $1 AND revoked_at IS NULL",
				      1, p, PGRES_COMMAND_OK)
				: NULL;
		if (k && (atoi(PQcmdTuples(a)) > 0 || atoi(PQcmdTuples(k)) > 0))
			fprintf(stderr,
				"enrolled identity marked revoked, with %s certificate(s)\n",
				PQcmdTuples(k));
		PQclear(a);
		PQclear(k);
		return k ? 0 : -1;
	}
	const char *p[] = {serial};
	PGresult *k = run(c, sql_mark_serial, 1, p, PGRES_TUPLES_OK);
	if (!k)
		return -1;
	if (PQntuples(k) > 0)
		fprintf(stderr, "the certificate was issued to agent '%s'\n",
			esc(PQgetvalue(k, 0, 0), e1, sizeof(e1)));
	else
		fprintf(stderr, "no enrolled certificate has this serial; it is refused wherever "
				"it is presented\n");
	PQclear(k);
	return 0;
}

static int revoke_one(cmd_t *c, const char *scope, const char *name, const char *serial_in,
		      const char *reason)
{
	char serial[TLS_SERIAL_HEX_MAX], shown[CELL_MAX];
	if (serial_in && collector_serial_normalize(serial_in, serial, sizeof(serial)) != 0) {
		fprintf(stderr, "vigil-collector %s revoke: --serial takes a serial in hex\n",
			c->cmd);
		return 2;
	}
	if (name && !name_valid(name)) {
		fprintf(stderr,
			"vigil-collector %s revoke: a name is 1 to %d bytes of UTF-8 without "
			"control characters\n",
			c->cmd, NAME_MAX_BYTES);
		return 2;
	}
	char why[REASON_MAX_BYTES + 1];
	snprintf(why, sizeof(why), "%s", reason ? reason : "");
	if (!utf8_valid(why, strlen(why)))
		why[0] = '\0';
	utf8_sanitize(why);
	const char *key = name ? name : serial;
	esc(key, shown, sizeof(shown));
	if (!run_ok(c, "BEGIN", 0, NULL))
		return 1;
	const char *pe[] = {scope, key};
	int exists =
		run_bool(c,
			 name ? "SELECT EXISTS (SELECT 1 FROM revocations WHERE scope = $1 AND "
				"name = $2)"
			      : "SELECT EXISTS (SELECT 1 FROM revocations WHERE scope = $1 AND "
				"ltrim(lower(serial), '0') = ltrim($2, '0'))",
			 2, pe);
	if (exists < 0)
		return 1;
	const char *pi[] = {scope, name, name ? NULL : serial, why, who()};
	if (!exists && !run_ok(c,
			       "INSERT INTO revocations (scope, name, serial, reason, revoked_by) "
			       "VALUES ($1, $2, $3, $4, $5)",
			       5, pi))
		return 1;
	if (strcmp(scope, "agent") == 0 && c->enrolled &&
	    mark_enrolled(c, name, name ? NULL : serial, why) != 0)
		return 1;
	const char *pk[] = {name};
	int known =
		name && strcmp(scope, "agent") == 0
			? run_bool(c,
				   c->enrolled ? "SELECT EXISTS (SELECT 1 FROM agents WHERE name "
						 "= $1) OR EXISTS (SELECT 1 FROM "
						 "agent_identities WHERE name = $1)"
					       : "SELECT EXISTS (SELECT 1 FROM agents WHERE name "
						 "= $1)",
				   1, pk)
			: 1;
	if (known < 0 || !run_ok(c, "COMMIT", 0, NULL))
		return 1;
	const char *what = strcmp(scope, "agent") == 0
				   ? (name ? "agent" : "agent certificate")
				   : (name ? "operator certificate CN" : "operator certificate");
	if (exists)
		fprintf(stderr, "%s '%s' was already revoked\n", what, shown);
	else
		fprintf(stderr,
			"revoked %s '%s'; every collector applies it within 10 s (and closes "
			"its live connections)\n",
			what, shown);
	if (!known)
		fprintf(stderr,
			"note: no agent named '%s' has connected or enrolled yet; the "
			"name stays revoked\n",
			shown);
	return 0;
}

static int operator_list(cmd_t *c)
{
	PGresult *res = run(c,
			    "SELECT date_trunc('second', revoked_at) AS \"REVOKED AT\", "
			    "coalesce(name, '-') AS \"CN\", coalesce(serial, '-') AS \"SERIAL\", "
			    "revoked_by AS \"BY\", reason AS \"REASON\" FROM revocations "
			    "WHERE scope = 'operator' ORDER BY id",
			    0, NULL, PGRES_TUPLES_OK);
	if (!res)
		return 1;
	print_table(res);
	fprintf(stderr, "%d operator revocation(s)\n", PQntuples(res));
	PQclear(res);
	return 0;
}

static int dispatch(cmd_t *c, int argc, char **argv, const revoke_opts_t *o)
{
	bool agent = strcmp(c->cmd, "agent") == 0;
	const char *sub = argc > 0 ? argv[0] : "";
	if (strcmp(sub, "list") == 0 && argc == 1 && !o->serial && !o->reason)
		return agent ? agent_list(c) : operator_list(c);
	if (agent && strcmp(sub, "show") == 0 && argc == 2 && !o->serial && !o->reason)
		return agent_show(c, argv[1]);
	if (strcmp(sub, "revoke") == 0 && (argc == 2) != (o->serial != NULL) && argc <= 2)
		return revoke_one(c, agent ? "agent" : "operator", argc == 2 ? argv[1] : NULL,
				  o->serial, o->reason);
	return usage(c->cmd);
}

int revoke_command(const settings_t *s, const char *command, int argc, char **argv,
		   const revoke_opts_t *o)
{
	cmd_t c = {.cmd = command};
	const char *keys[] = {"dbname", "application_name", NULL};
	const char *vals[] = {s->db, "vigil-collector-cli", NULL};
	c.pg = PQconnectdbParams(keys, vals, 1);
	int rc = 1;
	if (PQstatus(c.pg) != CONNECTION_OK) {
		char msg[512];
		fprintf(stderr, "vigil-collector %s: %s\n", command,
			esc_line(PQerrorMessage(c.pg), msg, sizeof(msg)));
		goto out;
	}
	PQclear(PQexec(c.pg, "SET TimeZone = 'UTC'"));
	int e = run_bool(&c,
			 "SELECT to_regclass('agent_identities') IS NOT NULL AND "
			 "to_regclass('agent_certs') IS NOT NULL",
			 0, NULL);
	if (e < 0)
		goto out;
	c.enrolled = e == 1;
	rc = dispatch(&c, argc, argv, o);
out:
	PQfinish(c.pg);
	return rc;
}
