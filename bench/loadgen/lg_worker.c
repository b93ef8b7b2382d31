// SPDX-License-Identifier: Apache-2.0
/* Worker threads of the load generator (see lg_worker.h). */
#include "lg_worker.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "lg_agent.h"
#include "log.h"

struct lg_worker {
	const lg_run_t *run;
	uint32_t id;
	pthread_t thread;
	bool started;
	struct event_base *base;
	struct event *stop_ev;	   /* activated from other threads */
	struct event *deadline_ev; /* --timeout */
	struct event *duration_ev; /* --duration */
	lg_gen_t *gen;
	lg_agent_t **agents;
	uint32_t n_agents;
	uint32_t active; /* agents not finished yet */
	atomic_bool finished;
	atomic_bool timed_out;
	lg_stats_t stats;
};

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	lg_worker_t *w = arg;
	event_base_loopbreak(w->base);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	lg_worker_t *w = arg;
	atomic_store(&w->timed_out, true);
	event_base_loopbreak(w->base);
}

static void duration_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	lg_worker_t *w = arg;
	/* Agents may finish (and count down active) inside the loop. */
	for (uint32_t i = 0; i < w->n_agents; i++)
		lg_agent_end_generation(w->agents[i]);
}

lg_worker_t *lg_worker_new(const lg_run_t *run, uint32_t id)
{
	lg_worker_t *w = calloc(1, sizeof(*w));
	if (!w) {
		log_error("out of memory");
		return NULL;
	}
	w->run = run;
	w->id = id;
	w->base = event_base_new();
	lg_gen_params_t gp = {
		.batch_events = run->batch_events,
		.event_bytes = run->event_bytes,
		.bad_every = run->bad_every,
		.agents = run->agents,
		.max_frame = FRAME_DEFAULT_MAX_BYTES,
	};
	w->gen = lg_gen_new(&gp);
	w->n_agents = run->agents / run->threads + (id < run->agents % run->threads ? 1 : 0);
	w->agents = calloc(w->n_agents ? w->n_agents : 1, sizeof(*w->agents));
	if (!w->base || !w->gen || !w->agents) {
		log_error("worker %u: cannot set up its event loop", id);
		lg_worker_free(w);
		return NULL;
	}
	w->stop_ev = event_new(w->base, -1, 0, stop_cb, w);
	w->deadline_ev = evtimer_new(w->base, deadline_cb, w);
	w->duration_ev = evtimer_new(w->base, duration_cb, w);
	if (!w->stop_ev || !w->deadline_ev || !w->duration_ev) {
		log_error("worker %u: cannot create its timers", id);
		lg_worker_free(w);
		return NULL;
	}
	for (uint32_t i = 0; i < w->n_agents; i++) {
		w->agents[i] = lg_agent_new(w, id + i * run->threads);
		if (!w->agents[i]) {
			log_error("worker %u: out of memory for agents", id);
			lg_worker_free(w);
			return NULL;
		}
	}
	w->active = w->n_agents;
	return w;
}

static struct timeval tv_from_s(double s)
{
	if (s < 0)
		s = 0;
	struct timeval tv = {(time_t)s, (suseconds_t)((s - (double)(time_t)s) * 1e6)};
	return tv;
}

static void *worker_main(void *arg)
{
	lg_worker_t *w = arg;
	const lg_run_t *run = w->run;
	struct timeval tv = tv_from_s(run->timeout_s);
	evtimer_add(w->deadline_ev, &tv);
	if (run->duration_s > 0) {
		tv = tv_from_s(run->duration_s);
		evtimer_add(w->duration_ev, &tv);
	}
	/* Spread the first connections of a large fleet over --ramp (about a
	 * second by default) so that they do not all handshake in the same
	 * instant. */
	for (uint32_t i = 0; i < w->n_agents; i++) {
		uint32_t index = w->id + i * run->threads;
		int64_t delay_us = (int64_t)((double)index * run->ramp_s * 1e6 / run->agents);
		lg_agent_start(w->agents[i], delay_us);
	}
	if (w->active > 0)
		event_base_dispatch(w->base);
	atomic_store(&w->finished, true);
	return NULL;
}

int lg_worker_start(lg_worker_t *w)
{
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
		return -1;
	w->started = true;
	return 0;
}

void lg_worker_stop(lg_worker_t *w)
{
	event_active(w->stop_ev, EV_READ, 0);
}

void lg_worker_join(lg_worker_t *w)
{
	if (w->started) {
		pthread_join(w->thread, NULL);
		w->started = false;
	}
}

bool lg_worker_finished(lg_worker_t *w)
{
	return atomic_load(&w->finished);
}

bool lg_worker_timed_out(lg_worker_t *w)
{
	return atomic_load(&w->timed_out);
}

lg_stats_t *lg_worker_stats(lg_worker_t *w)
{
	return &w->stats;
}

void lg_worker_free(lg_worker_t *w)
{
	if (!w)
		return;
	for (uint32_t i = 0; w->agents && i < w->n_agents; i++)
		lg_agent_free(w->agents[i]);
	free(w->agents);
	if (w->stop_ev)
		event_free(w->stop_ev);
	if (w->deadline_ev)
		event_free(w->deadline_ev);
	if (w->duration_ev)
		event_free(w->duration_ev);
	if (w->base)
		event_base_free(w->base);
	lg_gen_free(w->gen);
	free(w);
}

struct event_base *lg_worker_base(lg_worker_t *w)
{
	return w->base;
}

const lg_run_t *lg_worker_run(lg_worker_t *w)
{
	return w->run;
}

lg_gen_t *lg_worker_gen(lg_worker_t *w)
{
	return w->gen;
}

void lg_worker_agent_done(lg_worker_t *w)
{
	if (w->active > 0 && --w->active == 0)
		event_base_loopexit(w->base, NULL);
}
