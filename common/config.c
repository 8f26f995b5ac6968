/* Config files: a YAML mapping read with libyaml's event API and flattened
 * into a list of (flag name, value, line) entries (see config.h).
 *
 * The accepted shape is deliberately small, so that every file setting is
 * exactly one flag setting and nothing in YAML can mean something a flag
 * cannot:
 *   key: scalar                 -> one entry
 *   key: [scalar, ...]          -> one entry per item, same key
 *   key: {k: scalar, ...}       -> one entry per pair, value "k=v"
 *   key: {k: {f: scalar, ...}}  -> one entry per k, value a record:
 *                                  "k" JM_CONFIG_UNIT "f=v" JM_CONFIG_RECORD ...
 *                                  (the broker's schedule: list)
 * Anything else (deeper nesting, anchors and aliases, non-scalar keys, a top
 * level that is not a mapping, several documents) is refused with the file,
 * the line and what is allowed. On any error the config is left empty, so the
 * caller never applies half a file. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

/* A config file holds a few flag settings; anything this large is a wrong
 * path (a journal, a binary) and is refused before libyaml sees it. */
#define CONFIG_FILE_MAX_BYTES (4u << 20)

#define CONFIG_SHAPE_RULE "a value is text, a list of text, or a mapping of text to text"

struct config_parse {
	struct jm_config *cfg;
	const char *path;
	yaml_parser_t parser;
	size_t entries_cap;
	struct jm_err *err;
};

static int config_line(const yaml_event_t *event)
{
	return (int)event->start_mark.line + 1;
}

static const char *config_event_what(const yaml_event_t *event)
{
	switch (event->type) {
	case YAML_SCALAR_EVENT:
		return "text";
	case YAML_SEQUENCE_START_EVENT:
		return "a list";
	case YAML_MAPPING_START_EVENT:
		return "a mapping";
	case YAML_ALIAS_EVENT:
		return "an alias";
	default:
		return "something else";
	}
}

/* Reads the next event; a libyaml syntax error becomes our error with the
 * line libyaml reports. On success the caller owns event. */
static int config_next(struct config_parse *p, yaml_event_t *event)
{
	if (yaml_parser_parse(&p->parser, event))
		return 0;
	if (p->parser.error == YAML_MEMORY_ERROR)
		return jm_err_set(p->err, JM_ENOMEM, "config %s: out of memory", p->path);
	const char *problem = p->parser.problem ? p->parser.problem : "invalid YAML";
	size_t line = p->parser.problem_mark.line + 1;
	/* The problem mark of an unclosed bracket is the end of the file, so
	 * the line where the construct opened is named too. */
	size_t context_line = p->parser.context_mark.line + 1;
	if (p->parser.context != NULL && context_line != line)
		return jm_err_set(p->err, JM_EINVAL,
		                  "config %s: line %zu: %s %s started on line %zu; the file must "
		                  "be valid YAML",
		                  p->path, line, problem, p->parser.context, context_line);
	if (p->parser.context != NULL)
		return jm_err_set(p->err, JM_EINVAL,
		                  "config %s: line %zu: %s %s; the file must be valid YAML",
		                  p->path, line, problem, p->parser.context);
	return jm_err_set(p->err, JM_EINVAL, "config %s: line %zu: %s; the file must be valid YAML",
	                  p->path, line, problem);
}

/* Anchors and aliases would let one value stand for another; a flag list
 * has no such thing, so both are refused wherever they appear. */
static int config_check_no_anchor(struct config_parse *p, const yaml_event_t *event)
{
	const yaml_char_t *anchor = NULL;
	if (event->type == YAML_SCALAR_EVENT)
		anchor = event->data.scalar.anchor;
	else if (event->type == YAML_SEQUENCE_START_EVENT)
		anchor = event->data.sequence_start.anchor;
	else if (event->type == YAML_MAPPING_START_EVENT)
		anchor = event->data.mapping_start.anchor;
	if (event->type == YAML_ALIAS_EVENT)
		return jm_err_set(p->err, JM_EINVAL,
		                  "config %s: line %d: alias *%s; anchors and aliases are not "
		                  "allowed: write each value out",
		                  p->path, config_line(event),
		                  (const char *)event->data.alias.anchor);
	if (anchor != NULL)
		return jm_err_set(p->err, JM_EINVAL,
		                  "config %s: line %d: anchor &%s; anchors and aliases are not "
		                  "allowed: write each value out",
		                  p->path, config_line(event), (const char *)anchor);
	return 0;
}

