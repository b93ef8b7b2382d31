// SPDX-License-Identifier: Apache-2.0
/*
 * Replies of the HTTPS server (see http_int.h): the headers every answer
 * carries (a strict CSP and the security headers), JSON errors, database
 * failures, streamed answers, the 413 that the server writes by hand when
 * evhttp is not answering, and the sign-in page that stands in for the
 * status page without credentials.
 */
#include "http/http_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "log.h"

#define CSP_START                                                                         \
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
	"connect-src 'self'; base-uri 'none'; "
#define CSP_END "frame-ancestors 'none'"

static const char *const SECURITY_HEADERS[][2] = {
	{"X-Content-Type-Options", "nosniff"},
	{"X-Frame-Options", "DENY"},
	{"Strict-Transport-Security", "max-age=31536000"},
	{"Cross-Origin-Opener-Policy", "same-origin"},
	{"Cross-Origin-Resource-Policy", "same-origin"},
};
#define N_SECURITY_HEADERS (sizeof(SECURITY_HEADERS) / sizeof(SECURITY_HEADERS[0]))

/* The sign-in page differs in two headers: its form posts to us
 * (form-action 'self'), and its referrer policy is same-origin, because a
 * browser posts a form of a no-referrer page with "Origin: null", which the
 * sign-in refuses like any other origin. same-origin still sends nothing to
 * other sites. */
static const char *csp_of(reply_kind_t kind)
{
	return kind == REPLY_SIGNIN ? CSP_START "form-action 'self'; " CSP_END
				    : CSP_START "form-action 'none'; " CSP_END;
}

static const char *referrer_policy_of(reply_kind_t kind)
{
	return kind == REPLY_SIGNIN ? "same-origin" : "no-referrer";
}

static const char *cache_control_of(reply_kind_t kind)
{
	return kind == REPLY_FILE ? "private, no-cache" : "no-store";
}

/* The sign-in page: a plain form, no script, no style. */
static const char SIGNIN_HEAD[] =
	"<!doctype html>\n"
	"<html lang=\"en\">\n"
	"<head>\n"
	"<meta charset=\"utf-8\">\n"
	"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	"<title>Vigil: sign in</title>\n"
	"</head>\n"
	"<body>\n"
	"<main id=\"signin\">\n"
	"<h1>Vigil</h1>\n"
	"<form id=\"signin-form\" method=\"post\" action=\"" SESSION_PATH "\" "
	"autocomplete=\"off\">\n"
	"<p><label for=\"token\">API token</label></p>\n"
	"<p><input id=\"token\" name=\"token\" type=\"password\" spellcheck=\"false\" "
	"placeholder=\"vgl_…\" required autofocus></p>\n"
	"<p><button type=\"submit\">Sign in</button></p>\n"
	"</form>\n";
static const char SIGNIN_TAIL[] =
	"<p>Create a token on the collector host: "
	"<code>vigil-collector token create --name NAME --role viewer</code></p>\n"
	"</main>\n"
	"</body>\n"
	"</html>\n";

/* ---- replies ------------------------------------------------------------------------------ */

void reply_headers(struct evhttp_request *req, const char *ctype, reply_kind_t kind)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	evhttp_add_header(out, "Content-Security-Policy", csp_of(kind));
	evhttp_add_header(out, "Referrer-Policy", referrer_policy_of(kind));
	for (size_t i = 0; i < N_SECURITY_HEADERS; i++)
		evhttp_add_header(out, SECURITY_HEADERS[i][0], SECURITY_HEADERS[i][1]);
	evhttp_add_header(out, "Content-Type", ctype);
	evhttp_add_header(out, "Cache-Control", cache_control_of(kind));
}

void reply_count(http_t *h, int status)
{
	int cls = status / 100;
	h->requests[cls >= 1 && cls <= 5 ? cls : 0]++;
}

/* Stop caring about the connection's close before handing req back. */
struct evhttp_request *reply_release(hreq_t *r)
{
	struct evhttp_request *req = r->req;
	if (r->evcon)
		evhttp_connection_set_closecb(r->evcon, NULL, NULL);
	r->req = NULL;
	r->evcon = NULL;
	return req;
}

