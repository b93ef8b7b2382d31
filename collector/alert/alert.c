// SPDX-License-Identifier: Apache-2.0
/* Alert senders: one thread per receiver claims due outbox rows, delivers
 * them at a bounded rate and settles them; a failure backs the receiver
 * off exponentially (see alert.h). */
#include "alert/alert.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alert/alert_int.h"
#include "alert/outbox.h"
#include "log.h"
#include "rules/rules.h"
#include "settings.h"
#include "vtime.h"

#define BATCH_MAX 32
#define IDLE_POLL_MS 500
#define REGISTER_EVERY_MS 60000 /* well inside the trigger's 5 minutes */
#define BACKOFF_FIRST_MS 1000

typedef struct sender {
	receiver_t r;
	struct alert *owner;
	outbox_t *ob;
	pthread_t thread;
	bool started;
	double tokens; /* rate limit: a token bucket of alert_rate per second */
	int64_t tokens_ns;
	uint64_t delivered, failures;
} sender_t;

struct alert {
	collector_t *col;
	int min_severity;
	sender_t senders[2];
	int n;
	atomic_bool stop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static int severity_parse(const char *s)
{
	static const char *const names[] = {"info", "low", "medium", "high", "critical"};
	for (int i = 0; i < 5; i++)
		if (strcasecmp(s, names[i]) == 0)
			return i + 1;
	return 0;
}

/* Sleep up to ms, or less if told to stop. Return true if stopping. */
static bool nap(alert_t *a, int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&a->mu);
	while (!atomic_load(&a->stop) && pthread_cond_timedwait(&a->cv, &a->mu, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&a->mu);
	return atomic_load(&a->stop);
}

/* Wait for a token of the receiver's rate. Return true if stopping. */
static bool take_token(sender_t *s)
{
	double rate = (double)SETTING(s->owner->col, alert_rate);
	for (;;) {
		int64_t now = vtime_mono_ns();
		s->tokens += (double)(now - s->tokens_ns) * rate / 1e9;
		s->tokens_ns = now;
		if (s->tokens > rate)
			s->tokens = rate;
		if (s->tokens >= 1.0) {
			s->tokens -= 1.0;
			return false;
		}
		if (nap(s->owner, (int64_t)((1.0 - s->tokens) * 1000.0 / rate) + 1))
			return true;
	}
}

/* A row that has nothing left to say: its finding is gone, or an update of
 * a finding that is resolved by now. */
static bool obsolete(const alert_item_t *it)
{
	return !it->rule ||
	       (!strcmp(it->action, "update") && it->state && !strcmp(it->state, "resolved"));
}

/* Deliver one claimed batch. Return 0 if all went, -1 at the first
 * failure (err says why; the rest of the batch waits too), 1 if stopping. */
static int deliver_batch(sender_t *s, alert_item_t *items, int n, int *done, char *err,
			 size_t errlen)
{
	collector_t *col = s->owner->col;
	int rc = 0;
	uint64_t gen[BATCH_MAX]; /* the connection each item went to */
	for (int i = 0; i < n; i++) {
		done[i] = OUTBOX_FAILED;
		if (rc != 0)
			continue;
		if (obsolete(&items[i])) {
			done[i] = OUTBOX_DROPPED;
			continue;
		}
		const rule_info_t *ri = rules_find(items[i].rule);
		if (ri) {
			items[i].title = ri->title;
			items[i].control = ri->control;
			items[i].remediation = ri->remediation;
		}
		if (take_token(s)) {
			rc = 1;
			continue;
		}
		int64_t deadline = vtime_mono_ns() + SETTING(col, alert_timeout) * 1000000;
		if (s->r.send(&s->r, &items[i], deadline, err, errlen) != 0) {
			rc = -1;
			continue;
		}
		done[i] = OUTBOX_SENT;
		gen[i] = s->r.conn_gen;
	}
	if (!s->r.confirm)
		return rc;
	/* Unacknowledged frames count only if written to the connection that
	 * is still open now: a failure, or a reconnect midway, leaves the
	 * frames of a closed connection undelivered. */
	int confirmed = rc == 0 ? s->r.confirm(&s->r, err, errlen) : -1;
	for (int i = 0; i < n; i++)
		if (done[i] == OUTBOX_SENT && (confirmed != 0 || gen[i] != s->r.conn_gen))
			done[i] = OUTBOX_FAILED;
	if (rc == 0 && confirmed != 0)
		rc = -1;
	return rc;
}

static void *sender_main(void *arg)
{
	sender_t *s = arg;
	alert_t *a = s->owner;
	alert_item_t items[BATCH_MAX];
	int done[BATCH_MAX];
	int64_t backoff[BATCH_MAX];
	int streak = 0;
	bool db_down = false;
	s->tokens_ns = vtime_mono_ns();
	s->tokens = 1.0;
	int64_t registered_ns = vtime_mono_ns();
	while (!atomic_load(&a->stop)) {
		/* say this receiver is still served (see outbox_set_receivers) */
		if (vtime_mono_ns() - registered_ns > REGISTER_EVERY_MS * INT64_C(1000000)) {
			outbox_receiver_t me = {s->r.name, a->min_severity,
						SETTING(a->col, alert_update_interval)};
			if (outbox_set_receivers(s->ob, &me, 1) == 0)
				registered_ns = vtime_mono_ns();
			else
				log_warn("alert %s: %s", s->r.name, outbox_error(s->ob));
		}
		int64_t rate = SETTING(a->col, alert_rate);
		int limit = s->r.batch < rate ? s->r.batch : (int)rate;
		int n = outbox_claim(s->ob, s->r.name, limit, items);
		if (n < 0) {
			if (!db_down)
				log_warn("alert %s: %s; retrying", s->r.name, outbox_error(s->ob));
			db_down = true;
			nap(a, BACKOFF_FIRST_MS);
			continue;
		}
		db_down = false;
		if (n == 0) {
			nap(a, IDLE_POLL_MS);
			continue;
		}
		char err[512] = "";
		int rc = deliver_batch(s, items, n, done, err, sizeof(err));
		int64_t wait = BACKOFF_FIRST_MS << (streak < 20 ? streak : 20);
		if (wait > SETTING(a->col, alert_retry_max))
			wait = SETTING(a->col, alert_retry_max);
		int sent = 0;
		for (int i = 0; i < n; i++) {
			backoff[i] = rc < 0 ? wait : 0;
			sent += done[i] == OUTBOX_SENT;
		}
		if (outbox_settle(s->ob, s->r.name, items, n, done, backoff, err) != 0) {
			log_warn("alert %s: %s; the batch is delivered again", s->r.name,
				 outbox_error(s->ob));
			continue;
		}
		s->delivered += (uint64_t)sent;
		if (rc < 0) {
			s->failures++;
			if (streak == 0)
				log_warn("alert %s: delivery failed (%s); retrying with backoff",
					 s->r.name, err);
			else
				log_debug("alert %s: delivery failed again (%s); next in %lld ms",
					  s->r.name, err, (long long)wait);
			streak++;
			nap(a, wait);
		} else if (rc == 0 && streak > 0) {
			log_info("alert %s: delivering again after %d failed attempt(s)", s->r.name,
				 streak);
			streak = 0;
		}
	}
	return NULL;
}

/* Set up the webhook receiver from its settings. */
static int setup_webhook(sender_t *s, const settings_t *st, char *err, size_t errlen)
{
	receiver_t *r = &s->r;
	r->name = "webhook";
	r->batch = 1;
	r->send = deliver_webhook;
	if (alert_url_parse(st->alert_webhook_url, &r->url) != 0) {
		snprintf(err, errlen, "alert_webhook_url: not an https:// URL");
		return -1;
	}
	for (const char *p = st->alert_webhook_token; *p; p++)
		if (*p <= 32 || *p == 127) {
			snprintf(err, errlen, "alert_webhook_token: printable characters only");
			return -1;
		}
	r->token = st->alert_webhook_token;
	r->tls = alert_tls_new(st->alert_webhook_ca, err, errlen);
	return r->tls ? 0 : -1;
}

static int setup_syslog(sender_t *s, const settings_t *st, char *err, size_t errlen)
{
	receiver_t *r = &s->r;
	r->name = "syslog";
	r->batch = BATCH_MAX;
	r->send = deliver_syslog;
	r->confirm = deliver_syslog_confirm;
	if (alert_hostport_parse(st->alert_syslog, r->host, sizeof(r->host), &r->port) != 0) {
		snprintf(err, errlen, "alert_syslog: not host:port");
		return -1;
	}
	r->tls = alert_tls_new(st->alert_syslog_ca, err, errlen);
	return r->tls ? 0 : -1;
}

alert_t *alert_new(collector_t *col, char *err, size_t errlen)
{
	const settings_t *st = col->settings;
	alert_t *a = calloc(1, sizeof(*a));
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->col = col;
	pthread_mutex_init(&a->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (!(a->min_severity = severity_parse(st->alert_min_severity))) {
		snprintf(err, errlen,
			 "alert_min_severity: not info, low, medium, high or critical");
		goto fail;
	}
	if (st->alert_webhook_url[0] && setup_webhook(&a->senders[a->n++], st, err, errlen) != 0)
		goto fail;
	if (st->alert_syslog[0] && setup_syslog(&a->senders[a->n++], st, err, errlen) != 0)
		goto fail;
	for (int i = 0; i < a->n; i++) {
		char app[64];
		snprintf(app, sizeof(app), "vigil-collector-alert-%s", a->senders[i].r.name);
		a->senders[i].owner = a;
		if (!(a->senders[i].ob = outbox_new(st->db, app))) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	return a;
fail:
	alert_free(a);
	return NULL;
}

int alert_start(alert_t *a)
{
	outbox_receiver_t recv[2];
	for (int i = 0; i < a->n; i++)
		recv[i] = (outbox_receiver_t){a->senders[i].r.name, a->min_severity,
					      SETTING(a->col, alert_update_interval)};
	if (a->n == 0)
		return 0; /* no receivers here: others' registrations stay */
	outbox_t *ob = outbox_new(a->col->settings->db, "vigil-collector-alert");
	int rc = ob ? outbox_set_receivers(ob, recv, (size_t)a->n) : -1;
	if (rc != 0)
		log_error("alert: cannot set the receivers: %s",
			  ob ? outbox_error(ob) : "no memory");
	outbox_free(ob);
	if (rc != 0)
		return -1;
	for (int i = 0; i < a->n; i++) {
		sender_t *s = &a->senders[i];
		if (pthread_create(&s->thread, NULL, sender_main, s) != 0) {
			log_error("alert: cannot start the %s sender", s->r.name);
			return -1;
		}
		s->started = true;
		log_info("alert: forwarding findings of severity %s and above to the %s",
			 a->col->settings->alert_min_severity, s->r.name);
	}
	return 0;
}

void alert_free(alert_t *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	atomic_store(&a->stop, true);
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	for (int i = 0; i < a->n; i++) {
		sender_t *s = &a->senders[i];
		if (s->started) {
			pthread_join(s->thread, NULL);
			log_info("alert %s: %llu delivered, %llu failed attempt(s)", s->r.name,
				 (unsigned long long)s->delivered, (unsigned long long)s->failures);
		}
		outbox_abort(s->ob);
		outbox_free(s->ob);
		alert_conn_close(s->r.conn);
		alert_tls_free(s->r.tls);
	}
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
	free(a);
}
