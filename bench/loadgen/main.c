// SPDX-License-Identifier: Apache-2.0
/*
 * vigil-loadgen: simulates many agents, each with its own client
 * certificate, sending real protobuf batches to a collector over mutual
 * TLS, and reports throughput and acknowledgement latency on one line.
 *
 * main.c: command line, set-up (identities, TLS context, worker threads),
 * progress lines, signals and the final report.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/thread.h>
#include <openssl/ssl.h>

#include "frame.h"
#include "lg_cert.h"
#include "lg_enroll.h"
#include "lg_run.h"
#include "lg_worker.h"
#include "log.h"
#include "tls.h"
#include "vtime.h"

#define DEFAULT_EVENTS 1000000u

typedef struct {
	const char *connect;
	const char *ca;
	const char *server_name;
	const char *issuer_cert, *issuer_key;
	const char *cert, *key;
	const char *prefix;
	const char *tls_min_version;
	uint64_t agents, threads, batch_events, event_bytes, events, window, bad_every;
	uint64_t backoff_min, backoff_max, source_addrs;
	double duration, rate, timeout, report_interval, ramp;
	bool events_given, idle, quiet, verbose;
	/* enrollment and handshake storms (lg_enroll.h) */
	const char *enroll_token, *enroll_dir;
	uint64_t enroll_concurrency, handshakes, concurrency;
	bool enroll_force, enroll_only, no_hello;
} opts_t;

enum {
	OPT_CONNECT = 256,
	OPT_CA,
	OPT_SERVER_NAME,
	OPT_ISSUER_CERT,
	OPT_ISSUER_KEY,
	OPT_CERT,
	OPT_KEY,
	OPT_PREFIX,
	OPT_AGENTS,
	OPT_THREADS,
	OPT_BATCH_EVENTS,
	OPT_EVENT_BYTES,
	OPT_EVENTS,
	OPT_DURATION,
	OPT_RATE,
	OPT_WINDOW,
	OPT_BAD_EVERY,
	OPT_IDLE,
	OPT_TIMEOUT,
	OPT_QUIET,
	OPT_REPORT,
	OPT_TLS_MIN,
	OPT_BACKOFF_MIN,
	OPT_BACKOFF_MAX,
	OPT_RAMP,
	OPT_SOURCE_ADDRS,
	OPT_ENROLL_TOKEN,
	OPT_ENROLL_CONCURRENCY,
	OPT_ENROLL_DIR,
	OPT_ENROLL_FORCE,
	OPT_ENROLL_ONLY,
	OPT_HANDSHAKES,
	OPT_CONCURRENCY,
	OPT_NO_HELLO,
};

