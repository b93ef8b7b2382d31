// SPDX-License-Identifier: Apache-2.0
/*
 * State shared by the collector's threads: settings, the current TLS
 * context, the registry of connected agents, counters, and the drain flag.
 * Everything here is either immutable after start, atomic, or behind the
 * lock named next to it.
 */
#ifndef VIGIL_COLLECTOR_H
#define VIGIL_COLLECTOR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/types.h> /* SSL_CTX, without the rest of ssl.h */

#include "settings.h"

struct worker;
struct ingest;
struct rules_slot;

/* Read a reloadable numeric setting from any thread. */
#define SETTING(col, field) __atomic_load_n(&(col)->settings->field, __ATOMIC_RELAXED)

typedef struct {
	atomic_ullong conns_accepted;
	atomic_ullong conns_refused;   /* over max_connections, max_pending_per_address */
	atomic_ullong pending_dropped; /* for newer ones, over max_pending_connections */
	atomic_ullong handshakes_failed;
	atomic_ullong protocol_errors; /* bad frames, messages, sequences */
	atomic_ullong timeouts;
	atomic_ullong batches_acked;
	atomic_ullong batches_replayed; /* acked, already stored */
	atomic_ullong events_stored;
	atomic_ullong events_dead;    /* kept in dead_letters */
	atomic_ullong events_clamped; /* time outside the partitions */
	atomic_ullong db_errors;
	atomic_ullong groups_committed;
	atomic_ullong batches_refused;	   /* too many bad events, or over their budget */
	atomic_ullong events_cut;	   /* a field capped by the collector */
	atomic_ullong events_dead_dropped; /* past an agent's dead-letter quota */
	atomic_ullong jobs_quarantined;	   /* a non-transient database error */
	atomic_ullong jobs_dropped;	   /* of closed connections, before commit */
	atomic_ullong enrolled;		   /* certificates issued at enrollment */
	atomic_ullong renewed;		   /* certificates issued at renewal */
	atomic_ullong enroll_refused;	   /* requests answered with a refusal */
	atomic_ullong enroll_rate_limited; /* of those, over their address's rate */
} counters_t;

#define REGISTRY_BUCKETS 4096

struct registry_entry;
struct collector;
struct collector_revset;

/* Close connection conn_id of worker worker_idx with an Error (any thread). */
typedef void (*collector_kick_fn)(struct collector *col, int worker_idx, uint64_t conn_id,
				  int error_code, const char *why);

/* A reference-counted copy of the settings, for threads that read settings
 * the main thread replaces on SIGHUP (strings above all: a reload frees the
 * old string). A reader takes the current copy, reads it as long as it
 * likes and drops it; a reload publishes a new copy and the old one is
 * freed by whoever drops it last. */
typedef struct settings_snap {
	atomic_int refs;
	settings_t s;
} settings_snap_t;

typedef struct collector {
	settings_t *settings;	   /* the main thread's; others read ints by SETTING */
	pthread_mutex_t snap_lock; /* guards snap */
	settings_snap_t *snap;
	struct ingest *ingest;
	struct worker **workers;
	int n_workers;
	collector_kick_fn kick;	       /* set once the workers run; NULL before */
	struct rules_slot *rules;      /* the rules in force (rules/rules.h) */
	struct enroll_service *enroll; /* NULL when enrollment is off (enroll/service.h) */

	pthread_mutex_t tls_lock; /* guards tls_ctx */
	SSL_CTX *tls_ctx;
	atomic_ullong tls_generation; /* +1 per new tls_ctx: live peers are verified again */

	pthread_mutex_t reg_lock; /* guards registry */
	struct registry_entry *registry[REGISTRY_BUCKETS];

	pthread_mutex_t revoked_lock; /* guards revoked, revoked_db */
	char **revoked;		      /* sorted identities of the revoked_agents file */
	size_t n_revoked;
	struct collector_revset *revoked_db; /* read from PostgreSQL (enroll/revocations.h) */

	atomic_int n_conns;
	atomic_int n_pending;	  /* of n_conns: before their Hello (ingest/conn.c) */
	atomic_int n_established; /* of n_conns: past their Hello, not closing */
	atomic_bool draining;
	atomic_int db_writers_down; /* writers that cannot reach PostgreSQL (ingest/ingest.c) */
	atomic_llong range_lo_ns;   /* event times the partitions take */
	atomic_llong range_hi_ns;
	counters_t counters;
} collector_t;

/* The shared state for settings s (borrowed; they outlive it), with no
 * TLS context, agents or revocations yet, and a first settings snapshot.
 * NULL when out of memory. */
