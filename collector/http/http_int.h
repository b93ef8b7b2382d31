// SPDX-License-Identifier: Apache-2.0
/*
 * Private to the HTTPS server's files, shared among them and seen by no
 * other: the bodies of the server (http_t) and of a request (hreq_t), and
 * what each file offers the others.
 *
 *   http.c       the server: life cycle, TLS, connections and their
 *                deadlines, request heads (413, 400), samples for stats
 *   reply.c      replies: security headers, errors, streams, the 413 and
 *                the 400 for a bad head written by hand, the sign-in page
 *   files.c      the status page's files, served from memory
 *   (common/ratelimit.c: a token bucket per socket peer)
 *   session.c    authentication, the token cache, signing in and out
 *   dispatch.c   a request from its arrival to its handler, and the
 *                database jobs of handlers
 */
#ifndef VIGIL_HTTP_INT_H
#define VIGIL_HTTP_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "admit.h"
#include "http/api.h"
#include "http/http.h"
#include "ratelimit.h"

#define SAMPLES_MAX 360 /* one hour */
#define WEB_MAX_FILES 256
#define SESSION_PATH "/api/v1/session"

struct event;
struct event_base;
struct evbuffer;
struct evhttp;
struct evhttp_bound_socket;
struct evhttp_connection;
struct evhttp_request;

/* What an answer is, for its headers. */
typedef enum {
	REPLY_API,    /* JSON, CSV, text: never cached */
	REPLY_FILE,   /* a file of the status page */
	REPLY_SIGNIN, /* the sign-in page */
} reply_kind_t;

typedef struct token_slot token_slot_t;

typedef struct {
	char *path; /* URL path, e.g. /static/app.js */
	const char *ctype;
	char *data;
	size_t len;
} web_file_t;

/* Where a request's credential came from. */
typedef enum {
	CRED_NONE,
	CRED_CERT,
	CRED_HEADER, /* Authorization: Bearer */
	CRED_COOKIE, /* the session cookie */
	CRED_FORM,   /* the sign-in form */
} cred_t;

typedef enum {
	HR_NEW,
	HR_AUTH,  /* waiting for the token lookup */
	HR_DB,	  /* waiting for a handler's job */
	HR_FLUSH, /* streaming: waiting for a chunk to be written */
	HR_STREAM,
} hreq_state_t;

struct hreq {
	http_t *h;
	settings_snap_t *snap;	    /* the settings as the request arrived */
	const settings_t *cfg;	    /* &snap->s: read strings here, never col->settings */
	struct evhttp_request *req; /* NULL once the connection is gone */
	struct evhttp_connection *evcon;
	hreq_state_t st;
	char peer[48];
	char method[8];
	char *path;  /* raw (still %-encoded) */
	char *query; /* raw, may be NULL */
	qparams_t qp;
	char principal[160];
	auth_role_t role;
	char token_hash[AUTH_HASH_LEN + 1];
	cred_t cred;
	bool page;			/* a path of the status page: a 401 is the sign-in page */
	bool signin;			/* POST /api/v1/session */
	char token[AUTH_TOKEN_LEN + 1]; /* signin: the token, to set as the cookie */
	hreq_done_fn done;
	void (*more)(hreq_t *r);
	void *state;
	void (*state_free)(void *);
	int64_t now_us;
};

struct http {
	collector_t *col;
	X509 *agent_issuer; /* enrollment's issuing CA: what it signed is no operator */
	struct event_base *base;
	struct evhttp *evhttp;
	struct evhttp_bound_socket *bound;
	pthread_t thread;
	bool started;
	struct event *stop_ev;
	struct event *sample_ev;
	apidb_t *db;

	pthread_mutex_t tls_lock; /* guards ctx */
	SSL_CTX *ctx;

	int n_conns;	   /* loop thread only, like the rest of this block */
	int n_established; /* connections past their first request */
	admit_t pending;   /* connections before their first request (http.c) */
	uint64_t conns_refused, pending_dropped;
	int64_t admit_log_ns;
	rate_slot_t *rate;
	token_slot_t *tokens;
	web_file_t files[WEB_MAX_FILES];
	int n_files;
	web_file_t *openapi;

