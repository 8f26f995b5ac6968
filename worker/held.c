/* The set of leases a worker holds (see held.h). A doubly linked list under
 * one mutex, and a hash of it by job id for lookups by key: it holds a few
 * entries per slot, or hundreds with --serve pipelining, and entries must
 * not move, because a running handler reads its abandon flag through a
 * pointer without taking the lock. */
#define _GNU_SOURCE
#include "held.h"

#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define HELD_BUCKETS_MIN 64u

void held_init(struct held_set *set)
{
	pthread_mutex_init(&set->lock, NULL);
	set->head = NULL;
	set->count = 0;
	set->buckets = NULL;
	set->buckets_count = 0;
}

static size_t held_bucket(const struct held_set *set, uint64_t job_id)
{
	return (size_t)((job_id * 0x9E3779B97F4A7C15ull) >> 32) & (set->buckets_count - 1);
}

/* Rebuilds the hash with `count` buckets from the list (under the lock);
 * on out of memory keeps the one there is (lookups stay right, only
 * slower). */
static void held_rehash_locked(struct held_set *set, size_t count)
{
	struct held_lease **buckets = calloc(count, sizeof *buckets);
	if (buckets == NULL)
		return;
	free(set->buckets);
	set->buckets = buckets;
	set->buckets_count = count;
	for (struct held_lease *entry = set->head; entry != NULL; entry = entry->next) {
		size_t b = held_bucket(set, entry->job_id);
		entry->bucket_next = buckets[b];
		buckets[b] = entry;
	}
}

static void held_link_locked(struct held_set *set, struct held_lease *entry)
{
	entry->prev = NULL;
	entry->next = set->head;
	if (set->head != NULL)
		set->head->prev = entry;
	set->head = entry;
	set->count++;
	if (set->count > 2 * set->buckets_count) {
		size_t count = set->buckets_count ? 2 * set->buckets_count : HELD_BUCKETS_MIN;
		held_rehash_locked(set, count); /* entry is on the list: hashed too */
		if (set->buckets_count >= count)
			return;
	}
	if (set->buckets != NULL) {
		size_t b = held_bucket(set, entry->job_id);
		entry->bucket_next = set->buckets[b];
		set->buckets[b] = entry;
	}
}

static void held_free_entry(struct held_lease *entry)
{
	if (entry->abandon_fd >= 0)
		close(entry->abandon_fd);
	free(entry);
}

void held_fini(struct held_set *set)
{
	struct held_lease *entry = set->head;
	while (entry != NULL) {
		struct held_lease *next = entry->next;
		held_free_entry(entry);
		entry = next;
	}
	set->head = NULL;
	set->count = 0;
	free(set->buckets);
	set->buckets = NULL;
	set->buckets_count = 0;
	pthread_mutex_destroy(&set->lock);
}

struct held_lease *held_add(struct held_set *set, uint64_t job_id, uint64_t lease)
{
	struct held_lease *entry = calloc(1, sizeof *entry);
	if (entry == NULL)
		return NULL;
	entry->job_id = job_id;
	entry->lease = lease;
	atomic_init(&entry->abandon, false);
	/* Made when a handler first asks for it (held_abandon_fd): most jobs
	 * never wait in poll(), and an eventfd made and closed per job cost a
	 * sixth of a --serve worker's CPU. */
	entry->abandon_fd = -1;
	pthread_mutex_lock(&set->lock);
	held_link_locked(set, entry);
	pthread_mutex_unlock(&set->lock);
	return entry;
}

static void held_unlink_locked(struct held_set *set, struct held_lease *entry)
{
	if (set->buckets != NULL) {
		struct held_lease **at = &set->buckets[held_bucket(set, entry->job_id)];
		while (*at != NULL && *at != entry)
			at = &(*at)->bucket_next;
		if (*at == entry)
			*at = entry->bucket_next;
	}
	if (entry->prev != NULL)
		entry->prev->next = entry->next;
	else
		set->head = entry->next;
	if (entry->next != NULL)
		entry->next->prev = entry->prev;
	set->count--;
}

void held_remove(struct held_set *set, struct held_lease *entry)
{
	if (entry == NULL)
		return;
	pthread_mutex_lock(&set->lock);
	held_unlink_locked(set, entry);
	pthread_mutex_unlock(&set->lock);
	held_free_entry(entry);
}

void held_remove_many(struct held_set *set, struct held_lease *const *entries, size_t count)
{
	pthread_mutex_lock(&set->lock);
	for (size_t i = 0; i < count; i++)
		if (entries[i] != NULL)
			held_unlink_locked(set, entries[i]);
	pthread_mutex_unlock(&set->lock);
	for (size_t i = 0; i < count; i++)
		if (entries[i] != NULL)
			held_free_entry(entries[i]);
}

