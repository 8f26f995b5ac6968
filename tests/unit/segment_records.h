/* For the journal's unit tests: where the records of a segment file end
 * while the journal is open (the writer keeps preallocated zeros after
 * them, journal_prealloc.c). */
#ifndef JM_TEST_SEGMENT_RECORDS_H
#define JM_TEST_SEGMENT_RECORDS_H

/* The offset just past the last record of the segment at path, walking its
 * frames from the header. Fails the test if any byte after that end is not
 * zero, so no partial record stays. */
long segment_records_end(const char *path);

#endif