collector_t *collector_new(settings_t *s);

/* The current settings snapshot, with a reference for the caller. */
settings_snap_t *collector_settings_take(collector_t *col);
/* Drop a reference taken with collector_settings_take (NULL is fine). */
void settings_snap_drop(settings_snap_t *snap);
/* Publish a copy of col->settings as the current snapshot (the main thread,
 * after a reload). Return 0, or -1 when out of memory (the previous
 * snapshot stays). */
int collector_settings_publish(collector_t *col);
/* Drop the TLS context and the registry and free col (NULL is fine); what
 * its owner attached (workers, ingest, rules) is the owner's to free. */
void collector_free(collector_t *col);

/* Return the current server TLS context with a reference the caller drops
 * with SSL_CTX_free. */
SSL_CTX *collector_tls_ctx(collector_t *col);

/* Replace the TLS context (the collector takes ctx's reference). */
void collector_set_tls_ctx(collector_t *col, SSL_CTX *ctx);

typedef enum {
	REG_ADDED,    /* the agent had no live connection */
	REG_REPLACED, /* it had one: *old_worker / *old_conn_id name it */
	REG_REJECTED, /* it had one and the policy is reject */
} reg_result_t;

/* Record that connection conn_id on worker worker_idx speaks for agent
 * name, applying the duplicate policy. */
reg_result_t collector_register(collector_t *col, const char *name, int worker_idx,
				uint64_t conn_id, int *old_worker, uint64_t *old_conn_id);
/* Forget the registration if it is still conn_id's. */
void collector_unregister(collector_t *col, const char *name, uint64_t conn_id);

/* Read the revoked-identities file (path may be empty: none revoked) and
 * close live connections of newly revoked agents. Return 0, or -1 with the
 * previous list kept. */
int collector_load_revoked(collector_t *col, const char *path);
/* True if the identity is revoked (by the file or the database). */
bool collector_is_revoked(collector_t *col, const char *name);

/* What a revocation names. Serials are hex as collector_serial_normalize
 * writes them. */
typedef enum {
	REVOKE_AGENT_NAME,	/* an agent identity (certificate CN) */
	REVOKE_AGENT_SERIAL,	/* one agent certificate */
	REVOKE_OPERATOR_NAME,	/* an operator client certificate CN (HTTPS port) */
	REVOKE_OPERATOR_SERIAL, /* one operator client certificate */
	REVOKE_KINDS,
} revoke_kind_t;

typedef struct collector_revset collector_revset_t;

/* An empty set of revocations, or NULL when out of memory. */
collector_revset_t *collector_revset_new(void);
/* Add value (copied; a serial is normalized first) to set. Return 0, or -1
 * when out of memory or a serial is not hex. */
int collector_revset_add(collector_revset_t *set, revoke_kind_t kind, const char *value)
	__attribute__((warn_unused_result));
/* Free set (NULL is fine). */
void collector_revset_free(collector_revset_t *set);
/* Make set (taken) the revocations read from the database. If it differs
 * from the previous one, log its size and close live connections of agents
 * whose identity or certificate serial is now revoked. Return true if it
 * changed. Any thread. */
bool collector_set_db_revoked(collector_t *col, collector_revset_t *set);
/* Write serial in (hex, upper or lower case, with optional "0x" and ':'
 * between bytes) into out as lower-case hex without leading zeros, "0" for
 * zero. Return 0, or -1 if it is not hex or does not fit outlen. */
int collector_serial_normalize(const char *in, char *out, size_t outlen)
	__attribute__((warn_unused_result));

/* Record the certificate serial (tls_peer_serial_hex) of the connection
 * conn_id registered for name, so that a revocation of that serial closes
 * it. Call it before checking collector_is_revoked_serial. */
void collector_note_serial(collector_t *col, const char *name, uint64_t conn_id,
			   const char *serial_hex);
/* True if the agent certificate with this serial is revoked. */
bool collector_is_revoked_serial(collector_t *col, const char *serial_hex);
/* True if the operator certificate with this CN or serial (either may be
 * NULL) is revoked. */
bool collector_is_revoked_operator(collector_t *col, const char *cn, const char *serial_hex);

/* Number of agents with a live connection to this collector. */
int collector_connected_count(collector_t *col);
/* Call fn for the name of every agent connected here, under the registry
 * lock: fn must be quick and must not call back into the collector. */
void collector_each_connected(collector_t *col, void (*fn)(const char *name, void *arg), void *arg);

/* Forget every registration (at exit). */
void collector_registry_clear(collector_t *col);

#endif
