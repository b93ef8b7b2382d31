// SPDX-License-Identifier: Apache-2.0
/* `vigil-agent enroll` (see enroll.h). */
#include "enroll.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "certfile.h"
#include "config.h"
#include "frame.h"
#include "hostinfo.h"
#include "log.h"
#include "renew.h"
#include "settings.h"
#include "tls.h"
#include "uplink.h"
#include "vtime.h"
#include "wire.h"

#define TOKEN_MAX 512
#define MACHINE_ID_MAX 64
#define ANSWER_MAX_BYTES (1024u * 1024u) /* a certificate chain, with room */
#define ANSWER_TIMEOUT_MS 30000
#define CA_FILE_MAX (1024u * 1024u)

typedef struct {
	cfg_cli_t cfg; /* -c FILE and --setting flags */
	const char *collector, *ca, *token, *token_file;
	bool force;
} enroll_cli_t;

/* One attempt: what the command learned, and how it ends. */
typedef struct {
	settings_t s;
	hostinfo_t host;
	char token[TOKEN_MAX + 1];
	char machine_id[MACHINE_ID_MAX + 1];
	EVP_PKEY *key;
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
	char err[600];
} enroll_t;

static void usage(FILE *out)
{
	fprintf(out, "usage: vigil-agent enroll --collector HOST:PORT --ca CA.pem\n"
		     "                          (--token-file FILE | --token TOKEN) [--force] [-c "
		     "FILE]\n"
		     "\n"
		     "Get this node's agent certificate from a collector with a join token.\n"
		     "The private key is made here (at tls_key, mode 0600; an existing key is\n"
		     "reused) and never sent. The collector's certificate must chain to CA.pem\n"
		     "and carry HOST (or server_name) before the token is sent. The certificate\n"
		     "chain is written to tls_cert and CA.pem copied to ca (the settings of\n"
		     "the config file).\n"
		     "\n"
		     "  --collector HOST:PORT   the collector's agent port\n"
		     "  --ca FILE               CA bundle (PEM) the collector certificate must "
		     "chain to\n"
		     "  --token-file FILE       read the join token from FILE (preferred), or set\n"
		     "                          VIGIL_ENROLL_TOKEN; --token TOKEN shows it in the\n"
		     "                          process list\n"
		     "  --force                 replace this host's existing identity (its old\n"
		     "                          certificates are revoked)\n"
		     "  -c, --config FILE       the agent's config file (tls_key, tls_cert, ca,\n"
		     "                          hostname, server_name)\n"
		     "  -h, --help              this help\n"
		     "\n"
		     "Exit status: 0 enrolled, 2 usage, 3 refused by the collector, 4 TLS or\n"
		     "certificate verification failed, 5 I/O (files, network, answer).\n");
}

