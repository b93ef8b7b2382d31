// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for the settings tables (common/config.c): defaults, value
 * parsing per type, bounds, config-file text, reload and --flags. Uses a
 * small table of its own so the tests do not move with the daemons'.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "log.h"

typedef struct {
	char *listen_addr;
	int64_t port;
	int64_t verbose;
	int64_t max_frame_bytes;
	int64_t idle_timeout_ms;
	char *tag;
	int64_t count;
	int64_t raw_bytes;
	int64_t raw_ms;
} tconf_t;

#define OFF(f) offsetof(tconf_t, f)
#define MIB (INT64_C(1024) * 1024)

static const cfg_setting_t tab[] = {
	{"listen_addr", CFG_T_STR, "127.0.0.1:7443", false, OFF(listen_addr), 0, 0, "address"},
	{"port", CFG_T_INT, "7443", false, OFF(port), 1, 65535, "port"},
	{"verbose", CFG_T_BOOL, "false", true, OFF(verbose), 0, 0, "chatty"},
	{"max_frame_bytes", CFG_T_BYTES, "4MiB", true, OFF(max_frame_bytes), 1024, 64 * MIB,
	 "frame limit"},
	{"idle_timeout_ms", CFG_T_MS, "10s", true, OFF(idle_timeout_ms), 100, 3600000, "idle"},
	{"tag", CFG_T_STR, NULL, true, OFF(tag), 0, 0, "free text"},
	{"count", CFG_T_INT, "", false, OFF(count), 0, 0, "unbounded"},
	{"raw_bytes", CFG_T_BYTES, NULL, true, OFF(raw_bytes), 0, 0, "unbounded size"},
	{"raw_ms", CFG_T_MS, NULL, true, OFF(raw_ms), 0, 0, "unbounded duration"},
	{NULL, CFG_T_STR, NULL, false, 0, 0, 0, NULL},
};

static int setup(void **state)
{
	tconf_t *c = calloc(1, sizeof(*c));
	if (!c)
		return -1;
	char err[256] = "";
	if (cfg_defaults(tab, c, err, sizeof(err)) != 0) {
		fprintf(stderr, "defaults: %s\n", err);
		free(c);
		return -1;
	}
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	tconf_t *c = *state;
	cfg_free(tab, c);
	free(c);
	return 0;
}

static void test_cfg_defaults(void **state)
{
	tconf_t *c = *state;
	assert_string_equal(c->listen_addr, "127.0.0.1:7443");
	assert_int_equal(c->port, 7443);
	assert_int_equal(c->verbose, 0);
	assert_int_equal(c->max_frame_bytes, 4194304);
	assert_int_equal(c->idle_timeout_ms, 10000);
	assert_non_null(c->tag); /* a NULL default is the empty string */
	assert_string_equal(c->tag, "");
	assert_int_equal(c->count, 0);
	assert_int_equal(c->raw_bytes, 0);
	assert_int_equal(c->raw_ms, 0);
}

static void test_cfg_bad_default(void **state)
{
	(void)state;
	int64_t v = 0;
	const cfg_setting_t bad[] = {
		{"n", CFG_T_INT, "0", false, 0, 1, 10, "out of its own bounds"},
		{NULL, CFG_T_STR, NULL, false, 0, 0, 0, NULL},
	};
	char err[256] = "";
	assert_int_equal(cfg_defaults(bad, &v, err, sizeof(err)), -1);
	assert_string_equal(err, "n: 0 is outside 1..10");
}

struct value_case {
	const char *name;
	const char *value;
	int64_t want; /* when ok */
	bool ok;
};

