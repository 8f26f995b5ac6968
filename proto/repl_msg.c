/* Encoding and checking of the replication messages (repl_msg.h). */
#include "repl_msg.h"

#include <string.h>

#include "crc32c.h"
#include "sha256.h"

static const uint8_t magic[4] = {'J', 'M', 'R', '1'};

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

const char *repl_kind_name(enum repl_kind kind)
{
	switch (kind) {
	case REPL_HELLO:
		return "hello";
	case REPL_APPEND:
		return "append";
	case REPL_RESET:
		return "reset";
	case REPL_SNAP_PUT:
		return "snapshot-put";
	case REPL_SNAP_DONE:
		return "snapshot-done";
	}
	return "unknown";
}

void repl_req_header(uint8_t hdr[REPL_REQ_HEADER_BYTES], const struct repl_req *req)
{
	memcpy(hdr, magic, 4);
	hdr[4] = (uint8_t)req->kind;
	hdr[5] = hdr[6] = hdr[7] = 0;
	put64(hdr + 8, req->epoch);
	put64(hdr + 16, req->seq);
	put64(hdr + 24, req->off);
	put32(hdr + 32, req->len ? crc32c(req->data, req->len) : 0);
	put32(hdr + 36, req->len);
}

int repl_req_decode(const uint8_t *buf, size_t len, struct repl_req *req, struct jm_err *err)
{
	if (len < REPL_REQ_HEADER_BYTES || memcmp(buf, magic, 4) != 0)
		return jm_err_set(err, JM_EPROTO,
		                  "replication: a %zu-byte message without the JMR1 header "
		                  "(%u bytes)",
		                  len, REPL_REQ_HEADER_BYTES);
	if (buf[4] < REPL_HELLO || buf[4] > REPL_SNAP_DONE || buf[5] || buf[6] || buf[7])
		return jm_err_set(err, JM_EPROTO,
		                  "replication: message kind %u is unknown (1-5 are allowed)",
		                  (unsigned)buf[4]);
	req->kind = (enum repl_kind)buf[4];
	req->epoch = get64(buf + 8);
	req->seq = get64(buf + 16);
	req->off = get64(buf + 24);
	uint32_t crc = get32(buf + 32);
	req->len = get32(buf + 36);
	if (req->len > REPL_MAX_DATA_BYTES || req->len != len - REPL_REQ_HEADER_BYTES)
		return jm_err_set(err, JM_EPROTO,
		                  "replication: %s says %u data bytes but carries %zu (at most %u)",
		                  repl_kind_name(req->kind), req->len, len - REPL_REQ_HEADER_BYTES,
		                  REPL_MAX_DATA_BYTES);
	req->data = buf + REPL_REQ_HEADER_BYTES;
	if ((req->len ? crc32c(req->data, req->len) : 0) != crc)
		return jm_err_set(
		    err, JM_EPROTO,
		    "replication: %s of %u bytes fails its CRC32C: damaged in transit",
		    repl_kind_name(req->kind), req->len);
	if (req->epoch == 0)
		return jm_err_set(err, JM_EPROTO, "replication: epoch 0 is no leader's epoch");
	return 0;
}

size_t repl_rep_encode(const struct repl_rep *rep, uint8_t *out)
{
	size_t text_len = strnlen(rep->text, REPL_MAX_TEXT_BYTES);
	memcpy(out, magic, 4);
	put32(out + 4, (uint32_t)rep->status);
	put64(out + 8, rep->seq);
	put64(out + 16, rep->off);
	put32(out + 24, rep->tail_crc);
	put32(out + 28, (uint32_t)text_len);
	memcpy(out + REPL_REP_HEADER_BYTES, rep->text, text_len);
	return REPL_REP_HEADER_BYTES + text_len;
}

int repl_rep_decode(const uint8_t *buf, size_t len, struct repl_rep *rep, struct jm_err *err)
{
	if (len < REPL_REP_HEADER_BYTES || memcmp(buf, magic, 4) != 0)
		return jm_err_set(err, JM_EPROTO,
		                  "replication: a %zu-byte reply without the JMR1 header", len);
	uint32_t text_len = get32(buf + 28);
	if (text_len > REPL_MAX_TEXT_BYTES || text_len != len - REPL_REP_HEADER_BYTES)
		return jm_err_set(
		    err, JM_EPROTO,
		    "replication: reply text of %u bytes does not fit the %zu-byte reply", text_len,
		    len);
	rep->status = (int32_t)get32(buf + 4);
	rep->seq = get64(buf + 8);
	rep->off = get64(buf + 16);
	rep->tail_crc = get32(buf + 24);
	memcpy(rep->text, buf + REPL_REP_HEADER_BYTES, text_len);
	rep->text[text_len] = '\0';
	if (rep->status > 0)
		return jm_err_set(err, JM_EPROTO,
		                  "replication: reply status %d is not an error code",
		                  (int)rep->status);
	return 0;
}

int repl_epoch_admit(uint64_t *highest, const struct repl_req *req, struct jm_err *err)
{
	if (req->epoch < *highest)
		return jm_err_set(err, JM_ESTATE,
		                  "replication: %s from epoch %llu refused: a leader of epoch %llu "
		                  "has spoken since (this one was deposed)",
		                  repl_kind_name(req->kind), (unsigned long long)req->epoch,
		                  (unsigned long long)*highest);
	*highest = req->epoch;
	return 0;
}

static const char hello_label[] = "jobmesh replication hello";

void repl_hello_proof(const uint8_t *secret, size_t secret_len, uint64_t epoch,
                      const uint8_t nonce[REPL_NONCE_BYTES], char out[REPL_PROOF_HEX_BYTES + 1])
{
	uint8_t msg[sizeof hello_label - 1 + 8 + REPL_NONCE_BYTES];
	memcpy(msg, hello_label, sizeof hello_label - 1);
	put64(msg + sizeof hello_label - 1, epoch);
	memcpy(msg + sizeof hello_label - 1 + 8, nonce, REPL_NONCE_BYTES);
	uint8_t mac[JM_SHA256_BYTES];
	jm_hmac_sha256(secret, secret_len, msg, sizeof msg, mac);
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < sizeof mac; i++) {
		out[2 * i] = digits[mac[i] >> 4];
		out[2 * i + 1] = digits[mac[i] & 15];
	}
	out[REPL_PROOF_HEX_BYTES] = '\0';
}

bool repl_hello_proven(const char *text, const uint8_t *secret, size_t secret_len, uint64_t epoch,
                       const uint8_t nonce[REPL_NONCE_BYTES], size_t *name_len, bool *has_proof)
{
	const char *space = strrchr(text, ' ');
	size_t len = strlen(text);
	*name_len = space ? (size_t)(space - text) : len;
	*has_proof = space != NULL && len - *name_len - 1 == REPL_PROOF_HEX_BYTES;
	if (!*has_proof)
		return false;
	char want[REPL_PROOF_HEX_BYTES + 1];
	repl_hello_proof(secret, secret_len, epoch, nonce, want);
	return jm_equal_secret(space + 1, want, REPL_PROOF_HEX_BYTES);
}
