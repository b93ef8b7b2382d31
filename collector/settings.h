// SPDX-License-Identifier: Apache-2.0
/*
 * The collector's one settings table: every setting has a config-file key, a
 * --flag, a default and a help line (see common/config.h). Each subsystem
 * owns its rows, in its folder's settings.inc (shared ones in ./settings.inc):
 *   VIGIL_SETTING(name, type, field, default, reloadable, min, max, help)
 * This header makes a settings_t field of each row and settings.c a table
 * entry.
 */
#ifndef VIGIL_COLLECTOR_SETTINGS_H
#define VIGIL_COLLECTOR_SETTINGS_H

#include <stdint.h>

#include "config.h"

/* The C type of each setting type (see common/config.h). */
#define VIGIL_CTYPE_CFG_T_STR char *
#define VIGIL_CTYPE_CFG_T_INT int64_t
#define VIGIL_CTYPE_CFG_T_BOOL int64_t
#define VIGIL_CTYPE_CFG_T_BYTES int64_t
#define VIGIL_CTYPE_CFG_T_MS int64_t

/* One field per row of the settings files. */
typedef struct {
#define VIGIL_SETTING(name, type, field, def, reloadable, min, max, help) VIGIL_CTYPE_##type field;
#include "settings.inc"
#include "ingest/settings.inc"
#include "http/settings.inc"
#include "rules/settings.inc"
#include "alert/settings.inc"
#include "vuln/settings.inc"
#include "enroll/settings.inc"
#undef VIGIL_SETTING
} settings_t;

extern const cfg_setting_t settings_table[];

/* Check the relations between settings that the table cannot express.
 * Return 0, or -1 with err set. */
int settings_validate(const settings_t *s, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Fit the connection limits to nofile open descriptors with workers
 * worker threads, keeping a reserve for PostgreSQL connections, the HTTPS
 * side and files: max_connections, max_pending_connections and the HTTPS
 * ones are lowered where their sum does not fit. Return 1 if something was
 * lowered (note says what, "name old -> new, ..."), else 0. */
int settings_fit_fd_limit(settings_t *s, int64_t nofile, int64_t workers, char *note,
			  size_t notelen);

#endif
