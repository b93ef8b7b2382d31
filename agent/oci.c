// SPDX-License-Identifier: Apache-2.0
/* OCI state and bundles (see oci.h). */
#include "oci.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cgroup.h"
#include "text.h"
#include "vtime.h"

#define OCI_FILE_MAX (4 * 1024 * 1024)

static const char *jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

int oci_parse_state(const char *json, size_t len, oci_state_t *out)
{
	return oci_parse_crun_status(json, len, NULL, out);
}

int oci_dir_runtime(const char *dir)
{
	if (strstr(dir, "/containerd/") || strstr(dir, "/containerd-"))
		return VIGIL__V1__RUNTIME__RUNTIME_CONTAINERD;
	if (strncmp(dir, "/run/docker/", 12) == 0 || strstr(dir, "/moby"))
		return VIGIL__V1__RUNTIME__RUNTIME_DOCKER;
	return -1;
}

int oci_parse_crun_status(const char *json, size_t len, const char *dir_id, oci_state_t *out)
{
	memset(out, 0, sizeof(*out));
	json_error_t e;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &e);
	if (!json_is_object(root)) {
		json_decref(root);
		return -1;
	}
	int rc = -1;
	const char *id = jstr(root, "id");
	if (!id)
		id = dir_id;
	json_t *pid = json_object_get(root, "init_process_pid");
	if (!pid)
		pid = json_object_get(root, "pid"); /* crun, runtime-spec state */
	if (!id || !id[0] || strlen(id) >= sizeof(out->id) || !json_is_integer(pid) ||
	    json_integer_value(pid) < 0 || json_integer_value(pid) > UINT32_MAX)
		goto done;
	char *clean = text_dup_n(id, strlen(id), sizeof(out->id) - 1, NULL);
	if (!clean)
		goto done;
	snprintf(out->id, sizeof(out->id), "%s", clean);
	free(clean);
	out->init_pid = (uint32_t)json_integer_value(pid);
	const char *created = jstr(root, "created");
	if (created)
		vtime_parse_rfc3339(created, &out->created_ns);
	out->runtime = VIGIL__V1__RUNTIME__RUNTIME_RUNC;
	const char *bundle = jstr(root, "bundle");
	json_t *cfg = json_object_get(root, "config");
	json_t *labels = json_object_get(cfg, "labels");
	size_t i;
	json_t *l;
	json_array_foreach(labels, i, l)
	{
		const char *s = json_string_value(l);
		if (!s)
			continue;
		if (strncmp(s, "bundle=", 7) == 0 && !bundle)
			bundle = s + 7;
		else if (strcmp(s, "io.container.manager=libpod") == 0)
			out->runtime = VIGIL__V1__RUNTIME__RUNTIME_PODMAN;
		else if (strncmp(s, "io.kubernetes.cri-o.", 20) == 0 &&
			 out->runtime != VIGIL__V1__RUNTIME__RUNTIME_PODMAN)
			out->runtime = VIGIL__V1__RUNTIME__RUNTIME_CRIO;
	}
	if (bundle && strlen(bundle) < sizeof(out->bundle) && bundle[0] == '/' &&
	    !strstr(bundle, "/../"))
		snprintf(out->bundle, sizeof(out->bundle), "%s", bundle);
	rc = 0;
done:
	json_decref(root);
	return rc;
}

static int push_json_strs(ctr_strv_t *v, json_t *arr, bool *trunc)
{
	size_t i;
	json_t *s;
	json_array_foreach(arr, i, s)
	{
		if (i >= 256) {
			*trunc = true;
			break;
		}
		if (json_is_string(s) &&
		    ctr_strv_push(v, json_string_value(s), json_string_length(s), trunc) != 0)
			return -1;
	}
	return 0;
}

