/* The fast path for the lines a --serve handler writes (serve_proto.h):
 * one flat JSON object of strings, whole numbers, true, false and null,
 * which is what both serve() libraries write. jansson's object tree cost
 * about a tenth of the worker's CPU per job in a drain; this reads the
 * line in place.
 *
 * The scanner decodes only what it fully understands and otherwise says
 * SERVE_SCAN_OTHER without touching *out: a nested or real-number value,
 * an escaped key, a duplicate key, \u0000, a lone surrogate, bad UTF-8, a
 * bad field, bytes after the object, ... serve_proto_decode then reads the
 * line with jansson, which decodes it or refuses it with its reason. So
 * every line the scanner accepts is one jansson accepts with the same
 * meaning (test_serve_proto decodes a corpus both ways and compares). */
#ifndef JM_WORKER_SERVE_SCAN_H
#define JM_WORKER_SERVE_SCAN_H

#include <stddef.h>

#include "serve_proto.h"

enum serve_scan_status {
	SERVE_SCAN_DONE,  /* *out is filled (serve_reply_fini frees it) */
	SERVE_SCAN_OTHER, /* not for the fast path: decode it with jansson */
};

enum serve_scan_status serve_scan_reply(const char *line, size_t len, struct serve_reply *out);

/* Length of the valid UTF-8 sequence at p (at most left bytes), or 0 when
 * it is not one: overlong forms, surrogates and code points past U+10FFFF
 * are refused, as jansson refuses them. */
size_t serve_utf8_len(const unsigned char *p, size_t left);

#endif
