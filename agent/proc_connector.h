// SPDX-License-Identifier: Apache-2.0
/*
 * The Linux process connector (netlink NETLINK_CONNECTOR, CN_IDX_PROC):
 * fork, exec and exit of every process on the node, in real time. It
 * carries pids only; the agent reads /proc at once and marks what it could
 * not read. proc_connector_parse is pure (datagram in, callbacks out) for
 * tests and fuzzers.
 */
#ifndef VIGIL_AGENT_PROC_CONNECTOR_H
#define VIGIL_AGENT_PROC_CONNECTOR_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

typedef struct proc_connector proc_connector_t;

typedef struct {
	void (*on_fork)(void *arg, uint32_t parent_tgid, uint32_t child_pid, uint32_t child_tgid);
	void (*on_exec)(void *arg, uint32_t pid, uint32_t tgid);
	/* status is the wait(2) status: exit code << 8, or the signal */
	void (*on_exit)(void *arg, uint32_t pid, uint32_t tgid, uint32_t status);
	/* setuid(2) and friends: the new real and effective uid */
	void (*on_uid)(void *arg, uint32_t pid, uint32_t tgid, uint32_t ruid, uint32_t euid);
} proc_connector_cbs_t;

/* Parse one netlink datagram. Return the number of process events found,
 * or -1 if it is malformed. */
int proc_connector_parse(const uint8_t *buf, size_t len, const proc_connector_cbs_t *cbs,
			 void *arg);

/* Subscribe (needs CAP_NET_ADMIN). Return NULL with err set. */
proc_connector_t *proc_connector_new(struct event_base *base, const proc_connector_cbs_t *cbs,
				     void *arg, char *err, size_t errlen);
void proc_connector_free(proc_connector_t *pc);

/* Handle what the kernel has queued so far (bounded). NULL is a no-op. */
void proc_connector_drain(proc_connector_t *pc);

/* Events the kernel could not deliver (socket buffer overrun). */
uint64_t proc_connector_overruns(const proc_connector_t *pc);
uint64_t proc_connector_events(const proc_connector_t *pc);

#endif
