// SPDX-License-Identifier: Apache-2.0
/*
 * vigil-collector: command line, configuration, start-up (schema,
 * partitions, threads), signals (SIGTERM drains, SIGHUP reloads) and the
 * main loop, which runs the listener.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "alert/alert.h"
#include "collector.h"
#include "config.h"
#include "http/http.h"
#include "ingest/ingest.h"
#include "ingest/argvindex.h"
#include "ingest/listener.h"
#include "log.h"
#include "rules/rules.h"
#include "rules/rules_cmd.h"
#include "settings.h"
#include "ingest/store.h"
#include "http/token_cmd.h"
#include "vuln/advisories_cmd.h"
#include "vuln/matcher.h"
#include "enroll/service.h"
#include "enroll/revocations.h"
#include "enroll/revoke_cmd.h"
#include "enroll/enroll_cmd.h"
#include "tls.h"
#include "vtime.h"
#include "ingest/worker.h"

typedef struct {
	cfg_cli_t cfg; /* config file and --setting flags */
	bool print_config;
	const char *command;
	token_opts_t token; /* token subcommand options */
	int cmd_argc;	    /* arguments after "token" */
	char **cmd_argv;
	/* enroll-token create options */
	enroll_token_opts_t enroll_token;
	/* agent / operator subcommand options */
	revoke_opts_t revoke;
} cli_t;

typedef struct {
	collector_t *col;
	cli_t *cli;
	struct event_base *base;
	listener_t *listener;
	http_t *http;
	alert_t *alert;
	vuln_matcher_t *matcher;
	argvindex_t *argvindex;
	revocations_t *revocations;
	struct event *drain_ev;
	int64_t drain_deadline_ns;
	bool drained;
} app_t;

static volatile sig_atomic_t early_stop;

/* collector_kick_fn for the shared state: the connection lives on a worker. */
static void kick_conn(collector_t *col, int worker_idx, uint64_t conn_id, int error_code,
		      const char *why)
{
	worker_kick(col->workers[worker_idx], conn_id, error_code, why);
}

/* The rules of rules_file (the built-in defaults if it is empty), with a
 * reference; NULL after logging why. */
static rules_t *read_rules(const settings_t *s)
{
	char err[1024];
	rules_t *r = s->rules_file[0] ? rules_load(s->rules_file, err, sizeof(err))
				      : rules_new_default();
	if (!r)
		log_error("rules_file: %s", s->rules_file[0] ? err : "out of memory");
	else if (s->rules_file[0])
		log_info("rules_file %s: %zu exceptions, %zu allowed registries", s->rules_file,
			 rules_exception_count(r), rules_registry_count(r));
	return r;
}

/* Put the rules in force at start. Return 0, or -1 after logging why. */
static int load_rules(collector_t *col)
{
	rules_t *r = read_rules(col->settings);
	if (!r || !(col->rules = rules_slot_new(r))) {
		rules_unref(r);
		return -1;
	}
	return 0;
}

/* Commands that need neither the database nor the network: --print-config
 * and `rules`. Return their exit status, or -1 for any other command. */
static int offline_command(const cli_t *cli, const settings_t *s)
{
	if (cli->print_config) {
		cfg_print(settings_table, s, stdout);
		return 0;
	}
	if (cli->command && strcmp(cli->command, "rules") == 0)
		return rules_cmd_run(cli->cmd_argc, cli->cmd_argv, s->rules_file);
	return -1;
}

/* `agent` and `operator` (enroll/revoke_cmd.h). */
static bool is_revoke_command(const char *command)
{
	return command && (strcmp(command, "agent") == 0 || strcmp(command, "operator") == 0);
}

static void early_signal(int sig)
{
	(void)sig;
	early_stop = 1;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: vigil-collector [run] [options]\n"
		     "       vigil-collector migrate [options]   apply the schema and exit\n"
		     "       vigil-collector token create --name NAME --role viewer|admin "
		     "[--expires 30d] [options]\n"
		     "       vigil-collector token list [options]\n"
		     "       vigil-collector token revoke NAME [options]\n"
		     "       vigil-collector enroll-token create [--uses N|--unlimited] "
		     "[--expires 24h] [--labels k=v,...] [--name-pattern GLOB] [options]\n"
		     "       vigil-collector enroll-token list|revoke ID [options]\n"
		     "       vigil-collector rules list [options]  the rules in force\n"
		     "       vigil-collector rules check FILE      validate a rules file\n"
		     "       vigil-collector advisories import PATH... [options]  load OSV "
		     "advisories\n"
		     "       vigil-collector agent list|show NAME [options]\n"
		     "       vigil-collector agent revoke NAME|--serial HEX [--reason TEXT]\n"
		     "       vigil-collector operator list [options]\n"
		     "       vigil-collector operator revoke CN|--serial HEX [--reason TEXT]\n"
		     "\n"
		     "  -c, --config FILE            read settings from FILE (name = value lines)\n"
		     "      --print-config           print the effective settings and exit\n"
		     "  -h, --help                   this help\n"
		     "  -V, --version                print the version\n"
		     "\n"
		     "Settings (each also a config-file key, with '_' for '-'):\n");
	cfg_usage(settings_table, out);
}

