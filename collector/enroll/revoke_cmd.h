// SPDX-License-Identifier: Apache-2.0
/*
 * The operator subcommands for agents and operator certificates:
 *   vigil-collector agent list
 *   vigil-collector agent show NAME
 *   vigil-collector agent revoke NAME [--reason TEXT]
 *   vigil-collector agent revoke --serial HEX [--reason TEXT]
 *   vigil-collector operator list
 *   vigil-collector operator revoke CN [--reason TEXT]
 *   vigil-collector operator revoke --serial HEX [--reason TEXT]
 * A revocation is a row of the revocations table; every collector applies
 * it within seconds (enroll/revocations.h). They run before any event loop
 * starts (blocking is fine here).
 */
#ifndef VIGIL_ENROLL_REVOKE_CMD_H
#define VIGIL_ENROLL_REVOKE_CMD_H

#include "settings.h"

typedef struct {
	const char *reason; /* --reason */
	const char *serial; /* --serial */
} revoke_opts_t;

/* Run "agent ARGS..." or "operator ARGS..." (command) against settings->db
 * (schema already migrated). Return the process exit code: 0, 1 (failed)
 * or 2 (usage). */
int revoke_command(const settings_t *s, const char *command, int argc, char **argv,
		   const revoke_opts_t *o);

#endif
