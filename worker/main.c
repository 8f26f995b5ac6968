/* jobmesh-worker: runs a command per job type (exec.h has the
 * command's contract) on the worker SDK.
 *
 * This file only parses flags (the same table applies the YAML config file
 * first, then argv, so flags win), wires exec handlers into the SDK and turns
 * signals into stops. Signals: SIGTERM and SIGINT are blocked in every thread
 * and taken by one sigwait thread, so no work runs in a signal handler; the
 * first asks for a drain, the second for an immediate stop. SIGPIPE is
 * ignored (a broker or child that went away is an error code, not a death).
 *
 * Exit codes: 0 stopped cleanly after a drain, 1 runtime error, 2 usage. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jobmesh/worker.h>

#include "config.h"
#include "err.h"
#include "exec.h"
#include "flags.h"
#include "log.h"
#include "message.h"
#include "serve.h"

#define EXIT_USAGE 2
#define EXIT_RUNTIME 1
#define CONCURRENCY_MAX 1024
/* After run returned everything is settled; closing the socket must not
 * hang the exit (NNG 1.5.2 nng_close can, see DESIGN.md). */
#define SHUTDOWN_WATCHDOG_S 10

struct handler_conf {
	proto_name type;
	char *command;
	uint32_t kill_grace_ms; /* points into the options; set before run */
};

/* Where a setting came from: a file's list (queues) is replaced, not
 * extended, by the same flag on the command line. */
enum opts_phase { PHASE_CONFIG, PHASE_ARGV };

struct worker_opts {
	enum opts_phase phase;
	char *broker_url; /* owned copies: config values die with the file */
	char *worker_id;
	char *token, *tls_ca, *tls_cert, *tls_key; /* NULL: from the environment */
	char **queues;
	size_t queues_count;
	enum opts_phase queues_phase;
	struct handler_conf *handlers;
	size_t handlers_count;
	unsigned concurrency;
	unsigned prefetch;       /* jm_worker_options.prefetch: 0 default */
	unsigned serve_pipeline; /* --serve-pipeline */
	uint32_t heartbeat_ms;
	uint32_t drain_timeout_ms;
	uint32_t kill_grace_ms;
	enum jm_log_level log_level;
	struct serve_set serve; /* --serve TYPE=COMMAND (serve.h) */
	bool help;
};

/* ---- flag setters ------------------------------------------------------- */

static int replace_string(char **slot, const char *value, struct jm_err *err)
{
	char *copy = strdup(value);
	if (copy == NULL)
		return jm_err_set(err, JM_ENOMEM, "out of memory");
	free(*slot);
	*slot = copy;
	return 0;
}

static int set_broker(void *ctx, const char *value, struct jm_err *err)
{
	struct worker_opts *o = ctx;
	if (value[0] == '\0')
		return jm_err_set(err, JM_EINVAL, "--broker needs a URL such as tcp://host:7400");
	return replace_string(&o->broker_url, value, err);
}

static int set_config(void *ctx, const char *value, struct jm_err *err)
{
	struct worker_opts *o = ctx;
	if (o->phase == PHASE_CONFIG)
		return jm_err_set(err, JM_EINVAL, "config files cannot name another config file");
	return 0; /* loaded before argv was applied */
}

static int queue_add(struct worker_opts *o, const char *name, size_t len, struct jm_err *err)
{
	if (!proto_name_is_valid(name, len))
		return jm_err_set(err, JM_EBADNAME, "--queue \"%.*s\" is invalid: %s", (int)len,
		                  name, PROTO_NAME_RULE);
	for (size_t i = 0; i < o->queues_count; i++) {
		if (strlen(o->queues[i]) == len && memcmp(o->queues[i], name, len) == 0)
			return 0;
	}
	if (o->queues_count >= PROTO_QUEUES_PER_FETCH_MAX)
		return jm_err_set(err, JM_EINVAL, "--queue: at most %d queues per worker",
		                  PROTO_QUEUES_PER_FETCH_MAX);
	char **grown = realloc(o->queues, (o->queues_count + 1) * sizeof *grown);
	if (grown == NULL)
		return jm_err_set(err, JM_ENOMEM, "out of memory");
	o->queues = grown;
	o->queues[o->queues_count] = strndup(name, len);
	if (o->queues[o->queues_count] == NULL)
		return jm_err_set(err, JM_ENOMEM, "out of memory");
	o->queues_count++;
	return 0;
}

