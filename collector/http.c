/*
 * The HTTPS server (see http.h): evhttp over bufferevent_openssl on its own
 * thread. What it does before a handler runs: a deadline per connection
 * (TLS handshake plus each request's head and body, so a client dribbling
 * bytes is closed), header and body limits (413), a token bucket per socket
 * peer (429; X-Forwarded-For is never read), security headers on every
 * answer, the static files of the status page (served from memory: a path
 * not in the table is a 404, so no traversal), and authentication: an
 * operator client certificate, or a bearer token looked up by its SHA-256
 * (cached for http_token_cache_ttl). Handlers live in api.c; database work
 * runs on the apidb pool and comes back to this loop.
 */
#include "http.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "api.h"
#include "log.h"
#include "tls.h"
#include "vtime.h"

#define RATE_SLOTS 4096
#define RATE_PROBES 8
#define TOKEN_CACHE_SLOTS 1024
#define SAMPLE_INTERVAL_S 10
#define SAMPLES_MAX 360 /* one hour */
#define WEB_MAX_FILE (4 * 1024 * 1024)
#define WEB_MAX_FILES 256

static const char *const SECURITY_HEADERS[][2] = {
	{"Content-Security-Policy",
	 "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
	 "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"},
	{"X-Content-Type-Options", "nosniff"},
	{"X-Frame-Options", "DENY"},
	{"Referrer-Policy", "no-referrer"},
	{"Strict-Transport-Security", "max-age=31536000"},
	{"Cross-Origin-Opener-Policy", "same-origin"},
	{"Cross-Origin-Resource-Policy", "same-origin"},
};

typedef struct {
	char ip[48];
	double tokens;
	int64_t last_ns;
} rate_slot_t;

typedef struct {
	char hash[AUTH_HASH_LEN + 1];
	char name[80];
	auth_role_t role; /* NONE: not a valid token */
	int64_t until_ns; /* cache entry valid until */
} token_slot_t;

typedef struct {
	char *path; /* URL path, e.g. /static/app.js */
	const char *ctype;
	char *data;
	size_t len;
} web_file_t;

/* Per TLS connection; freed with its SSL object (ex_data free hook). */
typedef struct hconn {
	http_t *h;
	struct bufferevent *bev;
	struct event *deadline;
	bool refuse; /* over http_max_connections */
} hconn_t;

typedef enum {
	HR_NEW,
	HR_AUTH,  /* waiting for the token lookup */
	HR_DB,	  /* waiting for a handler's job */
	HR_FLUSH, /* streaming: waiting for a chunk to be written */
	HR_STREAM,
} hreq_state_t;

struct hreq {
	http_t *h;
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
	hreq_done_fn done;
	void (*more)(hreq_t *r);
	void *state;
	void (*state_free)(void *);
	int64_t now_us;
};

struct http {
	collector_t *col;
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

	int n_conns; /* loop thread only */
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

static int ex_index = -1;
static pthread_once_t ex_once = PTHREAD_ONCE_INIT;

static void finish(hreq_t *r);
static void route(hreq_t *r);

/* ---- TLS ------------------------------------------------------------------------- */

static SSL_CTX *build_ctx(const settings_t *s, char *err, size_t errlen)
{
	const char *cert = s->http_tls_cert[0] ? s->http_tls_cert : s->tls_cert;
	const char *key = s->http_tls_key[0] ? s->http_tls_key : s->tls_key;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		goto fail;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
					 SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "HTTPS certificate/key %s / %s unusable", cert, key);
		goto fail_msg;
	}
	if (s->http_operator_ca[0]) {
		if (SSL_CTX_load_verify_locations(ctx, s->http_operator_ca, NULL) != 1) {
			snprintf(err, errlen, "cannot load http_operator_ca %s",
				 s->http_operator_ca);
			goto fail_msg;
		}
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(s->http_operator_ca);
		if (names)
			SSL_CTX_set_client_CA_list(ctx, names);
		/* A certificate is optional (tokens work too); one that is
		 * presented must chain to the operator CA. */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_verify_client_auth);
		SSL_CTX_set_verify_depth(ctx, 4);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	static const unsigned char sid[] = "vigil-api";
	SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
	ERR_clear_error();
	return ctx;
fail:
	snprintf(err, errlen, "cannot create the HTTPS TLS context");
fail_msg:
	tls_log_errors("[https]", "TLS");
	SSL_CTX_free(ctx);
	return NULL;
}