static const struct value_case value_cases[] = {
	/* sizes: binary multiples, any case, optional B/iB, optional space */
	{"raw_bytes", "4MiB", 4 * MIB, true},
	{"raw_bytes", "512k", 512 * 1024, true},
	{"raw_bytes", "512K", 512 * 1024, true},
	{"raw_bytes", "512kb", 512 * 1024, true},
	{"raw_bytes", "512KiB", 512 * 1024, true},
	{"raw_bytes", "2m", 2 * MIB, true},
	{"raw_bytes", "2MB", 2 * MIB, true},
	{"raw_bytes", "1g", 1024 * MIB, true},
	{"raw_bytes", "3GiB", 3 * 1024 * MIB, true},
	{"raw_bytes", "10b", 10, true},
	{"raw_bytes", "100", 100, true},
	{"raw_bytes", "0", 0, true},
	{"raw_bytes", "7 KiB", 7 * 1024, true},
	{"raw_bytes", "8388607t", 0, false},
	{"raw_bytes", "1.5M", 0, false},
	{"raw_bytes", "4MiBs", 0, false},
	{"raw_bytes", "k", 0, false},
	{"raw_bytes", "MiB", 0, false},
	{"raw_bytes", "abc", 0, false},
	{"raw_bytes", "9223372036854775807k", 0, false}, /* overflows */
	{"raw_bytes", "8589934592G", 0, false},		 /* 2^63: overflows */
	{"raw_bytes", "8589934591G", INT64_C(8589934591) * 1024 * MIB, true},
	{"raw_bytes", "-8589934593G", 0, false},
	{"raw_bytes", "99999999999999999999", 0, false}, /* ERANGE */
	/* durations: ms, s, m/min, h; a bare number is seconds */
	{"raw_ms", "10s", 10000, true},
	{"raw_ms", "250ms", 250, true},
	{"raw_ms", "2m", 120000, true},
	{"raw_ms", "3min", 180000, true},
	{"raw_ms", "1h", 3600000, true},
	{"raw_ms", "5", 5000, true},
	{"raw_ms", "10S", 10000, true},
	{"raw_ms", "0ms", 0, true},
	{"raw_ms", "10x", 0, false},
	{"raw_ms", "1d", 0, false},
	{"raw_ms", "ms", 0, false},
	{"raw_ms", "1.5s", 0, false},
	/* bools */
	{"verbose", "true", 1, true},
	{"verbose", "TRUE", 1, true},
	{"verbose", "yes", 1, true},
	{"verbose", "Yes", 1, true},
	{"verbose", "on", 1, true},
	{"verbose", "1", 1, true},
	{"verbose", "false", 0, true},
	{"verbose", "no", 0, true},
	{"verbose", "off", 0, true},
	{"verbose", "OFF", 0, true},
	{"verbose", "0", 0, true},
	{"verbose", "2", 0, false},
	{"verbose", "tru", 0, false},
	{"verbose", "yess", 0, false},
	{"verbose", "maybe", 0, false},
	/* integers */
	{"count", "42", 42, true},
	{"count", "-7", -7, true},
	{"count", "9223372036854775807", INT64_MAX, true},
	{"count", "-9223372036854775808", INT64_MIN, true},
	{"count", "9223372036854775808", 0, false},
	{"count", "42abc", 0, false},
	{"count", "0x10", 0, false},
	{"count", "4k", 0, false},
	{"count", "", 0, true}, /* empty means 0 */
	/* bounds, inclusive */
	{"port", "1", 1, true},
	{"port", "65535", 65535, true},
	{"port", "0", 0, false},
	{"port", "65536", 0, false},
	{"port", "-1", 0, false},
	{"max_frame_bytes", "1k", 1024, true},
	{"max_frame_bytes", "1023", 0, false},
	{"max_frame_bytes", "64MiB", 64 * MIB, true},
	{"max_frame_bytes", "65537k", 0, false},
	{"idle_timeout_ms", "100ms", 100, true},
	{"idle_timeout_ms", "99ms", 0, false},
	{"idle_timeout_ms", "1h", 3600000, true},
	{"idle_timeout_ms", "61m", 0, false},
};

static int64_t *field_of(tconf_t *c, const char *name)
{
	for (const cfg_setting_t *s = tab; s->name; s++)
		if (strcmp(s->name, name) == 0)
			return (int64_t *)((char *)c + s->offset);
	fail_msg("no setting %s", name);
	return NULL;
}

