// SPDX-License-Identifier: Apache-2.0
/* Shared collector state: TLS context and agent registry (see collector.h). */
#include "collector.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tls.h"
#include "vigil/v1/protocol.pb-c.h"

#define REVOKED_FILE_MAX_BYTES (16 * 1024 * 1024)

static void free_list(char **list, size_t n);
static void kick_revoked(collector_t *col);

collector_t *collector_new(settings_t *s)
{
	collector_t *col = calloc(1, sizeof(*col));
	if (!col)
		return NULL;
	col->settings = s;
	pthread_mutex_init(&col->snap_lock, NULL);
	pthread_mutex_init(&col->tls_lock, NULL);
	pthread_mutex_init(&col->reg_lock, NULL);
	pthread_mutex_init(&col->revoked_lock, NULL);
	if (collector_settings_publish(col) != 0) {
		collector_free(col);
		return NULL;
	}
	return col;
}

void collector_free(collector_t *col)
{
	if (!col)
		return;
	collector_set_tls_ctx(col, NULL);
	collector_registry_clear(col); /* and the revoked list */
	collector_revset_free(col->revoked_db);
	settings_snap_drop(col->snap);
	pthread_mutex_destroy(&col->snap_lock);
	pthread_mutex_destroy(&col->tls_lock);
	pthread_mutex_destroy(&col->reg_lock);
	pthread_mutex_destroy(&col->revoked_lock);
	free(col);
}

/* ---- settings snapshots ---- */

static void snap_free(settings_snap_t *snap)
{
	cfg_free(settings_table, &snap->s);
	free(snap);
}

/* A deep copy of s: the struct, then a string of its own for each string
 * setting. NULL when out of memory. */
static settings_snap_t *snap_copy(const settings_t *s)
{
	settings_snap_t *snap = calloc(1, sizeof(*snap));
	if (!snap)
		return NULL;
	snap->s = *s;
	bool ok = true;
	for (const cfg_setting_t *t = settings_table; t->name; t++) {
		if (t->type != CFG_T_STR)
			continue;
		char **field = (char **)((char *)&snap->s + t->offset);
		const char *from = *field;
		*field = ok && from ? strdup(from) : NULL;
		if (from && !*field)
			ok = false;
	}
	if (!ok) {
		snap_free(snap);
		return NULL;
	}
	atomic_init(&snap->refs, 1);
	return snap;
}

settings_snap_t *collector_settings_take(collector_t *col)
{
	pthread_mutex_lock(&col->snap_lock);
	settings_snap_t *snap = col->snap;
	atomic_fetch_add(&snap->refs, 1);
	pthread_mutex_unlock(&col->snap_lock);
	return snap;
}

void settings_snap_drop(settings_snap_t *snap)
{
	if (snap && atomic_fetch_sub(&snap->refs, 1) == 1)
		snap_free(snap);
}

int collector_settings_publish(collector_t *col)
{
	settings_snap_t *snap = snap_copy(col->settings);
	if (!snap)
		return -1;
	pthread_mutex_lock(&col->snap_lock);
	settings_snap_t *old = col->snap;
	col->snap = snap;
	pthread_mutex_unlock(&col->snap_lock);
	settings_snap_drop(old);
	return 0;
}

struct registry_entry {
	struct registry_entry *next;
	uint64_t conn_id;
	int worker;
	char serial[TLS_SERIAL_HEX_MAX]; /* of its certificate, "" until noted */
	char name[];
};

SSL_CTX *collector_tls_ctx(collector_t *col)
{
	pthread_mutex_lock(&col->tls_lock);
	SSL_CTX *ctx = col->tls_ctx;
	tls_ctx_ref(ctx);
	pthread_mutex_unlock(&col->tls_lock);
	return ctx;
}

void collector_set_tls_ctx(collector_t *col, SSL_CTX *ctx)
{
	pthread_mutex_lock(&col->tls_lock);
	SSL_CTX *old = col->tls_ctx;
	col->tls_ctx = ctx;
	atomic_fetch_add(&col->tls_generation, 1);
	pthread_mutex_unlock(&col->tls_lock);
	tls_ctx_unref(old);
}

static unsigned bucket(const char *name)
{
	uint32_t h = 2166136261u;
	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 16777619u;
	return h % REGISTRY_BUCKETS;
}

