/*
 * The HTTPS server (see http.h): evhttp over bufferevent_openssl on its own
 * thread. What it does before a handler runs: a deadline per connection
 * (TLS handshake plus each request's head and body, so a client dribbling
 * bytes is closed), header and body limits (413, see "request heads"), a
 * token bucket per socket peer (429; X-Forwarded-For is never read),
 * security headers on every answer, and authentication: an operator client
 * certificate, a bearer token, or the session cookie that signing in
 * (POST /api/v1/session) sets, a token looked up by its SHA-256 (cached for
 * http_token_cache_ttl). Only /healthz and the sign-in itself are served
 * without: a page of the status page asked for without credentials gets the
 * sign-in page (401). The status page's files are served from memory to the
 * authenticated (a path not in the table is a 404, so no traversal).
 * Handlers live in api.c; database work runs on the apidb pool and comes
 * back to this loop.
 */
#include "http/http.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "http/api.h"
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
#define SESSION_PATH "/api/v1/session"
/* After a 413: how long, and how many bytes, the rest of the client's
 * request is read and discarded before the connection is closed. */
#define LINGER_MS 2000
#define LINGER_MAX_BYTES (1024 * 1024)

#define CSP_START                                                                         \
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
	"connect-src 'self'; base-uri 'none'; "
#define CSP_END "frame-ancestors 'none'"

/* What an answer is, for its headers. */
typedef enum {
	REPLY_API,    /* JSON, CSV, text: never cached */
	REPLY_FILE,   /* a file of the status page */
	REPLY_SIGNIN, /* the sign-in page */
} reply_kind_t;

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
	/* The request head being read (see "request heads"). */
	api_head_t head;
	bool head_done; /* its blank line was seen: a body follows */
	bool head_over; /* refused with 413: the head, or the body it declares, is too long */
	bool body_over; /* the body it declares is above http_max_body_bytes */
	bool busy;	/* a request is with us, from request_cb until its reply is out */
	bool refusing;	/* writing the 413: the callbacks are ours (evhttp's saved here) */
	bool lingering; /* the 413 is out: reading and discarding until close */
	size_t linger_left;
	bufferevent_data_cb ev_read, ev_write;
	bufferevent_event_cb ev_event;
	void *ev_arg;
} hconn_t;

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

static void arm_deadline(hconn_t *c, int64_t ms)
{
	if (!c->deadline)
		return;
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	event_add(c->deadline, &tv);
}

static void refuse_start(hconn_t *c);
static void refuse_end(hconn_t *c);

/* The connection took too long (handshake, or the head and body of a
 * request), is over the limit, or has been refused (413, written and
 * lingered on): close it through evhttp's own path. Or it has a request
 * head above the limit and no answer in flight: start refusing it. */
static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	hconn_t *c = arg;
	bufferevent_event_cb ecb = NULL;
	bufferevent_getcb(c->bev, NULL, NULL, &ecb, NULL);
	if (!ecb)
		return; /* evhttp freed the bufferevent; its finalizer frees c */
	if (c->head_over && !c->busy && !c->refusing) {
		refuse_start(c);
		return;
	}
	if (c->refusing)
		refuse_end(c);
	bufferevent_trigger_event(c->bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, 0);
}

/* ---- request heads ---------------------------------------------------------------------------
 *
 * evhttp 2.1 answers a request line or headers above its limit with a 400
 * of its own (it reports DATA_TOO_LONG as an invalid header). To answer
 * 413, with our headers, and to bound what is buffered at every size, a
 * head is measured here first: head_cb sits on the connection's input
 * buffer, where the TLS layer adds plaintext, and runs on each addition
 * before evhttp's read callback parses it. It counts every byte from the
 * start of a head to its blank line, line ends included. evhttp counts the
 * same bytes without their line ends (its parsed lines plus what is
 * buffered), so with one limit for both, this count passes
 * http_max_header_bytes no later than evhttp's: evhttp's limit stays set,
 * the same, as the hard cap, and never fires first.
 *
 * Where heads start: at the connection's start, and where the request that
 * evhttp has just handed over (request_cb) ends; what is buffered then is
 * the start of the next head (pipelined), and is counted then. From a
 * head's blank line to the next hand-over the bytes are a body, which
 * evhttp bounds by http_max_body_bytes. A head that declares a longer body
 * (Content-Length) is refused here like a long head, before evhttp would
 * answer with a 413 of its own and close without reading what follows (a
 * chunked body is still measured and refused by evhttp).
 *
 * A head above the limit: what is buffered is discarded before evhttp sees
 * it, reading stops (TCP pushes back), and the 413 is written when no
 * answer is in flight: at once between requests, or after the reply to the
 * request before it (a pipelined head). evhttp is then waiting for a head,
 * so the answer is written straight to the TLS bufferevent with its
 * callbacks taken over. Once it is out, the collector sends close_notify
 * and FIN, reads and discards what the client still sends (at most
 * LINGER_MAX_BYTES for LINGER_MS, so that closing with unread bytes does
 * not reset the connection under the answer), gives the callbacks back and
 * closes through evhttp's own path (deadline_cb).
 */

