/*
 * Leveled logging to stderr, one line per call, with an optional prefix
 * naming the connection (peer address, agent identity). Thread-safe.
 */
#ifndef VIGIL_LOG_H
#define VIGIL_LOG_H

#include <stdbool.h>

typedef enum {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
} log_level_t;

/* Set the most verbose level that is printed. */
void log_set_level(log_level_t lvl);
bool log_enabled(log_level_t lvl);
/* Parse "error", "warn", "info" or "debug". Return 0, or -1 if unknown. */
int log_level_parse(const char *s, log_level_t *out);
/* Name the program in every line (borrowed; must outlive logging). */
void log_set_program(const char *name);

/* Log one line: the prefix and the message with every control byte (and
 * UTF-8 C1 control) escaped (utf8_escape_controls), so that nothing from
 * outside can end a line, move a terminal's cursor or rewrite what it
 * shows. */
void log_msg(log_level_t lvl, const char *prefix, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(...) log_msg(LOG_LVL_ERROR, NULL, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, NULL, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, NULL, __VA_ARGS__)
#define log_debug(...)                                             \
	do {                                                       \
		if (log_enabled(LOG_LVL_DEBUG))                    \
			log_msg(LOG_LVL_DEBUG, NULL, __VA_ARGS__); \
	} while (0)

#endif
