// SPDX-License-Identifier: Apache-2.0
/*
 * OSV advisory parser (see osv.h). The strings of an advisory point into
 * its JSON document, which it keeps, or into strings it owns; osv_free
 * releases both.
 */
#include "vuln/osv.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "vuln/version.h"

#define MAX_EVENTS 1024
#define MAX_ID_LEN 128

typedef struct {
	osv_advisory_t pub; /* first: osv_free casts back */
	json_t *root;
	char **owned;
	size_t n_owned, cap_owned;
	size_t cap_ranges;
} adv_t;

typedef struct {
	adv_t *a;
	char *err;
	size_t errlen;
} parse_t;

/* Set the error "FIELD: message"; return -1. */
__attribute__((format(printf, 3, 4))) static int fail(parse_t *p, const char *field,
						      const char *fmt, ...)
{
	int n = snprintf(p->err, p->errlen, "%s: ", field);
	if (n < 0 || (size_t)n >= p->errlen)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static const char *own(adv_t *a, const char *s, size_t n)
{
	if (a->n_owned == a->cap_owned) {
		size_t cap = a->cap_owned ? 2 * a->cap_owned : 8;
		char **o = realloc(a->owned, cap * sizeof(*o));
		if (!o)
			return NULL;
		a->owned = o;
		a->cap_owned = cap;
	}
	char *c = malloc(n + 1);
	if (!c)
		return NULL;
	memcpy(c, s, n);
	c[n] = '\0';
	a->owned[a->n_owned++] = c;
	return c;
}

/* ---- small checks -------------------------------------------------------- */

static bool digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return n > 0;
}

/* RFC 3339: 2024-01-31T12:00:00[.123]Z or with an offset. */
static bool rfc3339(const char *s)
{
	size_t n = strlen(s);
	if (n < 20 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
	    !digits(s + 8, 2) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2) ||
	    s[13] != ':' || !digits(s + 14, 2) || s[16] != ':' || !digits(s + 17, 2))
		return false;
	size_t i = 19;
	if (s[i] == '.') {
		size_t d = ++i;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == d || i - d > 9)
			return false;
	}
	if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == n)
		return true;
	return (s[i] == '+' || s[i] == '-') && n - i == 6 && digits(s + i + 1, 2) &&
	       s[i + 3] == ':' && digits(s + i + 4, 2);
}

/* An identifier: printable ASCII without spaces, 1..128 bytes. */
static bool id_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > MAX_ID_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

/* The string at key of obj, NULL if absent; -1 if present and no string. */
static int opt_string(parse_t *p, json_t *obj, const char *key, const char *path, const char **out)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		char f[256];
		snprintf(f, sizeof(f), "%s%s", path, key);
		return fail(p, f, "is not a string");
	}
	*out = json_string_value(v);
	return 0;
}

/* ---- ecosystems ----------------------------------------------------------- */

typedef struct {
	version_eco_t scheme;
	const char *distro;
	const char *release;
} eco_t;

/* "Debian:12", "Ubuntu:[Word:...]22.04[:LTS]", "Alpine:v3.19". */
static bool ecosystem_parse(adv_t *a, const char *e, eco_t *out)
{
	const char *rel = NULL;
	size_t rn = 0;
	if (strncmp(e, "Debian:", 7) == 0) {
		rel = e + 7;
		rn = strlen(rel);
		if (!digits(rel, rn) || rn > 4)
			return false;
		out->distro = "debian";
	} else if (strncmp(e, "Alpine:v", 8) == 0) {
		rel = e + 8;
		rn = strlen(rel);
		const char *dot = strchr(rel, '.');
		if (!dot || !digits(rel, (size_t)(dot - rel)) ||
		    !digits(dot + 1, strlen(dot + 1)) || rn > 9)
			return false;
		out->distro = "alpine";
	} else if (strncmp(e, "Ubuntu:", 7) == 0) {
		/* the release is the one field of the form NN.NN */
		const char *f = e + 7;
		while (*f) {
			size_t fl = strcspn(f, ":");
			const char *dot = memchr(f, '.', fl);
			if (dot && digits(f, (size_t)(dot - f)) &&
			    digits(dot + 1, fl - (size_t)(dot - f) - 1) && fl <= 9) {
				if (rel)
					return false;
				rel = f;
				rn = fl;
			} else {
				for (size_t i = 0; i < fl; i++)
					if (!((f[i] >= 'A' && f[i] <= 'Z') ||
					      (f[i] >= 'a' && f[i] <= 'z') || f[i] == '-'))
						return false;
				if (fl == 0)
					return false;
			}
			f += fl + (f[fl] == ':');
			if (f[-1] == ':' && !*f)
				return false;
		}
		if (!rel)
			return false;
		out->distro = "ubuntu";
	} else {
		return false;
	}
	out->scheme = strcmp(out->distro, "alpine") == 0 ? VERSION_APK : VERSION_DPKG;
	out->release = own(a, rel, rn);
	return out->release != NULL;
}

