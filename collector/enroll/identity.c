// SPDX-License-Identifier: Apache-2.0
/*
 * Host name -> identity (see identity.h): validation and lower-casing, the
 * reserved names, the "-2", "-3", ... variants that keep identities unique,
 * and the tokens' name patterns.
 */
#include "enroll/identity.h"

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

static const char *const RESERVED[] = {"admin", "root", "localhost"};

const char *identity_why(identity_rc_t rc)
{
	switch (rc) {
	case IDENTITY_OK:
		return "";
	case IDENTITY_EMPTY:
		return "the host name is empty";
	case IDENTITY_TOO_LONG:
		return "the host name is longer than 63 bytes";
	case IDENTITY_BAD_CHAR:
		return "the host name has a character other than letters, digits, '-' and '.'";
	case IDENTITY_EMPTY_LABEL:
		return "the host name has an empty label (a leading, trailing or doubled '.')";
	case IDENTITY_HYPHEN:
		return "a label of the host name starts or ends with '-'";
	case IDENTITY_RESERVED:
		return "the name is reserved for operators";
	}
	return "the host name is not usable";
}

identity_rc_t identity_normalize(const char *host, size_t len, char out[IDENTITY_MAX + 1])
{
	out[0] = '\0';
	if (!host || len == 0)
		return IDENTITY_EMPTY;
	if (len > IDENTITY_MAX)
		return IDENTITY_TOO_LONG;
	char buf[IDENTITY_MAX + 1];
	size_t label = 0; /* length of the label so far */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)host[i];
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (c == '.') {
			if (label == 0)
				return IDENTITY_EMPTY_LABEL;
			if (buf[i - 1] == '-')
				return IDENTITY_HYPHEN;
			label = 0;
		} else if (c == '-') {
			if (label == 0)
				return IDENTITY_HYPHEN;
			label++;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
			label++;
		} else {
			return IDENTITY_BAD_CHAR;
		}
		buf[i] = (char)c;
	}
	if (label == 0)
		return IDENTITY_EMPTY_LABEL;
	if (buf[len - 1] == '-')
		return IDENTITY_HYPHEN;
	memcpy(out, buf, len);
	out[len] = '\0';
	return IDENTITY_OK;
}

bool identity_reserved(const char *name, const char *admin_cns)
{
	for (size_t i = 0; i < sizeof(RESERVED) / sizeof(RESERVED[0]); i++)
		if (strcmp(name, RESERVED[i]) == 0)
			return true;
	return cfg_list_has(admin_cns, name);
}

int identity_with_suffix(const char *base, unsigned n, char out[IDENTITY_MAX + 1])
{
	char suffix[16];
	int sl = snprintf(suffix, sizeof(suffix), "-%u", n);
	size_t bl = base ? strlen(base) : 0;
	out[0] = '\0';
	if (bl == 0 || n < 2 || sl <= 0 || (size_t)sl >= IDENTITY_MAX)
		return -1;
	size_t keep = bl;
	if (keep + (size_t)sl > IDENTITY_MAX)
		keep = IDENTITY_MAX - (size_t)sl;
	while (keep > 0 && (base[keep - 1] == '-' || base[keep - 1] == '.'))
		keep--;
	if (keep == 0)
		return -1;
	memcpy(out, base, keep);
	memcpy(out + keep, suffix, (size_t)sl + 1);
	return 0;
}

bool identity_matches_pattern(const char *pattern, const char *name)
{
	if (!pattern || !pattern[0])
		return true;
	return fnmatch(pattern, name, 0) == 0;
}
