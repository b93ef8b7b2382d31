// SPDX-License-Identifier: Apache-2.0
/* Admission of pending connections (see admit.h). */
#include "admit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

void admit_key(const struct sockaddr *sa, size_t salen, uint8_t key[ADMIT_KEY_LEN])
{
	memset(key, 0, ADMIT_KEY_LEN);
	if (sa && sa->sa_family == AF_INET && salen >= sizeof(struct sockaddr_in)) {
		memcpy(key, v4_mapped, sizeof(v4_mapped));
		memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa && sa->sa_family == AF_INET6 && salen >= sizeof(struct sockaddr_in6)) {
		const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		if (memcmp(a, v4_mapped, sizeof(v4_mapped)) == 0)
			memcpy(key, a, ADMIT_KEY_LEN);
		else
			memcpy(key, a, 8); /* the /64: one host's share of a network */
	} else {
		key[0] = 0xff; /* not an address (a Unix socket): one key for all */
	}
}

void admit_key_str(const uint8_t key[ADMIT_KEY_LEN], char *out, size_t outlen)
{
	char buf[INET6_ADDRSTRLEN];
	if (memcmp(key, v4_mapped, sizeof(v4_mapped)) == 0) {
		inet_ntop(AF_INET, key + 12, buf, sizeof(buf));
		snprintf(out, outlen, "%s", buf);
	} else if (key[0] == 0xff && key[1] == 0) {
		snprintf(out, outlen, "local");
	} else {
		inet_ntop(AF_INET6, key, buf, sizeof(buf));
		snprintf(out, outlen, "%s/64", buf);
	}
}

static void unlink_entry(admit_t *a, admit_entry_t *e)
{
	if (e->older)
		e->older->newer = e->newer;
	else
		a->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		a->newest = e->older;
	e->older = e->newer = NULL;
	e->listed = false;
	a->n--;
}

admit_verdict_t admit_add(admit_t *a, admit_entry_t *e, const struct sockaddr *sa, size_t salen,
			  size_t max_pending, size_t max_per_addr, admit_silent_fn silent,
			  admit_entry_t **victim)
{
	*victim = NULL;
	admit_key(sa, salen, e->key);
	size_t same = 0;
	for (admit_entry_t *p = a->oldest; p; p = p->newer)
		if (memcmp(p->key, e->key, ADMIT_KEY_LEN) == 0)
			same++;
	if (same >= (max_per_addr ? max_per_addr : 1))
		return ADMIT_REFUSED_ADDR;
	admit_verdict_t v = ADMIT_OK;
	if (a->n >= (max_pending ? max_pending : 1) && a->oldest) {
		admit_entry_t *p = a->oldest;
		while (p && silent && !silent(p))
			p = p->newer;
		if (!p)
			return ADMIT_REFUSED_FULL;
		*victim = p;
		unlink_entry(a, p);
		v = ADMIT_OK_DROPPED;
	}
	e->older = a->newest;
	e->newer = NULL;
	if (a->newest)
		a->newest->newer = e;
	else
		a->oldest = e;
	a->newest = e;
	e->listed = true;
	a->n++;
	return v;
}

void admit_remove(admit_t *a, admit_entry_t *e)
{
	if (e && e->listed)
		unlink_entry(a, e);
}
