// SPDX-License-Identifier: Apache-2.0
/* Unit tests of the alert payloads and parsers (collector/alert/payload.c):
 * OCSF JSON, RFC 5424/5425 frames, escaping, URLs, HTTP status lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "alert/payload.h"

#define HOSTILE                                 \
	"<b>x</b>\x1b[31m\nline2\r\xe2\x80\xae" \
	"evil\\\"]\xff"

static alert_item_t sample(const char *action)
{
	alert_item_t it = {
		.outbox_id = 7,
		.finding_id = 42,
		.action = action,
		.rule = "privileged",
		.key = "",
		.kind = "posture",
		.state = "open",
		.summary = "privileged container " HOSTILE,
		.severity = 5,
		.first_ms = 1700000000123,
		.last_ms = 1700000001000,
		.time_ms = 1700000000123,
		.count = 3,
		.details_json = "{\"argv\":[\"sh\",\"-c\"]}",
		.container_id = "abc",
		.container_name = HOSTILE,
		.image = "docker.io/library/nginx:latest",
		.labels_json = "{\"app\":\""
			       "<i>\\u001b\\n\\u202e"
			       "\"}",
		.agent = "node-1",
		.hostname = "node 1\n",
		.title = "Privileged container",
		.control = "CIS Docker Benchmark v1.6.0 5.5",
		.remediation = "Drop --privileged",
	};
	return it;
}

static void test_ocsf_fields(void **state)
{
	(void)state;
	static const struct {
		const char *action;
		int activity, status;
	} cases[] = {{"opened", 1, 1}, {"reopened", 1, 1}, {"update", 2, 2}, {"resolved", 3, 4}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		alert_item_t it = sample(cases[i].action);
		char *s = alert_ocsf_json(&it);
		assert_non_null(s);
		for (const char *p = s; *p; p++)
			assert_true((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
		json_error_t e;
		json_t *j = json_loads(s, 0, &e);
		assert_non_null(j);
		assert_int_equal(json_integer_value(json_object_get(j, "class_uid")), 2004);
		assert_int_equal(json_integer_value(json_object_get(j, "category_uid")), 2);
		assert_int_equal(json_integer_value(json_object_get(j, "activity_id")),
				 cases[i].activity);
		assert_int_equal(json_integer_value(json_object_get(j, "type_uid")),
				 200400 + cases[i].activity);
		assert_int_equal(json_integer_value(json_object_get(j, "status_id")),
				 cases[i].status);
		assert_int_equal(json_integer_value(json_object_get(j, "severity_id")), 5);
		assert_int_equal(json_integer_value(json_object_get(j, "time")), 1700000000123);
		json_t *fi = json_object_get(j, "finding_info");
		assert_string_equal(json_string_value(json_object_get(fi, "uid")),
				    "vigil-finding-42");
		assert_string_equal(
			json_string_value(json_object_get(json_object_get(fi, "analytic"), "uid")),
			"privileged");
		json_t *res = json_array_get(json_object_get(j, "resources"), 0);
		/* the hostile name comes back as it was, once decoded (the
		 * invalid byte repaired) */
		const char *name = json_string_value(json_object_get(res, "name"));
		assert_non_null(name);
		assert_non_null(strstr(name, "\x1b[31m\nline2\r\xe2\x80\xae"));
		const char *label =
			json_string_value(json_array_get(json_object_get(res, "labels"), 0));
		assert_non_null(label);
		assert_int_equal(strncmp(label, "app=<i>", 7), 0);
		assert_string_equal(
			json_string_value(json_object_get(
				json_object_get(json_object_get(j, "unmapped"), "vigil"),
				"action")),
			cases[i].action);
		json_decref(j);
		free(s);
	}
}

static void test_ocsf_nulls(void **state)
{
	(void)state;
	alert_item_t it = {.finding_id = 1, .action = "opened", .severity = 9};
	char *s = alert_ocsf_json(&it);
	assert_non_null(s);
	json_t *j = json_loads(s, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "severity_id")), 0);
	json_decref(j);
	free(s);
}

static void test_syslog_frame(void **state)
{
	(void)state;
	alert_item_t it = sample("opened");
	size_t len = 0;
	char *f = alert_syslog_frame(&it, 8192, &len);
	assert_non_null(f);
	assert_int_equal(strlen(f), len);
	char *sp = strchr(f, ' ');
	assert_non_null(sp);
	assert_int_equal(strtoul(f, NULL, 10), len - (size_t)(sp + 1 - f));
	const char *msg = sp + 1;
	/* authpriv (10) * 8 + critical (2) */
	assert_int_equal(strncmp(msg,
				 "<82>1 2023-11-14T22:13:20.123Z node_1_ vigil - opened "
				 "[vigil@32473 finding=\"42\"",
				 76),
			 0);
	for (const char *p = msg; *p; p++)
		assert_true(*p != '\n' && *p != '\r' && *p != '\x1b');
	assert_null(strstr(msg, "\xe2\x80\xae"));
	assert_non_null(strstr(msg, "\\u202E"));
	assert_non_null(strstr(msg, "\\x1B[31m\\x0Aline2"));
	assert_non_null(strstr(msg, "evil\\\\\\\"\\]\\xFF\"")); /* in an SD value */
	assert_non_null(strstr(msg, "] \xef\xbb\xbf"
				    "Critical finding")); /* BOM, then text */
	free(f);

	/* capped at max_msg, never splitting an escape */
	f = alert_syslog_frame(&it, 400, &len);
	assert_non_null(f);
	sp = strchr(f, ' ');
	assert_true(strtoul(f, NULL, 10) <= 400);
	assert_int_equal(strtoul(f, NULL, 10), strlen(sp + 1));
	free(f);
}

