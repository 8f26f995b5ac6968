/* Applying records to the in-memory state (see state.h).
 *
 * Each transition is: unplace the job from where its old state keeps it,
 * change its fields, place it where its new state keeps it (job.h lists the
 * places). Counters per queue follow place/unplace, so they cannot drift. */
#include "heap.h"
#include "state.h"

#include <stdlib.h>
#include <string.h>

#include <jobmesh/error.h>

#include "clock.h"
#include "log.h"
#include "idempotency.h"
#include "message.h"

int state_init(struct state *s, const struct state_config *config)
{
	memset(s, 0, sizeof *s);
	s->config = *config;
	s->next_job_id = 1;
	s->boot_epoch = 0;
	deadline_heap_init(&s->deadlines);
	schedules_init(&s->schedules);
	int rc = jobtable_init(&s->jobs);
	if (rc == 0)
		rc = job_types_init(&s->types);
	if (rc == 0)
		rc = queue_registry_init(&s->queues, &config->queue_defaults, config->max_queues);
	s->queues.overrides = config->queue_overrides;
	s->queues.overrides_count = config->queue_overrides_count;
	if (rc == 0)
		rc = worker_registry_init(&s->workers, config->max_workers);
	if (rc == 0)
		rc = batch_registry_init(&s->batches);
	if (rc != 0)
		state_fini(s);
	return rc;
}

static void job_free(struct state *s, struct job *job)
{
	idem_forget(job);
	struct job_more *more = job->more;
	if (more) {
		free(more->progress_message);
		free(more->last_error);
		free(more->result);
		free(more);
	}
	queue_job_freed(job->queue, job);
	job_types_give(&s->types, job->attrs.type);
	free(job);
}

static void free_job_cb(struct job *job, void *arg)
{
	job_free(arg, job);
}

/* What a placed job added to s->live_bytes (state_job_snapshot_bound when
 * it was placed). A job without its rarely used part has nothing that
 * changes the bound while it is placed, so the bound is computed again;
 * one with it keeps the figure in job_more. */
uint64_t state_job_placed_bytes(const struct job *job)
{
	if (job->more)
		return job->more->snapshot_bytes;
	return job->state ? state_job_snapshot_bound(job) : 0;
}

struct job_more *state_job_more(struct job *job)
{
	if (job->more == NULL) {
		struct job_more *more = jm_calloc(1, sizeof *more);
		if (more == NULL)
			return NULL;
		TAILQ_INIT(&more->waiters);
		/* Before it is attached: what the job added while it had none. */
		more->snapshot_bytes = (uint32_t)state_job_placed_bytes(job);
		job->more = more;
	}
	return job->more;
}

void state_fini(struct state *s)
{
	jobtable_each(&s->jobs, free_job_cb, s);
	jobtable_fini(&s->jobs);
	job_types_fini(&s->types);
	queue_registry_fini(&s->queues);
	worker_registry_fini(&s->workers);
	if (s->batches.buckets)
		batch_registry_fini(&s->batches);
	schedules_fini(&s->schedules);
	deadline_heap_fini(&s->deadlines);
}

bool state_job_is_finished(const struct job *job)
{
	return job->state == PROTO_STATE_COMPLETED || job->state == PROTO_STATE_FAILED ||
	       job->state == PROTO_STATE_CANCELLED;
}

/* The monotonic deadline for wall time at_us, now being now_us: a delayed
 * job's run_at and a lease's start are wall times from the journal; once
 * scheduled, a later step of the wall clock must not move them. */
static uint64_t mono_deadline(uint64_t at_us, uint64_t now_us)
{
	uint64_t mono_us = jm_mono_us();
	return at_us > now_us ? mono_us + (at_us - now_us) : mono_us;
}

/* The worker to forget when the registry is full and a new id comes: one
 * that holds no job and has no fetch parked, preferring one that never sent
 * a heartbeat (an id known only from a fetch, as a flood of made-up ids
 * is), then the one silent longest. */