static void queues_clear(struct worker_opts *o)
{
	for (size_t i = 0; i < o->queues_count; i++)
		free(o->queues[i]);
	free(o->queues);
	o->queues = NULL;
	o->queues_count = 0;
}

static int set_queue(void *ctx, const char *value, struct jm_err *err)
{
	struct worker_opts *o = ctx;
	if (o->phase == PHASE_ARGV && o->queues_phase == PHASE_CONFIG) {
		queues_clear(o);
		o->queues_phase = PHASE_ARGV;
	}
	const char *start = value;
	for (;;) {
		const char *comma = strchr(start, ',');
		size_t len = comma ? (size_t)(comma - start) : strlen(start);
		int rc = queue_add(o, start, len, err);
		if (rc != 0)
			return rc;
		if (comma == NULL)
			return 0;
		start = comma + 1;
	}
}

JM_FLAG_NUMBER_SETTER(set_concurrency, struct worker_opts, "concurrency", concurrency, 1,
                      CONCURRENCY_MAX)

static int set_prefetch(void *ctx, const char *value, struct jm_err *err)
{
	struct worker_opts *o = ctx;
	unsigned long long n;
	int rc = jm_parse_u64("prefetch", value, 0, PROTO_JOBS_PER_MESSAGE_MAX, &n, err);
	if (rc == 0)
		o->prefetch = n == 0 ? JM_WORKER_PREFETCH_NONE : (unsigned)n;
	return rc;
}

JM_FLAG_NUMBER_SETTER(set_serve_pipeline, struct worker_opts, "serve-pipeline", serve_pipeline, 1,
                      SERVE_PIPELINE_MAX)

static int set_handler(void *ctx, const char *value, struct jm_err *err)
{
	struct worker_opts *o = ctx;
	const char *equals = strchr(value, '=');
	if (equals == NULL || equals[1] == '\0')
		return jm_err_set(err, JM_EINVAL,
		                  "--handler \"%s\": write TYPE=COMMAND, e.g. "
		                  "--handler email.send='./send-email.sh'",
		                  value);
	size_t type_len = (size_t)(equals - value);
	if (!proto_name_is_valid(value, type_len))
		return jm_err_set(err, JM_EBADNAME, "--handler: job type \"%.*s\" is invalid: %s",
		                  (int)type_len, value, PROTO_NAME_RULE);
	char *command = strdup(equals + 1);
	if (command == NULL)
		return jm_err_set(err, JM_ENOMEM, "out of memory");
	/* The same type again (argv over the config file) replaces it. */
	for (size_t i = 0; i < o->handlers_count; i++) {
		if (strlen(o->handlers[i].type) == type_len &&
		    memcmp(o->handlers[i].type, value, type_len) == 0) {
			free(o->handlers[i].command);
			o->handlers[i].command = command;
			return 0;
		}
	}
	struct handler_conf *grown = realloc(o->handlers, (o->handlers_count + 1) * sizeof *grown);
	if (grown == NULL) {
		free(command);
		return jm_err_set(err, JM_ENOMEM, "out of memory");
	}
	o->handlers = grown;
	struct handler_conf *h = &o->handlers[o->handlers_count++];
	memset(h, 0, sizeof *h);
	memcpy(h->type, value, type_len);
	h->type[type_len] = '\0';
	h->command = command;
	return 0;
}

static int set_serve(void *ctx, const char *value, struct jm_err *err)
{
	struct worker_opts *o = ctx;
	return serve_set_add(&o->serve, value, err);
}

static int set_worker_id(void *ctx, const char *value, struct jm_err *err)
{
	struct worker_opts *o = ctx;
	if (!proto_name_is_valid(value, strlen(value)))
		return jm_err_set(err, JM_EBADNAME, "--worker-id \"%s\" is invalid: %s", value,
		                  PROTO_NAME_RULE);
	return replace_string(&o->worker_id, value, err);
}

static int set_token(void *ctx, const char *value, struct jm_err *err)
{
	return replace_string(&((struct worker_opts *)ctx)->token, value, err);
}

static int set_tls_ca(void *ctx, const char *value, struct jm_err *err)
{
	return replace_string(&((struct worker_opts *)ctx)->tls_ca, value, err);
}

static int set_tls_cert(void *ctx, const char *value, struct jm_err *err)
{
	return replace_string(&((struct worker_opts *)ctx)->tls_cert, value, err);
}

