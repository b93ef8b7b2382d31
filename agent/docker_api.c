// SPDX-License-Identifier: Apache-2.0
/*
 * Docker-Engine-API source (see docker_api.h). One request at a time on a
 * fresh connection ("Connection: close"), plus the long-lived /events
 * stream on its own connection. Every request runs under api_timeout; a
 * socket that accepts and never answers makes the source fail, and the
 * agent goes on with /proc and the OCI state. The JSON parsers are in
 * docker_json.c.
 */
#include "docker_api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "httpc.h"
#include "log.h"
#include "vtime.h"

#define API_BODY_MAX (8 * 1024 * 1024)
#define API_LINE_MAX (1024 * 1024)
#define API_EVENTS_BACKOFF_MAX_MS 30000

/* ---- the client ------------------------------------------------------------ */

typedef enum {
	REQ_LIST,
	REQ_INSPECT,
	REQ_EVENTS,
	REQ_IMAGE
} req_kind_t;

/* An image's registry digests (GET /images/ID/json), by image id. */
typedef struct {
	char *id;
	ctr_strv_t digests;
} image_t;

/* Images remembered at most (then the memory starts over). */
#define API_IMAGES_MAX 1024

typedef struct {
	docker_api_t *d;
	req_kind_t kind;
	char id[128];
	struct bufferevent *bev;
	struct event *timer;
	httpc_t http;
	struct evbuffer *body;
	bool too_big;
	char *line; /* events: the current line */
	size_t line_len;
} req_t;

struct docker_api {
	struct event_base *base;
	char *path;
	int64_t timeout_ms;
	size_t max_labels;
	docker_api_cbs_t cbs;
	void *arg;
	bool started;
	bool ok;
	bool podman;
	char error[256];
	req_t *call;   /* the list/inspect request under way */
	req_t *events; /* the event stream */
	struct event *events_retry;
	int64_t events_backoff_ms;
	bool refresh_pending;
	char **queue; /* ids to inspect */
	size_t n_queue;
	ctr_t **cache; /* running containers, inspected */
	size_t n_cache;
	char **listed; /* ids of the last list */
	size_t n_listed;
	image_t *images; /* inspected images */
	size_t n_images;
	char **img_queue; /* image ids to inspect */
	size_t n_img_queue;
	/* event-stream gaps: the stream broke after it had been open; the
	 * reconnect asks for what happened since (and the list catches up) */
	bool events_was_open;
	int64_t gap_since_s; /* 0: no gap pending */
	docker_api_gaps_t gaps;
};

static void set_status(docker_api_t *d, bool ok, const char *error)
{
	bool changed = d->ok != ok || (!ok && strcmp(d->error, error) != 0);
	d->ok = ok;
	snprintf(d->error, sizeof(d->error), "%s", ok ? "" : error);
	if (!changed)
		return;
	if (ok)
		log_info("docker_api: %s: working", d->path);
	else
		log_warn("docker_api: %s: %s; using /proc and OCI state", d->path, error);
	if (d->cbs.on_status)
		d->cbs.on_status(d->arg, ok, d->error);
}

static ssize_t cache_find(const docker_api_t *d, const char *id)
{
	for (size_t i = 0; i < d->n_cache; i++)
		if (strcmp(d->cache[i]->id, id) == 0)
			return (ssize_t)i;
	return -1;
}

static void cache_remove(docker_api_t *d, const char *id)
{
	ssize_t i = cache_find(d, id);
	if (i < 0)
		return;
	ctr_free(d->cache[i]);
	d->cache[i] = d->cache[--d->n_cache];
}

static void cache_put(docker_api_t *d, ctr_t *c)
{
	ssize_t i = cache_find(d, c->id);
	if (i >= 0) {
		ctr_free(d->cache[i]);
		d->cache[i] = c;
		return;
	}
	ctr_t **nc = realloc(d->cache, (d->n_cache + 1) * sizeof(*nc));
	if (!nc) {
		ctr_free(c);
		return;
	}
	d->cache = nc;
	nc[d->n_cache++] = c;
}