/* ---- severity ------------------------------------------------------------ */

static osv_severity_t severity_word(const char *s)
{
	static const struct {
		const char *word;
		osv_severity_t sev;
	} words[] = {
		{"unimportant", OSV_SEV_NEGLIGIBLE},
		{"negligible", OSV_SEV_NEGLIGIBLE},
		{"low", OSV_SEV_LOW},
		{"medium", OSV_SEV_MEDIUM},
		{"moderate", OSV_SEV_MEDIUM},
		{"high", OSV_SEV_HIGH},
		{"important", OSV_SEV_HIGH},
		{"critical", OSV_SEV_CRITICAL},
	};
	size_t n = 0;
	while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z'))
		n++;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strlen(words[i].word) == n && strncasecmp(s, words[i].word, n) == 0)
			return words[i].sev;
	return OSV_SEV_UNKNOWN;
}

/* The highest severity named in obj's database_specific and
 * ecosystem_specific: Debian's urgency, Ubuntu's priority, a severity. */
static osv_severity_t specific_severity(json_t *obj)
{
	static const char *const holders[] = {"database_specific", "ecosystem_specific"};
	static const char *const keys[] = {"urgency", "priority", "severity"};
	osv_severity_t best = OSV_SEV_UNKNOWN;
	for (size_t h = 0; h < 2; h++) {
		json_t *o = json_object_get(obj, holders[h]);
		for (size_t k = 0; json_is_object(o) && k < 3; k++) {
			json_t *v = json_object_get(o, keys[k]);
			osv_severity_t s = json_is_string(v) ? severity_word(json_string_value(v))
							     : OSV_SEV_UNKNOWN;
			if (s > best)
				best = s;
		}
	}
	return best;
}

/* The advisory's own severity: its severity[] entries of type "Ubuntu"
 * (a priority word), then its specific fields. */
static int top_severity(parse_t *p, json_t *root, osv_severity_t *out)
{
	*out = specific_severity(root);
	json_t *sev = json_object_get(root, "severity");
	if (!sev || json_is_null(sev))
		return 0;
	if (!json_is_array(sev))
		return fail(p, "severity", "is not an array");
	size_t i;
	json_t *e;
	json_array_foreach(sev, i, e)
	{
		json_t *type = json_object_get(e, "type"), *score = json_object_get(e, "score");
		if (!json_is_string(type) || !json_is_string(score)) {
			char f[64];
			snprintf(f, sizeof(f), "severity[%zu]", i);
			return fail(p, f, "needs type and score strings");
		}
		if (strcmp(json_string_value(type), "Ubuntu") == 0) {
			osv_severity_t s = severity_word(json_string_value(score));
			if (s > *out)
				*out = s;
		}
	}
	return 0;
}

/* ---- ranges -------------------------------------------------------------- */

typedef struct {
	const char *kind; /* "introduced", "fixed", "last_affected" */
	const char *version;
} event_t;

static osv_range_t *add_range(adv_t *a)
{
	osv_advisory_t *pub = &a->pub;
	if (pub->n_ranges == a->cap_ranges) {
		size_t cap = a->cap_ranges ? 2 * a->cap_ranges : 4;
		osv_range_t *r = realloc(pub->ranges, cap * sizeof(*r));
		if (!r)
			return NULL;
		pub->ranges = r;
		a->cap_ranges = cap;
	}
	osv_range_t *r = &pub->ranges[pub->n_ranges++];
	memset(r, 0, sizeof(*r));
	return r;
}

static bool lowest(const event_t *e)
{
	return strcmp(e->kind, "introduced") == 0 && strcmp(e->version, "0") == 0;
}

/* Sort events by version (introduced "0" first), stably. */
static void sort_events(event_t *ev, size_t n, version_eco_t scheme)
{
	for (size_t i = 1; i < n; i++) {
		event_t cur = ev[i];
		size_t j = i;
		while (j > 0) {
			int c = 0;
			if (lowest(&cur))
				c = lowest(&ev[j - 1]) ? 0 : -1;
			else if (!lowest(&ev[j - 1]) &&
				 version_cmp(scheme, cur.version, ev[j - 1].version, &c) !=
					 VERSION_OK)
				c = 0;
			if (c >= 0)
				break;
			ev[j] = ev[j - 1];
			j--;
		}
		ev[j] = cur;
	}
}

