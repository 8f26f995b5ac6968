/* Job ids and bounded reads (see cli_input.h). */
#include "cli_input.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool cli_parse_job_id(const char *text, uint64_t *out)
{
	size_t len = strlen(text);
	if (len == 0 || len > 20)
		return false;
	uint64_t value = 0;
	for (size_t i = 0; i < len; i++) {
		if (text[i] < '0' || text[i] > '9')
			return false;
		unsigned digit = (unsigned)(text[i] - '0');
		if (value > (UINT64_MAX - digit) / 10)
			return false;
		value = value * 10 + digit;
	}
	*out = value;
	return true;
}

/* The one wording of "too much input", wherever it is noticed. */
static int cli_too_big(struct jm_err *err, const char *source, size_t max_bytes)
{
	return jm_err_set(err, JM_ETOOBIG, "%s is over the limit of %zu bytes per job", source,
	                  max_bytes);
}

int cli_read_bounded(FILE *in, const char *source, size_t max_bytes, char **out, size_t *out_len,
                     struct jm_err *err)
{
	*out = NULL;
	*out_len = 0;
	/* The buffer grows to at most max_bytes + 2: one byte past the limit
	 * tells "exactly at" from "over" without reading the rest of a huge
	 * input, and one more holds the NUL. */
	size_t cap_max = max_bytes + 2;
	size_t cap = cap_max < 4096 ? cap_max : 4096;
	size_t len = 0;
	char *data = malloc(cap);
	if (data == NULL)
		return jm_err_set(err, JM_ENOMEM, "%s: out of memory", source);
	for (;;) {
		if (len == cap - 1) {
			size_t want = cap * 2 < cap_max ? cap * 2 : cap_max;
			char *grown = realloc(data, want);
			if (grown == NULL) {
				free(data);
				return jm_err_set(err, JM_ENOMEM, "%s: out of memory", source);
			}
			data = grown;
			cap = want;
		}
		size_t got = fread(data + len, 1, cap - 1 - len, in);
		len += got;
		if (len > max_bytes) {
			free(data);
			return cli_too_big(err, source, max_bytes);
		}
		if (got == 0) {
			if (ferror(in)) {
				int saved = errno;
				free(data);
				return jm_err_set(err, JM_EIO, "%s: read failed: %s", source,
				                  strerror(saved));
			}
			break;
		}
	}
	data[len] = '\0';
	*out = data;
	*out_len = len;
	return 0;
}
