// SPDX-License-Identifier: Apache-2.0
/* Container records (see ctr.h). */
#include "ctr.h"

#include <stdlib.h>
#include <string.h>

#include "text.h"

ctr_t *ctr_new(const char *id)
{
	ctr_t *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->id = strdup(id ? id : "");
	if (!c->id) {
		free(c);
		return NULL;
	}
	return c;
}

void ctr_strv_clear(ctr_strv_t *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->v[i]);
	free(v->v);
	v->v = NULL;
	v->n = 0;
}

static void clear_labels(ctr_t *c)
{
	for (size_t i = 0; i < c->n_labels; i++) {
		free(c->labels[i].key);
		free(c->labels[i].value);
	}
	free(c->labels);
	c->labels = NULL;
	c->n_labels = 0;
}

static void clear_mounts(ctr_t *c)
{
	for (size_t i = 0; i < c->n_mounts; i++) {
		free(c->mounts[i].source);
		free(c->mounts[i].destination);
		free(c->mounts[i].type);
		free(c->mounts[i].propagation);
	}
	free(c->mounts);
	c->mounts = NULL;
	c->n_mounts = 0;
}

static void clear_devices(ctr_t *c)
{
	for (size_t i = 0; i < c->n_devices; i++) {
		free(c->devices[i].host_path);
		free(c->devices[i].path);
		free(c->devices[i].permissions);
		free(c->devices[i].type);
	}
	free(c->devices);
	c->devices = NULL;
	c->n_devices = 0;
}

static void clear_ports(ctr_t *c)
{
	for (size_t i = 0; i < c->n_ports; i++) {
		free(c->ports[i].container_port);
		free(c->ports[i].host_ip);
	}
	free(c->ports);
	c->ports = NULL;
	c->n_ports = 0;
}

void ctr_free(ctr_t *c)
{
	if (!c)
		return;
	free(c->id);
	free(c->name);
	free(c->image);
	free(c->image_digest);
	clear_labels(c);
	ctr_strv_clear(&c->command);
	ctr_strv_clear(&c->cap_eff);
	ctr_strv_clear(&c->cap_bnd);
	clear_mounts(c);
	free(c->seccomp);
	free(c->apparmor);
	free(c->restart_policy);
	free(c->state);
	free(c->mac_label);
	clear_devices(c);
	free(c->rootfs_propagation);
	clear_ports(c);
	ctr_strv_clear(&c->repo_digests);
	free(c->upperdir);
	free(c);
}

int ctr_strv_push(ctr_strv_t *v, const char *s, size_t n, bool *truncated)
{
	char **nv = realloc(v->v, (v->n + 1) * sizeof(*nv));
	if (!nv)
		return -1;
	v->v = nv;
	nv[v->n] = text_dup_n(s, n, 0, truncated);
	if (!nv[v->n])
		return -1;
	v->n++;
	return 0;
}

int ctr_set_str(char **field, const char *s, bool *truncated)
{
	char *d = text_dup(s, truncated);
	if (!d)
		return -1;
	free(*field);
	*field = d;
	return 0;
}

/* Labels and mounts together may take this much text in one record, so
 * a container's record always fits in a batch (each string is capped too). */
#define CTR_LIST_TEXT_MAX (256 * 1024)

static size_t list_text(const ctr_t *c)
{
	return c->list_bytes;
}

int ctr_add_label(ctr_t *c, const char *k, const char *v, size_t max_labels)
{
	if (c->n_labels >= max_labels || list_text(c) >= CTR_LIST_TEXT_MAX) {
		c->truncated = true;
		return 0;
	}
	ctr_label_t *nl = realloc(c->labels, (c->n_labels + 1) * sizeof(*nl));
	if (!nl)
		return -1;
	c->labels = nl;
	ctr_label_t *l = &nl[c->n_labels];
	l->key = text_dup(k, &c->truncated);
	l->value = text_dup(v, &c->truncated);
	if (l->key && l->value)
		c->list_bytes += strlen(l->key) + strlen(l->value);
	if (!l->key || !l->value) {
		free(l->key);
		free(l->value);
		return -1;
	}
	c->n_labels++;
	return 0;
}

