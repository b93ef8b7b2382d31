// SPDX-License-Identifier: Apache-2.0
/*
 * The SQL query builder of the API (see apidb_query.h).
 */
#include "http/apidb_query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void qb_init(qb_t *q, bool audit)
{
	memset(q, 0, sizeof(*q));
	sbuf_init(&q->sql);
	q->audit = audit;
	if (audit)
		sbuf_add(&q->sql, APIDB_AUDIT_CTE);
}

void qb_primary(qb_t *q)
{
	q->primary = true;
}

void qb_listing(qb_t *q)
{
	sbuf_t b;
	sbuf_init(&b);
	sbuf_add(&b, APIDB_LISTING_MARK);
	sbuf_addn(&b, q->sql.s ? q->sql.s : "", q->sql.len);
	if (q->sql.oom)
		b.oom = true;
	sbuf_free(&q->sql);
	q->sql = b;
}

void qb_free(qb_t *q)
{
	sbuf_free(&q->sql);
	for (int i = 0; i < q->n; i++)
		free(q->params[i]);
	q->n = 0;
}

void qb_sql(qb_t *q, const char *s)
{
	sbuf_add(&q->sql, s);
}

void qb_param(qb_t *q, const char *value)
{
	int base = q->audit ? API_AUDIT_PARAMS : 0;
	if (base + q->n >= APIDB_MAX_PARAMS) {
		q->oom = true;
		return;
	}
	char *v = value ? strdup(value) : NULL;
	if (value && !v)
		q->oom = true;
	q->params[q->n++] = v;
	sbuf_printf(&q->sql, "$%d", base + q->n);
}

void qb_param_int(qb_t *q, int64_t v)
{
	char s[24];
	snprintf(s, sizeof(s), "%lld", (long long)v);
	qb_param(q, s);
}
