// SPDX-License-Identifier: Apache-2.0
/*
 * Authentication on the HTTPS server (see http_int.h), in this order: an
 * operator client certificate, a bearer token, or the session cookie that
 * signing in (POST /api/v1/session) sets. A bearer token is looked up by
 * its SHA-256, and the answer cached for http_token_cache_ttl.
 *
 * Signing in with a token starts a session (the api_sessions table): the
 * cookie carries a random session id, never the token, and the database
 * holds only the id's SHA-256, the token it came from, an absolute expiry
 * (http_session_lifetime) and an idle timeout (http_session_idle). A
 * session cookie is looked up in the database on every request, never
 * cached here: signing out deletes the row, revoking the token deletes its
 * sessions (and the lookup checks the token too), so an ended session is
 * refused from the next request on, on every collector.
 *
 * A request without credentials gets a 401: the sign-in page for the
 * status page, JSON for the rest. Signing in and out refuse another origin.
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

#include "config.h"
#include "log.h"
#include "tls.h"
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

/* Signed in, the session id stored (hashed): set the cookie to id. The
 * form is sent on to the status page (303); a script gets who it is. */
static void session_created(hreq_t *r, const char *id)
{
	char cookie[sizeof(AUTH_COOKIE) + AUTH_SESSION_LEN + sizeof(COOKIE_ATTRS)];
	snprintf(cookie, sizeof(cookie), "%s=%s%s", AUTH_COOKIE, id, COOKIE_ATTRS);
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
					     ? "The session ended or is no longer accepted. "
					       "Sign in again."
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

/* ---- sessions ------------------------------------------------------------------------------------ */

/* A session in force, by the hash of its id: its token's name and role.
 * Its token must be in force too. Using it moves last_used on, but only
 * once a sixteenth of its idle timeout (at most a minute) has passed, so
 * that a busy page does not write a row version per request; a session
 * may so end up to that much before its idle timeout, never after. */
static const char session_sql[] =
	"WITH s AS (SELECT s.id, s.last_used, s.idle_ms, t.name, t.role "
	"FROM api_sessions s JOIN api_tokens t ON t.id = s.token_id "
	"WHERE s.hash = $1 AND s.expires_at > now() "
	"AND s.last_used + s.idle_ms * interval '1 millisecond' > now() "
	"AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())), "
	"touch AS (UPDATE api_sessions a SET last_used = now() FROM s WHERE a.id = s.id "
	"AND s.last_used <= now() - least(s.idle_ms / 16, 60000) * interval '1 millisecond') "
	"SELECT name, role FROM s";

/* A new session ($2, the hash of its id) for the token in force whose hash
 * is $1, ending $3 ms from now (or with the token, if that is sooner) or
 * after $4 ms unused: the token's name and role, or no row if the token is
 * not in force. Sessions that have ended are deleted on the way. */
static const char signin_sql[] =
	"WITH t AS (SELECT id, name, role, expires_at FROM api_tokens WHERE hash = $1 "
	"AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())), "
	"gone AS (DELETE FROM api_sessions WHERE expires_at <= now() "
	"OR last_used + idle_ms * interval '1 millisecond' <= now()), "
	"s AS (INSERT INTO api_sessions (hash, token_id, expires_at, idle_ms) "
	"SELECT $2, id, least(now() + $3::bigint * interval '1 millisecond', "
	"coalesce(expires_at, 'infinity')), $4::bigint FROM t RETURNING token_id) "
	"SELECT t.name, t.role FROM t JOIN s ON s.token_id = t.id";

/* The principal and role of a session or sign-in lookup's one row, or
 * AUTH_ROLE_NONE if there is none. */
static void take_identity(hreq_t *r, const apidb_job_t *job)
{
	r->role = AUTH_ROLE_NONE;
	if (job->n_rows != 1)
		return;
	r->role = auth_role_parse(apidb_cell(job, 0, 1));
	snprintf(r->principal, sizeof(r->principal), "token:%s", apidb_cell(job, 0, 0));
}

static void session_done(hreq_t *r, apidb_job_t *job)
{
	if (job->status != APIDB_OK) {
		hreq_db_error(r, job);
		apidb_job_free(job);
		return;
	}
	take_identity(r, job);
	apidb_job_free(job);
	if (r->role == AUTH_ROLE_NONE)
		unauthorized(r, "unknown, ended, expired or idle session, or its token revoked");
	else
		authenticated(r);
}

/* Check the session whose id is the cookie's: in the database, every
 * time. Then authenticated() or unauthorized(). */
static void check_session(hreq_t *r, const char *id)
{
	char hash[AUTH_HASH_LEN + 1];
	auth_token_hash(id, hash);
	apidb_job_t *job = apidb_job_new(session_sql);
	if (!job || apidb_job_param(job, hash) != 0) {
		apidb_job_free(job);
		hreq_error(r, 500, "internal", NULL, "out of memory");
		return;
	}
	dispatch_submit(r, job, session_done, HR_AUTH);
}

/* A sign-in's new session id, held by the request until the cookie is set. */
typedef struct {
	char id[AUTH_SESSION_LEN + 1];
} new_session_t;

static void new_session_free(void *p)
{
	if (p)
		OPENSSL_cleanse(p, sizeof(new_session_t));
	free(p);
}

static void signin_done(hreq_t *r, apidb_job_t *job)
{
	if (job->status != APIDB_OK) {
		hreq_db_error(r, job);
		apidb_job_free(job);
		return;
	}
	take_identity(r, job);
	apidb_job_free(job);
	new_session_t *ns = hreq_state(r);
	if (r->role == AUTH_ROLE_NONE || !ns)
		unauthorized(r, "unknown, expired or revoked token");
	else
		session_created(r, ns->id);
}

/* Sign in with r->token (wiped here): start a session for it if it is in
 * force (asked of the database, not the token cache: a token revoked a
 * moment ago starts nothing). Then session_created() or unauthorized(). */
static void start_session(hreq_t *r)
{
	char thash[AUTH_HASH_LEN + 1], shash[AUTH_HASH_LEN + 1], life[24], idle[24];
	auth_token_hash(r->token, thash);
	OPENSSL_cleanse(r->token, sizeof(r->token));
	new_session_t *ns = calloc(1, sizeof(*ns));
	if (!ns || auth_session_generate(ns->id) != 0) {
		new_session_free(ns);
		hreq_error(r, 503, "internal", NULL, "no random bytes for a session id");
		return;
	}
	hreq_set_state(r, ns, new_session_free);
	auth_token_hash(ns->id, shash);
	snprintf(life, sizeof(life), "%lld",
		 (long long)SETTING(r->h->col, http_session_lifetime_ms));
	snprintf(idle, sizeof(idle), "%lld", (long long)SETTING(r->h->col, http_session_idle_ms));
	apidb_job_t *job = apidb_job_new(signin_sql);
	if (!job || apidb_job_param(job, thash) != 0 || apidb_job_param(job, shash) != 0 ||
	    apidb_job_param(job, life) != 0 || apidb_job_param(job, idle) != 0) {
		apidb_job_free(job);
		hreq_error(r, 500, "internal", NULL, "out of memory");
		return;
	}
	dispatch_submit(r, job, signin_done, HR_AUTH);
}

static void signout_done(hreq_t *r, apidb_job_t *job)
{
	if (job->status != APIDB_OK) {
		hreq_db_error(r, job);
		apidb_job_free(job);
		return;
	}
	if (job->n_rows > 0)
		log_info("[https %s] signed out", r->peer);
	apidb_job_free(job);
	clear_cookie(r);
	hreq_reply(r, 204, "application/json", "", 0);
}

_Static_assert(AUTH_SESSION_LEN == AUTH_TOKEN_LEN, "a session id is read into a token's buffer");

/* The session cookie's session id: 0, 1 if there is no such cookie, -1 if
 * it is malformed or there more than once. */
static int cookie_session(hreq_t *r, char *id)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(r->req);
	int count = 0, rc = 0;
	for (struct evkeyval *kv = in->tqh_first; kv; kv = kv->next.tqe_next)
		if (evutil_ascii_strcasecmp(kv->key, "Cookie") == 0 &&
		    auth_session_cookie(kv->value, id, &count) != 0)
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
	if (r->cfg->http_operator_ca[0] && http_conn_cert_identity(r->evcon, cn, sizeof(cn)) == 0) {
		r->cred = CRED_CERT;
		snprintf(r->principal, sizeof(r->principal), "cert:%s", cn);
		char serial[TLS_SERIAL_HEX_MAX];
		if (collector_is_revoked_operator(
			    r->h->col, cn,
			    http_conn_cert_serial(r->evcon, serial, sizeof(serial)) == 0 ? serial
											 : NULL)) {
			unauthorized(r, "operator certificate revoked");
			return;
		}
		r->role = cfg_list_has(r->cfg->http_admin_cns, cn) ? AUTH_ROLE_ADMIN
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
		int rc = cookie_session(r, token);
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
	if (r->cred == CRED_COOKIE)
		check_session(r, token); /* a session id, not a token */
	else
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
 * Authorization header starts a session; the cookie is set to its id);
 * DELETE signs out (the cookie's session is deleted and the cookie
 * cleared). Both refuse another origin. */
void session_handle(hreq_t *r)
{
	if (!same_origin(r)) {
		log_info("[https %s] 403 %s %s: cross-origin", r->peer, r->method, r->path);
		hreq_error(r, 403, "forbidden", NULL, "a request from another origin is refused");
		return;
	}
	if (evhttp_request_get_command(r->req) == EVHTTP_REQ_DELETE) {
		char id[AUTH_SESSION_LEN + 1], hash[AUTH_HASH_LEN + 1];
		if (cookie_session(r, id) != 0) { /* none, or none to end */
			clear_cookie(r);
			hreq_reply(r, 204, "application/json", "", 0);
			return;
		}
		auth_token_hash(id, hash);
		OPENSSL_cleanse(id, sizeof(id));
		apidb_job_t *job = apidb_job_new("DELETE FROM api_sessions WHERE hash = $1 "
						 "RETURNING 1");
		if (!job || apidb_job_param(job, hash) != 0) {
			apidb_job_free(job);
			hreq_error(r, 500, "internal", NULL, "out of memory");
			return;
		}
		dispatch_submit(r, job, signout_done, HR_DB);
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
	start_session(r);
}
