// SPDX-License-Identifier: Apache-2.0
/* Process connector (see proc_connector.h). */
#include "proc_connector.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>

#include "log.h"

#define PC_RCVBUF (8 * 1024 * 1024)
#define PC_READS_PER_CALLBACK 256
/* proc_connector_drain reads at most this many times as much */
#define PC_DRAIN_ROUNDS 16

struct proc_connector {
	int fd;
	struct event *ev;
	proc_connector_cbs_t cbs;
	void *arg;
	uint64_t overruns;
	uint64_t events;
	bool overrun_logged;
};

int proc_connector_parse(const uint8_t *buf, size_t len, const proc_connector_cbs_t *cbs, void *arg)
{
	int found = 0;
	size_t off = 0;
	while (off + sizeof(struct nlmsghdr) <= len) {
		struct nlmsghdr nh;
		memcpy(&nh, buf + off, sizeof(nh));
		if (nh.nlmsg_len < sizeof(nh) || nh.nlmsg_len > len - off)
			return -1;
		if (nh.nlmsg_type == NLMSG_DONE || nh.nlmsg_type >= NLMSG_MIN_TYPE) {
			const uint8_t *p = buf + off + NLMSG_HDRLEN;
			size_t plen = nh.nlmsg_len > NLMSG_HDRLEN ? nh.nlmsg_len - NLMSG_HDRLEN : 0;
			struct cn_msg cn;
			if (plen >= sizeof(cn)) {
				memcpy(&cn, p, sizeof(cn));
				if (cn.id.idx == CN_IDX_PROC && cn.id.val == CN_VAL_PROC &&
				    cn.len <= plen - sizeof(cn) &&
				    cn.len >= offsetof(struct proc_event, event_data)) {
					struct proc_event pe;
					memset(&pe, 0, sizeof(pe));
					memcpy(&pe, p + sizeof(cn),
					       cn.len < sizeof(pe) ? cn.len : sizeof(pe));
					switch (pe.what) {
					case PROC_EVENT_FORK:
						if (cbs->on_fork)
							cbs->on_fork(arg,
								     (uint32_t)pe.event_data.fork
									     .parent_tgid,
								     (uint32_t)pe.event_data.fork
									     .child_pid,
								     (uint32_t)pe.event_data.fork
									     .child_tgid);
						found++;
						break;
					case PROC_EVENT_EXEC:
						if (cbs->on_exec)
							cbs->on_exec(arg,
								     (uint32_t)pe.event_data.exec
									     .process_pid,
								     (uint32_t)pe.event_data.exec
									     .process_tgid);
						found++;
						break;
					case PROC_EVENT_EXIT:
						if (cbs->on_exit)
							cbs->on_exit(arg,
								     (uint32_t)pe.event_data.exit
									     .process_pid,
								     (uint32_t)pe.event_data.exit
									     .process_tgid,
								     pe.event_data.exit.exit_code);
						found++;
						break;
					case PROC_EVENT_UID:
						if (cbs->on_uid)
							cbs->on_uid(
								arg,
								(uint32_t)pe.event_data.id
									.process_pid,
								(uint32_t)pe.event_data.id
									.process_tgid,
								(uint32_t)pe.event_data.id.r.ruid,
								(uint32_t)pe.event_data.id.e.euid);
						found++;
						break;
					default:
						break;
					}
				}
			}
		}
		size_t step = NLMSG_ALIGN(nh.nlmsg_len);
		if (step == 0 || step > len - off)
			break;
		off += step;
	}
	return found;
}