bool held_claim(struct held_set *set, struct held_lease *entry)
{
	if (entry == NULL)
		return true;
	pthread_mutex_lock(&set->lock);
	bool first = !entry->claimed;
	entry->claimed = true;
	pthread_mutex_unlock(&set->lock);
	return first;
}

void held_set_settled(struct held_set *set, struct held_lease *entry)
{
	if (entry == NULL)
		return;
	pthread_mutex_lock(&set->lock);
	entry->settled = true;
	pthread_mutex_unlock(&set->lock);
}

static struct held_lease *held_find_locked(struct held_set *set, uint64_t job_id, uint64_t lease)
{
	if (set->buckets != NULL) {
		for (struct held_lease *entry = set->buckets[held_bucket(set, job_id)];
		     entry != NULL; entry = entry->bucket_next) {
			if (entry->job_id == job_id && entry->lease == lease)
				return entry;
		}
		return NULL;
	}
	for (struct held_lease *entry = set->head; entry != NULL; entry = entry->next) {
		if (entry->job_id == job_id && entry->lease == lease)
			return entry;
	}
	return NULL;
}

void held_set_settled_ref(struct held_set *set, uint64_t job_id, uint64_t lease)
{
	pthread_mutex_lock(&set->lock);
	struct held_lease *entry = held_find_locked(set, job_id, lease);
	if (entry != NULL)
		entry->settled = true;
	pthread_mutex_unlock(&set->lock);
}

/* Caller holds the lock. The eventfd is written once, when the flag turns. */
static void held_abandon_locked(struct held_lease *entry)
{
	if (atomic_exchange(&entry->abandon, true))
		return;
	if (entry->abandon_fd >= 0) {
		uint64_t one = 1;
		ssize_t put = write(entry->abandon_fd, &one, sizeof one);
		(void)put; /* an eventfd write of 1 cannot fail short of overflow */
	}
}

int held_abandon_fd(struct held_set *set, struct held_lease *entry)
{
	if (entry == NULL)
		return -1;
	pthread_mutex_lock(&set->lock);
	if (entry->abandon_fd < 0) {
		/* Without an eventfd the job still runs; only a handler waiting
		 * in poll() would see the abandon late (at its own timeout). */
		entry->abandon_fd =
		    eventfd(atomic_load(&entry->abandon) ? 1 : 0, EFD_CLOEXEC | EFD_NONBLOCK);
	}
	int fd = entry->abandon_fd;
	pthread_mutex_unlock(&set->lock);
	return fd;
}

bool held_mark_abandon(struct held_set *set, uint64_t job_id, uint64_t lease)
{
	pthread_mutex_lock(&set->lock);
	struct held_lease *entry = held_find_locked(set, job_id, lease);
	bool running = entry != NULL && !entry->claimed;
	if (entry != NULL)
		held_abandon_locked(entry);
	pthread_mutex_unlock(&set->lock);
	return running;
}

size_t held_abandon_and_claim_all(struct held_set *set, struct proto_lease_ref **out)
{
	*out = NULL;
	pthread_mutex_lock(&set->lock);
	struct proto_lease_ref *refs = NULL;
	if (set->count > 0)
		refs = calloc(set->count, sizeof *refs);
	size_t claimed = 0;
	for (struct held_lease *entry = set->head; entry != NULL; entry = entry->next) {
		held_abandon_locked(entry);
		if (refs == NULL || entry->claimed)
			continue;
		entry->claimed = true;
		refs[claimed].job_id = entry->job_id;
		refs[claimed].lease = entry->lease;
		claimed++;
	}
	pthread_mutex_unlock(&set->lock);
	if (claimed == 0) {
		free(refs);
		return 0;
	}
	*out = refs;
	return claimed;
}

size_t held_snapshot(struct held_set *set, struct proto_lease_ref **out)
{
	*out = NULL;
	pthread_mutex_lock(&set->lock);
	struct proto_lease_ref *refs = NULL;
	size_t used = 0;
	if (set->count > 0)
		refs = calloc(set->count, sizeof *refs);
	for (struct held_lease *entry = set->head; refs != NULL && entry != NULL;
	     entry = entry->next) {
		if (entry->settled)
			continue;
		refs[used].job_id = entry->job_id;
		refs[used].lease = entry->lease;
		used++;
	}
	pthread_mutex_unlock(&set->lock);
	if (used == 0) {
		free(refs);
		return 0;
	}
	*out = refs;
	return used;
}