/* linux.devices: [{path, type, major, minor, fileMode}] */
static int spec_devices(json_t *devs, ctr_t *c)
{
	if (!json_is_array(devs) && devs)
		return 0;
	size_t i;
	json_t *d;
	json_array_foreach(devs, i, d)
	{
		const char *path = jstr(d, "path");
		if (!path)
			continue;
		const char *type = jstr(d, "type");
		json_t *mode = json_object_get(d, "fileMode");
		char perms[16] = "";
		if (json_is_integer(mode) && json_integer_value(mode) >= 0 &&
		    json_integer_value(mode) <= 07777)
			snprintf(perms, sizeof(perms), "%04llo",
				 (unsigned long long)json_integer_value(mode));
		if (ctr_add_device(c, "", path, perms, type ? type : "",
				   json_integer_value(json_object_get(d, "major")),
				   json_integer_value(json_object_get(d, "minor"))) != 0)
			return -1;
	}
	c->have |= CTR_HAVE_DEVICES;
	return 0;
}

/* annotations: the manager (Podman, CRI-O), Podman's privileged flag,
 * CRI names. Return 0, or -1 on OOM. */
static int spec_annotations(json_t *ann, ctr_t *c)
{
	if (json_is_object(ann)) {
		const char *mgr = jstr(ann, "io.container.manager");
		if (mgr && strcmp(mgr, "libpod") == 0) {
			c->runtime = VIGIL__V1__RUNTIME__RUNTIME_PODMAN;
			c->have |= CTR_HAVE_RUNTIME;
		} else if (jstr(ann, "io.kubernetes.cri-o.ContainerID") ||
			   jstr(ann, "io.kubernetes.cri-o.ContainerType")) {
			c->runtime = VIGIL__V1__RUNTIME__RUNTIME_CRIO;
			c->have |= CTR_HAVE_RUNTIME;
		}
		const char *priv = jstr(ann, "io.podman.annotations.privileged");
		if (priv) {
			c->privileged = strcasecmp(priv, "true") == 0;
			c->have |= CTR_HAVE_PRIV;
		}
		const char *name = jstr(ann, "io.kubernetes.cri.container-name");
		if (!name)
			name = jstr(ann, "io.kubernetes.container.name");
		if (name) {
			if (ctr_set_str(&c->name, name, &c->truncated) != 0)
				return -1;
			c->have |= CTR_HAVE_NAME;
		}
		const char *image = jstr(ann, "io.kubernetes.cri.image-name");
		if (image) {
			if (ctr_set_str(&c->image, image, &c->truncated) != 0)
				return -1;
			c->have |= CTR_HAVE_IMAGE;
		}
	}
	return 0;
}

/* linux.namespaces: a namespace not listed, or joined at /proc/1/ns/X,
 * is the host's. */
static void spec_namespaces(json_t *linux_, ctr_t *c)
{
	json_t *nss = json_object_get(linux_, "namespaces");
	if (json_is_array(nss)) {
		bool pid = false, net = false, ipc = false, uts = false;
		size_t i;
		json_t *ns;
		json_array_foreach(nss, i, ns)
		{
			const char *t = jstr(ns, "type");
			const char *path = jstr(ns, "path");
			/* joining /proc/1/ns/X is sharing the host's */
			bool host = path && strncmp(path, "/proc/1/ns/", 11) == 0;
			if (!t || host)
				continue;
			if (strcmp(t, "pid") == 0)
				pid = true;
			else if (strcmp(t, "network") == 0)
				net = true;
			else if (strcmp(t, "ipc") == 0)
				ipc = true;
			else if (strcmp(t, "uts") == 0)
				uts = true;
		}
		c->host_pid = !pid;
		c->host_net = !net;
		c->host_ipc = !ipc;
		c->host_uts = !uts;
		c->have |= CTR_HAVE_NS;
	}
}