reg_result_t collector_register(collector_t *col, const char *name, int worker_idx,
				uint64_t conn_id, int *old_worker, uint64_t *old_conn_id)
{
	bool reject = strcmp(col->settings->duplicate_policy, "reject") == 0;
	unsigned b = bucket(name);
	reg_result_t r = REG_ADDED;
	pthread_mutex_lock(&col->reg_lock);
	struct registry_entry *e = col->registry[b];
	while (e && strcmp(e->name, name) != 0)
		e = e->next;
	if (e) {
		if (reject) {
			r = REG_REJECTED;
		} else {
			*old_worker = e->worker;
			*old_conn_id = e->conn_id;
			e->worker = worker_idx;
			e->conn_id = conn_id;
			e->serial[0] = '\0';
			r = REG_REPLACED;
		}
	} else {
		size_t n = strlen(name) + 1;
		e = malloc(sizeof(*e) + n);
		if (e) {
			memcpy(e->name, name, n);
			e->serial[0] = '\0';
			e->worker = worker_idx;
			e->conn_id = conn_id;
			e->next = col->registry[b];
			col->registry[b] = e;
		}
	}
	pthread_mutex_unlock(&col->reg_lock);
	return r;
}

void collector_unregister(collector_t *col, const char *name, uint64_t conn_id)
{
	unsigned b = bucket(name);
	pthread_mutex_lock(&col->reg_lock);
	for (struct registry_entry **p = &col->registry[b]; *p; p = &(*p)->next) {
		if ((*p)->conn_id == conn_id && strcmp((*p)->name, name) == 0) {
			struct registry_entry *e = *p;
			*p = e->next;
			free(e);
			break;
		}
	}
	pthread_mutex_unlock(&col->reg_lock);
}

int collector_connected_count(collector_t *col)
{
	int n = 0;
	pthread_mutex_lock(&col->reg_lock);
	for (int i = 0; i < REGISTRY_BUCKETS; i++)
		for (struct registry_entry *e = col->registry[i]; e; e = e->next)
			n++;
	pthread_mutex_unlock(&col->reg_lock);
	return n;
}

void collector_each_connected(collector_t *col, void (*fn)(const char *name, void *arg), void *arg)
{
	pthread_mutex_lock(&col->reg_lock);
	for (int i = 0; i < REGISTRY_BUCKETS; i++)
		for (struct registry_entry *e = col->registry[i]; e; e = e->next)
			fn(e->name, arg);
	pthread_mutex_unlock(&col->reg_lock);
}

