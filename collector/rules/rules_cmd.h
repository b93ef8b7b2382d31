// SPDX-License-Identifier: Apache-2.0
/* `vigil-collector rules ...`: the operator's view of the rules. */
#ifndef VIGIL_RULES_CMD_H
#define VIGIL_RULES_CMD_H

/* Run `rules list` (the rules in force with rules_file, which may be ""
 * for the built-in defaults) or `rules check FILE` (validate a file, no
 * collector needed): argv holds what follows "rules". Return the exit
 * status. */
int rules_cmd_run(int argc, char **argv, const char *rules_file);

#endif
