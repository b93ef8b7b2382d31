// SPDX-License-Identifier: Apache-2.0
/* Settings tables (see config.h). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

#define CFG_FILE_MAX_BYTES (1024 * 1024)
#define CFG_LINE_MAX 4096

static const cfg_setting_t *find(const cfg_setting_t *tab, const char *name)
{
	for (; tab->name; tab++)
		if (strcmp(tab->name, name) == 0)
			return tab;
	return NULL;
}

const char *cfg_type_name(cfg_type_t t)
{
	switch (t) {
	case CFG_T_STR:
		return "string";
	case CFG_T_INT:
		return "integer";
	case CFG_T_BOOL:
		return "bool";
	case CFG_T_BYTES:
		return "size";
	case CFG_T_MS:
		return "duration";
	}
	return "?";
}

struct unit {
	const char *suffix;
	int64_t mult;
};

static const struct unit byte_units[] = {
	{"", 1},	   {"b", 1},	       {"k", 1024},	    {"kb", 1024},
	{"kib", 1024},	   {"m", 1048576},     {"mb", 1048576},	    {"mib", 1048576},
	{"g", 1073741824}, {"gb", 1073741824}, {"gib", 1073741824}, {NULL, 0},
};

static const struct unit ms_units[] = {
	{"ms", 1}, {"", 1000}, {"s", 1000}, {"m", 60000}, {"min", 60000}, {"h", 3600000}, {NULL, 0},
};

static int parse_number(const char *v, const struct unit *units, int64_t *out)
{
	errno = 0;
	char *end;
	long long n = strtoll(v, &end, 10);
	if (errno || end == v)
		return -1;
	while (*end == ' ')
		end++;
	char suf[8];
	size_t i = 0;
	for (; end[i] && i < sizeof(suf) - 1; i++)
		suf[i] = (char)tolower((unsigned char)end[i]);
	if (end[i])
		return -1;
	suf[i] = '\0';
	if (!units) {
		if (suf[0])
			return -1;
		*out = n;
		return 0;
	}
	for (const struct unit *u = units; u->suffix; u++) {
		if (strcmp(u->suffix, suf) == 0) {
			if (n != 0 && (n > INT64_MAX / u->mult || n < INT64_MIN / u->mult))
				return -1;
			*out = n * u->mult;
			return 0;
		}
	}
	return -1;
}

static int parse_bool(const char *v, int64_t *out)
{
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

static int set_one(const cfg_setting_t *s, void *obj, const char *value, char *err, size_t errlen)
{
	char *field = (char *)obj + s->offset;
	if (!value)
		value = "";
	if (s->type == CFG_T_STR) {
		char *dup = strdup(value);
		if (!dup) {
			snprintf(err, errlen, "%s: out of memory", s->name);
			return -1;
		}
		free(*(char **)field);
		*(char **)field = dup;
		return 0;
	}
	int64_t n = 0;
	int rc;
	if (value[0] == '\0')
		rc = 0;
	else if (s->type == CFG_T_BOOL)
		rc = parse_bool(value, &n);
	else if (s->type == CFG_T_BYTES)
		rc = parse_number(value, byte_units, &n);
	else if (s->type == CFG_T_MS)
		rc = parse_number(value, ms_units, &n);
	else
		rc = parse_number(value, NULL, &n);
	if (rc != 0) {
		snprintf(err, errlen, "%s: '%.64s' is not a valid %s", s->name, value,
			 cfg_type_name(s->type));
		return -1;
	}
	if (s->min != s->max && (n < s->min || n > s->max)) {
		snprintf(err, errlen, "%s: %" PRId64 " is outside %" PRId64 "..%" PRId64, s->name,
			 n, s->min, s->max);
		return -1;
	}
	*(int64_t *)field = n;
	return 0;
}

int cfg_defaults(const cfg_setting_t *tab, void *obj, char *err, size_t errlen)
{
	for (const cfg_setting_t *s = tab; s->name; s++)
		if (set_one(s, obj, s->def, err, errlen) != 0)
			return -1;
	return 0;
}

int cfg_set(const cfg_setting_t *tab, void *obj, const char *name, const char *value, char *err,
	    size_t errlen)
{
	const cfg_setting_t *s = find(tab, name);
	if (!s) {
		snprintf(err, errlen, "unknown setting '%.64s'", name);
		return -1;
	}
	return set_one(s, obj, value, err, errlen);
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

int cfg_parse_text(const cfg_setting_t *tab, void *obj, const char *text, size_t len,
		   const char *origin, char *err, size_t errlen)
{
	size_t pos = 0;
	int lineno = 0;
	char line[CFG_LINE_MAX];
	while (pos < len) {
		size_t end = pos;
		while (end < len && text[end] != '\n')
			end++;
		lineno++;
		size_t n = end - pos;
		if (n >= sizeof(line)) {
			snprintf(err, errlen, "%s:%d: line longer than %d bytes", origin, lineno,
				 CFG_LINE_MAX - 1);
			return -1;
		}
		memcpy(line, text + pos, n);
		line[n] = '\0';
		pos = end + 1;
		if (memchr(line, '\0', n)) {
			snprintf(err, errlen, "%s:%d: NUL byte", origin, lineno);
			return -1;
		}
		char *l = trim(line);
		if (*l == '\0' || *l == '#')
			continue;
		char *eq = strchr(l, '=');
		if (!eq) {
			snprintf(err, errlen, "%s:%d: expected 'name = value'", origin, lineno);
			return -1;
		}
		*eq = '\0';
		char *key = trim(l);
		char *val = trim(eq + 1);
		size_t vl = strlen(val);
		if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
			val[vl - 1] = '\0';
			val++;
		}
		char sub[256];
		if (cfg_set(tab, obj, key, val, sub, sizeof(sub)) != 0) {
			snprintf(err, errlen, "%s:%d: %s", origin, lineno, sub);
			return -1;
		}
	}
	return 0;
}

int cfg_load_file(const cfg_setting_t *tab, void *obj, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	char *buf = malloc(CFG_FILE_MAX_BYTES + 1);
	if (!buf) {
		fclose(f);
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	size_t n = fread(buf, 1, CFG_FILE_MAX_BYTES + 1, f);
	int bad = ferror(f);
	fclose(f);
	int rc = -1;
	if (bad)
		snprintf(err, errlen, "%s: read error", path);
	else if (n > CFG_FILE_MAX_BYTES)
		snprintf(err, errlen, "%s: larger than %d bytes", path, CFG_FILE_MAX_BYTES);
	else
		rc = cfg_parse_text(tab, obj, buf, n, path, err, errlen);
	free(buf);
	return rc;
}

static void format_value(const cfg_setting_t *s, const void *obj, char *out, size_t n)
{
	const char *field = (const char *)obj + s->offset;
	if (s->type == CFG_T_STR) {
		const char *v = *(char *const *)field;
		snprintf(out, n, "\"%s\"", v ? v : "");
		return;
	}
	int64_t v = *(const int64_t *)field;
	if (s->type == CFG_T_BOOL)
		snprintf(out, n, "%s", v ? "true" : "false");
	else if (s->type == CFG_T_MS)
		snprintf(out, n, "%" PRId64 "ms", v);
	else
		snprintf(out, n, "%" PRId64, v);
}

void cfg_print(const cfg_setting_t *tab, const void *obj, FILE *out)
{
	for (const cfg_setting_t *s = tab; s->name; s++) {
		char v[1024];
		format_value(s, obj, v, sizeof(v));
		fprintf(out, "%s = %s\n", s->name, v);
	}
}

void cfg_usage(const cfg_setting_t *tab, FILE *out)
{
	for (const cfg_setting_t *s = tab; s->name; s++) {
		char flag[128];
		snprintf(flag, sizeof(flag), "--%s", s->name);
		for (char *p = flag + 2; *p; p++)
			if (*p == '_')
				*p = '-';
		fprintf(out, "  %-28s %-8s %s (default: %s)%s\n", flag, cfg_type_name(s->type),
			s->help, s->def && s->def[0] ? s->def : "none",
			s->reloadable ? " [reload]" : "");
	}
}

void cfg_free(const cfg_setting_t *tab, void *obj)
{
	for (const cfg_setting_t *s = tab; s->name; s++) {
		if (s->type == CFG_T_STR) {
			char **p = (char **)((char *)obj + s->offset);
			free(*p);
			*p = NULL;
		}
	}
}

void cfg_apply_reload(const cfg_setting_t *tab, void *dst, const void *src)
{
	for (const cfg_setting_t *s = tab; s->name; s++) {
		char a[1024], b[1024];
		format_value(s, dst, a, sizeof(a));
		format_value(s, src, b, sizeof(b));
		if (strcmp(a, b) == 0)
			continue;
		if (!s->reloadable) {
			log_warn("config: %s changed; it takes effect after a restart", s->name);
			continue;
		}
		char err[256];
		const char *field = (const char *)src + s->offset;
		if (s->type == CFG_T_STR) {
			if (set_one(s, dst, *(char *const *)field, err, sizeof(err)) != 0)
				log_warn("config: %s", err);
		} else {
			/* other threads read these with __atomic_load_n */
			__atomic_store_n((int64_t *)((char *)dst + s->offset),
					 *(const int64_t *)field, __ATOMIC_RELAXED);
		}
		log_info("config: %s = %s (reloaded)", s->name, b);
	}
}

