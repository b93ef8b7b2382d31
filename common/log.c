// SPDX-License-Identifier: Apache-2.0
/* Leveled logging (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "utf8.h"

static atomic_int log_level = LOG_LVL_INFO;
static const char *log_program = "vigil";

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_set_level(log_level_t lvl)
{
	atomic_store(&log_level, (int)lvl);
}

bool log_enabled(log_level_t lvl)
{
	return (int)lvl <= atomic_load(&log_level);
}

int log_level_parse(const char *s, log_level_t *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (log_level_t)i;
			return 0;
		}
	}
	return -1;
}

void log_set_program(const char *name)
{
	log_program = name;
}

void log_msg(log_level_t lvl, const char *prefix, const char *fmt, ...)
{
	if (!log_enabled(lvl))
		return;
	char line[2048], raw[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line),
			 "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d] %s: ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 ts.tv_nsec / 1000000, log_program, (int)getpid(), level_names[lvl]);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	/* The prefix and the message may carry bytes from outside (peer
	 * names, paths, agent strings): no control byte reaches the log. */
	int r = snprintf(raw, sizeof(raw), "%s%s", prefix ? prefix : "", prefix ? " " : "");
	if (r < 0)
		r = 0;
	if ((size_t)r < sizeof(raw)) {
		va_list ap;
		va_start(ap, fmt);
		int m = vsnprintf(raw + r, sizeof(raw) - (size_t)r, fmt, ap);
		va_end(ap);
		if (m > 0)
			r += m;
	}
	if ((size_t)r >= sizeof(raw))
		r = (int)sizeof(raw) - 1;
	n += (int)utf8_escape_controls(line + n, sizeof(line) - (size_t)n - 1, raw, (size_t)r);
	line[n++] = '\n';
	/* One write per line keeps lines from different threads whole. */
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
}

void log_limited(log_limit_t *lim, log_level_t lvl, const char *prefix, const char *fmt, ...)
{
	if (!log_enabled(lvl))
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	pthread_mutex_lock(&lim->lock);
	if (now - lim->window_start >= lim->window_ns) {
		lim->window_start = now;
		lim->written = 0;
	}
	bool write_it = lim->written < lim->max;
	uint64_t suppressed = 0;
	if (write_it) {
		lim->written++;
		suppressed = lim->suppressed;
		lim->suppressed = 0;
	} else {
		lim->suppressed++;
	}
	pthread_mutex_unlock(&lim->lock);
	if (!write_it)
		return;
	char msg[1536];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (suppressed)
		log_msg(lvl, prefix, "%s (%llu similar lines suppressed before this one)", msg,
			(unsigned long long)suppressed);
	else
		log_msg(lvl, prefix, "%s", msg);
}
