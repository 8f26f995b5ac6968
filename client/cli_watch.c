/* jobmesh watch: follow a job or a batch live until it finishes.
 *
 * Driven by the broker's events, never by one of them arriving: watch
 * subscribes to the id's topic first, then reads the state, then re-reads
 * it on each event (at most every WATCH_MIN_INTERVAL_MS) and at least every
 * WATCH_RECHECK_MS, since PUB drops events for a slow subscriber.
 *
 * On a terminal it redraws one line with \r: a bar, counts, the rate, an
 * ETA and the current operation. Otherwise it prints a plain line each time
 * what it shows changes (cli_format_batch_line, cli_format_job_line), no
 * escape codes. Either way the last line is the final state, and the exit
 * code is that state's (cli_exit_for_state, cli_exit_for_batch). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli_common.h"
#include "cli_input.h"
#include "cli_output.h"
#include "clock.h"

#define WATCH_RECHECK_MS 1000u
#define WATCH_MIN_INTERVAL_MS 100u
#define WATCH_BAR_WIDTH 24
#define WATCH_LINE_MAX 1024

const struct jm_flag cli_watch_flags[] = {
    {"timeout", "SEC", "give up after SEC seconds, exit 12 (default: until it finishes)",
     cli_set_timeout},
    CLI_FLAG_HELP,
    {NULL, NULL, NULL, NULL},
};

/* What the event thread and the watcher share. */
struct watch_waiter {
	pthread_mutex_t lock;
	pthread_cond_t changed; /* on CLOCK_MONOTONIC */
	unsigned events_seen;
};

static void watch_event_cb(const jm_event *ev, void *arg)
{
	struct watch_waiter *waiter = arg;
	pthread_mutex_lock(&waiter->lock);
	waiter->events_seen++;
	pthread_cond_signal(&waiter->changed);
	pthread_mutex_unlock(&waiter->lock);
}

static unsigned watch_events_seen(struct watch_waiter *waiter)
{
	pthread_mutex_lock(&waiter->lock);
	unsigned seen = waiter->events_seen;
	pthread_mutex_unlock(&waiter->lock);
	return seen;
}

