// SPDX-License-Identifier: Apache-2.0
/* API credentials (see auth.h). */
#include "http/auth.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

static const char hexdig[] = "0123456789abcdef";

/* prefix (4 characters) and 32 random bytes in hex into out. */
static int random_credential(const char *prefix, char *out)
{
	unsigned char raw[32];
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -1;
	memcpy(out, prefix, 4);
	for (size_t i = 0; i < sizeof(raw); i++) {
		out[4 + 2 * i] = hexdig[raw[i] >> 4];
		out[5 + 2 * i] = hexdig[raw[i] & 15];
	}
	out[4 + 2 * sizeof(raw)] = '\0';
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

int auth_token_generate(char *out)
{
	return random_credential(AUTH_TOKEN_PREFIX, out);
}

int auth_session_generate(char *out)
{
	return random_credential(AUTH_SESSION_PREFIX, out);
}

void auth_token_hash(const char *token, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (EVP_Digest(token, strlen(token), md, &n, EVP_sha256(), NULL) != 1 || n != 32) {
		memset(out, '0', AUTH_HASH_LEN); /* matches no stored hash of a token */
		out[AUTH_HASH_LEN] = '\0';
		return;
	}
	for (unsigned int i = 0; i < n; i++) {
		out[2 * i] = hexdig[md[i] >> 4];
		out[2 * i + 1] = hexdig[md[i] & 15];
	}
	out[AUTH_HASH_LEN] = '\0';
}

/* prefix (4 characters) and 64 lower-case hex digits. */
static bool credential_well_formed(const char *s, const char *prefix)
{
	if (strlen(s) != 4 + 64 || strncmp(s, prefix, 4) != 0)
		return false;
	for (const char *p = s + 4; *p; p++)
		if (!strchr(hexdig, *p))
			return false;
	return true;
}

bool auth_token_well_formed(const char *s)
{
	return credential_well_formed(s, AUTH_TOKEN_PREFIX);
}

bool auth_session_well_formed(const char *s)
{
	return credential_well_formed(s, AUTH_SESSION_PREFIX);
}

/* Copy the n bytes at t, blanks around them dropped, into out if they
 * are a well-formed token (or session id, if session). */
static int credential_span(const char *t, size_t n, char *out, bool session)
{
	while (n && (*t == ' ' || *t == '\t')) {
		t++;
		n--;
	}
	while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
		n--;
	if (n != 4 + 64)
		return -1;
	memcpy(out, t, n);
	out[n] = '\0';
	return credential_well_formed(out, session ? AUTH_SESSION_PREFIX : AUTH_TOKEN_PREFIX) ? 0
											      : -1;
}

static int token_span(const char *t, size_t n, char *out)
{
	return credential_span(t, n, out, false);
}

int auth_bearer(const char *header, char *out)
{
	if (!header || strncasecmp(header, "Bearer ", 7) != 0)
		return -1;
	return token_span(header + 7, strlen(header + 7), out);
}

int auth_token_value(const char *value, char *out)
{
	return value ? token_span(value, strlen(value), out) : -1;
}

int auth_session_cookie(const char *header, char *out, int *count)
{
	static const char name[] = AUTH_COOKIE;
	const size_t nlen = sizeof(name) - 1;
	int rc = 0;
	const char *p = header;
	while (p && *p) {
		size_t n = strcspn(p, ";");
		const char *c = p;
		size_t cl = n;
		while (cl && (*c == ' ' || *c == '\t')) {
			c++;
			cl--;
		}
		if (cl > nlen && strncmp(c, name, nlen) == 0 && c[nlen] == '=') {
			(*count)++;
			if (credential_span(c + nlen + 1, cl - nlen - 1, out, true) != 0)
				rc = -1;
		}
		p += n;
		if (*p == ';')
			p++;
	}
	return rc;
}

/* Length of host without a trailing ":443". */
static size_t host_len(const char *host, size_t n)
{
	if (n > 4 && memcmp(host + n - 4, ":443", 4) == 0)
		return n - 4;
	return n;
}

bool auth_same_origin(const char *origin, const char *host)
{
	static const char scheme[] = "https://";
	if (!origin || !host || strncasecmp(origin, scheme, sizeof(scheme) - 1) != 0)
		return false;
	const char *o = origin + sizeof(scheme) - 1;
	size_t on = host_len(o, strlen(o));
	size_t hn = host_len(host, strlen(host));
	if (on == 0 || on != hn || strcspn(o, "/?#@ ") < on)
		return false;
	return strncasecmp(o, host, on) == 0;
}

const char *auth_role_name(auth_role_t r)
{
	switch (r) {
	case AUTH_ROLE_VIEWER:
		return "viewer";
	case AUTH_ROLE_ADMIN:
		return "admin";
	default:
		return "none";
	}
}

auth_role_t auth_role_parse(const char *s)
{
	if (s && strcmp(s, "viewer") == 0)
		return AUTH_ROLE_VIEWER;
	if (s && strcmp(s, "admin") == 0)
		return AUTH_ROLE_ADMIN;
	return AUTH_ROLE_NONE;
}

bool auth_name_valid(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > 64)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("._@-", *s))
			return false;
	return true;
}

int auth_parse_duration(const char *s, int64_t *seconds)
{
	if (!s || !isdigit((unsigned char)s[0]))
		return -1;
	int64_t v = 0;
	const char *p = s;
	while (isdigit((unsigned char)*p)) {
		if (v > 1000000000)
			return -1;
		v = v * 10 + (*p++ - '0');
	}
	int64_t mult;
	if (!*p)
		mult = 1;
	else if (strcmp(p, "s") == 0)
		mult = 1;
	else if (strcmp(p, "m") == 0)
		mult = 60;
	else if (strcmp(p, "h") == 0)
		mult = 3600;
	else if (strcmp(p, "d") == 0)
		mult = 86400;
	else if (strcmp(p, "w") == 0)
		mult = 7 * 86400;
	else
		return -1;
	v *= mult;
	if (v <= 0 || v > INT64_C(100) * 366 * 86400)
		return -1;
	*seconds = v;
	return 0;
}
