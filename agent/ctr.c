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
	}
	free(c->mounts);
	c->mounts = NULL;
	c->n_mounts = 0;
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
	if (m->source && m->destination && m->type)
		c->list_bytes += strlen(m->source) + strlen(m->destination) + strlen(m->type);
	m->read_only = ro;
	if (!m->source || !m->destination || !m->type) {
		free(m->source);
		free(m->destination);
		free(m->type);
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
		}
	}
	if (take & CTR_HAVE_ROFS)
		d->ro_rootfs = s->ro_rootfs;
	if (take & CTR_HAVE_PROFILES) {
		rc |= dup_str(&d->seccomp, s->seccomp);
		rc |= dup_str(&d->apparmor, s->apparmor);
	}
	if (take & CTR_HAVE_RESTART)
		rc |= dup_str(&d->restart_policy, s->restart_policy);
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
	    str_differ(a->restart_policy, b->restart_policy) || a->init_pid != b->init_pid)
		return true;
	for (size_t i = 0; i < a->n_labels; i++)
		if (strcmp(a->labels[i].key, b->labels[i].key) != 0 ||
		    strcmp(a->labels[i].value, b->labels[i].value) != 0)
			return true;
	for (size_t i = 0; i < a->n_mounts; i++)
		if (str_differ(a->mounts[i].source, b->mounts[i].source) ||
		    str_differ(a->mounts[i].destination, b->mounts[i].destination) ||
		    a->mounts[i].read_only != b->mounts[i].read_only)
			return true;
	return false;
}

static char *nn(const char *s)
{
	return (char *)(s ? s : "");
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
}
