/* The broker's limits, attacked through real processes (docs/limits.md):
 * - a multi-job submit over --max-payload-memory is refused whole, nothing
 *   is journaled, and --check-journal agrees with the stats after a
 *   restart;
 * - ten connections that each start a 60 MiB message and stall are closed
 *   after --idle-timeout-ms and the broker's memory (VmRSS) comes back,
 *   while a real client is served throughout;
 * - connections over --max-connections are closed as they connect, the
 *   ones under it keep working, and a real client gets in once one left;
 *   the same for subscribers of the events socket.
 * Each checks that no stored data changed. */
#include "jm_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jobmesh/client.h>

#include "clock.h"
#include "fixture.h"
#include "harness.h"
#include "message.h"
#include "rpc.h"
#include "stack.h"

#define DEADLINE_MS 20000
#define STALLERS 10
#define STALL_ANNOUNCED (60u << 20)
#define STALL_SENT (48u << 20)

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* ---- the payload-memory limit ------------------------------------------- */

static uint64_t pending_in(jm_client *client, const char *queue)
{
	jm_queue_stats *qs = NULL;
	size_t n = 0;
	int rc = JM_ETRANSPORT; /* a read is safe to repeat, see submit_marker */
	for (int attempt = 0; attempt < 3 && rc == JM_ETRANSPORT; attempt++)
		rc = jm_client_stats(client, &qs, &n);
	assert_jm_ok(rc);
	uint64_t pending = 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(qs[i].name, queue) == 0)
			pending = qs[i].pending;
	free(qs);
	return pending;
}

/* The pending count --check-journal prints for queue, or -1. */
static long long check_journal_pending(struct stack *s, const char *queue)
{
	char data[600];
	snprintf(data, sizeof data, "%s/data", s->h.dir);
	char *argv[] = {(char *)harness_bin("jobmesh-broker"), "--check-journal", data, NULL};
	char *out = NULL;
	int code = -1;
	assert_jm_ok(harness_run(&s->h, argv, 30000, &out, &code));
	assert_int_equal(code, 0);
	long long pending = -1;
	char pattern[128];
	snprintf(pattern, sizeof pattern, "queue %s ", queue);
	const char *at = strstr(out, pattern);
	if (at)
		sscanf(strstr(at, "pending"), "pending %lld", &pending);
	free(out);
	return pending;
}

static void test_a_submit_over_the_payload_memory_limit_is_refused_whole(void **state)
{
	const char *args[] = {"--max-payload-memory", "2MiB", NULL};
	struct stack *s = stack_open(state, "payload_memory", args, NULL, STACK_CLIENT);
	static char payload[700 << 10];
	memset(payload, 'm', sizeof payload);
	jm_job_spec specs[3];
	for (int i = 0; i < 3; i++)
		specs[i] = (jm_job_spec){
		    .queue = "mem", .type = "t", .payload = payload, .payload_len = sizeof payload};
	uint64_t ids[3];
	/* Three jobs of 700 KiB do not fit in 2 MiB: none is admitted. */
	int rc = jm_client_submit_many(s->client, specs, 3, true, ids, NULL);
	assert_int_equal(rc, JM_ELIMIT);
	assert_non_null(strstr(jm_client_last_error(), "--max-payload-memory"));
	assert_non_null(strstr(jm_client_last_error(), "limit of 2097152"));
	assert_int_equal(pending_in(s->client, "mem"), 0);
	/* Two do. Then one more is over and changes nothing. */
	assert_jm_ok(jm_client_submit_many(s->client, specs, 2, false, ids, NULL));
	assert_int_equal(jm_client_submit_many(s->client, specs, 1, false, ids, NULL), JM_ELIMIT);
	assert_int_equal(pending_in(s->client, "mem"), 2);

	/* The journal holds what the broker said, no more. */
	jm_client_close(s->client);
	s->client = NULL;
	int status = -1;
	assert_jm_ok(harness_stop(&s->broker, SIGTERM, 10000, &status));
	assert_int_equal(status, 0);
	assert_int_equal(check_journal_pending(s, "mem"), 2);
	const char *again[] = {"--max-payload-memory", "2MiB", NULL};
	assert_jm_ok(harness_broker_start(&s->h, again, &s->broker));
	assert_jm_ok(jm_client_open(&s->client, s->h.broker_url));
	assert_int_equal(pending_in(s->client, "mem"), 2);
}

/* ---- raw SP connections ----------------------------------------------- */