static const struct option long_opts[] = {
	{"connect", required_argument, NULL, OPT_CONNECT},
	{"ca", required_argument, NULL, OPT_CA},
	{"server-name", required_argument, NULL, OPT_SERVER_NAME},
	{"issuer-cert", required_argument, NULL, OPT_ISSUER_CERT},
	{"issuer-key", required_argument, NULL, OPT_ISSUER_KEY},
	{"cert", required_argument, NULL, OPT_CERT},
	{"key", required_argument, NULL, OPT_KEY},
	{"agent-prefix", required_argument, NULL, OPT_PREFIX},
	{"agents", required_argument, NULL, OPT_AGENTS},
	{"threads", required_argument, NULL, OPT_THREADS},
	{"batch-events", required_argument, NULL, OPT_BATCH_EVENTS},
	{"event-bytes", required_argument, NULL, OPT_EVENT_BYTES},
	{"events", required_argument, NULL, OPT_EVENTS},
	{"duration", required_argument, NULL, OPT_DURATION},
	{"rate", required_argument, NULL, OPT_RATE},
	{"window", required_argument, NULL, OPT_WINDOW},
	{"bad-every", required_argument, NULL, OPT_BAD_EVERY},
	{"idle", no_argument, NULL, OPT_IDLE},
	{"timeout", required_argument, NULL, OPT_TIMEOUT},
	{"quiet", no_argument, NULL, OPT_QUIET},
	{"report-interval", required_argument, NULL, OPT_REPORT},
	{"tls-min-version", required_argument, NULL, OPT_TLS_MIN},
	{"backoff-min", required_argument, NULL, OPT_BACKOFF_MIN},
	{"backoff-max", required_argument, NULL, OPT_BACKOFF_MAX},
	{"ramp", required_argument, NULL, OPT_RAMP},
	{"source-addrs", required_argument, NULL, OPT_SOURCE_ADDRS},
	{"enroll-token", required_argument, NULL, OPT_ENROLL_TOKEN},
	{"enroll-concurrency", required_argument, NULL, OPT_ENROLL_CONCURRENCY},
	{"enroll-dir", required_argument, NULL, OPT_ENROLL_DIR},
	{"enroll-force", no_argument, NULL, OPT_ENROLL_FORCE},
	{"enroll-only", no_argument, NULL, OPT_ENROLL_ONLY},
	{"handshakes", required_argument, NULL, OPT_HANDSHAKES},
	{"concurrency", required_argument, NULL, OPT_CONCURRENCY},
	{"no-hello", no_argument, NULL, OPT_NO_HELLO},
	{"verbose", no_argument, NULL, 'v'},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{NULL, 0, NULL, 0},
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: vigil-loadgen [OPTIONS]\n"
		"Simulate many Vigil agents sending event batches to a collector over mutual TLS.\n"
		"\n"
		"Connection:\n"
		"  --connect HOST:PORT      collector address (default 127.0.0.1:7443; [::1]:7443 "
		"for IPv6)\n"
		"  --ca FILE                CA (PEM) that the collector certificate must chain to "
		"(required)\n"
		"  --server-name NAME       name checked against the collector certificate "
		"(default localhost)\n"
		"  --tls-min-version V      1.3 (default) or 1.2\n"
		"  --source-addrs N         bind agent i to 127.1.0.1 + i %% N (loopback "
		"collectors; "
		"default:\n"
		"                           no binding, one source address)\n"
		"  --backoff-min MS, --backoff-max MS\n"
		"                           reconnection delay after a failure: jittered (half to "
		"all of it),\n"
		"                           doubling from min to max (default 100 and 2000)\n"
		"Agent identities (one of):\n"
		"  --issuer-cert FILE --issuer-key FILE\n"
		"                           CA that issues each agent a fresh EC P-256 client "
		"certificate in\n"
		"                           memory: CN=<prefix><index as 5 digits>, clientAuth, "
		"valid 1 day\n"
		"  --cert FILE --key FILE   one fixed client certificate shared by all agents\n"
		"  --enroll-token T         enroll every agent first with join token T, as "
		"vigil-agent enroll\n"
		"                           does: EC P-256 key and CSR made here, EnrollRequest "
		"over TLS\n"
		"                           without a client certificate; host name "
		"<prefix><index as 5\n"
		"                           digits>, machine id unique to the run; the run then "
		"uses the\n"
		"                           issued certificates and the names the collector "
		"assigned\n"
		"  --enroll-concurrency N   enrollments in flight (default 16)\n"
		"  --enroll-dir DIR         also write DIR/NAME.key (0600) and DIR/NAME.crt "
		"(chain)\n"
		"  --enroll-force           set EnrollRequest.force (replace an enrolled host)\n"
		"  --enroll-only            stop after enrolling (no run)\n"
		"Handshake storm (instead of the run):\n"
		"  --handshakes N           N full mutual-TLS handshakes, each followed by "
		"Hello/Welcome\n"
		"                           and a close; identities as above, client c of the "
		"storm "
		"using\n"
		"                           agents c, c + C, ... in turn\n"
		"  --concurrency C          connections in flight (default 16)\n"
		"  --no-hello               close right after the handshake\n"
		"Load:\n"
		"  --agent-prefix STR       agent name prefix (default loadgen-)\n"
		"  --agents N               simulated agents (default 100)\n"
		"  --threads N              event loops (default 1)\n"
		"  --batch-events N         events per batch (default 500)\n"
		"  --event-bytes N          approximate encoded size of one event (default 300)\n"
		"  --events N               total events, split evenly over the agents, rounded up "
		"to\n"
		"                           whole batches (default %u unless --duration is given)\n"
		"  --duration SECONDS       send new batches until then, then wait for their acks\n"
		"  --rate R                 total events/s over all agents; 0 = flat out (default "
		"0)\n"
		"  --window N               unacknowledged batches per agent (default 8)\n"
		"  --bad-every N            every Nth event (global index: the agents' streams\n"
		"                           interleaved) carries invalid UTF-8 in argv; 0 = off "
		"(default)\n"
		"  --idle                   connect and say Hello, then only heartbeat until "
		"--duration ends\n"
		"                           (and reconnect whenever the collector goes away)\n"
		"  --ramp SECONDS           spread the first connections over this (default 1 "
		"with 200\n"
		"                           agents or more, else 0)\n"
		"  --timeout SECONDS        overall deadline; exit 1 if not everything was acked "
		"(default 300)\n"
		"Output:\n"
		"  --report-interval S      progress line on stderr every S seconds (default 0 = "
		"none),\n"
		"                           ending with the wall clock (unix=SECONDS)\n"
		"  --quiet                  no informational lines on stderr (warnings still)\n"
		"  -v, --verbose            debug logging\n"
		"  -h, --help               this text\n"
		"  -V, --version            print the version\n"
		"\n"
		"Last line on stdout: agents= events_sent= events_acked= batches_acked= "
		"elapsed_s=\n"
		"events_per_s= ack_p50_ms= ack_p99_ms= reconnects= errors= outages=\n"
		"outage_p95_ms= outage_max_ms=, then with --enroll-token: enrolled= "
		"enroll_failed=\n"
		"enroll_s= enroll_per_s= enroll_p50_ms= enroll_p99_ms= enroll_retries= "
		"enroll_renamed=,\n"
		"with --handshakes: handshakes= handshake_failed= handshake_s= handshakes_per_s=\n"
		"handshake_p50_ms= handshake_p99_ms= (no run: the run's figures are 0)\n"
		"(events_per_s = events_acked / time from the first Hello to the last ack;\n"
		"outages: welcomed connections lost, each timed from the loss to the next Ack).\n"
		"Exit status 0 if every sent event was acknowledged (with --idle: every agent was\n"
		"welcomed), 1 otherwise, 2 for usage errors.\n",
		DEFAULT_EVENTS);
}