static SSL_CTX *current_ctx(http_t *h)
{
	pthread_mutex_lock(&h->tls_lock);
	SSL_CTX *c = h->ctx;
	SSL_CTX_up_ref(c);
	pthread_mutex_unlock(&h->tls_lock);
	return c;
}

void http_reload(http_t *h)
{
	if (!h)
		return;
	char err[256];
	SSL_CTX *ctx = build_ctx(h->col->settings, err, sizeof(err));
	if (!ctx) {
		log_error("reload: HTTPS: %s; keeping the previous certificates", err);
		return;
	}
	pthread_mutex_lock(&h->tls_lock);
	SSL_CTX *old = h->ctx;
	h->ctx = ctx;
	pthread_mutex_unlock(&h->tls_lock);
	SSL_CTX_free(old);
}

/* ---- connections -------------------------------------------------------------------- */

static void hconn_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			  void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	hconn_t *c = ptr;
	if (!c)
		return;
	if (c->deadline)
		event_free(c->deadline);
	c->h->n_conns--;
	free(c);
}

static void ex_init(void)
{
	ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, hconn_free_cb);
}

/* The connection took too long (handshake, or the head and body of a
 * request), or is over the limit: close it through evhttp's own path. */
static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	hconn_t *c = arg;
	bufferevent_trigger_event(c->bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, 0);
}

static void arm_deadline(hconn_t *c, int64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	event_add(c->deadline, &tv);
}

static struct bufferevent *bev_cb(struct event_base *base, void *arg)
{
	http_t *h = arg;
	SSL_CTX *ctx = current_ctx(h);
	SSL *ssl = SSL_new(ctx);
	SSL_CTX_free(ctx);
	hconn_t *c = calloc(1, sizeof(*c));
	if (!ssl || !c) {
		/* Returning NULL would make evhttp serve this connection without
		 * TLS: never. */
		log_error("[https] out of memory accepting a connection");
		abort();
	}
	c->h = h;
	h->n_conns++;
	SSL_set_ex_data(ssl, ex_index, c);
	c->bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
						BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		log_error("[https] cannot create a TLS bufferevent");
		abort();
	}
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	c->deadline = event_new(base, -1, 0, deadline_cb, c);
	if (c->deadline) {
		if (h->n_conns > SETTING(h->col, http_max_connections))
			arm_deadline(c, 0);
		else
			arm_deadline(c, SETTING(h->col, http_request_timeout_ms));
	}
	return c->bev;
}

static hconn_t *conn_of(struct evhttp_connection *evcon)
{
	if (!evcon)
		return NULL;
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	return ssl ? SSL_get_ex_data(ssl, ex_index) : NULL;
}

/* ---- rate limit ---------------------------------------------------------------------------- */

static uint32_t fnv(const char *s)
{
	uint32_t x = 2166136261u;
	for (; *s; s++)
		x = (x ^ (uint8_t)*s) * 16777619u;
	return x;
}

/* Take one token from peer's bucket. Return false if it is empty. */
static bool rate_take(http_t *h, const char *peer)
{
	double rate = (double)SETTING(h->col, http_rate_limit);
	double burst = (double)SETTING(h->col, http_rate_burst);
	if (rate <= 0)
		return true;
	int64_t now = vtime_mono_ns();
	uint32_t b = fnv(peer);
	rate_slot_t *slot = NULL, *oldest = NULL;
	for (int i = 0; i < RATE_PROBES; i++) {
		rate_slot_t *s = &h->rate[(b + (uint32_t)i) % RATE_SLOTS];
		if (strcmp(s->ip, peer) == 0) {
			slot = s;
			break;
		}
		if (!oldest || s->last_ns < oldest->last_ns)
			oldest = s;
	}
	if (!slot) {
		slot = oldest;
		snprintf(slot->ip, sizeof(slot->ip), "%s", peer);
		slot->tokens = burst;
		slot->last_ns = now;
	}
	slot->tokens += (double)(now - slot->last_ns) / 1e9 * rate;
	if (slot->tokens > burst)
		slot->tokens = burst;
	slot->last_ns = now;
	if (slot->tokens < 1.0)
		return false;
	slot->tokens -= 1.0;
	return true;
}

/* ---- replies ------------------------------------------------------------------------------ */

