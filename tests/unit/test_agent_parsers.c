// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for the agent's parsers of untrusted bytes: OCI state.json and
 * config.json, Docker-API inspect/list/events JSON, HTTP responses (framed
 * by length, chunks or the end of the stream), /proc files, process
 * connector datagrams and collector addresses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>

#include "ctr.h"
#include "docker_api.h"
#include "httpc.h"
#include "oci.h"
#include "proc_connector.h"
#include "procfs.h"
#include "text.h"
#include "uplink.h"

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static bool has(const ctr_strv_t *v, const char *s)
{
	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->v[i], s) == 0)
			return true;
	return false;
}

static void test_oci_state_and_spec(void **state)
{
	(void)state;
	const char *st = "{\"id\":\"" ID "\",\"init_process_pid\":4242,"
			 "\"created\":\"2026-11-23T06:19:20.1Z\",\"config\":{\"labels\":["
			 "\"io.container.manager=libpod\",\"bundle=/var/lib/b/" ID "/userdata\"]}}";
	oci_state_t s;
	assert_int_equal(oci_parse_state(st, strlen(st), &s), 0);
	assert_string_equal(s.id, ID);
	assert_int_equal(s.init_pid, 4242);
	assert_int_equal(s.runtime, VIGIL__V1__RUNTIME__RUNTIME_PODMAN);
	assert_string_equal(s.bundle, "/var/lib/b/" ID "/userdata");
	assert_true(s.created_ns > 0);
	assert_int_equal(oci_parse_state("[]", 2, &s), -1);
	assert_int_equal(oci_parse_state("{\"id\":\"x\"}", 10, &s), -1);
	const char *bad_bundle = "{\"id\":\"x\",\"init_process_pid\":1,\"config\":{\"labels\":"
				 "[\"bundle=relative/path\"]}}";
	assert_int_equal(oci_parse_state(bad_bundle, strlen(bad_bundle), &s), 0);
	assert_string_equal(s.bundle, "");

	const char *spec =
		"{\"process\":{\"user\":{\"uid\":1000,\"gid\":100},\"args\":[\"sh\",\"-c\",\"x\"],"
		"\"capabilities\":{\"effective\":[\"CAP_SYS_ADMIN\"],\"bounding\":[\"CAP_SYS_"
		"ADMIN\","
		"\"CAP_KILL\"]},\"apparmorProfile\":\"docker-default\"},"
		"\"root\":{\"path\":\"rootfs\",\"readonly\":true},"
		"\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
		"{\"destination\":\"/host\",\"type\":\"bind\",\"source\":\"/"
		"etc\",\"options\":[\"rbind\","
		"\"ro\"]}],\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"ipc\"},"
		"{\"type\":\"network\",\"path\":\"/proc/1/ns/"
		"net\"}],\"seccomp\":{\"defaultAction\":"
		"\"SCMP_ACT_ERRNO\"}},\"annotations\":{\"io.podman.annotations.privileged\":"
		"\"TRUE\"}}";
	ctr_t *c = ctr_new(ID);
	assert_int_equal(oci_parse_spec(spec, strlen(spec), c, 16), 0);
	assert_int_equal(c->uid, 1000);
	assert_int_equal(c->gid, 100);
	assert_int_equal(c->command.n, 3);
	assert_true(has(&c->cap_eff, "CAP_SYS_ADMIN"));
	assert_true(has(&c->cap_bnd, "CAP_KILL"));
	assert_true(c->ro_rootfs);
	assert_int_equal(c->n_mounts, 1);
	assert_string_equal(c->mounts[0].destination, "/host");
	assert_true(c->mounts[0].read_only);
	assert_false(c->host_pid);
	assert_true(c->host_net); /* joins /proc/1/ns/net */
	assert_false(c->host_ipc);
	assert_true(c->host_uts); /* no uts namespace of its own */
	assert_string_equal(c->seccomp, "SCMP_ACT_ERRNO");
	assert_string_equal(c->apparmor, "docker-default");
	assert_true(c->privileged);
	ctr_free(c);
	c = ctr_new(ID);
	assert_int_equal(oci_parse_spec("{}", 2, c, 16), -1);
	assert_int_equal(oci_parse_spec("{\"process\":", 11, c, 16), -1);
	ctr_free(c);
}

