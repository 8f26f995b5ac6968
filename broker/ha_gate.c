/* The HA gate (see ha_gate.h): an atomic core pointer read per request,
 * and the leader's address under a mutex, read only on refusals. */
#include "ha_gate.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ha_gate {
	_Atomic(struct core *) core;
	atomic_uint_fast64_t epoch;
	char node_name[HA_GATE_TEXT_MAX];
	pthread_mutex_t mu;
	/* Under mu. */
	char leader_name[HA_GATE_TEXT_MAX];
	char leader_url[HA_GATE_TEXT_MAX];
	char leader_http[HA_GATE_TEXT_MAX];
	char leader_repl[HA_GATE_TEXT_MAX]; /* its --replication-listen, or "" */
	bool stepped_down;
};

struct ha_gate *ha_gate_new(const char *node_name)
{
	struct ha_gate *gate = calloc(1, sizeof *gate);
	if (gate == NULL)
		return NULL;
	snprintf(gate->node_name, sizeof gate->node_name, "%s", node_name);
	atomic_init(&gate->core, NULL);
	atomic_init(&gate->epoch, 0);
	pthread_mutex_init(&gate->mu, NULL);
	return gate;
}

void ha_gate_free(struct ha_gate *gate)
{
	if (gate == NULL)
		return;
	pthread_mutex_destroy(&gate->mu);
	free(gate);
}

struct core *ha_gate_core(struct ha_gate *gate)
{
	return atomic_load_explicit(&gate->core, memory_order_acquire);
}

bool ha_gate_open(struct ha_gate *gate, struct core *core, uint64_t epoch)
{
	/* Under mu with ha_gate_close: a step-down during the replay wins. */
	pthread_mutex_lock(&gate->mu);
	bool open = !gate->stepped_down;
	if (open) {
		atomic_store(&gate->epoch, epoch);
		atomic_store_explicit(&gate->core, core, memory_order_release);
	}
	pthread_mutex_unlock(&gate->mu);
	return open;
}

void ha_gate_close(struct ha_gate *gate)
{
	pthread_mutex_lock(&gate->mu);
	gate->stepped_down = true;
	atomic_store_explicit(&gate->core, NULL, memory_order_release);
	atomic_store(&gate->epoch, 0);
	pthread_mutex_unlock(&gate->mu);
}

void ha_gate_set_leader(struct ha_gate *gate, const char *name, const char *client_url,
                        const char *http_url)
{
	pthread_mutex_lock(&gate->mu);
	snprintf(gate->leader_name, sizeof gate->leader_name, "%s", name);
	snprintf(gate->leader_url, sizeof gate->leader_url, "%s", client_url);
	snprintf(gate->leader_http, sizeof gate->leader_http, "%s", http_url);
	pthread_mutex_unlock(&gate->mu);
}

void ha_gate_refusal(struct ha_gate *gate, char *text, size_t size)
{
	pthread_mutex_lock(&gate->mu);
	const char *role =
	    gate->stepped_down ? "stepped down (it could not renew its etcd lease)" : "a standby";
	if (gate->leader_url[0] != '\0' && strcmp(gate->leader_name, gate->node_name) != 0)
		snprintf(text, size, "not the leader: broker %s is %s; the leader is %s at %s",
		         gate->node_name, role, gate->leader_name, gate->leader_url);
	else
		snprintf(text, size,
		         "not the leader: broker %s is %s and no broker leads now; retry in a "
		         "few seconds",
		         gate->node_name, role);
	pthread_mutex_unlock(&gate->mu);
}

void ha_gate_leader(struct ha_gate *gate, char *name, char *url, char *http, size_t size)
{
	pthread_mutex_lock(&gate->mu);
	bool other = gate->leader_url[0] != '\0' && strcmp(gate->leader_name, gate->node_name) != 0;
	snprintf(name, size, "%s", other ? gate->leader_name : "");
	snprintf(url, size, "%s", other ? gate->leader_url : "");
	snprintf(http, size, "%s", other ? gate->leader_http : "");
	pthread_mutex_unlock(&gate->mu);
}

void ha_gate_leader_url(struct ha_gate *gate, char *out, size_t size)
{
	pthread_mutex_lock(&gate->mu);
	snprintf(out, size, "%s", gate->leader_url);
	pthread_mutex_unlock(&gate->mu);
}

uint64_t ha_gate_epoch(struct ha_gate *gate)
{
	return atomic_load(&gate->epoch);
}

void ha_gate_set_leader_replication(struct ha_gate *gate, const char *url)
{
	pthread_mutex_lock(&gate->mu);
	snprintf(gate->leader_repl, sizeof gate->leader_repl, "%s", url);
	pthread_mutex_unlock(&gate->mu);
}

void ha_gate_leader_replication_url(struct ha_gate *gate, char *out, size_t size)
{
	pthread_mutex_lock(&gate->mu);
	snprintf(out, size, "%s", gate->leader_repl);
	pthread_mutex_unlock(&gate->mu);
}
