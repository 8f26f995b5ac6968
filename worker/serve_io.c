/* A --serve pool's I/O thread and the placement of jobs on its processes
 * (serve_pool.h; the design is in serve.c's opening comment). */
#define _GNU_SOURCE
#include "serve_pool.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

static uint64_t now_ms(void)
{
	return jm_mono_us() / 1000u;
}

void serve_pool_wake(struct serve_pool *pool)
{
	if (!pool->io_sleeping)
		return;
	pool->io_sleeping = false;
	uint64_t one = 1;
	ssize_t n = write(pool->wake_fd, &one, sizeof one);
	(void)n; /* a full counter still wakes the poll */
}

/* How many jobs one process may hold now (see the top). */
static unsigned pool_depth(const struct serve_pool *pool)
{
	if (pool->answer_avg_us == 0)
		return 1;
	uint64_t depth = pool->queue_budget_us / pool->answer_avg_us;
	if (depth < 1)
		depth = 1;
	return depth < pool->pipeline_max ? (unsigned)depth : pool->pipeline_max;
}

/* Free room over the running processes, and their capacity. */
static unsigned pool_room(const struct serve_pool *pool, unsigned *capacity)
{
	unsigned depth = pool_depth(pool), room = 0;
	*capacity = 0;
	for (unsigned i = 0; i < pool->slots; i++) {
		const struct serve_proc *p = &pool->procs[i];
		if (p->state != SERVE_PROC_UP)
			continue;
		unsigned cap = p->pipeline < depth ? p->pipeline : depth;
		*capacity += cap;
		if (p->flights_count < cap)
			room += cap - p->flights_count;
	}
	return room;
}

/* The running process with the fewest jobs that has room, or NULL. */
struct serve_proc *serve_pool_pick(struct serve_pool *pool)
{
	unsigned depth = pool_depth(pool);
	struct serve_proc *best = NULL;
	for (unsigned i = 0; i < pool->slots; i++) {
		struct serve_proc *p = &pool->procs[i];
		if (p->state != SERVE_PROC_UP)
			continue;
		unsigned room = p->pipeline < depth ? p->pipeline : depth;
		if (p->flights_count >= room)
			continue;
		if (best == NULL || p->flights_count < best->flights_count)
			best = p;
	}
	return best;
}

/* Closes the open "jobs" line at the end of out (room was kept for it). */
static void frame_close(struct serve_proc *proc)
{
	if (!proc->frame_open)
		return;
	memcpy(proc->out + proc->out_len, SERVE_JOBS_CLOSE, sizeof SERVE_JOBS_CLOSE - 1);
	proc->out_len += sizeof SERVE_JOBS_CLOSE - 1;
	proc->frame_open = false;
}

/* Encodes the job into proc's stdin buffer (a job line, or an item of the
 * open "jobs" line for a process that asked for them: jobs placed between
 * two writes go out as one line) and records it in flight. JM_ENOMEM
 * leaves nothing changed. */
int serve_pool_place(struct serve_pool *pool, struct serve_proc *proc, jm_job *job,
                     const struct serve_job_line *spec)
{
	if (proc->out_sent == proc->out_len && !proc->frame_open)
		proc->out_sent = proc->out_len = 0;
	/* The item, a line's opening, and two closings (the one before it
	 * when the open line is full, and its own later). */
	size_t room =
	    serve_proto_job_room(spec) + sizeof SERVE_JOBS_OPEN + 2 * sizeof SERVE_JOBS_CLOSE;
	if (proc->out_cap - proc->out_len < room) {
		size_t cap = proc->out_cap ? proc->out_cap : SERVE_READ_CHUNK;
		while (cap - proc->out_len < room)
			cap *= 2;
		char *grown = realloc(proc->out, cap);
		if (grown == NULL)
			return JM_ENOMEM;
		proc->out = grown;
		proc->out_cap = cap;
	}
	if (proc->batch) {
		if (proc->frame_open && proc->out_len - proc->frame_at >= SERVE_FRAME_SOFT_MAX)
			frame_close(proc);
		if (proc->frame_open) {
			proc->out[proc->out_len++] = ',';
		} else {
			proc->frame_at = proc->out_len;
			memcpy(proc->out + proc->out_len, SERVE_JOBS_OPEN,
			       sizeof SERVE_JOBS_OPEN - 1);
			proc->out_len += sizeof SERVE_JOBS_OPEN - 1;
			proc->frame_open = true;
		}
		proc->out_len +=
		    serve_proto_job_put(spec, SERVE_JOB_ITEM, proc->out + proc->out_len);
	} else {
		proc->out_len +=
		    serve_proto_job_put(spec, SERVE_JOB_LINE, proc->out + proc->out_len);
	}
	uint64_t now_us = jm_mono_us();
	proc->flights[proc->flights_count++] = (struct serve_flight){
	    .job = job,
	    .job_id = spec->job_id,
	    .placed_us = now_us,
	    .deadline_ms = spec->timeout_ms ? now_us / 1000u + spec->timeout_ms : 0,
	    .timeout_ms = spec->timeout_ms,
	};
	serve_pool_wake(pool);
	return 0;
}