	api_sample_t samples[SAMPLES_MAX];
	size_t sample_head, n_samples;
	api_sample_t sample_view[SAMPLES_MAX];

	uint64_t requests[6];
	uint64_t rate_limited;
	uint64_t auth_failures;
};

static inline uint32_t http_fnv(const char *s)
{
	uint32_t x = 2166136261u;
	for (; *s; s++)
		x = (x ^ (uint8_t)*s) * 16777619u;
	return x;
}

/* ---- http.c: the connection under a request ---- */
/* A request was handed over on its connection: no deadline while it is
 * answered, and the next head starts where it ends. */
void http_conn_request(struct evhttp_request *req);
/* The answer is going out: give the connection the request deadline again. */
void http_conn_rearm(struct evhttp_connection *evcon);
/* The identity (CN) of the client certificate presented on evcon into cn.
 * Return 0, or -1 if there is none, or if enrollment's issuing CA signed
 * it (an agent's certificate is never an operator's, whatever its name). */
int http_conn_cert_identity(struct evhttp_connection *evcon, char *cn, size_t cnlen);
/* The serial of that certificate in hex (tls_peer_serial_hex) into out.
 * Return 0, or -1 if there is none. */
int http_conn_cert_serial(struct evhttp_connection *evcon, char *out, size_t outlen);

/* ---- reply.c ---- */
/* Count an answer by its status class. */
void reply_count(http_t *h, int status);
/* Add the headers of an answer of kind with ctype to req. */
void reply_headers(struct evhttp_request *req, const char *ctype, reply_kind_t kind);
/* Add a header to the answer of r (before it is sent). */
void reply_header(hreq_t *r, const char *name, const char *value);
/* Stop caring about the connection's close; return r's request (now the
 * caller's to answer) and forget it. */
struct evhttp_request *reply_release(hreq_t *r);
/* The request is answered (or its client gone): free it. */
void reply_finish(hreq_t *r);
/* Finish with the sign-in page (401); msg (static text) says why, if not
 * NULL. */
void reply_signin_page(hreq_t *r, const char *msg);
/* The connection closed under a request we still hold (evhttp close
 * callback; arg is the request). */
void reply_close_cb(struct evhttp_connection *evcon, void *arg);
/* Write a whole 413 answer, head and body, to out, for a connection that
 * evhttp is not answering: what is above setting (limit). */
void reply_too_large(struct evbuffer *out, const char *what, const char *setting, long long limit);
/* Write a whole 400 answer to out, for a connection whose request head was
 * refused before evhttp saw it: why is a static reason (api_head_feed),
 * never the peer's bytes. */
void reply_bad_head(struct evbuffer *out, const char *why);
/* Free r and what it holds. Accepts NULL. */
void hreq_free(hreq_t *r);

/* ---- files.c ---- */
/* Load the files under web_root into h. */
void files_load(http_t *h);
/* Answer r with a file of the status page (authenticated), or 404. */
void files_serve(hreq_t *r);
/* Free the files loaded. */
void files_free(http_t *h);

/* ---- dispatch.c: the rate limit (common/ratelimit.h) ---- */
/* Take one token from peer's bucket. Return false if it is empty. */
bool ratelimit_take(http_t *h, const char *peer);

/* ---- session.c ---- */
/* An empty token cache, or NULL when out of memory. Free with free(). */
token_slot_t *session_cache_new(void);
/* Authenticate r, then route it (dispatch_route) or refuse it (401). */
void session_authenticate(hreq_t *r);
/* POST /api/v1/session signs in, DELETE signs out. */
void session_handle(hreq_t *r);

/* ---- dispatch.c ---- */
/* evhttp's callback for every request; arg is the server. */
void dispatch_request(struct evhttp_request *req, void *arg);
/* Route an authenticated request to its file or handler. */
void dispatch_route(hreq_t *r);
/* Queue job for r on the pool; done runs with it on the loop, in state st
 * meanwhile. */
void dispatch_submit(hreq_t *r, apidb_job_t *job, hreq_done_fn done, hreq_state_t st);

#endif
