// SPDX-License-Identifier: Apache-2.0
/*
 * An incremental parser of one HTTP/1.1 response (status line, headers,
 * then a body framed by Content-Length, chunked transfer coding, or the
 * end of the connection). Pure: bytes in, body bytes out through a
 * callback; no I/O, so tests and fuzzers feed it directly.
 */
#ifndef VIGIL_AGENT_HTTPC_H
#define VIGIL_AGENT_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTPC_HEAD_MAX 16384

typedef enum {
	HTTPC_MORE = 0, /* consumed everything; more bytes welcome */
	HTTPC_DONE,	/* the response is complete */
	HTTPC_ERROR,	/* malformed or over a limit: see httpc_error */
} httpc_status_t;

/* Body bytes as they arrive. Return 0 to go on, -1 to stop with an error. */
typedef int (*httpc_body_cb)(void *arg, const char *data, size_t len);

typedef struct {
	int state;
	int status; /* HTTP status code once the head is parsed */
	bool chunked;
	bool have_length;
	uint64_t length; /* Content-Length, or bytes left in the current chunk */
	char head[HTTPC_HEAD_MAX];
	size_t head_len;
	char line[64]; /* chunk-size line being collected */
	size_t line_len;
	const char *error;
	httpc_body_cb cb;
	void *arg;
} httpc_t;

/* Start parsing a response; body bytes go to cb(arg, ...). */
void httpc_init(httpc_t *p, httpc_body_cb cb, void *arg);

/* Feed len bytes. Bytes after a complete response are ignored. */
httpc_status_t httpc_feed(httpc_t *p, const char *data, size_t len);

/* The connection ended. Return HTTPC_DONE if that ends the body (no
 * framing given), else HTTPC_ERROR. */
httpc_status_t httpc_eof(httpc_t *p);

/* True once the status line and headers are in. */
bool httpc_head_done(const httpc_t *p);

#endif