int serve_job_fail(jm_job *job, const char *fmt, const char *name, const char *detail)
{
	char text[SERVE_TEXT_MAX];
	snprintf(text, sizeof text, fmt, name, detail);
	jm_job_set_error(job, text);
	return JM_HANDLER_RETRY;
}

/* ---- the I/O thread ------------------------------------------------------ */

/* Queues job's end for after the lock is dropped. finishes has room for
 * every job the pool can hold (see pool_start). */
static void finish_push(struct serve_pool *pool, jm_job *job, int outcome)
{
	pool->finish_jobs[pool->finishes_count] = job;
	pool->finish_outcomes[pool->finishes_count++] = outcome;
}

/* Ends what finish_push queued, in one jm_job_finish_many, without the
 * lock (it may wait for room in the settler). */
static void finishes_run(struct serve_pool *pool)
{
	size_t count = pool->finishes_count;
	pool->finishes_count = 0;
	pthread_mutex_unlock(&pool->lock);
	jm_job_finish_many(pool->finish_jobs, pool->finish_outcomes, count);
	pthread_mutex_lock(&pool->lock);
}

static int flight_find(const struct serve_proc *proc, uint64_t job_id)
{
	for (unsigned i = 0; i < proc->flights_count; i++)
		if (proc->flights[i].job_id == job_id)
			return (int)i;
	return -1;
}

static jm_job *flight_take(struct serve_proc *proc, unsigned index)
{
	jm_job *job = proc->flights[index].job;
	proc->flights[index] = proc->flights[--proc->flights_count];
	return job;
}

static void flight_answered(struct serve_pool *pool, struct serve_proc *proc, unsigned index)
{
	uint64_t now_us = jm_mono_us();
	uint64_t since = proc->flights[index].placed_us;
	if (proc->last_answer_us > since)
		since = proc->last_answer_us;
	uint64_t took_us = now_us - since + 1;
	pool->answer_avg_us = pool->answer_avg_us
	                          ? pool->answer_avg_us - pool->answer_avg_us / 8 + took_us / 8
	                          : took_us;
	if (pool->answer_avg_us == 0)
		pool->answer_avg_us = 1;
	proc->last_answer_us = now_us;
	proc->crashes = 0;
}

static void proc_warn_line(struct serve_pool *pool, struct serve_proc *proc, const char *what)
{
	if (!proc->warned)
		jm_warn("serve %s pid %d: ignoring a line on stdout: %s (write logs to stderr)",
		        pool->name, (int)proc->pid, what);
	proc->warned = true;
}

/* The flight of job_id in proc, or -1 (warned) when it holds none; also
 * -1 for the job a process is being stopped for (it fails as stopped). */
static int flight_answering(struct serve_pool *pool, struct serve_proc *proc, uint64_t job_id)
{
	int index = flight_find(proc, job_id);
	if (index < 0) {
		char text[96];
		snprintf(text, sizeof text, "job %" PRIu64 " is not running in it", job_id);
		proc_warn_line(pool, proc, text);
		return -1;
	}
	if (proc->state == SERVE_PROC_ENDING && proc->end == SERVE_END_TARGET &&
	    job_id == proc->end_target)
		return -1;
	return index;
}