static int parse_u64(const char *name, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max) {
		fprintf(stderr,
			"vigil-loadgen: --%s: '%s' is not an integer in [%" PRIu64 ", %" PRIu64
			"]\n",
			name, s, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_double(const char *name, const char *s, double min, double max, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < min || v > max) {
		fprintf(stderr, "vigil-loadgen: --%s: '%s' is not a number in [%g, %g]\n", name, s,
			min, max);
		return -1;
	}
	*out = v;
	return 0;
}

/* The options of enrollment and handshake storms. Return false if c is
 * none of them. */
static bool parse_modes(int c, opts_t *o, int *rc)
{
	switch (c) {
	case OPT_ENROLL_TOKEN:
		o->enroll_token = optarg;
		return true;
	case OPT_ENROLL_CONCURRENCY:
		*rc |= parse_u64("enroll-concurrency", optarg, 1, 4096, &o->enroll_concurrency);
		return true;
	case OPT_ENROLL_DIR:
		o->enroll_dir = optarg;
		return true;
	case OPT_ENROLL_FORCE:
		o->enroll_force = true;
		return true;
	case OPT_ENROLL_ONLY:
		o->enroll_only = true;
		return true;
	case OPT_HANDSHAKES:
		*rc |= parse_u64("handshakes", optarg, 1, UINT64_C(1) << 40, &o->handshakes);
		return true;
	case OPT_CONCURRENCY:
		*rc |= parse_u64("concurrency", optarg, 1, 4096, &o->concurrency);
		return true;
	case OPT_NO_HELLO:
		o->no_hello = true;
		return true;
	default:
		return false;
	}
}

/* The options of idle fleets and reconnection (and two flags). Return
 * false if c is none of them. */
static bool parse_more(int c, opts_t *o, int *rc)
{
	switch (c) {
	case OPT_IDLE:
		o->idle = true;
		return true;
	case OPT_QUIET:
		o->quiet = true;
		return true;
	case OPT_BACKOFF_MIN:
		*rc |= parse_u64("backoff-min", optarg, 1, 3600000, &o->backoff_min);
		return true;
	case OPT_BACKOFF_MAX:
		*rc |= parse_u64("backoff-max", optarg, 1, 3600000, &o->backoff_max);
		return true;
	case OPT_RAMP:
		*rc |= parse_double("ramp", optarg, 0, 3600, &o->ramp);
		return true;
	case OPT_SOURCE_ADDRS:
		*rc |= parse_u64("source-addrs", optarg, 1, 65534, &o->source_addrs);
		return true;
	default:
		return parse_modes(c, o, rc);
	}
}

/* After parsing: one source of identities, and the modes' constraints.
 * Return 0 or -1. */
static int check_modes(const opts_t *o)
{
	bool issuer = o->issuer_cert || o->issuer_key;
	bool fixed = o->cert || o->key;
	if (issuer + fixed + !!o->enroll_token != 1 ||
	    (issuer && !(o->issuer_cert && o->issuer_key)) || (fixed && !(o->cert && o->key))) {
		fprintf(stderr, "vigil-loadgen: give one of --issuer-cert and --issuer-key, "
				"--cert and --key, or --enroll-token\n");
		return -1;
	}
	if ((o->enroll_dir || o->enroll_force || o->enroll_only) && !o->enroll_token) {
		fprintf(stderr, "vigil-loadgen: --enroll-dir, --enroll-force and --enroll-only "
				"need --enroll-token\n");
		return -1;
	}
	if (o->no_hello && !o->handshakes) {
		fprintf(stderr, "vigil-loadgen: --no-hello needs --handshakes\n");
		return -1;
	}
	if (o->enroll_only && o->handshakes) {
		fprintf(stderr,
			"vigil-loadgen: --enroll-only and --handshakes exclude each other\n");
		return -1;
	}
	return 0;
}

/* Return 0, 1 (exit 0: help/version printed) or -1 (usage error). */
static int parse_args(int argc, char **argv, opts_t *o)
{
	*o = (opts_t){
		.connect = "127.0.0.1:7443",
		.server_name = "localhost",
		.prefix = "loadgen-",
		.tls_min_version = "1.3",
		.agents = 100,
		.threads = 1,
		.batch_events = 500,
		.event_bytes = 300,
		.events = DEFAULT_EVENTS,
		.window = 8,
		.timeout = 300,
		.backoff_min = 100,
		.backoff_max = 2000,
		.ramp = -1,
		.enroll_concurrency = 16,
		.concurrency = 16,
	};
	int c, rc = 0;
	while ((c = getopt_long(argc, argv, "hvV", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_CONNECT:
			o->connect = optarg;
			break;
		case OPT_CA:
			o->ca = optarg;
			break;
		case OPT_SERVER_NAME:
			o->server_name = optarg;
			break;
		case OPT_ISSUER_CERT:
			o->issuer_cert = optarg;
			break;
		case OPT_ISSUER_KEY:
			o->issuer_key = optarg;
			break;
		case OPT_CERT:
			o->cert = optarg;
			break;
		case OPT_KEY:
			o->key = optarg;
			break;
		case OPT_PREFIX:
			o->prefix = optarg;
			break;
		case OPT_TLS_MIN:
			o->tls_min_version = optarg;
			break;
		case OPT_AGENTS:
			rc |= parse_u64("agents", optarg, 1, 100000, &o->agents);
			break;
		case OPT_THREADS:
			rc |= parse_u64("threads", optarg, 1, 256, &o->threads);
			break;
		case OPT_BATCH_EVENTS:
			rc |= parse_u64("batch-events", optarg, 1, 100000, &o->batch_events);
			break;
		case OPT_EVENT_BYTES:
			rc |= parse_u64("event-bytes", optarg, 1, 1 << 20, &o->event_bytes);
			break;
		case OPT_EVENTS:
			rc |= parse_u64("events", optarg, 1, UINT64_C(1) << 48, &o->events);
			o->events_given = true;
			break;
		case OPT_DURATION:
			rc |= parse_double("duration", optarg, 0.001, 1e7, &o->duration);
			break;
		case OPT_RATE:
			rc |= parse_double("rate", optarg, 0, 1e10, &o->rate);
			break;
		case OPT_WINDOW:
			rc |= parse_u64("window", optarg, 1, 1024, &o->window);
			break;
		case OPT_BAD_EVERY:
			rc |= parse_u64("bad-every", optarg, 0, UINT64_MAX, &o->bad_every);
			break;
		case OPT_TIMEOUT:
			rc |= parse_double("timeout", optarg, 0.001, 1e7, &o->timeout);
			break;
		case OPT_REPORT:
			rc |= parse_double("report-interval", optarg, 0, 1e6, &o->report_interval);
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 1;
		case 'V':
			printf("vigil-loadgen %s\n", VIGIL_VERSION);
			return 1;
		default:
			if (parse_more(c, o, &rc))
				break;
			fprintf(stderr, "Try 'vigil-loadgen --help'.\n");
			return -1;
		}
	}
	if (rc)
		return -1;
	if (optind < argc) {
		fprintf(stderr, "vigil-loadgen: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (!o->ca) {
		fprintf(stderr, "vigil-loadgen: --ca is required\n");
		return -1;
	}
	if ((o->idle && o->duration <= 0) || o->backoff_min > o->backoff_max) {
		fprintf(stderr, "vigil-loadgen: --idle needs --duration; --backoff-min must not "
				"exceed --backoff-max\n");
		return -1;
	}
	/* A batch must fit the collector's default frame limit (4 MiB). */
	if (o->batch_events * (o->event_bytes + 8) + 64 > FRAME_DEFAULT_MAX_BYTES) {
		fprintf(stderr, "vigil-loadgen: --batch-events x --event-bytes is above the "
				"4 MiB frame limit\n");
		return -1;
	}
	if (o->duration > 0 && o->timeout <= o->duration) {
		fprintf(stderr, "vigil-loadgen: --timeout must be longer than --duration\n");
		return -1;
	}
	return check_modes(o);
}

/* Resolve HOST:PORT or [V6]:PORT into run. Return 0 or -1. */
static int resolve(const char *spec, lg_run_t *run)
{
	char host[256];
	const char *port;
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');
		if (!close || close[1] != ':' || (size_t)(close - spec - 1) >= sizeof(host))
			goto bad;
		memcpy(host, spec + 1, (size_t)(close - spec - 1));
		host[close - spec - 1] = '\0';
		port = close + 2;
	} else {
		const char *colon = strrchr(spec, ':');
		if (!colon || (size_t)(colon - spec) >= sizeof(host) || colon == spec)
			goto bad;
		memcpy(host, spec, (size_t)(colon - spec));
		host[colon - spec] = '\0';
		port = colon + 1;
	}
	if (!port[0])
		goto bad;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "vigil-loadgen: cannot resolve %s: %s\n", spec, gai_strerror(rc));
		return -1;
	}
	memcpy(&run->addr, res->ai_addr, res->ai_addrlen);
	run->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
bad:
	fprintf(stderr, "vigil-loadgen: --connect '%s' is not HOST:PORT or [ADDR]:PORT\n", spec);
	return -1;
}