static void count_status(http_t *h, int status);

static void head_over(hconn_t *c, struct evbuffer *in)
{
	c->head_over = true;
	evbuffer_drain(in, evbuffer_get_length(in));
	bufferevent_disable(c->bev, EV_READ);
	if (!c->busy)
		arm_deadline(c, 0);
}

/* Count the head's bytes in "in" from offset on. */
static void head_scan(hconn_t *c, struct evbuffer *in, size_t offset)
{
	size_t limit = (size_t)c->h->col->settings->http_max_header_bytes;
	size_t len = evbuffer_get_length(in);
	while (offset < len && !c->head_done) {
		struct evbuffer_ptr pos;
		struct evbuffer_iovec v[4];
		if (evbuffer_ptr_set(in, &pos, offset, EVBUFFER_PTR_SET) != 0)
			return;
		int n = evbuffer_peek(in, (ev_ssize_t)(len - offset), &pos, v, 4);
		if (n <= 0)
			return;
		for (int i = 0; i < n && i < 4 && !c->head_done; i++) {
			size_t used = 0;
			switch (api_head_feed(&c->head, v[i].iov_base, v[i].iov_len, limit,
					      &used)) {
			case API_HEAD_MORE:
				break;
			case API_HEAD_END:
				c->head_done = true;
				if (c->head.content_length >
				    (uint64_t)c->h->col->settings->http_max_body_bytes) {
					c->body_over = true;
					head_over(c, in);
					return;
				}
				break;
			case API_HEAD_OVER:
				head_over(c, in);
				return;
			}
			offset += used;
		}
	}
}

/* The input buffer changed: count what was added to a head, or discard
 * it after a refusal. */
static void head_cb(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
	hconn_t *c = arg;
	if (info->n_added == 0)
		return;
	size_t len = evbuffer_get_length(in);
	if (c->head_over) {
		if (c->lingering) {
			if (info->n_added >= c->linger_left) {
				c->linger_left = 0;
				bufferevent_disable(c->bev, EV_READ);
				arm_deadline(c, 0);
			} else {
				c->linger_left -= info->n_added;
			}
		}
		evbuffer_drain(in, len);
		return;
	}
	if (!c->head_done)
		head_scan(c, in, info->n_added < len ? len - info->n_added : 0);
}

/* A request was handed over: the next head starts where it ends. */
static void head_restart(hconn_t *c)
{
	c->busy = true;
	memset(&c->head, 0, sizeof(c->head));
	c->head_done = false;
	if (!c->head_over)
		head_scan(c, bufferevent_get_input(c->bev), 0);
}

/* The reply to the request handed over is out (evhttp_send_done). */
static void reply_done_cb(struct evhttp_request *req, void *arg)
{
	(void)req;
	hconn_t *c = arg;
	c->busy = false;
	if (c->head_over)
		arm_deadline(c, 0); /* evhttp reads the next head again by then */
}

static void peer_of(hconn_t *c, char *out, size_t outlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	snprintf(out, outlen, "?");
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
		return;
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)outlen);
	else if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out,
			  (socklen_t)outlen);
}

static void refuse_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)what;
	hconn_t *c = arg;
	bufferevent_disable(bev, EV_READ | EV_WRITE);
	arm_deadline(c, 0);
}

