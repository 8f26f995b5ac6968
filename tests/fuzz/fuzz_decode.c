/* libFuzzer target for proto/'s decoders: every input is fed to
 * proto_decode() and proto_record_decode(). Beyond "no crash, no leak, no
 * read past the end" (ASan, UBSan), it checks the promise that proto makes
 * to its callers: whatever decodes must encode again (encode runs the same
 * checks), and that encoding must decode to the same type. Build and run:
 * see README.md beside this file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"
#include "record.h"

static void fuzz_message(const uint8_t *data, size_t size)
{
	struct proto_msg msg;
	struct jm_err err;
	int rc = proto_decode(data, size, &msg, &err);
	if (rc != 0) {
		/* A refusal always says why. */
		if (err.code != rc || err.msg[0] == '\0')
			abort();
		return;
	}
	struct jm_buf again;
	jm_buf_init(&again);
	if (proto_encode(&msg, &again) != 0)
		abort();
	struct proto_msg round;
	if (proto_decode(again.data, again.len, &round, &err) != 0 || round.type != msg.type)
		abort();
	proto_msg_fini(&round);
	jm_buf_fini(&again);
	proto_msg_fini(&msg);
}

static void fuzz_record(const uint8_t *data, size_t size)
{
	struct proto_record rec;
	struct jm_err err;
	int rc = proto_record_decode(data, size, &rec, &err);
	if (rc != 0) {
		if (err.code != rc || err.msg[0] == '\0')
			abort();
		return;
	}
	struct jm_buf again;
	jm_buf_init(&again);
	if (proto_record_encode(&rec, &again) != 0)
		abort();
	struct proto_record round;
	if (proto_record_decode(again.data, again.len, &round, &err) != 0 || round.type != rec.type)
		abort();
	proto_record_fini(&round);
	jm_buf_fini(&again);
	proto_record_fini(&rec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_message(data, size);
	fuzz_record(data, size);
	return 0;
}
