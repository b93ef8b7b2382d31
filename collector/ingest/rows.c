// SPDX-License-Identifier: Apache-2.0
/* Batch -> events rows (see rows.h). */
#include "ingest/rows.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "utf8.h"
#include "wire.h"

int64_t rows_container_key(const char *id, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (!EVP_Digest(id, len, md, &n, EVP_md5(), NULL) || n < 8)
		return 0;
	uint64_t k = 0;
	for (int i = 0; i < 8; i++)
		k = k << 8 | md[i];
	return (int64_t)k;
}

/* jansson checks string values when it writes JSON but not object keys;
 * container ids also go into state ops written later. Check both here. */
static bool container_keys_valid(const Vigil__V1__Container *c)
{
	if (!c)
		return true;
	if (c->id && (strlen(c->id) > ROWS_ID_MAX || !utf8_valid(c->id, strlen(c->id))))
		return false;
	for (size_t i = 0; i < c->n_labels; i++) {
		const char *k = c->labels[i]->key;
		if (k && !utf8_valid(k, strlen(k)))
			return false;
	}
	return true;
}

/* The few container ids of a batch, checked and hashed once each. */
#define ID_CACHE_SLOTS 8

typedef struct {
	const char *id; /* borrowed from the batch */
	size_t len;
	int64_t key;
	bool valid;
} id_cache_t;

static const id_cache_t *container_id_info(id_cache_t *cache, unsigned *next, const char *id)
{
	size_t len = strlen(id);
	for (int i = 0; i < ID_CACHE_SLOTS; i++)
		if (cache[i].id && cache[i].len == len && memcmp(cache[i].id, id, len) == 0)
			return &cache[i];
	id_cache_t *slot = &cache[(*next)++ % ID_CACHE_SLOTS];
	slot->id = id;
	slot->len = len;
	slot->valid = len <= ROWS_ID_MAX && utf8_valid(id, len);
	slot->key = slot->valid ? rows_container_key(id, len) : 0;
	return slot;
}

static bool event_keys_valid(const Vigil__V1__Event *e, const id_cache_t *id)
{
	if (id && !id->valid)
		return false;
	switch (e->body_case) {
	case VIGIL__V1__EVENT__BODY_INVENTORY:
		for (size_t i = 0; i < e->inventory->n_containers; i++)
			if (!container_keys_valid(e->inventory->containers[i]))
				return false;
		for (size_t i = 0; i < e->inventory->n_all_ids; i++) {
			const char *s = e->inventory->all_ids[i];
			if (s && (strlen(s) > ROWS_ID_MAX || !utf8_valid(s, strlen(s))))
				return false;
		}
		return true;
	case VIGIL__V1__EVENT__BODY_CONTAINER_STARTED:
		return container_keys_valid(e->container_started->container);
	case VIGIL__V1__EVENT__BODY_CONTAINER_CHANGED:
		return container_keys_valid(e->container_changed->container);
	default:
		return true;
	}
}

/* The packages of an ImageInventory that are kept: the rest count as cut. */
static size_t image_kept(const Vigil__V1__ImageInventory *im)
{
	return im->n_packages < ROWS_IMAGE_PACKAGES_MAX ? im->n_packages : ROWS_IMAGE_PACKAGES_MAX;
}

/* Why an ImageInventory cannot be stored, or NULL: its id is the key of
 * the images table, and every string goes into rows as it is. */
static const char *image_refusal(const Vigil__V1__ImageInventory *im)
{
	if (!im->image_id || !im->image_id[0])
		return "image inventory without an image id";
	const char *const f[] = {im->image_id,	    im->image,	     im->container_id, im->os_id,
				 im->os_version_id, im->os_codename, im->os_pretty,    im->format,
				 im->status,	    im->reason};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (f[i] &&
		    (strlen(f[i]) > ROWS_IMAGE_FIELD_MAX || !utf8_valid(f[i], strlen(f[i]))))
			return "image inventory: a field too long or not UTF-8";
	for (size_t i = 0; i < image_kept(im); i++) {
		const Vigil__V1__Package *p = im->packages[i];
		const char *const pf[] = {p->name, p->version, p->arch, p->source_name,
					  p->source_version};
		for (size_t k = 0; k < 5; k++)
			if (pf[k] && (strlen(pf[k]) > ROWS_IMAGE_FIELD_MAX ||
				      !utf8_valid(pf[k], strlen(pf[k]))))
				return "image inventory: a package field too long or not UTF-8";
		if (!p->name || !p->name[0] || !p->version || !p->version[0])
			return "image inventory: a package without a name or version";
	}
	return NULL;
}

