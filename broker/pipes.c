/* The connection cap and the idle sweep (see pipes.h).
 *
 * Each pipe has an entry keyed by its id in a u64map: requests in flight
 * and when it last had one. The sweep thread wakes each second, collects
 * the idle pipes under the lock, and closes them after dropping it (nng
 * runs the REM_POST callback, which takes the lock, from nng_pipe_close). */
#include "pipes.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include <jobmesh/error.h>

#include "clock.h"
#include "log.h"
#include "u64map.h"

#define PIPES_SWEEP_MS 1000
#define PIPES_CLOSE_BATCH 256

struct pipe_entry {
	struct u64map_node node; /* key: pipe id */
	uint32_t inflight;
	uint64_t last_mono_us;
	bool closing; /* the sweep chose it: no request is handled from now */
};

struct pipes {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t sweeper;
	bool sweeping;
	bool stopping;
	void (*hook)(void *arg); /* pipes_set_sweep_hook; under lock */
	void *hook_arg;
	uint32_t max;
	uint32_t idle_ms;
	const char *what; /* the socket, for the log */
	struct u64map map;
	uint32_t count; /* pipes past ADD_PRE, including refused ones until
	                   their REM_POST */
	uint64_t refused, reaped;
	uint64_t last_warn_mono_us;
};

static struct pipe_entry *entry_of(struct pipes *p, uint32_t id)
{
	struct u64map_node *n = u64map_find(&p->map, id);
	return n ? u64map_entry(n, struct pipe_entry, node) : NULL;
}

static void *sweeper_main(void *arg);

int pipes_open(struct pipes **out, uint32_t max, uint32_t idle_ms, const char *what)
{
	struct pipes *p = calloc(1, sizeof *p);
	if (p == NULL)
		return JM_ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	jm_cond_init_monotonic(&p->wake);
	p->max = max;
	p->idle_ms = idle_ms;
	p->what = what;
	int rc = u64map_init(&p->map, 64);
	if (rc == 0 && idle_ms > 0) {
		rc = pthread_create(&p->sweeper, NULL, sweeper_main, p) == 0 ? 0 : JM_ENOMEM;
		p->sweeping = rc == 0;
	}
	if (rc != 0) {
		pipes_close(p);
		return rc;
	}
	*out = p;
	return 0;
}

static void free_entry_cb(struct u64map_node *n, void *arg)
{
	free(u64map_entry(n, struct pipe_entry, node));
}

void pipes_set_sweep_hook(struct pipes *p, void (*hook)(void *arg), void *arg)
{
	pthread_mutex_lock(&p->lock);
	p->hook = hook;
	p->hook_arg = arg;
	pthread_mutex_unlock(&p->lock);
}

void pipes_stop_sweep(struct pipes *p)
{
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	if (p->sweeping)
		pthread_join(p->sweeper, NULL);
	p->sweeping = false;
}