static void raise_nofile(uint64_t agents)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			log_warn("cannot raise the open-file limit: %s", strerror(errno));
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < agents + 64)
		log_warn("open-file limit %llu is too low for %" PRIu64 " connections",
			 (unsigned long long)rl.rlim_cur, agents);
}

typedef struct {
	uint64_t events_sent, bad_sent, events_acked, batches_sent, batches_acked, resent,
		reconnects, errors;
	uint32_t connected, welcomed, done, failed;
	int64_t first_hello_ns, last_ack_ns;
} totals_t;

static void sum_stats(lg_worker_t **w, uint32_t n, totals_t *t)
{
	memset(t, 0, sizeof(*t));
	for (uint32_t i = 0; i < n; i++) {
		lg_stats_t *s = lg_worker_stats(w[i]);
		t->events_sent += atomic_load(&s->events_sent);
		t->bad_sent += atomic_load(&s->bad_sent);
		t->events_acked += atomic_load(&s->events_acked);
		t->batches_sent += atomic_load(&s->batches_sent);
		t->batches_acked += atomic_load(&s->batches_acked);
		t->resent += atomic_load(&s->resent_batches);
		t->reconnects += atomic_load(&s->reconnects);
		t->errors += atomic_load(&s->errors);
		t->connected += atomic_load(&s->connected);
		t->welcomed += atomic_load(&s->welcomed);
		t->done += atomic_load(&s->done);
		t->failed += atomic_load(&s->failed);
		int64_t fh = atomic_load(&s->first_hello_ns);
		if (fh && (!t->first_hello_ns || fh < t->first_hello_ns))
			t->first_hello_ns = fh;
		int64_t la = atomic_load(&s->last_ack_ns);
		if (la > t->last_ack_ns)
			t->last_ack_ns = la;
	}
}

