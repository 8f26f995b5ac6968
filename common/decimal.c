/* Unsigned integers in decimal (decimal.h). */
#include "decimal.h"

#include <string.h>

size_t jm_decimal_u64(char *out, uint64_t v)
{
	char digits[JM_DECIMAL_U64_MAX];
	size_t at = sizeof digits;
	do {
		digits[--at] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	memcpy(out, digits + at, sizeof digits - at);
	return sizeof digits - at;
}