void pipes_close(struct pipes *p)
{
	if (p == NULL)
		return;
	pipes_stop_sweep(p);
	if (p->map.buckets)
		u64map_each(&p->map, free_entry_cb, NULL);
	u64map_fini(&p->map);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

bool pipes_added(struct pipes *p, nng_pipe pipe)
{
	uint32_t id = (uint32_t)nng_pipe_id(pipe);
	struct pipe_entry *e = calloc(1, sizeof *e);
	pthread_mutex_lock(&p->lock);
	p->count++;
	bool over = p->max && p->count > p->max;
	bool refuse = over || e == NULL;
	bool warn = false;
	if (refuse) {
		p->refused++;
		uint64_t now = jm_mono_us();
		warn = now - p->last_warn_mono_us > 10000000u || p->last_warn_mono_us == 0;
		if (warn)
			p->last_warn_mono_us = now;
	} else {
		e->node.key = id;
		e->last_mono_us = jm_mono_us();
		(void)u64map_insert(&p->map, &e->node);
		e = NULL;
	}
	uint64_t refused = p->refused;
	pthread_mutex_unlock(&p->lock);
	free(e);
	if (warn)
		jm_warn("refused a connection: %s (%s socket); %llu refused so far",
		        over ? "at the limit of --max-connections" : "out of memory", p->what,
		        (unsigned long long)refused);
	if (refuse)
		nng_pipe_close(pipe); /* before it is added: it never serves */
	return !refuse;
}

bool pipes_removed(struct pipes *p, nng_pipe pipe)
{
	pthread_mutex_lock(&p->lock);
	p->count--;
	struct pipe_entry *e = entry_of(p, (uint32_t)nng_pipe_id(pipe));
	bool admitted = e != NULL;
	if (e)
		u64map_remove(&p->map, &e->node);
	pthread_mutex_unlock(&p->lock);
	free(e);
	return admitted;
}

bool pipes_request_begin(struct pipes *p, uint32_t pipe_id)
{
	pthread_mutex_lock(&p->lock);
	struct pipe_entry *e = entry_of(p, pipe_id);
	bool closing = e && e->closing;
	if (e && !closing) {
		e->inflight++;
		e->last_mono_us = jm_mono_us();
	}
	pthread_mutex_unlock(&p->lock);
	return !closing;
}

void pipes_request_end(struct pipes *p, uint32_t pipe_id)
{
	pthread_mutex_lock(&p->lock);
	struct pipe_entry *e = entry_of(p, pipe_id);
	if (e) {
		if (e->inflight)
			e->inflight--;
		e->last_mono_us = jm_mono_us();
	}
	pthread_mutex_unlock(&p->lock);
}

uint32_t pipes_count(struct pipes *p)
{
	pthread_mutex_lock(&p->lock);
	uint32_t n = p->count;
	pthread_mutex_unlock(&p->lock);
	return n;
}

uint64_t pipes_refused(struct pipes *p)
{
	pthread_mutex_lock(&p->lock);
	uint64_t n = p->refused;
	pthread_mutex_unlock(&p->lock);
	return n;
}

uint64_t pipes_reaped(struct pipes *p)
{
	pthread_mutex_lock(&p->lock);
	uint64_t n = p->reaped;
	pthread_mutex_unlock(&p->lock);
	return n;
}

struct idle_scan {
	uint64_t before_us;
	uint32_t ids[PIPES_CLOSE_BATCH];
	uint32_t count;
};

static void idle_cb(struct u64map_node *n, void *arg)
{
	struct idle_scan *scan = arg;
	struct pipe_entry *e = u64map_entry(n, struct pipe_entry, node);
	if (e->inflight == 0 && !e->closing && e->last_mono_us < scan->before_us &&
	    scan->count < PIPES_CLOSE_BATCH) {
		e->closing = true;
		scan->ids[scan->count++] = (uint32_t)e->node.key;
	}
}

static void *sweeper_main(void *arg)
{
	struct pipes *p = arg;
	pthread_mutex_lock(&p->lock);
	while (!p->stopping) {
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += PIPES_SWEEP_MS / 1000;
		pthread_cond_timedwait(&p->wake, &p->lock, &until);
		if (p->stopping)
			break;
		if (p->hook) {
			void (*hook)(void *) = p->hook;
			void *hook_arg = p->hook_arg;
			pthread_mutex_unlock(&p->lock);
			hook(hook_arg);
			pthread_mutex_lock(&p->lock);
			if (p->stopping)
				break;
		}
		uint64_t now = jm_mono_us(), idle_us = (uint64_t)p->idle_ms * 1000;
		struct idle_scan scan = {.before_us = now > idle_us ? now - idle_us : 0};
		u64map_each(&p->map, idle_cb, &scan);
		p->reaped += scan.count;
		pthread_mutex_unlock(&p->lock);
		for (uint32_t i = 0; i < scan.count; i++) {
			nng_pipe pipe = NNG_PIPE_INITIALIZER;
			pipe.id = scan.ids[i];
			nng_pipe_close(pipe); /* NNG_ECLOSED if it went already */
		}
		if (scan.count)
			jm_debug("closed %u connections idle for over %u ms (--idle-timeout-ms)",
			         scan.count, p->idle_ms);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}
