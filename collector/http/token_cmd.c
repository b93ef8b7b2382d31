// SPDX-License-Identifier: Apache-2.0
/* API token subcommands (see token_cmd.h). The token is printed once and
 * only its SHA-256 is stored. Revoking a token ends its status page
 * sessions in the same statement. */
#include "http/token_cmd.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "http/apidb.h"
#include "http/auth.h"

#define CMD_TIMEOUT_MS 30000

static int run(apidb_conn_t *c, apidb_job_t *j)
{
	apidb_run(c, j);
	if (j->status != APIDB_OK) {
		fprintf(stderr, "vigil-collector token: %s\n", j->error);
		return -1;
	}
	return 0;
}

static int create(apidb_conn_t *c, const token_opts_t *o)
{
	if (!o->name || !auth_name_valid(o->name)) {
		fprintf(stderr, "vigil-collector token create: --name must be 1 to 64 of "
				"A-Z a-z 0-9 . _ @ -\n");
		return 2;
	}
	auth_role_t role = auth_role_parse(o->role);
	if (role == AUTH_ROLE_NONE) {
		fprintf(stderr, "vigil-collector token create: --role must be viewer or admin\n");
		return 2;
	}
	int64_t secs = 0;
	if (o->expires && auth_parse_duration(o->expires, &secs) != 0) {
		fprintf(stderr, "vigil-collector token create: --expires takes a duration such "
				"as 30d, 12h or 2w\n");
		return 2;
	}
	char token[AUTH_TOKEN_LEN + 1], hash[AUTH_HASH_LEN + 1], exp[32];
	if (auth_token_generate(token) != 0) {
		fprintf(stderr, "vigil-collector token create: no random bytes\n");
		return 1;
	}
	auth_token_hash(token, hash);
	snprintf(exp, sizeof(exp), "%" PRId64, secs);
	apidb_job_t *j = apidb_job_new(
		"INSERT INTO api_tokens (name, hash, role, expires_at) VALUES ($1, $2, $3, "
		"CASE WHEN $4::bigint > 0 THEN now() + $4::bigint * interval '1 second' END) "
		"RETURNING coalesce(to_char(expires_at, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
		"'never')");
	int rc = 1;
	if (j && apidb_job_param(j, o->name) == 0 && apidb_job_param(j, hash) == 0 &&
	    apidb_job_param(j, auth_role_name(role)) == 0 && apidb_job_param(j, exp) == 0) {
		apidb_run(c, j);
		if (j->status == APIDB_OK && j->n_rows == 1) {
			fprintf(stderr,
				"created token '%s' (role %s, expires %s); it is shown only "
				"once:\n",
				o->name, auth_role_name(role), apidb_cell(j, 0, 0));
			printf("%s\n", token);
			rc = 0;
		} else if (strcmp(j->sqlstate, "23505") == 0) {
			fprintf(stderr,
				"vigil-collector token create: a token named '%s' exists; "
				"revoke it first\n",
				o->name);
		} else {
			fprintf(stderr, "vigil-collector token create: %s\n", j->error);
		}
	}
	apidb_job_free(j);
	return rc;
}

static int list(apidb_conn_t *c)
{
	apidb_job_t *j = apidb_job_new(
		"SELECT name, role, to_char(created_at, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
		"coalesce(to_char(expires_at, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), 'never'), "
		"CASE WHEN revoked_at IS NOT NULL THEN 'revoked' "
		"WHEN expires_at <= now() THEN 'expired' ELSE 'active' END "
		"FROM api_tokens ORDER BY name, created_at");
	if (!j || run(c, j) != 0) {
		apidb_job_free(j);
		return 1;
	}
	printf("%-24s %-7s %-21s %-21s %s\n", "NAME", "ROLE", "CREATED", "EXPIRES", "STATUS");
	for (size_t i = 0; i < j->n_rows; i++)
		printf("%-24s %-7s %-21s %-21s %s\n", apidb_cell(j, i, 0), apidb_cell(j, i, 1),
		       apidb_cell(j, i, 2), apidb_cell(j, i, 3), apidb_cell(j, i, 4));
	apidb_job_free(j);
	return 0;
}

static int revoke(apidb_conn_t *c, const char *name)
{
	apidb_job_t *j = apidb_job_new(
		"WITH t AS (UPDATE api_tokens SET revoked_at = now() "
		"WHERE name = $1 AND revoked_at IS NULL RETURNING id), "
		"s AS (DELETE FROM api_sessions WHERE token_id IN (SELECT id FROM t) RETURNING 1) "
		"SELECT (SELECT count(*) FROM s) FROM t");
	if (!j || apidb_job_param(j, name) != 0 || run(c, j) != 0) {
		apidb_job_free(j);
		return 1;
	}
	int rc = 0;
	if (j->n_rows == 0) {
		fprintf(stderr, "vigil-collector token revoke: no active token named '%s'\n", name);
		rc = 1;
	} else {
		fprintf(stderr, "revoked token '%s'; %s status page session(s) ended\n", name,
			apidb_cell(j, 0, 0));
	}
	apidb_job_free(j);
	return rc;
}

int token_command(const settings_t *s, int argc, char **argv, const token_opts_t *o)
{
	const char *sub = argc > 0 ? argv[0] : NULL;
	bool ok = sub &&
		  ((!strcmp(sub, "create") && argc == 1) || (!strcmp(sub, "list") && argc == 1) ||
		   (!strcmp(sub, "revoke") && argc == 2));
	if (!ok) {
		fprintf(stderr,
			"usage: vigil-collector token create --name NAME --role viewer|admin "
			"[--expires 30d]\n"
			"       vigil-collector token list\n"
			"       vigil-collector token revoke NAME\n"
			"       (with -c FILE or --db CONNINFO)\n");
		return 2;
	}
	char err[256];
	apidb_conn_t *c = apidb_connect(s->db, CMD_TIMEOUT_MS, err, sizeof(err));
	if (!c) {
		fprintf(stderr, "vigil-collector token: cannot connect: %s\n", err);
		return 1;
	}
	int rc;
	if (!strcmp(sub, "create"))
		rc = create(c, o);
	else if (!strcmp(sub, "list"))
		rc = list(c);
	else
		rc = revoke(c, argv[1]);
	apidb_close(c);
	return rc;
}
