// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: config-file text through cfg_parse_text with a small
 * settings table that has one setting of each type.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

typedef struct {
	char *listen;
	char *name;
	int64_t port;
	int64_t verbose;
	int64_t max_frame_bytes;
	int64_t timeout;
} fuzz_conf_t;

#define OFF(f) offsetof(fuzz_conf_t, f)

static const cfg_setting_t tab[] = {
	{"listen", CFG_T_STR, "127.0.0.1:7443", false, OFF(listen), 0, 0, "address"},
	{"name", CFG_T_STR, NULL, true, OFF(name), 0, 0, "name"},
	{"port", CFG_T_INT, "7443", false, OFF(port), 1, 65535, "port"},
	{"verbose", CFG_T_BOOL, "false", true, OFF(verbose), 0, 0, "verbose"},
	{"max_frame_bytes", CFG_T_BYTES, "4MiB", true, OFF(max_frame_bytes), 1024, INT64_C(1) << 30,
	 "frame limit"},
	{"timeout", CFG_T_MS, "10s", true, OFF(timeout), 0, 0, "timeout"},
	{NULL, CFG_T_STR, NULL, false, 0, 0, 0, NULL},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_conf_t c, d;
	memset(&c, 0, sizeof(c));
	memset(&d, 0, sizeof(d));
	char err[256];
	if (cfg_defaults(tab, &c, err, sizeof(err)) != 0 ||
	    cfg_defaults(tab, &d, err, sizeof(err)) != 0)
		abort();
	err[0] = '\0';
	int rc = cfg_parse_text(tab, &c, (const char *)data, size, "fuzz", err, sizeof(err));
	if (rc != 0 && (rc != -1 || err[0] == '\0' || !memchr(err, '\0', sizeof(err))))
		abort();
	/* Whatever was accepted stays within the table's bounds. */
	if (c.port < 1 || c.port > 65535 || (c.verbose != 0 && c.verbose != 1) ||
	    c.max_frame_bytes < 1024 || c.max_frame_bytes > (INT64_C(1) << 30) || !c.listen ||
	    !c.name)
		abort();
	cfg_free(tab, &c);
	cfg_free(tab, &d);
	return 0;
}
