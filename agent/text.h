// SPDX-License-Identifier: Apache-2.0
/*
 * Strings that come from containers are attacker-controlled: cap their
 * length (with a visible truncation marker) and repair what is not valid
 * UTF-8 or is a control character. Pure functions, no I/O.
 */
#ifndef VIGIL_AGENT_TEXT_H
#define VIGIL_AGENT_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Appended to a string that was cut. */
#define TEXT_TRUNC_MARKER "...[truncated]"

/* Set the default cap used by text_dup (bytes, marker included). */
void text_set_max(size_t max);
size_t text_max(void);

/* Copy the n bytes at s (NUL bytes included, which become '?'), cut to at
 * most max bytes (0 = text_max()) on a UTF-8 boundary with
 * TEXT_TRUNC_MARKER appended, and repair invalid UTF-8 and control
 * characters. Set *truncated (may be NULL) if the string was cut, leave it
 * alone otherwise. Return a new string the caller frees, NULL on OOM. */
char *text_dup_n(const char *s, size_t n, size_t max, bool *truncated);

/* text_dup_n of a NUL-terminated string (NULL gives ""). */
char *text_dup(const char *s, bool *truncated);

#endif
