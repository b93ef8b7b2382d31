// SPDX-License-Identifier: Apache-2.0
/*
 * `vigil-collector enroll-token` (see enroll_cmd.h): checks the options,
 * makes the token (token.c), stores its id and hash (enrolldb.c) and prints
 * it once. Labels become a JSON object of strings.
 */
#include "enroll/enroll_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "enroll/enrolldb.h"
#include "enroll/token.h"

#define MAX_USES 1000000
#define MAX_EXPIRES_S (INT64_C(366) * 86400)
#define MAX_LABELS 32
#define MAX_LABEL_KEY 63
#define MAX_LABEL_VALUE 253
#define MAX_PATTERN 255

static const char USAGE[] =
	"usage: vigil-collector enroll-token create [--uses N | --unlimited] [--expires 24h]\n"
	"                                           [--labels k=v,...] [--name-pattern GLOB]\n"
	"       vigil-collector enroll-token list\n"
	"       vigil-collector enroll-token revoke ID\n"
	"       (with -c FILE or --db CONNINFO)\n";

bool enroll_token_option(enroll_token_opts_t *o, int ch, const char *arg)
{
	if (ch == ENROLL_OPT_USES)
		o->uses = arg;
	else if (ch == ENROLL_OPT_UNLIMITED)
		o->unlimited = true;
	else if (ch == ENROLL_OPT_LABELS)
		o->labels = arg;
	else if (ch == ENROLL_OPT_NAME_PATTERN)
		o->name_pattern = arg;
	else
		return false;
	return true;
}

bool enroll_token_opts_set(const enroll_token_opts_t *o)
{
	return o->uses || o->unlimited || o->labels || o->name_pattern;
}

/* Parse "N" followed by s, m, h, d or w into seconds (1 s to 366 d). */
static int parse_duration(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	long long n = strtoll(s, &end, 10);
	if (errno || end == s || n <= 0 || s[0] == '+' || s[0] == ' ')
		return -1;
	int64_t unit = 0;
	if (!strcmp(end, "s"))
		unit = 1;
	else if (!strcmp(end, "m") || !strcmp(end, "min"))
		unit = 60;
	else if (!strcmp(end, "h"))
		unit = 3600;
	else if (!strcmp(end, "d"))
		unit = 86400;
	else if (!strcmp(end, "w"))
		unit = 7 * 86400;
	if (!unit || n > MAX_EXPIRES_S / unit)
		return -1;
	*out = n * unit;
	return 0;
}

static bool key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-' || c == '/';
}

/* Add one "k=v" (len bytes) to obj. Return 0, or -1 after saying why. */
static int add_label(json_t *obj, const char *kv, size_t len)
{
	const char *eq = memchr(kv, '=', len);
	size_t kl = eq ? (size_t)(eq - kv) : 0, vl = eq ? len - kl - 1 : 0;
	bool ok = eq && kl >= 1 && kl <= MAX_LABEL_KEY && vl <= MAX_LABEL_VALUE;
	for (size_t i = 0; ok && i < kl; i++)
		ok = key_char(kv[i]);
	for (size_t i = 0; ok && i < vl; i++)
		ok = eq[1 + i] >= 0x20 && eq[1 + i] < 0x7f;
	if (!ok) {
		fprintf(stderr,
			"vigil-collector enroll-token create: --labels takes k=v,... (keys of 1 "
			"to %d of A-Z a-z 0-9 . _ - /, values of printable ASCII up to %d bytes)\n",
			MAX_LABEL_KEY, MAX_LABEL_VALUE);
		return -1;
	}
	char key[MAX_LABEL_KEY + 1];
	memcpy(key, kv, kl);
	key[kl] = '\0';
	if (json_object_get(obj, key)) {
		fprintf(stderr, "vigil-collector enroll-token create: label '%s' given twice\n",
			key);
		return -1;
	}
	if (json_object_set_new(obj, key, json_stringn(eq + 1, vl)) != 0) {
		fprintf(stderr, "vigil-collector enroll-token create: out of memory\n");
		return -1;
	}
	return 0;
}