static json_t *str_array(char *const *items, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_string_nocheck(items[i]));
	return a;
}

/* json_string_nocheck keeps bytes as they are: PostgreSQL, not the
 * collector, decides what it cannot store (see the dead-letter path). */
#define JSTR(s) json_string_nocheck((s) ? (s) : "")

/* o[key] = v, or null when the agent lists the fact key as unknown. */
static void set_fact(json_t *o, const Vigil__V1__Container *c, const char *key, json_t *v)
{
	if (rules_fact_unknown(c, key)) {
		json_decref(v);
		v = json_null();
	}
	json_object_set_new(o, key, v);
}

static json_t *tristate_json(Vigil__V1__Tristate t)
{
	return t == VIGIL__V1__TRISTATE__TRISTATE_TRUE	  ? json_true()
	       : t == VIGIL__V1__TRISTATE__TRISTATE_FALSE ? json_false()
							  : json_null();
}

/* A cgroup limit: a number, "unlimited", or null (unknown). */
static json_t *limit_json(const Vigil__V1__Limit *l)
{
	if (!l)
		return json_null();
	return l->unlimited ? json_string("unlimited") : json_integer((json_int_t)l->value);
}

static json_t *mounts_json(const Vigil__V1__Container *c)
{
	json_t *mounts = json_array();
	for (size_t i = 0; mounts && i < c->n_mounts; i++) {
		const Vigil__V1__Mount *m = c->mounts[i];
		json_t *mo = json_object();
		json_object_set_new(mo, "source", JSTR(m->source));
		json_object_set_new(mo, "destination", JSTR(m->destination));
		json_object_set_new(mo, "read_only", json_boolean(m->read_only));
		json_object_set_new(mo, "type", JSTR(m->type));
		if (m->propagation && m->propagation[0])
			json_object_set_new(mo, "propagation", JSTR(m->propagation));
		json_array_append_new(mounts, mo);
	}
	return mounts;
}

/* The facts beyond the containers table's columns: they are stored in its
 * facts column (vigil_apply_state keeps every key it has no column for). */
static void extra_facts(json_t *o, const Vigil__V1__Container *c)
{
	static const char *const seccomp[] = {NULL, "disabled", "strict", "filter"};
	json_object_set_new(o, "no_new_privs", tristate_json(c->no_new_privs));
	json_object_set_new(o, "seccomp_mode",
			    c->seccomp_mode > 0 && c->seccomp_mode <= 3
				    ? json_string(seccomp[c->seccomp_mode])
				    : json_null());
	if (c->seccomp_mode == VIGIL__V1__SECCOMP_MODE__SECCOMP_MODE_FILTER)
		json_object_set_new(o, "seccomp_filters", json_integer(c->seccomp_filters));
	set_fact(o, c, "mac_label", JSTR(c->mac_label));
	json_object_set_new(o, "memory_limit", limit_json(c->memory_limit));
	json_object_set_new(o, "pids_limit", limit_json(c->pids_limit));
	json_t *cpu = json_null();
	if (c->cpu_limit && c->cpu_limit->unlimited)
		cpu = json_string("unlimited");
	else if (c->cpu_limit)
		cpu = json_pack("{s:I, s:I}", "quota_us", (json_int_t)c->cpu_limit->quota_us,
				"period_us", (json_int_t)c->cpu_limit->period_us);
	json_object_set_new(o, "cpu_limit", cpu);
	json_object_set_new(o, "host_user", tristate_json(c->host_user));
	json_object_set_new(o, "host_cgroup", tristate_json(c->host_cgroup));
	json_t *devs = json_array();
	for (size_t i = 0; devs && i < c->n_devices; i++) {
		const Vigil__V1__Device *d = c->devices[i];
		json_array_append_new(
			devs, json_pack("{s:o, s:o, s:o, s:o, s:I, s:I}", "path_on_host",
					JSTR(d->path_on_host), "path_in_container",
					JSTR(d->path_in_container), "permissions",
					JSTR(d->permissions), "type", JSTR(d->type), "major",
					(json_int_t)d->major, "minor", (json_int_t)d->minor));
	}
	set_fact(o, c, "devices", devs);
	set_fact(o, c, "rootfs_propagation", JSTR(c->rootfs_propagation));
	if (c->restart_policy && c->restart_policy[0])
		json_object_set_new(o, "restart_max_retries", json_integer(c->restart_max_retries));
	json_t *ports = json_array();
	for (size_t i = 0; ports && i < c->n_ports; i++) {
		const Vigil__V1__PortBinding *p = c->ports[i];
		json_array_append_new(ports,
				      json_pack("{s:o, s:o, s:i}", "container_port",
						JSTR(p->container_port), "host_ip",
						JSTR(p->host_ip), "host_port", (int)p->host_port));
	}
	set_fact(o, c, "ports", ports);
	set_fact(o, c, "repo_digests", str_array(c->repo_digests, c->n_repo_digests));
	json_object_set_new(o, "found_by", JSTR(c->found_by));
}

