// SPDX-License-Identifier: Apache-2.0
/* Alert payloads: OCSF JSON, RFC 5424/5425 syslog frames, and the parsers
 * of webhook URLs, host:port and HTTP status lines (see payload.h). */
#include "alert/payload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#define OCSF_VERSION "1.1.0"
#define OCSF_CLASS 2004
/* RFC 5424 facility 10: security/authorization messages (authpriv). */
#define SYSLOG_FACILITY 10
/* RFC 5612's enterprise number for documentation: our SD-ID's suffix. */
#define SD_ID "vigil@32473"
#define SD_VALUE_MAX 256

static const char *const severity_names[] = {"Unknown", "Informational", "Low",
					     "Medium",	"High",		 "Critical"};

static int clamp_severity(int s)
{
	return s >= 1 && s <= 5 ? s : 0;
}

int alert_ocsf_activity(const char *action)
{
	if (!action)
		return 0;
	if (!strcmp(action, "opened") || !strcmp(action, "reopened"))
		return 1;
	if (!strcmp(action, "update"))
		return 2;
	if (!strcmp(action, "resolved"))
		return 3;
	return 0;
}

/* --- escaping ----------------------------------------------------------- */

/* Decode the UTF-8 character at s (n bytes left). Return its length and
 * set *cp, or 0 if the bytes are not valid UTF-8. */
static size_t utf8_decode(const unsigned char *s, size_t n, unsigned *cp)
{
	unsigned c = s[0];
	size_t len;
	unsigned lo = 0x80, hi = 0xBF;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
		*cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		*cp = c & 0x0F;
		if (c == 0xE0)
			lo = 0xA0;
		if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		*cp = c & 0x07;
		if (c == 0xF0)
			lo = 0x90;
		if (c == 0xF4)
			hi = 0x8F;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		unsigned b = s[i];
		if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xBF))
			return 0;
		*cp = (*cp << 6) | (b & 0x3F);
	}
	return len;
}

/* Characters that change how a line reads without being seen. */
static int invisible(unsigned cp)
{
	return (cp >= 0x80 && cp <= 0x9F) || cp == 0x061C || cp == 0x200E || cp == 0x200F ||
	       (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0xFEFF;
}

size_t alert_escape(const char *s, const char *extra, char *out, size_t cap)
{
	size_t o = 0;
	if (cap == 0)
		return 0;
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)p);
	while (n > 0) {
		char tmp[16];
		size_t tl, adv = 1;
		unsigned cp;
		size_t cl = utf8_decode(p, n, &cp);
		if (cl == 0) {
			tl = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02X", p[0]);
		} else if (cp == '\\' || (extra && cp < 0x80 && cp && strchr(extra, (int)cp))) {
			tmp[0] = '\\';
			tmp[1] = (char)cp;
			tl = 2;
		} else if (cp < 0x20 || cp == 0x7F) {
			tl = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02X", cp);
		} else if (invisible(cp)) {
			tl = (size_t)snprintf(tmp, sizeof(tmp), "\\u%04X", cp);
			adv = cl;
		} else {
			memcpy(tmp, p, cl);
			tl = adv = cl;
		}
		if (o + tl >= cap)
			break;
		memcpy(out + o, tmp, tl);
		o += tl;
		p += adv;
		n -= adv;
	}
	out[o] = '\0';
	return o;
}

/* --- OCSF JSON -------------------------------------------------------------- */

/* A JSON string of s, each byte that is not part of valid UTF-8 replaced
 * by U+FFFD; NULL for NULL. */
static json_t *jstr(const char *s)
{
	if (!s)
		return NULL;
	json_t *j = json_string(s);
	if (j)
		return j;
	size_t n = strlen(s), o = 0;
	char *copy = malloc(n * 3 + 1);
	if (!copy)
		return NULL;
	const unsigned char *p = (const unsigned char *)s;
	while (n > 0) {
		unsigned cp;
		size_t cl = utf8_decode(p, n, &cp);
		if (cl == 0) {
			memcpy(copy + o, "\xEF\xBF\xBD", 3);
			o += 3;
			cl = 1;
		} else {
			memcpy(copy + o, p, cl);
			o += cl;
		}
		p += cl;
		n -= cl;
	}
	j = json_stringn(copy, o);
	free(copy);
	return j;
}

