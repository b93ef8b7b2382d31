// SPDX-License-Identifier: Apache-2.0
/*
 * The built-in rules: what each judges, why it matters, how to fix it, and
 * the control it implements (CIS Docker Benchmark v1.6.0 for posture,
 * Falco's rule names for runtime where one matches). Also the rules in
 * force (rules_t): enabled rules and their severities.
 */
#include "rules/rules.h"
#include "rules/rules_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define CIS "CIS Docker Benchmark v1.6.0 "
#define SEV(x) VIGIL__V1__SEVERITY__SEVERITY_##x

static const rule_info_t builtin[] = {
	/* --- posture -------------------------------------------------------- */
	{"privileged", RULE_POSTURE, SEV(CRITICAL), "Privileged container",
	 CIS "5.5 Ensure that privileged containers are not used",
	 "A privileged container has every capability, every device and no seccomp or LSM "
	 "confinement: root in it is root on the node.",
	 "Run it without --privileged; add only the capabilities and devices it needs."},
	{"cap_added", RULE_POSTURE, SEV(HIGH), "Capability added beyond the runtime default",
	 CIS "5.4 Ensure that Linux kernel capabilities are restricted within containers",
	 "Capabilities such as SYS_ADMIN, SYS_MODULE, SYS_PTRACE or BPF let a process in the "
	 "container act on the kernel or on other processes of the node.",
	 "Drop the capability (--cap-drop), or drop ALL and add back only what is needed."},
	{"host_pid", RULE_POSTURE, SEV(HIGH), "Host PID namespace shared",
	 CIS "5.16 Ensure that the host's process namespace is not shared",
	 "The container sees and can signal or trace every process on the node.",
	 "Remove --pid=host (hostPID: true)."},
	{"host_ipc", RULE_POSTURE, SEV(MEDIUM), "Host IPC namespace shared",
	 CIS "5.17 Ensure that the host's IPC namespace is not shared",
	 "The container can read and write the node's shared memory and message queues.",
	 "Remove --ipc=host (hostIPC: true)."},
	{"host_uts", RULE_POSTURE, SEV(LOW), "Host UTS namespace shared",
	 CIS "5.21 Ensure that the host's UTS namespace is not shared",
	 "The container can change the node's host name.", "Remove --uts=host."},
	{"host_network", RULE_POSTURE, SEV(MEDIUM), "Host network namespace shared",
	 CIS "5.10 Ensure that the host's network namespace is not shared",
	 "The container can bind and sniff every interface of the node and reach services "
	 "bound to its loopback.",
	 "Remove --network=host (hostNetwork: true); publish the ports it serves."},
	{"runtime_socket", RULE_POSTURE, SEV(CRITICAL), "Container runtime socket mounted",
	 CIS "5.32 Ensure that the Docker socket is not mounted inside any containers",
	 "Whoever can talk to the runtime's socket can start a privileged container and so "
	 "owns the node.",
	 "Do not mount docker.sock, containerd.sock, crio.sock or podman.sock (or /run, "
	 "/var/run) into containers."},
	{"sensitive_mount", RULE_POSTURE, SEV(HIGH), "Sensitive host path mounted",
	 CIS "5.6 Ensure sensitive host system directories are not mounted on containers",
	 "A host directory such as /, /etc, /proc or /root mounted into a container exposes the "
	 "node's configuration and secrets, and lets a writable mount change them.",
	 "Mount only the paths the application needs, read-only where it can."},
	{"seccomp_unconfined", RULE_POSTURE, SEV(HIGH), "Seccomp disabled",
	 CIS "5.22 Ensure that the default seccomp profile is not Disabled",
	 "Without a seccomp filter every system call of the kernel is reachable from the "
	 "container, including those that kernel exploits use.",
	 "Remove --security-opt seccomp=unconfined; use the runtime's default profile."},
	{"apparmor_unconfined", RULE_POSTURE, SEV(MEDIUM), "AppArmor unconfined",
	 CIS "5.2 Ensure that, if applicable, an AppArmor Profile is enabled",
	 "On a node with AppArmor, an unconfined container has no mandatory access control.",
	 "Remove --security-opt apparmor=unconfined; use the runtime's default profile."},
	{"rootfs_writable", RULE_POSTURE, SEV(LOW), "Root filesystem writable",
	 CIS "5.13 Ensure that the container's root filesystem is mounted as read only",
	 "A writable root lets an intruder drop and run tools inside the container.",
	 "Run with --read-only and mount writable volumes only where the application writes."},
	{"run_as_root", RULE_POSTURE, SEV(MEDIUM), "Container runs as root",
	 CIS "4.1 Ensure that a user for the container has been created",
	 "Root in a container is root on the node whenever a namespace or capability lets it "
	 "out.",
	 "Set a non-root USER in the image or run with --user."},
	{"no_memory_limit", RULE_POSTURE, SEV(MEDIUM), "No memory limit",
	 CIS "5.11 Ensure that the memory usage for containers is limited",
	 "One container can take the node's memory and have others killed.",
	 "Set --memory (resources.limits.memory)."},
	{"no_pids_limit", RULE_POSTURE, SEV(MEDIUM), "No PIDs limit",
	 CIS "5.29 Ensure that the PIDs cgroup limit is used",
	 "A fork bomb in one container can exhaust the node's process table.", "Set --pids-limit."},
	{"host_device", RULE_POSTURE, SEV(HIGH), "Host device passed in",
	 CIS "5.18 Ensure that host devices are not directly exposed to containers",
	 "A host device node (a disk, /dev/mem, a GPU) gives the container direct access to "
	 "hardware and data outside it.",
	 "Remove --device; pass only the device the application needs, read-only."},
	{"shared_propagation", RULE_POSTURE, SEV(MEDIUM), "Mount propagation shared",
	 CIS "5.20 Ensure mount propagation mode is not set to shared",
	 "Mounts made in the container appear on the node, and the node's in the container.",
	 "Use private or slave propagation (the default)."},
	{"no_new_privs_unset", RULE_POSTURE, SEV(LOW), "no-new-privileges not set",
	 CIS "5.26 Ensure that the container is restricted from acquiring additional privileges",
	 "Without no_new_privs a setuid binary in the container can raise a process to root.",
	 "Run with --security-opt no-new-privileges."},
	{"restart_policy", RULE_POSTURE, SEV(LOW), "Restart policy unbounded",
	 CIS "5.15 Ensure that the 'on-failure' container restart policy is set to '5'",
	 "A container that always restarts hides crashes, including failed exploit attempts, "
	 "and can be used to wear the node down.",
	 "Use --restart on-failure:5."},
	{"image_mutable_tag", RULE_POSTURE, SEV(LOW), "Image referenced by a mutable tag",
	 CIS "4.x image provenance (Vigil: images pinned by digest)",
	 "A tag (worst of all :latest) can point at another image tomorrow: what runs is not "
	 "what was reviewed.",
	 "Reference images by digest (name@sha256:...)."},
	{"image_registry", RULE_POSTURE, SEV(MEDIUM),
	 "Image from a registry outside the allow-list",
	 "Vigil: trusted registries (rules file, registries)",
	 "Images from unknown registries have not passed the organisation's review and "
	 "scanning.",
	 "Pull the image through an allowed registry, or add the registry to the allow-list."},
	/* --- runtime -------------------------------------------------------- */
	{"terminal_shell", RULE_RUNTIME, SEV(MEDIUM), "Terminal shell in container",
	 "Falco: Terminal shell in container",
	 "An interactive shell in a running container is someone at a keyboard inside it: "
	 "an operator debugging, or an intruder.",
	 "Find who opened it (exec session, parent process); debug with ephemeral containers."},
	{"package_manager", RULE_RUNTIME, SEV(MEDIUM), "Package manager run in a container",
	 "Falco: Launch Package Management Process in Container",
	 "Containers are immutable: software installed at run time is drift, and a common "
	 "first step of an intruder.",
	 "Install packages in the image build; run read-only."},
	{"exec_from_tmp", RULE_RUNTIME, SEV(HIGH), "Binary executed from a temporary directory",
	 "Falco: Execution from /dev/shm",
	 "Droppers write their payload to /tmp, /var/tmp or /dev/shm and run it from there.",
	 "Mount temporary directories noexec; find what wrote the file."},
	{"fileless_exec", RULE_RUNTIME, SEV(CRITICAL), "Fileless execution (memfd)",
	 "Falco: Fileless execution via memfd_create",
	 "A program run from a memfd never touches the disk: a technique of malware that "
	 "avoids file scanning.",
	 "Isolate the container and capture its memory; find the parent process."},
	{"drift", RULE_RUNTIME, SEV(HIGH), "Binary not in the image executed (drift)",
	 "Falco: Drop and execute new binary in container",
	 "The executable was written to the container's writable layer after it started: it "
	 "is not part of the reviewed image.",
	 "Find what wrote it; run the root filesystem read-only."},
	{"reverse_shell", RULE_RUNTIME, SEV(CRITICAL), "Reverse shell",
	 "Falco: Redirect STDOUT/STDIN to Network Connection in Container",
	 "nc -e, socat exec: or bash -i with /dev/tcp hand a shell to a remote host.",
	 "Isolate the container; find the connection's peer."},
	{"escape_tool", RULE_RUNTIME, SEV(HIGH), "Container escape or kernel tool run",
	 "Falco: Linux Kernel Module Injection Detected (insmod, modprobe)",
	 "nsenter, mount, unshare, chroot, debugfs and module loaders are the tools of a "
	 "container escape.",
	 "Find why the container has them and the privileges to use them; remove both."},
	{"exec_session", RULE_RUNTIME, SEV(LOW), "Exec session into a container",
	 "Vigil: interactive access (podman/docker exec, runc exec)",
	 "Someone ran a command in the container from outside it.",
	 "Check the exec against a change or an incident; prefer ephemeral debug containers."},
	{"setuid_root", RULE_RUNTIME, SEV(HIGH), "Process became root from non-root",
	 "Vigil: privilege escalation (setuid)",
	 "A non-root process gained uid 0: a setuid binary or an exploit.",
	 "Set no-new-privileges; remove setuid binaries from the image."},
	{"credential_search", RULE_RUNTIME, SEV(HIGH), "Search for private keys or passwords",
	 "Falco: Search Private Keys or Passwords",
	 "grep or find for id_rsa, .pem, shadow or password is credential hunting.",
	 "Find who ran it; rotate the credentials the container could read."},
	{"crypto_miner", RULE_RUNTIME, SEV(CRITICAL), "Crypto miner",
	 "Vigil: crypto mining (xmrig, minerd, stratum)",
	 "Cryptocurrency miners are the most common payload of a compromised container.",
	 "Stop the container, find how it was entered, rebuild it from a clean image."},
	/* --- vulnerable images ---------------------------------------------- */
	/* Judged by the matcher (collector/vuln/matcher.h), not per event: the
	 * rule engine runs at ingest on one event and cannot see the matches of
	 * an image. The matcher raises it through the findings table
	 * (vigil_vuln_findings, schema/0010_images.sql), one per running
	 * container, at the severity of its image's worst advisory, for
	 * advisories at or above vuln_min_severity; it resolves when the
	 * container stops or no such advisory is left. */
	{"vulnerable_image", RULE_VULN, SEV(HIGH), "Vulnerable image running",
	 "Vigil: OSV advisories of Debian, Ubuntu and Alpine matched to the image's packages",
	 "The container runs packages with known vulnerabilities at or above the configured "
	 "severity (vuln_min_severity); an attacker who reaches it can use them.",
	 "Rebuild the image on updated packages (the fixed versions are in "
	 "/api/v1/images/{digest}/vulnerabilities) and redeploy."},
};
#define N_BUILTIN (sizeof(builtin) / sizeof(builtin[0]))