/* Many long mounts and labels: the record stays small enough for a batch. */
static void test_container_lists_are_bounded(void **state)
{
	(void)state;
	ctr_t *c = ctr_new(ID);
	assert_non_null(c);
	char path[4000];
	memset(path, 'p', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(ctr_add_mount(c, path, path, "bind", true), 0);
		assert_int_equal(ctr_add_label(c, path, path, 100000), 0);
	}
	assert_true(c->truncated);
	size_t text = 0;
	for (size_t i = 0; i < c->n_mounts; i++)
		text += strlen(c->mounts[i].source) + strlen(c->mounts[i].destination);
	for (size_t i = 0; i < c->n_labels; i++)
		text += strlen(c->labels[i].key) + strlen(c->labels[i].value);
	assert_true(c->n_mounts > 0 && c->n_labels > 0);
	assert_true(text <= 300 * 1024);
	ctr_free(c);
}

static void test_docker_inspect(void **state)
{
	(void)state;
	/* a name of 1 MiB with control characters, a label with escaped control characters */
	size_t big = 1024 * 1024;
	char *json = malloc(2 * big + 4096);
	int n = snprintf(
		json, 4096,
		"{\"Id\":\"" ID "\",\"Created\":\"2026-11-23T06:19:19.9Z\",\"Path\":\"sh\","
		"\"Args\":[\"-c\",\"sleep 9\"],\"Image\":\"sha256:abc\",\"State\":{"
		"\"Status\":\"running\",\"Pid\":77,\"StartedAt\":\"2026-11-23T06:19:20Z\"},"
		"\"HostConfig\":{\"Privileged\":true,\"PidMode\":\"host\",\"NetworkMode\":"
		"\"none\",\"IpcMode\":\"host\",\"UTSMode\":\"\",\"ReadonlyRootfs\":true,"
		"\"SecurityOpt\":[\"seccomp=unconfined\"]},\"Mounts\":[{\"Type\":\"bind\","
		"\"Source\":\"/etc\",\"Destination\":\"/host\",\"RW\":false}],"
		"\"Config\":{\"User\":\"1000:50\",\"Image\":\"busybox\",\"Labels\":{\"a\":"
		"\"x\\u0001y\\u001b\"}},\"Name\":\"/");
	size_t len = (size_t)n;
	for (size_t i = 0; i < big; i++) {
		if (i % 100 == 0) {
			memcpy(json + len, "\\u0001", 6);
			len += 6;
		} else {
			json[len++] = 'n';
		}
	}
	len += (size_t)snprintf(json + len, 64, "\\u0007\"}");
	text_set_max(4096);
	ctr_t *c = ctr_new("");
	assert_int_equal(docker_parse_inspect(json, len, c, 16), 0);
	assert_string_equal(c->id, ID);
	assert_true(strlen(c->name) <= 4096);
	assert_true(c->truncated);
	assert_non_null(strstr(c->name, TEXT_TRUNC_MARKER));
	assert_string_equal(c->image, "busybox");
	assert_string_equal(c->image_digest, "sha256:abc");
	assert_int_equal(c->n_labels, 1);
	assert_string_equal(c->labels[0].value, "x?y?");
	assert_int_equal(c->uid, 1000);
	assert_int_equal(c->gid, 50);
	assert_true(c->privileged && c->host_pid && !c->host_net && c->host_ipc);
	assert_true(c->ro_rootfs);
	assert_string_equal(c->seccomp, "unconfined");
	assert_int_equal(c->n_mounts, 1);
	assert_true(c->mounts[0].read_only);
	assert_int_equal(c->init_pid, 77);
	assert_int_equal(c->command.n, 3);
	assert_true(c->started_ns > c->created_ns);
	ctr_free(c);
	free(json);
	c = ctr_new("");
	assert_int_equal(docker_parse_inspect("{\"Id\":\"short\"}", 15, c, 16), -1);
	assert_int_equal(docker_parse_inspect("nope", 4, c, 16), -1);
	ctr_free(c);
}

