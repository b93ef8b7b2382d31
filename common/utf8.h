/* UTF-8 validation and repair for strings that come from outside. */
#ifndef VIGIL_UTF8_H
#define VIGIL_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Return true if the n bytes at s are valid UTF-8 without NUL bytes. */
bool utf8_valid(const char *s, size_t n);

/* Replace, in place, every byte of the NUL-terminated s that is not part of
 * a valid UTF-8 sequence, and every control character but tab, with '?'.
 * Return the number of bytes replaced. */
size_t utf8_sanitize(char *s);

#endif
