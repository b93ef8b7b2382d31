// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for proto/wire.c: framing and unpacking of AgentMessage and
 * CollectorMessage, and refusal of bytes that are not a usable message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"
#include "wire.h"

/* Check that buf is one whole frame and return a pointer to its payload. */
static const uint8_t *payload_of(const uint8_t *buf, size_t len, size_t *payload_len)
{
	uint32_t n = 0;
	assert_int_equal(frame_check(buf, len, FRAME_DEFAULT_MAX_BYTES, &n), FRAME_OK);
	assert_int_equal((size_t)n + FRAME_HEADER_BYTES, len);
	*payload_len = n;
	return buf + FRAME_HEADER_BYTES;
}

static void test_wire_hello_round_trip(void **state)
{
	(void)state;
	Vigil__V1__Hello hello = VIGIL__V1__HELLO__INIT;
	hello.protocol_version = WIRE_PROTOCOL_VERSION;
	hello.agent_version = "0.1.0";
	hello.hostname = "node-1";
	hello.boot_id = "6d0a3c1e-0000-4000-8000-000000000001";
	hello.kernel = "6.1.0-18-amd64";
	hello.os = "Debian GNU/Linux 12";
	hello.agent_time_ns = INT64_C(1700000000123456789);
	hello.claimed_agent_id = "spoofed";
	Vigil__V1__AgentMessage m = VIGIL__V1__AGENT_MESSAGE__INIT;
	m.msg_case = VIGIL__V1__AGENT_MESSAGE__MSG_HELLO;
	m.hello = &hello;

	size_t len = 0;
	uint8_t *buf = wire_frame_agent(&m, FRAME_DEFAULT_MAX_BYTES, &len);
	assert_non_null(buf);
	assert_int_equal(len, FRAME_HEADER_BYTES + vigil__v1__agent_message__get_packed_size(&m));
	size_t plen;
	const uint8_t *p = payload_of(buf, len, &plen);

	Vigil__V1__AgentMessage *u = wire_agent_unpack(p, plen);
	assert_non_null(u);
	assert_int_equal(u->msg_case, VIGIL__V1__AGENT_MESSAGE__MSG_HELLO);
	assert_int_equal(u->hello->protocol_version, 1);
	assert_string_equal(u->hello->agent_version, "0.1.0");
	assert_string_equal(u->hello->hostname, "node-1");
	assert_string_equal(u->hello->boot_id, "6d0a3c1e-0000-4000-8000-000000000001");
	assert_string_equal(u->hello->kernel, "6.1.0-18-amd64");
	assert_string_equal(u->hello->os, "Debian GNU/Linux 12");
	assert_true(u->hello->agent_time_ns == INT64_C(1700000000123456789));
	assert_string_equal(u->hello->claimed_agent_id, "spoofed");
	wire_agent_free(u);
	free(buf);
}

