/* The scratch directory a libFuzzer target that writes a journal works in:
 * made once under $TMPDIR (scripts/test points it at a scratch dir), and
 * emptied between inputs so each input starts from nothing. */
#ifndef JM_FUZZ_DIR_H
#define JM_FUZZ_DIR_H

#include <stddef.h>

/* Makes <$TMPDIR or /tmp>/jm-<name>-XXXXXX into dir (aborts on failure: a
 * fuzz run without its directory is meaningless) and silences the log. */
void fuzz_dir_init(char *dir, size_t dir_size, const char *name);

/* Removes every file in dir (the journal keeps no subdirectories). */
void fuzz_dir_clear(const char *dir);

#endif