static int tcp_port_of(const char *url)
{
	const char *colon = strrchr(url, ':');
	assert_non_null(colon);
	return atoi(colon + 1);
}

#define SP_REQ0 48
#define SP_SUB0 33

/* The SP handshake of a peer of protocol (SP_REQ0, SP_SUB0) on connected
 * fd. Returns fd, or -1 (fd closed) if the broker closed it instead. */
static int sp_handshake(int fd, uint8_t protocol)
{
	const uint8_t hello[8] = {0, 'S', 'P', 0, 0, protocol, 0, 0};
	assert_int_equal(send(fd, hello, sizeof hello, MSG_NOSIGNAL), (ssize_t)sizeof hello);
	uint8_t reply[8];
	size_t got = 0;
	while (got < sizeof reply) {
		ssize_t n = recv(fd, reply + got, sizeof reply - got, 0);
		if (n <= 0) {
			close(fd);
			return -1;
		}
		got += (size_t)n;
	}
	return fd;
}

/* Connects to 127.0.0.1:port as a REQ socket would, to the broker's REP. */
static int sp_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	return sp_handshake(fd, SP_REQ0);
}

/* Connects to the ipc:// socket file path as a SUB socket would. */
static int sp_subscribe_ipc(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	assert_true(strlen(path) < sizeof sa.sun_path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	return sp_handshake(fd, SP_SUB0);
}

/* True once the broker closed fd (EOF or reset), waiting up to ms. */
static bool closed_by_peer(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, ms) <= 0)
		return false;
	char byte;
	ssize_t n = recv(fd, &byte, 1, MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static uint64_t vm_rss_kib(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r"); /* /proc files have no size to read by */
	assert_non_null(f);
	unsigned long long kib = 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %llu", &kib) == 1)
			break;
	fclose(f);
	assert_true(kib > 0);
	return kib;
}

/* Starts a message that announces len bytes and sends sent of them. */
static void start_message(int fd, uint64_t len, uint64_t sent)
{
	uint8_t hdr[8];
	for (int i = 0; i < 8; i++)
		hdr[i] = (uint8_t)(len >> (56 - 8 * i));
	assert_int_equal(send(fd, hdr, sizeof hdr, MSG_NOSIGNAL), 8);
	static uint8_t chunk[1 << 20];
	memset(chunk, 0x80, sizeof chunk); /* REQ's request id has its top bit set */
	while (sent > 0) {
		size_t n = sent < sizeof chunk ? (size_t)sent : sizeof chunk;
		ssize_t w = send(fd, chunk, n, MSG_NOSIGNAL);
		assert_true(w > 0);
		sent -= (uint64_t)w;
	}
}

static uint64_t submit_marker(jm_client *client, const char *text)
{
	jm_job_spec spec = {
	    .queue = "real", .type = "t", .payload = text, .payload_len = strlen(text)};
	uint64_t id = 0;
	/* A call sent just as the broker closes the idle connection fails
	 * with "unreachable"; the broker dropped it unhandled (pipes.h), so
	 * sending it again is safe, and the counts below show no duplicate. */
	int rc = JM_ETRANSPORT;
	for (int attempt = 0; attempt < 3 && rc == JM_ETRANSPORT; attempt++)
		rc = jm_client_submit(client, &spec, &id);
	assert_jm_ok(rc);
	return id;
}

static void test_stalled_huge_messages_are_dropped_and_their_memory_comes_back(void **state)
{
	const char *args[] = {"--listen", "tcp://127.0.0.1:0", "--idle-timeout-ms",
	                      "3000",     "--max-connections", "64",
	                      NULL};
#ifdef __SANITIZE_ADDRESS__
	/* ASan holds freed memory in a quarantine (256 MB): the broker's
	 * VmRSS would stay up for that reason alone. Without it ASan unmaps
	 * a freed large block at once, as glibc does. */
	char asan[512];
	const char *was = getenv("ASAN_OPTIONS");
	snprintf(asan, sizeof asan, "%s%squarantine_size_mb=0", was ? was : "", was ? ":" : "");
	setenv("ASAN_OPTIONS", asan, 1);
#endif
	struct stack *s = stack_open(state, "stalled", args, NULL, STACK_CLIENT);
	int port = tcp_port_of(s->h.broker_url);
	submit_marker(s->client, "before");
	uint64_t rss_before = vm_rss_kib(s->broker.pid);

	int fds[STALLERS];
	for (int i = 0; i < STALLERS; i++) {
		fds[i] = sp_connect(port);
		assert_true(fds[i] >= 0);
		start_message(fds[i], STALL_ANNOUNCED, STALL_SENT);
	}
	/* The partial messages are held now (the attack is real)... */
	uint64_t rss_held = vm_rss_kib(s->broker.pid);
	print_message("broker VmRSS %llu KiB before, %llu KiB with %d stalled messages\n",
	              (unsigned long long)rss_before, (unsigned long long)rss_held, STALLERS);
	assert_true(rss_held > rss_before + (uint64_t)STALLERS * (STALL_SENT >> 10) / 2);
	/* ...and a real client is still served. */
	submit_marker(s->client, "during");
	assert_int_equal(pending_in(s->client, "real"), 2);

	/* Each stalled connection is closed once idle past the timeout. */
	uint64_t deadline = jm_mono_us() + DEADLINE_MS * 1000ull;
	for (int i = 0; i < STALLERS; i++) {
		while (!closed_by_peer(fds[i], 200))
			if (jm_mono_us() > deadline)
				fail_msg("stalled connection %d still open after %d ms", i,
				         DEADLINE_MS);
		close(fds[i]);
	}
	uint64_t rss_after = vm_rss_kib(s->broker.pid);
	while (rss_after > rss_before + (64u << 10)) {
		if (jm_mono_us() > deadline)
			fail_msg("broker VmRSS %llu KiB, %llu before the stalled messages",
			         (unsigned long long)rss_after, (unsigned long long)rss_before);
		sleep_ms(50);
		rss_after = vm_rss_kib(s->broker.pid);
	}
	/* The real client's connection was idle too: it reconnects unseen. */
	submit_marker(s->client, "after");
	assert_int_equal(pending_in(s->client, "real"), 3);
}

static void test_connections_over_the_limit_are_closed_and_the_rest_served(void **state)
{
	const char *args[] = {"--listen", "tcp://127.0.0.1:0", "--max-connections",
	                      "4",        "--idle-timeout-ms", "0",
	                      NULL};
	struct stack *s = stack_open(state, "max_connections", args, NULL, 0);
	int port = tcp_port_of(s->h.broker_url);
	/* Seven connect; which four the broker admits depends on the order
	 * nng adds them, so the test counts: three are closed, four stay. */
	int fds[7];
	for (int i = 0; i < 7; i++)
		fds[i] = sp_connect(port); /* -1: closed during the handshake */
	int closed = 0;
	bool gone[7] = {false};
	uint64_t until = jm_mono_us() + DEADLINE_MS * 1000ull;
	while (closed < 3 && jm_mono_us() < until) {
		for (int i = 0; i < 7; i++) {
			if (!gone[i] && (fds[i] < 0 || closed_by_peer(fds[i], 10))) {
				gone[i] = true;
				closed++;
			}
		}
	}
	assert_int_equal(closed, 3);
	int open_fds[4], open_count = 0;
	for (int i = 0; i < 7; i++) {
		if (gone[i]) {
			if (fds[i] >= 0)
				close(fds[i]);
		} else {
			assert_false(closed_by_peer(fds[i], 200)); /* the admitted stay */
			open_fds[open_count++] = fds[i];
		}
	}
	assert_int_equal(open_count, 4);
	char *err_log = harness_read_file(harness_path(&s->h, "broker.err"), NULL);
	assert_non_null(err_log);
	assert_non_null(strstr(err_log, "refused a connection: at the limit of --max-connections"));
	free(err_log);

	/* One leaves: a real client gets its place and is served. */
	close(open_fds[3]);
	jm_client *client = NULL;
	assert_jm_ok(jm_client_open(&client, s->h.broker_url));
	jm_client_set_timeout_ms(client, 1000);
	uint64_t deadline = jm_mono_us() + DEADLINE_MS * 1000ull;
	jm_queue_stats *qs = NULL;
	size_t n = 0;
	while (jm_client_stats(client, &qs, &n) != 0) {
		if (jm_mono_us() > deadline)
			fail_msg("no client got in after a connection left: %s",
			         jm_client_last_error());
		sleep_ms(50);
	}
	assert_int_equal(n, 0); /* nothing stored changed */
	free(qs);
	jm_client_close(client);
	for (int i = 0; i < 3; i++)
		close(open_fds[i]);
}

/* ---- floods of made-up names ------------------------------------------ */

/* A FETCH as worker from queue that answers at once; returns the code. */
static int fake_fetch(struct rpc *rpc, const char *worker, const char *queue)
{
	proto_name q;
	snprintf(q, sizeof q, "%s", queue);
	struct proto_msg msg = {.type = PROTO_FETCH};
	snprintf(msg.u.fetch.worker_id, sizeof msg.u.fetch.worker_id, "%s", worker);
	msg.u.fetch.instance = 1;
	msg.u.fetch.queues_count = 1;
	msg.u.fetch.queues = &q;
	msg.u.fetch.max_jobs = 1;
	struct rpc_reply reply = {0};
	struct jm_err err = {0};
	int rc = rpc_call(rpc, &msg, 5000, &reply, &err);
	rpc_reply_fini(&reply);
	return rc;
}

struct event_count {
	pthread_mutex_t lock;
	unsigned count;
};

static void count_event(const jm_event *ev, void *arg)
{
	(void)ev;
	struct event_count *c = arg;
	pthread_mutex_lock(&c->lock);
	c->count++;
	pthread_mutex_unlock(&c->lock);
}

static unsigned events_counted(struct event_count *c)
{
	pthread_mutex_lock(&c->lock);
	unsigned n = c->count;
	pthread_mutex_unlock(&c->lock);
	return n;
}

/* Submits a job a time until c has counted more than it had, up to the
 * deadline: true once the subscriber saw an event. */
static bool subscriber_sees_a_submit(struct stack *s, struct event_count *c)
{
	jm_job_spec spec = {.queue = "capped", .type = "t", .payload = "p", .payload_len = 1};
	unsigned before = events_counted(c);
	uint64_t until = jm_mono_us() + DEADLINE_MS * 1000ull;
	while (jm_mono_us() < until) {
		uint64_t id;
		assert_jm_ok(jm_client_submit(s->client, &spec, &id));
		for (int i = 0; i < 10 && events_counted(c) == before; i++)
			sleep_ms(20);
		if (events_counted(c) != before)
			return true;
	}
	return false;
}

static void test_subscribers_over_the_limit_are_closed_and_the_rest_served(void **state)
{
	const char *args[] = {"--max-connections", "2", NULL};
	struct stack *s = stack_open(state, "max_subscribers", args, NULL, STACK_CLIENT);
	const char *url = s->h.broker_url;
	assert_true(strncmp(url, "ipc://", 6) == 0);
	char events_path[HARNESS_URL_MAX + 8];
	snprintf(events_path, sizeof events_path, "%s.events", url + 6);

	/* A real subscriber takes one of the two places. */
	struct event_count first = {.lock = PTHREAD_MUTEX_INITIALIZER};
	jm_subscription *sub = NULL;
	assert_jm_ok(
	    jm_client_subscribe(s->client, "queue/capped", true, count_event, &first, &sub));
	assert_true(subscriber_sees_a_submit(s, &first));

	/* Three more: one gets the other place, two are closed. */
	int fds[3];
	for (int i = 0; i < 3; i++)
		fds[i] = sp_subscribe_ipc(events_path); /* -1: closed during the handshake */
	int closed = 0;
	bool gone[3] = {false};
	uint64_t until = jm_mono_us() + DEADLINE_MS * 1000ull;
	while (closed < 2 && jm_mono_us() < until) {
		for (int i = 0; i < 3; i++) {
			if (!gone[i] && (fds[i] < 0 || closed_by_peer(fds[i], 10))) {
				gone[i] = true;
				closed++;
			}
		}
	}
	assert_int_equal(closed, 2);
	int admitted = -1;
	for (int i = 0; i < 3; i++) {
		if (gone[i]) {
			if (fds[i] >= 0)
				close(fds[i]);
		} else {
			admitted = fds[i];
		}
	}
	assert_true(admitted >= 0);
	assert_false(closed_by_peer(admitted, 200)); /* the admitted one stays */
	char *err_log = harness_read_file(harness_path(&s->h, "broker.err"), NULL);
	assert_non_null(err_log);
	assert_non_null(strstr(err_log, "refused a connection: at the limit of --max-connections "
	                                "(events socket)"));
	free(err_log);
	assert_true(subscriber_sees_a_submit(s, &first)); /* the first is still served */

	/* The raw one leaves: a new real subscriber gets its place. */
	close(admitted);
	struct event_count second = {.lock = PTHREAD_MUTEX_INITIALIZER};
	jm_subscription *sub2 = NULL;
	assert_jm_ok(
	    jm_client_subscribe(s->client, "queue/capped", true, count_event, &second, &sub2));
	bool served = subscriber_sees_a_submit(s, &second);
	jm_subscription_close(sub2);
	jm_subscription_close(sub);
	assert_true(served);
}

static void test_a_flood_of_made_up_worker_ids_does_not_lock_a_real_worker_out(void **state)
{
	const char *args[] = {"--max-workers", "4", NULL};
	struct stack *s = stack_open(state, "worker_flood", args, NULL, STACK_CLIENT | STACK_RPC);
	char id[32];
	for (int i = 0; i < 40; i++) {
		snprintf(id, sizeof id, "fake-%d", i);
		assert_jm_ok(fake_fetch(s->rpc, id, "none"));
	}
	uint64_t job = fixture_rpc_submit(s->rpc, "real", "work", 0);
	struct proto_delivery d = fixture_rpc_fetch(s->rpc, "real-worker", "real", 0, 5000);
	assert_int_equal(d.job_id, job);
	/* More made-up ids while it works cannot push it out: it holds a job. */
	for (int i = 40; i < 80; i++) {
		snprintf(id, sizeof id, "fake-%d", i);
		assert_jm_ok(fake_fetch(s->rpc, id, "none"));
	}
	assert_int_equal(fixture_rpc_ack(s->rpc, "real-worker", job, d.lease, "done"), 0);
	jm_job_info info;
	assert_jm_ok(jm_client_status(s->client, job, &info));
	assert_int_equal(info.state, JM_STATE_COMPLETED);
	jm_job_info_fini(&info);
	/* The fetches stored nothing: one job, one queue. */
	jm_queue_stats *qs = NULL;
	size_t n = 0;
	assert_jm_ok(jm_client_stats(s->client, &qs, &n));
	assert_int_equal(n, 1);
	assert_string_equal(qs[0].name, "real");
	assert_int_equal(qs[0].completed, 1);
	free(qs);
}

static int submit_to(jm_client *client, const char *queue, uint64_t *id)
{
	jm_job_spec spec = {.queue = queue, .type = "t", .payload = "x", .payload_len = 1};
	return jm_client_submit(client, &spec, id);
}

static void test_queues_a_flood_left_empty_are_reclaimed_for_a_real_one(void **state)
{
	const char *args[] = {"--max-queues", "3", "--keep-finished", "0", NULL};
	struct stack *s = stack_open(state, "queue_flood", args, NULL, STACK_CLIENT);
	uint64_t ids[3];
	char name[16];
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof name, "flood-%d", i);
		assert_jm_ok(submit_to(s->client, name, &ids[i]));
	}
	/* While the made-up queues hold jobs the limit holds, and says so. */
	uint64_t id = 0;
	assert_int_equal(submit_to(s->client, "real", &id), JM_ELIMIT);
	assert_non_null(strstr(jm_client_last_error(), "--max-queues"));
	assert_int_equal(pending_in(s->client, "real"), 0);
	assert_int_equal(pending_in(s->client, "flood-0"), 1);
	/* Once their jobs are gone (cancelled, then dropped by retention), the
	 * empty queues make room. */
	for (int i = 0; i < 3; i++) {
		jm_job_info info;
		assert_jm_ok(jm_client_cancel(s->client, ids[i], &info));
		jm_job_info_fini(&info);
	}
	uint64_t deadline = jm_mono_us() + DEADLINE_MS * 1000ull;
	int rc;
	while ((rc = submit_to(s->client, "real", &id)) == JM_ELIMIT) {
		if (jm_mono_us() > deadline)
			fail_msg("the real queue was still refused after %d ms: %s", DEADLINE_MS,
			         jm_client_last_error());
		sleep_ms(50);
	}
	assert_jm_ok(rc);
	assert_int_equal(pending_in(s->client, "real"), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_a_submit_over_the_payload_memory_limit_is_refused_whole,
	                              stack_close),
	    cmocka_unit_test_teardown(
	        test_stalled_huge_messages_are_dropped_and_their_memory_comes_back, stack_close),
	    cmocka_unit_test_teardown(
	        test_connections_over_the_limit_are_closed_and_the_rest_served, stack_close),
	    cmocka_unit_test_teardown(
	        test_subscribers_over_the_limit_are_closed_and_the_rest_served, stack_close),
	    cmocka_unit_test_teardown(
	        test_a_flood_of_made_up_worker_ids_does_not_lock_a_real_worker_out, stack_close),
	    cmocka_unit_test_teardown(test_queues_a_flood_left_empty_are_reclaimed_for_a_real_one,
	                              stack_close),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