static void pick_evictable_cb(struct worker *w, void *arg)
{
	struct worker **best = arg;
	if (w->held_count != 0 || w->parked_fetches != 0)
		return;
	struct worker *b = *best;
	if (b == NULL || (w->heartbeats == 0 && b->heartbeats != 0) ||
	    ((w->heartbeats == 0) == (b->heartbeats == 0) &&
	     w->last_seen_mono_us < b->last_seen_mono_us))
		*best = w;
}

int state_worker_seen(struct state *s, const char *id, uint64_t now_us, struct worker **out)
{
	struct worker *w = worker_find(&s->workers, id);
	if (w == NULL && s->workers.workers.count >= s->workers.max_workers) {
		struct worker *victim = NULL;
		worker_each(&s->workers, pick_evictable_cb, &victim);
		if (victim != NULL) {
			s->workers_evicted++;
			deadline_heap_remove(&s->deadlines, &victim->lost_timer);
			worker_remove(&s->workers, victim);
		}
	}
	int rc = worker_get(&s->workers, id, now_us, &w);
	if (rc != 0)
		return rc;
	w->last_seen_us = now_us;
	w->last_seen_mono_us = jm_mono_us();
	rc = deadline_heap_set(&s->deadlines, &w->lost_timer,
	                       w->last_seen_mono_us + s->config.dead_after_ms * 1000);
	if (rc != 0)
		return rc;
	*out = w;
	return 0;
}

/* The batch counter that holds jobs in state, or NULL. */
static uint64_t *batch_counter(struct batch *b, uint32_t state)
{
	switch (state) {
	case PROTO_STATE_PENDING:
	case PROTO_STATE_DELAYED:
		return &b->pending;
	case PROTO_STATE_ACTIVE:
		return &b->active;
	case PROTO_STATE_COMPLETED:
		return &b->completed;
	case PROTO_STATE_FAILED:
		return &b->failed;
	case PROTO_STATE_CANCELLED:
		return &b->cancelled;
	default:
		return NULL;
	}
}

/* The journal frames each snapshot record with a length and a checksum
 * (journal.c, JOURNAL_FRAME_BYTES). */
#define SNAPSHOT_FRAME_BYTES 8u
/* msgpack's largest header for the JOB record's array of 21 values (array
 * 16), for any integer (uint 64) and for a string or binary (32-bit
 * length). */
#define MSGPACK_ARRAY_HEADER_MAX 3u
#define MSGPACK_INT_MAX 9u
#define MSGPACK_BYTES_HEADER_MAX 5u
/* A JOB record (proto/record.c): version, type and 11 other integers;
 * queue, type, payload, worker id, last error and result; and the lease
 * token and holder instance, counted by their value (0 takes one byte,
 * a random token nine). */
#define JOB_RECORD_INTS 13u
#define JOB_RECORD_STRINGS 6u

/* The group (appended) as the record holds it: "" takes one byte. */
static uint64_t group_bound(const char *group)
{
	return group[0] ? MSGPACK_BYTES_HEADER_MAX + strlen(group) : 1;
}

/* The bound is the worst case of every header plus the variable bytes: it
 * exceeds the exact encoding by at most ~100 bytes a job (small integers
 * take one byte, not nine). It must not fall short, or a snapshot written
 * just now could look more than twice the live state and compaction would
 * repeat itself. test_state checks it against proto_record_encode. */
uint64_t state_job_snapshot_bound(const struct job *job)
{
	const struct job_more *more = job->more;
	return SNAPSHOT_FRAME_BYTES + MSGPACK_ARRAY_HEADER_MAX + JOB_RECORD_INTS * MSGPACK_INT_MAX +
	       JOB_RECORD_STRINGS * MSGPACK_BYTES_HEADER_MAX + strlen(job->queue->name) +
	       (more && more->lease_token ? MSGPACK_INT_MAX : 1) +
	       (more && more->holder_instance ? MSGPACK_INT_MAX : 1) + strlen(job->attrs.type) +
	       job->payload_len +
	       group_bound(lanes_group_name(&job->queue->lanes, job->attrs.group)) +
	       (more && more->holder ? strlen(more->holder->id) : 0) +
	       (more && more->last_error ? strlen(more->last_error) : 0) +
	       (more ? more->result_len : 0) +
	       (job_key(job) ? MSGPACK_BYTES_HEADER_MAX + strlen(job_key(job)->key) : 1);
}