const rule_info_t *rules_builtin(size_t i)
{
	return i < N_BUILTIN ? &builtin[i] : NULL;
}

int rules_index(const char *id)
{
	for (size_t i = 0; id && i < N_BUILTIN; i++)
		if (strcmp(builtin[i].id, id) == 0)
			return (int)i;
	return -1;
}

const rule_info_t *rules_find(const char *id)
{
	int i = rules_index(id);
	return i < 0 ? NULL : &builtin[i];
}

const char *rules_kind_name(rule_kind_t k)
{
	return k == RULE_POSTURE ? "posture" : k == RULE_RUNTIME ? "runtime" : "vuln";
}

const char *rules_severity_name(int severity)
{
	static const char *const names[] = {"unspecified", "info", "low",
					    "medium",	   "high", "critical"};
	return severity >= 0 && severity <= 5 ? names[severity] : NULL;
}

_Static_assert(N_BUILTIN <= RULES_MAX, "raise RULES_MAX");

size_t rules_count(void)
{
	return N_BUILTIN;
}

rules_t *rules_new_default(void)
{
	rules_t *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	atomic_init(&r->refs, 1);
	for (size_t i = 0; i < N_BUILTIN; i++) {
		r->enabled[i] = 1;
		r->severity[i] = (unsigned char)builtin[i].severity;
	}
	return r;
}