/* The container's labels as OCSF wants them: "key=value" strings. */
static json_t *labels_array(const char *labels_json)
{
	if (!labels_json)
		return NULL;
	json_t *obj = json_loads(labels_json, JSON_DECODE_ANY, NULL);
	if (!json_is_object(obj)) {
		json_decref(obj);
		return NULL;
	}
	json_t *arr = json_array();
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v)
	{
		const char *val = json_is_string(v) ? json_string_value(v) : "";
		size_t len = strlen(k) + strlen(val) + 2;
		char *kv = malloc(len);
		if (kv) {
			snprintf(kv, len, "%s=%s", k, val);
			json_array_append_new(arr, jstr(kv));
			free(kv);
		}
	}
	json_decref(obj);
	return arr;
}

static json_t *container_obj(const alert_item_t *it)
{
	json_t *image =
		json_pack("{s:o*, s:o*}", "name", jstr(it->image), "uid", jstr(it->image_digest));
	return json_pack("{s:o*, s:o*, s:o*}", "uid", jstr(it->container_id), "name",
			 jstr(it->container_name), "image", image);
}

static json_t *vigil_extra(const alert_item_t *it)
{
	json_t *details =
		it->details_json ? json_loads(it->details_json, JSON_DECODE_ANY, NULL) : NULL;
	char outbox[32];
	snprintf(outbox, sizeof(outbox), "%lld", (long long)it->outbox_id);
	return json_pack("{s:{s:o*, s:o*, s:o*, s:o*, s:o*, s:o*, s:o*, s:o*, s:o*, s:s}}", "vigil",
			 "action", jstr(it->action), "rule", jstr(it->rule), "key", jstr(it->key),
			 "kind", jstr(it->kind), "state", jstr(it->state), "control",
			 jstr(it->control), "resolved_reason", jstr(it->resolved_reason), "agent",
			 jstr(it->agent), "details", details, "outbox_id", outbox);
}