/* Write " outages=N outage_p95_ms=X outage_max_ms=Y" into out: how many
 * welcomed connections the agents lost and then got an Ack again after
 * (through another collector, say), and the time from the loss to that
 * Ack. */
static void outage_fields(lg_worker_t **w, uint32_t n, char *out, size_t outlen)
{
	lg_hist_t *h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(out, outlen, " outages=NA");
		return;
	}
	for (uint32_t i = 0; i < n; i++)
		lg_hist_merge(h, &lg_worker_stats(w[i])->outage_us);
	snprintf(out, outlen, " outages=%" PRIu64 " outage_p95_ms=%.3f outage_max_ms=%.3f",
		 h->total, lg_hist_quantile_us(h, 0.95) / 1000.0, (double)h->max_us / 1000.0);
	free(h);
}

static void progress(const lg_run_t *run, const totals_t *t, uint64_t *prev_acked, int64_t *prev_ns)
{
	int64_t now = vtime_mono_ns();
	double dt = (double)(now - *prev_ns) / 1e9;
	double rate = dt > 0 ? (double)(t->events_acked - *prev_acked) / dt : 0;
	fprintf(stderr,
		"vigil-loadgen: t=%.1fs connected=%u/%u sent=%" PRIu64 " acked=%" PRIu64
		" (%.0f events/s) done=%u failed=%u reconnects=%" PRIu64 " errors=%" PRIu64
		" unix=%.3f\n",
		(double)(now - run->start_mono_ns) / 1e9, t->connected, run->agents, t->events_sent,
		t->events_acked, rate, t->done, t->failed, t->reconnects, t->errors,
		(double)vtime_now_ns() / 1e9);
	*prev_acked = t->events_acked;
	*prev_ns = now;
}