int ctr_add_mount(ctr_t *c, const char *src, const char *dst, const char *type, bool ro)
{
	return ctr_add_mount_prop(c, src, dst, type, ro, "");
}

const char *ctr_propagation_name(const char *opt)
{
	static const char *const names[] = {"private", "rprivate", "shared",	 "rshared",
					    "slave",   "rslave",   "unbindable", "runbindable"};
	if (!opt)
		return NULL;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(opt, names[i]) == 0)
			return names[i];
	return NULL;
}

int ctr_add_device(ctr_t *c, const char *host_path, const char *path, const char *perms,
		   const char *type, int64_t major, int64_t minor)
{
	if (c->n_devices >= 256 || list_text(c) >= CTR_LIST_TEXT_MAX) {
		c->truncated = true;
		return 0;
	}
	ctr_device_t *nd = realloc(c->devices, (c->n_devices + 1) * sizeof(*nd));
	if (!nd)
		return -1;
	c->devices = nd;
	ctr_device_t *d = &nd[c->n_devices];
	d->host_path = text_dup(host_path, &c->truncated);
	d->path = text_dup(path, &c->truncated);
	d->permissions = text_dup(perms, &c->truncated);
	d->type = text_dup(type, &c->truncated);
	d->major = major;
	d->minor = minor;
	if (!d->host_path || !d->path || !d->permissions || !d->type) {
		free(d->host_path);
		free(d->path);
		free(d->permissions);
		free(d->type);
		return -1;
	}
	c->list_bytes += strlen(d->host_path) + strlen(d->path) + strlen(d->permissions);
	c->n_devices++;
	return 0;
}

int ctr_add_port(ctr_t *c, const char *container_port, const char *host_ip, uint32_t host_port)
{
	if (c->n_ports >= 256 || list_text(c) >= CTR_LIST_TEXT_MAX) {
		c->truncated = true;
		return 0;
	}
	ctr_port_t *np = realloc(c->ports, (c->n_ports + 1) * sizeof(*np));
	if (!np)
		return -1;
	c->ports = np;
	ctr_port_t *p = &np[c->n_ports];
	p->container_port = text_dup(container_port, &c->truncated);
	p->host_ip = text_dup(host_ip, &c->truncated);
	p->host_port = host_port;
	if (!p->container_port || !p->host_ip) {
		free(p->container_port);
		free(p->host_ip);
		return -1;
	}
	c->list_bytes += strlen(p->container_port) + strlen(p->host_ip);
	c->n_ports++;
	return 0;
}

int ctr_add_mount_prop(ctr_t *c, const char *src, const char *dst, const char *type, bool ro,
		       const char *propagation)
{
	if (c->n_mounts >= 1024 || list_text(c) >= CTR_LIST_TEXT_MAX) {
		c->truncated = true;
		return 0;
	}
	ctr_mount_t *nm = realloc(c->mounts, (c->n_mounts + 1) * sizeof(*nm));
	if (!nm)
		return -1;
	c->mounts = nm;
	ctr_mount_t *m = &nm[c->n_mounts];
	m->source = text_dup(src, &c->truncated);
	m->destination = text_dup(dst, &c->truncated);
	m->type = text_dup(type, &c->truncated);
	m->propagation = text_dup(propagation, &c->truncated);
	if (m->source && m->destination && m->type)
		c->list_bytes += strlen(m->source) + strlen(m->destination) + strlen(m->type);
	m->read_only = ro;
	if (!m->source || !m->destination || !m->type || !m->propagation) {
		free(m->source);
		free(m->destination);
		free(m->type);
		free(m->propagation);
		return -1;
	}
	c->n_mounts++;
	return 0;
}

static int dup_str(char **dst, const char *src)
{
	free(*dst);
	*dst = NULL;
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -1;
}

