// SPDX-License-Identifier: Apache-2.0
/* The collector's settings table (see settings.h). */
#include "settings.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define S(field) offsetof(settings_t, field)
#define MiB (INT64_C(1024) * 1024)

#ifndef VIGIL_WEB_ROOT
#define VIGIL_WEB_ROOT "/usr/share/vigil/web"
#endif

const cfg_setting_t settings_table[] = {
#define VIGIL_SETTING(name, type, field, def, reloadable, min, max, help) \
	{#name, type, def, reloadable, S(field), min, max, help},
#include "settings.inc"
#include "ingest/settings.inc"
#include "http/settings.inc"
#include "rules/settings.inc"
#include "alert/settings.inc"
#include "vuln/settings.inc"
#include "enroll/settings.inc"
#undef VIGIL_SETTING
	{NULL, 0, NULL, false, 0, 0, 0, NULL},
};

int settings_validate(const settings_t *s, char *err, size_t errlen)
{
	if (!s->tls_cert[0] || !s->tls_key[0] || !s->agent_ca[0]) {
		snprintf(err, errlen, "tls_cert, tls_key and agent_ca must be set");
		return -1;
	}
	if (!s->agent_issuer_cert[0] != !s->agent_issuer_key[0]) {
		snprintf(err, errlen,
			 "agent_issuer_cert and agent_issuer_key go together "
			 "(both set: enrollment on; neither: off)");
		return -1;
	}
	if (s->queue_low_bytes >= s->queue_high_bytes) {
		snprintf(err, errlen, "queue_low_bytes must be below queue_high_bytes");
		return -1;
	}
	if (strcmp(s->duplicate_policy, "replace") != 0 &&
	    strcmp(s->duplicate_policy, "reject") != 0) {
		snprintf(err, errlen, "duplicate_policy must be replace or reject");
		return -1;
	}
	if (strcmp(s->tls_min_version, "1.2") != 0 && strcmp(s->tls_min_version, "1.3") != 0) {
		snprintf(err, errlen, "tls_min_version must be 1.2 or 1.3");
		return -1;
	}
	if (s->http_listen[0] && s->http_rate_limit > 0 && s->http_rate_burst < 1) {
		snprintf(err, errlen, "http_rate_burst must be at least 1");
		return -1;
	}
	return 0;
}

/* Descriptors kept for what is not a connection: standard streams, the
 * listeners, each worker's event base and wake-up pipe, the log and rules
 * files, certificates read on reload, the alert senders. */
#define FD_RESERVE_BASE 64
#define FD_PER_WORKER 4

static void clamp(int64_t *field, int64_t to, const char *name, char *note, size_t notelen,
		  size_t *used)
{
	if (*field <= to)
		return;
	if (*used < notelen) {
		int n = snprintf(note + *used, notelen - *used, "%s%s %lld -> %lld",
				 *used ? ", " : "", name, (long long)*field, (long long)to);
		if (n > 0)
			*used += (size_t)n;
	}
	*field = to;
}

int settings_fit_fd_limit(settings_t *s, int64_t nofile, int64_t workers, char *note,
			  size_t notelen)
{
	if (notelen)
		note[0] = '\0';
	bool http = s->http_listen && s->http_listen[0];
	int64_t reserve = FD_RESERVE_BASE + FD_PER_WORKER * workers + s->db_writers +
			  (http ? s->http_db_connections : 0);
	int64_t need = s->max_connections + s->max_pending_connections;
	if (http)
		need += s->http_max_connections + s->http_max_pending_connections;
	if (need + reserve <= nofile)
		return 0;
	int64_t avail = nofile - reserve;
	if (avail < 64)
		avail = 64; /* a limit this low cannot be honoured; the floor is logged */
	size_t used = 0;
	/* The HTTPS side gets at most an eighth, a quarter of it for pending
	 * connections; the agents' pending budget at most an eighth of the
	 * rest; max_connections what remains. */
	int64_t hshare = 0;
	if (http) {
		hshare = avail / 8;
		clamp(&s->http_max_pending_connections, hshare / 4 > 4 ? hshare / 4 : 4,
		      "http_max_pending_connections", note, notelen, &used);
		int64_t hmax = hshare - s->http_max_pending_connections;
		clamp(&s->http_max_connections, hmax > 4 ? hmax : 4, "http_max_connections", note,
		      notelen, &used);
		hshare = s->http_max_connections + s->http_max_pending_connections;
	}
	int64_t rest = avail - hshare;
	clamp(&s->max_pending_connections, rest / 8 > 16 ? rest / 8 : 16, "max_pending_connections",
	      note, notelen, &used);
	int64_t conns = rest - s->max_pending_connections;
	clamp(&s->max_connections, conns > 1 ? conns : 1, "max_connections", note, notelen, &used);
	return used ? 1 : 0;
}