static image_t *image_find(docker_api_t *d, const char *id)
{
	for (size_t i = 0; i < d->n_images; i++)
		if (strcmp(d->images[i].id, id) == 0)
			return &d->images[i];
	return NULL;
}

static void images_clear(docker_api_t *d)
{
	for (size_t i = 0; i < d->n_images; i++) {
		free(d->images[i].id);
		ctr_strv_clear(&d->images[i].digests);
	}
	free(d->images);
	d->images = NULL;
	d->n_images = 0;
	for (size_t i = 0; i < d->n_img_queue; i++)
		free(d->img_queue[i]);
	free(d->img_queue);
	d->img_queue = NULL;
	d->n_img_queue = 0;
}

/* Give c its image's digests if the image was inspected, else queue the
 * image for inspection (ids of the form sha256:HEX only). */
static void image_digests_for(docker_api_t *d, ctr_t *c)
{
	const char *img = c->image_digest;
	if (!img || !img[0] || (c->have & CTR_HAVE_DIGESTS))
		return;
	image_t *im = image_find(d, img);
	if (im) {
		ctr_strv_clear(&c->repo_digests);
		for (size_t i = 0; i < im->digests.n; i++)
			if (ctr_strv_push(&c->repo_digests, im->digests.v[i],
					  strlen(im->digests.v[i]), NULL) != 0)
				return;
		c->have |= CTR_HAVE_DIGESTS;
		return;
	}
	size_t n = strlen(img);
	if (n > 100 || strspn(img, "abcdefghijklmnopqrstuvwxyz0123456789:") != n)
		return;
	for (size_t i = 0; i < d->n_img_queue; i++)
		if (strcmp(d->img_queue[i], img) == 0)
			return;
	char **nq = realloc(d->img_queue, (d->n_img_queue + 1) * sizeof(*nq));
	if (!nq)
		return;
	d->img_queue = nq;
	nq[d->n_img_queue] = strdup(img);
	if (nq[d->n_img_queue])
		d->n_img_queue++;
}

/* An image was inspected (digests NULL: it is gone): remember it and give
 * its digests to the containers that run it. */
static void image_done(docker_api_t *d, const char *id, ctr_strv_t *digests)
{
	if (d->n_images >= API_IMAGES_MAX)
		images_clear(d);
	image_t *ni = realloc(d->images, (d->n_images + 1) * sizeof(*ni));
	if (!ni) {
		ctr_strv_clear(digests);
		return;
	}
	d->images = ni;
	ni[d->n_images].id = strdup(id);
	ni[d->n_images].digests = *digests;
	memset(digests, 0, sizeof(*digests));
	if (!ni[d->n_images].id) {
		ctr_strv_clear(&ni[d->n_images].digests);
		return;
	}
	d->n_images++;
	for (size_t i = 0; i < d->n_cache; i++)
		if (d->cache[i]->image_digest && strcmp(d->cache[i]->image_digest, id) == 0)
			image_digests_for(d, d->cache[i]);
}

static void queue_push(docker_api_t *d, const char *id)
{
	for (size_t i = 0; i < d->n_queue; i++)
		if (strcmp(d->queue[i], id) == 0)
			return;
	char **nq = realloc(d->queue, (d->n_queue + 1) * sizeof(*nq));
	if (!nq)
		return;
	d->queue = nq;
	nq[d->n_queue] = strdup(id);
	if (nq[d->n_queue])
		d->n_queue++;
}

static void queue_clear(docker_api_t *d)
{
	for (size_t i = 0; i < d->n_queue; i++)
		free(d->queue[i]);
	d->n_queue = 0;
}

static void req_free(req_t *r)
{
	if (!r)
		return;
	if (r->bev)
		bufferevent_free(r->bev);
	if (r->timer)
		event_free(r->timer);
	if (r->body)
		evbuffer_free(r->body);
	free(r->line);
	free(r);
}