uint64_t state_new_job_bound(const struct proto_rec_job *r)
{
	return SNAPSHOT_FRAME_BYTES + MSGPACK_ARRAY_HEADER_MAX + JOB_RECORD_INTS * MSGPACK_INT_MAX +
	       JOB_RECORD_STRINGS * MSGPACK_BYTES_HEADER_MAX + strlen(r->attrs.queue) +
	       (r->lease_token ? MSGPACK_INT_MAX : 1) + (r->worker_instance ? MSGPACK_INT_MAX : 1) +
	       strlen(r->attrs.type) + r->payload.len + group_bound(r->attrs.group) +
	       (r->state == PROTO_STATE_ACTIVE ? strlen(r->worker_id) : 0) + r->last_error.len +
	       r->result.len + (r->key.len ? MSGPACK_BYTES_HEADER_MAX + r->key.len : 1);
}

/* Removes job from the place its current state keeps it in. */
static void unplace(struct state *s, struct job *job)
{
	struct queue *q = job->queue;
	s->live_bytes -= state_job_placed_bytes(job);
	if (job->more)
		job->more->snapshot_bytes = 0;
	uint64_t *counter = job->batch ? batch_counter(job->batch, job->state) : NULL;
	if (counter)
		(*counter)--;
	switch (job->state) {
	case PROTO_STATE_PENDING:
		queue_ready_remove(q, job);
		deadline_init(&job->timer, DEADLINE_JOB_READY); /* the link's bytes */
		s->ready_jobs--;
		break;
	case PROTO_STATE_DELAYED:
		deadline_heap_remove(&s->deadlines, &job->timer);
		q->delayed--;
		break;
	case PROTO_STATE_ACTIVE:
		deadline_heap_remove(&s->deadlines, &job->timer);
		TAILQ_REMOVE(&job->more->holder->held, job, more->holder_link);
		job->more->holder->held_count--;
		job->more->holder = NULL;
		job->more->lease_token = 0;
		job->more->holder_instance = 0;
		q->active--;
		queue_job_ended(q, job);
		break;
	case PROTO_STATE_COMPLETED:
	case PROTO_STATE_FAILED:
	case PROTO_STATE_CANCELLED:
		TAILQ_REMOVE(&q->finished[queue_finished_of(job->state)], job, finished_link);
		deadline_init(&job->timer, DEADLINE_JOB_READY); /* the link's bytes */
		q->finished_count--;
		if (job->state == PROTO_STATE_COMPLETED)
			q->completed--;
		else if (job->state == PROTO_STATE_FAILED)
			q->failed--;
		else
			q->cancelled--;
		break;
	default:
		break; /* a new job is nowhere yet */
	}
	job->state = 0;
}

/* Puts job where state keeps it. An ACTIVE job must have more->holder set,
 * and its lease deadline is lease_at_us + timeout + grace. */