void hreq_free(hreq_t *r)
{
	if (!r)
		return;
	if (r->state_free)
		r->state_free(r->state);
	qparams_free(&r->qp);
	free(r->path);
	free(r->query);
	OPENSSL_cleanse(r->token, sizeof(r->token));
	settings_snap_drop(r->snap);
	free(r);
}

static void reply(hreq_t *r, int status, const char *ctype, const char *body, size_t len,
		  reply_kind_t kind)
{
	reply_count(r->h, status);
	if (r->req) {
		http_conn_rearm(r->evcon);
		struct evhttp_request *req = reply_release(r);
		reply_headers(req, ctype, kind);
		if (status == 401)
			evhttp_add_header(evhttp_request_get_output_headers(req),
					  "WWW-Authenticate", "Bearer realm=\"vigil\"");
		if (status == 429 || status == 503) /* rate limit; busy or no database */
			evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After",
					  "1");
		struct evbuffer *b = evbuffer_new();
		if (b)
			evbuffer_add(b, body, len);
		evhttp_send_reply(req, status, NULL, b);
		if (b)
			evbuffer_free(b);
	}
	reply_finish(r);
}

void hreq_reply(hreq_t *r, int status, const char *ctype, const char *body, size_t len)
{
	reply(r, status, ctype, body, len, REPLY_API);
}

/* Add a header to the answer of r (before it is sent). */
void reply_header(hreq_t *r, const char *name, const char *value)
{
	if (r->req)
		evhttp_add_header(evhttp_request_get_output_headers(r->req), name, value);
}

/* Finish with the sign-in page; msg (static text) says why, if not NULL. */
void reply_signin_page(hreq_t *r, const char *msg)
{
	sbuf_t b;
	sbuf_init(&b);
	sbuf_add(&b, SIGNIN_HEAD);
	if (msg)
		sbuf_printf(&b, "<p id=\"signin-error\" role=\"alert\">%s</p>\n", msg);
	sbuf_add(&b, SIGNIN_TAIL);
	if (b.oom)
		hreq_error(r, 503, "internal", NULL, "out of memory");
	else
		reply(r, 401, "text/html; charset=utf-8", b.s, b.len, REPLY_SIGNIN);
	sbuf_free(&b);
}

void hreq_error(hreq_t *r, int status, const char *code, const char *param, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_t *o = json_pack("{s:s, s:s}", "error", code, "message", msg);
	if (o && param)
		json_object_set_new(o, "parameter", json_string(param));
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	const char *body = s ? s : "{\"error\":\"internal\"}";
	hreq_reply(r, status, "application/json", body, strlen(body));
	free(s);
}

void hreq_db_error(hreq_t *r, const apidb_job_t *job)
{
	if (job->status == APIDB_ERR_QUERY && strcmp(job->sqlstate, "57014") == 0) {
		hreq_error(r, 503, "query_timeout", NULL,
			   "the query took longer than http_query_timeout; narrow the filters");
		return;
	}
	if (job->status == APIDB_ERR_QUERY && strncmp(job->sqlstate, "22", 2) == 0) {
		hreq_error(r, 400, "bad_request", NULL, "a value was refused by the database");
		return;
	}
	log_warn("[https %s] database: %s (SQLSTATE %s)", r->peer, job->error,
		 job->sqlstate[0] ? job->sqlstate : "-");
	if (job->replica_failed) {
		hreq_error(r, 503, "replica_unavailable", NULL,
			   "the read replica (http_db) did not answer; reads need it");
		return;
	}
	hreq_error(r, 503, "database_unavailable", NULL, "the database did not answer");
}