static void next_call(docker_api_t *d);
static void events_open(docker_api_t *d);

static void on_event_line(docker_api_t *d, const char *line, size_t n)
{
	docker_event_t ev;
	if (n == 0 || docker_parse_event(line, n, &ev) != 0)
		return;
	log_debug("docker_api: event %s %.12s", ev.action, ev.id);
	if (strcmp(ev.action, "die") == 0) {
		if (d->cbs.on_die)
			d->cbs.on_die(d->arg, ev.id, ev.exit_known, ev.exit_code);
		cache_remove(d, ev.id);
	} else if (strcmp(ev.action, "destroy") == 0 || strcmp(ev.action, "remove") == 0 ||
		   strcmp(ev.action, "stop") == 0 || strcmp(ev.action, "kill") == 0) {
		if (strcmp(ev.action, "kill") != 0)
			cache_remove(d, ev.id);
	} else if (strcmp(ev.action, "start") == 0 || strcmp(ev.action, "restart") == 0 ||
		   strcmp(ev.action, "rename") == 0 || strcmp(ev.action, "update") == 0 ||
		   strcmp(ev.action, "unpause") == 0 || strcmp(ev.action, "pause") == 0) {
		queue_push(d, ev.id);
		next_call(d);
		return;
	} else {
		return;
	}
	if (d->cbs.on_change)
		d->cbs.on_change(d->arg);
}

static int body_cb(void *arg, const char *data, size_t len)
{
	req_t *r = arg;
	if (r->kind != REQ_EVENTS) {
		if (evbuffer_get_length(r->body) + len > API_BODY_MAX) {
			r->too_big = true;
			return -1;
		}
		return evbuffer_add(r->body, data, len);
	}
	/* events: newline-delimited JSON objects */
	for (size_t i = 0; i < len; i++) {
		char c = data[i];
		if (c == '\n') {
			if (r->line_len <= API_LINE_MAX)
				on_event_line(r->d, r->line, r->line_len);
			r->line_len = 0;
			continue;
		}
		if (r->line_len < API_LINE_MAX) {
			r->line[r->line_len] = c;
		}
		r->line_len++;
	}
	return 0;
}

static void list_cb(void *arg, const char *id)
{
	docker_api_t *d = arg;
	char **nl = realloc(d->listed, (d->n_listed + 1) * sizeof(*nl));
	if (!nl)
		return;
	d->listed = nl;
	nl[d->n_listed] = strdup(id);
	if (nl[d->n_listed])
		d->n_listed++;
}

static void clear_listed(docker_api_t *d)
{
	for (size_t i = 0; i < d->n_listed; i++)
		free(d->listed[i]);
	free(d->listed);
	d->listed = NULL;
	d->n_listed = 0;
}

