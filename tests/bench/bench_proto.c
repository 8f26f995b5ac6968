/* bench_proto: what the field-descriptor walkers (proto/fields.c) cost.
 * Encodes and decodes one SUBMIT of PROTO_JOBS_PER_MESSAGE_MAX jobs with
 * 28-byte payloads, ROUNDS times each, and prints the best round (the
 * machine is shared: the best is the least disturbed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "message.h"

#define ROUNDS 200
#define PAYLOAD "{\"to\":\"someone@example.org\"}"

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(void)
{
	const uint32_t jobs_count = PROTO_JOBS_PER_MESSAGE_MAX;
	struct proto_job_spec *jobs = calloc(jobs_count, sizeof *jobs);
	if (jobs == NULL)
		return 1;
	for (uint32_t i = 0; i < jobs_count; i++) {
		strcpy(jobs[i].attrs.queue, "emails");
		strcpy(jobs[i].attrs.type, "send.welcome");
		jobs[i].payload.ptr = (const uint8_t *)PAYLOAD;
		jobs[i].payload.len = sizeof PAYLOAD - 1;
		jobs[i].attrs.priority = (int32_t)(i % 100);
		jobs[i].attrs.max_attempts = 3;
	}
	struct proto_msg msg = {.type = PROTO_SUBMIT};
	msg.u.submit.jobs_count = jobs_count;
	msg.u.submit.jobs = jobs;

	struct jm_buf buf = {0};
	double encode_s = 1e9;
	double decode_s = 1e9;
	for (int r = 0; r < ROUNDS; r++) {
		buf.len = 0;
		double start = now_s();
		if (proto_encode(&msg, &buf) != 0) {
			fprintf(stderr, "bench_proto: encode failed\n");
			return 1;
		}
		double took = now_s() - start;
		encode_s = took < encode_s ? took : encode_s;
	}
	for (int r = 0; r < ROUNDS; r++) {
		struct proto_msg got;
		struct jm_err err;
		double start = now_s();
		if (proto_decode(buf.data, buf.len, &got, &err) != 0) {
			fprintf(stderr, "bench_proto: decode failed: %s\n", err.msg);
			return 1;
		}
		proto_msg_fini(&got);
		double took = now_s() - start;
		decode_s = took < decode_s ? took : decode_s;
	}
	printf("SUBMIT of %u jobs, %zu bytes, best of %d: encode %.0f us (%.0f ns/job), "
	       "decode %.0f us (%.0f ns/job)\n",
	       jobs_count, buf.len, ROUNDS, encode_s * 1e6, encode_s / jobs_count * 1e9,
	       decode_s * 1e6, decode_s / jobs_count * 1e9);
	jm_buf_fini(&buf);
	free(jobs);
	return 0;
}
