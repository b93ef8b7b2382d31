// SPDX-License-Identifier: Apache-2.0
/*
 * Writer threads and their queues (see ingest.h). Each writer owns one
 * PostgreSQL connection and a FIFO of jobs; it takes as many queued jobs as
 * fit in group_max_events, commits them in one transaction (group commit),
 * and hands each back to its connection's worker. When PostgreSQL is down
 * or hung it retries the same group with backoff and acknowledges nothing
 * meanwhile; the queue then fills and connections stop being read.
 */
#include "ingest/ingest.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "enroll/service.h"
#include "ingest/conn.h"
#include "log.h"
#include "ingest/store.h"
#include "vtime.h"
#include "ingest/worker.h"

#define MAINTENANCE_INTERVAL_NS (INT64_C(3600) * 1000000000)

typedef struct writer {
	ingest_t *in;
	int idx;
	pthread_t thread;
	bool started;
	bool joined;
	pthread_mutex_t lock; /* guards the fields below */
	pthread_cond_t cond;
	job_t *head, *tail;
	job_t *hello_head, *hello_tail; /* Hello jobs: taken before batches */
	bool stop;
	bool abandon;
	store_t *st;
	bool db_down; /* counted in col->db_writers_down */
	int64_t next_maintenance_ns;
} writer_t;

struct ingest {
	collector_t *col;
	writer_t *w;
	int n;
	atomic_size_t queued_bytes;
	atomic_size_t queued_jobs;
};

job_t *job_new(job_kind_t kind)
{
	job_t *j = calloc(1, sizeof(*j));
	if (j)
		j->kind = kind;
	return j;
}

void job_free(job_t *j)
{
	if (!j)
		return;
	rows_batch_free(&j->rows);
	free(j->raw);
	for (size_t i = 0; i < j->n_dead; i++) {
		free(j->dead[i].reason);
		free(j->dead[i].payload);
	}
	free(j->dead);
	free(j->spans);
	free(j->refused);
	enroll_req_free(j->enroll);
	free(j->subjects);
	free(j->hello_images);
	free(j->known_images);
	free(j);
}

void job_unlink(job_t **head, job_t *j)
{
	for (job_t **p = head; *p; p = &(*p)->conn_next) {
		if (*p == j) {
			*p = j->conn_next;
			return;
		}
	}
}

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

size_t ingest_queued_bytes(const ingest_t *in)
{
	return atomic_load(&in->queued_bytes);
}

size_t ingest_queued_jobs(const ingest_t *in)
{
	return atomic_load(&in->queued_jobs);
}

bool ingest_reserve(ingest_t *in, size_t bytes)
{
	size_t high = (size_t)SETTING(in->col, queue_high_bytes);
	size_t cur = atomic_load(&in->queued_bytes);
	do {
		if (cur && (cur > high || bytes > high - cur))
			return false;
	} while (!atomic_compare_exchange_weak(&in->queued_bytes, &cur, cur + bytes));
	return true;
}

/* Uncount bytes; wake the workers when the queue goes below its low mark. */
static void uncount(ingest_t *in, size_t bytes)
{
	size_t before = atomic_fetch_sub(&in->queued_bytes, bytes);
	size_t low = (size_t)SETTING(in->col, queue_low_bytes);
	if (before - bytes < low && before >= low)
		for (int i = 0; i < in->col->n_workers; i++)
			worker_wake(in->col->workers[i]);
}

void ingest_release(ingest_t *in, size_t bytes)
{
	if (bytes)
		uncount(in, bytes);
}

void ingest_submit(ingest_t *in, job_t *job)
{
	writer_t *w = &in->w[name_hash(job->agent_name) % (uint32_t)in->n];
	if (job->kind == JOB_HELLO && !job->bytes)
		job->bytes = sizeof(*job) + (job->hello_images ? strlen(job->hello_images) : 0);
	atomic_fetch_add(&in->queued_bytes, job->bytes);
	atomic_fetch_add(&in->queued_jobs, 1);
	if (job->conn)
		conn_track_job(job->conn, job);
	pthread_mutex_lock(&w->lock);
	job->next = NULL;
	job_t **head = job->kind == JOB_HELLO ? &w->hello_head : &w->head;
	job_t **tail = job->kind == JOB_HELLO ? &w->hello_tail : &w->tail;
	if (*tail)
		(*tail)->next = job;
	else
		*head = job;
	*tail = job;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static void complete(writer_t *w, job_t *j, int status)
{
	ingest_t *in = w->in;
	size_t bytes = j->bytes;
	j->status = status == JOB_ST_DONE && j->refused ? JOB_ST_REFUSED : status;
	if (status == JOB_ST_DROPPED)
		atomic_fetch_add(&in->col->counters.jobs_dropped, 1);
	/* From here on the job belongs to the worker thread. */
	worker_complete(in->col->workers[j->worker_idx], j);
	atomic_fetch_sub(&in->queued_jobs, 1);
	uncount(in, bytes);
}

/* Hand back the jobs of the group whose connection closed (nothing of
 * them is acknowledged, and the agent sends them again); keep the rest in
 * order. Return how many are left. */
static size_t drop_closed(writer_t *w, job_t **jobs, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (atomic_load(&jobs[i]->dropped))
			complete(w, jobs[i], JOB_ST_DROPPED);
		else
			jobs[k++] = jobs[i];
	}
	return k;
}