static int place(struct state *s, struct job *job, uint32_t state, uint64_t now_us,
                 uint64_t lease_at_us)
{
	struct queue *q = job->queue;
	if (state == PROTO_STATE_DELAYED && job->run_at_us <= now_us)
		state = PROTO_STATE_PENDING;
	job->state = state;
	uint32_t bytes = (uint32_t)state_job_snapshot_bound(job);
	if (job->more)
		job->more->snapshot_bytes = bytes;
	s->live_bytes += bytes;
	struct batch *b = job->batch;
	if (b) {
		(*batch_counter(b, state))++;
		if (state == PROTO_STATE_FAILED)
			batch_add_error(b, job->id, job_last_error(job));
		if (batch_is_finished(b))
			b->finished_us = job->updated_us;
	}
	switch (state) {
	case PROTO_STATE_PENDING:
		s->ready_jobs++;
		queue_ready_push(q, job); /* its lane has room (job_new) */
		return 0;
	case PROTO_STATE_DELAYED:
		q->delayed++;
		job->timer.kind = DEADLINE_JOB_READY;
		return deadline_heap_set(&s->deadlines, &job->timer,
		                         mono_deadline(job->run_at_us, now_us));
	case PROTO_STATE_ACTIVE: {
		struct worker *w = job->more->holder;
		TAILQ_INSERT_TAIL(&w->held, job, more->holder_link);
		w->held_count++;
		job->more->holder_heartbeat_mark = w->heartbeats;
		job->more->lease_reported = false;
		q->active++;
		queue_job_started(q, job);
		job->timer.kind = DEADLINE_LEASE;
		uint64_t deadline =
		    lease_at_us + (job->attrs.timeout_ms + s->config.lease_grace_ms) * 1000;
		return deadline_heap_set(&s->deadlines, &job->timer,
		                         mono_deadline(deadline, now_us));
	}
	case PROTO_STATE_COMPLETED:
	case PROTO_STATE_FAILED:
	case PROTO_STATE_CANCELLED:
		TAILQ_INSERT_TAIL(&q->finished[queue_finished_of(state)], job, finished_link);
		q->finished_count++;
		if (state == PROTO_STATE_COMPLETED)
			q->completed++;
		else if (state == PROTO_STATE_FAILED)
			q->failed++;
		else
			q->cancelled++;
		return 0;
	default:
		return JM_EINVAL;
	}
}

void state_job_due(struct state *s, struct job *job)
{
	if (job->state != PROTO_STATE_DELAYED)
		return;
	unplace(s, job);
	job->run_at_us = 0;
	place(s, job, PROTO_STATE_PENDING, 0, 0);
}

/* Replaces *dst with a NUL-terminated copy of bytes (NULL when empty). */
static int copy_bytes(uint8_t **dst, uint32_t *dst_len, const struct proto_bytes *src)
{
	uint8_t *copy = NULL;
	if (src->len > 0) {
		copy = jm_malloc((size_t)src->len + 1);
		if (copy == NULL)
			return JM_ENOMEM;
		memcpy(copy, src->ptr, src->len);
		copy[src->len] = '\0';
	}
	free(*dst);
	*dst = copy;
	if (dst_len)
		*dst_len = src->len;
	return 0;
}

/* Sets job's last error to text (none when empty); the rarely used part is
 * allocated only for a text. */
static int set_last_error(struct job *job, const struct proto_bytes *text)
{
	if (text->len == 0 && job->more == NULL)
		return 0;
	struct job_more *more = state_job_more(job);
	return more ? copy_bytes((uint8_t **)&more->last_error, NULL, text) : JM_ENOMEM;
}

static int set_result(struct job *job, const struct proto_bytes *result)
{
	if (result->len == 0 && job->more == NULL)
		return 0;
	struct job_more *more = state_job_more(job);
	return more ? copy_bytes(&more->result, &more->result_len, result) : JM_ENOMEM;
}

static int skip_or_fail(struct state *s, struct jm_err *err, const char *what, uint64_t job_id)
{
	if (s->replaying) {
		s->replay_skipped++;
		return 0;
	}
	return jm_err_set(err, JM_ESTATE, "%s for job %llu does not fit its state", what,
	                  (unsigned long long)job_id);
}

/* A new job of record r for queue q, in one allocation with its payload,
 * holding its type name and room in q's ready lane of its type and group
 * (which sets its group); NULL when out of memory. */
