/* Reads a handler's line in place (serve_scan.h): a flat JSON object is
 * tokenised once, the protocol's fields are kept as spans, and only the
 * strings the reply needs are unescaped. Anything unusual returns
 * SERVE_SCAN_OTHER for jansson to judge. */
#include "serve_scan.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"

/* More keys than this, or one key twice: jansson decides. */
#define SCAN_KEYS_MAX 16
/* Digits of a whole number the fast path reads (fits int64_t, as jansson's
 * json_int_t, with room to spare). */
#define SCAN_DIGITS_MAX 18

size_t serve_utf8_len(const unsigned char *p, size_t left)
{
	unsigned char c = p[0];
	if (c < 0x80)
		return 1;
	size_t n;
	uint32_t cp;
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (left < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

enum value_kind { V_NONE, V_STRING, V_INT, V_TRUE, V_FALSE, V_NULL };

struct value {
	enum value_kind kind;
	const unsigned char *s; /* V_STRING: between the quotes, still escaped */
	size_t len;
	bool escaped;    /* V_STRING: has a backslash */
	size_t text_len; /* V_STRING: its length unescaped */
	uint64_t n;      /* V_INT, when not negative */
	bool negative;   /* V_INT */
};

struct cursor {
	const unsigned char *p, *end;
};

static void skip_ws(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n'))
		c->p++;
}

static bool hex4(const unsigned char *p, const unsigned char *end, uint32_t *out)
{
	if (end - p < 4)
		return false;
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		int d = jm_hex_digit((char)p[i]);
		if (d < 0)
			return false;
		v = (v << 4) | (uint32_t)d;
	}
	*out = v;
	return true;
}

/* Unescapes the string value v into dst (at most cap bytes are written;
 * dst may be NULL to only check it). Returns the whole unescaped length,
 * or -1 for an escape the fast path leaves to jansson (a bad one, \u0000
 * or a lone surrogate). The raw bytes were checked by scan_string. */
static long unescape(const struct value *v, char *dst, size_t cap)
{
	const unsigned char *p = v->s, *end = v->s + v->len;
	size_t o = 0;
	if (!v->escaped) {
		if (dst != NULL)
			memcpy(dst, p, v->len < cap ? v->len : cap);
		return (long)v->len;
	}
	while (p < end) {
		unsigned char out[4];
		size_t n = 1;
		if (*p != '\\') {
			out[0] = *p++;
		} else {
			p++; /* scan_string saw a byte after every backslash */
			unsigned char e = *p++;
			switch (e) {
			case '"':
			case '\\':
			case '/':
				out[0] = e;
				break;
			case 'b':
				out[0] = '\b';
				break;
			case 'f':
				out[0] = '\f';
				break;
			case 'n':
				out[0] = '\n';
				break;
			case 'r':
				out[0] = '\r';
				break;
			case 't':
				out[0] = '\t';
				break;
			case 'u': {
				uint32_t cp;
				if (!hex4(p, end, &cp) || cp == 0)
					return -1;
				p += 4;
				if (cp >= 0xDC00 && cp <= 0xDFFF)
					return -1;
				if (cp >= 0xD800 && cp <= 0xDBFF) {
					uint32_t low;
					if (end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
					    !hex4(p + 2, end, &low) || low < 0xDC00 || low > 0xDFFF)
						return -1;
					p += 6;
					cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
				}
				if (cp < 0x80) {
					out[0] = (unsigned char)cp;
				} else if (cp < 0x800) {
					out[0] = (unsigned char)(0xC0 | (cp >> 6));
					out[1] = (unsigned char)(0x80 | (cp & 0x3F));
					n = 2;
				} else if (cp < 0x10000) {
					out[0] = (unsigned char)(0xE0 | (cp >> 12));
					out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
					out[2] = (unsigned char)(0x80 | (cp & 0x3F));
					n = 3;
				} else {
					out[0] = (unsigned char)(0xF0 | (cp >> 18));
					out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
					out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
					out[3] = (unsigned char)(0x80 | (cp & 0x3F));
					n = 4;
				}
				break;
			}
			default:
				return -1;
			}
		}
		for (size_t i = 0; i < n; i++, o++)
			if (dst != NULL && o < cap)
				dst[o] = (char)out[i];
	}
	return (long)o;
}

/* A string at c->p (its opening quote): raw control bytes and bad UTF-8
 * are left to jansson; escapes are checked when unescaped. */
static bool scan_string(struct cursor *c, struct value *v)
{
	const unsigned char *p = c->p + 1;
	bool escaped = false;
	while (p < c->end) {
		unsigned char ch = *p;
		if (ch == '"') {
			*v = (struct value){.kind = V_STRING,
			                    .s = c->p + 1,
			                    .len = (size_t)(p - (c->p + 1)),
			                    .escaped = escaped};
			c->p = p + 1;
			return true;
		}
		if (ch == '\\') {
			if (c->end - p < 2)
				return false;
			escaped = true;
			p += 2;
		} else if (ch < 0x20) {
			return false;
		} else if (ch < 0x80) {
			p++;
		} else {
			size_t n = serve_utf8_len(p, (size_t)(c->end - p));
			if (n == 0)
				return false;
			p += n;
		}
	}
	return false;
}

/* A whole number: -?(0|[1-9][0-9]*), not followed by a fraction or an
 * exponent (those are jansson's). */
static bool scan_int(struct cursor *c, struct value *v)
{
	const unsigned char *p = c->p;
	bool negative = false;
	if (*p == '-') {
		negative = true;
		p++;
	}
	const unsigned char *digits = p;
	uint64_t n = 0;
	while (p < c->end && *p >= '0' && *p <= '9') {
		n = n * 10 + (uint64_t)(*p - '0');
		p++;
	}
	size_t count = (size_t)(p - digits);
	if (count == 0 || count > SCAN_DIGITS_MAX || (digits[0] == '0' && count > 1))
		return false;
	if (p < c->end && (*p == '.' || *p == 'e' || *p == 'E'))
		return false;
	*v = (struct value){.kind = V_INT, .n = n, .negative = negative};
	c->p = p;
	return true;
}

static bool scan_word(struct cursor *c, const char *word, enum value_kind kind, struct value *v)
{
	size_t len = strlen(word);
	if ((size_t)(c->end - c->p) < len || memcmp(c->p, word, len) != 0)
		return false;
	c->p += len;
	*v = (struct value){.kind = kind};
	return true;
}

static bool scan_value(struct cursor *c, struct value *v)
{
	if (c->p >= c->end)
		return false;
	switch (*c->p) {
	case '"':
		return scan_string(c, v);
	case 't':
		return scan_word(c, "true", V_TRUE, v);
	case 'f':
		return scan_word(c, "false", V_FALSE, v);
	case 'n':
		return scan_word(c, "null", V_NULL, v);
	default:
		return scan_int(c, v); /* objects and arrays fail here too */
	}
}

/* The protocol's fields of one line. */
struct fields {
	struct value op, id, pipeline, done, total, message, result, permanent, batch;
};

static struct value *field_slot(struct fields *f, const unsigned char *key, size_t len)
{
	static const struct {
		const char *name;
		size_t offset;
	} known[] = {
	    {"op", offsetof(struct fields, op)},
	    {"id", offsetof(struct fields, id)},
	    {"pipeline", offsetof(struct fields, pipeline)},
	    {"done", offsetof(struct fields, done)},
	    {"total", offsetof(struct fields, total)},
	    {"message", offsetof(struct fields, message)},
	    {"result", offsetof(struct fields, result)},
	    {"permanent", offsetof(struct fields, permanent)},
	    {"batch", offsetof(struct fields, batch)},
	};
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (strlen(known[i].name) == len && memcmp(known[i].name, key, len) == 0)
			return (struct value *)((char *)f + known[i].offset);
	return NULL; /* a field the protocol does not define: ignored */
}

static bool scan_object(const char *line, size_t len, struct fields *f)
{
	struct cursor c = {(const unsigned char *)line, (const unsigned char *)line + len};
	struct value keys[SCAN_KEYS_MAX];
	size_t keys_count = 0;
	memset(f, 0, sizeof *f);
	skip_ws(&c);
	if (c.p >= c.end || *c.p != '{')
		return false;
	c.p++;
	for (;;) {
		skip_ws(&c);
		struct value key;
		if (c.p >= c.end || *c.p != '"' || !scan_string(&c, &key) || key.escaped)
			return false;
		for (size_t i = 0; i < keys_count; i++)
			if (keys[i].len == key.len && memcmp(keys[i].s, key.s, key.len) == 0)
				return false; /* jansson refuses duplicates */
		if (keys_count == SCAN_KEYS_MAX)
			return false;
		keys[keys_count++] = key;
		skip_ws(&c);
		if (c.p >= c.end || *c.p != ':')
			return false;
		c.p++;
		skip_ws(&c);
		struct value value;
		if (!scan_value(&c, &value))
			return false;
		if (value.kind == V_STRING) {
			/* Every string's escapes are checked, used or not: a bad
			 * one makes the whole line bad for jansson too. */
			long text_len = unescape(&value, NULL, 0);
			if (text_len < 0)
				return false;
			value.text_len = (size_t)text_len;
		}
		struct value *slot = field_slot(f, key.s, key.len);
		if (slot != NULL)
			*slot = value;
		skip_ws(&c);
		if (c.p < c.end && *c.p == ',') {
			c.p++;
			continue;
		}
		if (c.p < c.end && *c.p == '}') {
			c.p++;
			break;
		}
		return false;
	}
	skip_ws(&c);
	return c.p == c.end;
}

static bool is_word(const struct value *v, const char *word)
{
	size_t len = strlen(word);
	return v->kind == V_STRING && !v->escaped && v->len == len && memcmp(v->s, word, len) == 0;
}

/* As serve_proto.c's count_parse for a whole number: not negative. */
static bool count_of(const struct value *v, uint64_t *out)
{
	if (v->kind != V_INT || v->negative)
		return false;
	*out = v->n;
	return true;
}

/* A job id: a string of decimal digits (as sent) or a number > 0. */
static bool id_of(const struct value *v, uint64_t *out)
{
	if (v->kind == V_INT)
		return !v->negative && v->n > 0 && (*out = v->n, true);
	if (v->kind != V_STRING || v->escaped || v->len == 0 || v->len > SCAN_DIGITS_MAX)
		return false;
	uint64_t n = 0;
	for (size_t i = 0; i < v->len; i++) {
		if (v->s[i] < '0' || v->s[i] > '9')
			return false;
		n = n * 10 + (uint64_t)(v->s[i] - '0');
	}
	*out = n;
	return true;
}

/* As serve_proto.c's text_copy: a string, cut to the room; "" otherwise. */
static void message_of(const struct value *v, char *dst, size_t size)
{
	dst[0] = '\0';
	if (v->kind != V_STRING)
		return;
	unescape(v, dst, size - 1); /* checked by scan_object */
	dst[v->text_len < size - 1 ? v->text_len : size - 1] = '\0';
}

#define RESULTS_OPEN "{\"op\":\"results\",\"ids\":["

/* The "results" line both libraries write when every result is "":
 * {"op":"results","ids":["42","43"]} exactly, no blanks, ids as strings. */
static enum serve_scan_status scan_results(const char *line, size_t len, struct serve_reply *out)
{
	const size_t open_len = sizeof RESULTS_OPEN - 1;
	if (len < open_len + 4 || memcmp(line, RESULTS_OPEN, open_len) != 0 ||
	    memcmp(line + len - 2, "]}", 2) != 0)
		return SERVE_SCAN_OTHER;
	const char *p = line + open_len, *end = line + len - 2;
	size_t count = 1;
	for (const char *q = p; q < end; q++)
		count += *q == ',';
	if (count > SERVE_RESULTS_MAX)
		return SERVE_SCAN_OTHER;
	struct serve_result_item *items = calloc(count, sizeof *items);
	if (items == NULL)
		return SERVE_SCAN_OTHER; /* out of memory: said there */
	size_t n = 0;
	while (n < count) {
		if (p >= end || *p != '"')
			break;
		const char *close = memchr(p + 1, '"', (size_t)(end - p - 1));
		if (close == NULL)
			break;
		struct value v = {.kind = V_STRING,
		                  .s = (const unsigned char *)p + 1,
		                  .len = (size_t)(close - p - 1)};
		if (!id_of(&v, &items[n].job_id))
			break;
		n++;
		p = close + 1;
		if (n < count) {
			if (p >= end || *p != ',')
				break;
			p++;
		}
	}
	if (n != count || p != end) {
		free(items);
		return SERVE_SCAN_OTHER;
	}
	memset(out, 0, sizeof *out);
	out->op = SERVE_REPLY_RESULTS;
	out->items = items;
	out->items_count = count;
	return SERVE_SCAN_DONE;
}

enum serve_scan_status serve_scan_reply(const char *line, size_t len, struct serve_reply *out)
{
	if (scan_results(line, len, out) == SERVE_SCAN_DONE)
		return SERVE_SCAN_DONE;
	struct fields f;
	if (!scan_object(line, len, &f))
		return SERVE_SCAN_OTHER;
	struct serve_reply r;
	memset(&r, 0, sizeof r);
	if (is_word(&f.op, "hello")) {
		r.op = SERVE_REPLY_HELLO;
		r.pipeline = 1;
		if (f.pipeline.kind != V_NONE && !count_of(&f.pipeline, &r.pipeline))
			return SERVE_SCAN_OTHER;
		if (r.pipeline < 1)
			r.pipeline = 1;
		r.batch = f.batch.kind == V_TRUE;
		*out = r;
		return SERVE_SCAN_DONE;
	}
	if (!id_of(&f.id, &r.job_id))
		return SERVE_SCAN_OTHER;
	if (is_word(&f.op, "result")) {
		r.op = SERVE_REPLY_RESULT;
		if (f.result.kind == V_NONE || f.result.kind == V_NULL) {
			r.result = strdup("");
		} else if (f.result.kind == V_STRING) {
			r.result_len = f.result.text_len;
			r.result = malloc(r.result_len + 1);
			if (r.result != NULL) {
				unescape(&f.result, r.result, r.result_len);
				r.result[r.result_len] = '\0';
			}
		} else {
			return SERVE_SCAN_OTHER; /* kept as its JSON text: jansson's */
		}
		if (r.result == NULL)
			return SERVE_SCAN_OTHER; /* out of memory: said there */
	} else if (is_word(&f.op, "progress")) {
		r.op = SERVE_REPLY_PROGRESS;
		if (!count_of(&f.done, &r.done) || !count_of(&f.total, &r.total) || r.total < 1 ||
		    r.done > r.total)
			return SERVE_SCAN_OTHER;
		message_of(&f.message, r.message, sizeof r.message);
	} else if (is_word(&f.op, "error")) {
		r.op = SERVE_REPLY_ERROR;
		message_of(&f.message, r.message, sizeof r.message);
		if (r.message[0] == '\0')
			strcpy(r.message, "handler reported an error");
		r.permanent = f.permanent.kind == V_TRUE;
	} else {
		return SERVE_SCAN_OTHER;
	}
	*out = r;
	return SERVE_SCAN_DONE;
}
