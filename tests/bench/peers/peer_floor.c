/* peer_floor: the floors `scripts/bench peers` compares jobmesh's W1 with,
 * measured in the same run on the same machine:
 *   - NNG req/rep over tcp on 127.0.0.1, one 100-byte request in flight, a
 *     REP thread echoing it: round trips/s and p50;
 *   - write(200 B) at the end of a growing file + fdatasync: p50;
 *   - pwrite(200 B) over a preallocated (zero-written and synced) file +
 *     fdatasync: p50 (what a preallocated journal segment pays).
 *
 * usage: peer_floor --dir DIR [--rounds N]   (DIR on the disk under test)
 * Prints one line of key=value figures. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "clock.h"

#define MSG_BYTES 100
#define RECORD_BYTES 200

static _Noreturn void fail(const char *what, int rc)
{
	fprintf(stderr, "peer_floor: %s: %s\n", what, rc ? nng_strerror(rc) : "failed");
	exit(1);
}

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t p50(uint64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof v[0], compare_u64);
	return v[n / 2];
}

static void *rep_main(void *arg)
{
	nng_socket rep = *(nng_socket *)arg;
	for (;;) {
		nng_msg *msg;
		if (nng_recvmsg(rep, &msg, 0) != 0)
			return NULL;
		if (nng_sendmsg(rep, msg, 0) != 0)
			nng_msg_free(msg);
	}
}

/* Round trips of one 100-byte request; *rate gets round trips/s. */
static uint64_t nng_floor(int rounds, double *rate, uint64_t *rtt)
{
	nng_socket rep, req;
	nng_listener listener;
	int rc, bound_port;
	if ((rc = nng_rep0_open(&rep)) != 0 || (rc = nng_req0_open(&req)) != 0)
		fail("open", rc);
	if ((rc = nng_listen(rep, "tcp://127.0.0.1:0", &listener, 0)) != 0 ||
	    (rc = nng_listener_get_int(listener, NNG_OPT_TCP_BOUND_PORT, &bound_port)) != 0)
		fail("listen", rc);
	char url[64];
	snprintf(url, sizeof url, "tcp://127.0.0.1:%d", bound_port);
	if ((rc = nng_dial(req, url, NULL, 0)) != 0)
		fail("dial", rc);
	pthread_t thread;
	if (pthread_create(&thread, NULL, rep_main, &rep) != 0)
		fail("pthread_create", 0);
	char body[MSG_BYTES];
	memset(body, 'x', sizeof body);
	uint64_t start = jm_mono_us();
	for (int i = 0; i < rounds; i++) {
		uint64_t t0 = jm_mono_us();
		nng_msg *msg;
		if ((rc = nng_msg_alloc(&msg, 0)) != 0 ||
		    (rc = nng_msg_append(msg, body, sizeof body)) != 0)
			fail("msg", rc);
		if ((rc = nng_sendmsg(req, msg, 0)) != 0 || (rc = nng_recvmsg(req, &msg, 0)) != 0)
			fail("round trip", rc);
		if (nng_msg_len(msg) != MSG_BYTES)
			fail("echo has the wrong length", 0);
		nng_msg_free(msg);
		rtt[i] = jm_mono_us() - t0;
	}
	*rate = rounds / ((jm_mono_us() - start) / 1e6);
	nng_close(req);
	nng_close(rep);
	pthread_join(thread, NULL);
	return p50(rtt, rounds);
}

/* p50 of 200 B + fdatasync, appending to a new file or, preallocated,
 * overwriting one whose blocks were written and synced first. */
static uint64_t sync_floor(const char *dir, int rounds, int preallocated, uint64_t *lat)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/peer-floor-%s", dir, preallocated ? "prealloc" : "append");
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		fail(path, 0);
	char record[RECORD_BYTES];
	memset(record, 'r', sizeof record);
	if (preallocated) {
		size_t size = (size_t)rounds * RECORD_BYTES;
		char *zeros = calloc(1, size);
		if (zeros == NULL || write(fd, zeros, size) != (ssize_t)size || fsync(fd) != 0)
			fail("preallocate", 0);
		free(zeros);
	}
	for (int i = 0; i < rounds; i++) {
		uint64_t t0 = jm_mono_us();
		if (pwrite(fd, record, sizeof record, (off_t)i * RECORD_BYTES) != RECORD_BYTES ||
		    fdatasync(fd) != 0)
			fail("write + fdatasync", 0);
		lat[i] = jm_mono_us() - t0;
	}
	close(fd);
	unlink(path);
	return p50(lat, rounds);
}

int main(int argc, char **argv)
{
	const char *dir = NULL;
	int rounds = 20000;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--dir") == 0)
			dir = argv[i + 1];
		else if (strcmp(argv[i], "--rounds") == 0)
			rounds = atoi(argv[i + 1]);
	}
	if (dir == NULL || rounds < 10) {
		fprintf(stderr, "usage: peer_floor --dir DIR [--rounds N>=10]\n");
		return 2;
	}
	uint64_t *v = calloc((size_t)rounds, sizeof *v);
	if (v == NULL)
		fail("calloc", 0);
	double rate;
	uint64_t nng_p50 = nng_floor(rounds, &rate, v);
	int syncs = rounds / 10 < 2000 ? rounds / 10 : 2000;
	uint64_t append_p50 = sync_floor(dir, syncs, 0, v);
	uint64_t prealloc_p50 = sync_floor(dir, syncs, 1, v);
	printf("nng_rtt_per_s=%.0f nng_p50_us=%llu append_sync_p50_us=%llu "
	       "prealloc_sync_p50_us=%llu\n",
	       rate, (unsigned long long)nng_p50, (unsigned long long)append_p50,
	       (unsigned long long)prealloc_p50);
	free(v);
	return 0;
}
