// SPDX-License-Identifier: Apache-2.0
/* Blocking TLS connections for short exchanges (see lg_bconn.h). */
#include "lg_bconn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "frame.h"
#include "tls.h"

/* The answers read here are small (a certificate chain at most). */
#define BCONN_MAX_FRAME (1024u * 1024u)

static void ssl_reason(SSL *ssl, int ret, const char *what, char *err, size_t errlen)
{
	int e = SSL_get_error(ssl, ret);
	unsigned long q = ERR_peek_last_error();
	long vr = SSL_get_verify_result(ssl);
	if (vr != X509_V_OK) {
		snprintf(err, errlen, "%s: collector certificate: %s", what,
			 X509_verify_cert_error_string(vr));
	} else if (q) {
		char buf[256];
		ERR_error_string_n(q, buf, sizeof(buf));
		snprintf(err, errlen, "%s: TLS: %s", what, buf);
	} else if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0)) {
		snprintf(err, errlen, "%s: the collector closed the connection", what);
	} else if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_WANT_READ ||
		   e == SSL_ERROR_WANT_WRITE) {
		snprintf(err, errlen, "%s: %s", what,
			 errno == EAGAIN || errno == EWOULDBLOCK ? "timed out" : strerror(errno));
	} else {
		snprintf(err, errlen, "%s: TLS error %d", what, e);
	}
	ERR_clear_error();
}

static int make_socket(const lg_run_t *run, uint32_t index, int timeout_ms)
{
	int fd = socket(run->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
		goto fail;
	if (run->source_addrs && run->addr.ss_family == AF_INET) {
		struct sockaddr_in src = {.sin_family = AF_INET};
		src.sin_addr.s_addr = htonl(0x7f010001u + index % run->source_addrs);
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, (const struct sockaddr *)&src, sizeof(src)) != 0)
			goto fail;
	}
	return fd;
fail : {
	int e = errno;
	close(fd);
	errno = e;
	return -1;
}
}

int lg_bconn_open(lg_bconn_t *c, const lg_run_t *run, uint32_t index, const lg_ident_t *id,
		  int timeout_ms, char *err, size_t errlen)
{
	c->ssl = NULL;
	c->fd = make_socket(run, index, timeout_ms);
	if (c->fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(c->fd, (const struct sockaddr *)&run->addr, run->addrlen) != 0) {
		snprintf(err, errlen, "connect: %s",
			 errno == EINPROGRESS ? "timed out" : strerror(errno));
		lg_bconn_close(c, false);
		return -1;
	}
	c->ssl = tls_ssl_new(run->ssl_ctx, run->server_name);
	if (!c->ssl || (id && lg_ident_use(c->ssl, id) != 0) || SSL_set_fd(c->ssl, c->fd) != 1) {
		snprintf(err, errlen, "cannot set up TLS");
		ERR_clear_error();
		lg_bconn_close(c, false);
		return -1;
	}
	if (!id)
		SSL_certs_clear(c->ssl); /* present nothing, whatever the context holds */
	int r = SSL_connect(c->ssl);
	if (r != 1) {
		ssl_reason(c->ssl, r, "handshake", err, errlen);
		lg_bconn_close(c, false);
		return -1;
	}
	return 0;
}

int lg_bconn_send(lg_bconn_t *c, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	size_t done = 0;
	while (done < len) {
		size_t n = 0;
		int r = SSL_write_ex(c->ssl, buf + done, len - done, &n);
		if (r != 1) {
			ssl_reason(c->ssl, r, "send", err, errlen);
			return -1;
		}
		done += n;
	}
	return 0;
}

static int read_exact(lg_bconn_t *c, uint8_t *buf, size_t len, char *err, size_t errlen)
{
	size_t done = 0;
	while (done < len) {
		size_t n = 0;
		int r = SSL_read_ex(c->ssl, buf + done, len - done, &n);
		if (r != 1) {
			ssl_reason(c->ssl, r, "receive", err, errlen);
			return -1;
		}
		done += n;
	}
	return 0;
}

Vigil__V1__CollectorMessage *lg_bconn_recv(lg_bconn_t *c, char *err, size_t errlen)
{
	uint8_t hdr[FRAME_HEADER_BYTES];
	if (read_exact(c, hdr, sizeof(hdr), err, errlen) != 0)
		return NULL;
	uint32_t n = 0;
	frame_status_t fs = frame_check(hdr, sizeof(hdr), BCONN_MAX_FRAME, &n);
	if (fs == FRAME_EMPTY || fs == FRAME_TOO_LARGE) {
		snprintf(err, errlen, "receive: %s", frame_status_str(fs));
		return NULL;
	}
	uint8_t *p = malloc(n);
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	Vigil__V1__CollectorMessage *m = NULL;
	if (read_exact(c, p, n, err, errlen) == 0) {
		m = wire_collector_unpack(p, n);
		if (!m)
			snprintf(err, errlen, "receive: undecodable CollectorMessage");
	}
	free(p);
	return m;
}

int lg_bconn_shutdown_wait(lg_bconn_t *c, char *err, size_t errlen)
{
	if (SSL_shutdown(c->ssl) < 0) {
		ssl_reason(c->ssl, -1, "close", err, errlen);
		return -1;
	}
	uint8_t buf[256];
	for (;;) {
		size_t n = 0;
		int r = SSL_read_ex(c->ssl, buf, sizeof(buf), &n);
		if (r == 1)
			continue; /* whatever the collector still says */
		int e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0) ||
		    (e == SSL_ERROR_SYSCALL && errno == ECONNRESET) ||
		    (e == SSL_ERROR_SSL &&
		     ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
			ERR_clear_error();
			shutdown(c->fd, SHUT_RDWR);
			return 0;
		}
		ssl_reason(c->ssl, r, "waiting for the collector to close", err, errlen);
		return -1;
	}
}

void lg_bconn_close(lg_bconn_t *c, bool graceful)
{
	if (c->ssl) {
		if (graceful)
			SSL_shutdown(c->ssl); /* close_notify; the reply is not awaited */
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	ERR_clear_error();
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
}
