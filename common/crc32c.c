/* CRC32C (see crc32c.h). The software path is slicing-by-8 over tables
 * built once; the hardware path is SSE4.2 `crc32` on x86-64, eight bytes
 * per instruction. The choice is made on first use and cached; a race
 * between two first calls only computes the same answer twice. */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#define CRC32C_POLY_REFLECTED 0x82F63B78u

static uint32_t crc32c_table[8][256];
static pthread_once_t crc32c_table_once = PTHREAD_ONCE_INIT;

static void crc32c_table_build(void)
{
	for (uint32_t byte = 0; byte < 256; byte++) {
		uint32_t crc = byte;
		for (int bit = 0; bit < 8; bit++)
			crc = (crc >> 1) ^ (CRC32C_POLY_REFLECTED & (0u - (crc & 1u)));
		crc32c_table[0][byte] = crc;
	}
	for (uint32_t byte = 0; byte < 256; byte++) {
		uint32_t crc = crc32c_table[0][byte];
		for (int slice = 1; slice < 8; slice++) {
			crc = crc32c_table[0][crc & 0xFFu] ^ (crc >> 8);
			crc32c_table[slice][byte] = crc;
		}
	}
}

uint32_t crc32c_extend_sw(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&crc32c_table_once, crc32c_table_build);
	const uint8_t *p = data;
	crc = ~crc;
	while (len > 0 && ((uintptr_t)p & 7u) != 0) {
		crc = crc32c_table[0][(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
		len--;
	}
	while (len >= 8) {
		uint32_t lo;
		uint32_t hi;
		memcpy(&lo, p, 4);
		memcpy(&hi, p + 4, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		lo = __builtin_bswap32(lo);
		hi = __builtin_bswap32(hi);
#endif
		lo ^= crc;
		crc = crc32c_table[7][lo & 0xFFu] ^ crc32c_table[6][(lo >> 8) & 0xFFu] ^
		      crc32c_table[5][(lo >> 16) & 0xFFu] ^ crc32c_table[4][lo >> 24] ^
		      crc32c_table[3][hi & 0xFFu] ^ crc32c_table[2][(hi >> 8) & 0xFFu] ^
		      crc32c_table[1][(hi >> 16) & 0xFFu] ^ crc32c_table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len > 0) {
		crc = crc32c_table[0][(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
		len--;
	}
	return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define CRC32C_HAVE_HW 1

__attribute__((target("sse4.2"))) static uint32_t crc32c_extend_hw(uint32_t crc, const void *data,
                                                                   size_t len)
{
	const uint8_t *p = data;
	uint64_t crc64 = (uint32_t)~crc;
	while (len > 0 && ((uintptr_t)p & 7u) != 0) {
		crc64 = _mm_crc32_u8((uint32_t)crc64, *p++);
		len--;
	}
	while (len >= 8) {
		uint64_t word;
		memcpy(&word, p, 8);
		crc64 = _mm_crc32_u64(crc64, word);
		p += 8;
		len -= 8;
	}
	uint32_t crc32 = (uint32_t)crc64;
	while (len > 0) {
		crc32 = _mm_crc32_u8(crc32, *p++);
		len--;
	}
	return ~crc32;
}
#else
#define CRC32C_HAVE_HW 0
#endif

typedef uint32_t (*crc32c_fn)(uint32_t crc, const void *data, size_t len);

static crc32c_fn crc32c_impl;

static crc32c_fn crc32c_pick(void)
{
	crc32c_fn fn = __atomic_load_n(&crc32c_impl, __ATOMIC_ACQUIRE);
	if (fn != NULL)
		return fn;
	fn = crc32c_extend_sw;
#if CRC32C_HAVE_HW
	__builtin_cpu_init();
	if (__builtin_cpu_supports("sse4.2"))
		fn = crc32c_extend_hw;
#endif
	__atomic_store_n(&crc32c_impl, fn, __ATOMIC_RELEASE);
	return fn;
}

uint32_t crc32c_extend(uint32_t crc, const void *data, size_t len)
{
	return crc32c_pick()(crc, data, len);
}

uint32_t crc32c(const void *data, size_t len)
{
	return crc32c_pick()(0, data, len);
}

bool crc32c_is_hw(void)
{
	return crc32c_pick() != crc32c_extend_sw;
}
