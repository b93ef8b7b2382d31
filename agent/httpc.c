// SPDX-License-Identifier: Apache-2.0
/* Incremental HTTP/1.1 response parser (see httpc.h). */
#include "httpc.h"

#include <strings.h>
#include <string.h>

enum {
	ST_HEAD = 0,
	ST_BODY_LEN,   /* Content-Length body */
	ST_BODY_EOF,   /* body until the connection closes */
	ST_CHUNK_SIZE, /* reading a chunk-size line */
	ST_CHUNK_DATA, /* inside a chunk */
	ST_CHUNK_CRLF, /* the CRLF after chunk data */
	ST_TRAILER,    /* trailer lines after the last chunk */
	ST_DONE,
	ST_ERROR,
};

void httpc_init(httpc_t *p, httpc_body_cb cb, void *arg)
{
	memset(p, 0, sizeof(*p));
	p->cb = cb;
	p->arg = arg;
}

bool httpc_head_done(const httpc_t *p)
{
	return p->state != ST_HEAD && p->state != ST_ERROR;
}

static httpc_status_t fail(httpc_t *p, const char *why)
{
	p->state = ST_ERROR;
	p->error = why;
	return HTTPC_ERROR;
}

static int parse_uint(const char *s, size_t n, int base, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	size_t start = i;
	for (; i < n; i++) {
		int d;
		char c = s[i];
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			break;
		if (v > (UINT64_MAX >> 8))
			return -1;
		v = v * (uint64_t)base + (uint64_t)d;
	}
	if (i == start)
		return -1;
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ';'))
		break; /* chunk extensions after ';' are ignored */
	*out = v;
	return 0;
}

/* Parse the complete head in p->head (ends with CRLFCRLF). */
static httpc_status_t parse_head(httpc_t *p)
{
	const char *h = p->head;
	size_t n = p->head_len;
	const char *eol = memchr(h, '\n', n);
	if (!eol || n < 12 || memcmp(h, "HTTP/1.", 7) != 0 || h[8] != ' ')
		return fail(p, "not an HTTP/1.x status line");
	uint64_t code;
	if (parse_uint(h + 9, 3, 10, &code) != 0 || code < 100 || code > 999)
		return fail(p, "bad status code");
	p->status = (int)code;
	const char *line = eol + 1;
	while (line < h + n) {
		const char *e = memchr(line, '\n', (size_t)(h + n - line));
		if (!e)
			break;
		size_t ll = (size_t)(e - line);
		if (ll && line[ll - 1] == '\r')
			ll--;
		if (ll == 0)
			break;
		const char *colon = memchr(line, ':', ll);
		if (!colon)
			return fail(p, "header line without ':'");
		size_t kl = (size_t)(colon - line);
		const char *v = colon + 1;
		size_t vl = ll - kl - 1;
		while (vl && (*v == ' ' || *v == '\t')) {
			v++;
			vl--;
		}
		if (kl == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
			if (parse_uint(v, vl, 10, &p->length) != 0)
				return fail(p, "bad Content-Length");
			p->have_length = true;
		} else if (kl == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0) {
			if (vl >= 7 && strncasecmp(v + vl - 7, "chunked", 7) == 0)
				p->chunked = true;
			else
				return fail(p, "unsupported Transfer-Encoding");
		}
		line = e + 1;
	}
	if (p->status == 204 || p->status == 304 || (p->status >= 100 && p->status < 200)) {
		p->state = ST_DONE;
		return HTTPC_DONE;
	}
	if (p->chunked)
		p->state = ST_CHUNK_SIZE;
	else if (p->have_length)
		p->state = p->length ? ST_BODY_LEN : ST_DONE;
	else
		p->state = ST_BODY_EOF;
	return p->state == ST_DONE ? HTTPC_DONE : HTTPC_MORE;
}

static int emit(httpc_t *p, const char *d, size_t n)
{
	if (n == 0 || !p->cb)
		return 0;
	return p->cb(p->arg, d, n);
}

httpc_status_t httpc_feed(httpc_t *p, const char *data, size_t len)
{
	size_t i = 0;
	while (i < len) {
		switch (p->state) {
		case ST_HEAD: {
			/* copy byte by byte until the blank line */
			while (i < len) {
				if (p->head_len >= sizeof(p->head) - 1)
					return fail(p, "response head too large");
				p->head[p->head_len++] = data[i++];
				size_t hl = p->head_len;
				if ((hl >= 4 && memcmp(p->head + hl - 4, "\r\n\r\n", 4) == 0) ||
				    (hl >= 2 && memcmp(p->head + hl - 2, "\n\n", 2) == 0)) {
					p->head[hl] = '\0';
					httpc_status_t st = parse_head(p);
					if (st != HTTPC_MORE)
						return st;
					break;
				}
			}
			break;
		}
		case ST_BODY_LEN: {
			size_t n = len - i;
			if (n > p->length)
				n = (size_t)p->length;
			if (emit(p, data + i, n) != 0)
				return fail(p, "body refused");
			i += n;
			p->length -= n;
			if (p->length == 0) {
				p->state = ST_DONE;
				return HTTPC_DONE;
			}
			break;
		}
		case ST_BODY_EOF:
			if (emit(p, data + i, len - i) != 0)
				return fail(p, "body refused");
			i = len;
			break;
		case ST_CHUNK_SIZE:
		case ST_TRAILER: {
			char c = data[i++];
			if (c == '\n') {
				size_t ll = p->line_len;
				if (ll && p->line[ll - 1] == '\r')
					ll--;
				p->line_len = 0;
				if (p->state == ST_TRAILER) {
					if (ll == 0) {
						p->state = ST_DONE;
						return HTTPC_DONE;
					}
					break;
				}
				if (parse_uint(p->line, ll, 16, &p->length) != 0)
					return fail(p, "bad chunk size");
				p->state = p->length ? ST_CHUNK_DATA : ST_TRAILER;
				break;
			}
			if (p->line_len >= sizeof(p->line) - 1) {
				if (p->state == ST_TRAILER)
					break; /* long trailer lines are skipped */
				return fail(p, "chunk size line too long");
			}
			p->line[p->line_len++] = c;
			break;
		}
		case ST_CHUNK_DATA: {
			size_t n = len - i;
			if (n > p->length)
				n = (size_t)p->length;
			if (emit(p, data + i, n) != 0)
				return fail(p, "body refused");
			i += n;
			p->length -= n;
			if (p->length == 0)
				p->state = ST_CHUNK_CRLF;
			break;
		}
		case ST_CHUNK_CRLF: {
			char c = data[i++];
			if (c == '\n')
				p->state = ST_CHUNK_SIZE;
			else if (c != '\r')
				return fail(p, "chunk not followed by CRLF");
			break;
		}
		case ST_DONE:
			return HTTPC_DONE;
		default:
			return HTTPC_ERROR;
		}
	}
	if (p->state == ST_DONE)
		return HTTPC_DONE;
	return p->state == ST_ERROR ? HTTPC_ERROR : HTTPC_MORE;
}

httpc_status_t httpc_eof(httpc_t *p)
{
	if (p->state == ST_DONE || p->state == ST_BODY_EOF) {
		p->state = ST_DONE;
		return HTTPC_DONE;
	}
	if (p->state != ST_ERROR)
		return fail(p, "connection closed before the response was complete");
	return HTTPC_ERROR;
}
