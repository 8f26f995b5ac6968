/* The allocation seam (see heap.h). */
#include "heap.h"

#include <stdbool.h>
#include <stdlib.h>

static __thread uint64_t fail_at; /* 0: never */
static __thread uint64_t calls;

static bool should_fail(void)
{
	calls++;
	return fail_at != 0 && calls == fail_at;
}

void *jm_malloc(size_t size)
{
	return should_fail() ? NULL : malloc(size);
}

void *jm_calloc(size_t count, size_t size)
{
	return should_fail() ? NULL : calloc(count, size);
}

void *jm_realloc(void *ptr, size_t size)
{
	return should_fail() ? NULL : realloc(ptr, size);
}

void jm_heap_fail_at(uint64_t n)
{
	fail_at = n;
	calls = 0;
}

uint64_t jm_heap_calls(void)
{
	return calls;
}