/* The run's parameters from the options (all but the address, the
 * identities and the TLS context). */
static void run_from_opts(lg_run_t *run, const opts_t *o)
{
	run->server_name = o->server_name;
	run->prefix = o->prefix;
	run->agents = (uint32_t)o->agents;
	run->threads = (uint32_t)(o->threads < o->agents ? o->threads : o->agents);
	run->batch_events = (uint32_t)o->batch_events;
	run->event_bytes = (uint32_t)o->event_bytes;
	run->window = (uint32_t)o->window;
	run->bad_every = o->bad_every;
	run->idle = o->idle;
	run->duration_s = o->duration;
	run->rate = o->rate;
	run->timeout_s = o->timeout;
	run->backoff_min_ms = (uint32_t)o->backoff_min;
	run->backoff_max_ms = (uint32_t)o->backoff_max;
	run->ramp_s = o->ramp >= 0 ? o->ramp : o->agents >= 200 ? 1.0 : 0.0;
	run->source_addrs = (uint32_t)o->source_addrs;
	if (!o->idle && (o->events_given || o->duration <= 0)) {
		uint64_t per_agent = (o->events + o->agents - 1) / o->agents;
		run->batches_per_agent = (per_agent + o->batch_events - 1) / o->batch_events;
	}
}

/* The TLS context: it presents the issuer's or the fixed certificate, or
 * none when enrolling; each connection presents its agent's own
 * (lg_ident_use). Return 0 or -1 (logged). */
static int make_ctx(const opts_t *o, lg_run_t *run)
{
	char err[512];
	tls_files_t files = {
		.cert_file = o->issuer_cert ? o->issuer_cert : o->cert,
		.key_file = o->issuer_key ? o->issuer_key : o->key,
		.ca_file = o->ca,
		.min_version = o->tls_min_version,
	};
	run->ssl_ctx = tls_client_ctx_new(&files, err, sizeof(err));
	if (!run->ssl_ctx) {
		log_error("%s", err);
		return -1;
	}
	return 0;
}

/* Enroll every agent into ids; append the figures to extra. Return 0, or
 * 1 if some agent could not enroll (logged), or -1. */
static int enroll_identities(const opts_t *o, const lg_run_t *run, lg_ident_t *ids, char *extra,
			     size_t extralen)
{
	lg_enroll_opts_t eo = {
		.token = o->enroll_token,
		.out_dir = o->enroll_dir,
		.concurrency = (uint32_t)o->enroll_concurrency,
		.force = o->enroll_force,
		.timeout_ms = (int)(o->timeout < 30 ? o->timeout * 1000 : 30000),
	};
	lg_enroll_result_t *r = calloc(1, sizeof(*r));
	if (!r) {
		log_error("out of memory");
		return -1;
	}
	int rc = lg_enroll_all(run, &eo, ids, r);
	double s = r->elapsed_s > 0 ? r->elapsed_s : 0;
	size_t n = strlen(extra);
	snprintf(extra + n, extralen - n,
		 " enrolled=%u enroll_failed=%u enroll_s=%.3f enroll_per_s=%.1f"
		 " enroll_p50_ms=%.3f enroll_p99_ms=%.3f enroll_retries=%" PRIu64
		 " enroll_renamed=%u",
		 r->enrolled, r->failed, s, s > 0 ? r->enrolled / s : 0.0,
		 lg_hist_quantile_us(&r->lat, 0.50) / 1000.0,
		 lg_hist_quantile_us(&r->lat, 0.99) / 1000.0, r->retries, r->renamed);
	if (rc != 0)
		log_error("%u of %u agents could not enroll", r->failed, run->agents);
	else if (!o->quiet)
		log_info("enrolled %u agents in %.2f s (%u at a time)", r->enrolled, s,
			 eo.concurrency);
	free(r);
	return rc != 0 ? 1 : 0;
}

/* The agents' identities: issued here, loaded, or enrolled. Return 0, 1
 * (some agent could not enroll) or -1 (logged). */