/* Copies a scalar as a C string. A NUL inside (a "\0" escape) could not be
 * passed as a flag, so it is refused rather than silently truncated. */
static int config_scalar_dup(struct config_parse *p, const yaml_event_t *event, char **out)
{
	const char *value = (const char *)event->data.scalar.value;
	size_t len = event->data.scalar.length;
	if (memchr(value, '\0', len) != NULL)
		return jm_err_set(p->err, JM_EINVAL,
		                  "config %s: line %d: text contains a NUL character; values "
		                  "must be plain text",
		                  p->path, config_line(event));
	char *copy = malloc(len + 1);
	if (copy == NULL)
		return jm_err_set(p->err, JM_ENOMEM, "config %s: out of memory", p->path);
	memcpy(copy, value, len);
	copy[len] = '\0';
	*out = copy;
	return 0;
}

/* Appends an entry; takes ownership of key and value in every case. */
static int config_add(struct config_parse *p, char *key, char *value, int line)
{
	struct jm_config *cfg = p->cfg;
	if (cfg->entries_count == p->entries_cap) {
		size_t cap = p->entries_cap ? p->entries_cap * 2 : 16;
		struct jm_config_entry *entries = realloc(cfg->entries, cap * sizeof *entries);
		if (entries == NULL) {
			free(key);
			free(value);
			return jm_err_set(p->err, JM_ENOMEM, "config %s: out of memory", p->path);
		}
		cfg->entries = entries;
		p->entries_cap = cap;
	}
	cfg->entries[cfg->entries_count++] = (struct jm_config_entry){
	    .key = key,
	    .value = value,
	    .line = line,
	};
	return 0;
}

static int config_add_scalar(struct config_parse *p, const char *key, const yaml_event_t *event)
{
	char *key_copy = strdup(key);
	char *value = NULL;
	if (key_copy == NULL)
		return jm_err_set(p->err, JM_ENOMEM, "config %s: out of memory", p->path);
	int rc = config_scalar_dup(p, event, &value);
	if (rc != 0) {
		free(key_copy);
		return rc;
	}
	return config_add(p, key_copy, value, config_line(event));
}

/* Reads the items of "key: [a, b]" up to the end of the sequence. */
static int config_parse_sequence(struct config_parse *p, const char *key)
{
	for (;;) {
		yaml_event_t event;
		int rc = config_next(p, &event);
		if (rc != 0)
			return rc;
		if (event.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&event);
			return 0;
		}
		rc = config_check_no_anchor(p, &event);
		if (rc == 0 && event.type != YAML_SCALAR_EVENT)
			rc = jm_err_set(p->err, JM_EINVAL,
			                "config %s: line %d: an item of \"%s\" is %s; a list "
			                "holds text only (" CONFIG_SHAPE_RULE ")",
			                p->path, config_line(&event), key,
			                config_event_what(&event));
		if (rc == 0)
			rc = config_add_scalar(p, key, &event);
		yaml_event_delete(&event);
		if (rc != 0)
			return rc;
	}
}

/* Reads the scalar pairs of one record "k: {f: v, ...}" (its mapping start
 * already read) into *out: k, JM_CONFIG_UNIT, then "f=v" pairs separated
 * by JM_CONFIG_RECORD. The separators are control characters, refused in
 * the text. */