/* Return 0 to go on, 1 to exit 0, -1 to exit 2. */
static int parse_cli(int argc, char **argv, cli_t *cli)
{
	static const struct option extra[] = {
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{"print-config", no_argument, NULL, 'P'},
		{"name", required_argument, NULL, 'n'},
		{"role", required_argument, NULL, 'r'},
		{"expires", required_argument, NULL, 'e'},
		{"reason", required_argument, NULL, 'R'},
		{"serial", required_argument, NULL, 'S'},
		{"uses", required_argument, NULL, ENROLL_OPT_USES},
		{"unlimited", no_argument, NULL, ENROLL_OPT_UNLIMITED},
		{"labels", required_argument, NULL, ENROLL_OPT_LABELS},
		{"name-pattern", required_argument, NULL, ENROLL_OPT_NAME_PATTERN},
		{NULL, 0, NULL, 0},
	};
	struct option *opts = cfg_long_options(settings_table, extra);
	if (!opts)
		return -1;
	int rc = 0, ch;
	while ((ch = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		if (ch == 'c') {
			cli->cfg.config_file = optarg;
		} else if (ch == 'h') {
			usage(stdout);
			rc = 1;
			break;
		} else if (ch == 'V') {
			printf("vigil-collector %s (protocol 1)\n", VIGIL_VERSION);
			rc = 1;
			break;
		} else if (ch == 'P') {
			cli->print_config = true;
		} else if (ch == 'n') {
			cli->token.name = optarg;
		} else if (ch == 'r') {
			cli->token.role = optarg;
		} else if (ch == 'e') {
			cli->token.expires = optarg;
			cli->enroll_token.expires = optarg; /* enroll-token create's too */
		} else if (ch == 'R') {
			cli->revoke.reason = optarg;
		} else if (ch == 'S') {
			cli->revoke.serial = optarg;
		} else if (enroll_token_option(&cli->enroll_token, ch, optarg)) {
			/* recorded */
		} else if (ch >= CFG_OPT_BASE) {
			if (cfg_cli_flag(&cli->cfg, ch, optarg) != 0) {
				rc = -1;
				break;
			}
		} else {
			usage(stderr);
			rc = -1;
			break;
		}
	}
	cfg_long_options_free(opts, extra);
	const char *next = optind < argc ? argv[optind] : "";
	bool enroll_next = strcmp(next, "enroll-token") == 0; /* takes --expires too */
	bool token_opts =
		cli->token.name || cli->token.role || (cli->token.expires && !enroll_next);
	if (rc == 0 && token_opts && strcmp(next, "token") != 0) {
		fprintf(stderr, "vigil-collector: --name, --role and --expires go with "
				"'token create'\n");
		rc = -1;
	}
	if (rc == 0 && enroll_token_opts_set(&cli->enroll_token) && !enroll_next) {
		fprintf(stderr, "vigil-collector: --uses, --unlimited, --labels and --name-pattern "
				"go with 'enroll-token create'\n");
		rc = -1;
	}
	if (rc == 0 && optind < argc) {
		cli->command = argv[optind++];
		if (strcmp(cli->command, "token") == 0 || strcmp(cli->command, "rules") == 0 ||
		    strcmp(cli->command, "advisories") == 0 || strcmp(cli->command, "agent") == 0 ||
		    strcmp(cli->command, "operator") == 0 ||
		    strcmp(cli->command, "enroll-token") == 0) {
			cli->cmd_argc = argc - optind;
			cli->cmd_argv = argv + optind;
			optind = argc;
		} else if (strcmp(cli->command, "run") != 0 &&
			   strcmp(cli->command, "migrate") != 0) {
			fprintf(stderr, "vigil-collector: unknown command '%s'\n", cli->command);
			rc = -1;
		} else if (optind < argc) {
			fprintf(stderr, "vigil-collector: unexpected argument '%s'\n",
				argv[optind]);
			rc = -1;
		}
	}
	return rc;
}

/* Defaults, then the config file, then the flags. */
static int load_settings(const cli_t *cli, settings_t *s, char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	if (cfg_cli_load(settings_table, &cli->cfg, s, err, errlen) != 0)
		return -1;
	log_level_t lvl;
	if (log_level_parse(s->log_level, &lvl) != 0) {
		snprintf(err, errlen, "log_level '%s' is not error, warn, info or debug",
			 s->log_level);
		return -1;
	}
	return 0;
}

static void apply_log_level(const settings_t *s)
{
	log_level_t lvl;
	if (log_level_parse(s->log_level, &lvl) == 0)
		log_set_level(lvl);
}

static SSL_CTX *build_tls(const settings_t *s)
{
	tls_files_t f = {s->tls_cert, s->tls_key, s->agent_ca, s->tls_min_version};
	char err[512];
	SSL_CTX *ctx = tls_server_ctx_new(&f, err, sizeof(err));
	if (!ctx)
		log_error("TLS: %s", err);
	else if (s->agent_issuer_cert[0] && s->agent_issuer_key[0])
		tls_server_ctx_allow_no_cert(ctx); /* such a connection may only enroll */
	return ctx;
}

static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			log_warn("cannot raise the open-file limit: %s", strerror(errno));
	}
}