/* The JSON text of --labels (malloc'd), or NULL after saying why. */
static char *labels_json(const char *labels)
{
	json_t *obj = json_object();
	if (!obj)
		return NULL;
	const char *p = labels ? labels : "";
	int rc = 0;
	while (rc == 0 && *p) {
		size_t l = strcspn(p, ",");
		rc = add_label(obj, p, l);
		p += l;
		if (*p == ',' && *++p == '\0')
			rc = add_label(obj, p, 0); /* a trailing ',' is an empty label */
	}
	if (rc == 0 && json_object_size(obj) > MAX_LABELS) {
		fprintf(stderr, "vigil-collector enroll-token create: at most %d labels\n",
			MAX_LABELS);
		rc = -1;
	}
	char *text = rc == 0 ? json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(obj);
	return text;
}

/* Who made the token: the user sudo ran as if set, else the effective user. */
static void creator(char *out, size_t outlen)
{
	const char *sudo = getenv("SUDO_USER");
	if (sudo && sudo[0] && strlen(sudo) <= 64 &&
	    strspn(sudo, "abcdefghijklmnopqrstuvwxyz"
			 "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789._-@$") == strlen(sudo)) {
		snprintf(out, outlen, "%s", sudo);
		return;
	}
	struct passwd *pw = getpwuid(geteuid());
	if (pw && pw->pw_name)
		snprintf(out, outlen, "%s", pw->pw_name);
	else
		snprintf(out, outlen, "uid %u", (unsigned)geteuid());
}

/* Check the options of create into spec (labels_json malloc'd). Return 0,
 * or 2 after saying why. */
static int create_spec(const enroll_token_opts_t *o, enrolldb_token_spec_t *spec)
{
	spec->uses_max = 1;
	if (o->unlimited && o->uses) {
		fprintf(stderr, "vigil-collector enroll-token create: --uses or --unlimited, not "
				"both\n");
		return 2;
	}
	if (o->unlimited)
		spec->uses_max = 0;
	char *end;
	if (o->uses && (spec->uses_max = strtoll(o->uses, &end, 10),
			*end || end == o->uses || spec->uses_max < 1 || spec->uses_max > MAX_USES ||
				o->uses[0] == '+')) {
		fprintf(stderr, "vigil-collector enroll-token create: --uses takes 1 to %d\n",
			MAX_USES);
		return 2;
	}
	spec->expires_s = 86400;
	if (o->expires && parse_duration(o->expires, &spec->expires_s) != 0) {
		fprintf(stderr, "vigil-collector enroll-token create: --expires takes a duration "
				"such as 30m, 24h or 7d (at most 366d)\n");
		return 2;
	}
	const char *pat = o->name_pattern;
	bool pat_ok = !pat || (pat[0] && strlen(pat) <= MAX_PATTERN);
	for (size_t i = 0; pat_ok && pat && pat[i]; i++)
		pat_ok = pat[i] > 0x20 && pat[i] < 0x7f;
	if (!pat_ok) {
		fprintf(stderr, "vigil-collector enroll-token create: --name-pattern takes a glob "
				"of 1 to 255 printable characters\n");
		return 2;
	}
	spec->name_pattern = pat;
	if (!(spec->labels_json = labels_json(o->labels)))
		return 2;
	return 0;
}

