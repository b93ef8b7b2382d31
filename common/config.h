// SPDX-License-Identifier: Apache-2.0
/*
 * Settings tables: each binary describes its settings once (name, type,
 * default as text, reloadable or not, bounds, help) and gets defaults,
 * config-file parsing, --flags, validation and printing from that table.
 * A setting named "listen_addr" is "listen_addr = ..." in the file and
 * "--listen-addr ..." on the command line.
 */
#ifndef VIGIL_CONFIG_H
#define VIGIL_CONFIG_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
	CFG_T_STR,   /* char *, owned by the settings struct */
	CFG_T_INT,   /* int64_t */
	CFG_T_BOOL,  /* int64_t 0/1; true/false/yes/no/on/off/1/0 */
	CFG_T_BYTES, /* int64_t bytes; suffixes K, M, G (binary), KiB, MiB, GiB */
	CFG_T_MS,    /* int64_t milliseconds; suffixes ms, s, m, h */
} cfg_type_t;

typedef struct {
	const char *name;
	cfg_type_t type;
	const char *def; /* NULL or "" means empty string / 0 */
	bool reloadable;
	size_t offset;
	int64_t min, max; /* numeric bounds, inclusive; ignored if min == max */
	const char *help;
} cfg_setting_t;

/* Tables end with an entry whose name is NULL. */

/* Fill obj with every default. Return 0, or -1 with err set. */
int cfg_defaults(const cfg_setting_t *tab, void *obj, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Parse value into setting name of obj. Return 0, or -1 with err set. */
int cfg_set(const cfg_setting_t *tab, void *obj, const char *name, const char *value, char *err,
	    size_t errlen) __attribute__((warn_unused_result));

/* Apply the text of a config file (key = value lines, # comments).
 * origin names the file in errors. Return 0, or -1 with err set. */
int cfg_parse_text(const cfg_setting_t *tab, void *obj, const char *text, size_t len,
		   const char *origin, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Read path (at most 1 MiB) and apply it with cfg_parse_text. */
int cfg_load_file(const cfg_setting_t *tab, void *obj, const char *path, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Print every setting as a config file would hold it. */
void cfg_print(const cfg_setting_t *tab, const void *obj, FILE *out);
/* Print one "--flag VALUE  help (default)" line per setting. */
void cfg_usage(const cfg_setting_t *tab, FILE *out);
/* Free the strings that obj owns. */
void cfg_free(const cfg_setting_t *tab, void *obj);

/* Copy the reloadable settings from src into dst; report the others that
 * differ through log_warn. Both must have been filled from tab. */
void cfg_apply_reload(const cfg_setting_t *tab, void *dst, const void *src);

/* Build getopt_long options: the extra ones first (terminated by a zero
 * entry), then one per setting with val = CFG_OPT_BASE + index.
 * Caller frees the result and the names with cfg_long_options_free. */
#define CFG_OPT_BASE 1000
struct option *cfg_long_options(const cfg_setting_t *tab, const struct option *extra);
void cfg_long_options_free(struct option *opts, const struct option *extra);

/* Settings given on the command line: a config file and --setting flags,
 * applied over the defaults and the file in cfg_cli_load. */
typedef struct {
	const char *config_file; /* borrowed from argv */
	struct cfg_flag {
		int idx;	   /* index into the table */
		const char *value; /* borrowed from argv */
	} * flags;
	size_t n_flags;
} cfg_cli_t;

/* Record the flag getopt_long returned as opt (>= CFG_OPT_BASE) with its
 * argument. Return 0, or -1 when out of memory. */
int cfg_cli_flag(cfg_cli_t *cli, int opt, const char *value) __attribute__((warn_unused_result));
/* Fill obj (zeroed by the caller) with the defaults, then the config file,
 * then the flags. Return 0, or -1 with err set. */
int cfg_cli_load(const cfg_setting_t *tab, const cfg_cli_t *cli, void *obj, char *err,
		 size_t errlen) __attribute__((warn_unused_result));
void cfg_cli_free(cfg_cli_t *cli);

const char *cfg_type_name(cfg_type_t t);

/* Whether name (not empty) is one of the comma-separated names of list, a
 * setting's value (spaces around a name are ignored). list may be NULL. */
bool cfg_list_has(const char *list, const char *name);

#endif