static int dup_strv(ctr_strv_t *dst, const ctr_strv_t *src)
{
	ctr_strv_clear(dst);
	if (!src->n)
		return 0;
	dst->v = calloc(src->n, sizeof(char *));
	if (!dst->v)
		return -1;
	for (size_t i = 0; i < src->n; i++) {
		dst->v[i] = strdup(src->v[i]);
		if (!dst->v[i])
			return -1;
		dst->n++;
	}
	return 0;
}

int ctr_merge(ctr_t *d, const ctr_t *s)
{
	return ctr_merge_mask(d, s, ~0u);
}

/* The part of ctr_merge_mask for the facts with their own unknown state. */
static int merge_facts(ctr_t *d, const ctr_t *s, unsigned take)
{
	int rc = 0;
	if (take & CTR_HAVE_NNP)
		d->no_new_privs = s->no_new_privs;
	if (take & CTR_HAVE_SECMODE) {
		d->seccomp_mode = s->seccomp_mode;
		d->seccomp_filters = s->seccomp_filters;
	}
	if (take & CTR_HAVE_MAC)
		rc |= dup_str(&d->mac_label, s->mac_label);
	if (take & CTR_HAVE_LIMITS) {
		d->mem_limit = s->mem_limit;
		d->pids_limit = s->pids_limit;
		d->cpu_limit = s->cpu_limit;
	}
	if (take & CTR_HAVE_USERNS) {
		d->host_user = s->host_user;
		d->host_cgroup = s->host_cgroup;
	}
	if (take & CTR_HAVE_DEVICES) {
		clear_devices(d);
		for (size_t i = 0; i < s->n_devices && rc == 0; i++) {
			const ctr_device_t *x = &s->devices[i];
			rc |= ctr_add_device(d, x->host_path, x->path, x->permissions, x->type,
					     x->major, x->minor);
		}
	}
	if (take & CTR_HAVE_ROOTPROP)
		rc |= dup_str(&d->rootfs_propagation, s->rootfs_propagation);
	if (take & CTR_HAVE_PORTS) {
		clear_ports(d);
		for (size_t i = 0; i < s->n_ports && rc == 0; i++)
			rc |= ctr_add_port(d, s->ports[i].container_port, s->ports[i].host_ip,
					   s->ports[i].host_port);
	}
	if (take & CTR_HAVE_DIGESTS)
		rc |= dup_strv(&d->repo_digests, &s->repo_digests);
	if (take & CTR_HAVE_UPPER)
		rc |= dup_str(&d->upperdir, s->upperdir);
	return rc;
}

