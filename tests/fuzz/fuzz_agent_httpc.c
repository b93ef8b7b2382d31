// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: HTTP/1.1 responses from a Docker-API socket through
 * the agent's incremental parser, fed in pieces whose sizes come from the
 * input, then ended by EOF.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "httpc.h"

static int body_cb(void *arg, const char *d, size_t n)
{
	size_t *total = arg;
	(void)d;
	*total += n;
	return *total > (1u << 20) ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t step = (size_t)(data[0] % 17) + 1;
	size_t total = 0;
	httpc_t *p = malloc(sizeof(*p));
	httpc_init(p, body_cb, &total);
	httpc_status_t st = HTTPC_MORE;
	for (size_t off = 1; off < size && st == HTTPC_MORE; off += step) {
		size_t n = size - off < step ? size - off : step;
		st = httpc_feed(p, (const char *)data + off, n);
	}
	if (st == HTTPC_MORE)
		httpc_eof(p);
	free(p);
	return 0;
}
