// SPDX-License-Identifier: Apache-2.0
/*
 * vigil-agent: command line, configuration, signals (SIGTERM flushes the
 * spool and exits, SIGHUP reloads) and the single event loop.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "agent.h"
#include "config.h"
#include "enroll.h"
#include "log.h"
#include "settings.h"

typedef struct {
	cfg_cli_t cfg; /* config file and --setting flags */
	bool print_config;
} cli_t;

typedef struct {
	struct event_base *base;
	agent_t *agent;
	settings_t *s;
	const cli_t *cli;
	int terms;
} app_t;

static void usage(FILE *out)
{
	fprintf(out, "usage: vigil-agent [run] [options]\n"
		     "       vigil-agent enroll --collector HOST:PORT --ca CA.pem ... (enroll -h)\n"
		     "\n"
		     "  -c, --config FILE            read settings from FILE (name = value lines)\n"
		     "      --print-config           print the effective settings and exit\n"
		     "  -h, --help                   this help\n"
		     "  -V, --version                print the version\n"
		     "\n"
		     "Settings (each also a config-file key, with '_' for '-'):\n");
	cfg_usage(settings_table, out);
	fprintf(out, "\nSignals: SIGTERM/SIGINT flush the spool, wait up to shutdown_timeout for\n"
		     "acknowledgements and exit 0 (a second one exits at once); SIGHUP re-reads\n"
		     "the config file and the certificates.\n");
}

/* Return 0 to go on, 1 to exit 0, -1 to exit 2. */
static int parse_cli(int argc, char **argv, cli_t *cli)
{
	static const struct option extra[] = {
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{"print-config", no_argument, NULL, 'P'},
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
			printf("vigil-agent %s (protocol 1)\n", VIGIL_VERSION);
			rc = 1;
			break;
		} else if (ch == 'P') {
			cli->print_config = true;
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
	if (rc == 0 && optind < argc) {
		const char *cmd = argv[optind++];
		if (strcmp(cmd, "run") != 0) {
			fprintf(stderr, "vigil-agent: unknown command '%s'\n", cmd);
			rc = -1;
		} else if (optind < argc) {
			fprintf(stderr, "vigil-agent: unexpected argument '%s'\n", argv[optind]);
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
	return settings_validate(s, err, errlen);
}

static void apply_log_level(const settings_t *s)
{
	log_level_t lvl;
	if (log_level_parse(s->log_level, &lvl) == 0)
		log_set_level(lvl);
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	app_t *app = arg;
	if (app->terms++) {
		log_info("second signal %d: exiting now (the spool keeps what is unsent)",
			 (int)sig);
		event_base_loopbreak(app->base);
		return;
	}
	log_info("signal %d: flushing the spool", (int)sig);
	agent_shutdown(app->agent);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	app_t *app = arg;
	settings_t fresh;
	char err[512];
	if (load_settings(app->cli, &fresh, err, sizeof(err)) != 0) {
		log_error("reload: %s; keeping the current settings", err);
		cfg_free(settings_table, &fresh);
		return;
	}
	cfg_apply_reload(settings_table, app->s, &fresh);
	cfg_free(settings_table, &fresh);
	apply_log_level(app->s);
	agent_reload(app->agent);
}

int main(int argc, char **argv)
{
	log_set_program("vigil-agent");
	if (argc > 1 && strcmp(argv[1], "enroll") == 0)
		return enroll_main(argc - 1, argv + 1);
	cli_t cli = {0};
	int rc = parse_cli(argc, argv, &cli);
	if (rc != 0) {
		cfg_cli_free(&cli.cfg);
		return rc > 0 ? 0 : 2;
	}
	settings_t s;
	char err[512];
	if (load_settings(&cli, &s, err, sizeof(err)) != 0) {
		fprintf(stderr, "vigil-agent: %s\n", err);
		cfg_free(settings_table, &s);
		cfg_cli_free(&cli.cfg);
		return 2;
	}
	if (cli.print_config) {
		cfg_print(settings_table, &s, stdout);
		cfg_free(settings_table, &s);
		cfg_cli_free(&cli.cfg);
		return 0;
	}
	apply_log_level(&s);
	signal(SIGPIPE, SIG_IGN);
	struct event_base *base = event_base_new();
	if (!base) {
		log_error("cannot create the event loop");
		return 1;
	}
	agent_t *agent = agent_new(base, &s, err, sizeof(err));
	if (!agent) {
		log_error("%s", err);
		event_base_free(base);
		cfg_free(settings_table, &s);
		cfg_cli_free(&cli.cfg);
		return 1;
	}
	app_t app = {base, agent, &s, &cli, 0};
	struct event *ev_term = evsignal_new(base, SIGTERM, on_term, &app);
	struct event *ev_int = evsignal_new(base, SIGINT, on_term, &app);
	struct event *ev_hup = evsignal_new(base, SIGHUP, on_hup, &app);
	event_add(ev_term, NULL);
	event_add(ev_int, NULL);
	event_add(ev_hup, NULL);
	agent_start(agent);
	event_base_dispatch(base);
	agent_free(agent);
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	event_base_free(base);
	cfg_free(settings_table, &s);
	cfg_cli_free(&cli.cfg);
	log_info("stopped");
	return 0;
}