static void add_headers(struct evhttp_request *req, const char *ctype, bool api)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	for (size_t i = 0; i < sizeof(SECURITY_HEADERS) / sizeof(SECURITY_HEADERS[0]); i++)
		evhttp_add_header(out, SECURITY_HEADERS[i][0], SECURITY_HEADERS[i][1]);
	evhttp_add_header(out, "Content-Type", ctype);
	evhttp_add_header(out, "Cache-Control", api ? "no-store" : "no-cache");
}

static void count_status(http_t *h, int status)
{
	int cls = status / 100;
	h->requests[cls >= 1 && cls <= 5 ? cls : 0]++;
}

/* Stop caring about the connection's close before handing req back. */
static struct evhttp_request *release(hreq_t *r)
{
	struct evhttp_request *req = r->req;
	if (r->evcon)
		evhttp_connection_set_closecb(r->evcon, NULL, NULL);
	r->req = NULL;
	r->evcon = NULL;
	return req;
}

static void free_hreq(hreq_t *r)
{
	if (!r)
		return;
	if (r->state_free)
		r->state_free(r->state);
	qparams_free(&r->qp);
	free(r->path);
	free(r->query);
	free(r);
}

static void rearm(hreq_t *r)
{
	hconn_t *c = conn_of(r->evcon);
	if (c && c->deadline)
		arm_deadline(c, SETTING(r->h->col, http_request_timeout_ms));
}

void hreq_reply(hreq_t *r, int status, const char *ctype, const char *body, size_t len)
{
	count_status(r->h, status);
	if (r->req) {
		rearm(r);
		struct evhttp_request *req = release(r);
		add_headers(req, ctype, true);
		if (status == 401)
			evhttp_add_header(evhttp_request_get_output_headers(req),
					  "WWW-Authenticate", "Bearer realm=\"vigil\"");
		if (status == 429)
			evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After",
					  "1");
		struct evbuffer *b = evbuffer_new();
		if (b)
			evbuffer_add(b, body, len);
		evhttp_send_reply(req, status, NULL, b);
		if (b)
			evbuffer_free(b);
	}
	finish(r);
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
	hreq_error(r, 503, "database_unavailable", NULL, "the database did not answer");
}

void hreq_stream_start(hreq_t *r, const char *ctype, const char *filename)
{
	r->st = HR_STREAM;
	if (!r->req)
		return;
	add_headers(r->req, ctype, true);
	if (filename) {
		char cd[160];
		snprintf(cd, sizeof(cd), "attachment; filename=\"%s\"", filename);
		evhttp_add_header(evhttp_request_get_output_headers(r->req), "Content-Disposition",
				  cd);
	}
	count_status(r->h, 200);
	evhttp_send_reply_start(r->req, 200, "OK");
}

static void chunk_written(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	hreq_t *r = arg;
	r->st = HR_STREAM;
	if (!r->req)
		free_hreq(r);
	else if (r->more)
		r->more(r);
	else
		hreq_stream_end(r);
}

void hreq_stream_chunk(hreq_t *r, sbuf_t *data, void (*more)(hreq_t *r))
{
	if (!r->req) {
		finish(r);
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
		rearm(r);
		struct evhttp_request *req = release(r);
		evhttp_send_reply_end(req);
	}
	finish(r);
}

/* The request is answered (or its client gone): free it. */
static void finish(hreq_t *r)
{
	if (r->req) {
		/* a handler returned without answering: a bug, but answer */
		hreq_error(r, 500, "internal", NULL, "no answer");
		return;
	}
	free_hreq(r);
}

/* The connection closed under a request we still hold. */
static void close_cb(struct evhttp_connection *evcon, void *arg)
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
		free_hreq(r);
	/* HR_AUTH / HR_DB: the job's completion frees r */
}

/* ---- handler helpers -------------------------------------------------------------------- */

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

const char *hreq_openapi(hreq_t *r, size_t *len)
{
	if (!r->h->openapi)
		return NULL;
	*len = r->h->openapi->len;
	return r->h->openapi->data;
}

void hreq_server_stats(hreq_t *r, api_server_stats_t *out)
{
	http_t *h = r->h;
	memset(out, 0, sizeof(*out));
	memcpy(out->requests, h->requests, sizeof(out->requests));
	out->rate_limited = h->rate_limited;
	out->auth_failures = h->auth_failures;
	out->connections = h->n_conns;
	out->db_pending = apidb_pending(h->db);
	size_t first = (h->sample_head + SAMPLES_MAX - h->n_samples) % SAMPLES_MAX;
	for (size_t i = 0; i < h->n_samples; i++)
		h->sample_view[i] = h->samples[(first + i) % SAMPLES_MAX];
	out->samples = h->sample_view;
	out->n_samples = h->n_samples;
}