/* Read the events of an ECOSYSTEM range into ev (checked versions). */
static int read_events(parse_t *p, json_t *events, const char *path, version_eco_t scheme,
		       event_t *ev, size_t *n)
{
	char f[256];
	snprintf(f, sizeof(f), "%s.events", path);
	if (!json_is_array(events) || json_array_size(events) == 0)
		return fail(p, f, "is not a non-empty array");
	if (json_array_size(events) > MAX_EVENTS)
		return fail(p, f, "has more than %d events", MAX_EVENTS);
	size_t i;
	json_t *e;
	*n = 0;
	json_array_foreach(events, i, e)
	{
		snprintf(f, sizeof(f), "%s.events[%zu]", path, i);
		const char *key;
		json_t *v;
		if (!json_is_object(e) || json_object_size(e) != 1)
			return fail(p, f, "is not an object of one event");
		json_object_foreach(e, key, v)
		{
			snprintf(f, sizeof(f), "%s.events[%zu].%s", path, i, key);
			if (strcmp(key, "limit") == 0)
				continue;
			if (strcmp(key, "introduced") && strcmp(key, "fixed") &&
			    strcmp(key, "last_affected"))
				return fail(p, f, "is no OSV event");
			if (!json_is_string(v))
				return fail(p, f, "is not a string");
			const char *ver = json_string_value(v), *why = NULL;
			if (!(strcmp(key, "introduced") == 0 && strcmp(ver, "0") == 0) &&
			    (why = version_check(scheme, ver)))
				return fail(p, f, "version '%.64s' does not parse by %s rules: %s",
					    ver, version_eco_name(scheme), why);
			ev[(*n)++] = (event_t){key, ver};
		}
	}
	return 0;
}

/* Turn one ECOSYSTEM range into intervals: each introduced opens one, the
 * next fixed or last_affected closes it; one left open has no fix. */
static int parse_range(parse_t *p, json_t *range, const char *path, const osv_range_t *proto,
		       version_eco_t scheme)
{
	event_t *ev = malloc(MAX_EVENTS * sizeof(*ev));
	size_t n = 0;
	if (!ev)
		return fail(p, path, "out of memory");
	int rc = read_events(p, json_object_get(range, "events"), path, scheme, ev, &n);
	if (rc == 0)
		sort_events(ev, n, scheme);
	const char *open = NULL;
	bool is_open = false;
	for (size_t i = 0; rc == 0 && i <= n; i++) {
		bool intro = i < n && strcmp(ev[i].kind, "introduced") == 0;
		if (i < n && intro) {
			if (!is_open)
				open = strcmp(ev[i].version, "0") == 0 ? NULL : ev[i].version;
			is_open = true;
			continue;
		}
		if (!is_open)
			continue;
		osv_range_t *r = add_range(p->a);
		if (!r) {
			rc = fail(p, path, "out of memory");
			break;
		}
		*r = *proto;
		r->introduced = open;
		if (i < n && strcmp(ev[i].kind, "fixed") == 0)
			r->fixed = ev[i].version;
		else if (i < n)
			r->last_affected = ev[i].version;
		is_open = false;
	}
	free(ev);
	return rc;
}

/* ---- affected entries ---------------------------------------------------- */

static int add_ecosystem(adv_t *a, const char *eco)
{
	osv_advisory_t *pub = &a->pub;
	for (size_t i = 0; i < pub->n_ecosystems; i++)
		if (strcmp(pub->ecosystems[i], eco) == 0)
			return 0;
	const char **e = realloc(pub->ecosystems, (pub->n_ecosystems + 1) * sizeof(*e));
	if (!e)
		return -1;
	pub->ecosystems = e;
	e[pub->n_ecosystems++] = eco;
	return 0;
}

/* The listed versions of an entry without an ECOSYSTEM range: one exact
 * interval [v, v] each. */
static int parse_versions(parse_t *p, json_t *versions, const char *path, const osv_range_t *proto,
			  version_eco_t scheme, size_t *added)
{
	char f[256];
	size_t i;
	json_t *v;
	*added = 0;
	json_array_foreach(versions, i, v)
	{
		snprintf(f, sizeof(f), "%s.versions[%zu]", path, i);
		const char *why = json_is_string(v) ? version_check(scheme, json_string_value(v))
						    : "is not a string";
		if (why)
			return fail(p, f, "version '%.64s' does not parse by %s rules: %s",
				    json_is_string(v) ? json_string_value(v) : "",
				    version_eco_name(scheme), why);
		osv_range_t *r = add_range(p->a);
		if (!r)
			return fail(p, f, "out of memory");
		*r = *proto;
		r->introduced = r->last_affected = json_string_value(v);
		(*added)++;
	}
	return 0;
}

