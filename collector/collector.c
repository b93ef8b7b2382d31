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
			r = REG_REPLACED;
		}
	} else {
		size_t n = strlen(name) + 1;
		e = malloc(sizeof(*e) + n);
		if (e) {
			memcpy(e->name, name, n);
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
	qsort(list, n, sizeof(*list), cmp_str);
	*out = list;
	*n_out = n;
	return 0;
}

bool collector_is_revoked(collector_t *col, const char *name)
{
	pthread_mutex_lock(&col->revoked_lock);
	bool r = col->n_revoked &&
		 bsearch(&name, col->revoked, col->n_revoked, sizeof(char *), cmp_str) != NULL;
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
	if (!col->kick)
		return 0;
	/* Drop live connections of revoked agents. */
	pthread_mutex_lock(&col->reg_lock);
	for (int b = 0; b < REGISTRY_BUCKETS; b++) {
		for (struct registry_entry *e = col->registry[b]; e; e = e->next) {
			const char *name = e->name;
			if (n && bsearch(&name, list, n, sizeof(char *), cmp_str))
				col->kick(col, e->worker, e->conn_id,
					  VIGIL__V1__ERROR_CODE__ERROR_CODE_REVOKED,
					  "agent certificate identity revoked");
		}
	}
	pthread_mutex_unlock(&col->reg_lock);
	return 0;
}