/* Completes the job of flight index with result. */
static void flight_result(struct serve_pool *pool, struct serve_proc *proc, unsigned index,
                          const char *result, size_t result_len)
{
	jm_job *job = proc->flights[index].job;
	flight_answered(pool, proc, index);
	int rc = jm_job_set_result(job, result ? result : "", result ? result_len : 0);
	int outcome = JM_HANDLER_OK;
	if (rc != 0) {
		char text[128];
		snprintf(text, sizeof text, "serve handler result of %zu bytes refused: %s",
		         result_len, jm_strerror(rc));
		jm_job_set_error(job, text);
		outcome = JM_HANDLER_RETRY;
	}
	finish_push(pool, flight_take(proc, index), outcome);
}

/* Acts on one decoded line (under the lock); frees what reply holds. */
static void proc_apply(struct serve_pool *pool, struct serve_proc *proc, struct serve_reply *r)
{
	struct serve_reply reply = *r;
	if (reply.op == SERVE_REPLY_HELLO) {
		proc->pipeline = reply.pipeline < pool->pipeline_max ? (unsigned)reply.pipeline
		                                                     : pool->pipeline_max;
		proc->batch = reply.batch;
		jm_info("serve %s pid %d: ready, takes %u job(s) at a time%s", pool->name,
		        (int)proc->pid, proc->pipeline, proc->batch ? " in \"jobs\" lines" : "");
		serve_reply_fini(&reply);
		return;
	}
	if (reply.op == SERVE_REPLY_RESULTS) {
		for (size_t i = 0; i < reply.items_count; i++) {
			struct serve_result_item *item = &reply.items[i];
			int index = flight_answering(pool, proc, item->job_id);
			if (index >= 0)
				flight_result(pool, proc, (unsigned)index, item->result,
				              item->result_len);
		}
		serve_reply_fini(&reply);
		return;
	}
	int index = flight_answering(pool, proc, reply.job_id);
	if (index < 0) {
		serve_reply_fini(&reply);
		return;
	}
	jm_job *job = proc->flights[index].job;
	if (reply.op == SERVE_REPLY_PROGRESS) {
		jm_job_progress(job, reply.done, reply.total,
		                reply.message[0] ? reply.message : NULL);
	} else if (reply.op == SERVE_REPLY_RESULT) {
		flight_result(pool, proc, (unsigned)index, reply.result, reply.result_len);
	} else {
		flight_answered(pool, proc, (unsigned)index);
		jm_job_set_error(job, reply.message);
		finish_push(pool, flight_take(proc, (unsigned)index),
		            reply.permanent ? JM_HANDLER_PERMANENT : JM_HANDLER_RETRY);
	}
	serve_reply_fini(&reply);
}

/* Decodes one line into pool->decoded (the array has room). */
static void line_decode(struct serve_pool *pool, struct serve_proc *proc, const char *line,
                        size_t len)
{
	if (len == 0)
		return;
	struct serve_decoded *d = &pool->decoded[pool->decoded_count++];
	d->proc = proc;
	d->bad = serve_proto_decode(line, len, &d->reply, d->why, sizeof d->why) != 0;
}

/* Acts on what line_decode gathered (under the lock). */
static void decoded_apply(struct serve_pool *pool)
{
	for (size_t i = 0; i < pool->decoded_count; i++) {
		struct serve_decoded *d = &pool->decoded[i];
		if (d->bad)
			proc_warn_line(pool, d->proc, d->why);
		else
			proc_apply(pool, d->proc, &d->reply);
	}
	pool->decoded_count = 0;
}

/* Reads what stdout has and handles each whole line. 0: nothing more now,
 * 1: more may be there (read again later), -1: EOF (it closed stdout or
 * died), -2: an overlong line. */