static void test_wire_batch_round_trip(void **state)
{
	(void)state;
	char *argv[] = {"/bin/sh", "-c", "id"};
	Vigil__V1__ProcessExec x = VIGIL__V1__PROCESS_EXEC__INIT;
	x.pid = 4242;
	x.ppid = 1;
	x.uid = 0;
	x.executable = "/bin/sh";
	x.n_argv = 3;
	x.argv = argv;
	x.cwd = "/";
	Vigil__V1__Event e0 = VIGIL__V1__EVENT__INIT;
	e0.time_ns = INT64_C(1700000000000000000);
	e0.kind = VIGIL__V1__EVENT_KIND__EVENT_KIND_PROCESS_EXEC;
	e0.severity = VIGIL__V1__SEVERITY__SEVERITY_INFO;
	e0.container_id = "abc";
	e0.body_case = VIGIL__V1__EVENT__BODY_PROCESS_EXEC;
	e0.process_exec = &x;
	Vigil__V1__ContainerStopped st = VIGIL__V1__CONTAINER_STOPPED__INIT;
	st.exit_code_known = 1;
	st.exit_code = -9;
	Vigil__V1__Event e1 = VIGIL__V1__EVENT__INIT;
	e1.time_ns = 5;
	e1.kind = VIGIL__V1__EVENT_KIND__EVENT_KIND_CONTAINER_STOPPED;
	e1.container_id = "def";
	e1.body_case = VIGIL__V1__EVENT__BODY_CONTAINER_STOPPED;
	e1.container_stopped = &st;
	Vigil__V1__Event *events[] = {&e0, &e1};
	Vigil__V1__Batch batch = VIGIL__V1__BATCH__INIT;
	batch.seq = UINT64_C(18446744073709551615);
	batch.n_events = 2;
	batch.events = events;
	Vigil__V1__AgentMessage m = VIGIL__V1__AGENT_MESSAGE__INIT;
	m.msg_case = VIGIL__V1__AGENT_MESSAGE__MSG_BATCH;
	m.batch = &batch;

	size_t len = 0;
	uint8_t *buf = wire_frame_agent(&m, FRAME_DEFAULT_MAX_BYTES, &len);
	assert_non_null(buf);
	size_t plen;
	const uint8_t *p = payload_of(buf, len, &plen);
	Vigil__V1__AgentMessage *u = wire_agent_unpack(p, plen);
	assert_non_null(u);
	assert_int_equal(u->msg_case, VIGIL__V1__AGENT_MESSAGE__MSG_BATCH);
	const Vigil__V1__Batch *b = u->batch;
	assert_true(b->seq == UINT64_C(18446744073709551615));
	assert_int_equal(b->n_events, 2);

	const Vigil__V1__Event *g0 = b->events[0];
	assert_true(g0->time_ns == INT64_C(1700000000000000000));
	assert_int_equal(g0->kind, VIGIL__V1__EVENT_KIND__EVENT_KIND_PROCESS_EXEC);
	assert_int_equal(g0->severity, VIGIL__V1__SEVERITY__SEVERITY_INFO);
	assert_string_equal(g0->container_id, "abc");
	assert_int_equal(g0->body_case, VIGIL__V1__EVENT__BODY_PROCESS_EXEC);
	assert_int_equal(g0->process_exec->pid, 4242);
	assert_int_equal(g0->process_exec->ppid, 1);
	assert_string_equal(g0->process_exec->executable, "/bin/sh");
	assert_int_equal(g0->process_exec->n_argv, 3);
	assert_string_equal(g0->process_exec->argv[0], "/bin/sh");
	assert_string_equal(g0->process_exec->argv[1], "-c");
	assert_string_equal(g0->process_exec->argv[2], "id");
	assert_string_equal(g0->process_exec->cwd, "/");

	const Vigil__V1__Event *g1 = b->events[1];
	assert_int_equal(g1->time_ns, 5);
	assert_int_equal(g1->body_case, VIGIL__V1__EVENT__BODY_CONTAINER_STOPPED);
	assert_true(g1->container_stopped->exit_code_known);
	assert_int_equal(g1->container_stopped->exit_code, -9);
	assert_string_equal(g1->container_id, "def");
	wire_agent_free(u);
	free(buf);
}

