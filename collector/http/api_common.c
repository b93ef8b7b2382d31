// SPDX-License-Identifier: Apache-2.0
/*
 * What the query API's handler files (api.c, api_findings.c) share: the
 * checks of common parameters (a bad one is a 400 that names it), the
 * list answers, CSV lines, and statement-building helpers.
 */
#include "http/api_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- statements ---- */

/* A time as a timestamptz parameter (RFC 3339, microseconds). A constant
 * lets the planner prune the daily partitions itself, instead of planning
 * every partition and pruning at run time. */
void qb_time(qb_t *q, int64_t us)
{
	char t[40];
	api_format_time(us, t, sizeof(t));
	qb_param(q, t);
	qb_sql(q, "::timestamptz");
}

/* ---- parameters -------------------------------------------------------------------- */

bool api_bad_param(hreq_t *r, const char *name, const char *why)
{
	hreq_error(r, 400, "bad_parameter", name, "parameter '%s': %s", name, why);
	return false;
}

bool api_no_unknown(hreq_t *r)
{
	const char *k = qparams_unused(hreq_params(r));
	if (!k)
		return true;
	return api_bad_param(r, k, "unknown parameter");
}

bool api_get_limit(hreq_t *r, int64_t def, int64_t *out)
{
	const char *v = qparams_get(hreq_params(r), "limit");
	int64_t max = SETTING(hreq_col(r), http_max_limit);
	if (!v) {
		*out = def < max ? def : max;
		return true;
	}
	int64_t n;
	if (api_parse_int(v, 1, INT64_MAX / 2, &n) != 0)
		return api_bad_param(r, "limit", "must be a positive integer");
	*out = n < max ? n : max; /* capped, not refused */
	return true;
}

/* since/until; a missing since is until minus def_us. */
bool api_get_window(hreq_t *r, int64_t def_us, int64_t *since, int64_t *until)
{
	qparams_t *q = hreq_params(r);
	const char *s = qparams_get(q, "since"), *u = qparams_get(q, "until");
	int64_t now = hreq_now_us(r);
	*until = now + 60 * INT64_C(1000000); /* a little ahead: agent clocks */
	if (u && api_parse_time(u, now, until) != 0)
		return api_bad_param(r, "until", "not a time (RFC 3339, Unix seconds, or 24h ago)");
	if (!s)
		*since = *until - def_us;
	else if (api_parse_time(s, now, since) != 0)
		return api_bad_param(r, "since", "not a time (RFC 3339, Unix seconds, or 24h ago)");
	if (*since >= *until)
		return api_bad_param(r, "until", "must be after since");
	/* measured from now when no until is given: the minute of slack ahead
	 * for agent clocks does not count, so since=744h is a 744h window */
	int64_t max = SETTING(hreq_col(r), http_max_window_ms) * 1000;
	if ((u ? *until : now) - *since > max)
		return api_bad_param(r, "since", "window wider than http_max_window");
	return true;
}

bool api_get_bool(hreq_t *r, const char *name, int *out)
{
	const char *v = qparams_get(hreq_params(r), name);
	*out = -1;
	if (!v)
		return true;
	bool b;
	if (api_parse_bool(v, &b) != 0)
		return api_bad_param(r, name, "must be true or false");
	*out = b;
	return true;
}

/* A plain string filter: at most 512 bytes. */
bool api_get_str(hreq_t *r, const char *name, const char **out)
{
	*out = qparams_get(hreq_params(r), name);
	if (*out && (!**out || strlen(*out) > 512))
		return api_bad_param(r, name, "must be 1 to 512 bytes");
	return true;
}

bool api_get_format(hreq_t *r, bool streams, api_fmt_t *out)
{
	const char *v = qparams_get(hreq_params(r), "format");
	*out = API_FMT_JSON;
	if (!v || !strcmp(v, "json"))
		return true;
	if (!strcmp(v, "csv")) {
		*out = API_FMT_CSV;
		return true;
	}
	if (streams && !strcmp(v, "ndjson")) {
		*out = API_FMT_NDJSON;
		return true;
	}
	return api_bad_param(r, "format",
			     streams ? "must be json, ndjson or csv" : "must be json or csv");
}

/* ---- common answers -------------------------------------------------------------------- */

/* {"<key>": [rows...], <extra>} from column 0 of every row. */
void api_reply_rows(hreq_t *r, apidb_job_t *job, const char *key, size_t n, const char *extra)
{
	sbuf_t b;
	sbuf_init(&b);
	sbuf_printf(&b, "{\"%s\":[", key);
	for (size_t i = 0; i < n && i < job->n_rows; i++) {
		if (i)
			sbuf_add(&b, ",");
		const char *c = apidb_cell(job, i, 0);
		sbuf_add(&b, c ? c : "null");
	}
	sbuf_printf(&b, "],\"count\":%zu%s%s}", n < job->n_rows ? n : job->n_rows, extra ? "," : "",
		    extra ? extra : "");
	if (b.oom)
		hreq_error(r, 500, "internal", NULL, "out of memory");
	else
		hreq_reply(r, 200, "application/json", b.s, b.len);
	sbuf_free(&b);
}

/* A JSON value as one CSV cell: a string as is, an array of strings
 * joined by spaces, null as empty, anything else as JSON. */
static void json_cell(sbuf_t *b, json_t *v)
{
	if (json_is_string(v)) {
		api_csv_cell(b, json_string_value(v));
	} else if (json_is_null(v) || !v) {
		api_csv_cell(b, "");
	} else if (json_is_array(v)) {
		sbuf_t t;
		sbuf_init(&t);
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x)
		{
			if (i)
				sbuf_add(&t, " ");
			if (json_is_string(x))
				sbuf_add(&t, json_string_value(x));
		}
		api_csv_cell(b, t.s ? t.s : "");
		sbuf_free(&t);
	} else {
		char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		api_csv_cell(b, s ? s : "");
		free(s);
	}
}

void api_csv_obj(sbuf_t *b, json_t *o, const char *const *cols)
{
	for (int i = 0; cols[i]; i++) {
		if (i)
			sbuf_add(b, ",");
		json_cell(b, o ? json_object_get(o, cols[i]) : NULL);
	}
	sbuf_add(b, "\r\n");
}

void api_csv_row(sbuf_t *b, const char *row, const char *const *cols)
{
	json_t *o = json_loads(row ? row : "{}", 0, NULL);
	api_csv_obj(b, o, cols);
	json_decref(o);
}

void api_csv_header(sbuf_t *b, const char *const *cols)
{
	for (int i = 0; cols[i]; i++) {
		if (i)
			sbuf_add(b, ",");
		api_csv_cell(b, cols[i]);
	}
	sbuf_add(b, "\r\n");
}

int qb_add(qb_t *q, const char *value)
{
	int base = q->audit ? API_AUDIT_PARAMS : 0;
	if (base + q->n >= APIDB_MAX_PARAMS) {
		q->oom = true;
		return 0;
	}
	char *v = value ? strdup(value) : NULL;
	if (value && !v)
		q->oom = true;
	q->params[q->n++] = v;
	return base + q->n;
}