void qb_init(qb_t *q, bool audit)
{
	memset(q, 0, sizeof(*q));
	sbuf_init(&q->sql);
	q->audit = audit;
	if (audit)
		sbuf_add(&q->sql, "WITH vigil_audit AS (INSERT INTO audit_log (principal, role, "
				  "peer, method, path, query) VALUES ($1, $2, $3, $4, $5, $6)) ");
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

static void job_done(apidb_job_t *job, void *arg)
{
	hreq_t *r = arg;
	if (!r->req) { /* the client went away */
		apidb_job_free(job);
		free_hreq(r);
		return;
	}
	r->st = HR_NEW;
	r->done(r, job);
}

static void submit(hreq_t *r, apidb_job_t *job, hreq_done_fn done, hreq_state_t st)
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
	qb_free(q);
	if (!ok) {
		apidb_job_free(job);
		hreq_error(r, 500, "internal", NULL, "out of memory");
		return;
	}
	submit(r, job, done, HR_DB);
}

/* ---- static files -------------------------------------------------------------------------- */

static const char *ctype_of(const char *name)
{
	const char *dot = strrchr(name, '.');
	if (!dot)
		return "text/plain; charset=utf-8";
	if (!strcmp(dot, ".html"))
		return "text/html; charset=utf-8";
	if (!strcmp(dot, ".js"))
		return "text/javascript; charset=utf-8";
	if (!strcmp(dot, ".css"))
		return "text/css; charset=utf-8";
	if (!strcmp(dot, ".json"))
		return "application/json";
	if (!strcmp(dot, ".svg"))
		return "image/svg+xml";
	if (!strcmp(dot, ".png"))
		return "image/png";
	if (!strcmp(dot, ".ico"))
		return "image/x-icon";
	return "text/plain; charset=utf-8";
}

static int load_file(http_t *h, const char *fs_path, const char *url)
{
	if (h->n_files >= WEB_MAX_FILES)
		return -1;
	int fd = open(fs_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > WEB_MAX_FILE) {
		close(fd);
		return -1;
	}
	web_file_t *f = &h->files[h->n_files];
	f->data = malloc((size_t)st.st_size + 1);
	f->path = strdup(url);
	size_t got = 0;
	while (f->data && got < (size_t)st.st_size) {
		ssize_t n = read(fd, f->data + got, (size_t)st.st_size - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (!f->data || !f->path || got != (size_t)st.st_size) {
		free(f->data);
		free(f->path);
		memset(f, 0, sizeof(*f));
		return -1;
	}
	f->data[got] = '\0';
	f->len = got;
	f->ctype = ctype_of(url);
	h->n_files++;
	return 0;
}

/* Load dir (and its subdirectories, two levels) under url prefix. */
static void load_dir(http_t *h, const char *dir, const char *url, int depth)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char fs[1024], u[512];
		snprintf(fs, sizeof(fs), "%s/%s", dir, e->d_name);
		snprintf(u, sizeof(u), "%s/%s", url, e->d_name);
		struct stat st;
		if (lstat(fs, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode) && depth < 2)
			load_dir(h, fs, u, depth + 1);
		else if (S_ISREG(st.st_mode) && load_file(h, fs, u) != 0)
			log_warn("[https] web file %s not served", fs);
	}
	closedir(d);
}

static void load_web(http_t *h)
{
	const char *root = h->col->settings->web_root;
	if (!root[0])
		return;
	load_dir(h, root, "", 0);
	for (int i = 0; i < h->n_files; i++)
		if (strcmp(h->files[i].path, "/openapi.json") == 0)
			h->openapi = &h->files[i];
	if (!h->n_files)
		log_warn("[https] no web files in %s; the status page is not served", root);
}

static const web_file_t *find_file(http_t *h, const char *path)
{
	if (strcmp(path, "/") == 0)
		path = "/index.html";
	for (int i = 0; i < h->n_files; i++)
		if (strcmp(h->files[i].path, path) == 0)
			return &h->files[i];
	return NULL;
}

/* ---- authentication --------------------------------------------------------------------------- */

