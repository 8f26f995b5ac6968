/* CRC32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78): the
 * checksum of journal records. Standard form: initial value and final xor
 * are all ones, so crc32c("123456789") == 0xE3069283 and crc32c of nothing
 * is 0.
 *
 * Uses the SSE4.2 crc32 instruction when the CPU has it (checked once at
 * run time) and a table-driven slicing-by-8 routine otherwise; both give
 * the same values (test_crc32c.c compares them). Thread-safe, no
 * allocation. */
#ifndef JM_COMMON_CRC32C_H
#define JM_COMMON_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The checksum of len bytes at data. */
uint32_t crc32c(const void *data, size_t len);

/* The checksum of the concatenation A || data, given crc == crc32c(A):
 * crc32c_extend(crc32c(a, n), b, m) == crc32c(a || b). Start with 0. */
uint32_t crc32c_extend(uint32_t crc, const void *data, size_t len);

/* The same as crc32c_extend, always in software (for tests and benches). */
uint32_t crc32c_extend_sw(uint32_t crc, const void *data, size_t len);

/* True when crc32c_extend uses the CPU's crc32 instruction. */
bool crc32c_is_hw(void);

#endif