char *alert_ocsf_json(const alert_item_t *it)
{
	int act = alert_ocsf_activity(it->action);
	static const char *const act_names[] = {"Unknown", "Create", "Update", "Close"};
	int status = act == 3 ? 4 : act == 2 ? 2 : 1; /* Resolved, In Progress, New */
	static const char *const status_names[] = {"Unknown", "New", "In Progress", "Suppressed",
						   "Resolved"};
	int sev = clamp_severity(it->severity);
	char type_name[64], finding_uid[32], event_uid[64];
	snprintf(type_name, sizeof(type_name), "Detection Finding: %s", act_names[act]);
	snprintf(finding_uid, sizeof(finding_uid), "vigil-finding-%lld", (long long)it->finding_id);
	snprintf(event_uid, sizeof(event_uid), "vigil-alert-%lld", (long long)it->outbox_id);

	json_t *analytic = json_pack("{s:o*, s:o*, s:i, s:s, s:o*}", "uid", jstr(it->rule), "name",
				     jstr(it->title ? it->title : it->rule), "type_id", 1, "type",
				     "Rule", "category", jstr(it->control));
	json_t *finfo =
		json_pack("{s:s, s:o*, s:o*, s:[o*], s:I, s:I, s:o*}", "uid", finding_uid, "title",
			  jstr(it->title ? it->title : it->rule), "desc", jstr(it->summary),
			  "types", jstr(it->kind), "first_seen_time", (json_int_t)it->first_ms,
			  "last_seen_time", (json_int_t)it->last_ms, "analytic", analytic);
	json_t *resource = json_pack("{s:o*, s:o*, s:s, s:o*}", "uid", jstr(it->container_id),
				     "name", jstr(it->container_name), "type", "Container",
				     "labels", labels_array(it->labels_json));
	json_t *root = json_pack(
		"{s:i, s:s, s:i, s:s, s:i, s:s, s:i, s:s, s:i, s:s, s:i, s:s, s:I, s:I, s:o*,"
		" s:{s:s, s:s, s:{s:s, s:s, s:s}}, s:o*, s:o*, s:[o*], s:[{s:o*}],"
		" s:{s:o*, s:o*, s:i, s:s}, s:o*}",
		"class_uid", OCSF_CLASS, "class_name", "Detection Finding", "category_uid", 2,
		"category_name", "Findings", "activity_id", act, "activity_name", act_names[act],
		"type_uid", OCSF_CLASS * 100 + act, "type_name", type_name, "severity_id", sev,
		"severity", severity_names[sev], "status_id", status, "status",
		status_names[status], "time", (json_int_t)it->time_ms, "count",
		(json_int_t)it->count, "message", jstr(it->summary), "metadata", "version",
		OCSF_VERSION, "uid", event_uid, "product", "name", "Vigil", "vendor_name", "Vigil",
		"version", VIGIL_VERSION, "finding_info", finfo, "remediation",
		it->remediation ? json_pack("{s:o*}", "desc", jstr(it->remediation)) : NULL,
		"resources", resource, "evidences", "container", container_obj(it), "device",
		"hostname", jstr(it->hostname), "uid", jstr(it->agent), "type_id", 1, "type",
		"Server", "unmapped", vigil_extra(it));
	if (!root)
		return NULL;
	char *out = json_dumps(root, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(root);
	return out;
}

/* --- RFC 5424 over RFC 5425 ------------------------------------------------- */

typedef struct {
	char *p;
	size_t len, cap;
} buf_t;

static int buf_put(buf_t *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return -1;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static int buf_str(buf_t *b, const char *s)
{
	return buf_put(b, s, strlen(s));
}

/* RFC 5424's PRINTUSASCII token (HOSTNAME): anything else becomes '_'. */
static void header_token(const char *s, char *out, size_t cap)
{
	size_t o = 0;
	for (; s && *s && o + 1 < cap; s++)
		out[o++] = (*s > 32 && *s < 127) ? *s : '_';
	if (o == 0)
		out[o++] = '-';
	out[o] = '\0';
}

static int sd_param(buf_t *b, const char *name, const char *value)
{
	char esc[SD_VALUE_MAX];
	if (!value)
		return 0;
	alert_escape(value, "\"]", esc, sizeof(esc));
	return buf_str(b, " ") || buf_str(b, name) || buf_str(b, "=\"") || buf_str(b, esc) ||
	       buf_str(b, "\"");
}

static int syslog_header(buf_t *b, const alert_item_t *it)
{
	static const int sev_map[] = {5, 6, 5, 4, 3, 2}; /* ours -> RFC 5424 severity */
	int sev = clamp_severity(it->severity);
	char ts[96] = "-", host[256], tmp[160];
	if (it->time_ms > 0) {
		time_t t = (time_t)(it->time_ms / 1000);
		struct tm tm;
		if (gmtime_r(&t, &tm))
			snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
				 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
				 tm.tm_min, tm.tm_sec, (int)(it->time_ms % 1000));
	}
	header_token(it->hostname, host, sizeof(host));
	int act = alert_ocsf_activity(it->action);
	snprintf(tmp, sizeof(tmp), "<%d>1 %s ", SYSLOG_FACILITY * 8 + sev_map[sev], ts);
	if (buf_str(b, tmp) || buf_str(b, host) || buf_str(b, " vigil - ") ||
	    buf_str(b, act ? it->action : "-") || buf_str(b, " [" SD_ID))
		return -1;
	char id[32], count[32];
	snprintf(id, sizeof(id), "%lld", (long long)it->finding_id);
	snprintf(count, sizeof(count), "%lld", (long long)it->count);
	if (sd_param(b, "finding", id) || sd_param(b, "rule", it->rule) ||
	    sd_param(b, "key", it->key) ||
	    sd_param(b, "severity", sev ? severity_names[sev] : NULL) ||
	    sd_param(b, "count", count) || sd_param(b, "agent", it->agent) ||
	    sd_param(b, "container", it->container_id) || sd_param(b, "name", it->container_name) ||
	    sd_param(b, "image", it->image) || sd_param(b, "control", it->control))
		return -1;
	return buf_str(b, "] \xEF\xBB\xBF"); /* MSG is UTF-8: BOM first */
}

char *alert_syslog_frame(const alert_item_t *it, size_t max_msg, size_t *len)
{
	buf_t b = {0};
	if (syslog_header(&b, it) != 0) {
		free(b.p);
		return NULL;
	}
	int sev = clamp_severity(it->severity);
	char text[2048];
	snprintf(text, sizeof(text),
		 "%s finding %s %s: %s; container %s (%s) on %s; seen %lld times",
		 severity_names[sev], it->rule ? it->rule : "-", it->action ? it->action : "-",
		 it->summary ? it->summary : "", it->container_name ? it->container_name : "-",
		 it->image ? it->image : "-", it->hostname ? it->hostname : "-",
		 (long long)it->count);
	/* The escape writes whole characters, so a cut never splits one. */
	size_t room = max_msg > b.len ? max_msg - b.len : 0;
	char *msg = malloc(room + 1);
	if (!msg) {
		free(b.p);
		return NULL;
	}
	size_t n = alert_escape(text, NULL, msg, room + 1);
	if (room > 0 && buf_put(&b, msg, n) != 0) {
		free(msg);
		free(b.p);
		return NULL;
	}
	free(msg);
	if (b.len > max_msg)
		b.len = max_msg; /* a header over budget: only with a tiny max_msg */
	char prefix[24];
	int pl = snprintf(prefix, sizeof(prefix), "%zu ", b.len);
	char *out = malloc((size_t)pl + b.len + 1);
	if (out) {
		memcpy(out, prefix, (size_t)pl);
		memcpy(out + pl, b.p, b.len);
		out[(size_t)pl + b.len] = '\0';
		*len = (size_t)pl + b.len;
	}
	free(b.p);
	return out;
}

/* --- parsers ------------------------------------------------------------------ */

static int parse_port(const char *s, size_t n, int *port)
{
	if (n == 0 || n > 5)
		return -1;
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*port = v;
	return 0;
}

/* Parse host[:port] of n bytes (the port may be absent when def > 0). */
static int parse_authority(const char *s, size_t n, char *host, size_t hostlen, int def, int *port)
{
	const char *h = s, *colon = NULL;
	size_t hl;
	if (n > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (!close)
			return -1;
		h = s + 1;
		hl = (size_t)(close - h);
		size_t rest = n - (size_t)(close + 1 - s);
		if (rest > 0 && close[1] != ':')
			return -1;
		colon = rest > 0 ? close + 1 : NULL;
	} else {
		colon = memrchr(s, ':', n);
		hl = colon ? (size_t)(colon - s) : n;
		if (colon && memchr(s, ':', hl))
			return -1; /* an IPv6 address needs brackets */
	}
	if (hl == 0 || hl >= hostlen)
		return -1;
	for (size_t i = 0; i < hl; i++) {
		char c = h[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == ':' || c == '_'))
			return -1;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (colon)
		return parse_port(colon + 1, n - (size_t)(colon + 1 - s), port);
	if (def <= 0)
		return -1;
	*port = def;
	return 0;
}

int alert_url_parse(const char *url, alert_url_t *out)
{
	static const char scheme[] = "https://";
	if (!url || strncasecmp(url, scheme, sizeof(scheme) - 1) != 0)
		return -1;
	const char *a = url + sizeof(scheme) - 1;
	size_t n = strcspn(a, "/?#");
	if (memchr(a, '@', n))
		return -1; /* no user info */
	if (parse_authority(a, n, out->host, sizeof(out->host), 443, &out->port) != 0)
		return -1;
	const char *path = a + n;
	size_t pl = strcspn(path, "#");
	for (size_t i = 0; i < pl; i++)
		if ((unsigned char)path[i] <= 32 || path[i] == 127)
			return -1;
	if (pl + 2 > sizeof(out->path))
		return -1;
	size_t o = 0;
	if (pl == 0 || path[0] != '/')
		out->path[o++] = '/';
	memcpy(out->path + o, path, pl);
	out->path[o + pl] = '\0';
	return 0;
}

int alert_hostport_parse(const char *s, char *host, size_t hostlen, int *port)
{
	if (!s)
		return -1;
	return parse_authority(s, strlen(s), host, hostlen, 0, port);
}

int alert_http_status(const char *buf, size_t len, int *status)
{
	static const char proto[] = "HTTP/1.";
	size_t pl = sizeof(proto) - 1;
	size_t cmp = len < pl ? len : pl;
	if (memcmp(buf, proto, cmp) != 0)
		return -1;
	/* "HTTP/1.x SSS" then a reason and CRLF */
	if (len < pl + 5)
		return 0;
	if ((buf[pl] != '0' && buf[pl] != '1') || buf[pl + 1] != ' ')
		return -1;
	int v = 0;
	for (size_t i = pl + 2; i < pl + 5; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return -1;
		v = v * 10 + (buf[i] - '0');
	}
	if (v < 100)
		return -1;
	if (len > pl + 5 && buf[pl + 5] != ' ' && buf[pl + 5] != '\r')
		return -1;
	*status = v;
	return 1;
}
