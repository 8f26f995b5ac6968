/* Long-lived handler processes for jobmesh-worker --serve: the flags, the
 * pools' life cycle and the SDK's handler (serve.h has the contract,
 * serve_proto.h the lines, serve_proc.h one process, serve_pool.h and
 * serve_io.c a pool's I/O thread).
 *
 * One pool per COMMAND holds one process per slot and one I/O thread. A
 * handler call (on one of the SDK's slot threads) picks the running process
 * with the fewest jobs that has room, encodes its job into that process's
 * buffer (a job line, or an item of the open "jobs" line for a process
 * whose hello asked for them) and returns JM_HANDLER_DEFERRED, so the slot
 * takes its next job at once; the I/O thread closes the open "jobs" line,
 * writes what was placed (many lines a write), reads the answers (many
 * lines a read, "results" lines holding many), and ends each job with
 * jm_job_finish. So a
 * drain costs no thread switch per job, and a process gets a batch of
 * jobs per wake-up instead of one pipe round trip per job.
 *
 * Room: a process takes one job at a time until its hello line says it
 * takes more ("pipeline"), and never more than --serve-pipeline. A handler
 * that runs its jobs one by one makes a pipelined job wait for the ones
 * ahead of it, and its run timeout runs meanwhile, so the depth is also
 * sized by time: about --serve-queue-ms of work (the pool's moving
 * average of the time per answer) per process; jobs of a second each get
 * no pipelining at all. A call that finds no room waits on its slot until
 * the I/O thread places its job (or ends it): the SDK's slots never hold
 * more jobs than the processes can take, plus one each.
 *
 * When a process must be stopped for one job (its run timeout passed, it
 * was cancelled or its lease lost), that job fails as before and every
 * other job in flight in the process is handed back (JM_HANDLER_RELEASE:
 * requeued without counting an attempt; a result that reached us before
 * the process was gone still counts). When a process dies on its own or
 * breaks the protocol, every job it held fails its attempt (any of them may
 * have killed it; a job that keeps killing its process so ends in
 * dead-letter instead of looping), and is retried while attempts remain.
 *
 * Locking: the pool lock guards the processes' state, their flights and
 * out buffers, and the wait list. The I/O thread drops it only to poll
 * and to call jm_job_finish (which may wait for the settler), so nothing
 * blocks under it but short pipe writes and reads. */
#define _GNU_SOURCE
#include "serve.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "serve_pool.h"

