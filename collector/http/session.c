/*
 * Authentication on the HTTPS server (see http_int.h), in this order: an
 * operator client certificate, a bearer token, or the session cookie that
 * signing in (POST /api/v1/session) sets. A token is looked up by its
 * SHA-256, and the answer cached for http_token_cache_ttl. A request
 * without credentials gets a 401: the sign-in page for the status page,
 * JSON for the rest. Signing in and out refuse another origin.
 */
#include "http/http_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "log.h"
#include "vtime.h"

#define TOKEN_CACHE_SLOTS 1024

struct token_slot {
	char hash[AUTH_HASH_LEN + 1];
	char name[80];
	auth_role_t role; /* NONE: not a valid token */
	int64_t until_ns; /* cache entry valid until */
};

token_slot_t *session_cache_new(void)
{
	return calloc(TOKEN_CACHE_SLOTS, sizeof(token_slot_t));
}

static token_slot_t *token_slot(http_t *h, const char *hash)
{
	return &h->tokens[http_fnv(hash) % TOKEN_CACHE_SLOTS];
}

/* The cookie's attributes: only over HTTPS, out of reach of scripts, never
 * sent along with a request that another site starts. */
#define COOKIE_ATTRS "; Path=/; Secure; HttpOnly; SameSite=Strict"

static void clear_cookie(hreq_t *r)
{
	reply_header(r, "Set-Cookie", AUTH_COOKIE "=" COOKIE_ATTRS "; Max-Age=0");
}

/* Signed in with r->token: set the cookie. The form is sent on to the
 * status page (303); a script gets who it is. */
static void session_created(hreq_t *r)
{
	char cookie[AUTH_TOKEN_LEN + 80];
	snprintf(cookie, sizeof(cookie), "%s=%s%s", AUTH_COOKIE, r->token, COOKIE_ATTRS);
	reply_header(r, "Set-Cookie", cookie);
	OPENSSL_cleanse(cookie, sizeof(cookie));
	log_info("[https %s] signed in: %s", r->peer, r->principal);
	if (r->cred == CRED_FORM) {
		reply_header(r, "Location", "/");
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
		dispatch_route(r);
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
		reply_signin_page(r, "The token was not accepted.");
	else if (r->page)
		reply_signin_page(r, r->cred == CRED_COOKIE
					     ? "The session ended: its token is no longer "
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
	dispatch_submit(r, job, token_done, HR_AUTH);
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
void session_authenticate(hreq_t *r)
{
	char cn[128];
	if (r->cfg->http_operator_ca[0] &&
	    http_conn_cert_identity(r->evcon, cn, sizeof(cn)) == 0) {
		r->cred = CRED_CERT;
		snprintf(r->principal, sizeof(r->principal), "cert:%s", cn);
		r->role = cn_listed(r->cfg->http_admin_cns, cn) ? AUTH_ROLE_ADMIN : AUTH_ROLE_VIEWER;
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
void session_handle(hreq_t *r)
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