static int parse_affected(parse_t *p, json_t *entry, size_t idx, osv_severity_t top)
{
	char path[64], f[256];
	snprintf(path, sizeof(path), "affected[%zu]", idx);
	if (!json_is_object(entry))
		return fail(p, path, "is not an object");
	json_t *pkg = json_object_get(entry, "package");
	if (!pkg || json_is_null(pkg)) {
		p->a->pub.ignored[OSV_WHY_NO_PACKAGE]++;
		return 0;
	}
	snprintf(f, sizeof(f), "%s.package.", path);
	const char *eco = NULL, *name = NULL;
	if (!json_is_object(pkg))
		return fail(p, f, "is not an object");
	if (opt_string(p, pkg, "ecosystem", f, &eco) || opt_string(p, pkg, "name", f, &name))
		return -1;
	snprintf(f, sizeof(f), "%s.package.%s", path, !eco ? "ecosystem" : "name");
	if (!eco || !name || !*name || !id_ok(name))
		return fail(p, f, "is missing or not a package name");
	snprintf(f, sizeof(f), "%s.package.ecosystem", path);
	eco_t e;
	if (!ecosystem_parse(p->a, eco, &e))
		return fail(p, f,
			    "unknown ecosystem '%.64s' (Vigil reads Debian:N, Ubuntu:NN.NN[:LTS] "
			    "and Alpine:vN.N)",
			    eco);
	osv_severity_t sev = specific_severity(entry);
	osv_range_t proto = {eco, e.distro, e.release, name, NULL, NULL, NULL, sev ? sev : top};
	if (sev > p->a->pub.severity)
		p->a->pub.severity = sev;
	size_t before = p->a->pub.n_ranges, had_range = 0;
	json_t *ranges = json_object_get(entry, "ranges"), *range;
	if (ranges && !json_is_array(ranges))
		return fail(p, path, "ranges is not an array");
	size_t i;
	json_array_foreach(ranges, i, range)
	{
		char rp[96];
		snprintf(rp, sizeof(rp), "%s.ranges[%zu]", path, i);
		json_t *type = json_object_get(range, "type");
		if (!json_is_string(type))
			return fail(p, rp, "has no type");
		if (strcmp(json_string_value(type), "ECOSYSTEM") != 0)
			continue;
		had_range++;
		if (parse_range(p, range, rp, &proto, e.scheme) != 0)
			return -1;
	}
	json_t *versions = json_object_get(entry, "versions");
	if (versions && !json_is_array(versions))
		return fail(p, path, "versions is not an array");
	size_t listed = 0;
	if (!had_range && versions && parse_versions(p, versions, path, &proto, e.scheme, &listed))
		return -1;
	if (!had_range && !listed)
		p->a->pub.ignored[OSV_WHY_NO_RANGE]++;
	else if (p->a->pub.n_ranges > before && add_ecosystem(p->a, eco) != 0)
		return fail(p, path, "out of memory");
	return 0;
}

/* ---- the document -------------------------------------------------------- */

static int parse_aliases(parse_t *p, json_t *root)
{
	static const char *const keys[] = {"aliases", "upstream"};
	osv_advisory_t *pub = &p->a->pub;
	size_t total = 0;
	for (size_t k = 0; k < 2; k++) {
		json_t *arr = json_object_get(root, keys[k]);
		if (arr && !json_is_null(arr) && !json_is_array(arr))
			return fail(p, keys[k], "is not an array");
		total += json_array_size(arr);
	}
	pub->aliases = calloc(total ? total : 1, sizeof(*pub->aliases));
	if (!pub->aliases)
		return fail(p, "aliases", "out of memory");
	for (size_t k = 0; k < 2; k++) {
		size_t i;
		json_t *v;
		json_array_foreach(json_object_get(root, keys[k]), i, v)
		{
			char f[64];
			snprintf(f, sizeof(f), "%s[%zu]", keys[k], i);
			if (!json_is_string(v) || !id_ok(json_string_value(v)))
				return fail(p, f, "is not an identifier");
			bool dup = false;
			for (size_t j = 0; j < pub->n_aliases; j++)
				dup = dup || strcmp(pub->aliases[j], json_string_value(v)) == 0;
			if (!dup)
				pub->aliases[pub->n_aliases++] = json_string_value(v);
		}
	}
	return 0;
}