static void test_cfg_values(void **state)
{
	tconf_t *c = *state;
	for (size_t i = 0; i < sizeof(value_cases) / sizeof(value_cases[0]); i++) {
		const struct value_case *v = &value_cases[i];
		int64_t *f = field_of(c, v->name);
		*f = INT64_C(0x5555);
		char err[256] = "";
		int rc = cfg_set(tab, c, v->name, v->value, err, sizeof(err));
		if (v->ok && (rc != 0 || *f != v->want))
			fail_msg("%s = '%s': rc %d (%s), value %lld, want %lld", v->name, v->value,
				 rc, err, (long long)*f, (long long)v->want);
		if (!v->ok && (rc != -1 || *f != 0x5555 || err[0] == '\0'))
			fail_msg("%s = '%s' accepted: rc %d, value %lld", v->name, v->value, rc,
				 (long long)*f);
	}
}

static void test_cfg_error_texts(void **state)
{
	tconf_t *c = *state;
	char err[256];
	assert_int_equal(cfg_set(tab, c, "port", "70000", err, sizeof(err)), -1);
	assert_string_equal(err, "port: 70000 is outside 1..65535");
	assert_int_equal(cfg_set(tab, c, "verbose", "maybe", err, sizeof(err)), -1);
	assert_string_equal(err, "verbose: 'maybe' is not a valid bool");
	assert_int_equal(cfg_set(tab, c, "raw_bytes", "4XB", err, sizeof(err)), -1);
	assert_string_equal(err, "raw_bytes: '4XB' is not a valid size");
	assert_int_equal(cfg_set(tab, c, "raw_ms", "1d", err, sizeof(err)), -1);
	assert_string_equal(err, "raw_ms: '1d' is not a valid duration");
	assert_int_equal(cfg_set(tab, c, "count", "x", err, sizeof(err)), -1);
	assert_string_equal(err, "count: 'x' is not a valid integer");
	assert_int_equal(cfg_set(tab, c, "nope", "1", err, sizeof(err)), -1);
	assert_string_equal(err, "unknown setting 'nope'");
	/* Keys match exactly: no dashes, no case folding. */
	assert_int_equal(cfg_set(tab, c, "listen-addr", "x", err, sizeof(err)), -1);
	assert_int_equal(cfg_set(tab, c, "PORT", "1", err, sizeof(err)), -1);
	/* A small err buffer is truncated, never overrun. */
	char small[8];
	memset(small, 'z', sizeof(small));
	assert_int_equal(cfg_set(tab, c, "nope", "1", small, sizeof(small)), -1);
	assert_string_equal(small, "unknown");
}

static void test_cfg_strings(void **state)
{
	tconf_t *c = *state;
	char err[256];
	assert_int_equal(cfg_set(tab, c, "tag", "hello world", err, sizeof(err)), 0);
	assert_string_equal(c->tag, "hello world");
	assert_int_equal(cfg_set(tab, c, "tag", "", err, sizeof(err)), 0);
	assert_string_equal(c->tag, "");
	assert_int_equal(cfg_set(tab, c, "tag", NULL, err, sizeof(err)), 0);
	assert_string_equal(c->tag, "");
	assert_int_equal(cfg_type_name(CFG_T_STR)[0], 's');
	assert_string_equal(cfg_type_name(CFG_T_STR), "string");
	assert_string_equal(cfg_type_name(CFG_T_INT), "integer");
	assert_string_equal(cfg_type_name(CFG_T_BOOL), "bool");
	assert_string_equal(cfg_type_name(CFG_T_BYTES), "size");
	assert_string_equal(cfg_type_name(CFG_T_MS), "duration");
}

static int parse(tconf_t *c, const char *text, char *err, size_t errlen)
{
	return cfg_parse_text(tab, c, text, strlen(text), "t.conf", err, errlen);
}

