// SPDX-License-Identifier: Apache-2.0
/* The judgment being built for one container, and shared string helpers
 * (see rules_int.h). */
#include "rules/rules_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "utf8.h"

json_t *rules_text(const char *s, size_t cap)
{
	char buf[RULES_SUMMARY_MAX];
	snprintf(buf, cap < sizeof(buf) ? cap : sizeof(buf), "%s", s ? s : "");
	utf8_sanitize(buf);
	return json_string(buf);
}

void judgment_hit(judgment_t *j, const char *rule, const char *key, const char *fmt, ...)
{
	if (!rules_enabled(j->ctx->rules, rule) || rules_excepted(j->ctx, j->subj, rule)) {
		/* its open finding is resolved as "rule off or excepted" */
		size_t i;
		json_t *o;
		json_array_foreach(j->off, i, o)
		{
			if (strcmp(json_string_value(o), rule) == 0)
				return;
		}
		if (json_array_append_new(j->off, json_string(rule)))
			j->oom = 1;
		return;
	}
	json_t *k = rules_text(key, RULES_KEY_MAX);
	if (!k) {
		j->oom = 1;
		return;
	}
	size_t i;
	json_t *h;
	json_array_foreach(j->hits, i, h)
	{
		/* one finding per (rule, key) as stored: two keys that differ
		 * only past the cap are the same finding */
		if (strcmp(json_string_value(json_object_get(h, "r")), rule) == 0 &&
		    json_equal(json_object_get(h, "k"), k)) {
			json_decref(k);
			return;
		}
	}
	char m[RULES_SUMMARY_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	h = json_object();
	if (!h || json_object_set_new(h, "r", json_string(rule)) ||
	    json_object_set_new(h, "k", k) ||
	    json_object_set_new(h, "s", json_integer(rules_severity(j->ctx->rules, rule))) ||
	    json_object_set_new(h, "m", rules_text(m, sizeof(m))) ||
	    json_array_append_new(j->hits, h))
		j->oom = 1;
}

void judgment_unknown(judgment_t *j, const char *rule)
{
	if (!rules_enabled(j->ctx->rules, rule))
		return;
	size_t i;
	json_t *u;
	json_array_foreach(j->unk, i, u)
	{
		if (strcmp(json_string_value(u), rule) == 0)
			return;
	}
	if (json_array_append_new(j->unk, json_string(rule)))
		j->oom = 1;
}

const char *rules_basename(const char *path)
{
	if (!path)
		return "";
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

bool rules_in(const char *s, const char *const *names)
{
	for (size_t i = 0; s && names[i]; i++)
		if (strcmp(s, names[i]) == 0)
			return true;
	return false;
}

bool rules_contains_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (const char *p = hay; *p; p++)
		if (strncasecmp(p, needle, n) == 0)
			return true;
	return false;
}
