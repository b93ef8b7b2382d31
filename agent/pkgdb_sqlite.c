// SPDX-License-Identifier: Apache-2.0
/* rpmdb.sqlite from a copy in memory (see pkgdb_sqlite.h). */
#include "pkgdb_sqlite.h"

#include <sqlite3.h>
#include <string.h>

#include "vtime.h"

typedef struct {
	int64_t deadline_ns;
	int expired;
} budget_t;

static int on_progress(void *arg)
{
	budget_t *b = arg;
	if (b->deadline_ns && vtime_mono_ns() > b->deadline_ns) {
		b->expired = 1;
		return 1; /* interrupts the statement */
	}
	return 0;
}

long pkgdb_sqlite_read(uint8_t *buf, size_t len, pkgdb_inv_t *inv, int64_t deadline_ns)
{
	static const char magic[16] = "SQLite format 3";
	if (len < 100 || memcmp(buf, magic, sizeof(magic)) != 0) {
		pkgdb_inv_not_read(inv, "rpmdb.sqlite is not an sqlite database");
		return -1;
	}
	/* WAL mode (2) cannot be opened in memory: read it as rollback (1) */
	if (buf[18] == 2)
		buf[18] = 1;
	if (buf[19] == 2)
		buf[19] = 1;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	budget_t budget = {deadline_ns, 0};
	long added = 0;
	if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		pkgdb_inv_not_read(inv, "sqlite: %s", db ? sqlite3_errmsg(db) : "out of memory");
		goto out;
	}
	sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_VIEW, 0, NULL);
	sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 64 * 1024 * 1024);
	sqlite3_progress_handler(db, 1000, on_progress, &budget);
	if (sqlite3_deserialize(db, "main", buf, (sqlite3_int64)len, (sqlite3_int64)len,
				SQLITE_DESERIALIZE_READONLY) != SQLITE_OK) {
		pkgdb_inv_not_read(inv, "sqlite: %s", sqlite3_errmsg(db));
		goto out;
	}
	if (sqlite3_prepare_v2(db, "SELECT blob FROM Packages", -1, &st, NULL) != SQLITE_OK) {
		pkgdb_inv_not_read(inv, "rpmdb.sqlite: %s", sqlite3_errmsg(db));
		goto out;
	}
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *blob = sqlite3_column_blob(st, 0);
		int n = sqlite3_column_bytes(st, 0);
		if (!blob || n <= 0) {
			inv->n_malformed++;
			continue;
		}
		int k = pkgdb_parse_rpm_header(blob, (size_t)n, inv);
		if (k < 0) {
			pkgdb_inv_not_read(inv, "out of memory");
			added = -1;
			goto out;
		}
		added += k;
	}
	if (budget.expired)
		pkgdb_inv_partial(inv, "time budget spent reading rpmdb.sqlite");
	else if (rc != SQLITE_DONE && added == 0)
		pkgdb_inv_not_read(inv, "rpmdb.sqlite: %s", sqlite3_errmsg(db));
	else if (rc != SQLITE_DONE)
		pkgdb_inv_partial(inv, "rpmdb.sqlite: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return added;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return -1;
}