static token_slot_t *token_slot(http_t *h, const char *hash)
{
	return &h->tokens[fnv(hash) % TOKEN_CACHE_SLOTS];
}

static void authenticated(hreq_t *r)
{
	r->st = HR_NEW;
	route(r);
}

static void unauthorized(hreq_t *r, const char *why)
{
	r->h->auth_failures++;
	log_info("[https %s] 401 %s %s: %s", r->peer, r->method, r->path, why);
	hreq_error(r, 401, "unauthorized", NULL, "%s", why);
}

static void token_done(hreq_t *r, apidb_job_t *job)
{
	if (job->status != APIDB_OK) {
		hreq_db_error(r, job);
		apidb_job_free(job);
		return;
	}
	token_slot_t *s = token_slot(r->h, r->token_hash);
	snprintf(s->hash, sizeof(s->hash), "%s", r->token_hash);
	s->until_ns = vtime_mono_ns() + SETTING(r->h->col, http_token_cache_ttl_ms) * 1000000;
	s->role = AUTH_ROLE_NONE;
	s->name[0] = '\0';
	if (job->n_rows == 1) {
		s->role = auth_role_parse(apidb_cell(job, 0, 1));
		snprintf(s->name, sizeof(s->name), "token:%s", apidb_cell(job, 0, 0));
	}
	apidb_job_free(job);
	if (s->role == AUTH_ROLE_NONE) {
		unauthorized(r, "unknown, expired or revoked token");
		return;
	}
	snprintf(r->principal, sizeof(r->principal), "%s", s->name);
	r->role = s->role;
	authenticated(r);
}

static bool cn_listed(const char *list, const char *cn)
{
	size_t n = strlen(cn);
	const char *p = list;
	while (p && *p) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t l = strcspn(p, ",");
		size_t t = l;
		while (t && p[t - 1] == ' ')
			t--;
		if (t == n && strncmp(p, cn, n) == 0)
			return true;
		p += l;
	}
	return false;
}

static void authenticate(hreq_t *r)
{
	hconn_t *c = conn_of(r->evcon);
	SSL *ssl = c ? bufferevent_openssl_get_ssl(c->bev) : NULL;
	char cn[128];
	if (ssl && r->h->col->settings->http_operator_ca[0] && SSL_get0_peer_certificate(ssl) &&
	    tls_peer_identity(ssl, cn, sizeof(cn)) == 0) {
		snprintf(r->principal, sizeof(r->principal), "cert:%s", cn);
		r->role = cn_listed(r->h->col->settings->http_admin_cns, cn) ? AUTH_ROLE_ADMIN
									     : AUTH_ROLE_VIEWER;
		authenticated(r);
		return;
	}
	const char *hdr =
		evhttp_find_header(evhttp_request_get_input_headers(r->req), "Authorization");
	char token[AUTH_TOKEN_LEN + 1];
	if (!hdr) {
		unauthorized(r, "an API token (Authorization: Bearer ...) or an operator "
				"certificate is required");
		return;
	}
	if (auth_bearer(hdr, token) != 0) {
		unauthorized(r, "malformed Authorization header or token");
		return;
	}
	auth_token_hash(token, r->token_hash);
	token_slot_t *s = token_slot(r->h, r->token_hash);
	if (strcmp(s->hash, r->token_hash) == 0 && s->until_ns > vtime_mono_ns()) {
		if (s->role == AUTH_ROLE_NONE) {
			unauthorized(r, "unknown, expired or revoked token");
			return;
		}
		snprintf(r->principal, sizeof(r->principal), "%s", s->name);
		r->role = s->role;
		authenticated(r);
		return;
	}
	apidb_job_t *job = apidb_job_new("SELECT name, role FROM api_tokens WHERE hash = $1 "
					 "AND revoked_at IS NULL "
					 "AND (expires_at IS NULL OR expires_at > now())");
	if (!job || apidb_job_param(job, r->token_hash) != 0) {
		apidb_job_free(job);
		hreq_error(r, 500, "internal", NULL, "out of memory");
		return;
	}
	submit(r, job, token_done, HR_AUTH);
}

/* ---- dispatch ------------------------------------------------------------------------------------ */

static void route(hreq_t *r)
{
	char bad[80];
	if (qparams_parse(r->query, &r->qp, bad, sizeof(bad)) != 0) {
		hreq_error(r, 400, "bad_parameter", bad, "malformed query parameter '%s'", bad);
		return;
	}
	if (!api_dispatch(r, r->path))
		hreq_error(r, 404, "not_found", NULL, "no such endpoint");
}

