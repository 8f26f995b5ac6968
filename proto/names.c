/* Names: the naming rule for queues, types and workers, and the printable
 * names of states, message types. */
#include "message.h"

/* The characters a name may hold (A-Z a-z 0-9 . _ -), as a table: a
 * submit checks its queue and type names when decoded and again in the
 * JOB record before it is journaled, four names per job. */
static const bool name_char_ok[256] = {
    ['-'] = true, ['.'] = true, ['_'] = true, ['0'] = true, ['1'] = true, ['2'] = true,
    ['3'] = true, ['4'] = true, ['5'] = true, ['6'] = true, ['7'] = true, ['8'] = true,
    ['9'] = true, ['A'] = true, ['B'] = true, ['C'] = true, ['D'] = true, ['E'] = true,
    ['F'] = true, ['G'] = true, ['H'] = true, ['I'] = true, ['J'] = true, ['K'] = true,
    ['L'] = true, ['M'] = true, ['N'] = true, ['O'] = true, ['P'] = true, ['Q'] = true,
    ['R'] = true, ['S'] = true, ['T'] = true, ['U'] = true, ['V'] = true, ['W'] = true,
    ['X'] = true, ['Y'] = true, ['Z'] = true, ['a'] = true, ['b'] = true, ['c'] = true,
    ['d'] = true, ['e'] = true, ['f'] = true, ['g'] = true, ['h'] = true, ['i'] = true,
    ['j'] = true, ['k'] = true, ['l'] = true, ['m'] = true, ['n'] = true, ['o'] = true,
    ['p'] = true, ['q'] = true, ['r'] = true, ['s'] = true, ['t'] = true, ['u'] = true,
    ['v'] = true, ['w'] = true, ['x'] = true, ['y'] = true, ['z'] = true,
};

bool proto_name_is_valid(const char *name, size_t len)
{
	if (len == 0 || len > PROTO_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!name_char_ok[(unsigned char)name[i]])
			return false;
	return true;
}

const char *proto_state_name(int state)
{
	switch (state) {
	case PROTO_STATE_PENDING:
		return "pending";
	case PROTO_STATE_DELAYED:
		return "delayed";
	case PROTO_STATE_ACTIVE:
		return "active";
	case PROTO_STATE_COMPLETED:
		return "completed";
	case PROTO_STATE_FAILED:
		return "failed";
	case PROTO_STATE_CANCELLED:
		return "cancelled";
	default:
		return "unknown";
	}
}

const char *proto_type_name(int type)
{
	static const char *const names[] = {
	    [PROTO_ERROR] = "error",
	    [PROTO_SUBMIT] = "submit",
	    [PROTO_SUBMITTED] = "submitted",
	    [PROTO_FETCH] = "fetch",
	    [PROTO_JOBS] = "jobs",
	    [6] = "ack",  /* version 1 only: replaced by settle */
	    [7] = "fail", /* version 1 only: replaced by settle */
	    [PROTO_SETTLED] = "settled",
	    [PROTO_STATUS] = "status",
	    [PROTO_RESULT] = "result",
	    [PROTO_WAIT] = "wait",
	    [PROTO_JOB] = "job",
	    [PROTO_STATS] = "stats",
	    [PROTO_STATS_REPLY] = "stats-reply",
	    [PROTO_HEARTBEAT] = "heartbeat",
	    [PROTO_HEARTBEAT_REPLY] = "heartbeat-reply",
	    [PROTO_CANCEL] = "cancel",
	    [PROTO_WORKERS] = "workers",
	    [PROTO_WORKERS_REPLY] = "workers-reply",
	    [PROTO_PROGRESS] = "progress",
	    [PROTO_BATCH_STATUS] = "batch-status",
	    [PROTO_BATCH] = "batch",
	    [PROTO_BATCHES] = "batches",
	    [PROTO_BATCHES_REPLY] = "batches-reply",
	    [PROTO_HELLO] = "hello",
	    [PROTO_HELLO_REPLY] = "hello-reply",
	    [PROTO_DEAD_LIST] = "dead-list",
	    [PROTO_JOB_LIST] = "job-list",
	    [PROTO_REVIVE] = "revive",
	    [PROTO_REVIVED] = "revived",
	    [PROTO_EVENT] = "event",
	    [PROTO_JOB_QUERY] = "job-query",
	    [PROTO_SETTLE] = "settle",
	    [PROTO_SCHEDULE_PUT] = "schedule-put",
	    [PROTO_SCHEDULE_DELETE] = "schedule-delete",
	    [PROTO_SCHEDULE_LIST] = "schedule-list",
	    [PROTO_SCHEDULES] = "schedules",
	    [PROTO_QUEUE_SET] = "queue-set",
	    [PROTO_QUEUE_SETTINGS] = "queue-settings",
	    [PROTO_DEAD_REMOVE] = "dead-remove",
	    [PROTO_SUBMIT_WAIT] = "submit-wait",
	};
	if (type <= 0 || type > PROTO_TYPE_MAX_ || names[type] == NULL)
		return "unknown";
	return names[type];
}