json_t *rows_container_json(const Vigil__V1__Container *c)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	json_object_set_new(o, "id", JSTR(c->id));
	json_object_set_new(o, "name", JSTR(c->name));
	set_fact(o, c, "runtime", json_string(wire_runtime_name(c->runtime)));
	json_object_set_new(o, "image", JSTR(c->image));
	set_fact(o, c, "image_digest", JSTR(c->image_digest));
	json_t *labels = json_object();
	for (size_t i = 0; labels && i < c->n_labels; i++) {
		const char *k = c->labels[i]->key ? c->labels[i]->key : "";
		json_object_setn_new_nocheck(labels, k, strlen(k), JSTR(c->labels[i]->value));
	}
	json_object_set_new(o, "labels", labels);
	json_object_set_new(o, "command", str_array(c->command, c->n_command));
	if (c->user_known) {
		json_object_set_new(o, "uid", json_integer(c->uid));
		json_object_set_new(o, "gid", json_integer(c->gid));
	}
	set_fact(o, c, "privileged", json_boolean(c->privileged));
	json_object_set_new(o, "cap_effective", str_array(c->cap_effective, c->n_cap_effective));
	json_object_set_new(o, "cap_bounding", str_array(c->cap_bounding, c->n_cap_bounding));
	set_fact(o, c, "host_pid", json_boolean(c->host_pid));
	set_fact(o, c, "host_net", json_boolean(c->host_net));
	set_fact(o, c, "host_ipc", json_boolean(c->host_ipc));
	set_fact(o, c, "host_uts", json_boolean(c->host_uts));
	set_fact(o, c, "mounts", mounts_json(c));
	set_fact(o, c, "read_only_rootfs", json_boolean(c->read_only_rootfs));
	set_fact(o, c, "seccomp_profile", JSTR(c->seccomp_profile));
	set_fact(o, c, "apparmor_profile", JSTR(c->apparmor_profile));
	if (c->restart_policy && c->restart_policy[0])
		set_fact(o, c, "restart_policy", JSTR(c->restart_policy));
	else if (rules_fact_unknown(c, "restart_policy"))
		json_object_set_new(o, "restart_policy", json_null());
	json_object_set_new(o, "init_pid", json_integer(c->init_pid));
	if (c->created_ns)
		json_object_set_new(o, "created_ns", json_integer(c->created_ns));
	if (c->started_ns)
		json_object_set_new(o, "started_ns", json_integer(c->started_ns));
	json_object_set_new(o, "state",
			    json_string_nocheck(c->state && c->state[0] ? c->state : "running"));
	/* An agent that predates these facts names no source (found_by):
	 * they stay out, unknown, rather than read as "none". */
	if (c->found_by && c->found_by[0])
		extra_facts(o, c);
	return o;
}

static json_t *host_json(const Vigil__V1__HostInfo *h)
{
	json_t *o = json_object();
	json_object_set_new(o, "hostname", JSTR(h->hostname));
	json_object_set_new(o, "os", JSTR(h->os));
	json_object_set_new(o, "kernel", JSTR(h->kernel));
	json_object_set_new(o, "boot_id", JSTR(h->boot_id));
	json_object_set_new(o, "agent_version", JSTR(h->agent_version));
	json_object_set_new(o, "runtimes", str_array(h->runtimes, h->n_runtimes));
	return o;
}

