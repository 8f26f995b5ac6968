/* The replication messages between an HA leader and its standby
 * (broker/ha_ship.c sends, broker/ha_replica.c answers): a fixed
 * little-endian header and opaque bytes, on an NNG REQ/REP pair. Binary
 * rather than msgpack because the payload is already framed journal bytes
 * and the header is five numbers; every field is checked on decode.
 *
 * Request (leader -> standby), REPL_REQ_HEADER_BYTES then data:
 *   0  4  magic "JMR1"
 *   4  1  kind (enum repl_kind)
 *   5  3  zero
 *   8  8  epoch: the leader's fencing epoch (etcd create revision)
 *  16  8  seq:   segment (APPEND) or snapshot (SNAP_PUT, SNAP_DONE) number
 *  24  8  off:   byte offset in that file where data starts
 *  32  4  CRC32C of data
 *  36  4  data length
 * Reply (standby -> leader), REPL_REP_HEADER_BYTES then text:
 *   0  4  magic "JMR1"
 *   4  4  status: 0 or a negative JM_E code
 *   8  8  seq, 16 8 off: where the standby's journal ends now
 *  24  4  CRC32C of the last up to REPL_TAIL_BYTES bytes before off
 *  28  4  text length: the standby's node name (HELLO), or the error */
#ifndef JM_PROTO_REPL_MSG_H
#define JM_PROTO_REPL_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define REPL_REQ_HEADER_BYTES 40u
#define REPL_REP_HEADER_BYTES 32u
#define REPL_MAX_DATA_BYTES (96u << 20) /* one message's data: any one journal record fits */
#define REPL_MAX_TEXT_BYTES 512u
#define REPL_TAIL_BYTES 4096u

/* With a cluster secret (--replication-token-file) the leader's HELLO
 * carries REPL_NONCE_BYTES random bytes, and the standby answers with its
 * name, one space and the hex HMAC-SHA-256 of the secret over "jobmesh
 * replication hello", the epoch (8 bytes LE) and the nonce: proof that it
 * holds the secret, never the secret itself, and not replayable since the
 * nonce is new each time. */
#define REPL_NONCE_BYTES 32u
#define REPL_PROOF_HEX_BYTES 64u

enum repl_kind {
	REPL_HELLO = 1,    /* who are you, where does your journal end? */
	REPL_APPEND = 2,   /* append data to segment seq at off, sync, answer */
	REPL_RESET = 3,    /* delete every segment and snapshot: a full copy follows */
	REPL_SNAP_PUT = 4, /* write data at off of snapshot seq (a temp file) */
	REPL_SNAP_DONE = 5 /* sync snapshot seq and put it in place */
};

struct repl_req {
	enum repl_kind kind;
	uint64_t epoch;
	uint64_t seq;
	uint64_t off;
	const uint8_t *data; /* points into the decoded buffer */
	uint32_t len;
};

struct repl_rep {
	int32_t status;
	uint64_t seq;
	uint64_t off;
	uint32_t tail_crc;
	char text[REPL_MAX_TEXT_BYTES + 1];
};

/* Writes the header of req into hdr (the data follows it). */
void repl_req_header(uint8_t hdr[REPL_REQ_HEADER_BYTES], const struct repl_req *req);
/* Decodes buf: 0, or JM_EPROTO with err naming the bad field. */
int repl_req_decode(const uint8_t *buf, size_t len, struct repl_req *req, struct jm_err *err);
/* Writes rep into out (REPL_REP_HEADER_BYTES + REPL_MAX_TEXT_BYTES at
 * most); returns the length. */
size_t repl_rep_encode(const struct repl_rep *rep, uint8_t *out);
int repl_rep_decode(const uint8_t *buf, size_t len, struct repl_rep *rep, struct jm_err *err);
const char *repl_kind_name(enum repl_kind kind);
/* The standby's proof for a HELLO's nonce, as hex (with a NUL). */
void repl_hello_proof(const uint8_t *secret, size_t secret_len, uint64_t epoch,
                      const uint8_t nonce[REPL_NONCE_BYTES], char out[REPL_PROOF_HEX_BYTES + 1]);
/* Does a HELLO answer's text ("NAME HEX") prove the secret for nonce?
 * *name_len is the length of the name (the whole text when there is no
 * proof); *has_proof says whether it carried one. Constant time over the
 * proof. */
bool repl_hello_proven(const char *text, const uint8_t *secret, size_t secret_len, uint64_t epoch,
                       const uint8_t nonce[REPL_NONCE_BYTES], size_t *name_len, bool *has_proof);
/* The standby's fence: 0 and *highest raised to req's epoch, or JM_ESTATE
 * when req comes from an epoch lower than *highest (a deposed leader). */
int repl_epoch_admit(uint64_t *highest, const struct repl_req *req, struct jm_err *err);

#endif