static int proc_read(struct serve_pool *pool, struct serve_proc *proc)
{
	/* Whole lines left in in[] make no poll event: in_lines has the I/O
	 * thread come back without waiting for one. */
	proc->in_lines = false;
	if (pool->decoded_count == SERVE_DECODED_MAX) {
		proc->in_lines = true;
		return 1;
	}
	if (proc->in_len > 0 && memchr(proc->in, '\n', proc->in_len) != NULL) {
		/* Whole lines left over from a full array: those first. */
		size_t start = 0;
		char *nl;
		while (pool->decoded_count < SERVE_DECODED_MAX &&
		       (nl = memchr(proc->in + start, '\n', proc->in_len - start)) != NULL) {
			size_t end = (size_t)(nl - proc->in);
			line_decode(pool, proc, proc->in + start, end - start);
			start = end + 1;
		}
		memmove(proc->in, proc->in + start, proc->in_len - start);
		proc->in_len -= start;
		proc->in_lines = memchr(proc->in, '\n', proc->in_len) != NULL;
		return 1;
	}
	for (unsigned reads = 0; reads < SERVE_READS_PER_WAKE; reads++) {
		if (proc->in_cap - proc->in_len < SERVE_READ_CHUNK) {
			size_t cap = proc->in_cap ? proc->in_cap * 2 : 2 * SERVE_READ_CHUNK;
			char *grown = realloc(proc->in, cap);
			if (grown == NULL)
				return -2;
			proc->in = grown;
			proc->in_cap = cap;
		}
		ssize_t got =
		    read(proc->stdout_fd, proc->in + proc->in_len, proc->in_cap - proc->in_len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (got <= 0)
			return -1;
		size_t scan_from = proc->in_len;
		proc->in_len += (size_t)got;
		size_t start = 0;
		bool full = false;
		for (;;) {
			if (pool->decoded_count == SERVE_DECODED_MAX) {
				full = true;
				break;
			}
			char *nl = memchr(proc->in + scan_from, '\n', proc->in_len - scan_from);
			if (nl == NULL)
				break;
			size_t end = (size_t)(nl - proc->in);
			line_decode(pool, proc, proc->in + start, end - start);
			start = end + 1;
			scan_from = start;
		}
		memmove(proc->in, proc->in + start, proc->in_len - start);
		proc->in_len -= start;
		if (full) {
			proc->in_lines = true;
			return 1; /* the rest after these are applied */
		}
		if (proc->in_len > SERVE_LINE_MAX)
			return -2;
	}
	return 1;
}

/* Writes what it can of the placed lines; false when stdin broke. */
static bool proc_write(struct serve_proc *proc)
{
	frame_close(proc);
	while (proc->out_sent < proc->out_len) {
		ssize_t n = write(proc->stdin_fd, proc->out + proc->out_sent,
		                  proc->out_len - proc->out_sent);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n < 0)
			return false;
		proc->out_sent += (size_t)n;
	}
	proc->out_sent = proc->out_len = 0;
	return true;
}

/* Starts ending an UP process: see enum serve_end. A stop for a job sends
 * its cancel line and SIGTERM at once; a process that closed stdout gets
 * the kill grace to exit on its own first. */
static void proc_end(struct serve_pool *pool, struct serve_proc *proc, enum serve_end end,
                     uint64_t target, const char *reason)
{
	if (proc->state != SERVE_PROC_UP)
		return;
	proc->state = SERVE_PROC_ENDING;
	proc->end = end;
	proc->end_target = target;
	snprintf(proc->end_reason, sizeof proc->end_reason, "%s", reason);
	if (end == SERVE_END_CRASH) {
		proc->end_stage = 0;
	} else {
		if (end == SERVE_END_TARGET && proc->out_sent == proc->out_len) {
			size_t len = 0;
			char *cancel = serve_proto_cancel(target, &len);
			if (cancel != NULL && write(proc->stdin_fd, cancel, len) < 0)
				jm_debug("serve %s pid %d: cancel line not written: %s", pool->name,
				         (int)proc->pid, strerror(errno));
			free(cancel);
		}
		kill(-proc->pid, SIGTERM);
		proc->end_stage = 1;
	}
	proc->out_sent = proc->out_len = 0; /* unsent lines die with it */
	proc->frame_open = false;
	proc->end_deadline_ms = now_ms() + pool->kill_grace_ms;
}

/* The ENDING process exited (or was SIGKILLed): reads what it still wrote,
 * reaps it and ends the jobs it held (see the top). */
