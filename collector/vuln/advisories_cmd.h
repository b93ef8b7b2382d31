// SPDX-License-Identifier: Apache-2.0
/*
 * The operator subcommand that loads advisories:
 *   vigil-collector advisories import PATH...
 * PATH is an OSV JSON file, a directory of them (recursively) or an OSV
 * all.zip archive. One transaction per import: a hard error anywhere
 * (malformed JSON, a missing field, an unknown ecosystem, a version that
 * does not parse, a document over the size caps) names the file, the
 * archive member and the JSON field, and imports nothing. It runs before
 * any event loop starts (blocking is fine here).
 */
#ifndef VIGIL_VULN_ADVISORIES_CMD_H
#define VIGIL_VULN_ADVISORIES_CMD_H

/* Run "advisories ARGS..." against the database of conninfo (schema
 * already migrated). Return the process exit code: 0, 1 (failed, nothing
 * imported) or 2 (usage). */
int advisories_command(const char *conninfo, int argc, char **argv);

#endif
