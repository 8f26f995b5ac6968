/* Config files (YAML, via libyaml) as a list of flag settings.
 *
 * A config file is a mapping whose keys are the program's long flag names
 * (without "--"); a file setting is applied exactly as the flag would be, and
 * flags given on the command line are applied after it, so they win. Values:
 *   listen: tcp://127.0.0.1:7400      ->  --listen tcp://127.0.0.1:7400
 *   queue: [emails, documents]        ->  --queue emails --queue documents
 *   handler: {email.send: ./send.sh}  ->  --handler email.send=./send.sh
 *   schedule: {nightly: {cron: "0 2 * * *", queue: q}}
 *                                     ->  --schedule "nightly<US>cron=0 2 * * *<RS>queue=q"
 * (one level of records under a mapping; US and RS are JM_CONFIG_UNIT and
 * JM_CONFIG_RECORD). Deeper nesting, anchors and non-scalar keys are
 * refused with the line. */
#ifndef JM_COMMON_CONFIG_H
#define JM_COMMON_CONFIG_H

#include <stddef.h>

#include "err.h"

#define JM_CONFIG_UNIT '\x1f'   /* after a record's name */
#define JM_CONFIG_RECORD '\x1e' /* between a record's field=value pairs */

struct jm_config_entry {
	char *key;   /* flag name */
	char *value; /* flag argument */
	int line;    /* 1-based line in the file, for error messages */
};

struct jm_config {
	char *path;
	struct jm_config_entry *entries;
	size_t entries_count;
};

/* Loads path; on error err says "config FILE: line N: what was wrong". */
int jm_config_load(struct jm_config *cfg, const char *path, struct jm_err *err);
void jm_config_fini(struct jm_config *cfg);

#endif