static void test_wire_heartbeat_round_trip(void **state)
{
	(void)state;
	/* A heartbeat of time 0 is the smallest message: tag + empty body. */
	Vigil__V1__Heartbeat hb = VIGIL__V1__HEARTBEAT__INIT;
	Vigil__V1__AgentMessage m = VIGIL__V1__AGENT_MESSAGE__INIT;
	m.msg_case = VIGIL__V1__AGENT_MESSAGE__MSG_HEARTBEAT;
	m.heartbeat = &hb;
	size_t len = 0;
	uint8_t *buf = wire_frame_agent(&m, FRAME_DEFAULT_MAX_BYTES, &len);
	assert_non_null(buf);
	static const uint8_t want[] = {0, 0, 0, 2, 0x1a, 0x00};
	assert_int_equal(len, sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
	Vigil__V1__AgentMessage *u = wire_agent_unpack(buf + 4, len - 4);
	assert_non_null(u);
	assert_int_equal(u->msg_case, VIGIL__V1__AGENT_MESSAGE__MSG_HEARTBEAT);
	assert_int_equal(u->heartbeat->time_ns, 0);
	wire_agent_free(u);
	free(buf);
}

static void test_wire_collector_round_trip(void **state)
{
	(void)state;
	Vigil__V1__Welcome w = VIGIL__V1__WELCOME__INIT;
	w.protocol_version = 1;
	w.committed_seq = 41;
	w.collector_time_ns = INT64_C(1700000000999999999);
	w.agent_id = "node-1.example";
	w.max_frame_bytes = FRAME_DEFAULT_MAX_BYTES;
	w.heartbeat_interval_ms = 15000;
	Vigil__V1__CollectorMessage m = VIGIL__V1__COLLECTOR_MESSAGE__INIT;
	m.msg_case = VIGIL__V1__COLLECTOR_MESSAGE__MSG_WELCOME;
	m.welcome = &w;
	size_t len = 0, plen;
	uint8_t *buf = wire_frame_collector(&m, FRAME_DEFAULT_MAX_BYTES, &len);
	assert_non_null(buf);
	const uint8_t *p = payload_of(buf, len, &plen);
	Vigil__V1__CollectorMessage *u = wire_collector_unpack(p, plen);
	assert_non_null(u);
	assert_int_equal(u->msg_case, VIGIL__V1__COLLECTOR_MESSAGE__MSG_WELCOME);
	assert_int_equal(u->welcome->protocol_version, 1);
	assert_int_equal(u->welcome->committed_seq, 41);
	assert_true(u->welcome->collector_time_ns == INT64_C(1700000000999999999));
	assert_string_equal(u->welcome->agent_id, "node-1.example");
	assert_int_equal(u->welcome->max_frame_bytes, FRAME_DEFAULT_MAX_BYTES);
	assert_int_equal(u->welcome->heartbeat_interval_ms, 15000);
	wire_collector_free(u);
	free(buf);

	Vigil__V1__Ack ack = VIGIL__V1__ACK__INIT;
	ack.seq = 300;
	m.msg_case = VIGIL__V1__COLLECTOR_MESSAGE__MSG_ACK;
	m.ack = &ack;
	buf = wire_frame_collector(&m, FRAME_DEFAULT_MAX_BYTES, &len);
	assert_non_null(buf);
	/* field 2 (ack), length 3: field 1 varint 300 = 0xac 0x02 */
	static const uint8_t want_ack[] = {0, 0, 0, 5, 0x12, 0x03, 0x08, 0xac, 0x02};
	assert_int_equal(len, sizeof(want_ack));
	assert_memory_equal(buf, want_ack, sizeof(want_ack));
	p = payload_of(buf, len, &plen);
	u = wire_collector_unpack(p, plen);
	assert_non_null(u);
	assert_int_equal(u->msg_case, VIGIL__V1__COLLECTOR_MESSAGE__MSG_ACK);
	assert_int_equal(u->ack->seq, 300);
	wire_collector_free(u);
	free(buf);

	Vigil__V1__Error er = VIGIL__V1__ERROR__INIT;
	er.code = VIGIL__V1__ERROR_CODE__ERROR_CODE_TOO_LARGE;
	er.message = "frame too large";
	m.msg_case = VIGIL__V1__COLLECTOR_MESSAGE__MSG_ERROR;
	m.error = &er;
	buf = wire_frame_collector(&m, FRAME_DEFAULT_MAX_BYTES, &len);
	assert_non_null(buf);
	p = payload_of(buf, len, &plen);
	u = wire_collector_unpack(p, plen);
	assert_non_null(u);
	assert_int_equal(u->msg_case, VIGIL__V1__COLLECTOR_MESSAGE__MSG_ERROR);
	assert_int_equal(u->error->code, VIGIL__V1__ERROR_CODE__ERROR_CODE_TOO_LARGE);
	assert_string_equal(u->error->message, "frame too large");
	wire_collector_free(u);
	free(buf);
}

static void test_wire_frame_limits(void **state)
{
	(void)state;
	Vigil__V1__Ack ack = VIGIL__V1__ACK__INIT;
	ack.seq = 300;
	Vigil__V1__CollectorMessage m = VIGIL__V1__COLLECTOR_MESSAGE__INIT;
	m.msg_case = VIGIL__V1__COLLECTOR_MESSAGE__MSG_ACK;
	m.ack = &ack;
	size_t len = 12345;
	/* The payload is 5 bytes: a maximum of 5 fits, 4 does not. */
	uint8_t *buf = wire_frame_collector(&m, 4, &len);
	assert_null(buf);
	buf = wire_frame_collector(&m, 5, &len);
	assert_non_null(buf);
	assert_int_equal(len, 9);
	free(buf);

	/* A message with no oneof set packs to 0 bytes: no frame at all. */
	Vigil__V1__AgentMessage empty = VIGIL__V1__AGENT_MESSAGE__INIT;
	assert_null(wire_frame_agent(&empty, FRAME_DEFAULT_MAX_BYTES, &len));
	Vigil__V1__CollectorMessage cempty = VIGIL__V1__COLLECTOR_MESSAGE__INIT;
	assert_null(wire_frame_collector(&cempty, FRAME_DEFAULT_MAX_BYTES, &len));
}

struct bad_case {
	const char *what;
	uint8_t bytes[16];
	size_t len;
};

static const struct bad_case bad_agent[] = {
	{"empty payload (no oneof)", {0}, 0},
	{"only an unknown field (no oneof)", {0x78, 0x01}, 2},
	{"unknown length-delimited field (no oneof)", {0x7a, 0x02, 'h', 'i'}, 4},
	{"truncated varint", {0xff, 0xff, 0xff}, 3},
	{"length beyond the buffer", {0x0a, 0x05, 0x08, 0x01}, 4},
	{"nested length beyond the parent", {0x12, 0x02, 0x12, 0x05, 0x08}, 5},
	{"wire type 7", {0x0f, 0x00}, 2},
	{"field number 0", {0x02, 0x00}, 2},
	{"ten 0xff bytes", {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 10},
	{"end group without start", {0x0c}, 1},
};

static void test_wire_garbage(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_agent) / sizeof(bad_agent[0]); i++) {
		const struct bad_case *c = &bad_agent[i];
		uint8_t *buf = malloc(c->len ? c->len : 1);
		assert_non_null(buf);
		memcpy(buf, c->bytes, c->len);
		Vigil__V1__AgentMessage *a = wire_agent_unpack(buf, c->len);
		Vigil__V1__CollectorMessage *m = wire_collector_unpack(buf, c->len);
		if (a || m)
			fail_msg("case '%s' unpacked (agent %p, collector %p)", c->what, (void *)a,
				 (void *)m);
		free(buf);
	}
	/* A valid AgentMessage with a known body, but only the body: the
	 * Hello's fields (varint 1) are not an AgentMessage oneof. */
	static const uint8_t hello_body[] = {0x08, 0x01};
	assert_null(wire_agent_unpack(hello_body, sizeof(hello_body)));
}