static void proc_finish_end(struct serve_pool *pool, struct serve_proc *proc)
{
	kill(-proc->pid, SIGKILL); /* what it left behind in its group */
	/* Answers it wrote before it went still count. The pipe holds at most
	 * a few chunks once its writers are gone. */
	for (unsigned i = 0; i < 64 && proc->flights_count > 0; i++) {
		int r = proc_read(pool, proc);
		decoded_apply(pool);
		if (r != 1)
			break;
	}
	pid_t pid = proc->pid;
	char how[128];
	serve_proc_reap(proc, how, sizeof how);
	if (proc->end != SERVE_END_TARGET)
		serve_proc_note_crash(proc);
	while (proc->flights_count > 0) {
		struct serve_flight *f = &proc->flights[0];
		char text[SERVE_TEXT_MAX];
		int outcome = JM_HANDLER_RETRY;
		if (proc->end == SERVE_END_CRASH)
			snprintf(
			    text, sizeof text,
			    "serve %s: handler process %d %s while running the job (restarting it)",
			    pool->name, (int)pid, how);
		else if (proc->end == SERVE_END_BROKEN)
			snprintf(text, sizeof text,
			         "serve %s: handler process %d %s; it was stopped because it %s",
			         pool->name, (int)pid, how, proc->end_reason);
		else if (f->job_id == proc->end_target)
			snprintf(text, sizeof text,
			         "serve %s: %s; handler process %d %s (restarted for the next job)",
			         pool->name, proc->end_reason, (int)pid, how);
		else {
			snprintf(
			    text, sizeof text,
			    "serve %s: handed back: handler process %d, which also ran job %" PRIu64
			    ", was stopped for it (%s)",
			    pool->name, (int)pid, proc->end_target, proc->end_reason);
			outcome = JM_HANDLER_RELEASE;
		}
		jm_job_set_error(f->job, text);
		if (outcome == JM_HANDLER_RELEASE)
			jm_debug("%s", text);
		else if (proc->end == SERVE_END_TARGET)
			jm_info("%s", text);
		else
			jm_warn("%s", text);
		finish_push(pool, flight_take(proc, 0), outcome);
	}
}

/* Moves an ENDING process on: reaped once it exited, signalled harder at
 * each deadline. */
static void proc_ending_step(struct serve_pool *pool, struct serve_proc *proc, uint64_t now)
{
	if (serve_proc_has_exited(proc)) {
		proc_finish_end(pool, proc);
		return;
	}
	if (now < proc->end_deadline_ms)
		return;
	if (proc->end_stage == 0) {
		kill(-proc->pid, SIGTERM);
		proc->end_deadline_ms = now + pool->kill_grace_ms;
	} else if (proc->end_stage == 1) {
		kill(-proc->pid, SIGKILL);
		proc->end_deadline_ms = now + 5000;
	} else {
		proc_finish_end(pool, proc); /* SIGKILLed: waitpid returns soon */
		return;
	}
	proc->end_stage++;
}

static void wait_unlink(struct serve_pool *pool, struct serve_wait *wait)
{
	struct serve_wait **link = &pool->wait_head;
	struct serve_wait *prev = NULL;
	while (*link != NULL && *link != wait) {
		prev = *link;
		link = &(*link)->next;
	}
	if (*link == NULL)
		return;
	*link = wait->next;
	if (pool->wait_tail == wait)
		pool->wait_tail = prev;
	wait->next = NULL;
}

/* Ends a waiting job (its slot returns; the job ends after the lock). */
static void wait_end(struct serve_pool *pool, struct serve_wait *wait, const char *detail)
{
	wait_unlink(pool, wait);
	serve_job_fail(wait->job, "serve %s: %s", pool->name, detail);
	finish_push(pool, wait->job, JM_HANDLER_RETRY);
	wait->done = true;
	pthread_cond_signal(&wait->cond);
}

/* Places waiting jobs where there is room, starting processes that are
 * down (once their backoff passed) when the running ones have none. */