int ctr_merge_mask(ctr_t *d, const ctr_t *s, unsigned mask)
{
	unsigned take = s->have & ~d->have & mask;
	int rc = 0;
	if (take & CTR_HAVE_NAME)
		rc |= dup_str(&d->name, s->name);
	if (take & CTR_HAVE_RUNTIME)
		d->runtime = s->runtime;
	if (take & CTR_HAVE_IMAGE) {
		rc |= dup_str(&d->image, s->image);
		rc |= dup_str(&d->image_digest, s->image_digest);
	}
	if (take & CTR_HAVE_LABELS) {
		clear_labels(d);
		for (size_t i = 0; i < s->n_labels && rc == 0; i++) {
			ctr_label_t *nl = realloc(d->labels, (d->n_labels + 1) * sizeof(*nl));
			if (!nl) {
				rc = -1;
				break;
			}
			d->labels = nl;
			nl[d->n_labels].key = strdup(s->labels[i].key);
			nl[d->n_labels].value = strdup(s->labels[i].value);
			d->n_labels++;
			if (!nl[d->n_labels - 1].key || !nl[d->n_labels - 1].value)
				rc = -1;
		}
	}
	if (take & CTR_HAVE_COMMAND)
		rc |= dup_strv(&d->command, &s->command);
	if (take & CTR_HAVE_USER) {
		d->uid = s->uid;
		d->gid = s->gid;
	}
	if (take & CTR_HAVE_PRIV)
		d->privileged = s->privileged;
	if (take & CTR_HAVE_CAPS) {
		rc |= dup_strv(&d->cap_eff, &s->cap_eff);
		rc |= dup_strv(&d->cap_bnd, &s->cap_bnd);
	}
	if (take & CTR_HAVE_NS) {
		d->host_pid = s->host_pid;
		d->host_net = s->host_net;
		d->host_ipc = s->host_ipc;
		d->host_uts = s->host_uts;
	}
	if (take & CTR_HAVE_MOUNTS) {
		clear_mounts(d);
		for (size_t i = 0; i < s->n_mounts && rc == 0; i++) {
			ctr_mount_t *nm = realloc(d->mounts, (d->n_mounts + 1) * sizeof(*nm));
			if (!nm) {
				rc = -1;
				break;
			}
			d->mounts = nm;
			ctr_mount_t *m = &nm[d->n_mounts++];
			memset(m, 0, sizeof(*m));
			m->read_only = s->mounts[i].read_only;
			rc |= dup_str(&m->source, s->mounts[i].source);
			rc |= dup_str(&m->destination, s->mounts[i].destination);
			rc |= dup_str(&m->type, s->mounts[i].type);
			rc |= dup_str(&m->propagation, s->mounts[i].propagation);
		}
	}
	rc |= merge_facts(d, s, take);
	d->found_by |= s->found_by;
	if (take & CTR_HAVE_ROFS)
		d->ro_rootfs = s->ro_rootfs;
	if (take & CTR_HAVE_PROFILES) {
		rc |= dup_str(&d->seccomp, s->seccomp);
		rc |= dup_str(&d->apparmor, s->apparmor);
	}
	if (take & CTR_HAVE_RESTART) {
		rc |= dup_str(&d->restart_policy, s->restart_policy);
		d->restart_retries = s->restart_retries;
	}
	if (take & CTR_HAVE_PID)
		d->init_pid = s->init_pid;
	/* times: each one from the first source that knows it */
	if ((s->have & CTR_HAVE_TIMES) && (mask & CTR_HAVE_TIMES)) {
		if (!d->created_ns)
			d->created_ns = s->created_ns;
		if (!d->started_ns)
			d->started_ns = s->started_ns;
	}
	if (take & CTR_HAVE_STATE)
		rc |= dup_str(&d->state, s->state);
	d->have |= take;
	d->truncated |= s->truncated;
	return rc ? -1 : 0;
}

ctr_t *ctr_dup(const ctr_t *c)
{
	ctr_t *d = ctr_new(c->id);
	if (!d)
		return NULL;
	if (ctr_merge(d, c) != 0) {
		ctr_free(d);
		return NULL;
	}
	return d;
}

static bool str_differ(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") != 0;
}

static bool strv_differ(const ctr_strv_t *a, const ctr_strv_t *b)
{
	if (a->n != b->n)
		return true;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]) != 0)
			return true;
	return false;
}

static bool limit_eq(const ctr_limit_t *a, const ctr_limit_t *b)
{
	return a->known == b->known && a->unlimited == b->unlimited && a->value == b->value;
}