static int config_parse_record(struct config_parse *p, const char *key, const char *name,
                               char **out)
{
	size_t cap = strlen(name) + 2, len = strlen(name) + 1;
	char *text = malloc(cap);
	if (text == NULL)
		return jm_err_set(p->err, JM_ENOMEM, "config %s: out of memory", p->path);
	snprintf(text, cap, "%s%c", name, JM_CONFIG_UNIT);
	bool first = true;
	for (;;) {
		yaml_event_t f_event, v_event;
		int rc = config_next(p, &f_event);
		if (rc != 0) {
			free(text);
			return rc;
		}
		if (f_event.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&f_event);
			*out = text;
			return 0;
		}
		rc = config_next(p, &v_event);
		if (rc != 0) {
			yaml_event_delete(&f_event);
			free(text);
			return rc;
		}
		if (f_event.type != YAML_SCALAR_EVENT || v_event.type != YAML_SCALAR_EVENT ||
		    config_check_no_anchor(p, &f_event) || config_check_no_anchor(p, &v_event)) {
			rc = jm_err_set(p->err, JM_EINVAL,
			                "config %s: line %d: each field of \"%s\" under \"%s\" is "
			                "text: text (%s)",
			                p->path, config_line(&f_event), name, key,
			                CONFIG_SHAPE_RULE);
		}
		const char *f = rc == 0 ? (const char *)f_event.data.scalar.value : "";
		const char *v = rc == 0 ? (const char *)v_event.data.scalar.value : "";
		for (const char *c = v; rc == 0 && *c; c++)
			if (*c == JM_CONFIG_UNIT || *c == JM_CONFIG_RECORD)
				rc = jm_err_set(
				    p->err, JM_EINVAL,
				    "config %s: line %d: \"%s\" holds a control character "
				    "(0x1e or 0x1f), which is not allowed",
				    p->path, config_line(&v_event), f);
		if (rc == 0) {
			size_t add = strlen(f) + strlen(v) + 3;
			char *grown = realloc(text, cap + add);
			if (grown == NULL)
				rc = jm_err_set(p->err, JM_ENOMEM, "config %s: out of memory",
				                p->path);
			else {
				text = grown;
				cap += add;
				len += (size_t)snprintf(text + len, cap - len, "%s%s=%s",
				                        first ? "" : (char[]){JM_CONFIG_RECORD, 0},
				                        f, v);
				first = false;
			}
		}
		yaml_event_delete(&f_event);
		yaml_event_delete(&v_event);
		if (rc != 0) {
			free(text);
			return rc;
		}
	}
}

/* Reads the pairs of "key: {k: v}" up to the end of the mapping; each pair
 * becomes the entry key="k=v" (or a record, see config_parse_record). */
static int config_parse_pairs(struct config_parse *p, const char *key)
{
	for (;;) {
		yaml_event_t name_event;
		int rc = config_next(p, &name_event);
		if (rc != 0)
			return rc;
		if (name_event.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&name_event);
			return 0;
		}
		rc = config_check_no_anchor(p, &name_event);
		if (rc == 0 && name_event.type != YAML_SCALAR_EVENT)
			rc = jm_err_set(p->err, JM_EINVAL,
			                "config %s: line %d: a key under \"%s\" is %s; keys must "
			                "be text",
			                p->path, config_line(&name_event), key,
			                config_event_what(&name_event));
		if (rc != 0) {
			yaml_event_delete(&name_event);
			return rc;
		}
		yaml_event_t value_event;
		rc = config_next(p, &value_event);
		if (rc != 0) {
			yaml_event_delete(&name_event);
			return rc;
		}
		rc = config_check_no_anchor(p, &value_event);
		if (rc == 0 && value_event.type == YAML_MAPPING_START_EVENT) {
			char *record = NULL;
			char *key_copy = strdup(key);
			int line = config_line(&name_event);
			rc = key_copy
			         ? config_parse_record(
			               p, key, (const char *)name_event.data.scalar.value, &record)
			         : jm_err_set(p->err, JM_ENOMEM, "config %s: out of memory",
			                      p->path);
			yaml_event_delete(&name_event);
			yaml_event_delete(&value_event);
			if (rc != 0) {
				free(key_copy);
				return rc;
			}
			rc = config_add(p, key_copy, record, line);
			if (rc != 0)
				return rc;
			continue;
		}
		if (rc == 0 && value_event.type != YAML_SCALAR_EVENT)
			rc = jm_err_set(p->err, JM_EINVAL,
			                "config %s: line %d: \"%s\" under \"%s\" is %s; "
			                "" CONFIG_SHAPE_RULE,
			                p->path, config_line(&value_event),
			                (const char *)name_event.data.scalar.value, key,
			                config_event_what(&value_event));
		char *name = NULL;
		char *value = NULL;
		if (rc == 0)
			rc = config_scalar_dup(p, &name_event, &name);
		if (rc == 0)
			rc = config_scalar_dup(p, &value_event, &value);
		char *joined = NULL;
		char *key_copy = NULL;
		if (rc == 0) {
			size_t joined_len = strlen(name) + 1 + strlen(value) + 1;
			joined = malloc(joined_len);
			key_copy = strdup(key);
			if (joined == NULL || key_copy == NULL)
				rc = jm_err_set(p->err, JM_ENOMEM, "config %s: out of memory",
				                p->path);
			else
				snprintf(joined, joined_len, "%s=%s", name, value);
		}
		int line = config_line(&name_event);
		free(name);
		free(value);
		yaml_event_delete(&name_event);
		yaml_event_delete(&value_event);
		if (rc != 0) {
			free(joined);
			free(key_copy);
			return rc;
		}
		rc = config_add(p, key_copy, joined, line);
		if (rc != 0)
			return rc;
	}
}

