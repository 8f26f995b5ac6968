/* See segment_records.h. */
#include "jm_test.h"

#include "journal_internal.h"
#include "segment_records.h"

long segment_records_end(const char *path)
{
	FILE *file = fopen(path, "rb");
	assert_non_null(file);
	assert_int_equal(fseek(file, 0, SEEK_END), 0);
	long size = ftell(file);
	uint8_t frame[JOURNAL_FRAME_BYTES];
	long off = JOURNAL_HEADER_BYTES;
	while (fseek(file, off, SEEK_SET) == 0 &&
	       fread(frame, 1, sizeof frame, file) == sizeof frame) {
		uint32_t word = (uint32_t)frame[0] | (uint32_t)frame[1] << 8 |
		                (uint32_t)frame[2] << 16 | (uint32_t)frame[3] << 24;
		long next = off + (long)(JOURNAL_FRAME_BYTES + (word & 0x7fffffffu));
		/* A frame whose body runs past the file is a partial record: stop
		 * at it, so the check below fails on its nonzero bytes. */
		if (word == 0 || next > size)
			break;
		off = next;
	}
	assert_int_equal(fseek(file, off, SEEK_SET), 0);
	int c;
	while ((c = fgetc(file)) != EOF)
		if (c != 0)
			fail_msg("%s: nonzero byte after the records ending at %ld", path, off);
	fclose(file);
	return off;
}