static void test_cfg_parse_text(void **state)
{
	tconf_t *c = *state;
	static const char text[] = "# Vigil test configuration\n"
				   "\n"
				   "   \t\n"
				   "listen_addr = \"0.0.0.0:9000\"\n"
				   "port=8000\n"
				   "  verbose   =   yes   \n"
				   "\t# indented comment = not a setting\n"
				   "tag = \"has # hash and = sign\"\n"
				   "max_frame_bytes = 8MiB\r\n"
				   "idle_timeout_ms = 250ms\n"
				   "raw_ms = 2m"; /* no final newline */
	char err[256] = "";
	assert_int_equal(parse(c, text, err, sizeof(err)), 0);
	assert_string_equal(c->listen_addr, "0.0.0.0:9000");
	assert_int_equal(c->port, 8000);
	assert_int_equal(c->verbose, 1);
	assert_string_equal(c->tag, "has # hash and = sign");
	assert_int_equal(c->max_frame_bytes, 8 * MIB);
	assert_int_equal(c->idle_timeout_ms, 250);
	assert_int_equal(c->raw_ms, 120000);

	/* Quotes are removed only as a pair around the whole value. */
	assert_int_equal(parse(c, "tag = \"half\n", err, sizeof(err)), 0);
	assert_string_equal(c->tag, "\"half");
	assert_int_equal(parse(c, "tag = \"\"\n", err, sizeof(err)), 0);
	assert_string_equal(c->tag, "");
	assert_int_equal(parse(c, "tag = \"  spaced  \"\n", err, sizeof(err)), 0);
	assert_string_equal(c->tag, "  spaced  ");
	assert_int_equal(parse(c, "tag = \"\n", err, sizeof(err)), 0);
	assert_string_equal(c->tag, "\"");
	assert_int_equal(parse(c, "tag = a=b\n", err, sizeof(err)), 0);
	assert_string_equal(c->tag, "a=b");
	/* An empty file and a file of only comments change nothing. */
	assert_int_equal(cfg_parse_text(tab, c, "", 0, "t.conf", err, sizeof(err)), 0);
	assert_int_equal(parse(c, "#\n#\n\n", err, sizeof(err)), 0);
	assert_int_equal(c->port, 8000);
	/* The length bounds the text: what follows is not read. */
	static const char two[] = "port = 1\nport = 2\n";
	assert_int_equal(cfg_parse_text(tab, c, two, 9, "t.conf", err, sizeof(err)), 0);
	assert_int_equal(c->port, 1);
}

struct text_error_case {
	const char *text;
	const char *want;
};

static const struct text_error_case text_errors[] = {
	{"bogus = 1\n", "t.conf:1: unknown setting 'bogus'"},
	{"# c\nport = 1\nbogus = 1\n", "t.conf:3: unknown setting 'bogus'"},
	{"\n\nport\n", "t.conf:3: expected 'name = value'"},
	{"port = 1\n\n\n\nport = 70000\n", "t.conf:5: port: 70000 is outside 1..65535"},
	{"verbose = maybe", "t.conf:1: verbose: 'maybe' is not a valid bool"},
	{"port = 8000 # a comment after a value is not allowed\n",
	 "t.conf:1: port: '8000 # a comment after a value is not allowed' is not a valid "
	 "integer"},
	{"= 5\n", "t.conf:1: unknown setting ''"},
	{"port = \n", "t.conf:1: port: 0 is outside 1..65535"},
};

static void test_cfg_parse_errors(void **state)
{
	tconf_t *c = *state;
	for (size_t i = 0; i < sizeof(text_errors) / sizeof(text_errors[0]); i++) {
		char err[256] = "";
		int rc = parse(c, text_errors[i].text, err, sizeof(err));
		if (rc != -1 || strcmp(err, text_errors[i].want) != 0)
			fail_msg("text %zu: rc %d, err '%s', want '%s'", i, rc, err,
				 text_errors[i].want);
	}
}

static void test_cfg_parse_long_line(void **state)
{
	tconf_t *c = *state;
	/* "tag = " + value: a line of 4095 bytes fits, 4096 does not. */
	char *text = malloc(2 + 4096 + 1);
	assert_non_null(text);
	for (size_t len = 4095; len <= 4096; len++) {
		strcpy(text, "\n"); /* the long line is line 2 */
		strcat(text, "tag = ");
		size_t n = strlen(text);
		memset(text + n, 'x', len - 6);
		text[1 + len] = '\n';
		text[2 + len] = '\0';
		char err[256] = "";
		int rc = cfg_parse_text(tab, c, text, 2 + len, "t.conf", err, sizeof(err));
		if (len == 4095) {
			assert_int_equal(rc, 0);
			assert_int_equal(strlen(c->tag), 4095 - 6);
		} else {
			assert_int_equal(rc, -1);
			assert_string_equal(err, "t.conf:2: line longer than 4095 bytes");
		}
	}
	free(text);
}