rules_t *rules_ref(rules_t *r)
{
	if (r)
		atomic_fetch_add(&r->refs, 1);
	return r;
}

void rules_unref(rules_t *r)
{
	if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	for (size_t i = 0; i < r->n_exc; i++) {
		rules_exception_t *x = &r->exc[i];
		free(x->image);
		free(x->digest);
		free(x->label_key);
		free(x->label_value);
		free(x->agent);
		free(x->container);
		free(x->reason);
	}
	free(r->exc);
	for (size_t i = 0; i < r->n_registries; i++)
		free(r->registries[i]);
	free(r->registries);
	free(r->origin);
	free(r);
}

struct rules_slot {
	pthread_mutex_t lock; /* guards r */
	rules_t *r;
};

rules_slot_t *rules_slot_new(rules_t *r)
{
	rules_slot_t *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	s->r = r;
	return s;
}

rules_t *rules_slot_get(rules_slot_t *s)
{
	pthread_mutex_lock(&s->lock);
	rules_t *r = rules_ref(s->r);
	pthread_mutex_unlock(&s->lock);
	return r;
}

void rules_slot_set(rules_slot_t *s, rules_t *r)
{
	pthread_mutex_lock(&s->lock);
	rules_t *old = s->r;
	s->r = r;
	pthread_mutex_unlock(&s->lock);
	rules_unref(old);
}

void rules_slot_free(rules_slot_t *s)
{
	if (!s)
		return;
	rules_unref(s->r);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int rules_enabled(const rules_t *r, const char *id)
{
	int i = rules_index(id);
	return r && i >= 0 && r->enabled[i];
}

int rules_severity(const rules_t *r, const char *id)
{
	int i = rules_index(id);
	if (i < 0)
		return 0;
	return r ? r->severity[i] : builtin[i].severity;
}
