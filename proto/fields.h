/* Field descriptors: how proto/ declares each wire message body and journal
 * record once, and the generic walkers that check, encode and decode any
 * of them (dqlite's SERIALIZE definitions in src/lib/serialize.h, in C
 * tables rather than macros). proto/'s internal header, like codec.h.
 *
 * A struct on the wire is a msgpack array of its fields in order. A field
 * names its C member by offset, its kind (how it is typed, packed and
 * stored), its bounds, and, for a list, the one field that describes each
 * element (itself a nested struct for a list of structs). The walkers:
 *
 * - fields_decode proves types and shapes and copies names; a list's count
 *   is bounded before its array is allocated from the zone. Extra trailing
 *   items are accepted (a newer peer may append), fewer than `required`
 *   are not; fields past `required` that are missing stay zero.
 * - fields_check judges ranges, sizes, names and counts, field by field in
 *   order, then the struct's own cross-field rule (check). It is run by the
 *   encoders before a byte is written and by the decoders after decoding,
 *   so what we send passes our decoder and what we accept our encoder.
 * - fields_encode packs the fields in order.
 *
 * Error texts name the field (label) and what is allowed, exactly as the
 * codec_* functions word them; a list element's error is prefixed with
 * "<item_label> <index>". */
#ifndef JM_PROTO_FIELDS_H
#define JM_PROTO_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"

enum field_kind {
	FIELD_U64,    /* uint64_t */
	FIELD_U32,    /* uint32_t; range min..max when ranged */
	FIELD_I32,    /* int32_t; range imin..imax when ranged */
	FIELD_BOOL,   /* bool */
	FIELD_NAME,   /* proto_name, PROTO_NAME_RULE (or "" when empty_ok) */
	FIELD_TEXT,   /* struct proto_bytes packed as str; at most max bytes */
	FIELD_BIN,    /* struct proto_bytes packed as bin; at most max bytes */
	FIELD_LIST,   /* uint32_t count at count_offset, pointer at offset */
	FIELD_STRUCT, /* a nested array described by sub, stored at offset */
};

struct fields;

struct field {
	const char *wire;  /* its name in the struct's field list: "job_ids" */
	const char *label; /* its name in error texts: "job ids" */
	enum field_kind kind;
	size_t offset;
	bool ranged;        /* U64, U32, I32: check min..max / imin..imax */
	bool empty_ok;      /* NAME: "" allowed */
	uint64_t min, max;  /* U64, U32 range; TEXT/BIN: max bytes (0: unchecked
	                       here, the struct's check judges); LIST: count */
	int64_t imin, imax; /* I32 range */
	/* LIST */
	size_t count_offset;
	const char *item_label;   /* "job" in "job 3: ..." */
	const struct field *elem; /* one element, at offset 0 of each */
	size_t elem_size;
	/* STRUCT */
	const struct fields *sub;
	/* An extra rule judged at this field's place in the order, after its
	 * generic check; gets the whole struct (several fields together). */
	int (*check)(const void *base, struct jm_err *err);
};

struct fields {
	const struct field *field;
	uint32_t count;
	uint32_t required; /* fields a decoder insists on; the rest may be absent */
	/* A rule on the whole struct, judged after every field. */
	int (*check)(const void *base, struct jm_err *err);
};

/* Decodes o (an array of at least desc->required items) into base. */
int fields_decode(const struct fields *desc, const msgpack_object *o, msgpack_zone *zone,
                  void *base, struct jm_err *err);

/* Decodes items_count items into base without the array around them (a
 * journal record's fields follow its version and type in one array). */
int fields_decode_items(const struct fields *desc, const msgpack_object *items,
                        uint32_t items_count, msgpack_zone *zone, void *base, struct jm_err *err);

int fields_check(const struct fields *desc, const void *base, struct jm_err *err);

/* Packs base as an array of desc->count items. */
void fields_encode(struct codec_writer *w, const struct fields *desc, const void *base);

/* Packs the fields of base without the array header. */
void fields_encode_items(struct codec_writer *w, const struct fields *desc, const void *base);

/* Descriptor builders. s is the C struct, m its member; wire names default
 * to the member's name. */
