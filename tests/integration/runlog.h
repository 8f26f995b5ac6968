/* runs.log: the lines the job.sh handler scripts of test_worker_faults.c and
 * test_multihost.c append, one per event of one run of a job:
 *
 *   start <job id> <attempt> <worker> <handler process group>
 *   done <job id> <attempt> <worker>
 *
 * Readers here read the whole file each time; a line they cannot parse is
 * skipped. */
#ifndef JM_TESTS_RUNLOG_H
#define JM_TESTS_RUNLOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Lines of kind ("start" or "done") for job id (0: any) at attempt (0: any)
 * by worker (NULL: any); -1 if the file cannot be read. */
int runlog_count(const char *path, const char *kind, uint64_t id, unsigned attempt,
                 const char *worker);

/* The handler process groups of the start lines by worker (NULL: any), up
 * to max of them into groups; returns how many. */
size_t runlog_groups(const char *path, const char *worker, pid_t *groups, size_t max);

/* SIGKILL to every handler process group worker (NULL: any) started, so no
 * handler outlives a test. */
void runlog_kill_groups(const char *path, const char *worker);

#endif