bool ctr_settings_differ(const ctr_t *a, const ctr_t *b)
{
	if (str_differ(a->name, b->name) || a->runtime != b->runtime ||
	    str_differ(a->image, b->image) || str_differ(a->image_digest, b->image_digest) ||
	    a->n_labels != b->n_labels || strv_differ(&a->command, &b->command) ||
	    a->uid != b->uid || a->gid != b->gid || a->privileged != b->privileged ||
	    strv_differ(&a->cap_eff, &b->cap_eff) || strv_differ(&a->cap_bnd, &b->cap_bnd) ||
	    a->host_pid != b->host_pid || a->host_net != b->host_net ||
	    a->host_ipc != b->host_ipc || a->host_uts != b->host_uts ||
	    a->n_mounts != b->n_mounts || a->ro_rootfs != b->ro_rootfs ||
	    str_differ(a->seccomp, b->seccomp) || str_differ(a->apparmor, b->apparmor) ||
	    str_differ(a->restart_policy, b->restart_policy) || a->init_pid != b->init_pid ||
	    a->restart_retries != b->restart_retries)
		return true;
	/* the new facts, unknown included (a fact that becomes known is a change) */
	unsigned facts = CTR_HAVE_PRIV | CTR_HAVE_ROFS | CTR_HAVE_NS | CTR_HAVE_PROFILES |
			 CTR_HAVE_NNP | CTR_HAVE_SECMODE | CTR_HAVE_MAC | CTR_HAVE_LIMITS |
			 CTR_HAVE_USERNS | CTR_HAVE_DEVICES | CTR_HAVE_ROOTPROP | CTR_HAVE_PORTS |
			 CTR_HAVE_DIGESTS;
	if ((a->have & facts) != (b->have & facts) || a->no_new_privs != b->no_new_privs ||
	    a->seccomp_mode != b->seccomp_mode || a->seccomp_filters != b->seccomp_filters ||
	    str_differ(a->mac_label, b->mac_label) || !limit_eq(&a->mem_limit, &b->mem_limit) ||
	    !limit_eq(&a->pids_limit, &b->pids_limit) || a->cpu_limit.known != b->cpu_limit.known ||
	    a->cpu_limit.unlimited != b->cpu_limit.unlimited ||
	    a->cpu_limit.quota_us != b->cpu_limit.quota_us ||
	    a->cpu_limit.period_us != b->cpu_limit.period_us || a->host_user != b->host_user ||
	    a->host_cgroup != b->host_cgroup || a->n_devices != b->n_devices ||
	    a->n_ports != b->n_ports || str_differ(a->rootfs_propagation, b->rootfs_propagation) ||
	    strv_differ(&a->repo_digests, &b->repo_digests))
		return true;
	for (size_t i = 0; i < a->n_devices; i++)
		if (str_differ(a->devices[i].path, b->devices[i].path) ||
		    str_differ(a->devices[i].host_path, b->devices[i].host_path) ||
		    str_differ(a->devices[i].permissions, b->devices[i].permissions))
			return true;
	for (size_t i = 0; i < a->n_ports; i++)
		if (str_differ(a->ports[i].container_port, b->ports[i].container_port) ||
		    str_differ(a->ports[i].host_ip, b->ports[i].host_ip) ||
		    a->ports[i].host_port != b->ports[i].host_port)
			return true;
	for (size_t i = 0; i < a->n_labels; i++)
		if (strcmp(a->labels[i].key, b->labels[i].key) != 0 ||
		    strcmp(a->labels[i].value, b->labels[i].value) != 0)
			return true;
	for (size_t i = 0; i < a->n_mounts; i++)
		if (str_differ(a->mounts[i].source, b->mounts[i].source) ||
		    str_differ(a->mounts[i].destination, b->mounts[i].destination) ||
		    a->mounts[i].read_only != b->mounts[i].read_only ||
		    str_differ(a->mounts[i].propagation, b->mounts[i].propagation))
			return true;
	return false;
}

static char *nn(const char *s)
{
	return (char *)(s ? s : "");
}

/* The facts no source established, by their field names (see
 * events.proto's unknown_facts). */
static const struct {
	unsigned have;
	const char *name;
} unknown_names[] = {
	{CTR_HAVE_PRIV, "privileged"},
	{CTR_HAVE_ROFS, "read_only_rootfs"},
	{CTR_HAVE_NS, "host_pid"},
	{CTR_HAVE_NS, "host_net"},
	{CTR_HAVE_NS, "host_ipc"},
	{CTR_HAVE_NS, "host_uts"},
	{CTR_HAVE_PROFILES, "seccomp_profile"},
	{CTR_HAVE_PROFILES, "apparmor_profile"},
	{CTR_HAVE_MOUNTS, "mounts"},
	{CTR_HAVE_DEVICES, "devices"},
	{CTR_HAVE_PORTS, "ports"},
	{CTR_HAVE_MAC, "mac_label"},
	{CTR_HAVE_ROOTPROP, "rootfs_propagation"},
	{CTR_HAVE_RESTART, "restart_policy"},
	{CTR_HAVE_IMAGE, "image_digest"},
	{CTR_HAVE_DIGESTS, "repo_digests"},
};
#define N_UNKNOWN_NAMES (sizeof(unknown_names) / sizeof(unknown_names[0]))

