// SPDX-License-Identifier: Apache-2.0
/*
 * The vulnerable-images API (schema/0010_images.sql): who is exposed to an
 * advisory or a CVE now, at a time or over a window; the advisories of one
 * image; the fleet's summary. Private to collector/http/.
 */
#ifndef VIGIL_API_VULN_H
#define VIGIL_API_VULN_H

#include "http/api.h"

/* GET /api/v1/vulnerabilities/{id}: id is an advisory id or an alias (a
 * CVE id), already percent-decoded. */
void api_vuln_exposure(hreq_t *r, const char *id);
/* GET /api/v1/images/{digest}/vulnerabilities. */
void api_vuln_image(hreq_t *r, const char *digest);
/* GET /api/v1/vulnerabilities: by severity, the top images and nodes. */
void api_vuln_summary(hreq_t *r);

/* Route path if it is one of the above; return false if not. */
bool api_vuln_route(hreq_t *r, const char *path);

#endif