/* A list or inspect request ended: ok with body, or failed with why. */
static void call_done(req_t *r, const char *why)
{
	docker_api_t *d = r->d;
	d->call = NULL;
	char err[256];
	bool changed = false;
	if (!why && r->http.status != 200 &&
	    !((r->kind == REQ_INSPECT || r->kind == REQ_IMAGE) && r->http.status == 404)) {
		snprintf(err, sizeof(err), "HTTP status %d", r->http.status);
		why = err;
	}
	size_t blen = evbuffer_get_length(r->body);
	const char *body = blen ? (const char *)evbuffer_pullup(r->body, -1) : "";
	if (!why && r->kind == REQ_LIST) {
		clear_listed(d);
		if (docker_parse_list(body, blen, list_cb, d) < 0) {
			why = "GET /containers/json: not a JSON list";
		} else {
			/* forget containers that stopped; inspect new ones */
			for (size_t i = 0; i < d->n_cache;) {
				bool found = false;
				for (size_t k = 0; k < d->n_listed && !found; k++)
					found = strcmp(d->listed[k], d->cache[i]->id) == 0;
				if (!found) {
					ctr_free(d->cache[i]);
					d->cache[i] = d->cache[--d->n_cache];
					changed = true;
				} else {
					i++;
				}
			}
			for (size_t k = 0; k < d->n_listed; k++)
				if (cache_find(d, d->listed[k]) < 0)
					queue_push(d, d->listed[k]);
			set_status(d, true, "");
		}
	} else if (!why && r->kind == REQ_INSPECT) {
		if (r->http.status == 404) {
			cache_remove(d, r->id);
			changed = true;
		} else {
			ctr_t *c = ctr_new(r->id);
			if (c && docker_parse_inspect(body, blen, c, d->max_labels) == 0) {
				c->runtime = d->podman ? VIGIL__V1__RUNTIME__RUNTIME_PODMAN
						       : VIGIL__V1__RUNTIME__RUNTIME_DOCKER;
				c->have |= CTR_HAVE_RUNTIME;
				image_digests_for(d, c);
				/* a paused container stays: it is still there */
				if (c->state && strcmp(c->state, "running") != 0 &&
				    strcmp(c->state, "paused") != 0) {
					cache_remove(d, c->id);
					ctr_free(c);
				} else {
					cache_put(d, c);
				}
				changed = true;
			} else {
				ctr_free(c);
				log_warn("docker_api: inspect %.12s: not a container object",
					 r->id);
			}
		}
	} else if (!why && r->kind == REQ_IMAGE) {
		ctr_strv_t digests = {0};
		if (r->http.status == 200 && docker_parse_image_digests(body, blen, &digests) != 0)
			log_debug("docker_api: image %.19s: not an image object", r->id);
		image_done(d, r->id, &digests);
		changed = true;
	}
	req_free(r);
	if (why) {
		queue_clear(d);
		set_status(d, false, why);
	}
	if (changed && d->cbs.on_change)
		d->cbs.on_change(d->arg);
	if (!why)
		next_call(d);
}

static void req_fail(req_t *r, const char *what)
{
	char why[300];
	const char *path = r->kind == REQ_LIST	    ? "GET /containers/json"
			   : r->kind == REQ_INSPECT ? "GET /containers/ID/json"
			   : r->kind == REQ_IMAGE   ? "GET /images/ID/json"
						    : "GET /events";
	snprintf(why, sizeof(why), "%s: %s", path, what);
	if (r->kind == REQ_EVENTS) {
		docker_api_t *d = r->d;
		if (d->events_was_open) {
			/* a gap begins: count it, remember where to resume */
			int64_t now = vtime_now_ns();
			d->events_was_open = false;
			if (!d->gap_since_s)
				d->gap_since_s = now / 1000000000 - 1;
			d->gaps.count++;
			if (!d->gaps.first_ns)
				d->gaps.first_ns = now;
			d->gaps.last_ns = now;
		}
		d->events = NULL;
		req_free(r);
		set_status(d, false, why);
		struct timeval tv = {d->events_backoff_ms / 1000,
				     (d->events_backoff_ms % 1000) * 1000};
		event_add(d->events_retry, &tv);
		d->events_backoff_ms *= 2;
		if (d->events_backoff_ms > API_EVENTS_BACKOFF_MAX_MS)
			d->events_backoff_ms = API_EVENTS_BACKOFF_MAX_MS;
		return;
	}
	call_done(r, why);
}

