// SPDX-License-Identifier: Apache-2.0
/*
 * The rules file (rules_file): YAML read with libyaml's document loader,
 * which keeps the line and column of every node, so every error names
 * where it is. What it may hold (README.md, "Rules file"):
 *
 *   rules:        {RULE: {enabled: BOOL, severity: NAME}}
 *   registries:   [PREFIX]          the allow-list of image_registry
 *   exceptions:   [{rule: RULE|"*", reason: TEXT, expires: TIME,
 *                   image, image_digest, label ("key=value"), agent,
 *                   container: GLOB}]
 *
 * Anything else is refused: an unknown key or rule, a glob too long, an
 * exception without a selector or a reason, the same exception twice,
 * and aliases (a YAML alias can make a document cyclic or huge).
 */
#include "rules/rules.h"
#include "rules/rules_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <yaml.h>

#include "vtime.h"

typedef struct {
	yaml_document_t doc;
	const char *origin;
	char *err;
	size_t errlen;
	unsigned char *seen; /* per node: visited once already */
	size_t n_nodes;
	rules_t *r;
} parse_t;

static int fail(parse_t *p, const yaml_node_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(parse_t *p, const yaml_node_t *n, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(p->err, p->errlen, "%s:%zu:%zu: %s", p->origin, n ? n->start_mark.line + 1 : 1,
		 n ? n->start_mark.column + 1 : 1, msg);
	return -1;
}

/* Node id, refusing a node reached twice (an alias). */
static yaml_node_t *node(parse_t *p, int id, const yaml_node_t *from)
{
	yaml_node_t *n = yaml_document_get_node(&p->doc, id);
	if (!n || (size_t)id > p->n_nodes) {
		fail(p, from, "bad node");
		return NULL;
	}
	if (p->seen[id - 1]) {
		fail(p, from, "aliases are not allowed");
		return NULL;
	}
	p->seen[id - 1] = 1;
	return n;
}

static const char *scalar(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int want(parse_t *p, const yaml_node_t *n, yaml_node_type_t t, const char *what)
{
	return n->type == t ? 0 : fail(p, n, "%s", what);
}

/* Each (key, value) of mapping n, in order; fn returns 0 or -1. */
typedef int (*pair_fn)(parse_t *p, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg);
static int each_pair(parse_t *p, yaml_node_t *n, pair_fn fn, void *arg)
{
	if (want(p, n, YAML_MAPPING_NODE, "expected a mapping (key: value)") != 0)
		return -1;
	if (n->data.mapping.pairs.top - n->data.mapping.pairs.start > RULES_EXCEPTIONS_MAX)
		return fail(p, n, "more than %d keys", RULES_EXCEPTIONS_MAX);
	for (yaml_node_pair_t *it = n->data.mapping.pairs.start; it < n->data.mapping.pairs.top;
	     it++) {
		yaml_node_t *k = node(p, it->key, n), *v = k ? node(p, it->value, k) : NULL;
		if (!k || !v)
			return -1;
		if (!scalar(k))
			return fail(p, k, "a key must be a plain name");
		for (yaml_node_pair_t *prev = n->data.mapping.pairs.start; prev < it; prev++) {
			const char *pk = scalar(yaml_document_get_node(&p->doc, prev->key));
			if (pk && !strcmp(pk, scalar(k)))
				return fail(p, k, "\"%.100s\" given twice", pk);
		}
		if (fn(p, scalar(k), k, v, arg) != 0)
			return -1;
	}
	return 0;
}

static int parse_bool(parse_t *p, yaml_node_t *v, unsigned char *out)
{
	const char *s = scalar(v);
	if (s && (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on")))
		*out = 1;
	else if (s && (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off")))
		*out = 0;
	else
		return fail(p, v, "expected true or false");
	return 0;
}

static int rule_setting(parse_t *p, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	int i = *(int *)arg;
	if (!strcmp(key, "enabled"))
		return parse_bool(p, v, &p->r->enabled[i]);
	if (!strcmp(key, "severity")) {
		const char *s = scalar(v);
		for (int sev = 1; s && sev <= 5; sev++)
			if (!strcmp(s, rules_severity_name(sev))) {
				p->r->severity[i] = (unsigned char)sev;
				return 0;
			}
		return fail(p, v, "severity must be info, low, medium, high or critical");
	}
	return fail(p, k, "unknown setting \"%s\" of a rule (enabled, severity)", key);
}

static int rule_entry(parse_t *p, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	(void)arg;
	int i = rules_index(key);
	if (i < 0)
		return fail(p, k, "unknown rule \"%.100s\" (vigil-collector rules list)", key);
	return each_pair(p, v, rule_setting, &i);
}

/* A glob selector: at most RULES_GLOB_MAX bytes. */
static int glob_value(parse_t *p, yaml_node_t *v, char **out, const char *what)
{
	const char *s = scalar(v);
	if (!s || !s[0])
		return fail(p, v, "%s must be a non-empty text", what);
	if (strlen(s) > RULES_GLOB_MAX)
		return fail(p, v, "%s is longer than %d bytes", what, RULES_GLOB_MAX);
	if (*out)
		return fail(p, v, "%s given twice", what);
	return (*out = strdup(s)) ? 0 : fail(p, v, "out of memory");
}

static int parse_expiry(parse_t *p, yaml_node_t *v, int64_t *out)
{
	const char *s = scalar(v);
	char buf[64];
	if (s && strlen(s) == 10) { /* a date: the exception ends as it starts */
		snprintf(buf, sizeof(buf), "%sT00:00:00Z", s);
		s = buf;
	}
	if (!s || vtime_parse_rfc3339(s, out) != 0)
		return fail(p, v, "expires must be a date (2027-01-31) or an RFC 3339 time");
	return 0;
}

static int exception_field(parse_t *p, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	rules_exception_t *x = arg;
	if (!strcmp(key, "rule")) {
		const char *s = scalar(v);
		if (s && !strcmp(s, "*"))
			x->rule = -1;
		else if (!s || (x->rule = rules_index(s)) < 0)
			return fail(p, v, "unknown rule \"%.100s\"", s ? s : "");
		return 0;
	}
	if (!strcmp(key, "reason")) {
		const char *s = scalar(v);
		if (!s || !s[0] || strlen(s) > RULES_REASON_MAX)
			return fail(p, v, "reason must be a text of 1 to %d bytes",
				    RULES_REASON_MAX);
		free(x->reason);
		return (x->reason = strdup(s)) ? 0 : fail(p, v, "out of memory");
	}
	if (!strcmp(key, "expires"))
		return parse_expiry(p, v, &x->expires_ns);
	if (!strcmp(key, "image"))
		return glob_value(p, v, &x->image, "image");
	if (!strcmp(key, "image_digest"))
		return glob_value(p, v, &x->digest, "image_digest");
	if (!strcmp(key, "agent"))
		return glob_value(p, v, &x->agent, "agent");
	if (!strcmp(key, "container"))
		return glob_value(p, v, &x->container, "container");
	if (!strcmp(key, "label")) {
		if (glob_value(p, v, &x->label_key, "label") != 0)
			return -1;
		char *eq = strchr(x->label_key, '=');
		if (!eq || eq == x->label_key)
			return fail(p, v, "label must be key=value (globs)");
		*eq = '\0';
		return (x->label_value = strdup(eq + 1)) ? 0 : fail(p, v, "out of memory");
	}
	return fail(p, k,
		    "unknown key \"%.100s\" of an exception (rule, reason, expires, image, "
		    "image_digest, label, agent, container)",
		    key);
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static bool same_exception(const rules_exception_t *a, const rules_exception_t *b)
{
	return a->rule == b->rule && same_str(a->image, b->image) &&
	       same_str(a->digest, b->digest) && same_str(a->label_key, b->label_key) &&
	       same_str(a->label_value, b->label_value) && same_str(a->agent, b->agent) &&
	       same_str(a->container, b->container);
}

static int parse_exceptions(parse_t *p, yaml_node_t *n)
{
	if (want(p, n, YAML_SEQUENCE_NODE, "exceptions must be a list") != 0)
		return -1;
	size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (count > RULES_EXCEPTIONS_MAX)
		return fail(p, n, "more than %d exceptions", RULES_EXCEPTIONS_MAX);
	if (count && !(p->r->exc = calloc(count, sizeof(*p->r->exc))))
		return fail(p, n, "out of memory");
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++) {
		yaml_node_t *e = node(p, *it, n);
		if (!e)
			return -1;
		rules_exception_t *x = &p->r->exc[p->r->n_exc++];
		x->rule = -2;
		x->line = (int)e->start_mark.line + 1;
		if (each_pair(p, e, exception_field, x) != 0)
			return -1;
		if (x->rule == -2)
			return fail(p, e, "an exception names its rule (rule: ID, or \"*\")");
		if (!x->reason)
			return fail(p, e, "an exception gives its reason");
		if (!x->image && !x->digest && !x->label_key && !x->agent && !x->container)
			return fail(p, e,
				    "an exception needs a selector (image, image_digest, label, "
				    "agent or container)");
		for (size_t i = 0; i + 1 < p->r->n_exc; i++)
			if (same_exception(&p->r->exc[i], x))
				return fail(p, e, "the same exception as on line %d",
					    p->r->exc[i].line);
	}
	return 0;
}

static int parse_registries(parse_t *p, yaml_node_t *n)
{
	if (want(p, n, YAML_SEQUENCE_NODE, "registries must be a list") != 0)
		return -1;
	size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (count > RULES_REGISTRIES_MAX)
		return fail(p, n, "more than %d registries", RULES_REGISTRIES_MAX);
	if (count && !(p->r->registries = calloc(count, sizeof(char *))))
		return fail(p, n, "out of memory");
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++) {
		yaml_node_t *e = node(p, *it, n);
		if (!e ||
		    glob_value(p, e, &p->r->registries[p->r->n_registries], "a registry") != 0)
			return -1;
		p->r->n_registries++;
	}
	return 0;
}

static int top_entry(parse_t *p, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	(void)arg;
	if (!strcmp(key, "rules"))
		return each_pair(p, v, rule_entry, NULL);
	if (!strcmp(key, "exceptions"))
		return parse_exceptions(p, v);
	if (!strcmp(key, "registries"))
		return parse_registries(p, v);
	return fail(p, k, "unknown key \"%.100s\" (rules, registries, exceptions)", key);
}

rules_t *rules_parse(const char *text, size_t len, const char *origin, char *err, size_t errlen)
{
	parse_t p = {.origin = origin, .err = err, .errlen = errlen};
	if (len > RULES_FILE_MAX) {
		snprintf(err, errlen, "%s: larger than %d bytes", origin, RULES_FILE_MAX);
		return NULL;
	}
	yaml_parser_t parser;
	if (!yaml_parser_initialize(&parser)) {
		snprintf(err, errlen, "%s: out of memory", origin);
		return NULL;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &p.doc)) {
		snprintf(err, errlen, "%s:%zu:%zu: %s%s%s", origin, parser.problem_mark.line + 1,
			 parser.problem_mark.column + 1, parser.context ? parser.context : "",
			 parser.context ? ": " : "", parser.problem ? parser.problem : "bad YAML");
		yaml_parser_delete(&parser);
		return NULL;
	}
	yaml_parser_delete(&parser);
	p.r = rules_new_default();
	p.n_nodes = (size_t)(p.doc.nodes.top - p.doc.nodes.start);
	p.seen = calloc(p.n_nodes ? p.n_nodes : 1, 1);
	int rc = p.r && p.seen ? 0 : fail(&p, NULL, "out of memory");
	yaml_node_t *root = rc == 0 ? yaml_document_get_root_node(&p.doc) : NULL;
	if (root) {
		p.seen[0] = 1;
		if (root->type == YAML_SCALAR_NODE && !root->data.scalar.length)
			root = NULL; /* an empty document: the defaults */
	}
	if (root && rc == 0)
		rc = each_pair(&p, root, top_entry, NULL);
	if (rc == 0 && p.r && !(p.r->origin = strdup(origin)))
		rc = fail(&p, NULL, "out of memory");
	yaml_document_delete(&p.doc);
	free(p.seen);
	if (rc != 0) {
		rules_unref(p.r);
		return NULL;
	}
	return p.r;
}

rules_t *rules_load(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: %s", path,
			 fd < 0 ? strerror(errno) : "not a regular file");
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (st.st_size > RULES_FILE_MAX) {
		snprintf(err, errlen, "%s: larger than %d bytes", path, RULES_FILE_MAX);
		close(fd);
		return NULL;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	size_t got = 0;
	ssize_t n = 0;
	while (buf && got < (size_t)st.st_size &&
	       (n = read(fd, buf + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)n;
	close(fd);
	if (!buf || n < 0) {
		snprintf(err, errlen, "%s: %s", path, buf ? strerror(errno) : "out of memory");
		free(buf);
		return NULL;
	}
	buf[got] = '\0';
	rules_t *r = rules_parse(buf, got, path, err, errlen);
	free(buf);
	return r;
}

size_t rules_exception_count(const rules_t *r)
{
	return r ? r->n_exc : 0;
}

size_t rules_registry_count(const rules_t *r)
{
	return r ? r->n_registries : 0;
}

void rules_print(const rules_t *r, FILE *out)
{
	fprintf(out, "# rules in force (%s)\n", r->origin ? r->origin : "built-in defaults");
	fprintf(out, "%-20s %-8s %-9s %-8s %s\n", "RULE", "KIND", "SEVERITY", "ENABLED", "TITLE");
	for (size_t i = 0; rules_builtin(i); i++) {
		const rule_info_t *ri = rules_builtin(i);
		fprintf(out, "%-20s %-8s %-9s %-8s %s\n", ri->id, rules_kind_name(ri->kind),
			rules_severity_name(r->severity[i]), r->enabled[i] ? "yes" : "no",
			ri->title);
	}
	for (size_t i = 0; i < r->n_exc; i++) {
		const rules_exception_t *x = &r->exc[i];
		fprintf(out, "exception (line %d): rule %s", x->line,
			x->rule < 0 ? "*" : rules_builtin((size_t)x->rule)->id);
		if (x->image)
			fprintf(out, " image=%s", x->image);
		if (x->digest)
			fprintf(out, " image_digest=%s", x->digest);
		if (x->label_key)
			fprintf(out, " label=%s=%s", x->label_key, x->label_value);
		if (x->agent)
			fprintf(out, " agent=%s", x->agent);
		if (x->container)
			fprintf(out, " container=%s", x->container);
		if (x->expires_ns) {
			char when[32];
			time_t t = (time_t)(x->expires_ns / 1000000000);
			struct tm tm;
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
			fprintf(out, " expires=%s", when);
		}
		fprintf(out, ": %s\n", x->reason);
	}
	for (size_t i = 0; i < r->n_registries; i++)
		fprintf(out, "registry allowed: %s\n", r->registries[i]);
}