/* Sleep up to ms unless told to abandon. Return true if abandoning. */
static bool nap(writer_t *w, int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&w->lock);
	while (!w->abandon) {
		if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) == ETIMEDOUT)
			break;
	}
	bool ab = w->abandon;
	pthread_mutex_unlock(&w->lock);
	return ab;
}

static void maintain(writer_t *w)
{
	if (w->idx != 0 || vtime_mono_ns() < w->next_maintenance_ns)
		return;
	if (store_maintain_partitions(w->st) == STORE_OK)
		w->next_maintenance_ns = vtime_mono_ns() + MAINTENANCE_INTERVAL_NS;
}

/* Record whether this writer reaches PostgreSQL: col->db_writers_down
 * counts those that do not, and /readyz says not ready while any does not. */
static void set_db_down(writer_t *w, bool down)
{
	if (w->db_down == down)
		return;
	w->db_down = down;
	atomic_fetch_add(&w->in->col->db_writers_down, down ? 1 : -1);
}

/* Idle: check that PostgreSQL still answers, so that a lost server shows
 * in /readyz with nothing to write, and keep the partitions. */
static void probe(writer_t *w)
{
	store_rc_t rc = store_ping(w->st);
	if (rc == STORE_CONN_ERROR && !w->db_down)
		log_warn("writer %d: PostgreSQL is not reachable (%s)", w->idx,
			 store_last_error(w->st));
	else if (rc == STORE_OK && w->db_down)
		log_info("writer %d: PostgreSQL is reachable again", w->idx);
	if (rc != STORE_ERROR)
		set_db_down(w, rc == STORE_CONN_ERROR);
	if (rc == STORE_OK)
		maintain(w);
}

/* Commit jobs, retrying until it works or the writer is told to abandon;
 * jobs of connections closed meanwhile are handed back and *n shrinks.
 * Return 0 if committed, -1 if abandoned. */
static int commit_with_retry(writer_t *w, job_t **jobs, size_t *np)
{
	collector_t *col = w->in->col;
	int64_t backoff = 100;
	bool failing = false;
	for (;;) {
		size_t n = *np = drop_closed(w, jobs, *np);
		if (!n)
			return 0;
		store_rc_t rc = store_connect(w->st);
		if (rc == STORE_OK) {
			maintain(w);
			rc = store_commit_group(w->st, jobs, n);
		}
		if (rc != STORE_ERROR)
			set_db_down(w, rc == STORE_CONN_ERROR);
		if (rc == STORE_OK) {
			if (failing)
				log_info("writer %d: PostgreSQL is back; group of %zu job(s) "
					 "committed",
					 w->idx, n);
			return 0;
		}
		atomic_fetch_add(&col->counters.db_errors, 1);
		if (!failing)
			log_warn("writer %d: cannot commit (%s); retrying, nothing is acknowledged "
				 "meanwhile",
				 w->idx, store_last_error(w->st));
		else
			log_debug("writer %d: still failing: %s", w->idx, store_last_error(w->st));
		failing = true;
		int64_t jitter = rand() % (backoff / 4 + 1);
		if (nap(w, backoff + jitter))
			return -1;
		backoff = backoff * 2 > SETTING(col, db_retry_max_ms)
				  ? SETTING(col, db_retry_max_ms)
				  : backoff * 2;
	}
}

static size_t job_events(const job_t *j)
{
	return j->kind == JOB_BATCH ? j->rows.n_rows + j->n_dead + 1 : 1;
}