static void request_cb(struct evhttp_request *req, void *arg)
{
	http_t *h = arg;
	hreq_t *r = calloc(1, sizeof(*r));
	if (!r) {
		evhttp_send_error(req, 503, "Out of memory");
		return;
	}
	r->h = h;
	r->req = req;
	r->evcon = evhttp_request_get_connection(req);
	r->now_us = vtime_now_ns() / 1000;
	hconn_t *c = conn_of(r->evcon);
	if (c && c->deadline)
		event_del(c->deadline); /* the request is in: no deadline while we answer */
	char *addr = NULL;
	ev_uint16_t port = 0;
	if (r->evcon)
		evhttp_connection_get_peer(r->evcon, &addr, &port);
	snprintf(r->peer, sizeof(r->peer), "%s", addr ? addr : "?");
	if (r->evcon)
		evhttp_connection_set_closecb(r->evcon, close_cb, r);
	snprintf(r->method, sizeof(r->method), "GET");

	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	r->path = strdup(path && *path ? path : "/");
	r->query = query ? strdup(query) : NULL;
	if (!r->path || (query && !r->query)) {
		hreq_error(r, 503, "internal", NULL, "out of memory");
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET");
		hreq_error(r, 405, "method_not_allowed", NULL, "only GET is served");
		return;
	}
	if (!rate_take(h, r->peer)) {
		h->rate_limited++;
		hreq_error(r, 429, "rate_limited", NULL, "too many requests from %s", r->peer);
		return;
	}
	if (strcmp(r->path, "/healthz") == 0) {
		static const char ok[] = "{\"status\":\"ok\"}";
		hreq_reply(r, 200, "application/json", ok, sizeof(ok) - 1);
		return;
	}
	if (strncmp(r->path, "/api/", 5) != 0 && strcmp(r->path, "/metrics") != 0 &&
	    strcmp(r->path, "/readyz") != 0) {
		/* The status page's code (no data): the same files for everyone. */
		const web_file_t *f =
			strcmp(r->path, "/openapi.json") == 0 ? NULL : find_file(h, r->path);
		if (!f) {
			hreq_error(r, 404, "not_found", NULL, "no such file");
			return;
		}
		count_status(h, 200);
		rearm(r);
		struct evhttp_request *rq = release(r);
		add_headers(rq, f->ctype, false);
		struct evbuffer *b = evbuffer_new();
		if (b)
			evbuffer_add_reference(b, f->data, f->len, NULL, NULL);
		evhttp_send_reply(rq, 200, "OK", b);
		if (b)
			evbuffer_free(b);
		finish(r);
		return;
	}
	authenticate(r);
}

/* ---- samples for stats ----------------------------------------------------------------------------- */

static void sample_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	http_t *h = arg;
	api_sample_t *s = &h->samples[h->sample_head];
	s->t_us = vtime_now_ns() / 1000;
	s->events_stored = atomic_load(&h->col->counters.events_stored);
	s->agents_connected = collector_connected_count(h->col);
	h->sample_head = (h->sample_head + 1) % SAMPLES_MAX;
	if (h->n_samples < SAMPLES_MAX)
		h->n_samples++;
}

/* ---- life cycle -------------------------------------------------------------------------------------- */

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	http_t *h = arg;
	event_base_loopbreak(h->base);
}

static void *http_main(void *arg)
{
	http_t *h = arg;
	event_base_dispatch(h->base);
	return NULL;
}

static void drop_hreq(void *arg)
{
	hreq_t *r = arg;
	/* evhttp_free frees the request itself */
	if (r->evcon)
		evhttp_connection_set_closecb(r->evcon, NULL, NULL);
	r->req = NULL;
	free_hreq(r);
}

