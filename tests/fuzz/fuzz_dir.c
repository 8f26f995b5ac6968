/* See fuzz_dir.h. */
#include "fuzz_dir.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"

void fuzz_dir_init(char *dir, size_t dir_size, const char *name)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, dir_size, "%s/jm-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
	if (mkdtemp(dir) == NULL)
		abort();
	jm_log_init(name, (enum jm_log_level)(JM_LOG_ERROR + 1));
}

void fuzz_dir_clear(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *ent;
	char path[512];
	while (d && (ent = readdir(d)) != NULL) {
		if (ent->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
}
