// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for collector/rows.c: batches built here are encoded into
 * events rows, which the tests read back column by column (a small
 * binary-COPY tuple reader), and the state ops are compared as JSON.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "ingest/rows.h"
#include "wire.h"

#define NS_PER_S INT64_C(1000000000)
#define RECV_NS (INT64_C(1700000000) * NS_PER_S) /* 2023-11-14T22:13:20Z */
#define DAY_NS (INT64_C(86400) * NS_PER_S)
#define PG_EPOCH_US INT64_C(946684800000000)
#define AGENT_ID 42

static const rows_range_t range = {RECV_NS - DAY_NS, RECV_NS + DAY_NS};

/* ---- reading tuples back --------------------------------------------- */

typedef struct {
	int32_t len; /* -1 for NULL */
	const uint8_t *p;
} field_t;

static uint64_t be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Split the tuple at [start, end) of out->rows into its ROWS_EVENT_COLUMNS
 * fields; fail unless it is exactly one well-formed tuple. */
static void read_row(const rows_batch_t *out, size_t r, field_t f[ROWS_EVENT_COLUMNS])
{
	assert_true(r < out->n_rows);
	size_t start = r ? out->row[r - 1].end : 0;
	size_t end = out->row[r].end;
	const uint8_t *d = out->rows.data;
	assert_true(start + 2 <= end);
	assert_int_equal(be(d + start, 2), ROWS_EVENT_COLUMNS);
	size_t pos = start + 2;
	for (int i = 0; i < ROWS_EVENT_COLUMNS; i++) {
		assert_true(pos + 4 <= end);
		f[i].len = (int32_t)be(d + pos, 4);
		pos += 4;
		f[i].p = d + pos;
		if (f[i].len >= 0) {
			assert_true(pos + (size_t)f[i].len <= end);
			pos += (size_t)f[i].len;
		} else {
			assert_int_equal(f[i].len, -1);
		}
	}
	assert_int_equal(pos, end);
}

static int64_t get_int(const field_t *f, int32_t size)
{
	assert_int_equal(f->len, size);
	uint64_t v = be(f->p, (size_t)size);
	if (size == 2)
		return (int16_t)v;
	if (size == 4)
		return (int32_t)v;
	return (int64_t)v;
}

/* A timestamptz column as Unix microseconds. */
static int64_t get_ts_us(const field_t *f)
{
	return get_int(f, 8) + PG_EPOCH_US;
}

static void assert_text(const field_t *f, const char *want)
{
	assert_int_equal(f->len, (int32_t)strlen(want));
	assert_memory_equal(f->p, want, strlen(want));
}

static void assert_null_field(const field_t *f)
{
	assert_int_equal(f->len, -1);
}

static void assert_json(const json_t *got, const char *want_text)
{
	json_error_t jerr;
	json_t *want = json_loads(want_text, 0, &jerr);
	if (!want)
		fail_msg("bad expected JSON: %s: %s", jerr.text, want_text);
	if (!json_equal(got, want)) {
		char *g = got ? json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
		print_error("got:  %s\nwant: %s\n", g ? g : "(null)", w);
		free(g);
		free(w);
		json_decref(want);
		fail();
	}
	json_decref(want);
}

/* The details column: jsonb version 1, then JSON text. */
static void assert_details(const field_t *f, const char *want_text)
{
	assert_true(f->len >= 1);
	assert_int_equal(f->p[0], 1);
	json_error_t jerr;
	json_t *got =
		json_loadb((const char *)f->p + 1, (size_t)f->len - 1, JSON_DECODE_ANY, &jerr);
	if (!got)
		fail_msg("details are not JSON: %s", jerr.text);
	assert_json(got, want_text);
	json_decref(got);
}

/* Rows must tile the buffer in order, one per event that was not
 * rejected, and every event is either a row or a reject. */
static void assert_partition(const rows_batch_t *out, size_t n_events)
{
	assert_int_equal(out->n_rows + out->n_rejects, n_events);
	size_t prev = 0;
	for (size_t r = 0; r < out->n_rows; r++) {
		assert_true(out->row[r].end > prev);
		if (r)
			assert_true(out->row[r].idx > out->row[r - 1].idx);
		field_t f[ROWS_EVENT_COLUMNS];
		read_row(out, r, f);
		assert_int_equal(get_int(&f[4], 4), out->row[r].idx); /* idx column */
		prev = out->row[r].end;
	}
	assert_int_equal(prev, out->rows.len);
	for (size_t j = 0; j < out->n_rejects; j++)
		for (size_t r = 0; r < out->n_rows; r++)
			assert_int_not_equal(out->reject[j].idx, out->row[r].idx);
}

/* ---- building batches ---------------------------------------------------- */

static void container_init(Vigil__V1__Container *c, char *id, char *name)
{
	Vigil__V1__Container init = VIGIL__V1__CONTAINER__INIT;
	*c = init;
	c->id = id;
	c->name = name;
	c->runtime = VIGIL__V1__RUNTIME__RUNTIME_DOCKER;
}

#define MIN_CONTAINER_JSON(id, name)                                                      \
	"{\"id\":\"" id "\",\"name\":\"" name "\",\"runtime\":\"docker\",\"image\":\"\"," \
	"\"image_digest\":\"\",\"labels\":{},\"command\":[],\"privileged\":false,"        \
	"\"cap_effective\":[],\"cap_bounding\":[],\"host_pid\":false,\"host_net\":false," \
	"\"host_ipc\":false,\"host_uts\":false,\"mounts\":[],\"read_only_rootfs\":false," \
	"\"seccomp_profile\":\"\",\"apparmor_profile\":\"\",\"init_pid\":0,\"state\":\"running\"}"

static void event_init(Vigil__V1__Event *e, Vigil__V1__EventKind kind, int64_t time_ns,
		       char *container_id)
{
	Vigil__V1__Event init = VIGIL__V1__EVENT__INIT;
	*e = init;
	e->kind = kind;
	e->time_ns = time_ns;
	if (container_id)
		e->container_id = container_id;
}