static void test_wire_batch_event(void **state)
{
	(void)state;
	Vigil__V1__Finding f0 = VIGIL__V1__FINDING__INIT, f1 = VIGIL__V1__FINDING__INIT;
	f0.rule = "r0";
	f1.rule = "r1";
	f1.summary = "second";
	Vigil__V1__Event e0 = VIGIL__V1__EVENT__INIT, e1 = VIGIL__V1__EVENT__INIT;
	e0.kind = VIGIL__V1__EVENT_KIND__EVENT_KIND_FINDING;
	e0.body_case = VIGIL__V1__EVENT__BODY_FINDING;
	e0.finding = &f0;
	e1 = e0;
	e1.time_ns = 99;
	e1.container_id = "abc";
	e1.finding = &f1;
	Vigil__V1__Event *events[] = {&e0, &e1};
	Vigil__V1__Batch batch = VIGIL__V1__BATCH__INIT;
	batch.seq = 3;
	batch.n_events = 2;
	batch.events = events;
	Vigil__V1__AgentMessage m = VIGIL__V1__AGENT_MESSAGE__INIT;
	m.msg_case = VIGIL__V1__AGENT_MESSAGE__MSG_BATCH;
	m.batch = &batch;
	size_t len = 0, plen;
	uint8_t *buf = wire_frame_agent(&m, FRAME_DEFAULT_MAX_BYTES, &len);
	assert_non_null(buf);
	const uint8_t *p = payload_of(buf, len, &plen);

	/* Event 1 alone, packed exactly as wire_pack_event packs it. */
	size_t n1 = 0, want_len = 0;
	uint8_t *ev = wire_batch_event(p, plen, 1, &n1);
	assert_non_null(ev);
	uint8_t *want = wire_pack_event(&e1, &want_len);
	assert_non_null(want);
	assert_int_equal(n1, want_len);
	assert_int_equal(n1, vigil__v1__event__get_packed_size(&e1));
	assert_memory_equal(ev, want, n1);
	Vigil__V1__Event *u = vigil__v1__event__unpack(NULL, n1, ev);
	assert_non_null(u);
	assert_int_equal(u->time_ns, 99);
	assert_string_equal(u->container_id, "abc");
	assert_string_equal(u->finding->summary, "second");
	vigil__v1__event__free_unpacked(u, NULL);
	free(ev);
	free(want);

	/* No such event, not a batch, not a message. */
	assert_null(wire_batch_event(p, plen, 2, &n1));
	assert_null(wire_batch_event(p, plen, UINT32_MAX, &n1));
	static const uint8_t heartbeat[] = {0x1a, 0x00};
	assert_null(wire_batch_event(heartbeat, sizeof(heartbeat), 0, &n1));
	static const uint8_t junk[] = {0xff, 0xff};
	assert_null(wire_batch_event(junk, sizeof(junk), 0, &n1));
	free(buf);

	/* An event with nothing set packs to zero bytes (and is not NULL). */
	Vigil__V1__Event empty = VIGIL__V1__EVENT__INIT;
	size_t n0 = 123;
	uint8_t *z = wire_pack_event(&empty, &n0);
	assert_non_null(z);
	assert_int_equal(n0, 0);
	free(z);
}