/* Read up to max datagrams; return true if the socket ran dry. */
static bool read_some(proc_connector_t *pc, int max)
{
	uint8_t buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
	for (int i = 0; i < max; i++) {
		ssize_t n = recv(pc->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0) {
			if (errno == ENOBUFS) {
				/* the kernel dropped events: count, go on */
				pc->overruns++;
				if (!pc->overrun_logged)
					log_warn("proc_connector: socket buffer overrun; some "
						 "process events were lost");
				pc->overrun_logged = true;
				continue;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_warn("proc_connector: recv: %s", strerror(errno));
			return true;
		}
		int k = proc_connector_parse(buf, (size_t)n, &pc->cbs, pc->arg);
		if (k > 0)
			pc->events += (uint64_t)k;
	}
	return false;
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	read_some(arg, PC_READS_PER_CALLBACK);
}

void proc_connector_drain(proc_connector_t *pc)
{
	if (!pc)
		return;
	for (int i = 0; i < PC_DRAIN_ROUNDS && !read_some(pc, PC_READS_PER_CALLBACK); i++)
		;
}

static int send_op(int fd, enum proc_cn_mcast_op op)
{
	/* nlmsghdr, cn_msg, then the operation, laid out by hand: cn_msg ends
	 * in a flexible array */
	uint8_t buf[NLMSG_HDRLEN + sizeof(struct cn_msg) + sizeof(op)]
		__attribute__((aligned(NLMSG_ALIGNTO)));
	memset(buf, 0, sizeof(buf));
	struct nlmsghdr nh;
	memset(&nh, 0, sizeof(nh));
	nh.nlmsg_len = sizeof(buf);
	nh.nlmsg_type = NLMSG_DONE;
	nh.nlmsg_pid = 0;
	struct cn_msg cn;
	memset(&cn, 0, sizeof(cn));
	cn.id.idx = CN_IDX_PROC;
	cn.id.val = CN_VAL_PROC;
	cn.len = sizeof(op);
	memcpy(buf, &nh, sizeof(nh));
	memcpy(buf + NLMSG_HDRLEN, &cn, sizeof(cn));
	memcpy(buf + NLMSG_HDRLEN + sizeof(cn), &op, sizeof(op));
	return send(fd, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf) ? 0 : -1;
}

proc_connector_t *proc_connector_new(struct event_base *base, const proc_connector_cbs_t *cbs,
				     void *arg, char *err, size_t errlen)
{
	int fd = socket(PF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_CONNECTOR);
	if (fd < 0) {
		snprintf(err, errlen, "socket(NETLINK_CONNECTOR): %s", strerror(errno));
		return NULL;
	}
	int sz = PC_RCVBUF;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) != 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	struct sockaddr_nl sa;
	memset(&sa, 0, sizeof(sa));
	sa.nl_family = AF_NETLINK;
	sa.nl_groups = CN_IDX_PROC;
	sa.nl_pid = 0; /* the kernel assigns one */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		snprintf(err, errlen, "bind(CN_IDX_PROC): %s", strerror(errno));
		close(fd);
		return NULL;
	}
	if (send_op(fd, PROC_CN_MCAST_LISTEN) != 0) {
		snprintf(err, errlen, "subscribe to process events: %s", strerror(errno));
		close(fd);
		return NULL;
	}
	proc_connector_t *pc = calloc(1, sizeof(*pc));
	if (!pc) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pc->fd = fd;
	pc->cbs = *cbs;
	pc->arg = arg;
	pc->ev = event_new(base, fd, EV_READ | EV_PERSIST, read_cb, pc);
	if (!pc->ev || event_add(pc->ev, NULL) != 0) {
		proc_connector_free(pc);
		snprintf(err, errlen, "cannot watch the netlink socket");
		return NULL;
	}
	return pc;
}

void proc_connector_free(proc_connector_t *pc)
{
	if (!pc)
		return;
	if (pc->ev)
		event_free(pc->ev);
	send_op(pc->fd, PROC_CN_MCAST_IGNORE);
	close(pc->fd);
	free(pc);
}

uint64_t proc_connector_overruns(const proc_connector_t *pc)
{
	return pc->overruns;
}

uint64_t proc_connector_events(const proc_connector_t *pc)
{
	return pc->events;
}
