/* The progress board (see progress.h): latest-value-wins storage of each
 * running job's progress, with the per-job send interval.
 *
 * The board is a short list (one entry per running handler that reported,
 * so at most the worker's concurrency); the sender scans it for the
 * earliest due value. Nothing here talks to the broker or blocks on
 * anything but the board's own lock and condition. */
#define _GNU_SOURCE
#include "progress.h"

#include <stddef.h>
#include <string.h>
#include <time.h>

#include <jobmesh/error.h>

#include "clock.h"

static uint64_t now_ms(void)
{
	return jm_mono_us() / 1000u;
}

void progress_board_init(struct progress_board *board)
{
	memset(board, 0, sizeof *board);
	pthread_mutex_init(&board->lock, NULL);
	jm_cond_init_monotonic(&board->cond);
}

void progress_board_fini(struct progress_board *board)
{
	pthread_cond_destroy(&board->cond);
	pthread_mutex_destroy(&board->lock);
}

void progress_entry_init(struct progress_entry *entry, uint64_t job_id, uint64_t lease)
{
	/* Not the message's 1 KiB: it is read only up to message_len, and this
	 * runs once per job. */
	memset(&entry->latest, 0, offsetof(struct progress_value, message));
	entry->latest.message[0] = '\0';
	entry->latest.job_id = job_id;
	entry->latest.lease = lease;
	entry->linked = entry->pending = entry->in_flight = entry->stale = entry->warned = false;
	entry->due_ms = 0;
	entry->prev = entry->next = NULL;
}

/* Cuts len back so that text[0..len) does not end inside a UTF-8 sequence. */
static size_t utf8_cut(const char *text, size_t len, size_t max)
{
	if (len <= max)
		return len;
	len = max;
	while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80)
		len--;
	return len;
}

/* Length of the valid UTF-8 sequence at text (len > 0 bytes left), or 0
 * when it is not one (overlong, surrogate, past U+10FFFF, cut short). */
static size_t utf8_sequence(const unsigned char *text, size_t len)
{
	unsigned char lead = text[0];
	size_t need;
	uint32_t point, least;
	if (lead < 0x80)
		return 1;
	if (lead >= 0xC2 && lead <= 0xDF) {
		need = 2, point = lead & 0x1Fu, least = 0x80;
	} else if (lead >= 0xE0 && lead <= 0xEF) {
		need = 3, point = lead & 0x0Fu, least = 0x800;
	} else if (lead >= 0xF0 && lead <= 0xF4) {
		need = 4, point = lead & 0x07u, least = 0x10000;
	} else {
		return 0;
	}
	if (len < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((text[i] & 0xC0) != 0x80)
			return 0;
		point = (point << 6) | (text[i] & 0x3Fu);
	}
	if (point < least || point > 0x10FFFF || (point >= 0xD800 && point <= 0xDFFF))
		return 0;
	return need;
}

/* Copies len bytes of text to dst as one line of valid UTF-8 of the same
 * length: control characters become spaces (a message is shown on one
 * line), bytes that are not UTF-8 become '?'. */
static void text_sanitize(char *dst, const char *text, size_t len)
{
	const unsigned char *src = (const unsigned char *)text;
	size_t i = 0;
	while (i < len) {
		size_t seq = utf8_sequence(src + i, len - i);
		if (seq == 0) {
			dst[i++] = '?';
		} else if (seq == 1) {
			dst[i] = src[i] < 0x20 || src[i] == 0x7F ? ' ' : (char)src[i];
			i++;
		} else {
			memcpy(dst + i, src + i, seq);
			i += seq;
		}
	}
}

static void board_link(struct progress_board *board, struct progress_entry *entry)
{
	entry->prev = NULL;
	entry->next = board->head;
	if (board->head != NULL)
		board->head->prev = entry;
	board->head = entry;
	entry->linked = true;
}

static void board_unlink(struct progress_board *board, struct progress_entry *entry)
{
	if (entry->prev != NULL)
		entry->prev->next = entry->next;
	else
		board->head = entry->next;
	if (entry->next != NULL)
		entry->next->prev = entry->prev;
	entry->prev = entry->next = NULL;
	entry->linked = false;
}

