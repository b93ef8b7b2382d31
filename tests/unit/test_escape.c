// SPDX-License-Identifier: Apache-2.0
/* utf8_escape_controls (common/utf8.c): what keeps control bytes from outside
 * out of log lines and CSV cells. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "utf8.h"

static void expect(const char *in, size_t len, size_t outlen, const char *want)
{
	char out[256];
	size_t n = utf8_escape_controls(out, outlen, in, len);
	assert_string_equal(out, want);
	assert_int_equal(n, strlen(want));
}

static void test_escapes(void **state)
{
	(void)state;
	expect("plain text", 10, 256, "plain text");
	expect("\x1b[31mred\r\nfake", 14, 256, "\\x1b[31mred\\x0d\\x0afake");
	expect("a\0b", 3, 256, "a\\x00b");
	expect("\t\x7f", 2, 256, "\\x09\\x7f");
	/* UTF-8 C1 controls (U+009B is CSI), but not other two-byte characters */
	expect("\xc2\x9b"
	       "2J",
	       4, 256, "\\u009b2J");
	expect("caf\xc3\xa9 \xc2\xa0", 8, 256, "caf\xc3\xa9 \xc2\xa0");
	/* bidirectional controls are printable for a terminal: kept */
	expect("\xe2\x80\xae"
	       "gnp.exe",
	       10, 256,
	       "\xe2\x80\xae"
	       "gnp.exe");
	/* cut at a whole escape */
	expect("ab\x1b", 3, 5, "ab");
	expect("ab\x1b", 3, 7, "ab\\x1b");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escapes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