static void req_read_cb(struct bufferevent *bev, void *arg)
{
	req_t *r = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	bool had_head = httpc_head_done(&r->http);
	httpc_status_t st = HTTPC_MORE;
	while (evbuffer_get_length(in) > 0 && st == HTTPC_MORE) {
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		st = httpc_feed(&r->http, v.iov_base, v.iov_len);
		evbuffer_drain(in, v.iov_len);
	}
	if (!had_head && httpc_head_done(&r->http)) {
		if (strcasestr(r->http.head, "\nServer: Libpod"))
			r->d->podman = true;
		if (r->kind == REQ_EVENTS) {
			/* the stream is idle for as long as nothing happens */
			event_del(r->timer);
			if (r->http.status != 200) {
				char m[64];
				snprintf(m, sizeof(m), "HTTP status %d", r->http.status);
				req_fail(r, m);
				return;
			}
			r->d->events_backoff_ms = 1000;
			r->d->events_was_open = true;
			if (r->d->gap_since_s) {
				/* the events since the gap are being replayed; the
				 * list catches up with what they do not say */
				log_info("docker_api: event stream open again, replaying events "
					 "since %lld",
					 (long long)r->d->gap_since_s);
				r->d->gap_since_s = 0;
				docker_api_refresh(r->d);
			}
			log_debug("docker_api: event stream open");
		}
	}
	if (st == HTTPC_ERROR) {
		req_fail(r, r->too_big ? "answer larger than 8 MiB" : r->http.error);
		return;
	}
	if (st == HTTPC_DONE) {
		if (r->kind == REQ_EVENTS)
			req_fail(r, "event stream ended");
		else
			call_done(r, NULL);
	}
}

static void req_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	req_t *r = arg;
	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & BEV_EVENT_EOF) {
		if (httpc_eof(&r->http) == HTTPC_DONE && r->kind != REQ_EVENTS) {
			call_done(r, NULL);
			return;
		}
		req_fail(r, r->kind == REQ_EVENTS ? "event stream closed" : r->http.error);
		return;
	}
	int e = EVUTIL_SOCKET_ERROR();
	char m[128];
	snprintf(m, sizeof(m), "connect: %s", e ? strerror(e) : "connection error");
	req_fail(r, m);
}

static void req_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	req_t *r = arg;
	char m[64];
	snprintf(m, sizeof(m), "no answer within %lld ms", (long long)r->d->timeout_ms);
	req_fail(r, m);
}

/* Start a request; on immediate failure it is failed through req_fail. */
static void req_start(docker_api_t *d, req_kind_t kind, const char *id)
{
	req_t *r = calloc(1, sizeof(*r));
	if (!r)
		return;
	r->d = d;
	r->kind = kind;
	if (id)
		snprintf(r->id, sizeof(r->id), "%s", id);
	httpc_init(&r->http, body_cb, r);
	r->body = evbuffer_new();
	r->timer = evtimer_new(d->base, req_timer_cb, r);
	r->bev = bufferevent_socket_new(d->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (kind == REQ_EVENTS)
		r->line = malloc(API_LINE_MAX + 1);
	if (!r->body || !r->timer || !r->bev || (kind == REQ_EVENTS && !r->line)) {
		req_free(r);
		return;
	}
	if (kind == REQ_EVENTS)
		d->events = r;
	else
		d->call = r;
	struct timeval tv = {d->timeout_ms / 1000, (d->timeout_ms % 1000) * 1000};
	event_add(r->timer, &tv);
	bufferevent_setcb(r->bev, req_read_cb, NULL, req_event_cb, r);
	bufferevent_enable(r->bev, EV_READ | EV_WRITE);
	char path[256];
	if (kind == REQ_LIST)
		snprintf(path, sizeof(path), "/v1.41/containers/json");
	else if (kind == REQ_INSPECT)
		snprintf(path, sizeof(path), "/v1.41/containers/%s/json", r->id);
	else if (kind == REQ_IMAGE)
		snprintf(path, sizeof(path), "/v1.41/images/%s/json", r->id);
	else if (d->gap_since_s)
		snprintf(path, sizeof(path),
			 "/v1.41/events?since=%lld&filters=%%7B%%22type%%22%%3A%%5B%%22"
			 "container%%22%%5D%%7D",
			 (long long)d->gap_since_s);
	else
		snprintf(path, sizeof(path),
			 "/v1.41/events?filters=%%7B%%22type%%22%%3A%%5B%%22"
			 "container%%22%%5D%%7D");
	evbuffer_add_printf(bufferevent_get_output(r->bev),
			    "GET %s HTTP/1.1\r\nHost: docker\r\nUser-Agent: vigil-agent/%s\r\n"
			    "Accept: application/json\r\n%s\r\n",
			    path, VIGIL_VERSION, kind == REQ_EVENTS ? "" : "Connection: close\r\n");
	struct sockaddr_un sun;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(d->path) >= sizeof(sun.sun_path)) {
		req_fail(r, "socket path too long");
		return;
	}
	memcpy(sun.sun_path, d->path, strlen(d->path));
	if (bufferevent_socket_connect(r->bev, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		char m[128];
		snprintf(m, sizeof(m), "connect: %s", strerror(errno));
		req_fail(r, m);
	}
}

static void next_call(docker_api_t *d)
{
	if (d->call || !d->started)
		return;
	if (d->n_queue) {
		char *id = d->queue[0];
		memmove(d->queue, d->queue + 1, (d->n_queue - 1) * sizeof(*d->queue));
		d->n_queue--;
		req_start(d, REQ_INSPECT, id);
		free(id);
		return;
	}
	if (d->refresh_pending) {
		d->refresh_pending = false;
		req_start(d, REQ_LIST, NULL);
		return;
	}
	if (d->n_img_queue) {
		char *id = d->img_queue[0];
		memmove(d->img_queue, d->img_queue + 1, (d->n_img_queue - 1) * sizeof(char *));
		d->n_img_queue--;
		req_start(d, REQ_IMAGE, id);
		free(id);
	}
}

static void events_open(docker_api_t *d)
{
	if (!d->events)
		req_start(d, REQ_EVENTS, NULL);
}

static void events_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	docker_api_t *d = arg;
	events_open(d);
	docker_api_refresh(d);
}

