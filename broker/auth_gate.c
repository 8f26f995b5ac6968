/* The live token table (see auth_gate.h). */
#include "auth_gate.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct auth_gate {
	pthread_mutex_t lock; /* guards table */
	struct auth_table *table;
	char *path;
	atomic_uint_fast64_t failures;
	atomic_uint_fast64_t generation; /* bumped by every reload that loads */
};

int auth_gate_open(struct auth_gate **out, const char *path, struct jm_err *err)
{
	struct auth_gate *g = calloc(1, sizeof *g);
	if (g == NULL || (g->path = strdup(path)) == NULL) {
		free(g);
		return jm_err_set(err, JM_ENOMEM, "auth file %s: out of memory", path);
	}
	int rc = auth_load(&g->table, path, err);
	if (rc != 0) {
		free(g->path);
		free(g);
		return rc;
	}
	pthread_mutex_init(&g->lock, NULL);
	atomic_init(&g->failures, 0);
	atomic_init(&g->generation, 1);
	*out = g;
	return 0;
}

void auth_gate_close(struct auth_gate *g)
{
	if (g == NULL)
		return;
	auth_free(g->table);
	pthread_mutex_destroy(&g->lock);
	free(g->path);
	free(g);
}

int auth_gate_reload(struct auth_gate *g, struct jm_err *err)
{
	struct auth_table *fresh;
	int rc = auth_load(&fresh, g->path, err);
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&g->lock);
	struct auth_table *old = g->table;
	g->table = fresh;
	atomic_fetch_add(&g->generation, 1);
	pthread_mutex_unlock(&g->lock);
	auth_free(old);
	return 0;
}

bool auth_gate_match(struct auth_gate *g, const void *token, size_t len, struct auth_identity *id)
{
	pthread_mutex_lock(&g->lock);
	bool found = auth_match(g->table, token, len, id);
	pthread_mutex_unlock(&g->lock);
	if (!found)
		atomic_fetch_add(&g->failures, 1);
	return found;
}

bool auth_gate_prove(struct auth_gate *g, const void *token, size_t len, struct auth_identity *id,
                     struct auth_proof *proof)
{
	jm_sha256(token, len, proof->digest);
	pthread_mutex_lock(&g->lock);
	proof->generation = atomic_load(&g->generation);
	bool found = auth_match_digest(g->table, proof->digest, id);
	pthread_mutex_unlock(&g->lock);
	if (!found)
		atomic_fetch_add(&g->failures, 1);
	return found;
}

bool auth_gate_recheck(struct auth_gate *g, struct auth_proof *proof, struct auth_identity *id)
{
	if (atomic_load(&g->generation) == proof->generation)
		return true;
	pthread_mutex_lock(&g->lock);
	proof->generation = atomic_load(&g->generation);
	bool found = auth_match_digest(g->table, proof->digest, id);
	pthread_mutex_unlock(&g->lock);
	if (!found)
		atomic_fetch_add(&g->failures, 1);
	return found;
}

void auth_gate_count_missing(struct auth_gate *g)
{
	atomic_fetch_add(&g->failures, 1);
}

uint64_t auth_gate_failures(const struct auth_gate *g)
{
	return g ? atomic_load(&((struct auth_gate *)g)->failures) : 0;
}

uint32_t auth_gate_tokens(struct auth_gate *g)
{
	pthread_mutex_lock(&g->lock);
	uint32_t n = g->table->count;
	pthread_mutex_unlock(&g->lock);
	return n;
}