static void add_op(rows_batch_t *out, json_t *op)
{
	if (!out->state_ops)
		out->state_ops = json_array();
	json_array_append_new(out->state_ops, op);
}

/* An upsert op sharing the container object cj (which the caller keeps). */
static json_t *upsert_op(json_t *cj)
{
	json_t *op = json_object();
	json_object_set_new(op, "op", json_string("upsert"));
	json_object_set(op, "c", cj);
	return op;
}

/* Put container c into details d under key and add its upsert op: one
 * JSON object serves both. */
static void put_container(json_t *d, const char *key, const Vigil__V1__Container *c,
			  rows_batch_t *out)
{
	json_t *cj = rows_container_json(c);
	if (json_is_array(d))
		json_array_append(d, cj);
	else
		json_object_set(d, key, cj);
	add_op(out, upsert_op(cj));
	json_decref(cj);
}

/* The details of an exec beyond its columns, or NULL when there are none:
 * only what the agent established (an older agent sends none of it). */
static json_t *exec_details(const Vigil__V1__ProcessExec *x)
{
	json_t *d = json_object();
	if (x->truncated)
		json_object_set_new(d, "truncated", json_true());
	if (x->incomplete)
		json_object_set_new(d, "incomplete", json_true());
	if (x->parent_executable && x->parent_executable[0])
		json_object_set_new(d, "parent_executable", JSTR(x->parent_executable));
	if (x->parent_argv0 && x->parent_argv0[0])
		json_object_set_new(d, "parent_argv0", JSTR(x->parent_argv0));
	static const struct {
		const char *key;
		size_t off;
	} tri[] = {
		{"tty", offsetof(Vigil__V1__ProcessExec, tty)},
		{"exe_memfd", offsetof(Vigil__V1__ProcessExec, exe_memfd)},
		{"exe_upper_layer", offsetof(Vigil__V1__ProcessExec, exe_upper_layer)},
		{"exec_session", offsetof(Vigil__V1__ProcessExec, exec_session)},
	};
	bool any_tri = false;
	for (size_t i = 0; i < sizeof(tri) / sizeof(tri[0]); i++) {
		Vigil__V1__Tristate t;
		memcpy(&t, (const char *)x + tri[i].off, sizeof(t));
		any_tri |= t != VIGIL__V1__TRISTATE__TRISTATE_UNKNOWN;
	}
	if (any_tri) {
		json_object_set_new(d, "tty", tristate_json(x->tty));
		json_object_set_new(d, "exe_memfd", tristate_json(x->exe_memfd));
		json_object_set_new(d, "exe_upper_layer", tristate_json(x->exe_upper_layer));
		json_object_set_new(d, "exec_session", tristate_json(x->exec_session));
	}
	if (any_tri || x->real_uid || x->real_gid) {
		json_object_set_new(d, "real_uid", json_integer(x->real_uid));
		json_object_set_new(d, "real_gid", json_integer(x->real_gid));
		json_object_set_new(d, "login_uid",
				    x->login_uid_known && x->login_uid != UINT32_MAX
					    ? json_integer(x->login_uid)
					    : json_null());
	}
	if (!json_object_size(d)) {
		json_decref(d);
		return NULL;
	}
	return d;
}

/* What the agent lost, per kind (AgentStatus.losses). */
static json_t *losses_json(const Vigil__V1__AgentStatus *s)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < s->n_losses; i++) {
		const Vigil__V1__Loss *l = s->losses[i];
		json_array_append_new(a, json_pack("{s:o, s:I, s:I, s:I, s:I}", "what",
						   JSTR(l->what), "count", (json_int_t)l->count,
						   "total", (json_int_t)l->total, "first_ns",
						   (json_int_t)l->first_ns, "last_ns",
						   (json_int_t)l->last_ns));
	}
	return a;
}

