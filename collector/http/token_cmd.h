// SPDX-License-Identifier: Apache-2.0
/*
 * The operator subcommands for API tokens:
 *   vigil-collector token create --name NAME --role viewer|admin [--expires 30d]
 *   vigil-collector token list
 *   vigil-collector token revoke NAME
 * They run before any event loop starts (blocking is fine here).
 */
#ifndef VIGIL_TOKEN_CMD_H
#define VIGIL_TOKEN_CMD_H

#include "settings.h"

typedef struct {
	const char *name;
	const char *role;
	const char *expires;
} token_opts_t;

/* Run "token ARGS..." against settings->db (schema already migrated).
 * Return the process exit code: 0, 1 (failed) or 2 (usage). */
int token_command(const settings_t *s, int argc, char **argv, const token_opts_t *o);

#endif
