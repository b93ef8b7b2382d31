// SPDX-License-Identifier: Apache-2.0
/*
 * RPM's sqlite package database (rpmdb.sqlite), read from a copy in memory:
 * the file is never opened by path, so nothing is written next to it and
 * no symlink can redirect sqlite (which resolves paths itself). The
 * Packages table holds header blobs, parsed by pkgdb_parse_rpm_header.
 */
#ifndef VIGIL_AGENT_PKGDB_SQLITE_H
#define VIGIL_AGENT_PKGDB_SQLITE_H

#include <stddef.h>
#include <stdint.h>

#include "pkgdb.h"

/* Add the packages of the rpmdb.sqlite image at buf (len bytes, the
 * caller's copy, which this may patch: a WAL-mode header is switched to
 * rollback mode so the in-memory copy opens; a WAL file beside the
 * database is not read) to inv, opened read-only, defensive, with an
 * untrusted schema. Stop at deadline_ns (vtime_mono_ns, 0 = none) and mark
 * inv partial. Return the number of packages added, or -1 with inv marked
 * not read and the reason (not a database, no Packages table, OOM). */
long pkgdb_sqlite_read(uint8_t *buf, size_t len, pkgdb_inv_t *inv, int64_t deadline_ns);

#endif
