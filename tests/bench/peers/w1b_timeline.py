"""Reads `perf script` output of tests/bench/peers/w1b_timeline and prints
where a W1b call's time goes, in microseconds: each leg of a call's round
trip (median, 90th percentile and mean over the calls seen; the mean is
what sets the rate: calls in flight / mean round trip), the journal's syncs
(calls made durable per sync, their length, the wait between them, the
zero-fill syncs of preallocation) and how late each reply of a sync's
group left. usage: w1b_timeline.py TRACE BROKER_PID"""
import re
import statistics
import sys

REQUEST_MIN = 4096  # a SUBMIT of 100 jobs: ~12 KB, one readv

events = []
for line in open(sys.argv[1]):
    m = re.match(r"\s*(\d+)/(\d+)\s+([\d.]+):\s+syscalls:(\S+):\s*(.*)", line)
    if not m:
        continue
    value = int(m[5].split()[0], 16) if m[4].startswith("sys_exit") else None
    if value is not None and value >= 1 << 63:
        value -= 1 << 64  # -EAGAIN and the like
    events.append((float(m[3]) * 1e6, int(m[1]), int(m[2]), m[4], value))
broker = int(sys.argv[2])
if not events:
    sys.exit("w1b_timeline: no events recorded (perf needs root or perf_event_paranoid <= -1)")
span = events[-1][0] - events[0][0]

# The whole run is recorded: the n-th SUBMIT sent is the n-th read and the
# n-th answered (a reply may overtake another now and then, which moves
# single legs, not their mean). The driver's first request is a HELLO (and
# the broker's first send its answer), its last the count check; what the
# driver reads is an 8-byte length, then the body.
sent = [t for t, p, _, n, _ in events if p != broker and n == "sys_enter_sendmsg"][1:]
read = [t for t, p, _, n, v in events if p == broker and n == "sys_exit_readv" and v > REQUEST_MIN]
replied = [t for t, p, _, n, _ in events if p == broker and n == "sys_enter_sendmsg"][1:]
got = [t for t, p, _, n, v in events
       if p != broker and n == "sys_exit_readv" and v > 8][1:]
calls = min(len(read), len(sent), len(replied), len(got))


def legs(a, b):
    return [b[i] - a[i] for i in range(calls)]


def p(values):
    if not values:
        return "      -"
    v = sorted(values)
    return "%7.0f %7.0f %7.0f" % (statistics.median(v), v[int(len(v) * 0.9)],
                                  statistics.mean(v))


print("calls: %d read by the broker, %d replies received, in %.0f ms"
      % (len(read), len(got), span / 1000))
print("%-44s %7s %7s %7s" % ("leg of a call (us)", "p50", "p90", "mean"))
print("%-44s %s" % ("driver sends -> broker has read the SUBMIT", p(legs(sent, read))))
print("%-44s %s" % ("broker has read -> sends the reply", p(legs(read, replied))))
print("%-44s %s" % ("broker sends the reply -> driver has read it", p(legs(replied, got))))
print("%-44s %s" % ("round trip (driver sends -> has read)", p(legs(sent, got))))

# Syncs by thread: one whose thread wrote zeros (pwrite64) since its last
# sync is preallocation's (journal_prealloc.c); the others make records
# durable.
last, begun, data, zero = {}, {}, [], []
for t, pid, tid, name, v in events:
    if pid != broker:
        continue
    if name in ("sys_enter_pwrite64", "sys_enter_write"):
        last[tid] = name
    elif name == "sys_enter_fdatasync":
        begun[tid] = (t, last.get(tid) == "sys_enter_pwrite64")
        last[tid] = name
    elif name == "sys_exit_fdatasync" and tid in begun:
        start, zeros = begun.pop(tid)
        (zero if zeros else data).append((start, t))
data.sort()
gaps = [b[0] - a[1] for a, b in zip(data, data[1:]) if b[0] >= a[1]]
busy = sum(e - s for s, e in data + zero)
print("journal: %d record syncs, %.2f calls each; %d zero-fill syncs; disk syncing %.0f%% "
      "of the time, zero-fill %.0f%%" % (len(data), len(read) / max(len(data), 1), len(zero),
                                          100 * busy / span,
                                          100 * sum(e - s for s, e in zero) / span))
print("%-44s %s" % ("record fdatasync", p([e - s for s, e in data])))
print("%-44s %s" % ("zero-fill fdatasync", p([e - s for s, e in zero])))
print("%-44s %s" % ("one record sync's end -> the next's start", p(gaps)))

# The replies a sync released, in the order they left.
late, cur = {}, None
for t, pid, tid, name, v in events:
    if pid != broker:
        continue
    if name == "sys_exit_fdatasync":
        cur = [t, 0]
    elif name == "sys_enter_fdatasync":
        cur = None
    elif name == "sys_enter_sendmsg" and cur:
        late.setdefault(cur[1], []).append(t - cur[0])
        cur[1] += 1
for k in sorted(late)[:4]:
    print("%-44s %s" % ("reply %d of a sync's group leaves after it" % (k + 1), p(late[k])))
