/* The walkers over field descriptors (see fields.h). Every message body
 * and journal record goes through these four loops; what differs between
 * them is data in msg_*.c and record.c.
 *
 * Members are reached by offset from the struct's base. A list's pointer
 * member is read and written with memcpy, since its declared type
 * (struct proto_job_spec *, proto_name *, ...) is not void *. */
#include "fields.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Longest "a, b, c" field list an error quotes; longer lists are cut. */
#define FIELDS_LIST_MAX 400

static void *member(void *base, size_t offset)
{
	return (uint8_t *)base + offset;
}

static const void *cmember(const void *base, size_t offset)
{
	return (const uint8_t *)base + offset;
}

static uint8_t *list_items(const void *base, const struct field *f)
{
	uint8_t *items;
	memcpy(&items, cmember(base, f->offset), sizeof items);
	return items;
}

static uint32_t list_count(const void *base, const struct field *f)
{
	uint32_t count;
	memcpy(&count, cmember(base, f->count_offset), sizeof count);
	return count;
}

/* "job_id, lease": the wire names in order, for shape errors. */
/* "a, b, c" — and fields past the required ones, which an older peer may
 * leave out, in brackets: "a, b[, c, d]". */
static void fields_list(const struct fields *desc, char *out, size_t cap)
{
	size_t used = 0;
	out[0] = '\0';
	for (uint32_t i = 0; i < desc->count && used + 1 < cap; i++) {
		const char *sep = i == desc->required && i > 0 ? "[, " : i > 0 ? ", " : "";
		const char *close = i + 1 == desc->count && i >= desc->required ? "]" : "";
		int n = snprintf(out + used, cap - used, "%s%s%s", sep, desc->field[i].wire, close);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

static int field_decode(const struct field *f, const msgpack_object *o, msgpack_zone *zone,
                        void *base, struct jm_err *err);

static int list_decode(const struct field *f, const msgpack_object *o, msgpack_zone *zone,
                       void *base, struct jm_err *err)
{
	const msgpack_object *elems;
	uint32_t count;
	if (codec_array(o, f->label, (uint32_t)f->min, (uint32_t)f->max, &elems, &count, err))
		return err->code;
	uint8_t *items = codec_alloc(zone, count, f->elem_size, err);
	if (items == NULL && count > 0)
		return err->code;
	for (uint32_t i = 0; i < count; i++)
		if (field_decode(f->elem, &elems[i], zone, items + (size_t)i * f->elem_size, err))
			return jm_err_prefix(err, "%s %" PRIu32, f->item_label, i);
	memcpy(member(base, f->offset), &items, sizeof items);
	memcpy(member(base, f->count_offset), &count, sizeof count);
	return 0;
}

static int field_decode(const struct field *f, const msgpack_object *o, msgpack_zone *zone,
                        void *base, struct jm_err *err)
{
	void *at = member(base, f->offset);
	switch (f->kind) {
	case FIELD_U64:
		return codec_u64(o, f->label, at, err);
	case FIELD_U32:
		return codec_u32(o, f->label, at, err);
	case FIELD_I32:
		return codec_i32(o, f->label, at, err);
	case FIELD_BOOL:
		return codec_bool(o, f->label, at, err);
	case FIELD_NAME:
		return codec_name(o, f->label, f->empty_ok, at, err);
	case FIELD_TEXT:
	case FIELD_BIN:
		return codec_bytes(o, f->label, at, err);
	case FIELD_LIST:
		return list_decode(f, o, zone, base, err);
	case FIELD_STRUCT:
		return fields_decode(f->sub, o, zone, at, err);
	}
	return jm_err_set(err, JM_EINVAL, "%s: unknown field kind %d", f->label, (int)f->kind);
}

int fields_decode_items(const struct fields *desc, const msgpack_object *items,
                        uint32_t items_count, msgpack_zone *zone, void *base, struct jm_err *err)
{
	uint32_t present = items_count < desc->count ? items_count : desc->count;
	for (uint32_t i = 0; i < present; i++)
		if (field_decode(&desc->field[i], &items[i], zone, base, err))
			return err->code;
	return 0;
}

int fields_decode(const struct fields *desc, const msgpack_object *o, msgpack_zone *zone,
                  void *base, struct jm_err *err)
{
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < desc->required) {
		/* Only now spell out the field list the error quotes. */
		char list[FIELDS_LIST_MAX];
		const msgpack_object *unused;
		fields_list(desc, list, sizeof list);
		return codec_fields(o, desc->required, list, &unused, err);
	}
	return fields_decode_items(desc, o->via.array.ptr, o->via.array.size, zone, base, err);
}

static int field_check(const struct field *f, const void *base, struct jm_err *err)
{
	const void *at = cmember(base, f->offset);
	int rc = 0;
	switch (f->kind) {
	case FIELD_U64:
		if (f->ranged)
			rc = codec_check_u32(*(const uint64_t *)at, f->label, f->min, f->max, err);
		break;
	case FIELD_BOOL:
		break;
	case FIELD_U32:
		if (f->ranged)
			rc = codec_check_u32(*(const uint32_t *)at, f->label, f->min, f->max, err);
		break;
	case FIELD_I32:
		if (f->ranged)
			rc = codec_check_i32(*(const int32_t *)at, f->label, f->imin, f->imax, err);
		break;
	case FIELD_NAME:
		rc = codec_check_name(at, f->label, f->empty_ok, err);
		break;
	case FIELD_TEXT:
	case FIELD_BIN:
		if (f->max > 0)
			rc = codec_check_size(at, f->label, (uint32_t)f->max, err);
		break;
	case FIELD_LIST: {
		const uint8_t *items = list_items(base, f);
		uint32_t count = list_count(base, f);
		rc = codec_check_count(count, items, f->label, (uint32_t)f->min, (uint32_t)f->max,
		                       err);
		for (uint32_t i = 0; rc == 0 && i < count; i++)
			if (field_check(f->elem, items + (size_t)i * f->elem_size, err))
				rc = jm_err_prefix(err, "%s %" PRIu32, f->item_label, i);
		break;
	}
	case FIELD_STRUCT:
		rc = fields_check(f->sub, at, err);
		break;
	}
	if (rc == 0 && f->check != NULL)
		rc = f->check(base, err);
	return rc;
}

int fields_check(const struct fields *desc, const void *base, struct jm_err *err)
{
	for (uint32_t i = 0; i < desc->count; i++)
		if (field_check(&desc->field[i], base, err))
			return err->code;
	if (desc->check != NULL)
		return desc->check(base, err);
	return 0;
}

static void field_encode(struct codec_writer *w, const struct field *f, const void *base)
{
	const void *at = cmember(base, f->offset);
	switch (f->kind) {
	case FIELD_U64:
		codec_put_uint(w, *(const uint64_t *)at);
		break;
	case FIELD_U32:
		codec_put_uint(w, *(const uint32_t *)at);
		break;
	case FIELD_I32:
		codec_put_int(w, *(const int32_t *)at);
		break;
	case FIELD_BOOL:
		codec_put_bool(w, *(const bool *)at);
		break;
	case FIELD_NAME:
		codec_put_name(w, at);
		break;
	case FIELD_TEXT:
		codec_put_text(w, at);
		break;
	case FIELD_BIN:
		codec_put_bin(w, at);
		break;
	case FIELD_LIST: {
		const uint8_t *items = list_items(base, f);
		uint32_t count = list_count(base, f);
		codec_put_array(w, count);
		for (uint32_t i = 0; i < count; i++)
			field_encode(w, f->elem, items + (size_t)i * f->elem_size);
		break;
	}
	case FIELD_STRUCT:
		fields_encode(w, f->sub, at);
		break;
	}
}

void fields_encode_items(struct codec_writer *w, const struct fields *desc, const void *base)
{
	for (uint32_t i = 0; i < desc->count; i++)
		field_encode(w, &desc->field[i], base);
}

void fields_encode(struct codec_writer *w, const struct fields *desc, const void *base)
{
	codec_put_array(w, desc->count);
	fields_encode_items(w, desc, base);
}