static uint64_t now_ms(void)
{
	return jm_mono_us() / 1000u;
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static int serve_handler(jm_job *job, void *arg)
{
	struct serve_pool *pool = arg;
	uint64_t timeout_ms = jm_job_timeout_ms(job);
	size_t payload_len = 0;
	const void *payload = jm_job_payload(job, &payload_len);
	struct serve_job_line spec = {
	    .job_id = jm_job_id(job),
	    .type = jm_job_type(job),
	    .queue = jm_job_queue(job),
	    .attempt = jm_job_attempt(job),
	    .payload = payload,
	    .payload_len = payload_len,
	    .deadline_wall_ms = timeout_ms ? jm_wall_us() / 1000u + timeout_ms : 0,
	    .timeout_ms = timeout_ms,
	};
	/* Encoded under the lock into the chosen process's buffer, in the form
	 * it asked for (a line, or an item of a "jobs" line). */
	pthread_mutex_lock(&pool->lock);
	struct serve_proc *proc = pool->wait_head == NULL ? serve_pool_pick(pool) : NULL;
	if (proc != NULL && serve_pool_place(pool, proc, job, &spec) == 0) {
		pthread_mutex_unlock(&pool->lock);
		return JM_HANDLER_DEFERRED; /* job is the I/O thread's now */
	}
	struct serve_wait wait = {
	    .job = job,
	    .spec = spec,
	};
	pthread_cond_init(&wait.cond, NULL);
	if (pool->wait_tail != NULL)
		pool->wait_tail->next = &wait;
	else
		pool->wait_head = &wait;
	pool->wait_tail = &wait;
	serve_pool_wake(pool);
	while (!wait.done)
		pthread_cond_wait(&wait.cond, &pool->lock);
	pthread_mutex_unlock(&pool->lock);
	pthread_cond_destroy(&wait.cond);
	return JM_HANDLER_DEFERRED; /* placed, or already ended by the I/O thread */
}

/* ---- the set of pools ---------------------------------------------------- */

static void pool_free(struct serve_pool *pool)
{
	if (pool == NULL)
		return;
	for (unsigned i = 0; pool->procs != NULL && i < pool->slots; i++) {
		free(pool->procs[i].in);
		free(pool->procs[i].out);
		free(pool->procs[i].flights);
	}
	free(pool->procs);
	free(pool->finish_jobs);
	free(pool->finish_outcomes);
	free(pool->decoded);
	free(pool->pfds);
	free(pool->watches);
	if (pool->wake_fd >= 0)
		close(pool->wake_fd);
	free(pool->types);
	free(pool->name);
	free(pool->exec_command);
	free(pool->command);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}

static int pool_rename(struct serve_pool *pool)
{
	size_t len = 1;
	for (size_t i = 0; i < pool->types_count; i++)
		len += strlen(pool->types[i]) + 1;
	char *name = malloc(len);
	if (name == NULL)
		return JM_ENOMEM;
	name[0] = '\0';
	for (size_t i = 0; i < pool->types_count; i++) {
		if (i > 0)
			strcat(name, ",");
		strcat(name, pool->types[i]);
	}
	free(pool->name);
	pool->name = name;
	return 0;
}

/* The same type given again (argv over the config file) leaves its pool. */
static void set_forget_type(struct serve_set *set, const char *type)
{
	for (size_t i = 0; i < set->pools_count; i++) {
		struct serve_pool *pool = set->pools[i];
		for (size_t t = 0; t < pool->types_count; t++) {
			if (strcmp(pool->types[t], type) != 0)
				continue;
			memmove(&pool->types[t], &pool->types[t + 1],
			        (pool->types_count - t - 1) * sizeof *pool->types);
			pool->types_count--;
			pool_rename(pool);
			return;
		}
	}
}

int serve_set_add(struct serve_set *set, const char *flag_value, struct jm_err *err)
{
	const char *equals = strchr(flag_value, '=');
	if (equals == NULL || equals[1] == '\0')
		return jm_err_set(err, JM_EINVAL,
		                  "--serve \"%s\": write TYPE=COMMAND, e.g. "
		                  "--serve email.parse='node handlers.mjs'",
		                  flag_value);
	size_t type_len = (size_t)(equals - flag_value);
	if (!proto_name_is_valid(flag_value, type_len))
		return jm_err_set(err, JM_EBADNAME, "--serve: job type \"%.*s\" is invalid: %s",
		                  (int)type_len, flag_value, PROTO_NAME_RULE);
	proto_name type;
	memcpy(type, flag_value, type_len);
	type[type_len] = '\0';
	const char *command = equals + 1;
	set_forget_type(set, type);

	struct serve_pool *pool = NULL;
	for (size_t i = 0; i < set->pools_count && pool == NULL; i++) {
		if (strcmp(set->pools[i]->command, command) == 0)
			pool = set->pools[i];
	}
	if (pool == NULL) {
		struct serve_pool **grown =
		    realloc(set->pools, (set->pools_count + 1) * sizeof *grown);
		if (grown == NULL)
			return jm_err_set(err, JM_ENOMEM, "out of memory");
		set->pools = grown;
		pool = calloc(1, sizeof *pool);
		if (pool == NULL)
			return jm_err_set(err, JM_ENOMEM, "out of memory");
		pool->command = strdup(command);
		if (pool->command == NULL) {
			free(pool);
			return jm_err_set(err, JM_ENOMEM, "out of memory");
		}
		pthread_mutex_init(&pool->lock, NULL);
		pool->wake_fd = -1;
		set->pools[set->pools_count++] = pool;
	}
	proto_name *types = realloc(pool->types, (pool->types_count + 1) * sizeof *types);
	if (types == NULL)
		return jm_err_set(err, JM_ENOMEM, "out of memory");
	pool->types = types;
	memcpy(pool->types[pool->types_count++], type, sizeof type);
	if (pool_rename(pool) != 0)
		return jm_err_set(err, JM_ENOMEM, "out of memory");
	return 0;
}

/* Allocates what the I/O thread needs for every job the pool can hold:
 * pipeline_max per process, plus one waiting per slot thread. */
static int pool_alloc(struct serve_pool *pool)
{
	pool->procs = calloc(pool->slots, sizeof *pool->procs);
	if (pool->procs == NULL)
		return JM_ENOMEM;
	for (unsigned s = 0; s < pool->slots; s++) {
		struct serve_proc *p = &pool->procs[s];
		p->slot = s;
		p->pidfd = p->stdin_fd = p->stdout_fd = -1;
		p->flights = calloc(pool->pipeline_max, sizeof *p->flights);
		if (p->flights == NULL)
			return JM_ENOMEM;
	}
	pool->finishes_cap = (size_t)pool->slots * (pool->pipeline_max + 1);
	pool->finish_jobs = calloc(pool->finishes_cap, sizeof *pool->finish_jobs);
	pool->finish_outcomes = calloc(pool->finishes_cap, sizeof *pool->finish_outcomes);
	pool->decoded = calloc(SERVE_DECODED_MAX, sizeof *pool->decoded);
	pool->pfds_cap = 1 + (size_t)pool->slots * (pool->pipeline_max + 4);
	pool->pfds = calloc(pool->pfds_cap, sizeof *pool->pfds);
	pool->watches = calloc(pool->pfds_cap, sizeof *pool->watches);
	if (pool->finish_jobs == NULL || pool->finish_outcomes == NULL || pool->decoded == NULL ||
	    pool->pfds == NULL || pool->watches == NULL)
		return JM_ENOMEM;
	pool->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return pool->wake_fd >= 0 ? 0 : JM_ENOMEM;
}

int serve_set_start(struct serve_set *set, jm_worker *worker, const struct serve_settings *how,
                    struct jm_err *err)
{
	for (size_t i = 0; i < set->pools_count; i++) {
		struct serve_pool *pool = set->pools[i];
		if (pool->types_count == 0)
			continue; /* every type it had was given another command */
		pool->slots = how->slots ? how->slots : 1;
		pool->pipeline_max = how->pipeline_max ? how->pipeline_max : 1;
		pool->queue_budget_us = (uint64_t)(how->queue_ms ? how->queue_ms : 1) * 1000;
		pool->kill_grace_ms = how->kill_grace_ms;
		pool->exec_command = serve_exec_command_for(pool->command);
		if (pool->exec_command == NULL || pool_alloc(pool) != 0)
			return jm_err_set(err, JM_ENOMEM, "--serve %s: out of memory", pool->name);
		for (size_t t = 0; t < pool->types_count; t++) {
			int rc = jm_worker_register(worker, pool->types[t], serve_handler, pool);
			if (rc != 0)
				return jm_err_set(err, rc,
				                  "--serve %s: cannot register the handler: %s",
				                  pool->types[t], jm_strerror(rc));
		}
		struct serve_spawn spawn = {pool->name, pool->exec_command, pool->kill_grace_ms};
		for (unsigned s = 0; s < pool->slots; s++) {
			int rc = serve_proc_spawn(&pool->procs[s], &spawn);
			if (rc != 0) {
				jm_error(
				    "serve %s slot %u: cannot start \"%s\": %s (trying again at "
				    "the first job)",
				    pool->name, s, pool->command, strerror(rc));
				serve_proc_note_crash(&pool->procs[s]);
			}
		}
		int rc = pthread_create(&pool->io_thread, NULL, serve_pool_io_main, pool);
		if (rc != 0)
			return jm_err_set(err, JM_ENOMEM, "--serve %s: cannot start its thread: %s",
			                  pool->name, strerror(rc));
		pool->io_started = true;
		jm_info("serve %s: %u handler process(es) of \"%s\", up to %u job(s) each at a "
		        "time",
		        pool->name, pool->slots, pool->command, pool->pipeline_max);
	}
	return 0;
}

void serve_set_stop(struct serve_set *set)
{
	/* No job runs now (jm_worker_run returned): the I/O threads end. */
	for (size_t i = 0; i < set->pools_count; i++) {
		struct serve_pool *pool = set->pools[i];
		if (!pool->io_started)
			continue;
		pthread_mutex_lock(&pool->lock);
		pool->io_exit = true;
		pool->io_sleeping = true; /* make pool_wake write */
		serve_pool_wake(pool);
		pthread_mutex_unlock(&pool->lock);
		pthread_join(pool->io_thread, NULL);
		pool->io_started = false;
	}
	uint32_t grace_ms = 0;
	size_t stop_len = 0;
	char *stop = serve_proto_stop(&stop_len);
	for (size_t i = 0; i < set->pools_count; i++) {
		struct serve_pool *pool = set->pools[i];
		if (pool->kill_grace_ms > grace_ms)
			grace_ms = pool->kill_grace_ms;
		for (unsigned s = 0; pool->procs != NULL && s < pool->slots; s++) {
			struct serve_proc *p = &pool->procs[s];
			if (p->pid <= 0)
				continue;
			if (stop != NULL) {
				ssize_t n = write(p->stdin_fd, stop, stop_len);
				(void)n; /* one that stopped reading gets EOF, then signals */
			}
			close_fd(&p->stdin_fd); /* EOF: a handler may just read to the end */
		}
	}
	free(stop);
	uint64_t deadline = now_ms() + grace_ms;
	for (size_t i = 0; i < set->pools_count; i++) {
		struct serve_pool *pool = set->pools[i];
		for (unsigned s = 0; pool->procs != NULL && s < pool->slots; s++) {
			struct serve_proc *p = &pool->procs[s];
			if (p->pid <= 0)
				continue;
			uint64_t now = now_ms();
			char how[128];
			if (serve_proc_wait_exit(p, deadline > now ? deadline - now : 0)) {
				kill(-p->pid, SIGKILL); /* what it left behind in its group */
				serve_proc_reap(p, how, sizeof how);
			} else {
				pid_t pid = p->pid;
				serve_proc_kill(p, pool->kill_grace_ms, how, sizeof how);
				jm_warn(
				    "serve %s: handler process %d did not exit after stop; it %s",
				    pool->name, (int)pid, how);
				continue;
			}
			jm_debug("serve %s: handler process %s after stop", pool->name, how);
		}
	}
}

void serve_set_fini(struct serve_set *set)
{
	if (set == NULL)
		return;
	serve_set_stop(set);
	for (size_t i = 0; i < set->pools_count; i++)
		pool_free(set->pools[i]);
	free(set->pools);
	set->pools = NULL;
	set->pools_count = 0;
}
