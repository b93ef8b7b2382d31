/*
 * Docker-Engine-API source (see docker_api.h). One request at a time on a
 * fresh connection ("Connection: close"), plus the long-lived /events
 * stream on its own connection. Every request runs under api_timeout; a
 * socket that accepts and never answers makes the source fail, and the
 * agent goes on with /proc and the OCI state.
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
#include <jansson.h>

#include "cgroup.h"
#include "httpc.h"
#include "log.h"
#include "text.h"
#include "vtime.h"

#define API_BODY_MAX (8 * 1024 * 1024)
#define API_LINE_MAX (1024 * 1024)
#define API_EVENTS_BACKOFF_MAX_MS 30000

/* ---- pure parsers --------------------------------------------------------- */

static const char *jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool all_digits(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* "uid", "uid:gid" (numeric). Names need /etc/passwd of the image: leave
 * the user unknown then, /proc will tell. */
static void parse_user(const char *u, ctr_t *c)
{
	if (!u || !u[0]) {
		c->uid = c->gid = 0;
		c->have |= CTR_HAVE_USER;
		return;
	}
	const char *colon = strchr(u, ':');
	size_t ul = colon ? (size_t)(colon - u) : strlen(u);
	if (!all_digits(u, ul) || ul > 10)
		return;
	c->uid = (uint32_t)strtoul(u, NULL, 10);
	c->gid = c->uid;
	if (colon) {
		if (!all_digits(colon + 1, strlen(colon + 1)) || strlen(colon + 1) > 10)
			return;
		c->gid = (uint32_t)strtoul(colon + 1, NULL, 10);
	}
	c->have |= CTR_HAVE_USER;
}

static bool mode_is_host(json_t *hc, const char *key)
{
	const char *v = jstr(hc, key);
	return v && strcmp(v, "host") == 0;
}

/* HostConfig.Devices: [{PathOnHost, PathInContainer, CgroupPermissions}] */
static int api_devices(json_t *devs, ctr_t *c)
{
	if (devs && !json_is_array(devs) && !json_is_null(devs))
		return 0;
	size_t i;
	json_t *d;
	json_array_foreach(devs, i, d)
	{
		const char *in = jstr(d, "PathInContainer");
		const char *host = jstr(d, "PathOnHost");
		if (!in && !host)
			continue;
		const char *perms = jstr(d, "CgroupPermissions");
		if (ctr_add_device(c, host ? host : "", in ? in : host, perms ? perms : "", "", 0,
				   0) != 0)
			return -1;
	}
	c->have |= CTR_HAVE_DEVICES;
	return 0;
}

/* Published ports: NetworkSettings.Ports {"80/tcp": [{HostIp, HostPort}]}
 * (what is bound), else HostConfig.PortBindings (what was asked). */
static int api_ports(json_t *root, ctr_t *c)
{
	json_t *ports = json_object_get(json_object_get(root, "NetworkSettings"), "Ports");
	if (!json_is_object(ports) || json_object_size(ports) == 0) {
		json_t *pb = json_object_get(json_object_get(root, "HostConfig"), "PortBindings");
		if (json_is_object(pb))
			ports = pb;
	}
	if (!json_is_object(ports) && !json_is_null(ports)) {
		if (json_is_object(json_object_get(root, "NetworkSettings")))
			c->have |= CTR_HAVE_PORTS; /* none published */
		return 0;
	}
	const char *k;
	json_t *binds;
	json_object_foreach(ports, k, binds)
	{
		size_t i;
		json_t *b;
		json_array_foreach(binds, i, b)
		{
			const char *ip = jstr(b, "HostIp");
			const char *hp = jstr(b, "HostPort");
			unsigned long port = 0;
			if (hp && all_digits(hp, strlen(hp)) && strlen(hp) <= 5)
				port = strtoul(hp, NULL, 10);
			if (port > 65535)
				port = 0;
			if (ctr_add_port(c, k, ip ? ip : "", (uint32_t)port) != 0)
				return -1;
		}
	}
	c->have |= CTR_HAVE_PORTS;
	return 0;
}

/* RepoDigests (Podman's ImageDigests): the registry digests. */
static int api_digests(json_t *root, ctr_t *c)
{
	json_t *rd = json_object_get(root, "RepoDigests");
	if (!rd)
		rd = json_object_get(root, "ImageDigests");
	if (json_is_array(rd)) {
		ctr_strv_clear(&c->repo_digests);
		size_t i;
		json_t *d;
		json_array_foreach(rd, i, d)
		{
			if (i >= 64) {
				c->truncated = true;
				break;
			}
			if (json_is_string(d) &&
			    ctr_strv_push(&c->repo_digests, json_string_value(d),
					  json_string_length(d), &c->truncated) != 0)
				return -1;
		}
		c->have |= CTR_HAVE_DIGESTS;
	}
	return 0;
}

/* HostConfig: privileged, namespaces, restart policy, devices, read-only
 * root, security options. Return 0, or -1 on OOM. */
static int api_hostconfig(json_t *root, json_t *hc, ctr_t *c)
{
	c->privileged = json_is_true(json_object_get(hc, "Privileged"));
	c->have |= CTR_HAVE_PRIV;
	c->host_pid = mode_is_host(hc, "PidMode");
	c->host_net = mode_is_host(hc, "NetworkMode");
	c->host_ipc = mode_is_host(hc, "IpcMode");
	c->host_uts = mode_is_host(hc, "UTSMode");
	c->have |= CTR_HAVE_NS;
	json_t *rp = json_object_get(hc, "RestartPolicy");
	const char *policy = json_is_object(rp) ? jstr(rp, "Name") : NULL;
	if (policy) {
		if (ctr_set_str(&c->restart_policy, policy[0] ? policy : "no", &c->truncated) != 0)
			return -1;
		json_t *mr = json_object_get(rp, "MaximumRetryCount");
		if (json_is_integer(mr) && json_integer_value(mr) > 0 &&
		    json_integer_value(mr) <= UINT32_MAX)
			c->restart_retries = (uint32_t)json_integer_value(mr);
		c->have |= CTR_HAVE_RESTART;
	}
	if (api_devices(json_object_get(hc, "Devices"), c) != 0)
		return -1;
	c->ro_rootfs = json_is_true(json_object_get(hc, "ReadonlyRootfs"));
	c->have |= CTR_HAVE_ROFS;
	const char *seccomp = "default";
	bool nnp_seen = false;
	size_t i;
	json_t *so;
	json_array_foreach(json_object_get(hc, "SecurityOpt"), i, so)
	{
		const char *s = json_string_value(so);
		if (s && (strncmp(s, "seccomp=", 8) == 0 || strncmp(s, "seccomp:", 8) == 0))
			seccomp = s + 8;
		/* "no-new-privileges", "no-new-privileges:true", "=false" */
		if (s && strncmp(s, "no-new-privileges", 17) == 0) {
			const char *v = s[17] ? s + 18 : "true";
			c->no_new_privs = strcmp(v, "false") == 0
						  ? VIGIL__V1__TRISTATE__TRISTATE_FALSE
						  : VIGIL__V1__TRISTATE__TRISTATE_TRUE;
			nnp_seen = true;
		}
	}
	if (!nnp_seen)
		c->no_new_privs = VIGIL__V1__TRISTATE__TRISTATE_FALSE;
	c->have |= CTR_HAVE_NNP;
	const char *aa = jstr(root, "AppArmorProfile");
	if (ctr_set_str(&c->seccomp, seccomp, &c->truncated) != 0 ||
	    ctr_set_str(&c->apparmor, aa ? aa : "", &c->truncated) != 0)
		return -1;
	c->have |= CTR_HAVE_PROFILES;
	return 0;
}

int docker_parse_inspect(const char *json, size_t len, ctr_t *c, size_t max_labels)
{
	json_error_t e;
	json_t *root = json_loadb(json, len, 0, &e);
	const char *id = json_is_object(root) ? jstr(root, "Id") : NULL;
	if (!id || !cgroup_is_id(id, strlen(id))) {
		json_decref(root);
		return -1;
	}
	int rc = -1;
	free(c->id);
	c->id = strdup(id);
	if (!c->id)
		goto done;
	json_t *cfg = json_object_get(root, "Config");
	json_t *hc = json_object_get(root, "HostConfig");
	json_t *state = json_object_get(root, "State");
	const char *name = jstr(root, "Name");
	if (name) {
		if (name[0] == '/')
			name++;
		if (ctr_set_str(&c->name, name, &c->truncated) != 0)
			goto done;
		c->have |= CTR_HAVE_NAME;
	}
	const char *image = jstr(cfg, "Image");
	const char *digest = jstr(root, "Image");
	if (image || digest) {
		if (ctr_set_str(&c->image, image ? image : "", &c->truncated) != 0 ||
		    ctr_set_str(&c->image_digest, digest ? digest : "", &c->truncated) != 0)
			goto done;
		c->have |= CTR_HAVE_IMAGE;
	}
	json_t *labels = json_object_get(cfg, "Labels");
	if (json_is_object(labels) || json_is_null(labels)) {
		const char *k;
		json_t *v;
		json_object_foreach(labels, k, v)
		{
			if (json_is_string(v) &&
			    ctr_add_label(c, k, json_string_value(v), max_labels) != 0)
				goto done;
		}
		c->have |= CTR_HAVE_LABELS;
	}
	const char *path = jstr(root, "Path");
	json_t *args = json_object_get(root, "Args");
	if (path) {
		ctr_strv_clear(&c->command);
		size_t budget = 0;
		if (ctr_strv_push(&c->command, path, strlen(path), &c->truncated) != 0)
			goto done;
		size_t i;
		json_t *a;
		json_array_foreach(args, i, a)
		{
			if (!json_is_string(a))
				continue;
			budget += json_string_length(a);
			if (i >= 1024 || budget > 16 * text_max()) {
				c->truncated = true;
				break;
			}
			if (ctr_strv_push(&c->command, json_string_value(a), json_string_length(a),
					  &c->truncated) != 0)
				goto done;
		}
		c->have |= CTR_HAVE_COMMAND;
	}
	if (json_is_object(cfg))
		parse_user(jstr(cfg, "User"), c);
	if (json_is_object(hc) && api_hostconfig(root, hc, c) != 0)
		goto done;
	json_t *mounts = json_object_get(root, "Mounts");
	if (json_is_array(mounts)) {
		size_t i;
		json_t *m;
		json_array_foreach(mounts, i, m)
		{
			const char *dst = jstr(m, "Destination");
			if (!dst)
				continue;
			const char *src = jstr(m, "Source");
			const char *type = jstr(m, "Type");
			json_t *rw = json_object_get(m, "RW");
			const char *prop = ctr_propagation_name(jstr(m, "Propagation"));
			if (ctr_add_mount_prop(c, src ? src : "", dst, type ? type : "",
					       json_is_boolean(rw) && !json_is_true(rw),
					       prop ? prop : "") != 0)
				goto done;
		}
		c->have |= CTR_HAVE_MOUNTS;
	}
	if (api_ports(root, c) != 0)
		goto done;
	if (api_digests(root, c) != 0)
		goto done;
	if (json_is_object(state)) {
		json_t *pid = json_object_get(state, "Pid");
		if (json_is_integer(pid) && json_integer_value(pid) > 0 &&
		    json_integer_value(pid) <= UINT32_MAX) {
			c->init_pid = (uint32_t)json_integer_value(pid);
			c->have |= CTR_HAVE_PID;
		}
		const char *st = jstr(state, "Status");
		if (st) {
			if (ctr_set_str(&c->state, st, &c->truncated) != 0)
				goto done;
			c->have |= CTR_HAVE_STATE;
		}
		const char *started = jstr(state, "StartedAt");
		if (started)
			vtime_parse_rfc3339(started, &c->started_ns);
	}
	const char *created = jstr(root, "Created");
	if (created)
		vtime_parse_rfc3339(created, &c->created_ns);
	if (c->created_ns || c->started_ns)
		c->have |= CTR_HAVE_TIMES;
	rc = 0;
done:
	json_decref(root);
	return rc;
}

int docker_parse_list(const char *json, size_t len, void (*cb)(void *arg, const char *id),
		      void *arg)
{
	json_error_t e;
	json_t *root = json_loadb(json, len, 0, &e);
	if (!json_is_array(root)) {
		json_decref(root);
		return -1;
	}
	int n = 0;
	size_t i;
	json_t *c;
	json_array_foreach(root, i, c)
	{
		const char *id = jstr(c, "Id");
		const char *state = jstr(c, "State");
		if (!id || !cgroup_is_id(id, strlen(id)))
			continue;
		if (state && strcmp(state, "running") != 0)
			continue;
		cb(arg, id);
		n++;
	}
	json_decref(root);
	return n;
}

int docker_parse_event(const char *json, size_t len, docker_event_t *out)
{
	memset(out, 0, sizeof(*out));
	json_error_t e;
	json_t *root = json_loadb(json, len, 0, &e);
	if (!json_is_object(root)) {
		json_decref(root);
		return -1;
	}
	int rc = -1;
	const char *type = jstr(root, "Type");
	const char *action = jstr(root, "Action");
	if (!action)
		action = jstr(root, "status");
	json_t *actor = json_object_get(root, "Actor");
	const char *id = jstr(actor, "ID");
	if (!id)
		id = jstr(root, "id");
	if ((type && strcmp(type, "container") != 0) || !action || !id ||
	    !cgroup_is_id(id, strlen(id)))
		goto done;
	/* "exec_start: sh" and the like: keep the verb */
	size_t al = strcspn(action, ": ");
	if (al >= sizeof(out->action))
		al = sizeof(out->action) - 1;
	memcpy(out->action, action, al);
	out->action[al] = '\0';
	snprintf(out->id, sizeof(out->id), "%s", id);
	json_t *attrs = json_object_get(actor, "Attributes");
	const char *ec = jstr(attrs, "exitCode");
	if (!ec)
		ec = jstr(attrs, "containerExitCode");
	if (ec && all_digits(ec, strlen(ec)) && strlen(ec) < 10) {
		out->exit_known = true;
		out->exit_code = atoi(ec);
	}
	rc = 0;
done:
	json_decref(root);
	return rc;
}

/* ---- the client ------------------------------------------------------------ */

typedef enum {
	REQ_LIST,
	REQ_INSPECT,
	REQ_EVENTS
} req_kind_t;

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
	if (!why && r->http.status != 200 && !(r->kind == REQ_INSPECT && r->http.status == 404)) {
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
				if (c->state && strcmp(c->state, "running") != 0) {
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
