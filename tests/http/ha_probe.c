/* A C SDK user for tests/http/test_ha_follow.py: the asynchronous
 * submitter and the event subscriber given a list of brokers, driven
 * through stdin and reporting on stdout (one line each, flushed), so the
 * test can kill the leader while they run. Not a test by itself.
 *
 *   ha_probe submit BROKERS QUEUE [keyed|plain]
 *     each stdin line is one job's payload, submitted with
 *     jm_client_submit_async (keyed: the payload is also its idempotency
 *     key); prints "ok LINE ID" or "err LINE CODE TEXT" per answer, and
 *     "done" once stdin ended and every answer came.
 *   ha_probe subscribe BROKERS TOPIC
 *     prints "ready" once subscribed, then "event KIND JOB_ID STATE" per
 *     event and "resubscribed URL" when it moved to a new leader; stops at
 *     the end of stdin. */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jobmesh/client.h>

#define PROBE_LINE_MAX 4096
#define PROBE_IN_FLIGHT 32

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&out_lock);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
	va_end(ap);
}

static void submit_cb(void *arg, int rc, uint64_t job_id, const char *error)
{
	size_t line = (size_t)(uintptr_t)arg;
	if (rc == 0)
		say("ok %zu %" PRIu64, line, job_id);
	else
		say("err %zu %d %s", line, rc, error);
}

static int run_submit(jm_client *client, const char *queue, bool keyed)
{
	jm_submitter *s = NULL;
	int rc = jm_submitter_open(client, PROBE_IN_FLIGHT, &s);
	if (rc != 0) {
		fprintf(stderr, "ha_probe: submitter: %s\n", jm_client_last_error());
		return 1;
	}
	char line[PROBE_LINE_MAX];
	size_t count = 0;
	while (fgets(line, sizeof line, stdin) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		count++;
		jm_job_spec spec = {.queue = queue,
		                    .type = "t",
		                    .payload = line,
		                    .payload_len = strlen(line),
		                    .idempotency_key = keyed ? line : NULL};
		rc = jm_client_submit_async(s, &spec, submit_cb, (void *)(uintptr_t)count);
		if (rc != 0)
			say("err %zu %d %s", count, rc, jm_client_last_error());
	}
	jm_submitter_close(s);
	say("done");
	return 0;
}

static void event_cb(const jm_event *ev, void *arg)
{
	(void)arg;
	if (ev->kind == JM_EVENT_RESUBSCRIBED)
		say("resubscribed %s", ev->message);
	else
		say("event %d %" PRIu64 " %d", ev->kind, ev->job_id, ev->state);
}

static int run_subscribe(jm_client *client, const char *topic)
{
	jm_subscription *sub = NULL;
	if (jm_client_subscribe(client, topic, false, event_cb, NULL, &sub) != 0) {
		fprintf(stderr, "ha_probe: subscribe: %s\n", jm_client_last_error());
		return 1;
	}
	say("ready");
	char line[PROBE_LINE_MAX];
	while (fgets(line, sizeof line, stdin) != NULL)
		;
	jm_subscription_close(sub);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 4 || (strcmp(argv[1], "submit") != 0 && strcmp(argv[1], "subscribe") != 0)) {
		fprintf(stderr, "usage: ha_probe submit BROKERS QUEUE [keyed|plain] | "
		                "ha_probe subscribe BROKERS TOPIC\n");
		return 2;
	}
	jm_client *client = NULL;
	if (jm_client_open(&client, argv[2]) != 0) {
		fprintf(stderr, "ha_probe: %s\n", jm_client_last_error());
		return 1;
	}
	jm_client_set_timeout_ms(client, 30000);
	int code = strcmp(argv[1], "submit") == 0
	               ? run_submit(client, argv[3], argc > 4 && strcmp(argv[4], "keyed") == 0)
	               : run_subscribe(client, argv[3]);
	jm_client_close(client);
	return code;
}