static int create_token(PGconn *pg, const enroll_token_opts_t *o)
{
	enrolldb_token_spec_t spec = {0};
	int rc = create_spec(o, &spec);
	if (rc != 0)
		return rc;
	char who[80], text[TOKEN_LEN + 1], id[TOKEN_ID_LEN + 1], expires[40], err[512];
	uint8_t hash[TOKEN_HASH_LEN];
	creator(who, sizeof(who));
	spec.created_by = who;
	rc = 1;
	if (token_generate(text, id, hash) != 0) {
		fprintf(stderr, "vigil-collector enroll-token create: no random bytes\n");
	} else if (enrolldb_token_create(pg, id, hash, &spec, expires, sizeof(expires), err,
					 sizeof(err)) != 0) {
		fprintf(stderr, "vigil-collector enroll-token create: %s\n", err);
	} else {
		char uses[24];
		snprintf(uses, sizeof(uses), "%" PRId64, spec.uses_max);
		fprintf(stderr,
			"created enrollment token %s (uses %s, expires %s, labels %s%s%s); it is "
			"shown only once:\n",
			id, spec.uses_max ? uses : "unlimited", expires,
			(const char *)spec.labels_json, spec.name_pattern ? ", name pattern " : "",
			spec.name_pattern ? spec.name_pattern : "");
		printf("%s\n", text);
		fflush(stdout);
		rc = 0;
	}
	OPENSSL_cleanse(text, sizeof(text));
	free((char *)spec.labels_json);
	return rc;
}

static void list_row(void *ctx, const enrolldb_token_row_t *r)
{
	(void)ctx;
	printf("%-16s  %-7s  %5s/%-9s  %-20s  %-20s  %-16s  %-16s  %s\n", r->id, r->status, r->uses,
	       r->uses_max, r->expires_at, r->created_at, r->created_by,
	       r->name_pattern[0] ? r->name_pattern : "-", r->labels);
}

static int list_tokens(PGconn *pg)
{
	char err[512];
	printf("%-16s  %-7s  %15s  %-20s  %-20s  %-16s  %-16s  %s\n", "ID", "STATUS", "USES/MAX",
	       "EXPIRES", "CREATED", "CREATED BY", "NAME PATTERN", "LABELS");
	if (enrolldb_token_list(pg, list_row, NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "vigil-collector enroll-token list: %s\n", err);
		return 1;
	}
	return 0;
}

static int revoke_token(PGconn *pg, const char *arg)
{
	char id[TOKEN_ID_LEN + 1], err[512];
	token_parts_t t;
	if (token_id_valid(arg)) {
		snprintf(id, sizeof(id), "%s", arg);
	} else if (token_parse(arg, strlen(arg), &t) == 0) { /* the whole token */
		snprintf(id, sizeof(id), "%s", t.id);
		token_clear(&t);
	} else {
		fprintf(stderr, "vigil-collector enroll-token revoke: ID is the 16 hex characters "
				"after vgj_\n");
		return 2;
	}
	int rc = enrolldb_token_revoke(pg, id, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "vigil-collector enroll-token revoke: %s\n", err);
		return 1;
	}
	if (rc == 0) {
		fprintf(stderr, "vigil-collector enroll-token revoke: no unrevoked token %s\n", id);
		return 1;
	}
	fprintf(stderr, "revoked enrollment token %s\n", id);
	return 0;
}

int enroll_token_command(const settings_t *s, int argc, char **argv, const enroll_token_opts_t *o)
{
	const char *sub = argc > 0 ? argv[0] : NULL;
	bool create_cmd = sub && !strcmp(sub, "create") && argc == 1;
	bool ok = create_cmd || (sub && !strcmp(sub, "list") && argc == 1) ||
		  (sub && !strcmp(sub, "revoke") && argc == 2);
	if (ok && !create_cmd && (enroll_token_opts_set(o) || o->expires)) {
		fprintf(stderr, "vigil-collector enroll-token: --uses, --unlimited, --expires, "
				"--labels and --name-pattern go with 'create'\n");
		ok = false;
	}
	if (!ok) {
		fputs(USAGE, stderr);
		return 2;
	}
	char err[512];
	PGconn *pg = enrolldb_connect(s->db, "enroll-token", err, sizeof(err));
	if (!pg) {
		fprintf(stderr, "vigil-collector enroll-token: cannot connect: %s\n", err);
		return 1;
	}
	int rc;
	if (create_cmd)
		rc = create_token(pg, o);
	else if (!strcmp(sub, "list"))
		rc = list_tokens(pg);
	else
		rc = revoke_token(pg, argv[1]);
	enrolldb_disconnect(pg);
	return rc;
}