static void *writer_main(void *arg)
{
	writer_t *w = arg;
	collector_t *col = w->in->col;
	size_t cap = 64;
	job_t **group = malloc(cap * sizeof(*group));
	for (;;) {
		pthread_mutex_lock(&w->lock);
		while (!w->head && !w->hello_head && !w->stop && !w->abandon) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 5;
			pthread_cond_timedwait(&w->cond, &w->lock, &ts);
			if (!w->head && !w->hello_head && !w->stop && !w->abandon) {
				pthread_mutex_unlock(&w->lock);
				probe(w);
				pthread_mutex_lock(&w->lock);
			}
		}
		if (!w->head && !w->hello_head && (w->stop || w->abandon)) {
			pthread_mutex_unlock(&w->lock);
			break;
		}
		size_t n = 0, events = 0;
		size_t limit = (size_t)SETTING(col, group_max_events);
		while (group && w->hello_head && n < cap) {
			job_t *j = w->hello_head;
			w->hello_head = j->next;
			if (!w->hello_head)
				w->hello_tail = NULL;
			group[n++] = j;
			events++;
		}
		while (w->head && (n == 0 || events + job_events(w->head) <= limit)) {
			if (n == cap) {
				job_t **g = group ? realloc(group, cap * 2 * sizeof(*g)) : NULL;
				if (!g)
					break;
				group = g;
				cap *= 2;
			}
			job_t *j = w->head;
			w->head = j->next;
			if (!w->head)
				w->tail = NULL;
			group[n++] = j;
			events += job_events(j);
		}
		bool abandon = w->abandon;
		pthread_mutex_unlock(&w->lock);
		if (!n) {
			log_error("writer %d: out of memory", w->idx);
			nap(w, 100);
			continue;
		}
		int64_t t0 = vtime_mono_ns();
		int status = abandon ? JOB_ST_ABANDONED : commit_with_retry(w, group, &n);
		log_debug("writer %d: %zu job(s), %zu event(s) in %.1f ms", w->idx, n, events,
			  (vtime_mono_ns() - t0) / 1e6);
		if (status == 0) {
			atomic_fetch_add(&col->counters.groups_committed, 1);
			for (size_t i = 0; i < n; i++) {
				job_t *j = group[i];
				if (j->kind != JOB_BATCH || j->refused)
					continue;
				if (j->replay) {
					atomic_fetch_add(&col->counters.batches_replayed, 1);
				} else {
					atomic_fetch_add(&col->counters.events_stored,
							 j->rows.n_rows - j->dead_in_db);
					atomic_fetch_add(&col->counters.events_dead,
							 j->n_dead + j->dead_in_db);
				}
			}
		}
		for (size_t i = 0; i < n; i++)
			complete(w, group[i], status);
	}
	free(group);
	store_disconnect(w->st);
	return NULL;
}

ingest_t *ingest_new(collector_t *col, int n_writers)
{
	ingest_t *in = calloc(1, sizeof(*in));
	if (!in)
		return NULL;
	in->col = col;
	in->n = n_writers;
	in->w = calloc((size_t)n_writers, sizeof(*in->w));
	if (!in->w) {
		free(in);
		return NULL;
	}
	for (int i = 0; i < n_writers; i++) {
		writer_t *w = &in->w[i];
		w->in = in;
		w->idx = i;
		pthread_mutex_init(&w->lock, NULL);
		pthread_cond_init(&w->cond, NULL);
		char name[32];
		snprintf(name, sizeof(name), "writer %d", i);
		w->st = store_new(col, col->settings->db, name);
		if (!w->st) {
			ingest_free(in);
			return NULL;
		}
	}
	return in;
}

int ingest_start(ingest_t *in)
{
	for (int i = 0; i < in->n; i++) {
		if (pthread_create(&in->w[i].thread, NULL, writer_main, &in->w[i]) != 0) {
			log_error("cannot start writer thread %d", i);
			return -1;
		}
		in->w[i].started = true;
	}
	return 0;
}

void ingest_stop(ingest_t *in, bool abandon)
{
	for (int i = 0; i < in->n; i++) {
		writer_t *w = &in->w[i];
		pthread_mutex_lock(&w->lock);
		w->stop = true;
		if (abandon)
			w->abandon = true;
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->lock);
	}
}

int ingest_join(ingest_t *in, int64_t timeout_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	int rc = 0;
	for (int i = 0; i < in->n; i++) {
		writer_t *w = &in->w[i];
		if (!w->started || w->joined)
			continue;
		if (pthread_timedjoin_np(w->thread, NULL, &ts) == 0)
			w->joined = true;
		else
			rc = -1;
	}
	return rc;
}

void ingest_free(ingest_t *in)
{
	if (!in)
		return;
	ingest_stop(in, true);
	for (int i = 0; i < in->n; i++) {
		writer_t *w = &in->w[i];
		if (w->started && !w->joined)
			pthread_join(w->thread, NULL);
		/* Jobs still queued were never committed: nothing is acked. They
		 * go back to their workers, which still run. */
		while (w->head || w->hello_head) {
			job_t *j = w->head ? w->head : w->hello_head;
			*(w->head ? &w->head : &w->hello_head) = j->next;
			complete(w, j, JOB_ST_ABANDONED);
		}
		store_free(w->st);
		pthread_mutex_destroy(&w->lock);
		pthread_cond_destroy(&w->cond);
	}
	free(in->w);
	free(in);
}