void collector_registry_clear(collector_t *col)
{
	pthread_mutex_lock(&col->revoked_lock);
	free_list(col->revoked, col->n_revoked);
	col->revoked = NULL;
	col->n_revoked = 0;
	pthread_mutex_unlock(&col->revoked_lock);
	pthread_mutex_lock(&col->reg_lock);
	for (int i = 0; i < REGISTRY_BUCKETS; i++) {
		while (col->registry[i]) {
			struct registry_entry *e = col->registry[i];
			col->registry[i] = e->next;
			free(e);
		}
	}
	pthread_mutex_unlock(&col->reg_lock);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_list(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

/* Parse one identity per line ('#' comments, blanks ignored). */
static int read_revoked(const char *path, char ***out, size_t *n_out)
{
	*out = NULL;
	*n_out = 0;
	if (!path || !path[0])
		return 0;
	FILE *f = fopen(path, "r");
	if (!f) {
		log_error("revoked_agents: %s: %s", path, strerror(errno));
		return -1;
	}
	char **list = NULL;
	size_t n = 0, cap = 0, total = 0;
	char line[1024];
	int rc = 0;
	while (fgets(line, sizeof(line), f)) {
		total += strlen(line);
		if (total > REVOKED_FILE_MAX_BYTES) {
			log_error("revoked_agents: %s is larger than %d bytes", path,
				  REVOKED_FILE_MAX_BYTES);
			rc = -1;
			break;
		}
		char *s = line;
		while (*s == ' ' || *s == '\t')
			s++;
		size_t l = strcspn(s, "#\r\n");
		while (l && (s[l - 1] == ' ' || s[l - 1] == '\t'))
			l--;
		if (!l)
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			char **nl = realloc(list, nc * sizeof(*nl));
			if (!nl) {
				rc = -1;
				break;
			}
			list = nl;
			cap = nc;
		}
		list[n] = strndup(s, l);
		if (!list[n]) {
			rc = -1;
			break;
		}
		n++;
	}
	fclose(f);
	if (rc != 0) {
		free_list(list, n);
		return -1;
	}
	if (n) /* an empty file: list is NULL */
		qsort(list, n, sizeof(*list), cmp_str);
	*out = list;
	*n_out = n;
	return 0;
}

static bool in_list(char *const *list, size_t n, const char *s)
{
	return n && s && bsearch(&s, list, n, sizeof(char *), cmp_str) != NULL;
}

static bool revset_has(const collector_revset_t *set, revoke_kind_t kind, const char *value);

/* With revoked_lock held: is the agent name, or its serial (may be NULL or
 * ""), revoked? */
static bool agent_revoked_locked(collector_t *col, const char *name, const char *serial)
{
	return in_list(col->revoked, col->n_revoked, name) ||
	       revset_has(col->revoked_db, REVOKE_AGENT_NAME, name) ||
	       (serial && serial[0] && revset_has(col->revoked_db, REVOKE_AGENT_SERIAL, serial));
}

bool collector_is_revoked(collector_t *col, const char *name)
{
	pthread_mutex_lock(&col->revoked_lock);
	bool r = agent_revoked_locked(col, name, NULL);
	pthread_mutex_unlock(&col->revoked_lock);
	return r;
}

int collector_load_revoked(collector_t *col, const char *path)
{
	char **list;
	size_t n;
	if (read_revoked(path, &list, &n) != 0)
		return -1;
	pthread_mutex_lock(&col->revoked_lock);
	char **old = col->revoked;
	size_t n_old = col->n_revoked;
	col->revoked = list;
	col->n_revoked = n;
	pthread_mutex_unlock(&col->revoked_lock);
	free_list(old, n_old);
	if (n)
		log_info("revoked_agents: %zu revoked identit%s", n, n == 1 ? "y" : "ies");
	kick_revoked(col);
	return 0;
}

/* Close the live connections of revoked agents (identity or serial). */
static void kick_revoked(collector_t *col)
{
	if (!col->kick)
		return;
	pthread_mutex_lock(&col->reg_lock);
	pthread_mutex_lock(&col->revoked_lock);
	for (int b = 0; b < REGISTRY_BUCKETS; b++) {
		for (struct registry_entry *e = col->registry[b]; e; e = e->next) {
			if (agent_revoked_locked(col, e->name, NULL))
				col->kick(col, e->worker, e->conn_id,
					  VIGIL__V1__ERROR_CODE__ERROR_CODE_REVOKED,
					  "agent certificate identity revoked");
			else if (agent_revoked_locked(col, e->name, e->serial))
				col->kick(col, e->worker, e->conn_id,
					  VIGIL__V1__ERROR_CODE__ERROR_CODE_REVOKED,
					  "agent certificate revoked");
		}
	}
	pthread_mutex_unlock(&col->revoked_lock);
	pthread_mutex_unlock(&col->reg_lock);
}

void collector_note_serial(collector_t *col, const char *name, uint64_t conn_id,
			   const char *serial_hex)
{
	unsigned b = bucket(name);
	pthread_mutex_lock(&col->reg_lock);
	for (struct registry_entry *e = col->registry[b]; e; e = e->next) {
		if (e->conn_id == conn_id && strcmp(e->name, name) == 0) {
			snprintf(e->serial, sizeof(e->serial), "%s", serial_hex);
			break;
		}
	}
	pthread_mutex_unlock(&col->reg_lock);
}

bool collector_is_revoked_serial(collector_t *col, const char *serial_hex)
{
	pthread_mutex_lock(&col->revoked_lock);
	bool r = revset_has(col->revoked_db, REVOKE_AGENT_SERIAL, serial_hex);
	pthread_mutex_unlock(&col->revoked_lock);
	return r;
}

bool collector_is_revoked_operator(collector_t *col, const char *cn, const char *serial_hex)
{
	pthread_mutex_lock(&col->revoked_lock);
	bool r = revset_has(col->revoked_db, REVOKE_OPERATOR_NAME, cn) ||
		 revset_has(col->revoked_db, REVOKE_OPERATOR_SERIAL, serial_hex);
	pthread_mutex_unlock(&col->revoked_lock);
	return r;
}

/* ---- revocations read from the database ---- */

/* Immutable once published: sorted, without duplicates. */
struct collector_revset {
	char **v[REVOKE_KINDS];
	size_t n[REVOKE_KINDS];
	size_t cap[REVOKE_KINDS];
};

collector_revset_t *collector_revset_new(void)
{
	return calloc(1, sizeof(collector_revset_t));
}

void collector_revset_free(collector_revset_t *set)
{
	if (!set)
		return;
	for (int k = 0; k < REVOKE_KINDS; k++)
		free_list(set->v[k], set->n[k]);
	free(set);
}

int collector_serial_normalize(const char *in, char *out, size_t outlen)
{
	if (!in || outlen < 2)
		return -1;
	if (in[0] == '0' && (in[1] == 'x' || in[1] == 'X'))
		in += 2;
	size_t o = 0;
	bool any = false;
	for (; *in; in++) {
		char ch = *in;
		if (ch == ':' && any && in[1] && in[1] != ':')
			continue;
		if (ch >= 'A' && ch <= 'F')
			ch = (char)(ch - 'A' + 'a');
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
			return -1;
		any = true;
		if (o == 0 && ch == '0')
			continue;
		if (o + 1 >= outlen)
			return -1;
		out[o++] = ch;
	}
	if (!any)
		return -1;
	if (o == 0)
		out[o++] = '0';
	out[o] = '\0';
	return 0;
}

int collector_revset_add(collector_revset_t *set, revoke_kind_t kind, const char *value)
{
	char serial[TLS_SERIAL_HEX_MAX];
	if (kind == REVOKE_AGENT_SERIAL || kind == REVOKE_OPERATOR_SERIAL) {
		if (collector_serial_normalize(value, serial, sizeof(serial)) != 0)
			return -1;
		value = serial;
	}
	if (set->n[kind] == set->cap[kind]) {
		size_t nc = set->cap[kind] ? set->cap[kind] * 2 : 16;
		char **nv = realloc(set->v[kind], nc * sizeof(*nv));
		if (!nv)
			return -1;
		set->v[kind] = nv;
		set->cap[kind] = nc;
	}
	char *copy = strdup(value);
	if (!copy)
		return -1;
	set->v[kind][set->n[kind]++] = copy;
	return 0;
}

static bool revset_has(const collector_revset_t *set, revoke_kind_t kind, const char *value)
{
	return set && in_list(set->v[kind], set->n[kind], value);
}

/* Sort each list and drop repeated values. */
static void revset_seal(collector_revset_t *set)
{
	for (int k = 0; k < REVOKE_KINDS; k++) {
		char **v = set->v[k];
		size_t n = set->n[k], out = 0;
		if (n)
			qsort(v, n, sizeof(*v), cmp_str);
		for (size_t i = 0; i < n; i++) {
			if (out && strcmp(v[out - 1], v[i]) == 0)
				free(v[i]);
			else
				v[out++] = v[i];
		}
		set->n[k] = out;
	}
}

static bool revset_equal(const collector_revset_t *a, const collector_revset_t *b)
{
	if (!a || !b)
		return a == b;
	for (int k = 0; k < REVOKE_KINDS; k++) {
		if (a->n[k] != b->n[k])
			return false;
		for (size_t i = 0; i < a->n[k]; i++)
			if (strcmp(a->v[k][i], b->v[k][i]) != 0)
				return false;
	}
	return true;
}

bool collector_set_db_revoked(collector_t *col, collector_revset_t *set)
{
	revset_seal(set);
	size_t n[REVOKE_KINDS];
	memcpy(n, set->n, sizeof(n));
	pthread_mutex_lock(&col->revoked_lock);
	collector_revset_t *old = col->revoked_db;
	bool changed = !revset_equal(old, set);
	if (changed) {
		col->revoked_db = set;
		set = old;
	}
	pthread_mutex_unlock(&col->revoked_lock);
	collector_revset_free(set); /* the one not in use */
	if (!changed)
		return false;
	log_info("revocations: the database revokes %zu agent identit%s, %zu agent "
		 "certificate(s), %zu operator name(s) and %zu operator certificate(s)",
		 n[REVOKE_AGENT_NAME], n[REVOKE_AGENT_NAME] == 1 ? "y" : "ies",
		 n[REVOKE_AGENT_SERIAL], n[REVOKE_OPERATOR_NAME], n[REVOKE_OPERATOR_SERIAL]);
	kick_revoked(col);
	return true;
}
