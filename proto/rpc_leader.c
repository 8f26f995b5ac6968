/* A client's list of brokers, and following the leader among them (see
 * rpc_internal.h; README, "High availability").
 *
 * With --etcd, one broker leads and the others refuse every request with
 * JM_ENOTLEADER, nothing done, and a text whose last word is the leader's
 * client URL. The client dials that URL and sends the request again within
 * its deadline. When the broker dialled is down (a call failed with no
 * connection open), the next call dials the next broker of the list: after
 * a failover the old leader is gone and the standby names the new one.
 *
 * One dialer at a time, replaced under dial_lock: an NNG REQ socket spreads
 * requests over all its pipes, and only the leader's may be used. */
#include "rpc_internal.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"

#define RPC_DOWN_MS 3000 /* a broker that did not connect is not followed back for this long */

void rpc_urls_free(struct rpc *rpc)
{
	for (unsigned i = 0; i < rpc->urls_count; i++)
		free(rpc->urls[i]);
	rpc->urls_count = 0;
}

int rpc_urls_parse(struct rpc *rpc, const char *list, struct jm_err *err)
{
	const char *p = list;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == 0) {
			rpc_urls_free(rpc);
			return jm_err_set(err, JM_EINVAL,
			                  "broker list \"%s\": an empty address; write URL or "
			                  "URL1,URL2,... (tcp://HOST:PORT, ipc:///PATH)",
			                  list);
		}
		if (rpc->urls_count == RPC_URLS_MAX / 2) {
			rpc_urls_free(rpc);
			return jm_err_set(err, JM_EINVAL,
			                  "broker list \"%s\": at most %d addresses", list,
			                  RPC_URLS_MAX / 2);
		}
		char *url = strndup(p, len);
		if (url == NULL) {
			rpc_urls_free(rpc);
			return jm_err_set(err, JM_ENOMEM, "broker list: out of memory");
		}
		rpc->urls[rpc->urls_count++] = url;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	atomic_store(&rpc->url, rpc->urls[0]);
	return 0;
}

/* Under dial_lock: dials url (one of rpc->urls) instead. Only the new
 * dialer's connections count as open (rpc->dialer_id, rpc.c's pipe
 * callbacks): the old one's may still be closing. */
static void redial_to(struct rpc *rpc, const char *url)
{
	/* The close takes the old connections out of the REQ socket before
	 * the URL changes, so a request that reads the new URL cannot go out
	 * on an old connection (rpc_pool.c attributes a cut to the URL it
	 * read). Going back to the standby that refused, it is one no more. */
	atomic_fetch_add(&rpc->pipes_lost, 1); /* its requests are cut too */
	nng_dialer_close(rpc->dialer);
	if (atomic_load(&rpc->refused_url) == url)
		atomic_store(&rpc->refused_url, NULL);
	atomic_store(&rpc->url, url);
	(void)rpc_dial(rpc); /* a failure stays a failure of later calls */
}

/* Under dial_lock: the list's entry equal to url, added if new (the list
 * keeps half its room for leaders named); NULL when full. */
static const char *url_entry(struct rpc *rpc, const char *url, size_t len)
{
	for (unsigned i = 0; i < rpc->urls_count; i++)
		if (strlen(rpc->urls[i]) == len && strncmp(rpc->urls[i], url, len) == 0)
			return rpc->urls[i];
	if (rpc->urls_count == RPC_URLS_MAX)
		return NULL;
	char *copy = strndup(url, len);
	if (copy)
		rpc->urls[rpc->urls_count++] = copy;
	return copy;
}

/* Under dial_lock: the index of url in the list. */
static unsigned entry_index(const struct rpc *rpc, const char *url)
{
	for (unsigned i = 0; i < rpc->urls_count; i++)
		if (rpc->urls[i] == url)
			return i;
	return 0;
}

/* Under dial_lock: the entry after the one dialled now. */
static const char *next_entry(struct rpc *rpc)
{
	const char *now = atomic_load(&rpc->url);
	for (unsigned i = 0; i < rpc->urls_count; i++)
		if (rpc->urls[i] == now)
			return rpc->urls[(i + 1) % rpc->urls_count];
	return rpc->urls[0];
}

void rpc_follow_leader(struct rpc *rpc, const char *refusal)
{
	/* "... the leader is NAME at URL": the URL is the last word. */
	const char *at = strstr(refusal, " the leader is ");
	const char *url = at ? strrchr(refusal, ' ') : NULL;
	size_t len = url ? strlen(url + 1) : 0;
	pthread_mutex_lock(&rpc->dial_lock);
	const char *target =
	    len > 0 && strstr(url + 1, "://") ? url_entry(rpc, url + 1, len) : NULL;
	if (target == NULL)
		target = next_entry(rpc);
	if (target != atomic_load(&rpc->url)) {
		atomic_store(&rpc->refused_url, atomic_load(&rpc->url));
		redial_to(rpc, target);
	}
	pthread_mutex_unlock(&rpc->dial_lock);
}

void rpc_dial_after_timeout(struct rpc *rpc)
{
	/* Seen during failovers: calls hung on a socket that still counted a
	 * connection, so waiting for "none open" kept them there. A broker
	 * that leads answers well within a call's timeout (parks are shorter),
	 * so one that did not is passed over; a standby would name it again. */
	pthread_mutex_lock(&rpc->dial_lock);
	redial_to(rpc, next_entry(rpc));
	pthread_mutex_unlock(&rpc->dial_lock);
}

void rpc_dial_next(struct rpc *rpc)
{
	pthread_mutex_lock(&rpc->dial_lock);
	/* <= 0: a pipe refused before it was added is removed all the same */
	if (!rpc_is_connected(rpc)) {
		rpc->urls_down_until_us[entry_index(rpc, atomic_load(&rpc->url))] =
		    jm_mono_us() + RPC_DOWN_MS * 1000u;
		redial_to(rpc, next_entry(rpc));
	}
	pthread_mutex_unlock(&rpc->dial_lock);
}

bool rpc_has_list(struct rpc *rpc)
{
	pthread_mutex_lock(&rpc->dial_lock);
	bool list = rpc->urls_count > 1;
	pthread_mutex_unlock(&rpc->dial_lock);
	return list;
}
