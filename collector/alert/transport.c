// SPDX-License-Identifier: Apache-2.0
/* TLS client connections to alert receivers, blocking with deadlines on a
 * sender thread (see transport.h). */
#include "alert/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "vtime.h"

struct alert_tls {
	SSL_CTX *ctx;
};

struct alert_conn {
	int fd;
	SSL *ssl;
	int broken; /* no close_notify on close */
};

/* Put the first queued OpenSSL error (or fallback) into err; clear the queue. */
static void ssl_error(const char *what, const char *fallback, char *err, size_t errlen)
{
	unsigned long e = ERR_get_error();
	char buf[256];
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s: %s", what, e ? buf : fallback);
	ERR_clear_error();
}

alert_tls_t *alert_tls_new(const char *ca_file, char *err, size_t errlen)
{
	alert_tls_t *t = calloc(1, sizeof(*t));
	if (!t || !(t->ctx = SSL_CTX_new(TLS_client_method()))) {
		snprintf(err, errlen, "out of memory");
		free(t);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
	int ok = ca_file && ca_file[0] ? SSL_CTX_load_verify_locations(t->ctx, ca_file, NULL)
				       : SSL_CTX_set_default_verify_paths(t->ctx);
	if (ok != 1) {
		ssl_error(ca_file && ca_file[0] ? ca_file : "system CAs", "cannot load", err,
			  errlen);
		alert_tls_free(t);
		return NULL;
	}
	return t;
}

void alert_tls_free(alert_tls_t *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

static int remaining_ms(int64_t deadline_ns)
{
	int64_t left = (deadline_ns - vtime_mono_ns()) / 1000000;
	return left <= 0 ? 0 : left > 60000 ? 60000 : (int)left;
}

/* Wait for fd to be ready for events. Return 0, or -1 at the deadline. */
static int wait_fd(int fd, short events, int64_t deadline_ns)
{
	for (;;) {
		int ms = remaining_ms(deadline_ns);
		if (ms == 0)
			return -1;
		struct pollfd p = {fd, events, 0};
		int r = poll(&p, 1, ms);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

static int tcp_connect(const char *host, int port, int64_t deadline_ns, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	char ports[8];
	snprintf(ports, sizeof(ports), "%d", port);
	int gai = getaddrinfo(host, ports, &hints, &res);
	if (gai != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(gai));
		return -1;
	}
	int fd = -1;
	snprintf(err, errlen, "cannot connect to %s:%d", host, port);
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
		if (r != 0 && errno == EINPROGRESS) {
			int soerr = 0;
			socklen_t sl = sizeof(soerr);
			if (wait_fd(fd, POLLOUT, deadline_ns) != 0) {
				snprintf(err, errlen, "connect to %s:%d timed out", host, port);
				soerr = ETIMEDOUT;
			} else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) {
				soerr = errno;
			}
			r = soerr ? -1 : 0;
			if (soerr && soerr != ETIMEDOUT)
				snprintf(err, errlen, "connect to %s:%d: %s", host, port,
					 strerror(soerr));
		} else if (r != 0) {
			snprintf(err, errlen, "connect to %s:%d: %s", host, port, strerror(errno));
		}
		if (r == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* Drive an SSL call that may want to read or write until it completes.
 * Return its result (> 0), or -1 with err set. */
static int ssl_drive(alert_conn_t *c, int (*op)(SSL *, void *, int), void *arg, int n,
		     int64_t deadline_ns, const char *what, char *err, size_t errlen)
{
	for (;;) {
		ERR_clear_error();
		int r = op(c->ssl, arg, n);
		if (r > 0)
			return r;
		int e = SSL_get_error(c->ssl, r);
		short ev = e == SSL_ERROR_WANT_READ    ? POLLIN
			   : e == SSL_ERROR_WANT_WRITE ? POLLOUT
						       : 0;
		if (ev && wait_fd(c->fd, ev, deadline_ns) == 0)
			continue;
		c->broken = 1;
		if (ev) {
			snprintf(err, errlen, "%s timed out", what);
		} else if (e == SSL_ERROR_ZERO_RETURN) {
			return 0;
		} else if (e == SSL_ERROR_SSL && SSL_get_verify_result(c->ssl) != X509_V_OK) {
			snprintf(err, errlen, "%s: certificate not verified: %s", what,
				 X509_verify_cert_error_string(SSL_get_verify_result(c->ssl)));
			ERR_clear_error();
		} else if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
			snprintf(err, errlen, "%s: %s", what,
				 errno ? strerror(errno) : "connection closed");
		} else {
			ssl_error(what, "TLS error", err, errlen);
		}
		return -1;
	}
}

static int op_connect(SSL *ssl, void *arg, int n)
{
	(void)arg;
	(void)n;
	return SSL_connect(ssl);
}

static int op_write(SSL *ssl, void *arg, int n)
{
	return SSL_write(ssl, arg, n);
}

static int op_read(SSL *ssl, void *arg, int n)
{
	return SSL_read(ssl, arg, n);
}

/* The name or address the certificate must carry. */
static int set_peer_name(SSL *ssl, const char *host)
{
	unsigned char addr[16];
	if (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1)
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1 ? 0 : -1;
	SSL_set_tlsext_host_name(ssl, host);
	return SSL_set1_host(ssl, host) == 1 ? 0 : -1;
}

alert_conn_t *alert_conn_open(alert_tls_t *t, const char *host, int port, int64_t deadline_ns,
			      char *err, size_t errlen)
{
	int fd = tcp_connect(host, port, deadline_ns, err, errlen);
	if (fd < 0)
		return NULL;
	alert_conn_t *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->fd = fd;
	c->broken = 1;
	if (!(c->ssl = SSL_new(t->ctx)) || set_peer_name(c->ssl, host) != 0 ||
	    SSL_set_fd(c->ssl, fd) != 1) {
		ssl_error("TLS", "cannot set up", err, errlen);
		alert_conn_close(c);
		return NULL;
	}
	char what[300];
	snprintf(what, sizeof(what), "TLS handshake with %s:%d", host, port);
	err[0] = '\0';
	if (ssl_drive(c, op_connect, NULL, 0, deadline_ns, what, err, errlen) <= 0) {
		if (!err[0])
			snprintf(err, errlen, "%s: connection closed", what);
		alert_conn_close(c);
		return NULL;
	}
	c->broken = 0;
	return c;
}

int alert_conn_write(alert_conn_t *c, const void *buf, size_t len, int64_t deadline_ns, char *err,
		     size_t errlen)
{
	const char *p = buf;
	while (len > 0) {
		int chunk = len > 65536 ? 65536 : (int)len;
		int r = ssl_drive(c, op_write, (void *)p, chunk, deadline_ns, "write", err, errlen);
		if (r <= 0) {
			if (r == 0)
				snprintf(err, errlen, "write: connection closed");
			c->broken = 1;
			return -1;
		}
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

ssize_t alert_conn_read(alert_conn_t *c, void *buf, size_t cap, int64_t deadline_ns, char *err,
			size_t errlen)
{
	int n = cap > 65536 ? 65536 : (int)cap;
	return ssl_drive(c, op_read, buf, n, deadline_ns, "read", err, errlen);
}

int alert_conn_alive(alert_conn_t *c)
{
	/* Readable bytes may be TLS 1.3 session tickets or data the receiver
	 * should not send: read them (nothing blocks) until the stream is
	 * drained (alive) or ends (gone). */
	for (int rounds = 0; !c->broken && rounds < 64; rounds++) {
		struct pollfd p = {c->fd, POLLIN | POLLRDHUP, 0};
		if (poll(&p, 1, 0) == 0)
			return 1;
		char buf[4096];
		ERR_clear_error();
		int r = SSL_read(c->ssl, buf, sizeof(buf));
		if (r <= 0) {
			if (SSL_get_error(c->ssl, r) == SSL_ERROR_WANT_READ)
				return 1;
			c->broken = 1;
			ERR_clear_error();
		}
	}
	return !c->broken;
}

void alert_conn_close(alert_conn_t *c)
{
	if (!c)
		return;
	if (c->ssl) {
		if (!c->broken)
			SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	ERR_clear_error();
	close(c->fd);
	free(c);
}