/* Reads one "key: value" of the top-level mapping, whose key event is
 * key_event; value may be a scalar, a list or a mapping of scalars. */
static int config_parse_setting(struct config_parse *p, const yaml_event_t *key_event)
{
	int rc = config_check_no_anchor(p, key_event);
	if (rc != 0)
		return rc;
	if (key_event->type != YAML_SCALAR_EVENT)
		return jm_err_set(p->err, JM_EINVAL,
		                  "config %s: line %d: a key is %s; keys are flag names "
		                  "(text, without \"--\")",
		                  p->path, config_line(key_event), config_event_what(key_event));
	char *key = NULL;
	rc = config_scalar_dup(p, key_event, &key);
	if (rc != 0)
		return rc;
	if (key[0] == '\0') {
		free(key);
		return jm_err_set(p->err, JM_EINVAL,
		                  "config %s: line %d: empty key; keys are flag names (text, "
		                  "without \"--\")",
		                  p->path, config_line(key_event));
	}

	yaml_event_t event;
	rc = config_next(p, &event);
	if (rc != 0) {
		free(key);
		return rc;
	}
	rc = config_check_no_anchor(p, &event);
	if (rc == 0) {
		switch (event.type) {
		case YAML_SCALAR_EVENT:
			rc = config_add_scalar(p, key, &event);
			break;
		case YAML_SEQUENCE_START_EVENT:
			rc = config_parse_sequence(p, key);
			break;
		case YAML_MAPPING_START_EVENT:
			rc = config_parse_pairs(p, key);
			break;
		default:
			rc = jm_err_set(
			    p->err, JM_EINVAL,
			    "config %s: line %d: \"%s\" has no value; " CONFIG_SHAPE_RULE, p->path,
			    config_line(&event), key);
			break;
		}
	}
	yaml_event_delete(&event);
	free(key);
	return rc;
}

/* Reads the one document: a mapping of settings, or nothing at all. */
static int config_parse_document(struct config_parse *p)
{
	yaml_event_t event;
	int rc = config_next(p, &event);
	if (rc != 0)
		return rc;
	rc = config_check_no_anchor(p, &event);
	if (rc == 0 && event.type == YAML_SCALAR_EVENT && event.data.scalar.length == 0 &&
	    event.data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		/* "---" alone or a comment-only document: as empty as an empty
		 * file, so it is read as one. */
	} else if (rc == 0 && event.type != YAML_MAPPING_START_EVENT) {
		rc = jm_err_set(p->err, JM_EINVAL,
		                "config %s: line %d: the top level is %s; a config file is a "
		                "mapping of flag names to values (name: value)",
		                p->path, config_line(&event), config_event_what(&event));
	} else if (rc == 0) {
		/* Ends at the mapping's end or the first error; libyaml always
		 * delivers one of them before the input runs out. */
		while (rc == 0) {
			yaml_event_t key_event;
			rc = config_next(p, &key_event);
			if (rc != 0)
				break;
			if (key_event.type == YAML_MAPPING_END_EVENT) {
				yaml_event_delete(&key_event);
				break;
			}
			rc = config_parse_setting(p, &key_event);
			yaml_event_delete(&key_event);
		}
	}
	yaml_event_delete(&event);
	if (rc != 0)
		return rc;

	rc = config_next(p, &event);
	if (rc != 0)
		return rc;
	/* libyaml emits only a document end here; anything else means our
	 * reading went out of step with the grammar. */
	bool in_step = event.type == YAML_DOCUMENT_END_EVENT;
	int line = config_line(&event);
	yaml_event_delete(&event);
	if (!in_step)
		return jm_err_set(p->err, JM_EINVAL, "config %s: line %d: unexpected YAML event",
		                  p->path, line);
	return 0;
}

