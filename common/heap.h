/* The allocation seam: the allocations a request's admission depends on go
 * through jm_malloc/jm_calloc/jm_realloc, so a test can make the Nth one
 * fail (dqlite's test/lib/heap.h) and check that a request failing at any
 * allocation changes nothing. Freed with plain free().
 *
 * The fault is armed per thread: only allocations on the thread that armed
 * it count, so the journal's writer thread and nng's threads are not hit. */
#ifndef JM_COMMON_HEAP_H
#define JM_COMMON_HEAP_H

#include <stddef.h>
#include <stdint.h>

void *jm_malloc(size_t size);
void *jm_calloc(size_t count, size_t size);
void *jm_realloc(void *ptr, size_t size);

/* Makes the calling thread's allocation number n (1-based, counted from
 * now) fail, that one only; n = 0 disarms. */
void jm_heap_fail_at(uint64_t n);
/* Allocations counted on this thread since jm_heap_fail_at. */
uint64_t jm_heap_calls(void);

#endif