static Vigil__V1__Limit *limit_pb(const ctr_limit_t *l)
{
	if (!l->known)
		return NULL;
	Vigil__V1__Limit *p = malloc(sizeof(*p));
	if (!p)
		return NULL;
	vigil__v1__limit__init(p);
	p->unlimited = l->unlimited;
	p->value = l->unlimited ? 0 : l->value;
	return p;
}

static int new_facts_to_pb(const ctr_t *c, Vigil__V1__Container *o)
{
	o->unknown_facts = calloc(N_UNKNOWN_NAMES, sizeof(char *));
	if (!o->unknown_facts)
		return -1;
	for (size_t i = 0; i < N_UNKNOWN_NAMES; i++)
		if (!(c->have & unknown_names[i].have))
			o->unknown_facts[o->n_unknown_facts++] = (char *)unknown_names[i].name;
	o->no_new_privs = (Vigil__V1__Tristate)(c->have & CTR_HAVE_NNP ? c->no_new_privs : 0);
	if (c->have & CTR_HAVE_SECMODE) {
		o->seccomp_mode = (Vigil__V1__SeccompMode)c->seccomp_mode;
		o->seccomp_filters = c->seccomp_filters;
	}
	o->mac_label = nn(c->mac_label);
	if (c->have & CTR_HAVE_LIMITS) {
		if ((c->mem_limit.known && !(o->memory_limit = limit_pb(&c->mem_limit))) ||
		    (c->pids_limit.known && !(o->pids_limit = limit_pb(&c->pids_limit))))
			return -1;
		if (c->cpu_limit.known) {
			o->cpu_limit = malloc(sizeof(*o->cpu_limit));
			if (!o->cpu_limit)
				return -1;
			vigil__v1__cpu_limit__init(o->cpu_limit);
			o->cpu_limit->unlimited = c->cpu_limit.unlimited;
			o->cpu_limit->quota_us = c->cpu_limit.quota_us;
			o->cpu_limit->period_us = c->cpu_limit.period_us;
		}
	}
	if (c->have & CTR_HAVE_USERNS) {
		o->host_user = (Vigil__V1__Tristate)c->host_user;
		o->host_cgroup = (Vigil__V1__Tristate)c->host_cgroup;
	}
	if (c->n_devices) {
		o->devices = calloc(c->n_devices, sizeof(*o->devices));
		Vigil__V1__Device *ds = calloc(c->n_devices, sizeof(*ds));
		if (!o->devices || !ds) {
			free(ds);
			return -1;
		}
		for (size_t i = 0; i < c->n_devices; i++) {
			vigil__v1__device__init(&ds[i]);
			ds[i].path_on_host = nn(c->devices[i].host_path);
			ds[i].path_in_container = nn(c->devices[i].path);
			ds[i].permissions = nn(c->devices[i].permissions);
			ds[i].type = nn(c->devices[i].type);
			ds[i].major = c->devices[i].major;
			ds[i].minor = c->devices[i].minor;
			o->devices[i] = &ds[i];
		}
		o->n_devices = c->n_devices;
	}
	o->rootfs_propagation = nn(c->rootfs_propagation);
	o->restart_max_retries = c->restart_retries;
	if (c->n_ports) {
		o->ports = calloc(c->n_ports, sizeof(*o->ports));
		Vigil__V1__PortBinding *ps = calloc(c->n_ports, sizeof(*ps));
		if (!o->ports || !ps) {
			free(ps);
			return -1;
		}
		for (size_t i = 0; i < c->n_ports; i++) {
			vigil__v1__port_binding__init(&ps[i]);
			ps[i].container_port = nn(c->ports[i].container_port);
			ps[i].host_ip = nn(c->ports[i].host_ip);
			ps[i].host_port = c->ports[i].host_port;
			o->ports[i] = &ps[i];
		}
		o->n_ports = c->n_ports;
	}
	o->repo_digests = c->repo_digests.v;
	o->n_repo_digests = c->repo_digests.n;
	static const char *const found_names[8] = {"",		 "cgroup",	  "oci",
						   "cgroup,oci", "api",		  "cgroup,api",
						   "oci,api",	 "cgroup,oci,api"};
	o->found_by = (char *)found_names[c->found_by & 7];
	return 0;
}