static int set_tls_key(void *ctx, const char *value, struct jm_err *err)
{
	return replace_string(&((struct worker_opts *)ctx)->tls_key, value, err);
}

JM_FLAG_NUMBER_SETTER(set_heartbeat_ms, struct worker_opts, "heartbeat-ms", heartbeat_ms, 50, 60000)

static int set_drain_timeout(void *ctx, const char *value, struct jm_err *err)
{
	struct worker_opts *o = ctx;
	unsigned long long n;
	int rc = jm_parse_u64("drain-timeout", value, 1, 86400, &n, err);
	if (rc == 0)
		o->drain_timeout_ms = (uint32_t)(n * 1000u);
	return rc;
}

JM_FLAG_NUMBER_SETTER(set_kill_grace_ms, struct worker_opts, "kill-grace-ms", kill_grace_ms, 1,
                      600000)

static int set_log_level(void *ctx, const char *value, struct jm_err *err)
{
	return jm_flags_parse_log_level(value, &((struct worker_opts *)ctx)->log_level, err);
}

static int set_help(void *ctx, const char *value, struct jm_err *err)
{
	struct worker_opts *o = ctx;
	o->help = true;
	return 0;
}

static const struct jm_flag worker_flags[] = {
    {"broker", "URL", "broker address (default $JOBMESH_BROKER, else tcp://127.0.0.1:7400)",
     set_broker},
    {"config", "FILE", "YAML file of settings named like these flags; flags win", set_config},
    {"queue", "Q[,Q2]", "queue(s) to fetch from, in priority order; repeatable (required)",
     set_queue},
    {"concurrency", "N", "jobs run at once, 1-1024 (default 1)", set_concurrency},
    {"prefetch", "N",
     "most jobs fetched ahead of free slots, 0-10000 (default 64 x concurrency, at most "
     "1000); the buffer holds about two fetch round trips of work, and a job waits there "
     "at most 1 s, else it is handed back unrun",
     set_prefetch},
    {"handler", "TYPE=COMMAND",
     "run COMMAND for jobs of TYPE (plain words exec'd, else /bin/sh -c); "
     "repeatable (at least one --handler or --serve)",
     set_handler},
    {"serve", "TYPE=COMMAND",
     "start COMMAND once per slot and hand it jobs of TYPE over the line "
     "protocol of docs/serve-protocol.md; repeatable",
     set_serve},
    {"serve-pipeline", "N",
     "most jobs a --serve process holds at once, 1-256 (default 32), when its hello line "
     "says it takes several; fewer while jobs are slow (about 10 ms of queued work)",
     set_serve_pipeline},
    {"worker-id", "ID", "this worker's name (default <hostname>-<pid>)", set_worker_id},
    {"token", "SECRET",
     "secret of a worker token of the broker's --auth file, sent once per connection "
     "(default: $JOBMESH_TOKEN)",
     set_token},
    {"tls-ca", "FILE",
     "CA certificate to trust for tls+tcp:// and wss:// (default: $JOBMESH_TLS_CA)", set_tls_ca},
    {"tls-cert", "FILE", "client certificate for mutual TLS (default: $JOBMESH_TLS_CERT)",
     set_tls_cert},
    {"tls-key", "FILE", "its private key (default: $JOBMESH_TLS_KEY)", set_tls_key},
    {"heartbeat-ms", "N", "heartbeat interval, 50-60000 ms (default 1000)", set_heartbeat_ms},
    {"drain-timeout", "SEC",
     "on SIGTERM, wait this long for running jobs before handing "
     "them back (default 30)",
     set_drain_timeout},
    {"kill-grace-ms", "N",
     "time between SIGTERM and SIGKILL for a command past its "
     "timeout (default 5000)",
     set_kill_grace_ms},
    {"log-level", "L", "debug, info, warn or error (default info)", set_log_level},
    {"help", NULL, "print this help and exit", set_help},
    {NULL, NULL, NULL, NULL},
};