/* The details of an agent status event. */
static json_t *status_details(const Vigil__V1__AgentStatus *s)
{
	json_t *d = json_object();
	json_object_set_new(d, "spool_bytes", json_integer((json_int_t)s->spool_bytes));
	json_object_set_new(d, "spool_capacity", json_integer((json_int_t)s->spool_capacity));
	json_object_set_new(d, "dropped_batches", json_integer((json_int_t)s->dropped_batches));
	json_object_set_new(d, "dropped_events", json_integer((json_int_t)s->dropped_events));
	if (s->drop_first_ns)
		json_object_set_new(d, "drop_first_ns", json_integer(s->drop_first_ns));
	if (s->drop_last_ns)
		json_object_set_new(d, "drop_last_ns", json_integer(s->drop_last_ns));
	json_t *src = json_array();
	for (size_t i = 0; i < s->n_sources; i++) {
		json_t *so = json_object();
		json_object_set_new(so, "name", JSTR(s->sources[i]->name));
		json_object_set_new(so, "ok", json_boolean(s->sources[i]->ok));
		json_object_set_new(so, "error", JSTR(s->sources[i]->error));
		json_array_append_new(src, so);
	}
	json_object_set_new(d, "sources", src);
	if (s->n_losses)
		json_object_set_new(d, "losses", losses_json(s));
	if (s->cert_not_after_ns)
		json_object_set_new(d, "cert_not_after_ns", json_integer(s->cert_not_after_ns));
	if (s->cert_renewed_ns)
		json_object_set_new(d, "cert_renewed_ns", json_integer(s->cert_renewed_ns));
	return d;
}

#define OR_EMPTY(s) ((s) ? (s) : "")

/* The details of an ImageInventory: its facts and counts; the packages go
 * to the images plan (image_plan). */
static json_t *image_details(const Vigil__V1__ImageInventory *im)
{
	size_t kept = image_kept(im);
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:I, s:I}",
			 "image_id", JSTR(im->image_id), "image", JSTR(im->image), "container_id",
			 JSTR(im->container_id), "os_id", JSTR(im->os_id), "os_version_id",
			 JSTR(im->os_version_id), "os_codename", JSTR(im->os_codename), "os_pretty",
			 JSTR(im->os_pretty), "format", JSTR(im->format), "status",
			 JSTR(im->status), "reason", JSTR(im->reason), "packages", (json_int_t)kept,
			 "packages_cut", (json_int_t)(im->packages_cut + (im->n_packages - kept)),
			 "read_ms", (json_int_t)im->read_ms);
}

/* The image as vigil_apply_images() takes it, packages capped; a source
 * name or version the agent left empty is the binary's. */
static json_t *image_plan(const Vigil__V1__ImageInventory *im, int32_t agent_id)
{
	json_t *o = image_details(im);
	json_t *pk = json_array();
	if (!o || !pk) {
		json_decref(o);
		json_decref(pk);
		return NULL;
	}
	size_t kept = image_kept(im);
	for (size_t i = 0; i < kept; i++) {
		const Vigil__V1__Package *p = im->packages[i];
		const char *sn = p->source_name && p->source_name[0] ? p->source_name : p->name;
		const char *sv =
			p->source_version && p->source_version[0] ? p->source_version : p->version;
		json_t *row = json_pack("[s,s,s,s,s]", OR_EMPTY(p->name), OR_EMPTY(p->version),
					OR_EMPTY(p->arch), OR_EMPTY(sn), OR_EMPTY(sv));
		if (!row || json_array_append_new(pk, row) != 0) {
			json_decref(o);
			json_decref(pk);
			return NULL;
		}
	}
	json_object_set_new(o, "pk", pk);
	json_object_set_new(o, "a", json_integer(agent_id));
	return o;
}