/* Returns once an event arrived after seen or until_us (monotonic) passed. */
static void watch_wait(struct watch_waiter *waiter, unsigned seen, uint64_t until_us)
{
	struct timespec ts = jm_timespec_of_us(until_us); /* changed: CLOCK_MONOTONIC */
	pthread_mutex_lock(&waiter->lock);
	while (waiter->events_seen == seen) {
		if (pthread_cond_timedwait(&waiter->changed, &waiter->lock, &ts) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&waiter->lock);
}

/* What one watch shows, job or batch. */
struct watch {
	uint64_t id;
	bool is_batch;
	bool tty;
	jm_job_info job;
	jm_batch_info batch;
	/* The first observation, for the rate. */
	uint64_t first_us;
	uint64_t first_done;
	bool have_first;
	char last_line[WATCH_LINE_MAX];
	bool drawn; /* a bar is on the terminal's current line */
};

/* Reads the state into w; JM_E code with the SDK's error recorded. */
static int watch_read(struct watch *w, jm_client *client)
{
	if (w->is_batch) {
		jm_batch_info_fini(&w->batch);
		return jm_client_batch_status(client, w->id, &w->batch);
	}
	jm_job_info_fini(&w->job);
	return jm_client_status(client, w->id, &w->job);
}

static bool watch_is_final(const struct watch *w)
{
	if (w->is_batch)
		return w->batch.state != JM_BATCH_RUNNING;
	return w->job.state == JM_STATE_COMPLETED || w->job.state == JM_STATE_FAILED ||
	       w->job.state == JM_STATE_CANCELLED;
}

static void watch_plain_line(const struct watch *w, char *out, size_t out_size)
{
	if (w->is_batch)
		cli_format_batch_line(out, out_size, &w->batch);
	else
		cli_format_job_line(out, out_size, &w->job);
}

static unsigned watch_terminal_width(void)
{
	struct winsize ws;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
		return ws.ws_col;
	return 80;
}

/* Cuts text to at most max_bytes without splitting a UTF-8 sequence. */
static void watch_cut(char *text, size_t max_bytes)
{
	size_t len = strlen(text);
	if (len <= max_bytes)
		return;
	size_t cut = max_bytes;
	while (cut > 0 && ((unsigned char)text[cut] & 0xC0) == 0x80)
		cut--;
	text[cut] = '\0';
}

/* Appends " <rate>/s  ETA <time>" to out from the progress since the
 * first observation. */
static void watch_rate(struct watch *w, uint64_t done, uint64_t total, const char *unit, char *out,
                       size_t out_size)
{
	uint64_t now_us = jm_mono_us();
	out[0] = '\0';
	if (!w->have_first) {
		w->have_first = true;
		w->first_us = now_us;
		w->first_done = done;
		return;
	}
	double elapsed_s = (double)(now_us - w->first_us) / 1e6;
	if (elapsed_s < 0.5 || done <= w->first_done)
		return;
	double rate = (double)(done - w->first_done) / elapsed_s;
	int used = snprintf(out, out_size, "  %.1f %s/s", rate, unit);
	if (used < 0 || (size_t)used >= out_size || total <= done)
		return;
	double eta_s = (double)(total - done) / rate;
	if (eta_s < 120)
		snprintf(out + used, out_size - (size_t)used, "  ETA %.0fs", eta_s);
	else if (eta_s < 7200)
		snprintf(out + used, out_size - (size_t)used, "  ETA %.0fm", eta_s / 60);
	else
		snprintf(out + used, out_size - (size_t)used, "  ETA %.1fh", eta_s / 3600);
}

static void watch_draw(struct watch *w)
{
	char bar[WATCH_BAR_WIDTH + 3];
	char rate[64];
	char operation[512];
	char line[WATCH_LINE_MAX];
	if (w->is_batch) {
		const jm_batch_info *b = &w->batch;
		uint64_t finished = cli_batch_finished(b);
		cli_format_bar(bar, sizeof bar, finished, b->total, WATCH_BAR_WIDTH);
		watch_rate(w, finished, b->total, "jobs", rate, sizeof rate);
		cli_format_text(operation, sizeof operation,
		                b->current_operation ? b->current_operation : "");
		snprintf(line, sizeof line,
		         "%s %" PRIu64 "/%" PRIu64 " %3u%%, failed %" PRIu64 "%s  %s%s%s", bar,
		         finished, b->total, cli_batch_percent(b), b->failed + b->cancelled, rate,
		         jm_batch_state_name(b->state), operation[0] ? ": " : "", operation);
	} else {
		const jm_job_info *j = &w->job;
		cli_format_bar(bar, sizeof bar, j->progress_done, j->progress_total,
		               WATCH_BAR_WIDTH);
		watch_rate(w, j->progress_done, j->progress_total, "units", rate, sizeof rate);
		cli_format_text(operation, sizeof operation,
		                j->progress_message ? j->progress_message : "");
		snprintf(line, sizeof line, "%s %" PRIu64 "/%" PRIu64 "%s  %s%s%s", bar,
		         j->progress_done, j->progress_total, rate, jm_job_state_name(j->state),
		         operation[0] ? ": " : "", operation);
	}
	watch_cut(line, watch_terminal_width() - 1);
	/* \r then erase to the end of the line: the only escape codes, and only
	 * on a terminal. */
	printf("\r%s\033[K", line);
	fflush(stdout);
	w->drawn = true;
}

/* Shows the state just read: redraws the bar, or prints a plain line when
 * it differs from the last one. */
static void watch_show(struct watch *w)
{
	if (w->tty) {
		watch_draw(w);
		return;
	}
	char line[WATCH_LINE_MAX];
	watch_plain_line(w, line, sizeof line);
	if (strcmp(line, w->last_line) != 0) {
		printf("%s\n", line);
		fflush(stdout);
		snprintf(w->last_line, sizeof w->last_line, "%s", line);
	}
}

/* The final state line, always printed (after the bar on a terminal). */
static void watch_finish(struct watch *w)
{
	char line[WATCH_LINE_MAX];
	watch_plain_line(w, line, sizeof line);
	if (w->tty) {
		if (w->drawn)
			fputc('\n', stdout);
		printf("%s\n", line);
	} else if (strcmp(line, w->last_line) != 0) {
		printf("%s\n", line);
	}
	fflush(stdout);
}

/* Finds out whether id names a job or a batch; an exit code. */
static int watch_identify(struct watch *w, jm_client *client)
{
	int rc = jm_client_status(client, w->id, &w->job);
	if (rc == 0)
		return CLI_EXIT_OK;
	jm_job_info_fini(&w->job);
	if (rc != JM_ENOTFOUND)
		return cli_fail_sdk(rc);
	rc = jm_client_batch_status(client, w->id, &w->batch);
	if (rc == 0) {
		w->is_batch = true;
		return CLI_EXIT_OK;
	}
	jm_batch_info_fini(&w->batch);
	if (rc == JM_ENOTFOUND)
		return cli_fail_not_found("watch", "job or batch", w->id);
	return cli_fail_sdk(rc);
}

/* Follows w until it is final or deadline_us (0: none); an exit code. */
static int watch_follow(struct watch *w, jm_client *client, struct watch_waiter *waiter,
                        uint64_t deadline_us)
{
	uint64_t last_read_us = 0;
	for (;;) {
		unsigned seen = watch_events_seen(waiter);
		int rc = watch_read(w, client);
		if (rc != 0) {
			if (w->tty && w->drawn)
				fputc('\n', stdout);
			return cli_fail_sdk(rc);
		}
		last_read_us = jm_mono_us();
		watch_show(w);
		if (watch_is_final(w)) {
			watch_finish(w);
			return w->is_batch ? cli_exit_for_batch(&w->batch)
			                   : cli_exit_for_state(w->job.state);
		}
		if (deadline_us != 0 && last_read_us >= deadline_us)
			return 0; /* timed out: the caller reports it */
		uint64_t until_us = last_read_us + WATCH_RECHECK_MS * 1000;
		if (deadline_us != 0 && until_us > deadline_us)
			until_us = deadline_us;
		watch_wait(waiter, seen, until_us);
		/* Many events in a burst cost one read per interval. */
		uint64_t next_us = last_read_us + WATCH_MIN_INTERVAL_MS * 1000;
		if (deadline_us != 0 && next_us > deadline_us)
			next_us = deadline_us;
		uint64_t now_us = jm_mono_us();
		if (now_us < next_us) {
			uint64_t pause_us = next_us - now_us;
			struct timespec ts = jm_timespec_of_us(pause_us);
			nanosleep(&ts, NULL);
		}
	}
}

int cli_watch_run(struct cli *cli, const struct cli_command *self, int argc, char **argv, int first)
{
	struct cli_timeout_opts opts = {0};
	const char *operands[1];
	int operands_count = 0;
	bool done = false;
	int code =
	    cli_command_args(self, &opts, argc, argv, first, operands, 1, &operands_count, &done);
	if (code != CLI_EXIT_OK || done)
		return code;
	struct watch *w = calloc(1, sizeof *w);
	if (w == NULL)
		return cli_fail(CLI_EXIT_ERROR, "watch", "out of memory");
	if (operands_count == 0) {
		code = cli_fail(CLI_EXIT_USAGE, "watch", "an id is required; usage: jobmesh %s %s",
		                self->name, self->args);
		goto done_free_watch;
	}
	if (!cli_parse_job_id(operands[0], &w->id)) {
		code = cli_fail(CLI_EXIT_USAGE, "watch",
		                "id \"%s\" is invalid: use the decimal number printed by submit "
		                "or batch submit",
		                operands[0]);
		goto done_free_watch;
	}
	uint64_t deadline_us = opts.has_timeout ? jm_mono_us() + opts.timeout_ms * 1000 : 0;
	w->tty = isatty(STDOUT_FILENO) == 1;
	jm_client *client = cli_client(cli, "watch", &code);
	if (client == NULL)
		goto done_free_watch;
	code = watch_identify(w, client);
	if (code != CLI_EXIT_OK)
		goto done_free_watch;

	struct watch_waiter waiter = {.events_seen = 0};
	pthread_mutex_init(&waiter.lock, NULL);
	jm_cond_init_monotonic(&waiter.changed);
	/* Without events the bounded re-check alone still follows the state. */
	char topic[40];
	snprintf(topic, sizeof topic, "%s/%" PRIu64, w->is_batch ? "batch" : "job", w->id);
	jm_subscription *sub = NULL;
	(void)jm_client_subscribe(client, topic, true, watch_event_cb, &waiter, &sub);

	code = watch_follow(w, client, &waiter, deadline_us);
	jm_subscription_close(sub);
	pthread_cond_destroy(&waiter.changed);
	pthread_mutex_destroy(&waiter.lock);
	if (code == 0 && !watch_is_final(w)) {
		watch_finish(w);
		code = cli_fail(CLI_EXIT_NOT_FINISHED, "watch",
		                "%s %" PRIu64 " is still %s after %" PRIu64 " s",
		                w->is_batch ? "batch" : "job", w->id,
		                w->is_batch ? jm_batch_state_name(w->batch.state)
		                            : jm_job_state_name(w->job.state),
		                opts.timeout_ms / 1000);
	}
done_free_watch:
	jm_job_info_fini(&w->job);
	jm_batch_info_fini(&w->batch);
	free(w);
	return code;
}