static void batch_init(Vigil__V1__Batch *b, uint64_t seq, Vigil__V1__Event **events, size_t n)
{
	Vigil__V1__Batch init = VIGIL__V1__BATCH__INIT;
	*b = init;
	b->seq = seq;
	b->events = events;
	b->n_events = n;
}

static void encode(const Vigil__V1__Batch *b, rows_batch_t *out)
{
	assert_int_equal(rows_encode_batch(b, AGENT_ID, RECV_NS, range, NULL, out), 0);
	assert_false(out->rows.oom);
	assert_partition(out, b->n_events);
}

/* ---- tests ----------------------------------------------------------------- */

/* Tests that may fail midway keep their result here, so the teardown frees
 * it and a failure does not also show up as a leak. */
static rows_batch_t kept;

static int free_kept(void **state)
{
	(void)state;
	rows_batch_free(&kept);
	return 0;
}

static void test_rows_container_key(void **state)
{
	(void)state;
	/* md5("abc") = 900150983cd24fb0 d6963f7d28e17f72 */
	assert_true(rows_container_key("abc", 3) == (int64_t)UINT64_C(0x900150983cd24fb0));
	assert_true(rows_container_key("abc", 3) == INT64_C(-8070080442485551184));
	/* Only len bytes count. */
	assert_true(rows_container_key("abcdef", 3) == rows_container_key("abc", 3));
	/* md5("") = d41d8cd98f00b204 e9800998ecf8427e */
	assert_true(rows_container_key("", 0) == (int64_t)UINT64_C(0xd41d8cd98f00b204));
	/* md5("The quick brown fox jumps over the lazy dog") = 9e107d9d372bb682 ... */
	const char *fox = "The quick brown fox jumps over the lazy dog";
	assert_true(rows_container_key(fox, strlen(fox)) == (int64_t)UINT64_C(0x9e107d9d372bb682));
}

static void test_rows_runtime_name(void **state)
{
	(void)state;
	assert_string_equal(wire_runtime_name(VIGIL__V1__RUNTIME__RUNTIME_UNKNOWN), "unknown");
	assert_string_equal(wire_runtime_name(VIGIL__V1__RUNTIME__RUNTIME_DOCKER), "docker");
	assert_string_equal(wire_runtime_name(VIGIL__V1__RUNTIME__RUNTIME_PODMAN), "podman");
	assert_string_equal(wire_runtime_name(VIGIL__V1__RUNTIME__RUNTIME_CONTAINERD),
			    "containerd");
	assert_string_equal(wire_runtime_name(VIGIL__V1__RUNTIME__RUNTIME_CRIO), "cri-o");
	assert_string_equal(wire_runtime_name(VIGIL__V1__RUNTIME__RUNTIME_RUNC), "runc");
	assert_string_equal(wire_runtime_name(99), "unknown");
	assert_string_equal(wire_runtime_name(-1), "unknown");
}

static void test_rows_exec_event(void **state)
{
	(void)state;
	char *argv[] = {"curl", "-s", "http://x"};
	Vigil__V1__ProcessExec x = VIGIL__V1__PROCESS_EXEC__INIT;
	x.pid = 100;
	x.ppid = 1;
	x.uid = 1000;
	x.gid = 1000;
	x.executable = "/usr/bin/curl";
	x.argv = argv;
	x.n_argv = 3;
	x.cwd = "/tmp";
	Vigil__V1__Event e;
	int64_t t = RECV_NS - 5 * NS_PER_S + 123456789;
	event_init(&e, VIGIL__V1__EVENT_KIND__EVENT_KIND_PROCESS_EXEC, t, "abc");
	e.severity = VIGIL__V1__SEVERITY__SEVERITY_LOW;
	e.body_case = VIGIL__V1__EVENT__BODY_PROCESS_EXEC;
	e.process_exec = &x;
	Vigil__V1__Event *ev[] = {&e};
	Vigil__V1__Batch b;
	batch_init(&b, 77, ev, 1);

	rows_batch_t out;
	encode(&b, &out);
	assert_int_equal(out.n_rows, 1);
	assert_int_equal(out.n_rejects, 0);
	assert_int_equal(out.clamped, 0);
	assert_null(out.state_ops);
	assert_int_equal(out.row[0].idx, 0);
	field_t f[ROWS_EVENT_COLUMNS];
	read_row(&out, 0, f);
	assert_true(get_ts_us(&f[0]) == t / 1000);				 /* ts */
	assert_true(get_ts_us(&f[1]) == RECV_NS / 1000);			 /* recv_ts */
	assert_int_equal(get_int(&f[2], 4), AGENT_ID);				 /* agent_id */
	assert_int_equal(get_int(&f[3], 8), 77);				 /* seq */
	assert_int_equal(get_int(&f[4], 4), 0);					 /* idx */
	assert_int_equal(get_int(&f[5], 2), 4);					 /* kind */
	assert_int_equal(get_int(&f[6], 2), 2);					 /* severity */
	assert_true(get_int(&f[7], 8) == (int64_t)UINT64_C(0x900150983cd24fb0)); /* key */
	assert_text(&f[8], "abc");						 /* container_id */
	assert_int_equal(get_int(&f[9], 8), 100);				 /* pid */
	assert_int_equal(get_int(&f[10], 8), 1);				 /* ppid */
	assert_int_equal(get_int(&f[11], 8), 1000);				 /* uid */
	assert_text(&f[12], "/usr/bin/curl");					 /* exe */
	static const uint8_t want_argv[] = {
		0,   0, 0, 1,  /* 1 dimension */
		0,   0, 0, 0,  /* no nulls */
		0,   0, 0, 25, /* text */
		0,   0, 0, 3,  /* 3 elements */
		0,   0, 0, 1,  /* lower bound */
		0,   0, 0, 4,  'c', 'u', 'r', 'l', 0,	0,   0,	  2,   '-',
		's', 0, 0, 0,  8,   'h', 't', 't', 'p', ':', '/', '/', 'x',
	};
	assert_int_equal(f[13].len, sizeof(want_argv)); /* argv */
	assert_memory_equal(f[13].p, want_argv, sizeof(want_argv));
	assert_text(&f[14], "/tmp"); /* cwd */
	assert_null_field(&f[15]);   /* details */
	rows_batch_free(&out);
	assert_null(out.row);
	assert_int_equal(out.n_rows, 0);
	rows_batch_free(&out); /* twice is harmless */
	rows_batch_free(NULL);
}