/* Build the details column and the state ops of one event. */
static json_t *event_details(const Vigil__V1__Event *e, int64_t ts, rows_batch_t *out)
{
	json_t *d = NULL;
	switch (e->body_case) {
	case VIGIL__V1__EVENT__BODY_INVENTORY: {
		const Vigil__V1__Inventory *inv = e->inventory;
		d = json_object();
		if (inv->host)
			json_object_set_new(d, "host", host_json(inv->host));
		json_t *cs = json_array();
		json_t *ids = json_array();
		for (size_t i = 0; i < inv->n_containers; i++) {
			put_container(cs, NULL, inv->containers[i], out);
			if (!inv->n_all_ids)
				json_array_append_new(ids, JSTR(inv->containers[i]->id));
		}
		for (size_t i = 0; i < inv->n_all_ids; i++)
			json_array_append_new(ids, JSTR(inv->all_ids[i]));
		json_object_set_new(d, "containers", cs);
		json_object_set_new(d, "full", json_boolean(inv->full));
		if (inv->full) {
			json_t *op = json_object();
			json_object_set_new(op, "op", json_string("full"));
			json_object_set_new(op, "ids", ids);
			add_op(out, op);
		} else {
			json_decref(ids);
		}
		break;
	}
	case VIGIL__V1__EVENT__BODY_CONTAINER_STARTED:
		if (e->container_started->container) {
			d = json_object();
			put_container(d, "container", e->container_started->container, out);
		}
		break;
	case VIGIL__V1__EVENT__BODY_CONTAINER_CHANGED:
		if (e->container_changed->container) {
			d = json_object();
			put_container(d, "container", e->container_changed->container, out);
		}
		break;
	case VIGIL__V1__EVENT__BODY_CONTAINER_STOPPED: {
		const Vigil__V1__ContainerStopped *s = e->container_stopped;
		d = json_object();
		if (s->exit_code_known)
			json_object_set_new(d, "exit_code", json_integer(s->exit_code));
		json_object_set_new(d, "init_pid", json_integer(s->init_pid));
		if (e->container_id && e->container_id[0]) {
			json_t *op = json_object();
			json_object_set_new(op, "op", json_string("stopped"));
			json_object_set_new(op, "id", JSTR(e->container_id));
			json_object_set_new(op, "exit_code",
					    s->exit_code_known ? json_integer(s->exit_code)
							       : json_null());
			json_object_set_new(op, "ts", json_integer(ts));
			add_op(out, op);
		}
		break;
	}
	case VIGIL__V1__EVENT__BODY_PROCESS_EXEC:
		d = exec_details(e->process_exec);
		break;
	case VIGIL__V1__EVENT__BODY_PROCESS_UID_CHANGE: {
		const Vigil__V1__ProcessUidChange *u = e->process_uid_change;
		d = json_pack("{s:I, s:I, s:I, s:I, s:I, s:o, s:o}", "pid", (json_int_t)u->pid,
			      "old_real_uid", (json_int_t)u->old_real_uid, "old_effective_uid",
			      (json_int_t)u->old_effective_uid, "new_real_uid",
			      (json_int_t)u->new_real_uid, "new_effective_uid",
			      (json_int_t)u->new_effective_uid, "executable", JSTR(u->executable),
			      "argv0", JSTR(u->argv0));
		break;
	}
	case VIGIL__V1__EVENT__BODY_AGENT_STATUS: {
		d = status_details(e->agent_status);
		/* the agent's latest status and its drop totals live on its row */
		json_t *op =
			json_pack("{s:s, s:I, s:O}", "op", "status", "ts", (json_int_t)ts, "d", d);
		if (op)
			add_op(out, op);
		break;
	}
	case VIGIL__V1__EVENT__BODY_IMAGE_INVENTORY:
		d = image_details(e->image_inventory);
		break;
	case VIGIL__V1__EVENT__BODY_FINDING:
		d = json_object();
		json_object_set_new(d, "rule", JSTR(e->finding->rule));
		json_object_set_new(d, "summary", JSTR(e->finding->summary));
		break;
	default:
		break;
	}
	return d;
}

static void put_str_or_null(copybuf_t *b, const char *s)
{
	if (s && s[0])
		copy_text(b, s, strlen(s));
	else
		copy_null(b);
}

/* Drop the partial row of event idx (from start) and the state ops it
 * added (past n_ops), and record why. */
static void reject_row(rows_batch_t *out, size_t start, size_t n_ops, uint32_t idx)
{
	out->rows.len = start;
	while (out->state_ops && json_array_size(out->state_ops) > n_ops)
		json_array_remove(out->state_ops, n_ops);
	if (out->state_ops && json_array_size(out->state_ops) == 0) {
		json_decref(out->state_ops);
		out->state_ops = NULL;
	}
	out->reject[out->n_rejects].idx = idx;
	out->reject[out->n_rejects].reason = "event details are not valid UTF-8";
	out->n_rejects++;
}

/* PostgreSQL takes text columns as UTF-8 only: an exec whose strings are
 * not is refused here rather than by COPY. */
static bool exec_strings_valid(const Vigil__V1__ProcessExec *x)
{
	if (x->executable && !utf8_valid(x->executable, strlen(x->executable)))
		return false;
	if (x->cwd && !utf8_valid(x->cwd, strlen(x->cwd)))
		return false;
	for (size_t k = 0; k < x->n_argv; k++)
		if (x->argv[k] && !utf8_valid(x->argv[k], strlen(x->argv[k])))
			return false;
	return true;
}

