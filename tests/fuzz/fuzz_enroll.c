// SPDX-License-Identifier: Apache-2.0
/* libFuzzer target: what an agent's EnrollRequest carries, checked before
 * any database is asked: the join token (collector/enroll/token.c), the
 * host name (identity.c) and the CSR (issuer.c). Any bytes are each of
 * the three. A token that parses is exactly TOKEN_LEN bytes with a hex id;
 * an identity that is made is the input lower-cased and is its own
 * identity; a CSR is accepted with a key or refused with a reason. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "enroll/identity.h"
#include "enroll/issuer.h"
#include "enroll/token.h"

static void check_token(const uint8_t *data, size_t size)
{
	token_parts_t t;
	if (token_parse((const char *)data, size, &t) != 0)
		return;
	if (size != TOKEN_LEN || !token_id_valid(t.id) || memcmp(data + 4, t.id, TOKEN_ID_LEN))
		abort();
	uint8_t h[TOKEN_HASH_LEN];
	token_hash(&t, h);
	if (!token_hash_equal(h, sizeof(h), h))
		abort();
	token_clear(&t);
}

static void check_identity(const uint8_t *data, size_t size)
{
	char out[IDENTITY_MAX + 1], again[IDENTITY_MAX + 1];
	identity_rc_t rc = identity_normalize((const char *)data, size, out);
	if (rc != IDENTITY_OK) {
		if (out[0] || !identity_why(rc)[0])
			abort();
		return;
	}
	if (strlen(out) != size || identity_normalize(out, size, again) != IDENTITY_OK ||
	    strcmp(out, again) != 0)
		abort();
	char variant[IDENTITY_MAX + 1];
	for (unsigned n = 2; n < 12; n += 9) {
		if (identity_with_suffix(out, n, variant) == 0 &&
		    identity_normalize(variant, strlen(variant), again) != IDENTITY_OK)
			abort(); /* a variant is an identity too */
	}
}

static void check_csr(const uint8_t *data, size_t size)
{
	EVP_PKEY *pub = NULL;
	char why[256];
	why[0] = '\0';
	int rc = issuer_check_csr(data, size, &pub, why, sizeof(why));
	if ((rc == 0) != (pub != NULL) || (rc != 0 && !why[0]))
		abort();
	if (ERR_peek_error() != 0)
		abort(); /* the error queue is left empty */
	EVP_PKEY_free(pub);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_token(data, size);
	check_identity(data, size);
	check_csr(data, size);
	return 0;
}