static void test_rows_exec_flags_and_empties(void **state)
{
	(void)state;
	/* An exec without container, exe, argv or cwd, marked truncated. */
	Vigil__V1__ProcessExec x = VIGIL__V1__PROCESS_EXEC__INIT;
	x.pid = 7;
	x.truncated = 1;
	Vigil__V1__ProcessExec y = VIGIL__V1__PROCESS_EXEC__INIT;
	y.incomplete = 1;
	y.truncated = 1;
	Vigil__V1__Event e0, e1;
	event_init(&e0, VIGIL__V1__EVENT_KIND__EVENT_KIND_PROCESS_EXEC, RECV_NS, NULL);
	e0.body_case = VIGIL__V1__EVENT__BODY_PROCESS_EXEC;
	e0.process_exec = &x;
	event_init(&e1, VIGIL__V1__EVENT_KIND__EVENT_KIND_PROCESS_EXEC, RECV_NS, "");
	e1.body_case = VIGIL__V1__EVENT__BODY_PROCESS_EXEC;
	e1.process_exec = &y;
	Vigil__V1__Event *ev[] = {&e0, &e1};
	Vigil__V1__Batch b;
	batch_init(&b, 1, ev, 2);
	rows_batch_t out;
	encode(&b, &out);
	assert_int_equal(out.n_rows, 2);
	field_t f[ROWS_EVENT_COLUMNS];
	read_row(&out, 0, f);
	assert_null_field(&f[7]);
	assert_null_field(&f[8]);
	assert_int_equal(get_int(&f[9], 8), 7);
	assert_null_field(&f[12]);
	static const uint8_t empty_array[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 25};
	assert_int_equal(f[13].len, sizeof(empty_array));
	assert_memory_equal(f[13].p, empty_array, sizeof(empty_array));
	assert_null_field(&f[14]);
	assert_details(&f[15], "{\"truncated\":true}");
	read_row(&out, 1, f);
	assert_null_field(&f[7]); /* "" is no container */
	assert_null_field(&f[8]);
	assert_details(&f[15], "{\"truncated\":true,\"incomplete\":true}");
	assert_null(out.state_ops);
	rows_batch_free(&out);
}

static void test_rows_empty_batch(void **state)
{
	(void)state;
	Vigil__V1__Batch b;
	batch_init(&b, 5, NULL, 0);
	rows_batch_t out;
	encode(&b, &out);
	assert_int_equal(out.n_rows, 0);
	assert_int_equal(out.n_rejects, 0);
	assert_int_equal(out.rows.len, 0);
	assert_null(out.state_ops);
	rows_batch_free(&out);
}