/* Why event e (marked with ROWS_MARK_* bits) cannot become a row (a static
 * sentence), or NULL. */
static const char *event_refusal(const Vigil__V1__Event *e, const id_cache_t *id, unsigned mark)
{
	if (mark & ROWS_MARK_NUL)
		return "a string holds a NUL byte";
	if (e->body_case == VIGIL__V1__EVENT__BODY_PROCESS_EXEC &&
	    !exec_strings_valid(e->process_exec))
		return "executable, argv or cwd is not valid UTF-8";
	if (e->body_case == VIGIL__V1__EVENT__BODY_IMAGE_INVENTORY) {
		const char *why = image_refusal(e->image_inventory);
		if (why)
			return why;
	}
	if (!event_keys_valid(e, id))
		return "container id too long or not valid UTF-8, or label key not UTF-8";
	return NULL;
}

/* Add image im, stored as event row of agent_id, to the images plan. */
static void add_image(rows_batch_t *out, const Vigil__V1__ImageInventory *im, int32_t agent_id)
{
	json_t *o = image_plan(im, agent_id);
	if ((!out->images && !(out->images = json_array())) || !o ||
	    json_array_append_new(out->images, o) != 0)
		out->rows.oom = 1;
}

/* Judge event e with the rules in force: its findings go to the state ops,
 * after the ops of the event itself. */
static int judge_event(const rules_ctx_t *rules, const Vigil__V1__Event *e, uint64_t seq,
		       uint32_t idx, int64_t ts, rows_batch_t *out)
{
	const rules_evidence_t ev = {seq, idx, ts};
	const Vigil__V1__Container *const *cs = NULL;
	size_t n = 0;
	const Vigil__V1__Container *one = NULL;
	switch (e->body_case) {
	case VIGIL__V1__EVENT__BODY_INVENTORY:
		cs = (const Vigil__V1__Container *const *)e->inventory->containers;
		n = e->inventory->n_containers;
		break;
	case VIGIL__V1__EVENT__BODY_CONTAINER_STARTED:
		one = e->container_started->container;
		break;
	case VIGIL__V1__EVENT__BODY_CONTAINER_CHANGED:
		one = e->container_changed->container;
		break;
	case VIGIL__V1__EVENT__BODY_PROCESS_EXEC:
	case VIGIL__V1__EVENT__BODY_PROCESS_UID_CHANGE:
		break;
	default:
		return 0;
	}
	if (!out->state_ops && !(out->state_ops = json_array()))
		return -1;
	if (one) {
		cs = &one;
		n = 1;
	}
	for (size_t i = 0; i < n; i++)
		if (cs[i]->id && cs[i]->id[0] &&
		    rules_judge_container(rules, cs[i], &ev, out->state_ops) != 0)
			return -1;
	if (e->body_case == VIGIL__V1__EVENT__BODY_PROCESS_EXEC)
		return rules_judge_exec(rules, e->container_id, e->process_exec, &ev,
					out->state_ops);
	if (e->body_case == VIGIL__V1__EVENT__BODY_PROCESS_UID_CHANGE)
		return rules_judge_uid_change(rules, e->container_id, e->process_uid_change, &ev,
					      out->state_ops);
	return 0;
}

static void add_reject(rows_batch_t *out, size_t idx, const char *why)
{
	out->reject[out->n_rejects].idx = (uint32_t)idx;
	out->reject[out->n_rejects].reason = why;
	out->n_rejects++;
}

/* The marks of event i: ROWS_MARK_* bits. */
#define MARKS(i) (marks ? marks[i] : 0u)

int rows_encode_batch(const Vigil__V1__Batch *b, int32_t agent_id, int64_t recv_ns,
		      rows_range_t range, const rules_ctx_t *rules, rows_batch_t *out)
{
	return rows_encode_marked(b, agent_id, recv_ns, range, rules, NULL, out);
}