static struct job *job_new(struct state *s, const struct proto_rec_job *r, struct queue *q)
{
	struct job *job = jm_malloc(JOB_BYTES((size_t)r->payload.len));
	if (job == NULL)
		return NULL;
	memset(job, 0, sizeof *job);
	if (job_types_take(&s->types, r->attrs.type, &job->attrs.type) != 0) {
		free(job);
		return NULL;
	}
	if (queue_job_made(q, job, r->attrs.group) != 0) {
		job_types_give(&s->types, job->attrs.type);
		free(job);
		return NULL;
	}
	job->queue = q;
	deadline_init(&job->timer, DEADLINE_JOB_READY);
	job->id = r->job_id;
	job->payload_len = r->payload.len;
	if (r->payload.len > 0)
		memcpy(job->payload, r->payload.ptr, r->payload.len);
	if (idem_prepare(job, &r->key) != 0) {
		job_free(s, job);
		return NULL;
	}
	return job;
}

struct job *state_job_prepare(struct state *s, const struct proto_rec_job *r, struct queue *q)
{
	if (jobtable_reserve(&s->jobs, r->job_id) != 0)
		return NULL;
	return job_new(s, r, q);
}

void state_job_discard(struct state *s, struct job *job)
{
	job_free(s, job);
}

/* The fields of a JOB record that are copied without allocating (the
 * type is taken when the job is made). */
static void job_set_fields(struct job *job, struct queue *q, const struct proto_rec_job *r)
{
	job->queue = q;
	job->attrs.priority = (int16_t)r->attrs.priority;          /* checked by proto/ */
	job->attrs.max_attempts = (uint16_t)r->attrs.max_attempts; /* likewise */
	job->attrs.timeout_ms = r->attrs.timeout_ms;
	job->attrs.created_us = r->attrs.created_us;
	job->attempt = (uint16_t)r->attempt;
	job->lease = r->lease;
	job->updated_us = r->updated_us;
	job->run_at_us = r->run_at_us;
}

void state_job_attrs(const struct job *job, struct proto_job_attrs *out)
{
	memcpy(out->queue, job->queue->name, sizeof out->queue);
	memcpy(out->type, job->attrs.type, sizeof out->type);
	out->priority = job->attrs.priority;
	out->max_attempts = job->attrs.max_attempts;
	out->timeout_ms = job->attrs.timeout_ms;
	out->batch_id = job_batch_id(job);
	out->created_us = job->attrs.created_us;
	memset(out->group, 0, sizeof out->group);
	strncpy(out->group, lanes_group_name(&job->queue->lanes, job->attrs.group), PROTO_NAME_MAX);
}

static void note_ids(struct state *s, const struct proto_rec_job *r)
{
	if (r->job_id >= s->next_job_id)
		s->next_job_id = r->job_id + 1;
	if (r->attrs.batch_id >= s->next_job_id)
		s->next_job_id = r->attrs.batch_id + 1;
}

void state_apply_prepared_job(struct state *s, const struct proto_rec_job *r, struct job *job,
                              uint64_t now_us)
{
	job_set_fields(job, job->queue, r);
	(void)jobtable_insert(&s->jobs, job); /* its page was reserved */
	idem_link(job->queue, job);           /* the queue's keys were reserved */
	note_ids(s, r);
	if (r->attrs.batch_id) {
		struct batch *b = batch_find(&s->batches, r->attrs.batch_id);
		b->total++;
		b->jobs_present++;
		batch_note_queue(b, r->attrs.queue);
		job->batch = b;
	}
	(void)place(s, job, r->state, now_us, r->updated_us); /* room reserved */
}