/* The arena unpacks within its budget, refuses past it, and is reusable. */
static void test_wire_arena_budget(void **state)
{
	(void)state;
	/* AgentMessage{batch{seq 1, 1000 empty events}}: 2 bytes each on the wire */
	size_t n_events = 1000, inner_len = 2 + 2 * n_events;
	uint8_t buf[8 + 2 * 1000];
	size_t len = 0;
	buf[len++] = 0x12; /* AgentMessage.batch */
	buf[len++] = (uint8_t)(inner_len | 0x80);
	buf[len++] = (uint8_t)(inner_len >> 7);
	buf[len++] = 0x08; /* Batch.seq = 1 */
	buf[len++] = 0x01;
	for (size_t i = 0; i < n_events; i++) {
		buf[len++] = 0x12; /* Batch.events: empty Event */
		buf[len++] = 0x00;
	}
	wire_arena_t *a = wire_arena_new();
	assert_non_null(a);
	assert_null(wire_agent_unpack_in(a, buf, len, 4096)); /* far too little */
	wire_arena_reset(a);
	Vigil__V1__AgentMessage *m = wire_agent_unpack_in(a, buf, len, 1024 * 1024);
	assert_non_null(m);
	assert_int_equal(m->msg_case, VIGIL__V1__AGENT_MESSAGE__MSG_BATCH);
	assert_int_equal(m->batch->seq, 1);
	assert_int_equal(m->batch->n_events, n_events);
	wire_arena_reset(a);
	m = wire_agent_unpack_in(a, buf, len, 1024 * 1024);
	assert_non_null(m);
	assert_int_equal(m->batch->n_events, n_events);
	wire_arena_free(a);
}

static void test_wire_free_null(void **state)
{
	(void)state;
	wire_agent_free(NULL);
	wire_collector_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wire_hello_round_trip),
		cmocka_unit_test(test_wire_batch_round_trip),
		cmocka_unit_test(test_wire_heartbeat_round_trip),
		cmocka_unit_test(test_wire_collector_round_trip),
		cmocka_unit_test(test_wire_frame_limits),
		cmocka_unit_test(test_wire_garbage),
		cmocka_unit_test(test_wire_batch_event),
		cmocka_unit_test(test_wire_arena_budget),
		cmocka_unit_test(test_wire_free_null),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