static void test_rows_every_kind(void **state)
{
	(void)state;
	Vigil__V1__Container c1;
	container_init(&c1, "c1", "web");
	Vigil__V1__Inventory inv = VIGIL__V1__INVENTORY__INIT;
	Vigil__V1__Container *cs[] = {&c1};
	inv.containers = cs;
	inv.n_containers = 1;
	Vigil__V1__ContainerStarted started = VIGIL__V1__CONTAINER_STARTED__INIT;
	started.container = &c1;
	Vigil__V1__ContainerStopped stopped = VIGIL__V1__CONTAINER_STOPPED__INIT;
	Vigil__V1__ProcessExec x = VIGIL__V1__PROCESS_EXEC__INIT;
	Vigil__V1__AgentStatus st = VIGIL__V1__AGENT_STATUS__INIT;
	Vigil__V1__Finding fi = VIGIL__V1__FINDING__INIT;
	Vigil__V1__ContainerChanged changed = VIGIL__V1__CONTAINER_CHANGED__INIT;
	changed.container = &c1;

	Vigil__V1__Event e[8];
	for (int i = 0; i < 8; i++)
		event_init(&e[i], (Vigil__V1__EventKind)i, RECV_NS + i, i % 2 ? "c1" : NULL);
	e[1].body_case = VIGIL__V1__EVENT__BODY_INVENTORY;
	e[1].inventory = &inv;
	e[2].body_case = VIGIL__V1__EVENT__BODY_CONTAINER_STARTED;
	e[2].container_started = &started;
	e[3].body_case = VIGIL__V1__EVENT__BODY_CONTAINER_STOPPED;
	e[3].container_stopped = &stopped;
	e[4].body_case = VIGIL__V1__EVENT__BODY_PROCESS_EXEC;
	e[4].process_exec = &x;
	e[5].body_case = VIGIL__V1__EVENT__BODY_AGENT_STATUS;
	e[5].agent_status = &st;
	e[6].body_case = VIGIL__V1__EVENT__BODY_FINDING;
	e[6].finding = &fi;
	e[7].body_case = VIGIL__V1__EVENT__BODY_CONTAINER_CHANGED;
	e[7].container_changed = &changed;
	/* e[0] has no body at all. */
	Vigil__V1__Event *ev[8];
	for (int i = 0; i < 8; i++)
		ev[i] = &e[i];
	Vigil__V1__Batch b;
	batch_init(&b, 9, ev, 8);
	rows_batch_t out;
	encode(&b, &out);
	assert_int_equal(out.n_rows, 8);
	assert_int_equal(out.n_rejects, 0);
	for (size_t r = 0; r < 8; r++) {
		field_t f[ROWS_EVENT_COLUMNS];
		read_row(&out, r, f);
		assert_int_equal(out.row[r].idx, r);
		assert_int_equal(get_int(&f[5], 2), (int64_t)r); /* kind */
		assert_int_equal(get_int(&f[3], 8), 9);		 /* seq */
		assert_true(get_ts_us(&f[0]) == (RECV_NS + (int64_t)r) / 1000);
		if (r % 2)
			assert_text(&f[8], "c1");
		else
			assert_null_field(&f[8]);
		if (r != 4) /* only exec events fill the process columns */
			for (int k = 9; k <= 14; k++)
				assert_null_field(&f[k]);
	}
	/* The state ops, in event order: inventory upsert (not full, so no
	 * "full" op), started upsert, stopped (e[3] names container "c1"),
	 * the agent's status, changed upsert. */
	assert_non_null(out.state_ops);
	assert_json(
		out.state_ops,
		"[{\"op\":\"upsert\",\"c\":" MIN_CONTAINER_JSON(
			"c1",
			"web") "},"
			       " {\"op\":\"upsert\",\"c\":" MIN_CONTAINER_JSON(
				       "c1",
				       "web") "},"
					      " {\"op\":\"stopped\",\"id\":\"c1\",\"exit_"
					      "code\":null,"
					      "  \"ts\":1700000000000000003},"
					      " {\"op\":\"status\",\"ts\":1700000000000000005,"
					      "  \"d\":{\"dropped_batches\":0,\"dropped_events\":0,"
					      "  "
					      "\"sources\":[],\"spool_bytes\":0,\"spool_capacity\":"
					      "0}},"
					      " {\"op\":\"upsert\",\"c\":" MIN_CONTAINER_JSON(
						      "c1", "web") "}]");
	field_t f[ROWS_EVENT_COLUMNS];
	read_row(&out, 0, f);
	assert_null_field(&f[15]); /* no body, no details */
	read_row(&out, 1, f);
	assert_details(&f[15],
		       "{\"containers\":[" MIN_CONTAINER_JSON("c1", "web") "],"
									   "\"full\":false}");
	read_row(&out, 2, f);
	assert_details(&f[15], "{\"container\":" MIN_CONTAINER_JSON("c1", "web") "}");
	read_row(&out, 3, f);
	assert_details(&f[15], "{\"init_pid\":0}");
	read_row(&out, 4, f);
	assert_null_field(&f[15]);
	read_row(&out, 5, f);
	assert_details(&f[15], "{\"spool_bytes\":0,\"spool_capacity\":0,\"dropped_batches\":0,"
			       "\"dropped_events\":0,\"sources\":[]}");
	read_row(&out, 6, f);
	assert_details(&f[15], "{\"rule\":\"\",\"summary\":\"\"}");
	read_row(&out, 7, f);
	assert_details(&f[15], "{\"container\":" MIN_CONTAINER_JSON("c1", "web") "}");
	rows_batch_free(&out);
}

static void test_rows_clamp(void **state)
{
	(void)state;
	static const struct {
		int64_t t;
		bool clamped;
	} tab[] = {
		{RECV_NS - DAY_NS - 1, true}, /* just before lo */
		{RECV_NS - DAY_NS, false},    /* lo is inside */
		{RECV_NS, false},
		{RECV_NS + DAY_NS - 1, false}, /* last instant inside */
		{RECV_NS + DAY_NS, true},      /* hi is outside */
		{0, true},		       /* agent clock unset */
		{INT64_MIN, true},
		{INT64_MAX, true},
		{-1, true},
	};
	size_t n = sizeof(tab) / sizeof(tab[0]);
	Vigil__V1__Event e[9];
	Vigil__V1__Event *ev[9];
	assert_int_equal(n, 9);
	size_t want_clamped = 0;
	for (size_t i = 0; i < n; i++) {
		event_init(&e[i], VIGIL__V1__EVENT_KIND__EVENT_KIND_FINDING, tab[i].t, NULL);
		ev[i] = &e[i];
		want_clamped += tab[i].clamped;
	}
	Vigil__V1__Batch b;
	batch_init(&b, 1, ev, n);
	rows_batch_t out;
	encode(&b, &out);
	assert_int_equal(out.n_rows, n);
	assert_int_equal(out.clamped, want_clamped);
	assert_int_equal(out.clamped, 6);
	for (size_t i = 0; i < n; i++) {
		field_t f[ROWS_EVENT_COLUMNS];
		read_row(&out, i, f);
		int64_t want = tab[i].clamped ? RECV_NS : tab[i].t;
		if (get_ts_us(&f[0]) != want / 1000)
			fail_msg("event %zu: ts %lld us, want %lld", i, (long long)get_ts_us(&f[0]),
				 (long long)(want / 1000));
		assert_true(get_ts_us(&f[1]) == RECV_NS / 1000);
	}
	rows_batch_free(&out);

	/* A stopped op carries the clamped time too. */
	Vigil__V1__ContainerStopped st = VIGIL__V1__CONTAINER_STOPPED__INIT;
	st.exit_code_known = 1;
	st.exit_code = 0;
	Vigil__V1__Event s;
	event_init(&s, VIGIL__V1__EVENT_KIND__EVENT_KIND_CONTAINER_STOPPED, 12345, "c9");
	s.body_case = VIGIL__V1__EVENT__BODY_CONTAINER_STOPPED;
	s.container_stopped = &st;
	Vigil__V1__Event *sv[] = {&s};
	batch_init(&b, 2, sv, 1);
	encode(&b, &out);
	assert_int_equal(out.clamped, 1);
	assert_json(
		out.state_ops,
		"[{\"op\":\"stopped\",\"id\":\"c9\",\"exit_code\":0,\"ts\":1700000000000000000}]");
	rows_batch_free(&out);
}

