// SPDX-License-Identifier: Apache-2.0
/*
 * `vigil-agent enroll`: get this node's first certificate from a
 * collector with a join token. The key is made here (certfile.h) and
 * never leaves the node; the collector's certificate is verified against
 * the CA the operator gave and the collector's name before the token is
 * sent; one EnrollRequest frame goes out over TLS 1.3 without a client
 * certificate, one answer comes back. A blocking one-shot client.
 */
#ifndef VIGIL_AGENT_ENROLL_H
#define VIGIL_AGENT_ENROLL_H

/* Exit codes of the command. */
enum {
	ENROLL_EXIT_OK = 0,
	ENROLL_EXIT_USAGE = 2,	 /* bad arguments or settings */
	ENROLL_EXIT_REFUSED = 3, /* the collector refused (Error) */
	ENROLL_EXIT_TLS = 4,	 /* TLS or certificate verification failed */
	ENROLL_EXIT_IO = 5,	 /* files, network, or an unusable answer */
};

/* Run `vigil-agent enroll` with argv[0] = "enroll" and its options;
 * print the outcome. Return the process exit code (ENROLL_EXIT_*). */
int enroll_main(int argc, char **argv);

#endif