int oci_parse_spec(const char *json, size_t len, ctr_t *c, size_t max_labels)
{
	json_error_t e;
	json_t *root = json_loadb(json, len, 0, &e);
	if (!json_is_object(root) || !json_is_object(json_object_get(root, "process"))) {
		json_decref(root);
		return -1;
	}
	int rc = -1;
	json_t *proc = json_object_get(root, "process");
	json_t *args = json_object_get(proc, "args");
	if (json_is_array(args)) {
		ctr_strv_clear(&c->command);
		if (push_json_strs(&c->command, args, &c->truncated) != 0)
			goto done;
		c->have |= CTR_HAVE_COMMAND;
	}
	json_t *user = json_object_get(proc, "user");
	if (json_is_object(user)) {
		c->uid = (uint32_t)json_integer_value(json_object_get(user, "uid"));
		c->gid = (uint32_t)json_integer_value(json_object_get(user, "gid"));
		c->have |= CTR_HAVE_USER;
	}
	json_t *caps = json_object_get(proc, "capabilities");
	if (json_is_object(caps)) {
		ctr_strv_clear(&c->cap_eff);
		ctr_strv_clear(&c->cap_bnd);
		if (push_json_strs(&c->cap_eff, json_object_get(caps, "effective"),
				   &c->truncated) ||
		    push_json_strs(&c->cap_bnd, json_object_get(caps, "bounding"), &c->truncated))
			goto done;
		c->have |= CTR_HAVE_CAPS;
	}
	json_t *nnp = json_object_get(proc, "noNewPrivileges");
	c->no_new_privs = json_is_true(nnp) ? VIGIL__V1__TRISTATE__TRISTATE_TRUE
					    : VIGIL__V1__TRISTATE__TRISTATE_FALSE;
	c->have |= CTR_HAVE_NNP;
	const char *aa = jstr(proc, "apparmorProfile");
	json_t *linux_ = json_object_get(root, "linux");
	json_t *seccomp = json_object_get(linux_, "seccomp");
	if (ctr_set_str(&c->apparmor, aa ? aa : "", &c->truncated) != 0)
		goto done;
	const char *sc = "unconfined";
	if (json_is_object(seccomp)) {
		const char *def = jstr(seccomp, "defaultAction");
		sc = def ? def : "filter";
	}
	if (ctr_set_str(&c->seccomp, sc, &c->truncated) != 0)
		goto done;
	c->have |= CTR_HAVE_PROFILES;
	json_t *rootfs = json_object_get(root, "root");
	if (json_is_object(rootfs)) {
		c->ro_rootfs = json_is_true(json_object_get(rootfs, "readonly"));
		c->have |= CTR_HAVE_ROFS;
	}
	json_t *mounts = json_object_get(root, "mounts");
	if (json_is_array(mounts)) {
		size_t i;
		json_t *m;
		json_array_foreach(mounts, i, m)
		{
			const char *type = jstr(m, "type");
			const char *src = jstr(m, "source");
			const char *dst = jstr(m, "destination");
			if (!dst)
				continue;
			/* the kernel file systems every container gets are noise */
			if (type && strcmp(type, "bind") != 0 && !(src && src[0] == '/'))
				continue;
			bool ro = false;
			const char *prop = "";
			size_t k;
			json_t *opt;
			json_array_foreach(json_object_get(m, "options"), k, opt)
			{
				const char *o = json_string_value(opt);
				const char *pn = ctr_propagation_name(o);
				if (o && strcmp(o, "ro") == 0)
					ro = true;
				if (pn)
					prop = pn;
			}
			if (ctr_add_mount_prop(c, src ? src : "", dst, type ? type : "bind", ro,
					       prop) != 0)
				goto done;
		}
		c->have |= CTR_HAVE_MOUNTS;
	}
	spec_namespaces(linux_, c);
	if (json_is_object(linux_)) {
		if (spec_devices(json_object_get(linux_, "devices"), c) != 0)
			goto done;
		const char *rp = ctr_propagation_name(jstr(linux_, "rootfsPropagation"));
		if (rp) {
			if (ctr_set_str(&c->rootfs_propagation, rp, NULL) != 0)
				goto done;
			c->have |= CTR_HAVE_ROOTPROP;
		}
	}
	if (spec_annotations(json_object_get(root, "annotations"), c) != 0)
		goto done;
	(void)max_labels;
	rc = 0;
done:
	json_decref(root);
	return rc;
}