struct option *cfg_long_options(const cfg_setting_t *tab, const struct option *extra)
{
	size_t ne = 0, nt = 0;
	while (extra && extra[ne].name)
		ne++;
	while (tab[nt].name)
		nt++;
	struct option *o = calloc(ne + nt + 1, sizeof(*o));
	if (!o)
		return NULL;
	for (size_t i = 0; i < ne; i++)
		o[i] = extra[i];
	for (size_t i = 0; i < nt; i++) {
		char *name = strdup(tab[i].name);
		if (!name) {
			cfg_long_options_free(o, extra);
			return NULL;
		}
		for (char *p = name; *p; p++)
			if (*p == '_')
				*p = '-';
		o[ne + i].name = name;
		o[ne + i].has_arg = required_argument;
		o[ne + i].val = CFG_OPT_BASE + (int)i;
	}
	return o;
}

void cfg_long_options_free(struct option *opts, const struct option *extra)
{
	if (!opts)
		return;
	size_t ne = 0;
	while (extra && extra[ne].name)
		ne++;
	for (struct option *o = opts + ne; o->name; o++)
		free((char *)o->name);
	free(opts);
}

int cfg_cli_flag(cfg_cli_t *cli, int opt, const char *value)
{
	struct cfg_flag *f = realloc(cli->flags, (cli->n_flags + 1) * sizeof(*f));
	if (!f)
		return -1;
	cli->flags = f;
	f[cli->n_flags].idx = opt - CFG_OPT_BASE;
	f[cli->n_flags].value = value;
	cli->n_flags++;
	return 0;
}

int cfg_cli_load(const cfg_setting_t *tab, const cfg_cli_t *cli, void *obj, char *err,
		 size_t errlen)
{
	if (cfg_defaults(tab, obj, err, errlen) != 0)
		return -1;
	if (cli->config_file && cfg_load_file(tab, obj, cli->config_file, err, errlen) != 0)
		return -1;
	for (size_t i = 0; i < cli->n_flags; i++)
		if (cfg_set(tab, obj, tab[cli->flags[i].idx].name, cli->flags[i].value, err,
			    errlen) != 0)
			return -1;
	return 0;
}

void cfg_cli_free(cfg_cli_t *cli)
{
	free(cli->flags);
	cli->flags = NULL;
	cli->n_flags = 0;
}

bool cfg_list_has(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p = list;
	while (n && p && *p) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t l = strcspn(p, ",");
		size_t t = l;
		while (t && p[t - 1] == ' ')
			t--;
		if (t == n && strncmp(p, name, n) == 0)
			return true;
		p += l;
	}
	return false;
}