#define FIELDS_OF(array, rule)                                                                     \
	{                                                                                          \
		.field = (array), .count = sizeof(array) / sizeof((array)[0]),                     \
		.required = sizeof(array) / sizeof((array)[0]), .check = (rule)                    \
	}

/* As FIELDS_OF, but only the first required_ fields must be present: the
 * rest were appended later and decode as zero from an older peer. */
#define FIELDS_OF_OPTIONAL(array, required_, rule)                                                 \
	{                                                                                          \
		.field = (array), .count = sizeof(array) / sizeof((array)[0]),                     \
		.required = (required_), .check = (rule)                                           \
	}

#define F_U64(s, m)                                                                                \
	{                                                                                          \
		.wire = #m, .label = #m, .kind = FIELD_U64, .offset = offsetof(s, m)               \
	}
#define F_U64_AS(s, m, wire_, label_)                                                              \
	{                                                                                          \
		.wire = wire_, .label = label_, .kind = FIELD_U64, .offset = offsetof(s, m)        \
	}
#define F_U64_IN(s, m, lo, hi)                                                                     \
	{                                                                                          \
		.wire = #m, .label = #m, .kind = FIELD_U64, .offset = offsetof(s, m),              \
		.ranged = true, .min = (lo), .max = (hi)                                           \
	}
#define F_U32(s, m)                                                                                \
	{                                                                                          \
		.wire = #m, .label = #m, .kind = FIELD_U32, .offset = offsetof(s, m)               \
	}
#define F_U32_IN(s, m, lo, hi)                                                                     \
	{                                                                                          \
		.wire = #m, .label = #m, .kind = FIELD_U32, .offset = offsetof(s, m),              \
		.ranged = true, .min = (lo), .max = (hi)                                           \
	}
#define F_I32(s, m)                                                                                \
	{                                                                                          \
		.wire = #m, .label = #m, .kind = FIELD_I32, .offset = offsetof(s, m)               \
	}
#define F_I32_IN(s, m, lo, hi)                                                                     \
	{                                                                                          \
		.wire = #m, .label = #m, .kind = FIELD_I32, .offset = offsetof(s, m),              \
		.ranged = true, .imin = (lo), .imax = (hi)                                         \
	}
#define F_BOOL(s, m)                                                                               \
	{                                                                                          \
		.wire = #m, .label = #m, .kind = FIELD_BOOL, .offset = offsetof(s, m)              \
	}
#define F_NAME(s, m, label_)                                                                       \
	{                                                                                          \
		.wire = #m, .label = label_, .kind = FIELD_NAME, .offset = offsetof(s, m)          \
	}
#define F_NAME_OR_EMPTY(s, m, label_)                                                              \
	{                                                                                          \
		.wire = #m, .label = label_, .kind = FIELD_NAME, .offset = offsetof(s, m),         \
		.empty_ok = true                                                                   \
	}
#define F_TEXT(s, m, max_bytes)                                                                    \
	{                                                                                          \
		.wire = #m, .label = #m, .kind = FIELD_TEXT, .offset = offsetof(s, m),             \
		.max = (max_bytes)                                                                 \
	}
#define F_BIN(s, m, max_bytes)                                                                     \
	{                                                                                          \
		.wire = #m, .label = #m, .kind = FIELD_BIN, .offset = offsetof(s, m),              \
		.max = (max_bytes)                                                                 \
	}
/* A list of lo..hi elements, each described by elem_field. */
#define F_LIST(s, m, count_m, wire_, label_, item_label_, lo, hi, elem_field)                      \
	{                                                                                          \
		.wire = wire_, .label = label_, .kind = FIELD_LIST, .offset = offsetof(s, m),      \
		.count_offset = offsetof(s, count_m), .min = (lo), .max = (hi),                    \
		.item_label = item_label_, .elem = (elem_field),                                   \
		.elem_size = sizeof(((s *)0)->m[0])                                                \
	}
/* One list element that is itself a struct. */
#define F_ELEM_STRUCT(sub_fields)                                                                  \
	{                                                                                          \
		.kind = FIELD_STRUCT, .sub = (sub_fields)                                          \
	}

#endif