/* Lower the connection limits of s to what the open-file limit allows
 * (settings_fit_fd_limit), saying so unless quiet. */
static void fit_fd_limit(settings_t *s, bool quiet)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	int64_t workers = s->workers > 0 ? s->workers : (cores > 0 ? cores : 1);
	char note[512];
	if (settings_fit_fd_limit(s, (int64_t)rl.rlim_cur, workers, note, sizeof(note)) && !quiet)
		log_warn(
			"the open-file limit (%llu) is too low for the connection limits; lowered: "
			"%s (raise LimitNOFILE or ulimit -n to keep them)",
			(unsigned long long)rl.rlim_cur, note);
}

/* Connect, migrate and create partitions, retrying while PostgreSQL is
 * unavailable. Return 0, or -1 if told to stop or the schema is broken. */
static int prepare_database(collector_t *col)
{
	store_t *st = store_new(col, col->settings->db, "startup");
	if (!st)
		return -1;
	int64_t backoff = 200;
	bool logged = false;
	int rc = -1;
	while (!early_stop) {
		store_rc_t r = store_connect(st);
		if (r == STORE_OK)
			r = store_migrate(st);
		if (r == STORE_OK)
			r = store_maintain_partitions(st);
		if (r == STORE_OK) {
			rc = 0;
			break;
		}
		if (r == STORE_ERROR)
			break;
		if (!logged)
			log_warn("PostgreSQL unavailable (%s); retrying", store_last_error(st));
		logged = true;
		usleep((useconds_t)backoff * 1000);
		backoff = backoff * 2 > SETTING(col, db_retry_max_ms)
				  ? SETTING(col, db_retry_max_ms)
				  : backoff * 2;
	}
	store_free(st);
	return rc;
}

static void matcher_log(vuln_log_level_t level, const char *msg)
{
	log_level_t lvl = LOG_LVL_INFO;
	if (level == VULN_LOG_ERROR)
		lvl = LOG_LVL_ERROR;
	else if (level == VULN_LOG_WARN)
		lvl = LOG_LVL_WARN;
	log_msg(lvl, NULL, "%s", msg);
}

/* The matcher of vulnerable images (vuln/matcher.h), if set. Return 0, or
 * -1 after logging why. */
static int start_matcher(app_t *app)
{
	const settings_t *s = app->col->settings;
	static const char *const sev[] = {"low", "medium", "high", "critical"};
	int min = 0;
	for (int i = 0; i < 4; i++)
		if (strcmp(s->vuln_min_severity, sev[i]) == 0)
			min = i + 2;
	if (!min) {
		log_error("vuln_min_severity: not low, medium, high or critical");
		return -1;
	}
	if (!s->vuln_matcher)
		return 0;
	char err[256];
	vuln_matcher_cfg_t cfg = {s->db, s->vuln_match_interval, min, matcher_log};
	if (!(app->matcher = vuln_matcher_start(&cfg, err, sizeof(err)))) {
		log_error("vuln matcher: %s", err);
		return -1;
	}
	return 0;
}

static void stop_services(app_t *app);