static int apply_job(struct state *s, const struct proto_rec_job *r, uint64_t now_us,
                     struct jm_err *err)
{
	struct queue *q;
	int rc = queue_get(&s->queues, r->attrs.queue, &q);
	if (rc != 0)
		return jm_err_set(err, rc, "queue %s: %s", r->attrs.queue,
		                  rc == JM_ELIMIT ? "too many queues" : jm_strerror(rc));
	struct job *job = jobtable_find(&s->jobs, r->job_id);
	bool is_new = job == NULL;
	if (is_new) {
		job = job_new(s, r, q);
		if (job == NULL)
			return jm_err_set(err, JM_ENOMEM, "job %llu: out of memory",
			                  (unsigned long long)r->job_id);
	} else {
		/* A job's payload and type never change: the record repeats
		 * what a snapshot already holds (state.h). */
		if (r->payload.len != job->payload_len ||
		    strcmp(r->attrs.type, job->attrs.type) != 0)
			return skip_or_fail(s, err, "job record", r->job_id);
		unplace(s, job);
	}
	job_set_fields(job, q, r);
	rc = set_last_error(job, &r->last_error);
	if (rc == 0)
		rc = set_result(job, &r->result);
	if (rc == 0 && r->state == PROTO_STATE_ACTIVE) {
		struct worker *w = NULL;
		struct job_more *more = state_job_more(job);
		rc = more ? state_worker_seen(s, r->worker_id, now_us, &w) : JM_ENOMEM;
		if (more) {
			more->holder = w;
			more->lease_token = r->lease_token;
			more->holder_instance = r->worker_instance;
		}
		if (w && r->worker_instance != 0)
			w->instance = r->worker_instance;
	}
	if (rc == 0 && r->key.len > 0) {
		rc = idem_reserve(q); /* idem_link below needs the queue's table */
		if (rc == 0 && job_key(job) == NULL)
			rc = idem_prepare(job, &r->key);
	}
	if (rc == 0 && is_new)
		rc = jobtable_insert(&s->jobs, job);
	if (rc != 0) {
		if (is_new)
			job_free(s, job);
		return jm_err_set(err, rc, "job %llu: %s", (unsigned long long)r->job_id,
		                  jm_strerror(rc));
	}
	idem_link(q, job);
	note_ids(s, r);
	if (is_new && r->attrs.batch_id) {
		struct batch *b;
		if (batch_get(&s->batches, r->attrs.batch_id, r->attrs.created_us, &b) != 0) {
			jobtable_remove(&s->jobs, job);
			job_free(s, job);
			return jm_err_set(err, JM_ENOMEM, "batch %llu: out of memory",
			                  (unsigned long long)r->attrs.batch_id);
		}
		b->total++;
		b->jobs_present++;
		batch_note_queue(b, q->name);
		job->batch = b;
	}
	rc = place(s, job, r->state, now_us, r->updated_us);
	if (rc != 0)
		return jm_err_set(err, rc, "job %llu: cannot place in state %u",
		                  (unsigned long long)r->job_id, r->state);
	return 0;
}

static int apply_lease(struct state *s, const struct proto_rec_lease *r, uint64_t now_us,
                       struct jm_err *err)
{
	struct job *job = jobtable_find(&s->jobs, r->job_id);
	if (job == NULL || r->lease <= job->lease ||
	    (job->state != PROTO_STATE_PENDING && job->state != PROTO_STATE_DELAYED))
		return skip_or_fail(s, err, "lease", r->job_id);
	/* The live path allocated it before journaling (core_workers.c). */
	struct job_more *more = state_job_more(job);
	if (more == NULL)
		return jm_err_set(err, JM_ENOMEM, "job %llu: out of memory",
		                  (unsigned long long)r->job_id);
	struct worker *w;
	int rc = state_worker_seen(s, r->worker_id, now_us, &w);
	if (rc != 0)
		return jm_err_set(err, rc, "worker %s: %s", r->worker_id,
		                  rc == JM_ELIMIT ? "too many workers" : jm_strerror(rc));
	unplace(s, job);
	job->attempt = (uint16_t)r->attempt;
	job->lease = r->lease;
	more->lease_token = r->token;
	more->holder_instance = r->instance;
	/* The holder's process as of its latest lease: after a restart, the
	 * process that kept running is recognised (core_workers.c). */
	if (r->instance != 0)
		w->instance = r->instance;
	more->progress_done = more->progress_total = 0;
	free(more->progress_message);
	more->progress_message = NULL;
	job->updated_us = r->at_us;
	job->run_at_us = 0;
	more->holder = w;
	return place(s, job, PROTO_STATE_ACTIVE, now_us, r->at_us);
}

/* Ends job's attempt as r says, with r's text (result or error) already
 * copied into copy (owned from here on; NULL when r carries none). Nothing
 * here allocates but the heaps' growth, for which a live caller reserved
 * room (core_records.c). */