void hreq_stream_start(hreq_t *r, const char *ctype, const char *filename)
{
	r->st = HR_STREAM;
	if (!r->req)
		return;
	reply_headers(r->req, ctype, REPLY_API);
	if (filename) {
		char cd[160];
		snprintf(cd, sizeof(cd), "attachment; filename=\"%s\"", filename);
		evhttp_add_header(evhttp_request_get_output_headers(r->req), "Content-Disposition",
				  cd);
	}
	reply_count(r->h, 200);
	evhttp_send_reply_start(r->req, 200, "OK");
}

static void chunk_written(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	hreq_t *r = arg;
	r->st = HR_STREAM;
	if (!r->req)
		hreq_free(r);
	else if (r->more)
		r->more(r);
	else
		hreq_stream_end(r);
}

void hreq_stream_chunk(hreq_t *r, sbuf_t *data, void (*more)(hreq_t *r))
{
	if (!r->req) {
		reply_finish(r);
		return;
	}
	if (data->len == 0) { /* evhttp sends no empty chunk, nor calls back */
		if (more)
			more(r);
		else
			hreq_stream_end(r);
		return;
	}
	struct evbuffer *b = evbuffer_new();
	if (b && data->len)
		evbuffer_add(b, data->s, data->len);
	r->more = more;
	r->st = HR_FLUSH;
	if (b) {
		evhttp_send_reply_chunk_with_cb(r->req, b, chunk_written, r);
		evbuffer_free(b);
	}
}

void hreq_stream_end(hreq_t *r)
{
	if (r->req) {
		http_conn_rearm(r->evcon);
		struct evhttp_request *req = reply_release(r);
		evhttp_send_reply_end(req);
	}
	reply_finish(r);
}

/* The request is answered (or its client gone): free it. */
void reply_finish(hreq_t *r)
{
	if (r->req) {
		/* a handler returned without answering: a bug, but answer */
		hreq_error(r, 500, "internal", NULL, "no answer");
		return;
	}
	hreq_free(r);
}

/* The connection closed under a request we still hold. */
void reply_close_cb(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	hreq_t *r = arg;
	struct evhttp_request *req = r->req;
	r->req = NULL;
	r->evcon = NULL;
	/* Detached by evhttp (EOF while we worked): it is ours to free. */
	if (req && !evhttp_request_get_connection(req))
		evhttp_request_free(req);
	if (r->st == HR_FLUSH || r->st == HR_STREAM || r->st == HR_NEW)
		hreq_free(r);
	/* HR_AUTH / HR_DB: the job's completion frees r */
}

/* A whole answer written by hand, for a connection evhttp is not answering:
 * the status line, the security headers, the JSON body, and close. */
static void reply_by_hand(struct evbuffer *out, const char *status, const char *body, int blen)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	evbuffer_add_printf(out, "HTTP/1.1 %s\r\nDate: %s\r\n", status, date);
	evbuffer_add_printf(out, "Content-Security-Policy: %s\r\n", csp_of(REPLY_API));
	evbuffer_add_printf(out, "Referrer-Policy: %s\r\n", referrer_policy_of(REPLY_API));
	for (size_t i = 0; i < N_SECURITY_HEADERS; i++)
		evbuffer_add_printf(out, "%s: %s\r\n", SECURITY_HEADERS[i][0],
				    SECURITY_HEADERS[i][1]);
	evbuffer_add_printf(out,
			    "Content-Type: application/json\r\nCache-Control: %s\r\n"
			    "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
			    cache_control_of(REPLY_API), blen, body);
}

void reply_too_large(struct evbuffer *out, const char *what, const char *setting, long long limit)
{
	char body[160];
	int blen = snprintf(body, sizeof(body),
			    "{\"error\":\"request_too_large\",\"message\":\"the %s is above %s "
			    "(%lld bytes)\"}",
			    what, setting, limit);
	reply_by_hand(out, "413 Content Too Large", body, blen);
}

void reply_bad_head(struct evbuffer *out, const char *why)
{
	char body[160];
	int blen =
		snprintf(body, sizeof(body),
			 "{\"error\":\"bad_request\",\"message\":\"bad request head: %s\"}", why);
	reply_by_hand(out, "400 Bad Request", body, blen);
}