docker_api_t *docker_api_new(struct event_base *base, const char *path, int64_t timeout_ms,
			     size_t max_labels, const docker_api_cbs_t *cbs, void *arg)
{
	docker_api_t *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->base = base;
	d->path = strdup(path);
	d->timeout_ms = timeout_ms;
	d->max_labels = max_labels;
	d->cbs = *cbs;
	d->arg = arg;
	d->events_backoff_ms = 1000;
	d->events_retry = evtimer_new(base, events_retry_cb, d);
	snprintf(d->error, sizeof(d->error), "not started");
	if (!d->path || !d->events_retry) {
		docker_api_free(d);
		return NULL;
	}
	return d;
}

void docker_api_free(docker_api_t *d)
{
	if (!d)
		return;
	images_clear(d);
	req_free(d->call);
	req_free(d->events);
	if (d->events_retry)
		event_free(d->events_retry);
	queue_clear(d);
	free(d->queue);
	for (size_t i = 0; i < d->n_cache; i++)
		ctr_free(d->cache[i]);
	free(d->cache);
	clear_listed(d);
	free(d->path);
	free(d);
}

void docker_api_start(docker_api_t *d)
{
	d->started = true;
	events_open(d);
	docker_api_refresh(d);
}

void docker_api_refresh(docker_api_t *d)
{
	d->refresh_pending = true;
	next_call(d);
}

const ctr_t *docker_api_get(const docker_api_t *d, const char *id)
{
	ssize_t i = cache_find(d, id);
	return i >= 0 ? d->cache[i] : NULL;
}

void docker_api_foreach(const docker_api_t *d, void (*cb)(void *arg, const ctr_t *c), void *arg)
{
	for (size_t i = 0; i < d->n_cache; i++)
		cb(arg, d->cache[i]);
}

void docker_api_get_gaps(const docker_api_t *d, docker_api_gaps_t *out)
{
	*out = d->gaps;
}

bool docker_api_ok(const docker_api_t *d)
{
	return d->ok;
}

const char *docker_api_error(const docker_api_t *d)
{
	return d->error;
}
