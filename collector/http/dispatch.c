// SPDX-License-Identifier: Apache-2.0
/*
 * Dispatch on the HTTPS server (see http_int.h): a request from its arrival
 * (method, rate limit, /healthz, the session, authentication) to the
 * status page's files or an API handler, what a handler may ask of its
 * request, and the database jobs it runs on the apidb pool, which come back
 * to this loop.
 */
#include "http/http_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "ratelimit.h"
#include "vtime.h"

collector_t *hreq_col(hreq_t *r)
{
	return r->h->col;
}

qparams_t *hreq_params(hreq_t *r)
{
	return &r->qp;
}

auth_role_t hreq_role(hreq_t *r)
{
	return r->role;
}

const char *hreq_principal(hreq_t *r)
{
	return r->principal;
}

int64_t hreq_now_us(hreq_t *r)
{
	return r->now_us;
}

void *hreq_state(hreq_t *r)
{
	return r->state;
}

void hreq_set_state(hreq_t *r, void *state, void (*free_fn)(void *))
{
	if (r->state_free)
		r->state_free(r->state);
	r->state = state;
	r->state_free = free_fn;
}

static void job_done(apidb_job_t *job, void *arg)
{
	hreq_t *r = arg;
	if (!r->req) { /* the client went away */
		apidb_job_free(job);
		hreq_free(r);
		return;
	}
	r->st = HR_NEW;
	r->done(r, job);
}

void dispatch_submit(hreq_t *r, apidb_job_t *job, hreq_done_fn done, hreq_state_t st)
{
	r->done = done;
	r->st = st;
	job->done = job_done;
	job->arg = r;
	apidb_submit(r->h->db, job);
}

void hreq_run(hreq_t *r, qb_t *q, hreq_done_fn done)
{
	apidb_job_t *job = q->oom || q->sql.oom ? NULL : apidb_job_new(q->sql.s);
	const char *audit[API_AUDIT_PARAMS] = {r->principal, auth_role_name(r->role),
					       r->peer,	     r->method,
					       r->path,	     r->query ? r->query : ""};
	bool ok = job != NULL;
	for (int i = 0; ok && q->audit && i < API_AUDIT_PARAMS; i++)
		ok = apidb_job_param(job, audit[i]) == 0;
	for (int i = 0; ok && i < q->n; i++)
		ok = apidb_job_param(job, q->params[i]) == 0;
	if (job)
		job->replica = !q->primary; /* a read: the read replica may serve it */
	qb_free(q);
	if (!ok) {
		apidb_job_free(job);
		hreq_error(r, 500, "internal", NULL, "out of memory");
		return;
	}
	dispatch_submit(r, job, done, HR_DB);
}

void dispatch_route(hreq_t *r)
{
	if (r->page) {
		files_serve(r);
		return;
	}
	char bad[80];
	if (qparams_parse(r->query, &r->qp, bad, sizeof(bad)) != 0) {
		hreq_error(r, 400, "bad_parameter", bad, "malformed query parameter '%s'", bad);
		return;
	}
	if (!api_dispatch(r, r->path))
		hreq_error(r, 404, "not_found", NULL, "no such endpoint");
}

void dispatch_request(struct evhttp_request *req, void *arg)
{
	http_t *h = arg;
	hreq_t *r = calloc(1, sizeof(*r));
	if (!r) {
		evhttp_send_error(req, 503, "Out of memory");
		return;
	}
	r->h = h;
	r->snap = collector_settings_take(h->col);
	r->cfg = &r->snap->s;
	r->req = req;
	r->evcon = evhttp_request_get_connection(req);
	r->now_us = vtime_now_ns() / 1000;
	http_conn_request(req);
	char *addr = NULL;
	ev_uint16_t port = 0;
	if (r->evcon)
		evhttp_connection_get_peer(r->evcon, &addr, &port);
	snprintf(r->peer, sizeof(r->peer), "%s", addr ? addr : "?");
	if (r->evcon)
		evhttp_connection_set_closecb(r->evcon, reply_close_cb, r);
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	snprintf(r->method, sizeof(r->method), "%s",
		 cmd == EVHTTP_REQ_POST	    ? "POST"
		 : cmd == EVHTTP_REQ_DELETE ? "DELETE"
		 : cmd == EVHTTP_REQ_GET    ? "GET"
					    : "other");

	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	r->path = strdup(path && *path ? path : "/");
	r->query = query ? strdup(query) : NULL;
	if (!r->path || (query && !r->query)) {
		hreq_error(r, 503, "internal", NULL, "out of memory");
		return;
	}
	bool is_session = strcmp(r->path, SESSION_PATH) == 0;
	if (is_session ? cmd != EVHTTP_REQ_POST && cmd != EVHTTP_REQ_DELETE
		       : cmd != EVHTTP_REQ_GET) {
		reply_header(r, "Allow", is_session ? "POST, DELETE" : "GET");
		hreq_error(r, 405, "method_not_allowed", NULL, "only %s served here",
			   is_session ? "POST and DELETE are" : "GET is");
		return;
	}
	if (!ratelimit_take(h, r->peer)) {
		h->rate_limited++;
		hreq_error(r, 429, "rate_limited", NULL, "too many requests from %s", r->peer);
		return;
	}
	if (strcmp(r->path, "/healthz") == 0) {
		static const char ok[] = "{\"status\":\"ok\"}";
		hreq_reply(r, 200, "application/json", ok, sizeof(ok) - 1);
		return;
	}
	if (is_session) {
		session_handle(r);
		return;
	}
	/* The status page: its files, and the sign-in page in their place
	 * without credentials. */
	r->page = strncmp(r->path, "/api/", 5) != 0 && strcmp(r->path, "/metrics") != 0 &&
		  strcmp(r->path, "/readyz") != 0;
	session_authenticate(r);
}

bool ratelimit_take(http_t *h, const char *peer)
{
	double rate = (double)SETTING(h->col, http_rate_limit);
	double burst = (double)SETTING(h->col, http_rate_burst);
	if (rate <= 0)
		return true;
	char key[RATELIMIT_KEY_LEN];
	ratelimit_key(peer, key);
	return ratelimit_take_key(h->rate, key, rate, burst, vtime_mono_ns());
}