static int make_identities(const opts_t *o, lg_run_t *run, lg_ident_t *ids, char *extra,
			   size_t extralen)
{
	char err[512];
	int64_t t0 = vtime_mono_ns();
	if (make_ctx(o, run) != 0)
		return -1;
	run->ids = ids;
	if (o->enroll_token)
		return enroll_identities(o, run, ids, extra, extralen);
	if (o->issuer_cert) {
		lg_issuer_t *iss = lg_issuer_load(o->issuer_cert, o->issuer_key, err, sizeof(err));
		if (!iss) {
			log_error("%s", err);
			return -1;
		}
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		int rc = lg_ident_issue_all(iss, o->prefix, run->agents,
					    ncpu > 0 ? (unsigned)ncpu : 1, ids, err, sizeof(err));
		lg_issuer_free(iss);
		if (rc != 0) {
			log_error("%s", err);
			return -1;
		}
		log_info("issued %u client certificates in %.2f s", run->agents,
			 (double)(vtime_mono_ns() - t0) / 1e9);
		return 0;
	}
	if (lg_ident_load(o->cert, o->key, &ids[0], err, sizeof(err)) != 0) {
		log_error("%s", err);
		return -1;
	}
	for (uint32_t i = 1; i < run->agents; i++)
		lg_ident_share(&ids[i], &ids[0]);
	if (run->agents > 1)
		log_warn("--cert: all %u agents present the same identity; the collector "
			 "sees one agent, whose connections replace each other",
			 run->agents);
	return 0;
}

/* --enroll-only (enrollment is done), --handshakes, or a failed
 * enrollment (ok false): no run. Print the last line (the run's figures 0)
 * and return the exit status. */
