/* The collector's settings table (see settings.h). */
#include "settings.h"

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
#undef VIGIL_SETTING
	{NULL, 0, NULL, false, 0, 0, 0, NULL},
};

int settings_validate(const settings_t *s, char *err, size_t errlen)
{
	if (!s->tls_cert[0] || !s->tls_key[0] || !s->agent_ca[0]) {
		snprintf(err, errlen, "tls_cert, tls_key and agent_ca must be set");
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
