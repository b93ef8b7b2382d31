/* Shared collector state: TLS context and agent registry (see collector.h). */
#include "collector.h"

#include <stdlib.h>
#include <string.h>

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
	if (ctx)
		SSL_CTX_up_ref(ctx);
	pthread_mutex_unlock(&col->tls_lock);
	return ctx;
}

void collector_set_tls_ctx(collector_t *col, SSL_CTX *ctx)
{
	pthread_mutex_lock(&col->tls_lock);
	SSL_CTX *old = col->tls_ctx;
	col->tls_ctx = ctx;
	pthread_mutex_unlock(&col->tls_lock);
	SSL_CTX_free(old);
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

void collector_registry_clear(collector_t *col)
{
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