/* Return 0 to go on, 1 after -h, -1 on a usage error. */
static int parse_args(int argc, char **argv, enroll_cli_t *c)
{
	static const struct option extra[] = {
		{"collector", required_argument, NULL, 'C'},
		{"ca", required_argument, NULL, 'A'},
		{"token", required_argument, NULL, 'T'},
		{"token-file", required_argument, NULL, 'F'},
		{"force", no_argument, NULL, 'f'},
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct option *opts = cfg_long_options(settings_table, extra);
	if (!opts)
		return -1;
	int rc = 0, ch;
	optind = 1;
	while (rc == 0 && (ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		if (ch == 'C')
			c->collector = optarg;
		else if (ch == 'A')
			c->ca = optarg;
		else if (ch == 'T')
			c->token = optarg;
		else if (ch == 'F')
			c->token_file = optarg;
		else if (ch == 'f')
			c->force = true;
		else if (ch == 'c')
			c->cfg.config_file = optarg;
		else if (ch == 'h')
			rc = 1;
		else if (ch >= CFG_OPT_BASE)
			rc = cfg_cli_flag(&c->cfg, ch, optarg);
		else
			rc = -1;
	}
	cfg_long_options_free(opts, extra);
	if (rc == 0 && optind < argc) {
		fprintf(stderr, "vigil-agent enroll: unexpected argument '%s'\n", argv[optind]);
		rc = -1;
	}
	if (rc == 0 && (!c->collector || !c->ca)) {
		fprintf(stderr, "vigil-agent enroll: --collector and --ca are required\n");
		rc = -1;
	}
	if (rc == 0 && c->token && c->token_file) {
		fprintf(stderr, "vigil-agent enroll: give --token or --token-file, not both\n");
		rc = -1;
	}
	return rc;
}

/* Trim surrounding white space of s in place; return it. */
static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

/* Read at most max bytes of path as text into out (NUL-terminated).
 * Return the length, or -1 with errno set (EFBIG if larger). */
static ssize_t read_small(const char *path, char *out, size_t max)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t got = 0;
	ssize_t n = 0;
	while (got < max && (n = read(fd, out + got, max - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		got += (size_t)n;
	}
	char extra;
	bool more = n >= 0 && got == max && read(fd, &extra, 1) == 1;
	int saved = errno;
	close(fd);
	out[got] = '\0';
	if (n < 0 || more) {
		errno = more ? EFBIG : saved;
		return -1;
	}
	return (ssize_t)got;
}

/* The token from --token-file, --token or VIGIL_ENROLL_TOKEN. */
static int read_token(const enroll_cli_t *c, enroll_t *e)
{
	char buf[TOKEN_MAX + 64];
	const char *from = "--token";
	if (c->token_file) {
		from = c->token_file;
		if (read_small(c->token_file, buf, sizeof(buf) - 1) < 0) {
			snprintf(e->err, sizeof(e->err), "cannot read the token from %s: %s",
				 c->token_file, strerror(errno));
			return -1;
		}
	} else if (c->token) {
		snprintf(buf, sizeof(buf), "%s", c->token);
	} else if (getenv("VIGIL_ENROLL_TOKEN")) {
		from = "VIGIL_ENROLL_TOKEN";
		snprintf(buf, sizeof(buf), "%s", getenv("VIGIL_ENROLL_TOKEN"));
	} else {
		snprintf(e->err, sizeof(e->err),
			 "no token: give --token-file FILE, VIGIL_ENROLL_TOKEN or --token");
		return -1;
	}
	char *t = trim(buf);
	size_t n = strlen(t);
	bool printable = n > 0 && n <= TOKEN_MAX;
	for (size_t i = 0; printable && i < n; i++)
		printable = t[i] > ' ' && t[i] < 0x7f;
	if (!printable) {
		snprintf(e->err, sizeof(e->err), "the token from %s is empty or not a token", from);
		OPENSSL_cleanse(buf, sizeof(buf));
		return -1;
	}
	memcpy(e->token, t, n + 1);
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
}

/* /etc/machine-id, if readable and sane; else "". */
static void read_machine_id(char *out, size_t outlen)
{
	char buf[MACHINE_ID_MAX + 2];
	out[0] = '\0';
	if (read_small("/etc/machine-id", buf, sizeof(buf) - 1) < 0)
		return;
	char *id = trim(buf);
	size_t n = strlen(id);
	if (n == 0 || n > MACHINE_ID_MAX || n >= outlen || strspn(id, "0123456789abcdef") != n)
		return;
	memcpy(out, id, n + 1);
}

/* TCP connection to host:port with the connect timeout for every
 * socket operation. Return the socket, or -1 with e->err set. */
static int tcp_connect(enroll_t *e, const char *host, const char *port)
{
	struct addrinfo hints = {0}, *res = NULL;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	int gai = getaddrinfo(host, port, &hints, &res);
	if (gai != 0) {
		snprintf(e->err, sizeof(e->err), "cannot resolve %s: %s", host, gai_strerror(gai));
		return -1;
	}
	int64_t ms = e->s.connect_timeout_ms;
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	int fd = -1, err = 0;
	for (struct addrinfo *r = res; r && fd < 0; r = r->ai_next) {
		fd = socket(r->ai_family, r->ai_socktype | SOCK_CLOEXEC, r->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		/* Linux applies SO_SNDTIMEO to connect() too */
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (connect(fd, r->ai_addr, r->ai_addrlen) != 0) {
			err = errno == EINPROGRESS ? ETIMEDOUT : errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(e->err, sizeof(e->err), "cannot connect to %s:%s: %s", host, port,
			 strerror(err));
	return fd;
}

static bool is_ip_literal(const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;
	return inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
}

/* The reason of the TLS failure on e->ssl: exit code and e->err. */
static int tls_failed(enroll_t *e, const char *when, int ssl_rc)
{
	int kind = SSL_get_error(e->ssl, ssl_rc);
	unsigned long err = 0, x;
	while ((x = ERR_get_error()) != 0)
		err = x;
	char why[400];
	if (err && ERR_GET_REASON(err) == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED) {
		snprintf(e->err, sizeof(e->err),
			 "%s: the collector wants a client certificate on this port: is "
			 "enrollment on there (agent_issuer_cert, agent_issuer_key)?",
			 when);
		return ENROLL_EXIT_TLS;
	}
	if (SSL_get_verify_result(e->ssl) == X509_V_OK && !err &&
	    (kind == SSL_ERROR_SYSCALL || kind == SSL_ERROR_ZERO_RETURN)) {
		snprintf(e->err, sizeof(e->err), "%s: %s", when,
			 errno == EAGAIN || errno == EWOULDBLOCK ? "timed out"
			 : errno				 ? strerror(errno)
				 : "the collector closed the connection");
		return ENROLL_EXIT_IO;
	}
	tls_failure_reason(e->ssl, err, why, sizeof(why));
	snprintf(e->err, sizeof(e->err), "%s: %s", when, why);
	return ENROLL_EXIT_TLS;
}

/* Connect and finish a TLS 1.3 handshake that verifies the collector.
 * Return ENROLL_EXIT_OK, or an exit code with e->err set. */
static int tls_open(enroll_t *e, const enroll_cli_t *c)
{
	char host[256], port[8];
	if (uplink_parse_address(c->collector, host, sizeof(host), port, sizeof(port)) != 0) {
		snprintf(e->err, sizeof(e->err), "--collector '%s' is not HOST:PORT", c->collector);
		return ENROLL_EXIT_USAGE;
	}
	tls_files_t f = {NULL, NULL, c->ca, "1.3"};
	e->ctx = tls_client_ctx_new(&f, e->err, sizeof(e->err));
	if (!e->ctx)
		return ENROLL_EXIT_USAGE;
	const char *name = e->s.server_name[0] ? e->s.server_name : host;
	if (is_ip_literal(name)) {
		e->ssl = tls_ssl_new(e->ctx, NULL);
		if (e->ssl && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(e->ssl), name) != 1) {
			SSL_free(e->ssl);
			e->ssl = NULL;
		}
	} else {
		e->ssl = tls_ssl_new(e->ctx, name);
	}
	if (!e->ssl) {
		snprintf(e->err, sizeof(e->err), "cannot set up TLS for %s", name);
		tls_clear_errors();
		return ENROLL_EXIT_IO;
	}
	e->fd = tcp_connect(e, host, port);
	if (e->fd < 0)
		return ENROLL_EXIT_IO;
	if (SSL_set_fd(e->ssl, e->fd) != 1) {
		snprintf(e->err, sizeof(e->err), "cannot set up TLS");
		return ENROLL_EXIT_IO;
	}
	errno = 0;
	int rc = SSL_connect(e->ssl);
	if (rc != 1)
		return tls_failed(e, "TLS handshake with the collector failed", rc);
	/* SSL_VERIFY_PEER already failed the handshake otherwise; the token is
	 * sent only past this point */
	if (SSL_get_verify_result(e->ssl) != X509_V_OK || !SSL_get0_peer_certificate(e->ssl)) {
		snprintf(e->err, sizeof(e->err), "the collector's certificate is not verified");
		return ENROLL_EXIT_TLS;
	}
	return ENROLL_EXIT_OK;
}

/* Read exactly n bytes before the deadline. */
static int read_exact(enroll_t *e, uint8_t *buf, size_t n, int64_t deadline_ns, int *code)
{
	size_t got = 0;
	while (got < n) {
		int64_t left_ms = (deadline_ns - vtime_mono_ns()) / 1000000;
		if (left_ms <= 0) {
			snprintf(e->err, sizeof(e->err), "no answer from the collector within %d s",
				 ANSWER_TIMEOUT_MS / 1000);
			*code = ENROLL_EXIT_IO;
			return -1;
		}
		struct timeval tv = {(time_t)(left_ms / 1000),
				     (suseconds_t)(left_ms % 1000) * 1000};
		setsockopt(e->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		errno = 0;
		int r = SSL_read(e->ssl, buf + got, (int)(n - got));
		if (r <= 0) {
			if (SSL_get_error(e->ssl, r) == SSL_ERROR_WANT_READ)
				continue;
			*code = tls_failed(e, "reading the collector's answer", r);
			return -1;
		}
		got += (size_t)r;
	}
	return 0;
}

/* Send the request and read one answer into *out (wire_collector_free).
 * Return ENROLL_EXIT_OK, or an exit code with e->err set. */
static int exchange(enroll_t *e, const Vigil__V1__AgentMessage *m,
		    Vigil__V1__CollectorMessage **out)
{
	size_t len = 0;
	uint8_t *frame = wire_frame_agent(m, FRAME_DEFAULT_MAX_BYTES, &len);
	if (!frame) {
		snprintf(e->err, sizeof(e->err), "cannot encode the request");
		return ENROLL_EXIT_IO;
	}
	errno = 0;
	int w = SSL_write(e->ssl, frame, (int)len);
	OPENSSL_cleanse(frame, len); /* it holds the token */
	free(frame);
	if (w != (int)len)
		return tls_failed(e, "sending the request", w);
	int64_t deadline = vtime_mono_ns() + (int64_t)ANSWER_TIMEOUT_MS * 1000000;
	uint8_t hdr[FRAME_HEADER_BYTES];
	int code = ENROLL_EXIT_IO;
	if (read_exact(e, hdr, sizeof(hdr), deadline, &code) != 0)
		return code;
	uint32_t n = 0;
	frame_status_t fs = frame_check(hdr, sizeof(hdr), ANSWER_MAX_BYTES, &n);
	if (fs != FRAME_OK && fs != FRAME_NEED_MORE) {
		snprintf(e->err, sizeof(e->err), "bad answer from the collector: %s",
			 frame_status_str(fs));
		return ENROLL_EXIT_IO;
	}
	uint8_t *payload = malloc(n);
	if (!payload) {
		snprintf(e->err, sizeof(e->err), "out of memory");
		return ENROLL_EXIT_IO;
	}
	if (read_exact(e, payload, n, deadline, &code) != 0) {
		free(payload);
		return code;
	}
	*out = wire_collector_unpack(payload, n);
	free(payload);
	if (!*out) {
		snprintf(e->err, sizeof(e->err), "undecodable answer from the collector");
		return ENROLL_EXIT_IO;
	}
	return ENROLL_EXIT_OK;
}

/* Write the issued chain to tls_cert and the CA to ca; print the outcome. */
static int save(enroll_t *e, const enroll_cli_t *c, const Vigil__V1__EnrollResponse *r)
{
	int64_t not_after = 0;
	if (renew_write_chain(e->s.tls_cert, e->key, r->certificate_der, r->chain_der,
			      r->n_chain_der, &not_after, e->err, sizeof(e->err)) != 0)
		return ENROLL_EXIT_IO;
	if (certfile_copy_atomic(c->ca, e->s.ca, 0644, CA_FILE_MAX, e->err, sizeof(e->err)) != 0)
		return ENROLL_EXIT_IO;
	char until[64];
	certfile_time_str(not_after ? not_after : r->not_after_ns, until, sizeof(until));
	printf("enrolled as %s; certificate valid until %s\n"
	       "  certificate chain  %s\n  private key        %s\n  CA                 %s\n",
	       r->agent_id ? r->agent_id : "?", until, e->s.tls_cert, e->s.tls_key, e->s.ca);
	return ENROLL_EXIT_OK;
}

static const char *error_code_name(int code)
{
	const ProtobufCEnumValue *v =
		protobuf_c_enum_descriptor_get_value(&vigil__v1__error_code__descriptor, code);
	return v ? v->name : "unknown";
}

/* Everything after the settings are loaded. */
static int run(enroll_t *e, const enroll_cli_t *c)
{
	if (read_token(c, e) != 0)
		return ENROLL_EXIT_USAGE;
	hostinfo_read(&e->host, e->s.hostname, e->s.proc_root);
	read_machine_id(e->machine_id, sizeof(e->machine_id));
	if (!e->host.hostname[0]) {
		snprintf(e->err, sizeof(e->err), "no host name (set hostname)");
		return ENROLL_EXIT_USAGE;
	}
	bool created = false;
	e->key = certfile_load_or_create_key(e->s.tls_key, &created, e->err, sizeof(e->err));
	if (!e->key)
		return ENROLL_EXIT_IO;
	log_info("%s private key %s", created ? "created" : "using the existing", e->s.tls_key);
	uint8_t *csr = NULL;
	size_t csr_len = 0;
	if (certfile_make_csr(e->key, e->host.hostname, &csr, &csr_len, e->err, sizeof(e->err)) !=
	    0)
		return ENROLL_EXIT_IO;
	int code = tls_open(e, c);
	if (code != ENROLL_EXIT_OK) {
		free(csr);
		return code;
	}
	Vigil__V1__EnrollRequest req = VIGIL__V1__ENROLL_REQUEST__INIT;
	req.token = e->token;
	req.csr_der = (ProtobufCBinaryData){csr_len, csr};
	req.hostname = e->host.hostname;
	req.machine_id = e->machine_id;
	req.force = c->force;
	req.agent_version = e->host.agent_version;
	Vigil__V1__AgentMessage m = VIGIL__V1__AGENT_MESSAGE__INIT;
	m.msg_case = VIGIL__V1__AGENT_MESSAGE__MSG_ENROLL;
	m.enroll = &req;
	Vigil__V1__CollectorMessage *ans = NULL;
	code = exchange(e, &m, &ans);
	free(csr);
	if (code != ENROLL_EXIT_OK)
		return code;
	if (ans->msg_case == VIGIL__V1__COLLECTOR_MESSAGE__MSG_ENROLLED) {
		code = save(e, c, ans->enrolled);
	} else if (ans->msg_case == VIGIL__V1__COLLECTOR_MESSAGE__MSG_ERROR) {
		snprintf(e->err, sizeof(e->err), "%.300s (%s)",
			 ans->error->message && ans->error->message[0] ? ans->error->message
								       : "enrollment refused",
			 error_code_name(ans->error->code));
		code = ENROLL_EXIT_REFUSED;
	} else {
		snprintf(e->err, sizeof(e->err), "unexpected answer from the collector");
		code = ENROLL_EXIT_IO;
	}
	wire_collector_free(ans);
	return code;
}

int enroll_main(int argc, char **argv)
{
	enroll_cli_t c = {0};
	int rc = parse_args(argc, argv, &c);
	if (rc != 0) {
		usage(rc > 0 ? stdout : stderr);
		cfg_cli_free(&c.cfg);
		return rc > 0 ? ENROLL_EXIT_OK : ENROLL_EXIT_USAGE;
	}
	enroll_t *e = calloc(1, sizeof(*e));
	if (!e) {
		cfg_cli_free(&c.cfg);
		return ENROLL_EXIT_IO;
	}
	e->fd = -1;
	int code = ENROLL_EXIT_USAGE;
	if (cfg_cli_load(settings_table, &c.cfg, &e->s, e->err, sizeof(e->err)) == 0 &&
	    settings_validate(&e->s, e->err, sizeof(e->err)) == 0)
		code = run(e, &c);
	if (code != ENROLL_EXIT_OK)
		fprintf(stderr, "vigil-agent enroll: %s\n", e->err);
	if (e->ssl) {
		if (code == ENROLL_EXIT_OK || code == ENROLL_EXIT_REFUSED)
			SSL_shutdown(e->ssl);
		SSL_free(e->ssl);
	}
	if (e->fd >= 0)
		close(e->fd);
	tls_ctx_unref(e->ctx);
	EVP_PKEY_free(e->key);
	tls_clear_errors();
	cfg_free(settings_table, &e->s);
	OPENSSL_cleanse(e->token, sizeof(e->token));
	free(e);
	cfg_cli_free(&c.cfg);
	return code;
}