static void print_usage(FILE *out)
{
	fprintf(out, "usage: jobmesh-worker --queue Q[,Q2] --handler TYPE=COMMAND [options]\n"
	             "\n"
	             "Fetches jobs from the jobmesh broker and runs, for each, the command\n"
	             "registered for its type.\n"
	             "\n"
	             "options:\n");
	jm_flags_print(out, worker_flags);
	fprintf(out,
	        "\n"
	        "the handler command:\n"
	        "  runs in its own process group: exec'd directly when it is plain words\n"
	        "          (\"/srv/resize.sh --fast\", \"python3 ocr.py\"), so the handler\n"
	        "          itself gets SIGTERM; as /bin/sh -c COMMAND when it has shell\n"
	        "          syntax (quotes, $, globs, redirections, pipes, ;, &&, VAR=x)\n"
	        "  stdin   the job's payload, then end of file\n"
	        "  env     the worker's environment plus JOBMESH_JOB_ID, JOBMESH_JOB_TYPE,\n"
	        "          JOBMESH_QUEUE, JOBMESH_ATTEMPT, JOBMESH_TIMEOUT_MS,\n"
	        "          JOBMESH_PROGRESS_FD=3\n"
	        "  stdout  the job's result (at most 1 MiB; more fails the attempt)\n"
	        "  fd 3    progress, optional: one line each, at most 1024 bytes,\n"
	        "            progress DONE TOTAL [MESSAGE]\n"
	        "              e.g. progress 12 47 writing about/team\n"
	        "            progress FRACTION [MESSAGE]\n"
	        "              e.g. progress 0.25 fetching\n"
	        "          DONE and TOTAL whole numbers, TOTAL >= 1, DONE <= TOTAL; FRACTION\n"
	        "          0 to 1; when the first two fields are whole numbers the line is\n"
	        "          DONE TOTAL. The broker gets the latest value, about 10 a second at\n"
	        "          most. A malformed line is ignored with one warning per job; the\n"
	        "          command may also close fd 3 or never use it. In a shell:\n"
	        "            echo \"progress $i $n step $i\" >&3\n"
	        "  exit 0  success; exit %d: failed, never retry (dead-letter now);\n"
	        "          any other exit or a signal: failed, retried if attempts remain;\n"
	        "          the error text is the exit code and the end of stderr\n"
	        "  past the job's timeout, or when the broker asks to abandon the job, the\n"
	        "  process group gets SIGTERM, then SIGKILL after --kill-grace-ms; under\n"
	        "  /bin/sh -c, the shell dies of the SIGTERM and ends the grace: write\n"
	        "  \"exec CMD\" or a plain path for a handler that traps TERM\n"
	        "\n"
	        "signals: SIGTERM or SIGINT drains (no new jobs; running ones finish, up to\n"
	        "--drain-timeout, then are handed back); a second one hands back at once.\n"
	        "\n"
	        "config file example (--config worker.yaml):\n"
	        "  broker: tcp://broker:7400\n"
	        "  queue: [emails, documents]\n"
	        "  concurrency: 4\n"
	        "  handler: {email.send: ./send-email.sh, doc.ocr: 'ocr --stdin'}\n"
	        "\n"
	        "exit codes:\n"
	        "  0  stopped cleanly after a drain\n"
	        "  1  runtime error (cannot start, out of resources)\n"
	        "  2  usage error (bad flag, bad config file, no queue or handler)\n",
	        EXEC_EXIT_PERMANENT);
}

static void opts_fini(struct worker_opts *o)
{
	queues_clear(o);
	for (size_t i = 0; i < o->handlers_count; i++)
		free(o->handlers[i].command);
	free(o->handlers);
	free(o->broker_url);
	free(o->worker_id);
	free(o->token);
	free(o->tls_ca);
	free(o->tls_cert);
	free(o->tls_key);
	serve_set_fini(&o->serve);
}

/* Applies the config file (if any), then argv. Returns 0, or EXIT_USAGE
 * after printing what was wrong. */
static int opts_load(struct worker_opts *o, int argc, char **argv)
{
	struct jm_err err;
	jm_err_clear(&err);
	const char *config_path = jm_flags_find(argc, argv, "config");
	if (config_path != NULL) {
		struct jm_config cfg;
		memset(&cfg, 0, sizeof cfg);
		int rc = jm_config_load(&cfg, config_path, &err);
		if (rc == 0) {
			o->phase = PHASE_CONFIG;
			rc = jm_flags_apply_config(worker_flags, o, &cfg, &err);
		}
		jm_config_fini(&cfg);
		if (rc != 0) {
			fprintf(stderr, "jobmesh-worker: %s\n", jm_err_text(&err));
			return EXIT_USAGE;
		}
	}
	o->phase = PHASE_ARGV;
	int rest = argc;
	if (jm_flags_parse(worker_flags, o, argc, argv, 1, &rest, &err) != 0) {
		fprintf(stderr, "jobmesh-worker: %s\n", jm_err_text(&err));
		return EXIT_USAGE;
	}
	if (o->help)
		return 0;
	if (rest < argc) {
		fprintf(stderr,
		        "jobmesh-worker: unexpected argument \"%s\": everything is a --flag; "
		        "see --help\n",
		        argv[rest]);
		return EXIT_USAGE;
	}
	if (o->queues_count == 0) {
		fprintf(stderr, "jobmesh-worker: no queue given: add --queue NAME (see --help)\n");
		return EXIT_USAGE;
	}
	if (o->handlers_count == 0 && o->serve.pools_count == 0) {
		fprintf(stderr, "jobmesh-worker: no handler given: add --handler TYPE=COMMAND "
		                "or --serve TYPE=COMMAND (see --help)\n");
		return EXIT_USAGE;
	}
	return 0;
}

