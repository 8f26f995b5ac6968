/* See job_types.h. */
#include "heap.h"
#include "job_types.h"

#include <stdlib.h>
#include <string.h>

#include <jobmesh/error.h>

int job_types_init(struct job_types *t)
{
	t->last = NULL;
	return namemap_init(&t->types);
}

static void free_type_cb(struct namemap_entry *e, void *arg)
{
	free(container_of(e, struct job_type, by_name));
}

void job_types_fini(struct job_types *t)
{
	if (t->types.buckets == NULL)
		return;
	namemap_each(&t->types, free_type_cb, NULL);
	namemap_fini(&t->types);
	t->last = NULL;
}

int job_types_take(struct job_types *t, const char *name, const char **out)
{
	struct job_type *type = t->last;
	if (type == NULL || strcmp(type->name, name) != 0) {
		struct namemap_entry *e = namemap_find(&t->types, name);
		type = e ? container_of(e, struct job_type, by_name) : NULL;
	}
	if (type == NULL) {
		type = jm_calloc(1, sizeof *type);
		if (type == NULL)
			return JM_ENOMEM;
		strncpy(type->name, name, PROTO_NAME_MAX);
		type->by_name.name = type->name;
		namemap_insert(&t->types, &type->by_name); /* never fails */
	}
	type->jobs++;
	t->last = type;
	*out = type->name;
	return 0;
}

void job_types_give(struct job_types *t, const char *name)
{
	if (name == NULL)
		return;
	struct job_type *type = container_of(name, struct job_type, name);
	if (--type->jobs > 0)
		return;
	if (t->last == type)
		t->last = NULL;
	namemap_remove(&t->types, &type->by_name);
	free(type);
}
