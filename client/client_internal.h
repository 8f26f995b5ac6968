/* What the SDK's files share (client.c, batch.c, workers.c, dead.c,
 * subscribe.c, submit_async.c); not part of the public API.
 *
 * struct jm_client is defined here so each concept's file can reach the rpc
 * and the cached events address; only client.c creates and frees one. */
#ifndef JM_CLIENT_INTERNAL_H
#define JM_CLIENT_INTERNAL_H

#include <jobmesh/client.h>

#include <pthread.h>
#include <stdatomic.h>

#include "message.h"
#include "rpc.h"

/* What a SUBMIT may carry besides payloads: names, numbers and msgpack
 * headers of one job spec stay well under this, so a message whose
 * payloads plus this per job fit PROTO_MESSAGE_MAX is never refused for
 * size by the broker's receive limit. */
#define CLIENT_JOB_OVERHEAD_BYTES 256u
#define CLIENT_MESSAGE_OVERHEAD_BYTES 1024u

#define CLIENT_EVENTS_URLS_RETIRED 16

struct jm_client {
	struct rpc *rpc;
	char *url; /* resolved, for messages */
	_Atomic uint32_t timeout_ms;
	pthread_mutex_t hello_lock; /* guards events_url */
	char *events_url;           /* from HELLO, asked once; NULL until then */
	/* Earlier events_url values, replaced when a subscription found a new
	 * leader's: jm_client_events_url's answer lives until jm_client_close. */
	char *events_url_retired[CLIENT_EVENTS_URLS_RETIRED];
	unsigned events_url_retired_count;
	struct jm_tls tls; /* for the events socket; strings owned */
};

/* Records the thread's last error ("<op>: <why>") and returns code. */
int client_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The thread's last error text, for wrapping it in more context. */
const char *client_last_error_text(void);

/* Sends req and checks the reply's type is want. On failure the thread's
 * last error reads "<op>: <why>" and reply needs no fini. */
int client_call(struct jm_client *client, const char *op, const struct proto_msg *req,
                enum proto_type want, uint32_t timeout_ms, struct rpc_reply *reply);

/* Asks the broker (HELLO, following the leader) for its events address
 * now, within timeout_ms or until cancel fires; on success *url is a
 * malloc'd copy and the client's cached address is updated. 0 or a JM_E
 * code. For subscriptions that follow the leader (subscribe.c). */
int client_events_url_ask(struct jm_client *client, uint32_t timeout_ms, struct rpc_cancel *cancel,
                          char **url);
/* Whether the client was given a list of brokers (it follows a leader). */
bool client_has_broker_list(const struct jm_client *client);

/* The timeout for ordinary calls. */
uint32_t client_timeout(struct jm_client *client);

/* A fresh NUL-terminated copy of bytes (malloc'd), or NULL. */
char *client_dup_bytes(const struct proto_bytes *bytes);

/* Fills *out (zeroed) from job; JM_ENOMEM leaves owned fields for
 * jm_job_info_fini. */
int client_job_from_proto(const struct proto_job_info *job, jm_job_info *out);

/* Checks a job spec as the broker would; where prefixes the error text
 * ("job 3: "). 0 or a JM_E code with the thread's last error set. */
int client_check_spec(const jm_job_spec *job, const char *where);
/* Fills the wire form of job; out borrows job's strings and payload. */
void client_spec_to_proto(const jm_job_spec *job, struct proto_job_spec *out);
/* client_check_spec for jobs[0..count), each error prefixed "job I: ";
 * on success *message_bytes is about what one SUBMIT of them all takes. */
int client_check_specs(const jm_job_spec *jobs, size_t count, size_t *message_bytes);
/* The wire forms of jobs[0..count), calloc'd (the caller frees the array;
 * it borrows the jobs' strings and payloads); NULL when out of memory,
 * with the thread's last error set. */
struct proto_job_spec *client_specs_to_proto(const jm_job_spec *jobs, size_t count);

/* Checks a queue name for op ("dead-list: queue name ... is invalid"). */
int client_check_queue(const char *op, const char *queue);

#endif