static void pool_place_waiting(struct serve_pool *pool, uint64_t now)
{
	/* Slots wait until a quarter of the room is free, not one place: each
	 * wake-up of a slot thread then places several jobs. */
	unsigned capacity = 0;
	unsigned room = pool_room(pool, &capacity);
	if (pool->wait_head != NULL && room > 0 && room < (capacity + 3) / 4)
		return;
	while (pool->wait_head != NULL) {
		struct serve_wait *wait = pool->wait_head;
		struct serve_proc *proc = serve_pool_pick(pool);
		if (proc == NULL) {
			for (unsigned i = 0; i < pool->slots && proc == NULL; i++) {
				struct serve_proc *p = &pool->procs[i];
				if (p->state != SERVE_PROC_DOWN || now < p->start_after_ms)
					continue;
				struct serve_spawn how = {pool->name, pool->exec_command,
				                          pool->kill_grace_ms};
				int rc = serve_proc_spawn(p, &how);
				if (rc == 0) {
					proc = p;
					continue;
				}
				jm_error("serve %s slot %u: cannot start \"%s\": %s", pool->name,
				         p->slot, pool->command, strerror(rc));
				serve_proc_note_crash(p);
				char detail[160];
				snprintf(detail, sizeof detail,
				         "cannot start the handler process: %s", strerror(rc));
				wait_end(pool, wait, detail);
				return;
			}
		}
		if (proc == NULL)
			return; /* no room until an answer, an exit or a backoff */
		if (serve_pool_place(pool, proc, wait->job, &wait->spec) != 0) {
			wait_end(pool, wait, "out of memory placing the job line");
			continue;
		}
		wait_unlink(pool, wait);
		wait->done = true;
		pthread_cond_signal(&wait->cond);
	}
}

static bool pool_idle(const struct serve_pool *pool)
{
	if (pool->wait_head != NULL)
		return false;
	for (unsigned i = 0; i < pool->slots; i++)
		if (pool->procs[i].flights_count > 0 || pool->procs[i].state == SERVE_PROC_ENDING)
			return false;
	return true;
}

static void watch_add(struct serve_pool *pool, size_t *count, int fd, short events,
                      struct serve_watch watch)
{
	if (fd < 0 || *count >= pool->pfds_cap)
		return;
	pool->pfds[*count] = (struct pollfd){.fd = fd, .events = events};
	pool->watches[*count] = watch;
	(*count)++;
}

static void timeout_min(int64_t *wait_ms, uint64_t at_ms, uint64_t now)
{
	int64_t left = at_ms > now ? (int64_t)(at_ms - now) : 0;
	if (*wait_ms < 0 || left < *wait_ms)
		*wait_ms = left;
}

/* One pass over the processes before a poll: ending ones, run timeouts,
 * waiting jobs, pending writes. */
static void pool_tend(struct serve_pool *pool)
{
	uint64_t now = now_ms();
	for (unsigned i = 0; i < pool->slots; i++) {
		struct serve_proc *p = &pool->procs[i];
		if (p->state == SERVE_PROC_ENDING)
			proc_ending_step(pool, p, now);
		if (p->state != SERVE_PROC_UP)
			continue;
		for (unsigned f = 0; f < p->flights_count; f++) {
			struct serve_flight *flight = &p->flights[f];
			if (jm_job_should_abandon(flight->job)) {
				proc_end(pool, p, SERVE_END_TARGET, flight->job_id,
				         "job was abandoned (cancelled, lease lost or worker "
				         "stopping)");
				break;
			}
			if (flight->deadline_ms == 0 || now < flight->deadline_ms)
				continue;
			char reason[64];
			snprintf(reason, sizeof reason, "timed out after %" PRIu64 " ms",
			         flight->timeout_ms);
			proc_end(pool, p, SERVE_END_TARGET, flight->job_id, reason);
			break;
		}
	}
	/* Waiting jobs' abandon flags are read here too, not from an eventfd
	 * each: making one per wait cost more than the wait. */
	for (struct serve_wait *w = pool->wait_head, *next; w != NULL; w = next) {
		next = w->next;
		if (jm_job_should_abandon(w->job))
			wait_end(pool, w, "job abandoned while it waited for a handler process");
	}
	pool_place_waiting(pool, now);
	for (unsigned i = 0; i < pool->slots; i++) {
		struct serve_proc *p = &pool->procs[i];
		if (p->state == SERVE_PROC_UP && p->out_sent < p->out_len && !proc_write(p))
			proc_end(pool, p, SERVE_END_CRASH, 0, "its stdin broke");
	}
}