/* ---- the exec handler on the SDK ----------------------------------------- */

/* The exec handler's side channel (fd 3) feeds the SDK's progress. A
 * refusal needs no action here: JM_ESTALE makes the abandon fd readable,
 * which stops the command; a bad range cannot come out of the parser. */
static void exec_progress_to_job_cb(const struct exec_progress *progress, void *arg)
{
	jm_job *job = arg;
	jm_job_progress(job, progress->done, progress->total, progress->message);
}

static int exec_handler(jm_job *job, void *arg)
{
	const struct handler_conf *h = arg;
	size_t payload_len = 0;
	const void *payload = jm_job_payload(job, &payload_len);
	struct exec_spec spec = {
	    .command = h->command,
	    .job =
	        {
	            .job_id = jm_job_id(job),
	            .type = jm_job_type(job),
	            .queue = jm_job_queue(job),
	            .attempt = jm_job_attempt(job),
	            .timeout_ms = jm_job_timeout_ms(job),
	        },
	    .timeout_ms = jm_job_timeout_ms(job),
	    .kill_grace_ms = h->kill_grace_ms,
	    .abandon_fd = jm_job_abandon_fd(job),
	    .progress_cb = exec_progress_to_job_cb,
	    .progress_arg = job,
	};
	struct exec_result result;
	int rc = exec_run(&spec, payload, payload_len, &result);
	if (rc != 0) {
		jm_job_set_error(job, result.error);
		exec_result_fini(&result);
		return JM_HANDLER_RETRY;
	}
	int outcome = JM_HANDLER_RETRY;
	switch (result.outcome) {
	case EXEC_OK:
		rc = jm_job_set_result(job, result.output, result.output_len);
		if (rc == 0) {
			outcome = JM_HANDLER_OK;
			jm_debug("job %" PRIu64 " (%s) completed in %" PRIu64 " ms", jm_job_id(job),
			         jm_job_type(job), result.elapsed_ms);
		} else {
			jm_job_set_error(job, jm_strerror(rc));
		}
		break;
	case EXEC_PERMANENT:
		outcome = JM_HANDLER_PERMANENT;
		jm_job_set_error(job, result.error);
		break;
	case EXEC_RETRY:
		jm_job_set_error(job, result.error);
		break;
	}
	exec_result_fini(&result);
	return outcome;
}

/* ---- signals -------------------------------------------------------------- */

struct signal_ctx {
	jm_worker *worker;
	sigset_t set;
	uint32_t drain_timeout_ms;
	atomic_bool done; /* run returned: the next signal only ends this thread */
};

static void *signal_main(void *arg)
{
	struct signal_ctx *ctx = arg;
	unsigned received = 0;
	for (;;) {
		int sig = 0;
		if (sigwait(&ctx->set, &sig) != 0)
			continue;
		if (atomic_load(&ctx->done))
			return NULL;
		received++;
		if (received == 1) {
			jm_info("received %s: draining (up to %" PRIu32 " ms); send it again to "
			        "hand jobs back at once",
			        sigabbrev_np(sig) ? sigabbrev_np(sig) : "signal",
			        ctx->drain_timeout_ms);
			jm_worker_stop(ctx->worker, true);
		} else {
			jm_warn("received %s again: handing running jobs back now",
			        sigabbrev_np(sig) ? sigabbrev_np(sig) : "signal");
			jm_worker_stop(ctx->worker, false);
		}
	}
}

static void *watchdog_main(void *arg)
{
	sleep(SHUTDOWN_WATCHDOG_S);
	jm_warn("shutdown still not finished after %d s (closing the broker socket); "
	        "exiting anyway",
	        SHUTDOWN_WATCHDOG_S);
	_exit((int)(intptr_t)arg);
}