static void test_escape(void **state)
{
	(void)state;
	static const struct {
		const char *in, *extra, *out;
	} cases[] = {
		{"plain", NULL, "plain"},
		{"a\nb", NULL, "a\\x0Ab"},
		{"back\\slash", NULL, "back\\\\slash"},
		{"q\"]", "\"]", "q\\\"\\]"},
		{"\xc2\x85", NULL, "\\u0085"},		   /* NEL */
		{"\xe2\x80\xa8", NULL, "\\u2028"},	   /* line separator */
		{"\xe2\x81\xa6", NULL, "\\u2066"},	   /* bidi isolate */
		{"caf\xc3\xa9", NULL, "caf\xc3\xa9"},	   /* kept */
		{"\xc0\xaf", NULL, "\\xC0\\xAF"},	   /* overlong */
		{"\xed\xa0\x80", NULL, "\\xED\\xA0\\x80"}, /* surrogate */
		{"\x7f", NULL, "\\x7F"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[64];
		alert_escape(cases[i].in, cases[i].extra, out, sizeof(out));
		assert_string_equal(out, cases[i].out);
	}
	char small[6];
	assert_int_equal(alert_escape("ab\ncd", NULL, small, sizeof(small)), 2);
	assert_string_equal(small, "ab");
}

static void test_url(void **state)
{
	(void)state;
	alert_url_t u;
	assert_int_equal(alert_url_parse("https://siem.example:8443/in?x=1", &u), 0);
	assert_string_equal(u.host, "siem.example");
	assert_int_equal(u.port, 8443);
	assert_string_equal(u.path, "/in?x=1");
	assert_int_equal(alert_url_parse("HTTPS://h", &u), 0);
	assert_int_equal(u.port, 443);
	assert_string_equal(u.path, "/");
	assert_int_equal(alert_url_parse("https://[::1]:9/a", &u), 0);
	assert_string_equal(u.host, "::1");
	static const char *const bad[] = {
		"http://h/",	    "https://",	     "https://u@h/", "https://h:0/",
		"https://h:70000/", "https://h:x/",  "https://::1/", "https://h/a b",
		"https://h/\r\nX:", "https://[::1/", "https://h\"/", NULL,
	};
	for (size_t i = 0; bad[i]; i++)
		assert_int_equal(alert_url_parse(bad[i], &u), -1);
	assert_int_equal(alert_url_parse(NULL, &u), -1);

	char host[64];
	int port;
	assert_int_equal(alert_hostport_parse("logs.example:6514", host, sizeof(host), &port), 0);
	assert_string_equal(host, "logs.example");
	assert_int_equal(port, 6514);
	assert_int_equal(alert_hostport_parse("[::1]:6514", host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(alert_hostport_parse("logs.example", host, sizeof(host), &port), -1);
	assert_int_equal(alert_hostport_parse(":6514", host, sizeof(host), &port), -1);
}

static void test_http_status(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int rc, status;
	} cases[] = {
		{"HTTP/1.1 200 OK\r\n", 1, 200},
		{"HTTP/1.0 302 Found\r\n", 1, 302},
		{"HTTP/1.1 204\r\n", 1, 204},
		{"HTTP/1.1 500", 1, 500},
		{"HTTP/1.1 20", 0, 0},
		{"HTT", 0, 0},
		{"", 0, 0},
		{"HTTP/2 200 OK\r\n", -1, 0},
		{"SSH-2.0-x\r\n", -1, 0},
		{"HTTP/1.1 2x0 OK", -1, 0},
		{"HTTP/1.1 099 x", -1, 0},
		{"HTTP/1.1 2000 x", -1, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int status = 0;
		assert_int_equal(alert_http_status(cases[i].in, strlen(cases[i].in), &status),
				 cases[i].rc);
		if (cases[i].rc == 1)
			assert_int_equal(status, cases[i].status);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ocsf_fields),  cmocka_unit_test(test_ocsf_nulls),
		cmocka_unit_test(test_syslog_frame), cmocka_unit_test(test_escape),
		cmocka_unit_test(test_url),	     cmocka_unit_test(test_http_status),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