int progress_report(struct progress_board *board, struct progress_entry *entry, uint64_t done,
                    uint64_t total, const char *message, size_t len)
{
	if (total == 0 || done > total)
		return JM_EINVAL;
	if (message == NULL)
		len = 0;
	len = utf8_cut(message, len, PROTO_ERROR_TEXT_MAX);

	pthread_mutex_lock(&board->lock);
	if (entry->stale) {
		pthread_mutex_unlock(&board->lock);
		return JM_ESTALE;
	}
	entry->latest.done = done;
	entry->latest.total = total;
	if (len > 0)
		text_sanitize(entry->latest.message, message, len);
	entry->latest.message[len] = '\0';
	entry->latest.message_len = (uint32_t)len;
	bool wake = !entry->pending;
	entry->pending = true;
	if (!entry->linked)
		board_link(board, entry);
	/* A job that already had a value waiting is known to the sender; only
	 * a new waiting value can change when it must wake. */
	if (wake)
		pthread_cond_broadcast(&board->cond);
	pthread_mutex_unlock(&board->lock);
	return 0;
}

/* Under the lock. */
static bool take_locked(struct progress_board *board, uint64_t now, struct progress_value *out,
                        struct progress_entry **entry, uint64_t *wait_ms)
{
	struct progress_entry *best = NULL;
	for (struct progress_entry *e = board->head; e != NULL; e = e->next) {
		if (!e->pending || e->in_flight || e->stale)
			continue;
		if (best == NULL || e->due_ms < best->due_ms)
			best = e;
	}
	if (best == NULL || best->due_ms > now) {
		*wait_ms = best == NULL ? UINT64_MAX : best->due_ms - now;
		return false;
	}
	memcpy(out, &best->latest, offsetof(struct progress_value, message));
	memcpy(out->message, best->latest.message, best->latest.message_len + 1);
	best->pending = false;
	best->in_flight = true;
	best->due_ms = now + PROGRESS_INTERVAL_MS;
	*entry = best;
	return true;
}

bool progress_take(struct progress_board *board, uint64_t now, struct progress_value *out,
                   struct progress_entry **entry, uint64_t *wait_ms)
{
	pthread_mutex_lock(&board->lock);
	bool taken = take_locked(board, now, out, entry, wait_ms);
	pthread_mutex_unlock(&board->lock);
	return taken;
}

bool progress_take_wait(struct progress_board *board, struct progress_value *out,
                        struct progress_entry **entry)
{
	pthread_mutex_lock(&board->lock);
	bool taken = false;
	while (!board->closing) {
		uint64_t wait_ms = 0;
		taken = take_locked(board, now_ms(), out, entry, &wait_ms);
		if (taken)
			break;
		if (wait_ms == UINT64_MAX) {
			pthread_cond_wait(&board->cond, &board->lock);
			continue;
		}
		/* board->cond measures CLOCK_MONOTONIC (progress_board_init). */
		struct timespec until = jm_timespec_after_ms(CLOCK_MONOTONIC, wait_ms);
		pthread_cond_timedwait(&board->cond, &board->lock, &until);
	}
	pthread_mutex_unlock(&board->lock);
	return taken;
}

bool progress_sent(struct progress_board *board, struct progress_entry *entry,
                   enum progress_send_result result, uint64_t now)
{
	pthread_mutex_lock(&board->lock);
	bool first_refusal = false;
	entry->in_flight = false;
	switch (result) {
	case PROGRESS_SENT:
		break;
	case PROGRESS_REFUSED:
		first_refusal = !entry->warned;
		entry->warned = true;
		break;
	case PROGRESS_RETRY:
		/* latest is what was sent or newer: either way it goes next. */
		entry->pending = true;
		entry->due_ms = now + PROGRESS_RETRY_MS;
		break;
	case PROGRESS_STALE:
		first_refusal = !entry->warned;
		entry->warned = true;
		entry->stale = true;
		entry->pending = false;
		break;
	}
	/* progress_finish may be waiting for this send to end. */
	pthread_cond_broadcast(&board->cond);
	pthread_mutex_unlock(&board->lock);
	return first_refusal;
}

bool progress_finish(struct progress_board *board, struct progress_entry *entry,
                     struct progress_value *out)
{
	pthread_mutex_lock(&board->lock);
	while (entry->in_flight)
		pthread_cond_wait(&board->cond, &board->lock);
	bool unsent = entry->pending && !entry->stale;
	if (unsent) {
		memcpy(out, &entry->latest, offsetof(struct progress_value, message));
		memcpy(out->message, entry->latest.message, entry->latest.message_len + 1);
	}
	entry->pending = false;
	if (entry->linked)
		board_unlink(board, entry);
	pthread_mutex_unlock(&board->lock);
	return unsent;
}

bool progress_is_stale(struct progress_board *board, struct progress_entry *entry)
{
	pthread_mutex_lock(&board->lock);
	bool stale = entry->stale;
	pthread_mutex_unlock(&board->lock);
	return stale;
}

void progress_close(struct progress_board *board)
{
	pthread_mutex_lock(&board->lock);
	board->closing = true;
	pthread_cond_broadcast(&board->cond);
	pthread_mutex_unlock(&board->lock);
}
