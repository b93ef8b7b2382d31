// SPDX-License-Identifier: Apache-2.0
/*
 * The operator subcommands for enrollment's join tokens:
 *   vigil-collector enroll-token create [--uses N | --unlimited]
 *       [--expires 24h] [--labels k=v,...] [--name-pattern GLOB]
 *   vigil-collector enroll-token list
 *   vigil-collector enroll-token revoke ID
 * create prints the token on stdout, once; everything else goes to stderr.
 * No command ever prints a token's secret again, nor its hash. They run
 * before any event loop starts (blocking is fine here).
 */
#ifndef VIGIL_ENROLL_CMD_H
#define VIGIL_ENROLL_CMD_H

#include <stdbool.h>

#include "settings.h"

/* getopt_long values of the create options (between the short options
 * and the settings' flags, CFG_OPT_BASE) for the binary's option table:
 * --uses, --unlimited, --labels, --name-pattern. --expires is `token
 * create`'s. */
enum {
	ENROLL_OPT_USES = 900,
	ENROLL_OPT_UNLIMITED,
	ENROLL_OPT_LABELS,
	ENROLL_OPT_NAME_PATTERN,
};

typedef struct {
	const char *uses;	  /* --uses N (default 1) */
	bool unlimited;		  /* --unlimited */
	const char *expires;	  /* --expires DURATION (default 24h) */
	const char *labels;	  /* --labels k=v,... */
	const char *name_pattern; /* --name-pattern GLOB */
} enroll_token_opts_t;

/* Record option ch (from getopt_long) with its argument in o. Return
 * whether ch was one of the ENROLL_OPT_ values. */
bool enroll_token_option(enroll_token_opts_t *o, int ch, const char *arg);

/* Whether o holds any option of `enroll-token create` but --expires. */
bool enroll_token_opts_set(const enroll_token_opts_t *o);

/* Run "enroll-token ARGS..." against s->db (schema already migrated).
 * Return the process exit code: 0, 1 (failed) or 2 (usage). */
int enroll_token_command(const settings_t *s, int argc, char **argv, const enroll_token_opts_t *o);

#endif