int rows_encode_marked(const Vigil__V1__Batch *b, int32_t agent_id, int64_t recv_ns,
		       rows_range_t range, const rules_ctx_t *rules, const uint8_t *marks,
		       rows_batch_t *out)
{
	memset(out, 0, sizeof(*out));
	copybuf_init(&out->rows);
	if (b->n_events) {
		out->row = malloc(b->n_events * sizeof(*out->row));
		out->reject = malloc(b->n_events * sizeof(*out->reject));
		if (!out->row || !out->reject) {
			rows_batch_free(out);
			return -1;
		}
	}
	/* most rows are process execs of about this size: grow the buffer once */
	copybuf_reserve(&out->rows, (b->n_events < 16384 ? b->n_events : 16384) * 384);
	id_cache_t ids[ID_CACHE_SLOTS] = {0};
	unsigned next_id = 0;
	for (size_t i = 0; i < b->n_events; i++) {
		const Vigil__V1__Event *e = b->events[i];
		const id_cache_t *id = e->container_id && e->container_id[0]
					       ? container_id_info(ids, &next_id, e->container_id)
					       : NULL;
		const char *refused = event_refusal(e, id, MARKS(i));
		if (refused) {
			add_reject(out, i, refused);
			continue;
		}
		copybuf_t *c = &out->rows;
		size_t start = c->len;
		size_t n_ops = out->state_ops ? json_array_size(out->state_ops) : 0;
		int64_t ts = e->time_ns;
		if (ts < range.lo_ns || ts >= range.hi_ns) {
			ts = recv_ns;
			out->clamped++;
		}
		copy_tuple(c, ROWS_EVENT_COLUMNS);
		copy_timestamptz(c, ts);
		copy_timestamptz(c, recv_ns);
		copy_int4(c, agent_id);
		copy_int8(c, (int64_t)b->seq);
		copy_int4(c, (int32_t)i);
		/* unknown enum values beyond int2 are stored as 0 (unspecified) */
		copy_int2(c, e->kind >= 0 && e->kind <= INT16_MAX ? (int16_t)e->kind : 0);
		copy_int2(c,
			  e->severity >= 0 && e->severity <= INT16_MAX ? (int16_t)e->severity : 0);
		if (id) {
			copy_int8(c, id->key);
			copy_text(c, e->container_id, id->len);
		} else {
			copy_null(c);
			copy_null(c);
		}
		if (e->body_case == VIGIL__V1__EVENT__BODY_PROCESS_EXEC) {
			const Vigil__V1__ProcessExec *x = e->process_exec;
			copy_int8(c, x->pid);
			copy_int8(c, x->ppid);
			copy_int8(c, x->uid);
			put_str_or_null(c, x->executable);
			copy_text_array(c, x->argv, x->n_argv);
			put_str_or_null(c, x->cwd);
		} else {
			for (int k = 0; k < 6; k++)
				copy_null(c);
		}
		json_t *d = event_details(e, ts, out);
		if ((MARKS(i) & ROWS_MARK_CUT) && (d || (d = json_object())) && json_is_object(d))
			json_object_set_new(d, "truncated", json_true());
		/* stored at its receive time: the agent's own time is kept beside */
		if (ts != e->time_ns && (d || (d = json_object())) && json_is_object(d))
			json_object_set_new(d, "agent_time_ns",
					    json_integer((json_int_t)e->time_ns));
		if (rules && judge_event(rules, e, b->seq, (uint32_t)i, ts, out) != 0)
			out->rows.oom = 1;
		if (d) {
			char *s = json_dumps(d, JSON_COMPACT);
			json_decref(d);
			if (!s) {
				/* Only invalid UTF-8 makes jansson refuse. */
				reject_row(out, start, n_ops, (uint32_t)i);
				continue;
			}
			copy_jsonb(c, s, strlen(s));
			free(s);
		} else {
			copy_null(c);
		}
		out->row[out->n_rows].end = c->len;
		out->row[out->n_rows].idx = (uint32_t)i;
		out->n_rows++;
		if (e->body_case == VIGIL__V1__EVENT__BODY_IMAGE_INVENTORY)
			add_image(out, e->image_inventory, agent_id);
	}
	if (out->rows.oom) {
		rows_batch_free(out);
		return -1;
	}
	if (out->state_ops && json_array_size(out->state_ops) == 0) {
		json_decref(out->state_ops); /* judged, nothing found */
		out->state_ops = NULL;
	}
	return 0;
}

void rows_batch_free(rows_batch_t *out)
{
	if (!out)
		return;
	copybuf_free(&out->rows);
	free(out->row);
	free(out->reject);
	json_decref(out->state_ops);
	json_decref(out->images);
	memset(out, 0, sizeof(*out));
}