/* Read a whole small file. Caller frees. */
static char *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > OCI_FILE_MAX) {
		close(fd);
		return NULL;
	}
	size_t cap = (size_t)st.st_size + 1, have = 0;
	char *buf = malloc(cap);
	while (buf && have < cap - 1) {
		ssize_t n = read(fd, buf + have, cap - 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	close(fd);
	if (buf)
		buf[have] = '\0';
	*len = have;
	return buf;
}

int oci_load_bundle(const char *bundle, ctr_t *c, size_t max_labels)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/config.json", bundle);
	size_t len;
	char *buf = slurp(path, &len);
	if (!buf)
		return -1;
	int rc = oci_parse_spec(buf, len, c, max_labels);
	free(buf);
	return rc;
}

/* Call fn(dir) for each comma-separated entry of list. */
static int each_dir(const char *list, int (*fn)(const char *dir, oci_found_cb cb, void *arg),
		    oci_found_cb cb, void *arg)
{
	int total = -1;
	const char *p = list;
	while (p && *p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		char dir[512];
		if (n > 0 && n < sizeof(dir)) {
			memcpy(dir, p, n);
			dir[n] = '\0';
			int r = fn(dir, cb, arg);
			if (r >= 0)
				total = (total < 0 ? 0 : total) + r;
		}
		p = comma ? comma + 1 : NULL;
	}
	return total;
}

static int scan_state_dir(const char *dir, oci_found_cb cb, void *arg)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char path[1024];
		snprintf(path, sizeof(path), "%s/%s/state.json", dir, de->d_name);
		size_t len;
		bool crun = false;
		char *buf = slurp(path, &len);
		if (!buf) {
			/* crun: DIR/ID/status */
			snprintf(path, sizeof(path), "%s/%s/status", dir, de->d_name);
			buf = slurp(path, &len);
			crun = true;
		}
		if (!buf)
			continue; /* vanished, or not a container */
		oci_state_t st;
		int rc = crun ? oci_parse_crun_status(buf, len, de->d_name, &st)
			      : oci_parse_state(buf, len, &st);
		if (rc == 0) {
			int rt = oci_dir_runtime(dir);
			if (rt >= 0)
				st.runtime = rt;
			n++;
			cb(arg, &st);
		}
		free(buf);
	}
	closedir(d);
	return n;
}

int oci_scan_state_dirs(const char *dirs, oci_found_cb cb, void *arg)
{
	return each_dir(dirs, scan_state_dir, cb, arg);
}

static int scan_containerd_dir(const char *dir, oci_found_cb cb, void *arg)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *ns;
	while ((ns = readdir(d)) != NULL) {
		if (ns->d_name[0] == '.')
			continue;
		char nsdir[400];
		if (strlen(dir) + strlen(ns->d_name) + 2 > sizeof(nsdir))
			continue;
		snprintf(nsdir, sizeof(nsdir), "%.200s/%.190s", dir, ns->d_name);
		DIR *d2 = opendir(nsdir);
		if (!d2)
			continue;
		struct dirent *de;
		while ((de = readdir(d2)) != NULL) {
			size_t id_len = strlen(de->d_name);
			if (de->d_name[0] == '.' || id_len >= sizeof(((oci_state_t *)0)->id))
				continue;
			oci_state_t st;
			memset(&st, 0, sizeof(st));
			memcpy(st.id, de->d_name, id_len + 1);
			if (strlen(nsdir) + strlen(de->d_name) + 2 > sizeof(st.bundle))
				continue;
			snprintf(st.bundle, sizeof(st.bundle), "%.400s/%.120s", nsdir, de->d_name);
			st.runtime = VIGIL__V1__RUNTIME__RUNTIME_CONTAINERD;
			char path[1100];
			snprintf(path, sizeof(path), "%s/init.pid", st.bundle);
			size_t len;
			char *pid = slurp(path, &len);
			if (pid) {
				st.init_pid = (uint32_t)strtoul(pid, NULL, 10);
				free(pid);
			}
			n++;
			cb(arg, &st);
		}
		closedir(d2);
	}
	closedir(d);
	return n;
}

int oci_scan_containerd(const char *dirs, oci_found_cb cb, void *arg)
{
	return each_dir(dirs, scan_containerd_dir, cb, arg);
}
