// SPDX-License-Identifier: Apache-2.0
/* libFuzzer target: alert payloads and the parsers of alert forwarding
 * (collector/alert/payload.c). The input is split at NUL bytes into the
 * strings of an alert (container name, labels, summary...) and also read
 * as a webhook's answer, a URL and a host:port. Checks that the syslog
 * frame stays one line and the JSON stays valid ASCII. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "alert/payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int status;
	alert_http_status((const char *)data, size, &status);

	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	alert_url_t url;
	alert_url_parse(s, &url);
	char host[64];
	int port;
	alert_hostport_parse(s, host, sizeof(host), &port);

	/* fields: the strings between NUL bytes */
	const char *f[8] = {NULL};
	size_t nf = 0;
	for (char *p = s; p <= s + size && nf < 8; p += strlen(p) + 1)
		f[nf++] = p;
	alert_item_t it = {.outbox_id = 1,
			   .finding_id = 2,
			   .action = "opened",
			   .severity = size > 0 ? data[0] % 7 : 3,
			   .count = (int64_t)size,
			   .time_ms = 1700000000000};
	it.container_name = f[0];
	it.summary = f[1];
	it.labels_json = f[2];
	it.details_json = f[3];
	it.hostname = f[4];
	it.image = f[5];
	it.rule = f[6];
	it.key = f[7];

	size_t len;
	char *frame = alert_syslog_frame(&it, 2048, &len);
	if (frame) {
		if (memchr(frame, '\n', len) || memchr(frame, '\r', len))
			abort();
		free(frame);
	}
	char *j = alert_ocsf_json(&it);
	if (j) {
		for (const char *p = j; *p; p++)
			if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7f)
				abort();
		json_t *doc = json_loads(j, 0, NULL);
		if (!doc)
			abort();
		json_decref(doc);
		free(j);
	}
	char esc[128];
	alert_escape(s, "\"]", esc, sizeof(esc));
	free(s);
	return 0;
}
