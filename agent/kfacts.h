// SPDX-License-Identifier: Apache-2.0
/*
 * The kernel's view of a container's security facts, read from its init
 * process: no_new_privs, seccomp mode and filters (/proc/PID/status), the
 * LSM label (/proc/PID/attr/current), user and cgroup namespace sharing,
 * memory/pids/CPU limits from its cgroup (v1 and v2 layouts), and its
 * mounts as /proc/PID/mountinfo shows them (root propagation, the overlay
 * upper layer, and the mount list for when no runtime source knows it).
 * Each fact that cannot be read keeps its have bit clear: unknown.
 */
#ifndef VIGIL_AGENT_KFACTS_H
#define VIGIL_AGENT_KFACTS_H

#include <stdbool.h>
#include <stdint.h>

#include "ctr.h"
#include "procfs.h"

typedef struct kfacts kfacts_t;

/* Read the host's reference namespaces and the cgroup layout once.
 * proc_root and cgroup_root are copied. NULL on OOM. */
kfacts_t *kfacts_new(const char *proc_root, const char *cgroup_root);
void kfacts_free(kfacts_t *k);

/* Fill c with what the kernel says about its init pid (c->init_pid), st
 * being that pid's parsed status (NULL if it could not be read). */
void kfacts_read(kfacts_t *k, ctr_t *c, const procfs_status_t *st);

/* Take the facts of a parsed mountinfo into c: rootfs propagation and
 * upperdir of "/", and the non-kernel mounts (CTR_HAVE_MOUNTS). Pure. */
void kfacts_from_mountinfo(const char *buf, size_t len, ctr_t *c);

#endif