static int n_ids;
static void count_id(void *arg, const char *id)
{
	(void)arg;
	(void)id;
	n_ids++;
}

static void test_docker_list_and_events(void **state)
{
	(void)state;
	const char *list =
		"[{\"Id\":\"" ID "\",\"State\":\"running\"},{\"Id\":\"" ID "\",\"State\":"
		"\"exited\"},{\"Id\":\"bad\"},{}]";
	n_ids = 0;
	assert_int_equal(docker_parse_list(list, strlen(list), count_id, NULL), 1);
	assert_int_equal(n_ids, 1);
	assert_int_equal(docker_parse_list("{}", 2, count_id, NULL), -1);
	const char *ev =
		"{\"status\":\"die\",\"id\":\"" ID "\",\"Type\":\"container\",\"Action\":"
		"\"die\",\"Actor\":{\"ID\":\"" ID "\",\"Attributes\":{\"exitCode\":\"3\"}}}";
	docker_event_t e;
	assert_int_equal(docker_parse_event(ev, strlen(ev), &e), 0);
	assert_string_equal(e.action, "die");
	assert_true(e.exit_known);
	assert_int_equal(e.exit_code, 3);
	const char *ex = "{\"Type\":\"container\",\"Action\":\"exec_start: sh -c id\",\"Actor\":"
			 "{\"ID\":\"" ID "\"}}";
	assert_int_equal(docker_parse_event(ex, strlen(ex), &e), 0);
	assert_string_equal(e.action, "exec_start");
	assert_false(e.exit_known);
	const char *img = "{\"Type\":\"image\",\"Action\":\"pull\",\"Actor\":{\"ID\":\"" ID "\"}}";
	assert_int_equal(docker_parse_event(img, strlen(img), &e), -1);
}

static char body[256];
static size_t body_len;
static int collect(void *arg, const char *d, size_t n)
{
	(void)arg;
	if (body_len + n >= sizeof(body))
		return -1;
	memcpy(body + body_len, d, n);
	body_len += n;
	body[body_len] = '\0';
	return 0;
}

static httpc_status_t feed_bytewise(httpc_t *p, const char *s)
{
	httpc_status_t st = HTTPC_MORE;
	for (size_t i = 0; s[i] && st == HTTPC_MORE; i++)
		st = httpc_feed(p, s + i, 1);
	return st;
}