http_t *http_new(collector_t *col, char *err, size_t errlen)
{
	const settings_t *s = col->settings;
	pthread_once(&ex_once, ex_init);
	http_t *h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->col = col;
	pthread_mutex_init(&h->tls_lock, NULL);
	h->ctx = build_ctx(s, err, errlen);
	if (!h->ctx)
		goto fail;
	h->rate = calloc(RATE_SLOTS, sizeof(*h->rate));
	h->tokens = calloc(TOKEN_CACHE_SLOTS, sizeof(*h->tokens));
	h->base = event_base_new();
	if (!h->rate || !h->tokens || !h->base) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	h->evhttp = evhttp_new(h->base);
	h->stop_ev = event_new(h->base, -1, 0, stop_cb, h);
	h->sample_ev = event_new(h->base, -1, EV_PERSIST, sample_cb, h);
	h->db = apidb_new(h->base, s->db, (int)s->http_db_connections, s->http_query_timeout_ms);
	if (!h->evhttp || !h->stop_ev || !h->sample_ev || !h->db) {
		snprintf(err, errlen, "cannot set up the HTTPS server");
		goto fail;
	}
	evhttp_set_max_headers_size(h->evhttp, s->http_max_header_bytes);
	evhttp_set_max_body_size(h->evhttp, s->http_max_body_bytes);
	struct timeval io = {(time_t)(s->http_timeout_ms / 1000),
			     (suseconds_t)(s->http_timeout_ms % 1000) * 1000};
	evhttp_set_timeout_tv(h->evhttp, &io);
	/* Every method reaches request_cb, which answers all but GET with
	 * 405 (evhttp's own refusal would be a 501 without our headers). */
	evhttp_set_allowed_methods(h->evhttp, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
						      EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
						      EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_default_content_type(h->evhttp, "application/json");
	evhttp_set_bevcb(h->evhttp, bev_cb, h);
	evhttp_set_gencb(h->evhttp, request_cb, h);

	char host[256];
	const char *colon = strrchr(s->http_listen, ':');
	if (!colon || colon == s->http_listen || (size_t)(colon - s->http_listen) >= sizeof(host)) {
		snprintf(err, errlen, "http_listen '%s' is not host:port", s->http_listen);
		goto fail;
	}
	memcpy(host, s->http_listen, (size_t)(colon - s->http_listen));
	host[colon - s->http_listen] = '\0';
	char *h0 = host;
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		host[strlen(host) - 1] = '\0';
		h0 = host + 1;
	}
	int64_t port;
	if (api_parse_int(colon + 1, 1, 65535, &port) != 0) {
		snprintf(err, errlen, "http_listen '%s': bad port", s->http_listen);
		goto fail;
	}
	h->bound = evhttp_bind_socket_with_handle(h->evhttp, h0, (ev_uint16_t)port);
	if (!h->bound) {
		snprintf(err, errlen, "cannot listen on %s (HTTPS): %s", s->http_listen,
			 strerror(errno));
		goto fail;
	}
	/* Accepted sockets inherit TCP_NODELAY: a reply's records go out at
	 * once instead of waiting for the client's delayed ACK. */
	int one = 1;
	evutil_socket_t lfd = evhttp_bound_socket_get_fd(h->bound);
	if (setsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
		log_warn("[https] cannot set TCP_NODELAY: %s", strerror(errno));
	load_web(h);
	sample_cb(-1, 0, h);
	struct timeval tv = {SAMPLE_INTERVAL_S, 0};
	event_add(h->sample_ev, &tv);
	return h;
fail:
	http_free(h);
	return NULL;
}

int http_start(http_t *h)
{
	if (pthread_create(&h->thread, NULL, http_main, h) != 0)
		return -1;
	h->started = true;
	log_info("HTTPS API and status page on %s", h->col->settings->http_listen);
	return 0;
}

void http_free(http_t *h)
{
	if (!h)
		return;
	if (h->started) {
		event_active(h->stop_ev, EV_READ, 0);
		pthread_join(h->thread, NULL);
	}
	/* Pool threads first (their jobs refer to requests), then evhttp
	 * (it frees the connections and their requests). */
	apidb_free(h->db, drop_hreq);
	if (h->evhttp)
		evhttp_free(h->evhttp);
	/* Run the finalizers of the connections just freed (their TLS objects
	 * and deadlines) while the base is whole. */
	if (h->base)
		event_base_loop(h->base, EVLOOP_NONBLOCK);
	if (h->stop_ev)
		event_free(h->stop_ev);
	if (h->sample_ev)
		event_free(h->sample_ev);
	if (h->base)
		event_base_free(h->base);
	for (int i = 0; i < h->n_files; i++) {
		free(h->files[i].data);
		free(h->files[i].path);
	}
	SSL_CTX_free(h->ctx);
	pthread_mutex_destroy(&h->tls_lock);
	free(h->rate);
	free(h->tokens);
	free(h);
}