static void test_rows_state_started_stopped(void **state)
{
	(void)state;
	Vigil__V1__Container c1;
	container_init(&c1, "c1", "web");
	Vigil__V1__ContainerStarted started = VIGIL__V1__CONTAINER_STARTED__INIT;
	started.container = &c1;
	Vigil__V1__ContainerStopped stopped = VIGIL__V1__CONTAINER_STOPPED__INIT;
	stopped.exit_code_known = 1;
	stopped.exit_code = 137;
	stopped.init_pid = 4321;
	Vigil__V1__ContainerStarted no_container = VIGIL__V1__CONTAINER_STARTED__INIT;
	Vigil__V1__ContainerStopped anon = VIGIL__V1__CONTAINER_STOPPED__INIT;

	Vigil__V1__Event e[4];
	event_init(&e[0], VIGIL__V1__EVENT_KIND__EVENT_KIND_CONTAINER_STARTED, RECV_NS, "c1");
	e[0].body_case = VIGIL__V1__EVENT__BODY_CONTAINER_STARTED;
	e[0].container_started = &started;
	event_init(&e[1], VIGIL__V1__EVENT_KIND__EVENT_KIND_CONTAINER_STOPPED, RECV_NS + 1000,
		   "c1");
	e[1].body_case = VIGIL__V1__EVENT__BODY_CONTAINER_STOPPED;
	e[1].container_stopped = &stopped;
	/* A started event without a container and a stopped event without
	 * a container id become rows but change no state. */
	event_init(&e[2], VIGIL__V1__EVENT_KIND__EVENT_KIND_CONTAINER_STARTED, RECV_NS, "c2");
	e[2].body_case = VIGIL__V1__EVENT__BODY_CONTAINER_STARTED;
	e[2].container_started = &no_container;
	event_init(&e[3], VIGIL__V1__EVENT_KIND__EVENT_KIND_CONTAINER_STOPPED, RECV_NS, NULL);
	e[3].body_case = VIGIL__V1__EVENT__BODY_CONTAINER_STOPPED;
	e[3].container_stopped = &anon;
	Vigil__V1__Event *ev[] = {&e[0], &e[1], &e[2], &e[3]};
	Vigil__V1__Batch b;
	batch_init(&b, 3, ev, 4);
	rows_batch_t out;
	encode(&b, &out);
	assert_int_equal(out.n_rows, 4);
	assert_json(out.state_ops,
		    "[{\"op\":\"upsert\",\"c\":" MIN_CONTAINER_JSON(
			    "c1", "web") "},"
					 " {\"op\":\"stopped\",\"id\":\"c1\",\"exit_code\":137,"
					 "  \"ts\":1700000000000001000}]");
	field_t f[ROWS_EVENT_COLUMNS];
	read_row(&out, 1, f);
	assert_details(&f[15], "{\"exit_code\":137,\"init_pid\":4321}");
	read_row(&out, 2, f);
	assert_null_field(&f[15]);
	read_row(&out, 3, f);
	assert_details(&f[15], "{\"init_pid\":0}");
	rows_batch_free(&out);
}

static void test_rows_state_inventory(void **state)
{
	(void)state;
	Vigil__V1__Container c1, c2;
	container_init(&c1, "c1", "web");
	container_init(&c2, "c2", "db");
	Vigil__V1__Container *cs[] = {&c1, &c2};
	char *runtimes[] = {"docker", "runc"};
	Vigil__V1__HostInfo host = VIGIL__V1__HOST_INFO__INIT;
	host.hostname = "node-1";
	host.os = "Debian GNU/Linux 12";
	host.kernel = "6.1.0";
	host.boot_id = "b00t";
	host.agent_version = "0.1.0";
	host.runtimes = runtimes;
	host.n_runtimes = 2;
	Vigil__V1__Inventory full = VIGIL__V1__INVENTORY__INIT;
	full.host = &host;
	full.containers = cs;
	full.n_containers = 2;
	full.full = 1;
	Vigil__V1__Inventory partial = VIGIL__V1__INVENTORY__INIT;
	partial.containers = cs + 1;
	partial.n_containers = 1;
	Vigil__V1__Inventory none = VIGIL__V1__INVENTORY__INIT;
	none.full = 1; /* no containers left on the node */

	Vigil__V1__Event e[3];
	Vigil__V1__Inventory *invs[] = {&full, &partial, &none};
	Vigil__V1__Event *ev[3];
	for (int i = 0; i < 3; i++) {
		event_init(&e[i], VIGIL__V1__EVENT_KIND__EVENT_KIND_INVENTORY, RECV_NS, NULL);
		e[i].body_case = VIGIL__V1__EVENT__BODY_INVENTORY;
		e[i].inventory = invs[i];
		ev[i] = &e[i];
	}
	Vigil__V1__Batch b;
	batch_init(&b, 4, ev, 1);
	rows_batch_t out;
	encode(&b, &out);
	assert_json(
		out.state_ops,
		"[{\"op\":\"upsert\",\"c\":" MIN_CONTAINER_JSON(
			"c1", "web") "},"
				     " {\"op\":\"upsert\",\"c\":" MIN_CONTAINER_JSON(
					     "c2",
					     "db") "},"
						   " {\"op\":\"full\",\"ids\":[\"c1\",\"c2\"]}]");
	field_t f[ROWS_EVENT_COLUMNS];
	read_row(&out, 0, f);
	assert_details(&f[15],
		       "{\"host\":{\"hostname\":\"node-1\",\"os\":\"Debian GNU/Linux 12\","
		       "\"kernel\":\"6.1.0\",\"boot_id\":\"b00t\",\"agent_version\":\"0.1.0\","
		       "\"runtimes\":[\"docker\",\"runc\"]},"
		       "\"containers\":[" MIN_CONTAINER_JSON("c1", "web") "," MIN_CONTAINER_JSON(
			       "c2", "db") "],\"full\":true}");
	rows_batch_free(&out);

	batch_init(&b, 5, ev + 1, 1);
	encode(&b, &out);
	assert_json(out.state_ops,
		    "[{\"op\":\"upsert\",\"c\":" MIN_CONTAINER_JSON("c2", "db") "}]");
	rows_batch_free(&out);

	batch_init(&b, 6, ev + 2, 1);
	encode(&b, &out);
	assert_json(out.state_ops, "[{\"op\":\"full\",\"ids\":[]}]");
	read_row(&out, 0, f);
	assert_details(&f[15], "{\"containers\":[],\"full\":true}");
	rows_batch_free(&out);

	/* the last part of a split snapshot: full, every id listed */
	char *all[] = {"c1", "c2", "c3"};
	none.all_ids = all;
	none.n_all_ids = 3;
	batch_init(&b, 7, ev + 2, 1);
	encode(&b, &out);
	assert_json(out.state_ops, "[{\"op\":\"full\",\"ids\":[\"c1\",\"c2\",\"c3\"]}]");
	rows_batch_free(&out);

	/* an id that is not UTF-8 makes the event a reject, not a broken op */
	char *bad[] = {"c1", "c\xff"};
	none.all_ids = bad;
	none.n_all_ids = 2;
	batch_init(&b, 8, ev + 2, 1);
	encode(&b, &out);
	assert_int_equal(out.n_rows, 0);
	assert_int_equal(out.n_rejects, 1);
	assert_null(out.state_ops);
	rows_batch_free(&out);
}