static void test_httpc(void **state)
{
	(void)state;
	httpc_t p;
	const char *r1 = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: Libpod\r\n\r\nhelloEXTRA";
	body_len = 0;
	httpc_init(&p, collect, NULL);
	assert_int_equal(httpc_feed(&p, r1, strlen(r1)), HTTPC_DONE);
	assert_int_equal(p.status, 200);
	assert_string_equal(body, "hello");
	/* chunked, fed one byte at a time, with an extension and a trailer */
	const char *r2 = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "3;x=y\r\nabc\r\n0A\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n";
	body_len = 0;
	httpc_init(&p, collect, NULL);
	assert_int_equal(feed_bytewise(&p, r2), HTTPC_DONE);
	assert_string_equal(body, "abc0123456789");
	/* no framing: the body ends with the connection */
	body_len = 0;
	httpc_init(&p, collect, NULL);
	assert_int_equal(httpc_feed(&p, "HTTP/1.0 404 NF\r\n\r\nnot here", 27), HTTPC_MORE);
	assert_int_equal(httpc_eof(&p), HTTPC_DONE);
	assert_int_equal(p.status, 404);
	assert_string_equal(body, "not here");
	/* truncated Content-Length body is an error at EOF */
	httpc_init(&p, collect, NULL);
	assert_int_equal(httpc_feed(&p, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab", 40),
			 HTTPC_MORE);
	assert_int_equal(httpc_eof(&p), HTTPC_ERROR);
	/* malformed */
	const char *bad[] = {"SSH-2.0-OpenSSH\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n",
			     "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
			     "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
			     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		httpc_init(&p, collect, NULL);
		assert_int_equal(httpc_feed(&p, bad[i], strlen(bad[i])), HTTPC_ERROR);
	}
	/* a head that never ends is refused at the limit */
	httpc_init(&p, collect, NULL);
	char *huge = malloc(HTTPC_HEAD_MAX + 10);
	memcpy(huge, "HTTP/1.1 200 OK\r\n", 17);
	memset(huge + 17, 'h', HTTPC_HEAD_MAX - 7);
	assert_int_equal(httpc_feed(&p, huge, HTTPC_HEAD_MAX + 10), HTTPC_ERROR);
	free(huge);
}

static void test_procfs(void **state)
{
	(void)state;
	const char *status =
		"Name:\tsh\nPPid:\t12\nUid:\t0\t1000\t1000\t1000\nGid:\t5\t50\t50\t50\n"
		"CapEff:\t0000000000200000\nCapBnd:\t000001ffffffffff\n";
	procfs_status_t st;
	assert_int_equal(procfs_parse_status(status, strlen(status), &st), 0);
	assert_int_equal(st.ppid, 12);
	assert_int_equal(st.uid, 1000);
	assert_int_equal(st.gid, 50);
	assert_true(st.have_caps);
	ctr_strv_t caps = {0};
	assert_int_equal(procfs_cap_names(st.cap_eff, &caps), 0);
	assert_int_equal(caps.n, 1);
	assert_string_equal(caps.v[0], "CAP_SYS_ADMIN");
	ctr_strv_clear(&caps);
	assert_int_equal(procfs_cap_number("sys_admin"), 21);
	assert_int_equal(procfs_cap_number("CAP_NOPE"), -1);
	assert_int_equal(procfs_parse_status("Name: x\n", 8, &st), -1);

	const char cmd[] = "sh\0-c\0echo \x01\xff\0";
	ctr_strv_t argv = {0};
	bool trunc = false;
	assert_int_equal(procfs_parse_cmdline(cmd, sizeof(cmd) - 1, 4096, &argv, &trunc), 0);
	assert_int_equal(argv.n, 3);
	assert_string_equal(argv.v[2], "echo ??");
	assert_false(trunc);
	ctr_strv_clear(&argv);
	/* arguments zeroed by the process: nothing, and said so */
	static const char zeroed[] = "\0\0\0\0\0\0\0\0";
	assert_int_equal(procfs_parse_cmdline(zeroed, sizeof(zeroed) - 1, 4096, &argv, &trunc), 1);
	assert_int_equal(argv.n, 0);
	/* many long arguments: the total is capped */
	size_t n = 200000;
	char *big = malloc(n);
	for (size_t i = 0; i < n; i++)
		big[i] = (i % 1000 == 999) ? '\0' : 'a';
	assert_int_equal(procfs_parse_cmdline(big, n, 8192, &argv, &trunc), 0);
	assert_true(trunc);
	size_t total = 0;
	for (size_t i = 0; i < argv.n; i++)
		total += strlen(argv.v[i]) + 1;
	assert_true(total <= 8192);
	ctr_strv_clear(&argv);
	free(big);

	const char *stat = "77 (a (weird) name) S 12 77 77 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 "
			   "123456 1000 10";
	uint64_t start = 0;
	uint32_t ppid = 0;
	char s = 0;
	assert_int_equal(procfs_parse_stat(stat, strlen(stat), &start, &ppid, &s), 0);
	assert_int_equal(start, 123456);
	assert_int_equal(ppid, 12);
	assert_int_equal(s, 'S');
	assert_int_equal(procfs_parse_stat("77 (x) S 1", 10, &start, &ppid, NULL), -1);
	uint64_t ino;
	assert_int_equal(procfs_parse_ns_link("net:[4026531840]", 16, &ino), 0);
	assert_int_equal(ino, 4026531840u);
	assert_int_equal(procfs_parse_ns_link("net:", 4, &ino), -1);
}

static uint32_t seen_exec, seen_exit_status, seen_uid_pid, seen_ruid, seen_euid;
static void on_uid(void *arg, uint32_t pid, uint32_t tgid, uint32_t ruid, uint32_t euid)
{
	(void)arg;
	(void)tgid;
	seen_uid_pid = pid;
	seen_ruid = ruid;
	seen_euid = euid;
}
static void on_exec(void *arg, uint32_t pid, uint32_t tgid)
{
	(void)arg;
	(void)tgid;
	seen_exec = pid;
}
static void on_exit_ev(void *arg, uint32_t pid, uint32_t tgid, uint32_t status)
{
	(void)arg;
	(void)pid;
	(void)tgid;
	seen_exit_status = status;
}

static size_t put_event(uint8_t *buf, unsigned what, uint32_t pid, uint32_t code)
{
	struct nlmsghdr nh;
	struct cn_msg cn;
	struct proc_event pe;
	memset(&nh, 0, sizeof(nh));
	memset(&cn, 0, sizeof(cn));
	memset(&pe, 0, sizeof(pe));
	pe.what = what;
	if (what == PROC_EVENT_EXEC) {
		pe.event_data.exec.process_pid = (int)pid;
		pe.event_data.exec.process_tgid = (int)pid;
	} else if (what == PROC_EVENT_UID) {
		pe.event_data.id.process_pid = (int)pid;
		pe.event_data.id.process_tgid = (int)pid;
		pe.event_data.id.r.ruid = code;
		pe.event_data.id.e.euid = 0;
	} else {
		pe.event_data.exit.process_pid = (int)pid;
		pe.event_data.exit.process_tgid = (int)pid;
		pe.event_data.exit.exit_code = code;
	}
	cn.id.idx = CN_IDX_PROC;
	cn.id.val = CN_VAL_PROC;
	cn.len = sizeof(pe);
	nh.nlmsg_len = (uint32_t)(NLMSG_HDRLEN + sizeof(cn) + sizeof(pe));
	nh.nlmsg_type = NLMSG_DONE;
	memcpy(buf, &nh, sizeof(nh));
	memcpy(buf + NLMSG_HDRLEN, &cn, sizeof(cn));
	memcpy(buf + NLMSG_HDRLEN + sizeof(cn), &pe, sizeof(pe));
	return NLMSG_ALIGN(nh.nlmsg_len);
}

static void test_proc_connector_parse(void **state)
{
	(void)state;
	uint8_t buf[1024];
	size_t n = put_event(buf, PROC_EVENT_EXEC, 4242, 0);
	n += put_event(buf + n, PROC_EVENT_EXIT, 4243, 3 << 8);
	n += put_event(buf + n, PROC_EVENT_UID, 4244, 1000);
	proc_connector_cbs_t cbs = {NULL, on_exec, on_exit_ev, on_uid};
	assert_int_equal(proc_connector_parse(buf, n, &cbs, NULL), 3);
	assert_int_equal(seen_exec, 4242);
	assert_int_equal(seen_exit_status, 3 << 8);
	assert_int_equal(seen_uid_pid, 4244);
	assert_int_equal(seen_ruid, 1000);
	assert_int_equal(seen_euid, 0);
	/* a length beyond the datagram is malformed */
	buf[0] = 0xff;
	buf[1] = 0xff;
	assert_int_equal(proc_connector_parse(buf, n, &cbs, NULL), -1);
	assert_int_equal(proc_connector_parse(buf, 3, &cbs, NULL), 0);
}

static void test_addresses(void **state)
{
	(void)state;
	char h[64], p[8];
	assert_int_equal(uplink_parse_address("localhost:7443", h, sizeof(h), p, sizeof(p)), 0);
	assert_string_equal(h, "localhost");
	assert_string_equal(p, "7443");
	assert_int_equal(uplink_parse_address("[::1]:7443", h, sizeof(h), p, sizeof(p)), 0);
	assert_string_equal(h, "::1");
	const char *bad[] = {"localhost",  ":7443",   "host:",	  "host:0",
			     "host:65536", "host:7a", "::1:7443", "[::1]7443"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(uplink_parse_address(bad[i], h, sizeof(h), p, sizeof(p)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_oci_state_and_spec),
		cmocka_unit_test(test_container_lists_are_bounded),
		cmocka_unit_test(test_docker_inspect),
		cmocka_unit_test(test_docker_list_and_events),
		cmocka_unit_test(test_httpc),
		cmocka_unit_test(test_procfs),
		cmocka_unit_test(test_proc_connector_parse),
		cmocka_unit_test(test_addresses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
