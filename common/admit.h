// SPDX-License-Identifier: Apache-2.0
/*
 * Admission of connections that have proven nothing yet: still in the TLS
 * handshake, or before their first request (HTTPS) or Hello (agents). Such
 * connections get a budget of their own, so that silent sockets cannot use
 * up the places of connections that work, and a cap per client address (an
 * IPv4 address, an IPv6 /64), so that one host cannot use up the budget.
 * When the budget is full, the oldest pending connection that has sent
 * nothing yet is dropped to make room for the newcomer (an early drop, as
 * front ends such as OpenSSH's MaxStartups do): a real client sends its
 * first bytes at once and finishes its handshake in milliseconds, while a
 * silent socket only grows older. When every pending connection is
 * making progress (a fleet reconnecting at once), the newcomer is refused
 * instead: dropping a handshake under way would throw its work away and
 * only make the storm last longer, while a refused client backs off.
 *
 * Pure bookkeeping: the entries live in the caller's connection objects and
 * the caller closes what admit_add names. Not thread-safe; one list per
 * event loop.
 */
#ifndef VIGIL_ADMIT_H
#define VIGIL_ADMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;

#define ADMIT_KEY_LEN 16

typedef struct admit_entry {
	struct admit_entry *older, *newer;
	uint8_t key[ADMIT_KEY_LEN]; /* the address, as admit_key makes it */
	bool listed;
} admit_entry_t;

typedef struct {
	admit_entry_t *oldest, *newest;
	size_t n;
} admit_t;

typedef enum {
	ADMIT_OK,	    /* listed as pending */
	ADMIT_OK_DROPPED,   /* listed; *victim, the oldest, was unlisted: close it */
	ADMIT_REFUSED_ADDR, /* the address has its cap of pending connections: close e's */
	ADMIT_REFUSED_FULL  /* the budget is full and none is silent: close e's */
} admit_verdict_t;

/* The key of an address: IPv4 (and IPv4-mapped IPv6) by address, other
 * IPv6 by its /64; an unknown family maps to one key of its own. */
void admit_key(const struct sockaddr *sa, size_t salen, uint8_t key[ADMIT_KEY_LEN]);

/* Format a key for a log line ("192.0.2.1", "2001:db8::/64"). */
void admit_key_str(const uint8_t key[ADMIT_KEY_LEN], char *out, size_t outlen);

/* True if the pending connection of e has sent nothing yet. */
typedef bool (*admit_silent_fn)(admit_entry_t *e);

/* List e (not listed) as the newest pending connection from sa, within
 * max_pending in all and max_per_addr per key (both at least 1). silent
 * (may be NULL: all are) tells which connections may be dropped. */
admit_verdict_t admit_add(admit_t *a, admit_entry_t *e, const struct sockaddr *sa, size_t salen,
			  size_t max_pending, size_t max_per_addr, admit_silent_fn silent,
			  admit_entry_t **victim);

/* e is no longer pending (it proved itself, or it closed); fine if not listed. */
void admit_remove(admit_t *a, admit_entry_t *e);

#endif