static void test_cfg_parse_nul(void **state)
{
	tconf_t *c = *state;
	static const char text[] = "port = 1\ntag = a\0b\n";
	char err[256] = "";
	assert_int_equal(cfg_parse_text(tab, c, text, sizeof(text) - 1, "t.conf", err, sizeof(err)),
			 -1);
	assert_string_equal(err, "t.conf:2: NUL byte");
	static const char text2[] = "\0";
	assert_int_equal(cfg_parse_text(tab, c, text2, 1, "t.conf", err, sizeof(err)), -1);
	assert_string_equal(err, "t.conf:1: NUL byte");
}

static char *tmp_file(const char *content, size_t len)
{
	char *path = strdup("/tmp/vigil-test-config-XXXXXX");
	assert_non_null(path);
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, content + off, len - off);
		assert_true(w > 0);
		off += (size_t)w;
	}
	close(fd);
	return path;
}

static void test_cfg_load_file(void **state)
{
	tconf_t *c = *state;
	char err[512] = "";
	static const char text[] = "port = 9999\nbogus = 1\n";
	char *path = tmp_file(text, sizeof(text) - 1);
	assert_int_equal(cfg_load_file(tab, c, path, err, sizeof(err)), -1);
	char want[512];
	snprintf(want, sizeof(want), "%s:2: unknown setting 'bogus'", path);
	assert_string_equal(err, want);
	assert_int_equal(c->port, 9999);
	unlink(path);
	free(path);

	path = tmp_file("verbose = on\n", 13);
	assert_int_equal(cfg_load_file(tab, c, path, err, sizeof(err)), 0);
	assert_int_equal(c->verbose, 1);
	unlink(path);

	/* Missing file. */
	assert_int_equal(cfg_load_file(tab, c, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	assert_string_equal(err, want);
	free(path);

	/* Over 1 MiB is refused before parsing. */
	size_t big = 1024 * 1024 + 1;
	char *blob = malloc(big);
	assert_non_null(blob);
	memset(blob, '\n', big);
	path = tmp_file(blob, big);
	assert_int_equal(cfg_load_file(tab, c, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: larger than 1048576 bytes", path);
	assert_string_equal(err, want);
	unlink(path);
	free(path);
	path = tmp_file(blob, big - 1); /* exactly 1 MiB of blank lines is fine */
	assert_int_equal(cfg_load_file(tab, c, path, err, sizeof(err)), 0);
	unlink(path);
	free(path);
	free(blob);
}

/* Defaults, then the file, then the flags: the last one wins. */
static void test_cfg_cli_load(void **state)
{
	(void)state;
	static const char text[] = "port = 9999\ntag = from-file\nverbose = on\n";
	char *path = tmp_file(text, sizeof(text) - 1);
	cfg_cli_t cli = {.config_file = path};
	assert_int_equal(cfg_cli_flag(&cli, CFG_OPT_BASE + 1, "1234"), 0); /* port */
	assert_int_equal(cfg_cli_flag(&cli, CFG_OPT_BASE + 1, "4321"), 0); /* port again */
	tconf_t c;
	memset(&c, 0, sizeof(c));
	char err[512] = "";
	assert_int_equal(cfg_cli_load(tab, &cli, &c, err, sizeof(err)), 0);
	assert_int_equal(c.port, 4321);
	assert_string_equal(c.tag, "from-file");
	assert_int_equal(c.verbose, 1);
	assert_int_equal(c.max_frame_bytes, 4 * MIB); /* default */
	cfg_free(tab, &c);
	/* a bad flag value names the setting */
	assert_int_equal(cfg_cli_flag(&cli, CFG_OPT_BASE + 2, "maybe"), 0); /* verbose */
	memset(&c, 0, sizeof(c));
	assert_int_equal(cfg_cli_load(tab, &cli, &c, err, sizeof(err)), -1);
	assert_string_equal(err, "verbose: 'maybe' is not a valid bool");
	cfg_free(tab, &c);
	cfg_cli_free(&cli);
	assert_null(cli.flags);
	unlink(path);
	free(path);
}

static void test_cfg_apply_reload(void **state)
{
	tconf_t *dst = *state;
	tconf_t src;
	memset(&src, 0, sizeof(src));
	char err[256] = "";
	assert_int_equal(cfg_defaults(tab, &src, err, sizeof(err)), 0);
	static const char text[] = "listen_addr = 10.0.0.1:1\n" /* not reloadable */
				   "port = 1\n"			/* not reloadable */
				   "count = 5\n"		/* not reloadable */
				   "verbose = on\n"
				   "max_frame_bytes = 1MiB\n"
				   "idle_timeout_ms = 1s\n"
				   "tag = new\n";
	assert_int_equal(cfg_parse_text(tab, &src, text, sizeof(text) - 1, "r", err, sizeof(err)),
			 0);
	log_set_level(LOG_LVL_ERROR); /* the warnings are expected here */
	cfg_apply_reload(tab, dst, &src);
	log_set_level(LOG_LVL_INFO);
	/* Unchanged: */
	assert_string_equal(dst->listen_addr, "127.0.0.1:7443");
	assert_int_equal(dst->port, 7443);
	assert_int_equal(dst->count, 0);
	/* Reloaded: */
	assert_int_equal(dst->verbose, 1);
	assert_int_equal(dst->max_frame_bytes, MIB);
	assert_int_equal(dst->idle_timeout_ms, 1000);
	assert_string_equal(dst->tag, "new");
	/* dst owns its own copy of the string. */
	assert_ptr_not_equal(dst->tag, src.tag);
	cfg_free(tab, &src);
	assert_null(src.tag);
	assert_string_equal(dst->tag, "new");

	/* Reloading the same values changes nothing. */
	tconf_t same;
	memset(&same, 0, sizeof(same));
	assert_int_equal(cfg_defaults(tab, &same, err, sizeof(err)), 0);
	log_set_level(LOG_LVL_ERROR);
	cfg_apply_reload(tab, &same, dst);
	char *tag_before = same.tag;
	cfg_apply_reload(tab, &same, &same);
	log_set_level(LOG_LVL_INFO);
	assert_ptr_equal(same.tag, tag_before);
	cfg_free(tab, &same);
	cfg_free(tab, &same); /* idempotent */
}

static void test_cfg_long_options(void **state)
{
	(void)state;
	static const struct option extra[] = {
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct option *o = cfg_long_options(tab, extra);
	assert_non_null(o);
	assert_string_equal(o[0].name, "config");
	assert_int_equal(o[0].val, 'c');
	assert_string_equal(o[1].name, "help");
	assert_int_equal(o[1].has_arg, no_argument);
	static const char *const want[] = {"listen-addr",     "port", "verbose", "max-frame-bytes",
					   "idle-timeout-ms", "tag",  "count",	 "raw-bytes",
					   "raw-ms"};
	size_t n = sizeof(want) / sizeof(want[0]);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(o[2 + i].name, want[i]);
		assert_int_equal(o[2 + i].has_arg, required_argument);
		assert_null(o[2 + i].flag);
		assert_int_equal(o[2 + i].val, CFG_OPT_BASE + (int)i);
	}
	assert_null(o[2 + n].name);

	/* The options drive getopt_long: each flag maps back to its setting. */
	char *argv[] = {"prog",
			"--max-frame-bytes",
			"2MiB",
			"--verbose=yes",
			"-c",
			"f.conf",
			"--idle-timeout-ms",
			"5s",
			NULL};
	int argc = 8;
	tconf_t c;
	memset(&c, 0, sizeof(c));
	char err[256];
	assert_int_equal(cfg_defaults(tab, &c, err, sizeof(err)), 0);
	optind = 1;
	opterr = 0;
	int opt, saw_c = 0;
	while ((opt = getopt_long(argc, argv, "c:h", o, NULL)) != -1) {
		if (opt == 'c') {
			saw_c = 1;
			assert_string_equal(optarg, "f.conf");
			continue;
		}
		assert_true(opt >= CFG_OPT_BASE && opt < CFG_OPT_BASE + (int)n);
		assert_int_equal(
			cfg_set(tab, &c, tab[opt - CFG_OPT_BASE].name, optarg, err, sizeof(err)),
			0);
	}
	assert_true(saw_c);
	assert_int_equal(c.max_frame_bytes, 2 * MIB);
	assert_int_equal(c.verbose, 1);
	assert_int_equal(c.idle_timeout_ms, 5000);
	cfg_free(tab, &c);
	cfg_long_options_free(o, extra);

	/* No extra options at all. */
	o = cfg_long_options(tab, NULL);
	assert_non_null(o);
	assert_string_equal(o[0].name, "listen-addr");
	assert_int_equal(o[0].val, CFG_OPT_BASE);
	cfg_long_options_free(o, NULL);
	cfg_long_options_free(NULL, NULL);
}

static char *capture(void (*fn)(const cfg_setting_t *, const void *, FILE *), const void *obj)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	fn(tab, obj, f);
	fclose(f);
	return buf;
}

static void usage_wrap(const cfg_setting_t *t, const void *obj, FILE *out)
{
	(void)obj;
	cfg_usage(t, out);
}

static void test_cfg_print(void **state)
{
	tconf_t *c = *state;
	char *out = capture(cfg_print, c);
	assert_string_equal(out, "listen_addr = \"127.0.0.1:7443\"\n"
				 "port = 7443\n"
				 "verbose = false\n"
				 "max_frame_bytes = 4194304\n"
				 "idle_timeout_ms = 10000ms\n"
				 "tag = \"\"\n"
				 "count = 0\n"
				 "raw_bytes = 0\n"
				 "raw_ms = 0ms\n");
	/* What cfg_print writes reads back as the same settings. */
	tconf_t back;
	memset(&back, 0, sizeof(back));
	char err[256];
	assert_int_equal(cfg_defaults(tab, &back, err, sizeof(err)), 0);
	assert_int_equal(cfg_set(tab, c, "tag", "x y", err, sizeof(err)), 0);
	assert_int_equal(cfg_set(tab, c, "verbose", "1", err, sizeof(err)), 0);
	assert_int_equal(cfg_set(tab, c, "raw_ms", "3s", err, sizeof(err)), 0);
	free(out);
	out = capture(cfg_print, c);
	assert_int_equal(cfg_parse_text(tab, &back, out, strlen(out), "print", err, sizeof(err)),
			 0);
	assert_string_equal(back.tag, "x y");
	assert_int_equal(back.verbose, 1);
	assert_int_equal(back.raw_ms, 3000);
	cfg_free(tab, &back);
	free(out);

	out = capture(usage_wrap, NULL);
	assert_non_null(strstr(out, "  --listen-addr                string   address (default: "
				    "127.0.0.1:7443)\n"));
	assert_non_null(strstr(out, "  --max-frame-bytes            size     frame limit (default: "
				    "4MiB) [reload]\n"));
	assert_non_null(strstr(out, "  --tag                        string   free text (default: "
				    "none) [reload]\n"));
	assert_null(strstr(out, "_"));
	free(out);
}

static void test_cfg_list_has(void **state)
{
	(void)state;
	assert_true(cfg_list_has("ops-admin, root ,lead", "root"));
	assert_true(cfg_list_has("ops-admin, root ,lead", "lead"));
	assert_true(cfg_list_has("ops-admin", "ops-admin"));
	assert_false(cfg_list_has("ops-admin", "ops"));
	assert_false(cfg_list_has("ops-admin,", "")); /* an empty name is never listed */
	assert_false(cfg_list_has(" , ,", ""));
	assert_false(cfg_list_has(NULL, "root"));
	assert_false(cfg_list_has("rooted", "root"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cfg_defaults, setup, teardown),
		cmocka_unit_test(test_cfg_bad_default),
		cmocka_unit_test_setup_teardown(test_cfg_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cfg_error_texts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cfg_strings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cfg_parse_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cfg_parse_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cfg_parse_long_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cfg_parse_nul, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cfg_load_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cfg_apply_reload, setup, teardown),
		cmocka_unit_test(test_cfg_long_options),
		cmocka_unit_test(test_cfg_cli_load),
		cmocka_unit_test(test_cfg_list_has),
		cmocka_unit_test_setup_teardown(test_cfg_print, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