/* A handler runs as the same user and could read the worker's command line
 * in /proc/PID/cmdline: a --token value is blanked there once it has been
 * copied (JOBMESH_TOKEN is kept out of handlers' environments instead). */
static void argv_hide_token(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		char *value = NULL;
		if (strcmp(argv[i], "--token") == 0 && i + 1 < argc)
			value = argv[++i];
		else if (strncmp(argv[i], "--token=", 8) == 0)
			value = argv[i] + 8;
		if (value)
			memset(value, 'x', strlen(value));
	}
}

int main(int argc, char **argv)
{
	jm_log_init("jobmesh-worker", JM_LOG_INFO);
	struct worker_opts opts = {
	    .concurrency = 1,
	    .heartbeat_ms = 1000,
	    .drain_timeout_ms = 30000,
	    .kill_grace_ms = EXEC_KILL_GRACE_MS_DEFAULT,
	    .serve_pipeline = SERVE_PIPELINE_DEFAULT,
	    .log_level = JM_LOG_INFO,
	    .queues_phase = PHASE_CONFIG,
	};
	int status = opts_load(&opts, argc, argv);
	argv_hide_token(argc, argv);
	if (status != 0)
		goto out_free_opts;
	if (opts.help) {
		print_usage(stdout);
		goto out_free_opts;
	}
	jm_log_init("jobmesh-worker", opts.log_level);

	/* Before any thread exists, so every thread inherits the mask and the
	 * signals reach only sigwait. */
	struct signal_ctx sig = {.drain_timeout_ms = opts.drain_timeout_ms};
	sigemptyset(&sig.set);
	sigaddset(&sig.set, SIGTERM);
	sigaddset(&sig.set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sig.set, NULL);
	signal(SIGPIPE, SIG_IGN);
	atomic_init(&sig.done, false);

	jm_worker_options wopts = {
	    .broker_url = opts.broker_url,
	    .worker_id = opts.worker_id,
	    .queues = (const char *const *)opts.queues,
	    .queues_count = opts.queues_count,
	    .concurrency = opts.concurrency,
	    .prefetch = opts.prefetch,
	    .heartbeat_ms = opts.heartbeat_ms,
	    .drain_timeout_ms = opts.drain_timeout_ms,
	    .token = opts.token,
	    .tls_ca = opts.tls_ca,
	    .tls_cert = opts.tls_cert,
	    .tls_key = opts.tls_key,
	};
	status = EXIT_RUNTIME;
	jm_worker *worker = NULL;
	if (jm_worker_new(&worker, &wopts) != 0)
		goto out_free_opts; /* the SDK logged why */
	for (size_t i = 0; i < opts.handlers_count; i++) {
		opts.handlers[i].kill_grace_ms = opts.kill_grace_ms;
		int rc = jm_worker_register(worker, opts.handlers[i].type, exec_handler,
		                            &opts.handlers[i]);
		if (rc != 0) {
			jm_error("cannot register handler %s: %s", opts.handlers[i].type,
			         jm_strerror(rc));
			goto out_free_worker;
		}
	}
	struct jm_err serve_err;
	jm_err_clear(&serve_err);
	if (serve_set_start(&opts.serve, worker, opts.concurrency, opts.serve_pipeline,
	                    opts.kill_grace_ms, &serve_err) != 0) {
		jm_error("%s", jm_err_text(&serve_err));
		goto out_free_worker;
	}
	sig.worker = worker;
	pthread_t signal_thread;
	if (pthread_create(&signal_thread, NULL, signal_main, &sig) != 0) {
		jm_error("cannot start the signal thread: %s", strerror(errno));
		goto out_free_worker;
	}

	int rc = jm_worker_run(worker);
	status = rc == 0 ? 0 : EXIT_RUNTIME;
	serve_set_stop(&opts.serve); /* no job runs now: stop lines, then exit */

	atomic_store(&sig.done, true);
	pthread_kill(signal_thread, SIGTERM);
	pthread_join(signal_thread, NULL);

	pthread_t watchdog;
	if (pthread_create(&watchdog, NULL, watchdog_main, (void *)(intptr_t)status) == 0)
		pthread_detach(watchdog);
out_free_worker:
	jm_worker_free(worker);
out_free_opts:
	opts_fini(&opts);
	return status;
}