/* The 413 is out: close our side, discard what still comes for a while. */
static void refuse_written_cb(struct bufferevent *bev, void *arg)
{
	hconn_t *c = arg;
	if (c->lingering)
		return;
	c->lingering = true;
	c->linger_left = LINGER_MAX_BYTES;
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	if (ssl)
		(void)SSL_shutdown(ssl); /* close_notify: a clean end of the answer */
	ERR_clear_error();
	evutil_socket_t fd = bufferevent_getfd(bev);
	if (fd >= 0)
		(void)shutdown(fd, SHUT_WR);
	bufferevent_disable(bev, EV_WRITE);
	bufferevent_enable(bev, EV_READ);
	arm_deadline(c, LINGER_MS);
}

static void refuse_start(hconn_t *c)
{
	http_t *h = c->h;
	struct bufferevent *bev = c->bev;
	int64_t limit = h->col->settings->http_max_header_bytes;
	c->refusing = true;
	bufferevent_getcb(bev, &c->ev_read, &c->ev_write, &c->ev_event, &c->ev_arg);
	bufferevent_setcb(bev, NULL, refuse_written_cb, refuse_event_cb, c);
	bufferevent_disable(bev, EV_READ);
	struct evbuffer *in = bufferevent_get_input(bev);
	evbuffer_drain(in, evbuffer_get_length(in));

	const char *what = "request line and headers", *setting = "http_max_header_bytes";
	if (c->body_over) {
		what = "request body";
		setting = "http_max_body_bytes";
		limit = h->col->settings->http_max_body_bytes;
	}
	char peer[INET6_ADDRSTRLEN + 1];
	peer_of(c, peer, sizeof(peer));
	log_info("[https %s] 413: %s above %s (%lld)", peer, what, setting, (long long)limit);
	count_status(h, 413);

	char body[160], date[64];
	int blen = snprintf(body, sizeof(body),
			    "{\"error\":\"request_too_large\",\"message\":\"the %s is above %s "
			    "(%lld bytes)\"}",
			    what, setting, (long long)limit);
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	struct evbuffer *out = bufferevent_get_output(bev);
	evbuffer_add_printf(out, "HTTP/1.1 413 Content Too Large\r\nDate: %s\r\n", date);
	evbuffer_add_printf(out, "Content-Security-Policy: %s\r\n", csp_of(REPLY_API));
	evbuffer_add_printf(out, "Referrer-Policy: %s\r\n", referrer_policy_of(REPLY_API));
	for (size_t i = 0; i < N_SECURITY_HEADERS; i++)
		evbuffer_add_printf(out, "%s: %s\r\n", SECURITY_HEADERS[i][0],
				    SECURITY_HEADERS[i][1]);
	evbuffer_add_printf(out,
			    "Content-Type: application/json\r\nCache-Control: %s\r\n"
			    "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
			    cache_control_of(REPLY_API), blen, body);
	bufferevent_enable(bev, EV_WRITE);
	arm_deadline(c, SETTING(h->col, http_request_timeout_ms));
}

/* Give the bufferevent back to evhttp, to close. */
static void refuse_end(hconn_t *c)
{
	bufferevent_setcb(c->bev, c->ev_read, c->ev_write, c->ev_event, c->ev_arg);
	c->refusing = false;
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
	if (!evbuffer_add_cb(bufferevent_get_input(c->bev), head_cb, c)) {
		log_error("[https] out of memory accepting a connection");
		abort();
	}
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

static void add_headers(struct evhttp_request *req, const char *ctype, reply_kind_t kind)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	evhttp_add_header(out, "Content-Security-Policy", csp_of(kind));
	evhttp_add_header(out, "Referrer-Policy", referrer_policy_of(kind));
	for (size_t i = 0; i < N_SECURITY_HEADERS; i++)
		evhttp_add_header(out, SECURITY_HEADERS[i][0], SECURITY_HEADERS[i][1]);
	evhttp_add_header(out, "Content-Type", ctype);
	evhttp_add_header(out, "Cache-Control", cache_control_of(kind));
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
	OPENSSL_cleanse(r->token, sizeof(r->token));
	free(r);
}

static void rearm(hreq_t *r)
{
	hconn_t *c = conn_of(r->evcon);
	if (c && c->deadline)
		arm_deadline(c, SETTING(r->h->col, http_request_timeout_ms));
}