/* Start the HTTPS side and the alert senders, as set. Return 0, or -1
 * after logging why (nothing of them is left running). */
static int start_services(app_t *app)
{
	char err[512];
	if (app->col->settings->http_listen[0]) {
		app->http = http_new(app->col, err, sizeof(err));
		if (!app->http || http_start(app->http) != 0) {
			log_error("HTTPS: %s", app->http ? "cannot start the thread" : err);
			http_free(app->http);
			app->http = NULL;
			return -1;
		}
	}
	app->alert = alert_new(app->col, err, sizeof(err));
	if (!app->alert || alert_start(app->alert) != 0) {
		if (!app->alert)
			log_error("alert: %s", err);
		alert_free(app->alert);
		app->alert = NULL;
		http_free(app->http);
		app->http = NULL;
		return -1;
	}
	if (start_matcher(app) != 0) {
		alert_free(app->alert);
		app->alert = NULL;
		http_free(app->http);
		app->http = NULL;
		return -1;
	}
	if (app->col->settings->argv_index) /* without it (logged), argv= reads every event */
		app->argvindex = argvindex_start(app->col);
	if (!(app->revocations = revocations_start(app->col, err, sizeof(err)))) {
		log_error("revocations: %s", err);
		stop_services(app);
		return -1;
	}
	return 0;
}

/* Stop what start_services started. */
static void stop_services(app_t *app)
{
	http_free(app->http);
	app->http = NULL;
	alert_free(app->alert);
	vuln_matcher_free(app->matcher);
	argvindex_free(app->argvindex);
	revocations_free(app->revocations);
	app->revocations = NULL;
}

static void on_reload(app_t *app)
{
	settings_t fresh;
	char err[512];
	if (load_settings(app->cli, &fresh, err, sizeof(err)) != 0 ||
	    settings_validate(&fresh, err, sizeof(err)) != 0) {
		log_error("reload: %s; keeping the current settings", err);
		cfg_free(settings_table, &fresh);
		return;
	}
	fit_fd_limit(&fresh, true); /* as at start: the clamped values are no change */
	cfg_apply_reload(settings_table, app->col->settings, &fresh);
	cfg_free(settings_table, &fresh);
	if (collector_settings_publish(app->col) != 0)
		log_error("reload: out of memory; the HTTPS side keeps the previous settings");
	if (collector_load_revoked(app->col, app->col->settings->revoked_agents) != 0)
		log_error("reload: keeping the previous revoked_agents list");
	rules_t *rules = read_rules(app->col->settings);
	if (rules)
		rules_slot_set(app->col->rules, rules);
	else
		log_error("reload: keeping the rules in force");
	http_reload(app->http);
	apply_log_level(app->col->settings);
	SSL_CTX *ctx = build_tls(app->col->settings);
	if (ctx) {
		collector_set_tls_ctx(app->col, ctx);
		log_info("reload: TLS certificates reloaded; new connections use them");
	} else {
		log_error("reload: keeping the previous TLS certificates");
	}
}

static void drain_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	app_t *app = arg;
	collector_t *col = app->col;
	int conns = 0;
	for (int i = 0; i < col->n_workers; i++)
		conns += worker_conn_count(col->workers[i]);
	size_t jobs = ingest_queued_jobs(col->ingest);
	if (conns == 0 && jobs == 0) {
		app->drained = true;
		event_base_loopbreak(app->base);
	} else if (vtime_mono_ns() > app->drain_deadline_ns) {
		log_warn("drain timeout: %d connection(s) and %zu job(s) left; their batches "
			 "are not acknowledged and will be resent by the agents",
			 conns, jobs);
		event_base_loopbreak(app->base);
	}
}

#define STATS_INTERVAL_S 60

