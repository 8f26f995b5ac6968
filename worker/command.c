/* Handler command lines: see command.h. */
#include "command.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Characters a shell passes through unchanged in an unquoted word. '=' is
 * plain too, except in the first word (where it makes an assignment). */
static bool command_char_is_plain(char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("_-./,:@+%^=", c) != NULL;
}

bool command_split(const char *command, struct command_words *words)
{
	memset(words, 0, sizeof *words);
	bool first_word = true;
	bool in_word = false;
	int words_count = 0;
	for (const char *at = command; *at != '\0'; at++) {
		if (*at == ' ' || *at == '\t') {
			if (in_word)
				first_word = false;
			in_word = false;
			continue;
		}
		if (!command_char_is_plain(*at) || (first_word && *at == '='))
			return false;
		if (!in_word && ++words_count > COMMAND_WORDS_MAX)
			return false;
		in_word = true;
	}
	if (words_count == 0)
		return false;
	words->buf = strdup(command);
	if (words->buf == NULL)
		return false;
	char *save = NULL;
	for (char *word = strtok_r(words->buf, " \t", &save); word != NULL;
	     word = strtok_r(NULL, " \t", &save))
		words->argv[words->argc++] = word;
	words->argv[words->argc] = NULL;
	return true;
}

bool command_env_is_secret(const char *entry)
{
	static const char token[] = "JOBMESH_TOKEN=";
	return strncmp(entry, token, sizeof token - 1) == 0;
}

void command_words_fini(struct command_words *words)
{
	free(words->buf);
	words->buf = NULL;
	words->argc = 0;
}

int command_spawn(const char *command, const posix_spawn_file_actions_t *actions,
                  const posix_spawnattr_t *attr, char **envp, pid_t *pid, char *error,
                  size_t error_size)
{
	struct command_words words;
	if (command_split(command, &words)) {
		int rc = posix_spawnp(pid, words.argv[0], actions, attr, words.argv, envp);
		bool builtin = rc == ENOENT && strchr(words.argv[0], '/') == NULL;
		if (rc != 0 && !builtin)
			snprintf(error, error_size, "cannot start %s: %s", words.argv[0],
			         strerror(rc));
		command_words_fini(&words);
		if (!builtin)
			return rc;
	}
	char *argv[] = {"sh", "-c", (char *)command, NULL};
	int rc = posix_spawn(pid, "/bin/sh", actions, attr, argv, envp);
	if (rc != 0)
		snprintf(error, error_size, "cannot start /bin/sh -c: %s", strerror(rc));
	return rc;
}