static void test_rows_container_json(void **state)
{
	(void)state;
	Vigil__V1__Label l1 = VIGIL__V1__LABEL__INIT, l2 = VIGIL__V1__LABEL__INIT;
	l1.key = "app";
	l1.value = "web";
	l2.key = "tier";
	l2.value = "front";
	Vigil__V1__Label *labels[] = {&l1, &l2};
	char *command[] = {"nginx", "-g", "daemon off;"};
	char *caps[] = {"CAP_NET_ADMIN", "CAP_SYS_ADMIN"};
	char *bounding[] = {"CAP_CHOWN"};
	Vigil__V1__Mount m = VIGIL__V1__MOUNT__INIT;
	m.source = "/var/run/docker.sock";
	m.destination = "/run/docker.sock";
	m.read_only = 1;
	m.type = "bind";
	Vigil__V1__Mount *mounts[] = {&m};
	Vigil__V1__Container c;
	container_init(&c, "0123abcd", "proxy");
	c.runtime = VIGIL__V1__RUNTIME__RUNTIME_CRIO;
	c.image = "nginx:1.25";
	c.image_digest = "sha256:feed";
	c.labels = labels;
	c.n_labels = 2;
	c.command = command;
	c.n_command = 3;
	c.user_known = 1;
	c.uid = 101;
	c.gid = 102;
	c.privileged = 1;
	c.cap_effective = caps;
	c.n_cap_effective = 2;
	c.cap_bounding = bounding;
	c.n_cap_bounding = 1;
	c.host_pid = 1;
	c.host_net = 1;
	c.mounts = mounts;
	c.n_mounts = 1;
	c.read_only_rootfs = 1;
	c.seccomp_profile = "unconfined";
	c.apparmor_profile = "docker-default";
	c.init_pid = 4242;
	c.created_ns = 1000;
	c.started_ns = 2000;
	c.state = "exited";
	json_t *j = rows_container_json(&c);
	assert_json(j,
		    "{\"id\":\"0123abcd\",\"name\":\"proxy\",\"runtime\":\"cri-o\","
		    "\"image\":\"nginx:1.25\",\"image_digest\":\"sha256:feed\","
		    "\"labels\":{\"app\":\"web\",\"tier\":\"front\"},"
		    "\"command\":[\"nginx\",\"-g\",\"daemon off;\"],\"uid\":101,\"gid\":102,"
		    "\"privileged\":true,\"cap_effective\":[\"CAP_NET_ADMIN\",\"CAP_SYS_ADMIN\"],"
		    "\"cap_bounding\":[\"CAP_CHOWN\"],\"host_pid\":true,\"host_net\":true,"
		    "\"host_ipc\":false,\"host_uts\":false,"
		    "\"mounts\":[{\"source\":\"/var/run/docker.sock\","
		    "\"destination\":\"/run/docker.sock\",\"read_only\":true,\"type\":\"bind\"}],"
		    "\"read_only_rootfs\":true,\"seccomp_profile\":\"unconfined\","
		    "\"apparmor_profile\":\"docker-default\",\"init_pid\":4242,"
		    "\"created_ns\":1000,\"started_ns\":2000,\"state\":\"exited\"}");
	json_decref(j);

	/* NULL strings (not possible after unpacking, but in built messages)
	 * become "". */
	Vigil__V1__Container n;
	container_init(&n, NULL, NULL);
	n.image = NULL;
	n.image_digest = NULL;
	n.seccomp_profile = NULL;
	n.apparmor_profile = NULL;
	n.state = NULL;
	j = rows_container_json(&n);
	assert_json(j, MIN_CONTAINER_JSON("", ""));
	json_decref(j);
}

