// SPDX-License-Identifier: Apache-2.0
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

/* Copy len bytes of in to out (outlen > 0, NUL-terminated), each byte
 * below 0x20 and DEL as \xNN, each UTF-8 C1 control as \u00NN; what does
 * not fit is cut at a whole escape. Return the length written. */
size_t utf8_escape_controls(char *out, size_t outlen, const char *in, size_t len);

#endif
