// SPDX-License-Identifier: Apache-2.0
/* The extensions of an agent's client certificate (see certext.h). */
#include "certext.h"

#include <openssl/x509v3.h>

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
	if (!e)
		return -1;
	int ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok == 1 ? 0 : -1;
}

int certext_add_client(X509 *x, X509 *issuer, certext_akid_t akid)
{
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	const char *akid_value = akid == CERTEXT_AKID_ALWAYS ? "keyid:always" : "keyid";
	if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
	    add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") != 0 ||
	    add_ext(x, &ctx, NID_ext_key_usage, "clientAuth") != 0 ||
	    add_ext(x, &ctx, NID_subject_key_identifier, "hash") != 0 ||
	    add_ext(x, &ctx, NID_authority_key_identifier, akid_value) != 0)
		return -1;
	return 0;
}
