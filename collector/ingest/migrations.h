// SPDX-License-Identifier: Apache-2.0
/* Schema migrations embedded at build time from schema/NNNN_name.sql. */
#ifndef VIGIL_MIGRATIONS_H
#define VIGIL_MIGRATIONS_H

#include <stddef.h>

typedef struct {
	int version;
	const char *name;
	const char *sql;
} migration_t;

/* Sorted by version. */
extern const migration_t migrations[];
extern const size_t migrations_count;

#endif