/* One info line a minute: what an operator checks first. */
static void stats_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	collector_t *col = arg;
	counters_t *k = &col->counters;
	log_info(
		"stats: connections %d, queue %zu KiB in %zu job(s), batches acked %llu "
		"(replayed %llu), events stored %llu, dead-lettered %llu, handshakes refused %llu, "
		"protocol errors %llu, timeouts %llu, database errors %llu",
		atomic_load(&col->n_conns), ingest_queued_bytes(col->ingest) / 1024,
		ingest_queued_jobs(col->ingest), (unsigned long long)atomic_load(&k->batches_acked),
		(unsigned long long)atomic_load(&k->batches_replayed),
		(unsigned long long)atomic_load(&k->events_stored),
		(unsigned long long)atomic_load(&k->events_dead),
		(unsigned long long)atomic_load(&k->handshakes_failed),
		(unsigned long long)atomic_load(&k->protocol_errors),
		(unsigned long long)atomic_load(&k->timeouts),
		(unsigned long long)atomic_load(&k->db_errors));
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	app_t *app = arg;
	if (sig == SIGHUP) {
		log_info("SIGHUP: reloading");
		on_reload(app);
		return;
	}
	if (atomic_load(&app->col->draining)) {
		log_warn("second stop signal: stopping now");
		event_base_loopbreak(app->base);
		return;
	}
	log_info("%s: draining (no new connections; acknowledging what is committed)",
		 sig == SIGTERM ? "SIGTERM" : "SIGINT");
	atomic_store(&app->col->draining, true);
	argvindex_stop(app->argvindex); /* a build under way is cancelled */
	listener_disable(app->listener);
	for (int i = 0; i < app->col->n_workers; i++)
		worker_drain(app->col->workers[i]);
	app->drain_deadline_ns = vtime_mono_ns() + SETTING(app->col, drain_timeout_ms) * 1000000;
	struct timeval tv = {0, 50000};
	event_add(app->drain_ev, &tv);
}

/* Whether command needs only the database (the schema is brought up to
 * date first): migrate, token, advisories, enroll-token, agent, operator. */
static bool is_db_command(const char *command)
{
	static const char *const db_only[] = {"migrate", "token", "advisories", "enroll-token"};
	if (!command)
		return false;
	for (size_t i = 0; i < sizeof(db_only) / sizeof(db_only[0]); i++)
		if (strcmp(command, db_only[i]) == 0)
			return true;
	return is_revoke_command(command);
}

/* Run an is_db_command command on the up-to-date database; its exit code. */
static int run_db_command(cli_t *cli, const settings_t *s)
{
	if (strcmp(cli->command, "advisories") == 0)
		return advisories_command(s->db, cli->cmd_argc, cli->cmd_argv);
	if (strcmp(cli->command, "token") == 0)
		return token_command(s, cli->cmd_argc, cli->cmd_argv, &cli->token);
	if (strcmp(cli->command, "enroll-token") == 0)
		return enroll_token_command(s, cli->cmd_argc, cli->cmd_argv, &cli->enroll_token);
	if (is_revoke_command(cli->command))
		return revoke_command(s, cli->command, cli->cmd_argc, cli->cmd_argv, &cli->revoke);
	log_info("schema is up to date");
	return 0;
}

/* The enrollment service, if an issuing CA is set (enroll/service.h).
 * Return 0, or -1 after logging why. */
static int start_enrollment(collector_t *col)
{
	char err[512];
	col->enroll = enroll_service_new(col, err, sizeof(err));
	if (!col->enroll && err[0]) {
		log_error("enrollment: %s", err);
		return -1;
	}
	if (col->enroll && enroll_service_start(col->enroll) != 0) {
		log_error("enrollment: cannot start the thread");
		return -1;
	}
	if (col->enroll)
		log_info("enrollment: on (agent certificates for %lld s)",
			 (long long)(col->settings->agent_cert_lifetime_ms / 1000));
	return 0;
}

