/* Wire body of a queue's runtime settings (see message.h): QUEUE_SET and
 * QUEUE_SETTINGS share it, and the journal's QUEUE record carries it too
 * (record.c), so a setting is bounded in one place. */
#include "msg_fields.h"

#include <string.h>

/* Ranges, judged only for the settings set_mask names (a QUEUE_SET leaves
 * the others 0). */
int msg_queue_settings_check(const void *base, struct jm_err *err)
{
	const struct proto_queue_settings *s = base;
	uint32_t mask = s->set_mask | s->keep_mask << PROTO_QSET_WIRE_BITS;
	if ((s->set_mask & ~(uint32_t)PROTO_QSET_ALL_) ||
	    (s->keep_mask & ~(uint32_t)(PROTO_QSET_ALL_ >> PROTO_QSET_WIRE_BITS)))
		return jm_err_set(
		    err, JM_EINVAL,
		    "set_mask 0x%x (keep_mask 0x%x) names unknown settings: use bits 0x%x",
		    s->set_mask, s->keep_mask, (unsigned)PROTO_QSET_ALL_);
	if ((mask & PROTO_QSET_RATE) &&
	    (codec_check_u32(s->rate_jobs, "rate jobs", 0, PROTO_RATE_JOBS_MAX, err) ||
	     (s->rate_jobs && codec_check_u32(s->rate_period_ms, "rate period_ms", 1,
	                                      PROTO_RATE_PERIOD_MS_MAX, err))))
		return err->code;
	if ((mask & PROTO_QSET_MAX_ATTEMPTS) &&
	    codec_check_u32(s->max_attempts, "max_attempts", 1, PROTO_ATTEMPTS_MAX, err))
		return err->code;
	if ((mask & PROTO_QSET_KEY_WINDOW) &&
	    codec_check_u32(s->key_window_ms, "key_window_ms", 1, 3650ull * 24 * 3600 * 1000, err))
		return err->code;
	if ((mask & PROTO_QSET_KEEP_AGE) &&
	    codec_check_u32(s->keep_finished_age_ms, "keep_finished_age_ms", 0,
	                    PROTO_KEEP_AGE_MS_MAX, err))
		return err->code;
	static const struct {
		uint32_t bit;
		size_t offset;
		const char *name;
	} ages[] = {
	    {PROTO_QSET_KEEP_COMPLETED_AGE,
	     offsetof(struct proto_queue_settings, keep_completed_age_ms), "keep_completed_age_ms"},
	    {PROTO_QSET_KEEP_FAILED_AGE, offsetof(struct proto_queue_settings, keep_failed_age_ms),
	     "keep_failed_age_ms"},
	    {PROTO_QSET_KEEP_CANCELLED_AGE,
	     offsetof(struct proto_queue_settings, keep_cancelled_age_ms), "keep_cancelled_age_ms"},
	};
	for (size_t i = 0; i < sizeof ages / sizeof ages[0]; i++) {
		uint64_t v;
		memcpy(&v, (const char *)s + ages[i].offset, sizeof v);
		if ((mask & ages[i].bit) &&
		    codec_check_u32(v, ages[i].name, 0, PROTO_KEEP_AGE_MS_MAX, err))
			return err->code;
	}
	return 0;
}

static const struct field queue_settings_field[] = {
    F_NAME(struct proto_queue_settings, queue, "queue name"),
    F_U32(struct proto_queue_settings, set_mask),
    F_BOOL(struct proto_queue_settings, paused),
    F_U32(struct proto_queue_settings, max_active),
    F_U32(struct proto_queue_settings, rate_jobs),
    F_U64(struct proto_queue_settings, rate_period_ms),
    F_U32(struct proto_queue_settings, max_attempts),
    F_U64(struct proto_queue_settings, keep_finished),
    F_U64(struct proto_queue_settings, keep_finished_age_ms),
    F_U64(struct proto_queue_settings, key_window_ms),
    F_U32(struct proto_queue_settings, group_limit),    /* appended */
    F_U64(struct proto_queue_settings, keep_completed), /* appended */
    F_U64(struct proto_queue_settings, keep_completed_age_ms),
    F_U64(struct proto_queue_settings, keep_failed),
    F_U64(struct proto_queue_settings, keep_failed_age_ms),
    F_U64(struct proto_queue_settings, keep_cancelled),
    F_U64(struct proto_queue_settings, keep_cancelled_age_ms),
    F_U32(struct proto_queue_settings, keep_mask), /* appended: see message.h */
};
const struct fields msg_queue_settings_fields =
    FIELDS_OF_OPTIONAL(queue_settings_field, 10, msg_queue_settings_check);

void proto_queue_settings_split(struct proto_queue_settings *s)
{
	s->keep_mask = s->set_mask >> PROTO_QSET_WIRE_BITS;
	s->set_mask &= (1u << PROTO_QSET_WIRE_BITS) - 1;
}

void proto_queue_settings_join(struct proto_queue_settings *s)
{
	s->set_mask |= s->keep_mask << PROTO_QSET_WIRE_BITS;
	s->keep_mask = 0;
}