static int settle_apply_copied(struct state *s, struct job *job, const struct proto_rec_settle *r,
                               uint8_t *copy, uint64_t now_us)
{
	struct job_more *more = job->more; /* its lease made it (state_settle_fits) */
	unplace(s, job);
	job->updated_us = r->at_us;
	uint32_t next_state;
	switch (r->outcome) {
	case PROTO_OUTCOME_COMPLETED:
		free(more->result);
		more->result = copy;
		more->result_len = copy ? r->data.len : 0;
		next_state = PROTO_STATE_COMPLETED;
		break;
	case PROTO_OUTCOME_RETRY:
		free(more->last_error);
		more->last_error = (char *)copy;
		job->run_at_us = r->run_at_us;
		next_state = PROTO_STATE_DELAYED;
		break;
	case PROTO_OUTCOME_DEAD:
		free(more->last_error);
		more->last_error = (char *)copy;
		next_state = PROTO_STATE_FAILED;
		break;
	case PROTO_OUTCOME_RELEASED:
	default:
		free(copy);
		if (job->attempt > 0)
			job->attempt--;
		job->run_at_us = r->run_at_us;
		next_state = PROTO_STATE_DELAYED;
		break;
	}
	return place(s, job, next_state, now_us, 0);
}

int state_settle_prepare(const struct proto_rec_settle *r, uint8_t **copy)
{
	*copy = NULL;
	if (r->outcome == PROTO_OUTCOME_RELEASED)
		return 0;
	return copy_bytes(copy, NULL, &r->data);
}

bool state_settle_fits(const struct state *s, const struct proto_rec_settle *r)
{
	const struct job *job = jobtable_find(&s->jobs, r->job_id);
	return job != NULL && job->state == PROTO_STATE_ACTIVE && job->lease == r->lease &&
	       job->more != NULL;
}

void state_apply_prepared_settle(struct state *s, const struct proto_rec_settle *r, uint8_t *copy,
                                 uint64_t now_us)
{
	(void)settle_apply_copied(s, jobtable_find(&s->jobs, r->job_id), r, copy,
	                          now_us); /* room reserved */
}

static int apply_settle(struct state *s, const struct proto_rec_settle *r, uint64_t now_us,
                        struct jm_err *err)
{
	if (!state_settle_fits(s, r))
		return skip_or_fail(s, err, "settle", r->job_id);
	uint8_t *copy;
	if (state_settle_prepare(r, &copy) != 0)
		return jm_err_set(err, JM_ENOMEM, "job %llu: out of memory",
		                  (unsigned long long)r->job_id);
	return settle_apply_copied(s, jobtable_find(&s->jobs, r->job_id), r, copy, now_us);
}

static int apply_cancel(struct state *s, const struct proto_rec_job_event *r, uint64_t now_us,
                        struct jm_err *err)
{
	struct job *job = jobtable_find(&s->jobs, r->job_id);
	if (job == NULL || state_job_is_finished(job))
		return skip_or_fail(s, err, "cancel", r->job_id);
	unplace(s, job);
	job->updated_us = r->at_us;
	return place(s, job, PROTO_STATE_CANCELLED, now_us, 0);
}

static int apply_drop(struct state *s, const struct proto_rec_job_event *r, struct jm_err *err)
{
	struct job *job = jobtable_find(&s->jobs, r->job_id);
	if (job == NULL || !state_job_is_finished(job) || job_has_waiters(job))
		return skip_or_fail(s, err, "drop", r->job_id);
	/* A dropped job still counts in its batch's finished totals. */
	struct batch *b = job->batch;
	job->batch = NULL;
	unplace(s, job);
	jobtable_remove(&s->jobs, job);
	job_free(s, job);
	if (b && --b->jobs_present == 0) {
		deadline_heap_remove(&s->deadlines, &b->event_timer);
		batch_remove(&s->batches, b);
	}
	return 0;
}