int main(int argc, char **argv)
{
	log_set_program("vigil-collector");
	cli_t cli = {0};
	int prc = parse_cli(argc, argv, &cli);
	if (prc != 0) {
		cfg_cli_free(&cli.cfg);
		return prc > 0 ? 0 : 2;
	}
	settings_t settings;
	char err[512];
	if (load_settings(&cli, &settings, err, sizeof(err)) != 0) {
		fprintf(stderr, "vigil-collector: %s\n", err);
		cfg_free(settings_table, &settings);
		cfg_cli_free(&cli.cfg);
		return 2;
	}
	int offline = offline_command(&cli, &settings);
	if (offline >= 0) {
		cfg_free(settings_table, &settings);
		cfg_cli_free(&cli.cfg);
		return offline;
	}
	bool migrate_only = is_db_command(cli.command);
	if (!migrate_only && settings_validate(&settings, err, sizeof(err)) != 0) {
		fprintf(stderr, "vigil-collector: %s\n", err);
		cfg_free(settings_table, &settings);
		cfg_cli_free(&cli.cfg);
		return 2;
	}
	apply_log_level(&settings);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, early_signal);
	signal(SIGINT, early_signal);
	raise_fd_limit();
	if (!migrate_only)
		fit_fd_limit(&settings, false);
	evthread_use_pthreads();

	collector_t *col = collector_new(&settings);
	int exit_code = 1;
	if (!col)
		goto out_settings;
	if (collector_load_revoked(col, settings.revoked_agents) != 0)
		goto out_col;
	if (load_rules(col) != 0)
		goto out_col;

	if (!migrate_only) {
		SSL_CTX *ctx = build_tls(&settings);
		if (!ctx)
			goto out_col;
		collector_set_tls_ctx(col, ctx);
	}
	if (prepare_database(col) != 0) {
		if (!early_stop)
			log_error("cannot prepare the database; exiting");
		exit_code = early_stop ? 0 : 1;
		goto out_col;
	}
	if (migrate_only) {
		exit_code = run_db_command(&cli, &settings);
		goto out_col;
	}
	if (start_enrollment(col) != 0)
		goto out_threads;

	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	col->n_workers =
		settings.workers > 0 ? (int)settings.workers : (cores > 0 ? (int)cores : 1);
	col->workers = calloc((size_t)col->n_workers, sizeof(*col->workers));
	col->ingest = ingest_new(col, (int)settings.db_writers);
	if (!col->workers || !col->ingest)
		goto out_threads;
	for (int i = 0; i < col->n_workers; i++) {
		col->workers[i] = worker_new(col, i);
		if (!col->workers[i] || worker_start(col->workers[i]) != 0) {
			log_error("cannot start worker %d", i);
			goto out_threads;
		}
	}
	col->kick = kick_conn;
	if (ingest_start(col->ingest) != 0)
		goto out_threads;

	app_t app = {.col = col, .cli = &cli};
	app.base = event_base_new();
	if (!app.base)
		goto out_threads;
	app.listener = listener_new(app.base, col, settings.listen, err, sizeof(err));
	if (!app.listener) {
		log_error("%s", err);
		event_base_free(app.base);
		goto out_threads;
	}
	if (start_services(&app) != 0) {
		listener_free(app.listener);
		event_base_free(app.base);
		goto out_threads;
	}
	struct event *sig_term = evsignal_new(app.base, SIGTERM, signal_cb, &app);
	struct event *sig_int = evsignal_new(app.base, SIGINT, signal_cb, &app);
	struct event *sig_hup = evsignal_new(app.base, SIGHUP, signal_cb, &app);
	app.drain_ev = event_new(app.base, -1, EV_PERSIST, drain_tick, &app);
	struct event *stats_ev = event_new(app.base, -1, EV_PERSIST, stats_tick, col);
	struct timeval stats_tv = {STATS_INTERVAL_S, 0};
	event_add(stats_ev, &stats_tv);
	event_add(sig_term, NULL);
	event_add(sig_int, NULL);
	event_add(sig_hup, NULL);
	if (early_stop) {
		log_info("stopped during start-up");
	} else {
		log_info("listening on %s (%d workers, %lld writers, protocol 1)", settings.listen,
			 col->n_workers, (long long)settings.db_writers);
		event_base_dispatch(app.base);
	}
	stop_services(&app);
	/* Writers finish what is queued unless the drain timed out. */
	ingest_stop(col->ingest, !app.drained);
	if (!app.drained && ingest_join(col->ingest, 5000) != 0) {
		/* A writer is stuck in PostgreSQL: its transaction rolls back when
		 * we exit, and nothing of it was acknowledged. */
		log_warn("a writer is still waiting for PostgreSQL; exiting without it");
		_exit(0);
	}
	ingest_free(col->ingest);
	col->ingest = NULL;
	listener_free(app.listener);
	event_free(sig_term);
	event_free(sig_int);
	event_free(sig_hup);
	event_free(app.drain_ev);
	event_free(stats_ev);
	event_base_free(app.base);
	exit_code = 0;
	log_info("stopped: %llu batches acked, %llu events stored, %llu dead-lettered",
		 (unsigned long long)atomic_load(&col->counters.batches_acked),
		 (unsigned long long)atomic_load(&col->counters.events_stored),
		 (unsigned long long)atomic_load(&col->counters.events_dead));

out_threads:
	enroll_service_free(col->enroll); /* answers what it holds, to live workers */
	col->enroll = NULL;
	ingest_free(col->ingest);
	for (int i = 0; col->workers && i < col->n_workers; i++)
		worker_free(col->workers[i]);
	free(col->workers);
out_col:
	rules_slot_free(col->rules);
	collector_free(col);
out_settings:
	cfg_free(settings_table, &settings);
	cfg_cli_free(&cli.cfg);
	return exit_code;
}
