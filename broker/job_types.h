/* Job type names, interned: each distinct type name is held once, counted
 * by the jobs that carry it, and freed when the last of them goes (type
 * names come from clients, so a flood of made-up ones must not stay). A
 * job keeps a pointer to its type's name (job.h). Not thread-safe (the
 * core lock guards it). */
#ifndef JM_BROKER_JOB_TYPES_H
#define JM_BROKER_JOB_TYPES_H

#include <stdint.h>

#include "message.h"
#include "namemap.h"

struct job_type {
	proto_name name; /* a whole proto_name: readers may copy all of it */
	uint64_t jobs;   /* jobs holding it (prepared ones included) */
	struct namemap_entry by_name;
};

struct job_types {
	struct namemap types;
	struct job_type *last; /* the latest one taken: submits repeat types */
};

int job_types_init(struct job_types *t);
/* Frees every type (their jobs must be gone). */
void job_types_fini(struct job_types *t);
/* The interned copy of name (valid, NUL-terminated within a proto_name),
 * counted once more: 0 with *out set to its name, or JM_ENOMEM. */
int job_types_take(struct job_types *t, const char *name, const char **out);
/* Gives back one count of the interned name (from job_types_take); NULL is
 * accepted. The last one frees it. */
void job_types_give(struct job_types *t, const char *name);

#endif
