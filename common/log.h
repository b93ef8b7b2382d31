// SPDX-License-Identifier: Apache-2.0
/*
 * Leveled logging to stderr, one line per call, with an optional prefix
 * naming the connection (peer address, agent identity). Thread-safe.
 */
#ifndef VIGIL_LOG_H
#define VIGIL_LOG_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

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

/* A bound on how often a kind of line is written, for lines that anyone
 * who can open a connection can cause (refused handshakes, bad frames,
 * accept failures). Zero-initialise with LOG_LIMIT_INIT(max, window_s). */
typedef struct {
	pthread_mutex_t lock;
	int max;	      /* lines per window */
	int64_t window_ns;    /* the window */
	int64_t window_start; /* monotonic ns */
	int written;	      /* in this window */
	uint64_t suppressed;  /* since the last line written */
} log_limit_t;

#define LOG_LIMIT_INIT(max_lines, window_s)                                                     \
	{                                                                                       \
		PTHREAD_MUTEX_INITIALIZER, (max_lines), (int64_t)(window_s)*1000000000, 0, 0, 0 \
	}

/* log_msg, unless lim's budget for the window is spent; then the line is
 * counted, and the next line written says how many were suppressed. */
void log_limited(log_limit_t *lim, log_level_t lvl, const char *prefix, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define log_error(...) log_msg(LOG_LVL_ERROR, NULL, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, NULL, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, NULL, __VA_ARGS__)
#define log_debug(...)                                             \
	do {                                                       \
		if (log_enabled(LOG_LVL_DEBUG))                    \
			log_msg(LOG_LVL_DEBUG, NULL, __VA_ARGS__); \
	} while (0)

#endif
