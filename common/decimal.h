/* Unsigned integers in decimal, written by hand: what "%llu" writes, for a
 * fraction of snprintf's cost on paths that format a number per event or
 * per job (event topics, SSE frames and their JSON, --serve job lines). */
#ifndef JM_COMMON_DECIMAL_H
#define JM_COMMON_DECIMAL_H

#include <stddef.h>
#include <stdint.h>

#define JM_DECIMAL_U64_MAX 20 /* digits of UINT64_MAX */

/* Writes v's digits into out (room for JM_DECIMAL_U64_MAX bytes; no NUL)
 * and returns how many. */
size_t jm_decimal_u64(char *out, uint64_t v);

#endif