/* Fills the poll set; returns its size and the poll timeout in *wait_ms. */
static size_t pool_poll_set(struct serve_pool *pool, int64_t *wait_ms)
{
	uint64_t now = now_ms();
	size_t count = 0;
	*wait_ms = -1;
	watch_add(pool, &count, pool->wake_fd, POLLIN, (struct serve_watch){.kind = WATCH_WAKE});
	for (unsigned i = 0; i < pool->slots; i++) {
		struct serve_proc *p = &pool->procs[i];
		if (p->state == SERVE_PROC_UP) {
			watch_add(pool, &count, p->stdout_fd, POLLIN,
			          (struct serve_watch){.kind = WATCH_STDOUT, .proc = p});
			if (p->in_lines)
				*wait_ms = 0; /* lines read but not decoded yet */
			if (p->out_sent < p->out_len)
				watch_add(pool, &count, p->stdin_fd, POLLOUT,
				          (struct serve_watch){.kind = WATCH_STDIN, .proc = p});
			/* Abandons are read from the jobs' flags (pool_tend), not
			 * from one descriptor each in every poll: a stop or cancel
			 * waits at most SERVE_ABANDON_CHECK_MS to be seen. */
			if (p->flights_count > 0)
				timeout_min(wait_ms, now + SERVE_ABANDON_CHECK_MS, now);
			for (unsigned f = 0; f < p->flights_count; f++)
				if (p->flights[f].deadline_ms)
					timeout_min(wait_ms, p->flights[f].deadline_ms, now);
		} else if (p->state == SERVE_PROC_ENDING) {
			watch_add(pool, &count, p->pidfd, POLLIN,
			          (struct serve_watch){.kind = WATCH_PIDFD, .proc = p});
			timeout_min(wait_ms, p->end_deadline_ms, now);
			if (p->pidfd < 0)
				timeout_min(wait_ms, now + SERVE_ENDING_POLL_MS, now);
		} else if (pool->wait_head != NULL) {
			timeout_min(wait_ms, p->start_after_ms, now);
		}
	}
	if (pool->wait_head != NULL)
		timeout_min(wait_ms, now + SERVE_ABANDON_CHECK_MS, now);
	return count;
}

static void pool_handle_events(struct serve_pool *pool, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		short revents = pool->pfds[i].revents;
		if (revents == 0)
			continue;
		struct serve_watch *w = &pool->watches[i];
		struct serve_proc *p = w->proc;
		switch (w->kind) {
		case WATCH_WAKE: {
			uint64_t value;
			ssize_t n = read(pool->wake_fd, &value, sizeof value);
			(void)n;
			break;
		}
		case WATCH_STDIN:
			if (p->state == SERVE_PROC_UP && !proc_write(p))
				proc_end(pool, p, SERVE_END_CRASH, 0, "its stdin broke");
			break;
		case WATCH_STDOUT:
			if (p->state != SERVE_PROC_UP)
				break;
			switch (w->read_status) {
			case -1:
				proc_end(pool, p, SERVE_END_CRASH, 0, "closed stdout");
				break;
			case -2:
				proc_end(pool, p, SERVE_END_BROKEN, 0,
				         "wrote a line longer than the protocol allows (7 MiB)");
				break;
			default:
				break;
			}
			break;
		case WATCH_PIDFD:
			break; /* pool_tend reaps it */
		}
	}
}

/* Reads and decodes what every readable stdout has, without the lock: only
 * this thread touches a process's stdout, its in buffer and its state. */
static void pool_read_all(struct serve_pool *pool, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		struct serve_watch *w = &pool->watches[i];
		w->read_status = 0;
		if (w->kind == WATCH_STDOUT && (pool->pfds[i].revents != 0 || w->proc->in_lines) &&
		    w->proc->state == SERVE_PROC_UP)
			w->read_status = proc_read(pool, w->proc);
	}
}

void *serve_pool_io_main(void *arg)
{
	struct serve_pool *pool = arg;
	pthread_setname_np(pthread_self(), "serve-io");
	pthread_mutex_lock(&pool->lock);
	for (;;) {
		pool_tend(pool);
		if (pool->finishes_count > 0) {
			finishes_run(pool);
			continue; /* jobs were placed meanwhile, perhaps */
		}
		if (pool->io_exit && pool_idle(pool))
			break;
		int64_t wait_ms = -1;
		size_t count = pool_poll_set(pool, &wait_ms);
		pool->io_sleeping = true;
		pthread_mutex_unlock(&pool->lock);
		int n = poll(pool->pfds, count, wait_ms > INT32_MAX ? INT32_MAX : (int)wait_ms);
		if (n >= 0)
			pool_read_all(pool, count);
		pthread_mutex_lock(&pool->lock);
		pool->io_sleeping = false;
		decoded_apply(pool);
		if (n > 0)
			pool_handle_events(pool, count);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}
