/* Parked fetches indexed by (queue, job type) (broker/dispatch.c): a fetch
 * is a waiter of every queue it names, once per name and type it names
 * (none: the "" entry, any type), oldest first; an entry lives exactly
 * while some fetch waits on it. */
#include "jm_test.h"

#include "dispatch.h"

/* A fetch parked by test code: its request is never read by dispatch. */
static struct parked_fetch *park(struct dispatch *d, struct proto_fetch *fetch, proto_name *queues,
                                 uint32_t count)
{
	fetch->queues = queues;
	fetch->queues_count = count;
	struct parked_fetch *pf = dispatch_fetch_new(fetch);
	assert_non_null(pf);
	assert_jm_ok(dispatch_add(d, pf, fetch));
	return pf;
}

static struct dispatch_queue *queue_named(const struct dispatch *d, const char *name)
{
	for (struct dispatch_queue *dq = dispatch_queue_first(d); dq; dq = dispatch_queue_next(dq))
		if (strcmp(dq->name, name) == 0)
			return dq;
	return NULL;
}

static void test_fetch_waits_on_every_queue_it_names_oldest_first(void **state)
{
	(void)state;
	struct dispatch d;
	dispatch_init(&d);
	proto_name ab[2] = {"a", "b"}, b[1] = {"b"};
	struct proto_fetch f1 = {0}, f2 = {0};
	struct parked_fetch *first = park(&d, &f1, ab, 2);
	struct parked_fetch *second = park(&d, &f2, b, 1);
	assert_int_equal(d.queues_count, 2);
	assert_ptr_equal(dispatch_queue_oldest(queue_named(&d, "a")), first);
	assert_ptr_equal(dispatch_queue_oldest(queue_named(&d, "b")), first);
	assert_true(first->seq < second->seq);

	dispatch_remove(&d, first);
	dispatch_fetch_free(first);
	assert_null(queue_named(&d, "a")); /* nobody waits on it any more */
	assert_ptr_equal(dispatch_queue_oldest(queue_named(&d, "b")), second);
	assert_ptr_equal(dispatch_first(&d), second);
	dispatch_remove(&d, second);
	dispatch_fetch_free(second);
	assert_int_equal(d.queues_count, 0);
	assert_int_equal(d.parked_count, 0);
	assert_null(dispatch_queue_first(&d));
}

static void test_queue_named_twice_in_one_fetch_is_linked_once(void **state)
{
	(void)state;
	struct dispatch d;
	dispatch_init(&d);
	proto_name aa[3] = {"a", "b", "a"};
	struct proto_fetch f = {0};
	struct parked_fetch *pf = park(&d, &f, aa, 3);
	assert_int_equal(pf->links_count, 2);
	assert_int_equal(d.queues_count, 2);
	dispatch_remove(&d, pf);
	dispatch_fetch_free(pf);
	assert_null(dispatch_queue_first(&d));
}

static struct dispatch_queue *pair_named(const struct dispatch *d, const char *name,
                                         const char *type)
{
	for (struct dispatch_queue *dq = dispatch_queue_first(d); dq; dq = dispatch_queue_next(dq))
		if (strcmp(dq->name, name) == 0 && strcmp(dq->type, type) == 0)
			return dq;
	return NULL;
}

static void test_fetch_with_types_waits_on_each_queue_and_type_pair(void **state)
{
	(void)state;
	struct dispatch d;
	dispatch_init(&d);
	proto_name qs[2] = {"a", "b"}, types[3] = {"x", "y", "x"};
	struct proto_fetch typed = {.types = types, .types_count = 3}, any = {0};
	struct parked_fetch *t = park(&d, &typed, qs, 2);
	struct parked_fetch *u = park(&d, &any, qs, 1);
	/* (a,x) (a,y) (b,x) (b,y): x named twice is linked once per queue. */
	assert_int_equal(t->links_count, 4);
	assert_int_equal(u->links_count, 1);
	assert_int_equal(d.queues_count, 5);
	assert_ptr_equal(dispatch_queue_oldest(pair_named(&d, "b", "y")), t);
	assert_ptr_equal(dispatch_queue_oldest(pair_named(&d, "a", "")), u);
	assert_null(pair_named(&d, "b", ""));
	dispatch_remove(&d, t);
	dispatch_fetch_free(t);
	assert_null(pair_named(&d, "a", "x"));
	assert_int_equal(d.queues_count, 1);
	dispatch_remove(&d, u);
	dispatch_fetch_free(u);
	assert_int_equal(d.queues_count, 0);
	assert_null(d.by_key.buckets); /* nobody waits: no table */
}

static void test_find_slot_names_the_fetch_of_a_worker_slot(void **state)
{
	(void)state;
	struct dispatch d;
	dispatch_init(&d);
	struct worker w1 = {.parked_fetches = 1}, w2 = {.parked_fetches = 0};
	proto_name a[1] = {"a"};
	struct proto_fetch f = {0};
	struct parked_fetch *pf = park(&d, &f, a, 1);
	pf->worker = &w1;
	pf->slot = 3;
	assert_ptr_equal(dispatch_find_slot(&d, &w1, 3), pf);
	assert_null(dispatch_find_slot(&d, &w1, 2));
	assert_null(dispatch_find_slot(&d, &w2, 3));
	dispatch_remove(&d, pf);
	dispatch_fetch_free(pf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fetch_waits_on_every_queue_it_names_oldest_first),
	    cmocka_unit_test(test_queue_named_twice_in_one_fetch_is_linked_once),
	    cmocka_unit_test(test_find_slot_names_the_fetch_of_a_worker_slot),
	    cmocka_unit_test(test_fetch_with_types_waits_on_each_queue_and_type_pair),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