static int no_run(const opts_t *o, lg_run_t *run, lg_ident_t *ids, char *extra, size_t extralen,
		  bool ok)
{
	uint64_t errors = 0;
	if (ok && o->handshakes) {
		lg_storm_opts_t so = {
			.handshakes = o->handshakes,
			.concurrency = (uint32_t)o->concurrency,
			.no_hello = o->no_hello,
			.timeout_ms = (int)(o->timeout < 30 ? o->timeout * 1000 : 30000),
		};
		lg_storm_result_t *r = calloc(1, sizeof(*r));
		if (!r) {
			log_error("out of memory");
			return 1;
		}
		run->start_mono_ns = vtime_mono_ns();
		ok = lg_storm_run(run, &so, r) == 0;
		errors = r->failed;
		size_t n = strlen(extra);
		double s = r->elapsed_s > 0 ? r->elapsed_s : 0;
		snprintf(extra + n, extralen - n,
			 " handshakes=%" PRIu64 " handshake_failed=%" PRIu64 " handshake_s=%.3f"
			 " handshakes_per_s=%.1f handshake_p50_ms=%.3f handshake_p99_ms=%.3f",
			 r->ok, r->failed, s, s > 0 ? (double)r->ok / s : 0.0,
			 lg_hist_quantile_us(&r->lat, 0.50) / 1000.0,
			 lg_hist_quantile_us(&r->lat, 0.99) / 1000.0);
		if (!o->quiet)
			log_info("%" PRIu64 " handshakes%s in %.2f s, %u at a time, %" PRIu64
				 " failed",
				 r->ok, o->no_hello ? "" : " with Hello/Welcome", s, so.concurrency,
				 r->failed);
		free(r);
	}
	printf("agents=%u events_sent=0 events_acked=0 batches_acked=0 elapsed_s=0.000"
	       " events_per_s=0.0 ack_p50_ms=0.000 ack_p99_ms=0.000 reconnects=0 errors=%" PRIu64
	       " outages=0 outage_p95_ms=0.000 outage_max_ms=0.000%s\n",
	       run->agents, errors, extra);
	fflush(stdout);
	SSL_CTX_free(run->ssl_ctx);
	for (uint32_t i = 0; i < run->agents; i++)
		lg_ident_clear(&ids[i]);
	free(ids);
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	opts_t o;
	int prc = parse_args(argc, argv, &o);
	if (prc != 0)
		return prc > 0 ? 0 : 2;

	log_set_program("vigil-loadgen");
	log_set_level(o.verbose ? LOG_LVL_DEBUG : o.quiet ? LOG_LVL_WARN : LOG_LVL_INFO);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile(o.agents);
	if (evthread_use_pthreads() != 0) {
		log_error("libevent has no pthreads support");
		return 1;
	}

	lg_run_t run = {0};
	if (resolve(o.connect, &run) != 0)
		return 2;
	run_from_opts(&run, &o);

	/* Identities (and the TLS context, which enrollment uses). */
	lg_ident_t *ids = calloc(run.agents, sizeof(*ids));
	char extra[512] = "";
	int irc = ids ? make_identities(&o, &run, ids, extra, sizeof(extra)) : -1;
	if (irc < 0) {
		if (!ids)
			log_error("out of memory");
		return 1;
	}
	if (irc > 0 || o.enroll_only || o.handshakes)
		return no_run(&o, &run, ids, extra, sizeof(extra), irc == 0);

	/* Workers; they inherit a mask that leaves SIGINT/SIGTERM to us. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	lg_worker_t **workers = calloc(run.threads, sizeof(*workers));
	if (!workers) {
		log_error("out of memory");
		return 1;
	}
	for (uint32_t i = 0; i < run.threads; i++) {
		workers[i] = lg_worker_new(&run, i);
		if (!workers[i])
			return 1;
	}
	if (!o.quiet)
		log_info("%u agents on %u thread(s) to %s: %s", run.agents, run.threads, o.connect,
			 run.idle		 ? "idle"
			 : run.batches_per_agent ? "fixed number of batches"
						 : "until --duration ends");
	run.start_mono_ns = vtime_mono_ns();
	uint32_t started = 0;
	for (uint32_t i = 0; i < run.threads; i++) {
		if (lg_worker_start(workers[i]) != 0) {
			log_error("cannot start worker thread %u", i);
			break;
		}
		started++;
	}

	bool interrupted = started < run.threads;
	uint64_t prev_acked = 0;
	int64_t prev_ns = run.start_mono_ns;
	int64_t report_ns = (int64_t)(o.report_interval * 1e9);
	int64_t next_report = run.start_mono_ns + report_ns;
	while (!interrupted) {
		bool all = true;
		for (uint32_t i = 0; i < started; i++)
			all = all && lg_worker_finished(workers[i]);
		if (all)
			break;
		struct timespec ts = {0, 100 * 1000 * 1000};
		int sig = sigtimedwait(&sigs, NULL, &ts);
		if (sig == SIGINT || sig == SIGTERM) {
			log_warn("interrupted by signal %d", sig);
			interrupted = true;
			break;
		}
		if (report_ns > 0 && !o.quiet && vtime_mono_ns() >= next_report) {
			totals_t t;
			sum_stats(workers, run.threads, &t);
			progress(&run, &t, &prev_acked, &prev_ns);
			next_report += report_ns;
		}
	}
	for (uint32_t i = 0; i < started; i++)
		lg_worker_stop(workers[i]);
	bool timed_out = false;
	for (uint32_t i = 0; i < started; i++) {
		lg_worker_join(workers[i]);
		timed_out = timed_out || lg_worker_timed_out(workers[i]);
	}
	int64_t end_ns = vtime_mono_ns();

	totals_t t;
	sum_stats(workers, run.threads, &t);
	lg_hist_t *hist = calloc(1, sizeof(*hist));
	if (!hist) {
		log_error("out of memory");
		return 1;
	}
	for (uint32_t i = 0; i < run.threads; i++)
		lg_hist_merge(hist, &lg_worker_stats(workers[i])->ack_us);

	int64_t last = run.idle || !t.last_ack_ns ? end_ns : t.last_ack_ns;
	double elapsed = t.first_hello_ns ? (double)(last - t.first_hello_ns) / 1e9 : 0.0;
	double eps = elapsed > 0 ? (double)t.events_acked / elapsed : 0.0;

	bool ok;
	if (run.idle)
		ok = t.welcomed == run.agents && t.failed == 0;
	else
		ok = t.done == run.agents && t.failed == 0 && t.events_acked == t.events_sent;
	ok = ok && !interrupted && !timed_out;
	if (timed_out)
		log_error("timeout after %.0f s: %u of %u agents finished, %" PRIu64 " of %" PRIu64
			  " events acknowledged",
			  o.timeout, t.done, run.agents, t.events_acked, t.events_sent);
	if (!o.quiet) {
		log_info("batches sent %" PRIu64 ", resent %" PRIu64 ", acked %" PRIu64
			 "; events with invalid UTF-8 sent: %" PRIu64 "; ack max %.3f ms",
			 t.batches_sent, t.resent, t.batches_acked, t.bad_sent,
			 (double)hist->max_us / 1000.0);
	}
	char outages[96];
	outage_fields(workers, run.threads, outages, sizeof(outages));
	printf("agents=%u events_sent=%" PRIu64 " events_acked=%" PRIu64 " batches_acked=%" PRIu64
	       " elapsed_s=%.3f events_per_s=%.1f ack_p50_ms=%.3f"
	       " ack_p99_ms=%.3f reconnects=%" PRIu64 " errors=%" PRIu64 "%s%s\n",
	       run.agents, t.events_sent, t.events_acked, t.batches_acked, elapsed, eps,
	       lg_hist_quantile_us(hist, 0.50) / 1000.0, lg_hist_quantile_us(hist, 0.99) / 1000.0,
	       t.reconnects, t.errors, outages, extra);
	fflush(stdout);

	for (uint32_t i = 0; i < run.threads; i++)
		lg_worker_free(workers[i]);
	free(workers);
	free(hist);
	SSL_CTX_free(run.ssl_ctx);
	for (uint32_t i = 0; i < run.agents; i++)
		lg_ident_clear(&ids[i]);
	free(ids);
	return ok ? 0 : 1;
}