static int apply_revive(struct state *s, const struct proto_rec_revive *r, uint64_t now_us,
                        struct jm_err *err)
{
	struct job *job = jobtable_find(&s->jobs, r->job_id);
	if (job == NULL || job->state != PROTO_STATE_FAILED || job->lease != r->lease)
		return skip_or_fail(s, err, "revive", r->job_id);
	unplace(s, job);
	job->attempt = 0;
	if (r->max_attempts)
		job->attrs.max_attempts = (uint16_t)r->max_attempts;
	job->updated_us = r->at_us;
	job->run_at_us = 0;
	return place(s, job, PROTO_STATE_PENDING, now_us, 0);
}

int state_apply(struct state *s, const struct proto_record *rec, uint64_t now_us,
                struct jm_err *err)
{
	switch (rec->type) {
	case PROTO_REC_JOB:
		return apply_job(s, &rec->u.job, now_us, err);
	case PROTO_REC_LEASE:
		return apply_lease(s, &rec->u.lease, now_us, err);
	case PROTO_REC_SETTLE:
		return apply_settle(s, &rec->u.settle, now_us, err);
	case PROTO_REC_CANCEL:
		return apply_cancel(s, &rec->u.cancel, now_us, err);
	case PROTO_REC_DROP:
		return apply_drop(s, &rec->u.drop, err);
	case PROTO_REC_REVIVE:
		return apply_revive(s, &rec->u.revive, now_us, err);
	case PROTO_REC_META:
		if (rec->u.meta.next_job_id > s->next_job_id)
			s->next_job_id = rec->u.meta.next_job_id;
		if (rec->u.meta.boot_epoch > s->boot_epoch)
			s->boot_epoch = rec->u.meta.boot_epoch;
		return 0;
	case PROTO_REC_QUEUE: {
		struct queue *q;
		int rc = queue_get(&s->queues, rec->u.queue.settings.queue, &q);
		if (rc != 0)
			return jm_err_set(err, rc, "queue %s: %s", rec->u.queue.settings.queue,
			                  rc == JM_ELIMIT ? "too many queues" : jm_strerror(rc));
		queue_settings_apply(&s->queues, q, &rec->u.queue.settings);
		return 0;
	}
	case PROTO_REC_SCHEDULE:
		return schedules_apply(&s->schedules, &s->deadlines, rec, now_us, err);
	case PROTO_REC_SCHEDULE_FIRE: {
		/* The run's job and the schedule's new anchor, from one record. */
		int rc = apply_job(s, &rec->u.schedule_fire.job, now_us, err);
		if (rc != 0)
			return rc;
		return schedules_apply(&s->schedules, &s->deadlines, rec, now_us, err);
	}
	}
	return jm_err_set(err, JM_EINVAL, "record type %d is unknown", (int)rec->type);
}

void state_job_snapshot(const struct job *job, struct proto_record *rec)
{
	memset(rec, 0, sizeof *rec);
	rec->version = PROTO_RECORD_VERSION;
	rec->type = PROTO_REC_JOB;
	struct proto_rec_job *r = &rec->u.job;
	r->job_id = job->id;
	state_job_attrs(job, &r->attrs);
	r->payload = (struct proto_bytes){job->payload, job->payload_len};
	r->state = job->state;
	r->attempt = job->attempt;
	r->lease = job->lease;
	r->updated_us = job->updated_us;
	r->run_at_us = job->run_at_us;
	if (job_holder(job)) {
		memcpy(r->worker_id, job->more->holder->id, sizeof r->worker_id);
		r->lease_token = job->more->lease_token;
		r->worker_instance = job->more->holder_instance;
	}
	const char *last_error = job_last_error(job);
	r->last_error = (struct proto_bytes){(const uint8_t *)last_error,
	                                     last_error ? (uint32_t)strlen(last_error) : 0};
	if (job->more)
		r->result = (struct proto_bytes){job->more->result, job->more->result_len};
	if (job_key(job))
		r->key = (struct proto_bytes){(const uint8_t *)job_key(job)->key,
		                              (uint32_t)strlen(job_key(job)->key)};
}