int ctr_to_pb(const ctr_t *c, Vigil__V1__Container *o)
{
	o->id = nn(c->id);
	o->name = nn(c->name);
	o->runtime = (Vigil__V1__Runtime)c->runtime;
	o->image = nn(c->image);
	o->image_digest = nn(c->image_digest);
	if (c->n_labels) {
		o->labels = calloc(c->n_labels, sizeof(*o->labels));
		Vigil__V1__Label *ls = calloc(c->n_labels, sizeof(*ls));
		if (!o->labels || !ls) {
			free(ls);
			ctr_pb_release(o);
			return -1;
		}
		for (size_t i = 0; i < c->n_labels; i++) {
			vigil__v1__label__init(&ls[i]);
			ls[i].key = c->labels[i].key;
			ls[i].value = c->labels[i].value;
			o->labels[i] = &ls[i];
		}
		o->n_labels = c->n_labels;
	}
	o->command = c->command.v;
	o->n_command = c->command.n;
	o->uid = c->uid;
	o->gid = c->gid;
	o->user_known = (c->have & CTR_HAVE_USER) != 0;
	o->privileged = c->privileged;
	o->cap_effective = c->cap_eff.v;
	o->n_cap_effective = c->cap_eff.n;
	o->cap_bounding = c->cap_bnd.v;
	o->n_cap_bounding = c->cap_bnd.n;
	o->host_pid = c->host_pid;
	o->host_net = c->host_net;
	o->host_ipc = c->host_ipc;
	o->host_uts = c->host_uts;
	if (c->n_mounts) {
		o->mounts = calloc(c->n_mounts, sizeof(*o->mounts));
		Vigil__V1__Mount *ms = calloc(c->n_mounts, sizeof(*ms));
		if (!o->mounts || !ms) {
			free(ms);
			ctr_pb_release(o);
			return -1;
		}
		for (size_t i = 0; i < c->n_mounts; i++) {
			vigil__v1__mount__init(&ms[i]);
			ms[i].source = nn(c->mounts[i].source);
			ms[i].destination = nn(c->mounts[i].destination);
			ms[i].type = nn(c->mounts[i].type);
			ms[i].read_only = c->mounts[i].read_only;
			ms[i].propagation = nn(c->mounts[i].propagation);
			o->mounts[i] = &ms[i];
		}
		o->n_mounts = c->n_mounts;
	}
	o->read_only_rootfs = c->ro_rootfs;
	o->seccomp_profile = nn(c->seccomp);
	o->apparmor_profile = nn(c->apparmor);
	o->restart_policy = nn(c->restart_policy);
	o->init_pid = c->init_pid;
	o->created_ns = c->created_ns;
	o->started_ns = c->started_ns;
	o->state = nn(c->state && c->state[0] ? c->state : "running");
	if (new_facts_to_pb(c, o) != 0) {
		ctr_pb_release(o);
		return -1;
	}
	return 0;
}

void ctr_pb_release(Vigil__V1__Container *o)
{
	if (o->labels)
		free(o->labels[0]);
	free(o->labels);
	if (o->mounts)
		free(o->mounts[0]);
	free(o->mounts);
	o->labels = NULL;
	o->mounts = NULL;
	o->n_labels = o->n_mounts = 0;
	free(o->unknown_facts);
	o->unknown_facts = NULL;
	o->n_unknown_facts = 0;
	free(o->memory_limit);
	free(o->pids_limit);
	free(o->cpu_limit);
	o->memory_limit = o->pids_limit = NULL;
	o->cpu_limit = NULL;
	if (o->devices)
		free(o->devices[0]);
	free(o->devices);
	o->devices = NULL;
	o->n_devices = 0;
	if (o->ports)
		free(o->ports[0]);
	free(o->ports);
	o->ports = NULL;
	o->n_ports = 0;
}