static void reply(hreq_t *r, int status, const char *ctype, const char *body, size_t len,
		  reply_kind_t kind)
{
	count_status(r->h, status);
	if (r->req) {
		rearm(r);
		struct evhttp_request *req = release(r);
		add_headers(req, ctype, kind);
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

void hreq_reply(hreq_t *r, int status, const char *ctype, const char *body, size_t len)
{
	reply(r, status, ctype, body, len, REPLY_API);
}

/* Add a header to the answer of r (before it is sent). */
static void out_header(hreq_t *r, const char *name, const char *value)
{
	if (r->req)
		evhttp_add_header(evhttp_request_get_output_headers(r->req), name, value);
}

/* Finish with the sign-in page; msg (static text) says why, if not NULL. */
static void signin_page(hreq_t *r, const char *msg)
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
	hreq_error(r, 503, "database_unavailable", NULL, "the database did not answer");
}

void hreq_stream_start(hreq_t *r, const char *ctype, const char *filename)
{
	r->st = HR_STREAM;
	if (!r->req)
		return;
	add_headers(r->req, ctype, REPLY_API);
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

/* The cookie's attributes: only over HTTPS, out of reach of scripts, never
 * sent along with a request that another site starts. */
#define COOKIE_ATTRS "; Path=/; Secure; HttpOnly; SameSite=Strict"

static void clear_cookie(hreq_t *r)
{
	out_header(r, "Set-Cookie", AUTH_COOKIE "=" COOKIE_ATTRS "; Max-Age=0");
}

/* Signed in with r->token: set the cookie. The form is sent on to the
 * status page (303); a script gets who it is. */
static void session_created(hreq_t *r)
{
	char cookie[AUTH_TOKEN_LEN + 80];
	snprintf(cookie, sizeof(cookie), "%s=%s%s", AUTH_COOKIE, r->token, COOKIE_ATTRS);
	out_header(r, "Set-Cookie", cookie);
	OPENSSL_cleanse(cookie, sizeof(cookie));
	log_info("[https %s] signed in: %s", r->peer, r->principal);
	if (r->cred == CRED_FORM) {
		out_header(r, "Location", "/");
		hreq_reply(r, 303, "text/plain; charset=utf-8", "", 0);
		return;
	}
	json_t *o =
		json_pack("{s:s, s:s}", "principal", r->principal, "role", auth_role_name(r->role));
	char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (body)
		hreq_reply(r, 200, "application/json", body, strlen(body));
	else
		hreq_error(r, 503, "internal", NULL, "out of memory");
	free(body);
}

static void authenticated(hreq_t *r)
{
	r->st = HR_NEW;
	if (r->signin)
		session_created(r);
	else
		route(r);
}

/* Refuse r (401): the sign-in page for the status page and the sign-in
 * form, JSON for the rest. A session cookie that was refused is cleared. */
static void unauthorized(hreq_t *r, const char *why)
{
	r->h->auth_failures++;
	log_info("[https %s] 401 %s %s: %s", r->peer, r->method, r->path, why);
	if (r->cred == CRED_COOKIE)
		clear_cookie(r);
	if (r->signin && r->cred != CRED_HEADER)
		signin_page(r, "The token was not accepted.");
	else if (r->page)
		signin_page(r, r->cred == CRED_COOKIE ? "The session ended: its token is no longer "
							"accepted. Sign in again."
						      : NULL);
	else
		hreq_error(r, 401, "unauthorized", NULL, "%s", why);
}

/* What the token cache says of the request's token: its principal and
 * role, or refused. */
static void use_slot(hreq_t *r, const token_slot_t *s)
{
	if (s->role == AUTH_ROLE_NONE) {
		unauthorized(r, "unknown, expired or revoked token");
		return;
	}
	snprintf(r->principal, sizeof(r->principal), "%s", s->name);
	r->role = s->role;
	authenticated(r);
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
	use_slot(r, s);
}

/* Check a well-formed token, wherever it came from, the same way: the
 * cache, else the database; then authenticated() or unauthorized(). */
static void check_token(hreq_t *r, const char *token)
{
	auth_token_hash(token, r->token_hash);
	token_slot_t *s = token_slot(r->h, r->token_hash);
	if (strcmp(s->hash, r->token_hash) == 0 && s->until_ns > vtime_mono_ns()) {
		use_slot(r, s);
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

/* The session cookie's token: 0, 1 if there is no such cookie, -1 if it
 * is malformed or there more than once. */
static int cookie_token(hreq_t *r, char *token)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(r->req);
	int count = 0, rc = 0;
	for (struct evkeyval *kv = in->tqh_first; kv; kv = kv->next.tqe_next)
		if (evutil_ascii_strcasecmp(kv->key, "Cookie") == 0 &&
		    auth_session_cookie(kv->value, token, &count) != 0)
			rc = -1;
	if (count == 0)
		return 1;
	return rc == 0 && count == 1 ? 0 : -1;
}

/* In this order: an operator certificate, a bearer token, the session
 * cookie. Then authenticated() or unauthorized(). */
static void authenticate(hreq_t *r)
{
	hconn_t *c = conn_of(r->evcon);
	SSL *ssl = c ? bufferevent_openssl_get_ssl(c->bev) : NULL;
	char cn[128];
	if (ssl && r->h->col->settings->http_operator_ca[0] && SSL_get0_peer_certificate(ssl) &&
	    tls_peer_identity(ssl, cn, sizeof(cn)) == 0) {
		r->cred = CRED_CERT;
		snprintf(r->principal, sizeof(r->principal), "cert:%s", cn);
		r->role = cn_listed(r->h->col->settings->http_admin_cns, cn) ? AUTH_ROLE_ADMIN
									     : AUTH_ROLE_VIEWER;
		authenticated(r);
		return;
	}
	const char *hdr =
		evhttp_find_header(evhttp_request_get_input_headers(r->req), "Authorization");
	char token[AUTH_TOKEN_LEN + 1];
	if (hdr) {
		r->cred = CRED_HEADER;
		if (auth_bearer(hdr, token) != 0) {
			unauthorized(r, "malformed Authorization header or token");
			return;
		}
	} else {
		int rc = cookie_token(r, token);
		if (rc > 0) {
			unauthorized(r, "an API token (Authorization: Bearer ...), a session "
					"cookie or an operator certificate is required");
			return;
		}
		r->cred = CRED_COOKIE;
		if (rc < 0) {
			unauthorized(r, "malformed session cookie");
			return;
		}
	}
	check_token(r, token);
	OPENSSL_cleanse(token, sizeof(token));
}

/* ---- signing in and out ------------------------------------------------------------------------- */

/* True unless an Origin header names another origin than the request's
 * Host (a page of another site posting to us). No Origin: not a browser's
 * cross-origin request (scripts, curl). */
static bool same_origin(hreq_t *r)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(r->req);
	const char *host = evhttp_find_header(in, "Host");
	for (struct evkeyval *kv = in->tqh_first; kv; kv = kv->next.tqe_next)
		if (evutil_ascii_strcasecmp(kv->key, "Origin") == 0 &&
		    !auth_same_origin(kv->value, host))
			return false;
	return true;
}

/* The token of the sign-in form (application/x-www-form-urlencoded, one
 * field "token"; other fields are ignored) into token. Return 0 or -1. The
 * body is within http_max_body_bytes (evhttp answers 413 above). */
static int form_token(hreq_t *r, char *token)
{
	static const char form[] = "application/x-www-form-urlencoded";
	const char *ct =
		evhttp_find_header(evhttp_request_get_input_headers(r->req), "Content-Type");
	if (!ct || evutil_ascii_strncasecmp(ct, form, sizeof(form) - 1) != 0 ||
	    (ct[sizeof(form) - 1] != '\0' && ct[sizeof(form) - 1] != ';'))
		return -1;
	struct evbuffer *body = evhttp_request_get_input_buffer(r->req);
	size_t len = evbuffer_get_length(body);
	char *text = malloc(len + 1);
	if (!text)
		return -1;
	evbuffer_copyout(body, text, len);
	text[len] = '\0';
	int rc = -1, found = 0;
	struct evkeyvalq fields;
	if (memchr(text, '\0', len) == NULL && evhttp_parse_query_str(text, &fields) == 0) {
		for (struct evkeyval *kv = fields.tqh_first; kv; kv = kv->next.tqe_next) {
			if (strcmp(kv->key, "token") != 0)
				continue;
			found++;
			rc = auth_token_value(kv->value, token);
			OPENSSL_cleanse(kv->value, strlen(kv->value));
		}
		evhttp_clear_headers(&fields);
	}
	OPENSSL_cleanse(text, len);
	free(text);
	return found == 1 ? rc : -1;
}

/* POST /api/v1/session signs in (a token from the form or the
 * Authorization header, checked like any token; the cookie is set);
 * DELETE signs out (the cookie is cleared). Both refuse another origin. */
static void session(hreq_t *r)
{
	if (!same_origin(r)) {
		log_info("[https %s] 403 %s %s: cross-origin", r->peer, r->method, r->path);
		hreq_error(r, 403, "forbidden", NULL, "a request from another origin is refused");
		return;
	}
	if (evhttp_request_get_command(r->req) == EVHTTP_REQ_DELETE) {
		clear_cookie(r);
		hreq_reply(r, 204, "application/json", "", 0);
		return;
	}
	r->signin = true;
	const char *hdr =
		evhttp_find_header(evhttp_request_get_input_headers(r->req), "Authorization");
	if (hdr) {
		r->cred = CRED_HEADER;
		if (auth_bearer(hdr, r->token) != 0) {
			unauthorized(r, "malformed Authorization header or token");
			return;
		}
	} else {
		r->cred = CRED_FORM;
		if (form_token(r, r->token) != 0) {
			unauthorized(r, "no well-formed token in the sign-in form");
			return;
		}
	}
	check_token(r, r->token);
}

/* ---- dispatch ------------------------------------------------------------------------------------ */

/* A file of the status page (authenticated). */
static void serve_file(hreq_t *r)
{
	const web_file_t *f =
		strcmp(r->path, "/openapi.json") == 0 ? NULL : find_file(r->h, r->path);
	if (!f) {
		hreq_error(r, 404, "not_found", NULL, "no such file");
		return;
	}
	count_status(r->h, 200);
	rearm(r);
	struct evhttp_request *rq = release(r);
	add_headers(rq, f->ctype, REPLY_FILE);
	struct evbuffer *b = evbuffer_new();
	if (b)
		evbuffer_add_reference(b, f->data, f->len, NULL, NULL);
	evhttp_send_reply(rq, 200, "OK", b);
	if (b)
		evbuffer_free(b);
	finish(r);
}

static void route(hreq_t *r)
{
	if (r->page) {
		serve_file(r);
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
	if (c) {
		if (c->deadline)
			event_del(c->deadline); /* the request is in: no deadline while we answer */
		head_restart(c);
		evhttp_request_set_on_complete_cb(req, reply_done_cb, c);
	}
	char *addr = NULL;
	ev_uint16_t port = 0;
	if (r->evcon)
		evhttp_connection_get_peer(r->evcon, &addr, &port);
	snprintf(r->peer, sizeof(r->peer), "%s", addr ? addr : "?");
	if (r->evcon)
		evhttp_connection_set_closecb(r->evcon, close_cb, r);
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
		out_header(r, "Allow", is_session ? "POST, DELETE" : "GET");
		hreq_error(r, 405, "method_not_allowed", NULL, "only %s served here",
			   is_session ? "POST and DELETE are" : "GET is");
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
	if (is_session) {
		session(r);
		return;
	}
	/* The status page: its files, and the sign-in page in their place
	 * without credentials. */
	r->page = strncmp(r->path, "/api/", 5) != 0 && strcmp(r->path, "/metrics") != 0 &&
		  strcmp(r->path, "/readyz") != 0;
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
	/* The hard caps: head_cb answers a head above the same limit, or one
	 * declaring a longer body, with 413 before evhttp's own checks can
	 * fire (see "request heads"). */
	evhttp_set_max_headers_size(h->evhttp, s->http_max_header_bytes);
	evhttp_set_max_body_size(h->evhttp, s->http_max_body_bytes);
	struct timeval io = {(time_t)(s->http_timeout_ms / 1000),
			     (suseconds_t)(s->http_timeout_ms % 1000) * 1000};
	evhttp_set_timeout_tv(h->evhttp, &io);
	/* Every method reaches request_cb, which answers all but GET (and
	 * POST and DELETE of the session) with 405 (evhttp's own refusal
	 * would be a 501 without our headers). */
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