/* Walks the stream: zero documents (an empty file) or exactly one. */
static int config_parse_stream(struct config_parse *p)
{
	yaml_event_t event;
	int rc = config_next(p, &event);
	if (rc != 0)
		return rc;
	yaml_event_delete(&event); /* STREAM-START */

	for (int documents = 0;; documents++) {
		rc = config_next(p, &event);
		if (rc != 0)
			return rc;
		if (event.type == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&event);
			return 0;
		}
		int line = config_line(&event);
		yaml_event_delete(&event); /* DOCUMENT-START */
		if (documents > 0)
			return jm_err_set(p->err, JM_EINVAL,
			                  "config %s: line %d: a second document; a config file "
			                  "holds one document",
			                  p->path, line);
		rc = config_parse_document(p);
		if (rc != 0)
			return rc;
	}
}

/* Reads the whole file, so that read errors are reported with errno's text
 * rather than libyaml's generic "input error". */
static int config_read_file(const char *path, char **out, size_t *out_len, struct jm_err *err)
{
	FILE *file = fopen(path, "rb");
	if (file == NULL)
		return jm_err_set(err, JM_EIO, "config %s: %s", path, strerror(errno));
	size_t cap = 4096;
	size_t len = 0;
	char *data = malloc(cap);
	int rc = 0;
	if (data == NULL) {
		rc = jm_err_set(err, JM_ENOMEM, "config %s: out of memory", path);
		goto fail_close;
	}
	for (;;) {
		if (len == cap) {
			if (cap >= CONFIG_FILE_MAX_BYTES) {
				rc = jm_err_set(err, JM_ETOOBIG,
				                "config %s: larger than %u bytes; a config file "
				                "holds flag settings only",
				                path, CONFIG_FILE_MAX_BYTES);
				goto fail_free_data;
			}
			char *bigger = realloc(data, cap * 2);
			if (bigger == NULL) {
				rc = jm_err_set(err, JM_ENOMEM, "config %s: out of memory", path);
				goto fail_free_data;
			}
			data = bigger;
			cap *= 2;
		}
		size_t got = fread(data + len, 1, cap - len, file);
		len += got;
		if (got == 0) {
			if (ferror(file)) {
				rc = jm_err_set(err, JM_EIO, "config %s: %s", path,
				                strerror(errno ? errno : EIO));
				goto fail_free_data;
			}
			break;
		}
	}
	fclose(file);
	*out = data;
	*out_len = len;
	return 0;

fail_free_data:
	free(data);
fail_close:
	fclose(file);
	return rc;
}

int jm_config_load(struct jm_config *cfg, const char *path, struct jm_err *err)
{
	*cfg = (struct jm_config){0};
	char *data = NULL;
	size_t len = 0;
	int rc = config_read_file(path, &data, &len, err);
	if (rc != 0)
		return rc;

	cfg->path = strdup(path);
	if (cfg->path == NULL) {
		free(data);
		return jm_err_set(err, JM_ENOMEM, "config %s: out of memory", path);
	}
	struct config_parse p = {.cfg = cfg, .path = path, .err = err};
	if (!yaml_parser_initialize(&p.parser)) {
		free(data);
		jm_config_fini(cfg);
		return jm_err_set(err, JM_ENOMEM, "config %s: out of memory", path);
	}
	yaml_parser_set_input_string(&p.parser, (const unsigned char *)data, len);
	rc = config_parse_stream(&p);
	yaml_parser_delete(&p.parser);
	free(data);
	if (rc != 0)
		jm_config_fini(cfg);
	return rc;
}

void jm_config_fini(struct jm_config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->entries_count; i++) {
		free(cfg->entries[i].key);
		free(cfg->entries[i].value);
	}
	free(cfg->entries);
	free(cfg->path);
	*cfg = (struct jm_config){0};
}
