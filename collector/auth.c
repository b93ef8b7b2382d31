/* API credentials (see auth.h). */
#include "auth.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

static const char hexdig[] = "0123456789abcdef";

int auth_token_generate(char *out)
{
	unsigned char raw[32];
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -1;
	memcpy(out, AUTH_TOKEN_PREFIX, 4);
	for (size_t i = 0; i < sizeof(raw); i++) {
		out[4 + 2 * i] = hexdig[raw[i] >> 4];
		out[5 + 2 * i] = hexdig[raw[i] & 15];
	}
	out[AUTH_TOKEN_LEN] = '\0';
	return 0;
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

bool auth_token_well_formed(const char *s)
{
	if (strlen(s) != AUTH_TOKEN_LEN || strncmp(s, AUTH_TOKEN_PREFIX, 4) != 0)
		return false;
	for (const char *p = s + 4; *p; p++)
		if (!strchr(hexdig, *p))
			return false;
	return true;
}

int auth_bearer(const char *header, char *out)
{
	if (!header || strncasecmp(header, "Bearer ", 7) != 0)
		return -1;
	const char *t = header + 7;
	while (*t == ' ')
		t++;
	size_t n = strlen(t);
	while (n && t[n - 1] == ' ')
		n--;
	if (n != AUTH_TOKEN_LEN)
		return -1;
	memcpy(out, t, n);
	out[n] = '\0';
	return auth_token_well_formed(out) ? 0 : -1;
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