static int parse_top(parse_t *p, json_t *root)
{
	osv_advisory_t *pub = &p->a->pub;
	if (opt_string(p, root, "id", "", &pub->id) ||
	    opt_string(p, root, "modified", "", &pub->modified) ||
	    opt_string(p, root, "published", "", &pub->published) ||
	    opt_string(p, root, "withdrawn", "", &pub->withdrawn) ||
	    opt_string(p, root, "summary", "", &pub->summary))
		return -1;
	if (!pub->id || !id_ok(pub->id))
		return fail(p, "id", "is missing or not an identifier (1 to %d printable bytes)",
			    MAX_ID_LEN);
	if (!pub->modified)
		return fail(p, "modified", "is missing");
	const char *times[] = {pub->modified, pub->published, pub->withdrawn};
	const char *names[] = {"modified", "published", "withdrawn"};
	for (size_t i = 0; i < 3; i++)
		if (times[i] && !rfc3339(times[i]))
			return fail(p, names[i], "'%.40s' is not an RFC 3339 time", times[i]);
	if (!pub->summary)
		pub->summary = "";
	if (parse_aliases(p, root) != 0)
		return -1;
	osv_severity_t top;
	if (top_severity(p, root, &top) != 0)
		return -1;
	pub->severity = top;
	json_t *aff = json_object_get(root, "affected");
	if (aff && !json_is_null(aff) && !json_is_array(aff))
		return fail(p, "affected", "is not an array");
	size_t i;
	json_t *e;
	json_array_foreach(aff, i, e)
	{
		if (parse_affected(p, e, i, top) != 0)
			return -1;
	}
	if (json_array_size(aff) == 0)
		pub->skipped = OSV_WHY_NO_AFFECTED;
	else if (pub->n_ranges == 0)
		pub->skipped = OSV_WHY_NOTHING_LEFT;
	return 0;
}

/* SHA-256 of the document with sorted keys and no spaces, so a file
 * formatted anew is not a change. */
static int content_hash(json_t *root, char out[65])
{
	char *canon = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
	unsigned char md[32];
	unsigned int mdlen = 0;
	int ok = canon && EVP_Digest(canon, strlen(canon), md, &mdlen, EVP_sha256(), NULL) == 1;
	free(canon);
	if (!ok || mdlen != 32)
		return -1;
	for (size_t i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

osv_advisory_t *osv_parse(const char *buf, size_t len, char *err, size_t errlen)
{
	if (len > OSV_MAX_BYTES) {
		snprintf(err, errlen,
			 "(document): %zu bytes, more than the %d bytes an advisory "
			 "may have",
			 len, OSV_MAX_BYTES);
		return NULL;
	}
	json_error_t jerr;
	json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, errlen, "(document): malformed JSON at line %d column %d: %s",
			 jerr.line, jerr.column, jerr.text);
		return NULL;
	}
	adv_t *a = calloc(1, sizeof(*a));
	if (!a) {
		json_decref(root);
		snprintf(err, errlen, "(document): out of memory");
		return NULL;
	}
	a->root = root;
	a->pub.raw_size = len;
	parse_t p = {a, err, errlen};
	int rc = json_is_object(root) ? parse_top(&p, root)
				      : fail(&p, "(document)", "is not a JSON object");
	if (rc == 0 && content_hash(root, a->pub.sha256) != 0)
		rc = fail(&p, "(document)", "cannot hash");
	if (rc != 0) {
		osv_free(&a->pub);
		return NULL;
	}
	return &a->pub;
}

void osv_free(osv_advisory_t *adv)
{
	if (!adv)
		return;
	adv_t *a = (adv_t *)adv;
	for (size_t i = 0; i < a->n_owned; i++)
		free(a->owned[i]);
	free(a->owned);
	free(adv->aliases);
	free(adv->ecosystems);
	free(adv->ranges);
	json_decref(a->root);
	free(a);
}

const char *osv_severity_name(osv_severity_t sev)
{
	static const char *const names[] = {"unknown", "negligible", "low",
					    "medium",  "high",	     "critical"};
	return (unsigned)sev < 6 ? names[sev] : "unknown";
}

const char *osv_why_name(osv_why_t why)
{
	switch (why) {
	case OSV_WHY_NONE:
	case OSV_WHY_COUNT:
		break;
	case OSV_WHY_NO_AFFECTED:
		return "no affected packages";
	case OSV_WHY_NO_PACKAGE:
		return "no package";
	case OSV_WHY_NO_RANGE:
		return "no ECOSYSTEM range or versions";
	case OSV_WHY_NOTHING_LEFT:
		return "no affected package with an ECOSYSTEM range or versions";
	}
	return "";
}
