/* A broker process as the benchmarks watch it: started and timed until it
 * serves, and its memory read from /proc. Shared by bench_durability and
 * bench_memory. */
#ifndef JM_BENCH_BROKER_PROC_H
#define JM_BENCH_BROKER_PROC_H

#include <stdint.h>
#include <sys/types.h>

#include "harness.h"

/* The kB value of field ("VmHWM:", "VmRSS:") in /proc/<pid>/status, or 0. */
uint64_t broker_proc_status_kb(pid_t pid, const char *field);

/* CPU time (user + system, all threads) pid has used so far, in ms; on a
 * shared machine a steadier figure than wall time. 0 when unreadable. */
double broker_proc_cpu_ms(pid_t pid);
/* The same, as user and system (kernel) time. */
void broker_proc_cpu_split_ms(pid_t pid, double *user_ms, double *system_ms);

/* Spawns jobmesh-broker named name (its output in <name>.out) on data dir
 * data, listening on ipc://<h->dir>/broker.ipc, with extra args
 * (NULL-terminated, may be NULL), and waits up to ready_ms for its
 * "listening" line; sets h->broker_url. Returns the ms from spawn to that
 * line, or a negative value (after printing why) when the broker exited or
 * did not get there in time. */
double broker_proc_spawn_timed(struct harness *h, const char *name, const char *data,
                               const char *const *extra, int ready_ms, struct harness_proc *out);

#endif