static void test_rows_agent_status_finding(void **state)
{
	(void)state;
	Vigil__V1__SourceStatus s1 = VIGIL__V1__SOURCE_STATUS__INIT;
	s1.name = "procfs";
	s1.ok = 1;
	Vigil__V1__SourceStatus s2 = VIGIL__V1__SOURCE_STATUS__INIT;
	s2.name = "docker";
	s2.error = "connect: permission denied";
	Vigil__V1__SourceStatus *src[] = {&s1, &s2};
	Vigil__V1__AgentStatus st = VIGIL__V1__AGENT_STATUS__INIT;
	st.spool_bytes = 1024;
	st.spool_capacity = UINT64_C(1) << 30;
	st.dropped_batches = 2;
	st.dropped_events = 300;
	st.drop_first_ns = 11;
	st.drop_last_ns = 22;
	st.sources = src;
	st.n_sources = 2;
	Vigil__V1__Finding fi = VIGIL__V1__FINDING__INIT;
	fi.rule = "privileged-container";
	fi.summary = "container \"x\" runs privileged <b>";
	Vigil__V1__Event e[2];
	event_init(&e[0], VIGIL__V1__EVENT_KIND__EVENT_KIND_AGENT_STATUS, RECV_NS, NULL);
	e[0].body_case = VIGIL__V1__EVENT__BODY_AGENT_STATUS;
	e[0].agent_status = &st;
	event_init(&e[1], VIGIL__V1__EVENT_KIND__EVENT_KIND_FINDING, RECV_NS, "abc");
	e[1].severity = VIGIL__V1__SEVERITY__SEVERITY_CRITICAL;
	e[1].body_case = VIGIL__V1__EVENT__BODY_FINDING;
	e[1].finding = &fi;
	Vigil__V1__Event *ev[] = {&e[0], &e[1]};
	Vigil__V1__Batch b;
	batch_init(&b, 1, ev, 2);
	rows_batch_t out;
	encode(&b, &out);
	/* the status also goes to the agent's row (latest status, drops) */
	assert_json(out.state_ops, "[{\"op\":\"status\",\"ts\":1700000000000000000,\"d\":"
				   "{\"spool_bytes\":1024,\"spool_capacity\":1073741824,"
				   "\"dropped_batches\":2,\"dropped_events\":300,"
				   "\"drop_first_ns\":11,\"drop_last_ns\":22,"
				   "\"sources\":[{\"name\":\"procfs\",\"ok\":true,\"error\":\"\"},"
				   "{\"name\":\"docker\",\"ok\":false,"
				   "\"error\":\"connect: permission denied\"}]}}]");
	field_t f[ROWS_EVENT_COLUMNS];
	read_row(&out, 0, f);
	assert_details(&f[15], "{\"spool_bytes\":1024,\"spool_capacity\":1073741824,"
			       "\"dropped_batches\":2,\"dropped_events\":300,"
			       "\"drop_first_ns\":11,\"drop_last_ns\":22,"
			       "\"sources\":[{\"name\":\"procfs\",\"ok\":true,\"error\":\"\"},"
			       "{\"name\":\"docker\",\"ok\":false,"
			       "\"error\":\"connect: permission denied\"}]}");
	read_row(&out, 1, f);
	assert_int_equal(get_int(&f[6], 2), 5);
	assert_details(&f[15], "{\"rule\":\"privileged-container\","
			       "\"summary\":\"container \\\"x\\\" runs privileged <b>\"}");
	rows_batch_free(&out);
}

static void test_rows_invalid_utf8(void **state)
{
	(void)state;
	Vigil__V1__Container good, bad;
	container_init(&good, "c1", "web");
	container_init(&bad, "c2", "\xff\xfe");
	Vigil__V1__ContainerStarted s_good = VIGIL__V1__CONTAINER_STARTED__INIT;
	s_good.container = &good;
	Vigil__V1__ContainerStarted s_bad = VIGIL__V1__CONTAINER_STARTED__INIT;
	s_bad.container = &bad;
	Vigil__V1__ContainerStopped stopped = VIGIL__V1__CONTAINER_STOPPED__INIT;

	Vigil__V1__Event e[3];
	event_init(&e[0], VIGIL__V1__EVENT_KIND__EVENT_KIND_CONTAINER_STARTED, RECV_NS, "c1");
	e[0].body_case = VIGIL__V1__EVENT__BODY_CONTAINER_STARTED;
	e[0].container_started = &s_good;
	event_init(&e[1], VIGIL__V1__EVENT_KIND__EVENT_KIND_CONTAINER_STARTED, RECV_NS, "c2");
	e[1].body_case = VIGIL__V1__EVENT__BODY_CONTAINER_STARTED;
	e[1].container_started = &s_bad;
	event_init(&e[2], VIGIL__V1__EVENT_KIND__EVENT_KIND_CONTAINER_STOPPED, RECV_NS, "c3");
	e[2].body_case = VIGIL__V1__EVENT__BODY_CONTAINER_STOPPED;
	e[2].container_stopped = &stopped;
	Vigil__V1__Event *ev[] = {&e[0], &e[1], &e[2]};
	Vigil__V1__Batch b;
	batch_init(&b, 8, ev, 3);
	rows_batch_t out;
	encode(&b, &out);
	assert_int_equal(out.n_rows, 2);
	assert_int_equal(out.row[0].idx, 0);
	assert_int_equal(out.row[1].idx, 2);
	assert_int_equal(out.n_rejects, 1);
	assert_int_equal(out.reject[0].idx, 1);
	assert_string_equal(out.reject[0].reason, "event details are not valid UTF-8");
	/* The upsert of c2 is gone; the ops around it stay. */
	assert_json(out.state_ops,
		    "[{\"op\":\"upsert\",\"c\":" MIN_CONTAINER_JSON(
			    "c1", "web") "},"
					 " {\"op\":\"stopped\",\"id\":\"c3\",\"exit_code\":null,"
					 "  \"ts\":1700000000000000000}]");

	/* The same rows as a batch that never had the bad event, apart from
	 * the idx column. */
	rows_batch_t ref;
	Vigil__V1__Event *ev2[] = {&e[0], &e[2]};
	batch_init(&b, 8, ev2, 2);
	encode(&b, &ref);
	assert_int_equal(ref.rows.len, out.rows.len);
	assert_int_equal(ref.row[0].end, out.row[0].end);
	assert_memory_equal(ref.rows.data, out.rows.data, ref.row[0].end);
	rows_batch_free(&ref);
	rows_batch_free(&out);

	/* Invalid UTF-8 in a finding's text. */
	Vigil__V1__Finding fi = VIGIL__V1__FINDING__INIT;
	fi.rule = "r";
	fi.summary = "bad \xe2\x82 utf-8";
	Vigil__V1__Event fe;
	event_init(&fe, VIGIL__V1__EVENT_KIND__EVENT_KIND_FINDING, RECV_NS, NULL);
	fe.body_case = VIGIL__V1__EVENT__BODY_FINDING;
	fe.finding = &fi;
	Vigil__V1__Event *ev3[] = {&fe};
	batch_init(&b, 9, ev3, 1);
	encode(&b, &out);
	assert_int_equal(out.n_rows, 0);
	assert_int_equal(out.rows.len, 0);
	assert_int_equal(out.n_rejects, 1);
	assert_int_equal(out.reject[0].idx, 0);
	assert_null(out.state_ops);
	rows_batch_free(&out);

	/* A full inventory whose second container has a bad name: the row
	 * and all of the event's ops (both upserts and the "full" op) go. */
	Vigil__V1__Container *cs[] = {&good, &bad};
	Vigil__V1__Inventory inv = VIGIL__V1__INVENTORY__INIT;
	inv.containers = cs;
	inv.n_containers = 2;
	inv.full = 1;
	Vigil__V1__Event ie;
	event_init(&ie, VIGIL__V1__EVENT_KIND__EVENT_KIND_INVENTORY, RECV_NS, NULL);
	ie.body_case = VIGIL__V1__EVENT__BODY_INVENTORY;
	ie.inventory = &inv;
	Vigil__V1__Event *ev4[] = {&ie};
	batch_init(&b, 10, ev4, 1);
	encode(&b, &out);
	assert_int_equal(out.n_rows, 0);
	assert_int_equal(out.n_rejects, 1);
	/* state_ops was created by this event; it must hold no op now. */
	assert_true(out.state_ops == NULL || json_array_size(out.state_ops) == 0);
	rows_batch_free(&out);
}

