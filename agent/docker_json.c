// SPDX-License-Identifier: Apache-2.0
/*
 * The Docker-Engine API's JSON (see docker_api.h): container inspect and
 * list, image inspect, and the /events stream's objects, into container
 * records. Pure: a buffer in, no I/O, so the unit tests and fuzzers call
 * them directly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cgroup.h"
#include "docker_api.h"
#include "text.h"
#include "vtime.h"

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

/* Path and Args: the command, bounded in count and bytes. */
static int api_command(json_t *root, ctr_t *c)
{
	const char *path = jstr(root, "Path");
	json_t *args = json_object_get(root, "Args");
	if (path) {
		ctr_strv_clear(&c->command);
		size_t budget = 0;
		if (ctr_strv_push(&c->command, path, strlen(path), &c->truncated) != 0)
			return -1;
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
				return -1;
		}
		c->have |= CTR_HAVE_COMMAND;
	}
	return 0;
}

/* Mounts: [{Type, Source, Destination, RW, Propagation}] */
static int api_mounts(json_t *mounts, ctr_t *c)
{
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
				return -1;
		}
		c->have |= CTR_HAVE_MOUNTS;
	}
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
	if (api_command(root, c) != 0)
		goto done;
	if (json_is_object(cfg))
		parse_user(jstr(cfg, "User"), c);
	if (json_is_object(hc) && api_hostconfig(root, hc, c) != 0)
		goto done;
	if (api_mounts(json_object_get(root, "Mounts"), c) != 0)
		goto done;
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
		/* a paused container is still there */
		if (state && strcmp(state, "running") != 0 && strcmp(state, "paused") != 0)
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

int docker_parse_image_digests(const char *json, size_t len, ctr_strv_t *out)
{
	json_error_t e;
	json_t *root = json_loadb(json, len, 0, &e);
	if (!json_is_object(root) || !jstr(root, "Id")) {
		json_decref(root);
		return -1;
	}
	int rc = 0;
	size_t i;
	json_t *d;
	json_array_foreach(json_object_get(root, "RepoDigests"), i, d)
	{
		if (i >= 64)
			break;
		if (json_is_string(d) &&
		    ctr_strv_push(out, json_string_value(d), json_string_length(d), NULL) != 0) {
			rc = -1;
			break;
		}
	}
	json_decref(root);
	return rc;
}
