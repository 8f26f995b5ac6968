/* The guardian: takes exec handlers down with a worker that dies.
 *
 * A handler runs in its own process group (exec.h), so that a timeout or
 * an abandon can stop the whole command, grandchildren included. The price
 * is that nothing ties the group to the worker: a worker killed with
 * SIGKILL (OOM killer, `docker kill`, a node drain) would leave its
 * handlers running, and the broker would hand their jobs to another worker
 * while the orphans still send emails or charge cards.
 *
 * The guardian is one small process per worker, forked once (first use) and
 * connected to it by a socket pair. The worker tells it "group G started"
 * right after it spawned G's leader and "group G ended" before it reaps G's
 * leader (a zombie leader keeps G from being reused). When the worker's end
 * of the socket closes, which the kernel does however the worker dies, the
 * guardian sends SIGTERM to every group still listed, SIGKILL after the
 * largest kill grace among them, and exits. A worker that stops cleanly
 * has no group listed, so its guardian just exits.
 *
 * The guardian runs only async-signal-safe code (it is forked from a
 * threaded process) on memory reserved before the fork. It lives in a
 * process group of its own and ignores the catchable stop signals, so a
 * signal aimed at the worker or its group (a terminal's Ctrl-C, kill -9 of
 * the group) leaves it to clean up; it always exits once the worker is
 * gone. It holds none of the worker's descriptors but its socket (so it
 * never delays an EOF anyone waits for), and no handler inherits that
 * socket (close-on-exec, and exec closes every fd above 3). */
#ifndef JM_WORKER_GUARDIAN_H
#define JM_WORKER_GUARDIAN_H

#include <stdint.h>
#include <sys/types.h>

/* Groups one guardian tracks at once; past it a group goes unguarded (and
 * a warning says so). Far above any sane --concurrency. */
#define GUARDIAN_GROUPS_MAX 4096

/* Lists group (a handler's process group, its leader's pid) with the
 * grace between SIGTERM and SIGKILL it gets if the worker dies. Starts the
 * guardian on first use. Best effort: a guardian that cannot be started or
 * reached is logged once and the handler runs unguarded. */
void guardian_watch(pid_t group, uint32_t kill_grace_ms);
/* Unlists group; call before reaping its leader. */
void guardian_forget(pid_t group);

#endif