/* Invalid UTF-8 in a label key must make a reject too: jansson does not
 * check object keys when dumping, it writes broken JSON instead. */
static void test_rows_invalid_utf8_label_key(void **state)
{
	(void)state;
	Vigil__V1__Label lab = VIGIL__V1__LABEL__INIT;
	lab.key = "k\xc3";
	lab.value = "v";
	Vigil__V1__Label *labs[] = {&lab};
	Vigil__V1__Container lc;
	container_init(&lc, "c4", "x");
	lc.labels = labs;
	lc.n_labels = 1;
	Vigil__V1__ContainerStarted s = VIGIL__V1__CONTAINER_STARTED__INIT;
	s.container = &lc;
	Vigil__V1__Event e;
	event_init(&e, VIGIL__V1__EVENT_KIND__EVENT_KIND_CONTAINER_STARTED, RECV_NS, "c4");
	e.body_case = VIGIL__V1__EVENT__BODY_CONTAINER_STARTED;
	e.container_started = &s;
	Vigil__V1__Event *ev[] = {&e};
	Vigil__V1__Batch b;
	batch_init(&b, 11, ev, 1);
	rows_batch_t *out = &kept;
	encode(&b, out);
	if (out->n_rows == 1) {
		/* Whatever was written must at least be valid JSON. */
		field_t f[ROWS_EVENT_COLUMNS];
		read_row(out, 0, f);
		json_error_t jerr;
		json_t *d = json_loadb((const char *)f[15].p + 1, (size_t)f[15].len - 1, 0, &jerr);
		if (!d)
			print_error("details column is not JSON: %.*s\n", (int)f[15].len - 1,
				    (const char *)f[15].p + 1);
		json_decref(d);
	}
	assert_int_equal(out->n_rows, 0);
	assert_int_equal(out->n_rejects, 1);
	assert_true(out->state_ops == NULL || json_array_size(out->state_ops) == 0);
	rows_batch_free(out);
}

/* A container id with invalid UTF-8 on a stopped event: the id is not in
 * the details column, but it is in the "stopped" op, which must still be
 * serialisable. The event has to be rejected like any other bad text. */
static void test_rows_invalid_utf8_stopped_id(void **state)
{
	(void)state;
	Vigil__V1__ContainerStopped st = VIGIL__V1__CONTAINER_STOPPED__INIT;
	Vigil__V1__Event e;
	event_init(&e, VIGIL__V1__EVENT_KIND__EVENT_KIND_CONTAINER_STOPPED, RECV_NS, "3f2a9\x95");
	e.body_case = VIGIL__V1__EVENT__BODY_CONTAINER_STOPPED;
	e.container_stopped = &st;
	Vigil__V1__Event *ev[] = {&e};
	Vigil__V1__Batch b;
	batch_init(&b, 12, ev, 1);
	rows_batch_t *out = &kept;
	encode(&b, out);
	if (out->state_ops) {
		char *s = json_dumps(out->state_ops, JSON_COMPACT);
		if (!s)
			print_error("state_ops cannot be serialised (invalid UTF-8)\n");
		free(s);
	}
	assert_int_equal(out->n_rows, 0);
	assert_int_equal(out->n_rejects, 1);
	assert_true(out->state_ops == NULL || json_array_size(out->state_ops) == 0);
	rows_batch_free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows_container_key),
		cmocka_unit_test(test_rows_runtime_name),
		cmocka_unit_test(test_rows_exec_event),
		cmocka_unit_test(test_rows_exec_flags_and_empties),
		cmocka_unit_test(test_rows_empty_batch),
		cmocka_unit_test(test_rows_every_kind),
		cmocka_unit_test(test_rows_clamp),
		cmocka_unit_test(test_rows_state_started_stopped),
		cmocka_unit_test(test_rows_state_inventory),
		cmocka_unit_test(test_rows_container_json),
		cmocka_unit_test(test_rows_agent_status_finding),
		cmocka_unit_test(test_rows_invalid_utf8),
		cmocka_unit_test_teardown(test_rows_invalid_utf8_label_key, free_kept),
		cmocka_unit_test_teardown(test_rows_invalid_utf8_stopped_id, free_kept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
