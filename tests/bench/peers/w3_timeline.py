"""Reads `perf script` output of tests/bench/peers/w3_timeline and prints
each step of a W3 round trip in microseconds from the producer's SUBMIT
sendmsg (median and 90th percentile over the rounds seen), the fdatasync
durations, and the slowest rounds. usage: w3_timeline.py TRACE BROKER_PID"""
import re
import statistics
import sys

# Sizes of the message bodies (a field added to SUBMIT or the job info
# moves them by a byte or two; each set holds the sizes seen so far).
SUBMIT_BODY, WAIT_BODY, SETTLE_BODY = {0x82, 0x83}, {0xF}, {0x2B}
SUBMIT_WAIT_BODY = {0x84, 0x85}  # one call a round (jm_client_submit_wait)
DELIVERY_BODY, SUBMITTED_BODY, INFO_BODY = {0x8D}, {0xE}, {0x39, 0x3A}

events = []
for line in open(sys.argv[1]):
    m = re.match(r"\s*(\d+)/(\d+)\s+([\d.]+):\s+syscalls:(\S+):\s*(.*)", line)
    if not m:
        continue
    fd = re.search(r"fd: (0x[0-9a-f]+)", m[5])
    value = int(m[5].split()[0], 16) if m[4].startswith("sys_exit") else None
    events.append((float(m[3]) * 1e6, int(m[1]), int(m[2]), m[4],
                   int(fd[1], 16) if fd else None, value))
broker = int(sys.argv[2])
driver = next(e[1] for e in events if e[1] != broker)

# The broker's producer and worker sockets: where it reads a SUBMIT, and
# where it sends deliveries (the first send after a SUBMIT that is not on
# the producer's socket).
rounds, cur, last_send = [], None, None
for t, pid, tid, name, fd, val in events:
    if pid == driver and tid == driver and name == "sys_enter_sendmsg":
        last_send = t
        continue
    if (pid == broker and name == "sys_exit_readv" and last_send and
            (val in SUBMIT_BODY or val in SUBMIT_WAIT_BODY)):
        if cur:
            rounds.append(cur)
        cur = {"t0": last_send}
    if cur is None:
        continue
    at = t - cur["t0"]
    steps = cur.setdefault("steps", [])
    if pid == broker:
        if name == "sys_exit_readv" and val in SUBMIT_BODY:
            steps.append(("broker reads the SUBMIT", at))
        elif name == "sys_exit_readv" and val in SUBMIT_WAIT_BODY:
            steps.append(("broker reads the SUBMIT_WAIT", at))
        elif name == "sys_exit_readv" and val in SETTLE_BODY:
            steps.append(("broker reads the SETTLE", at))
        elif name == "sys_exit_readv" and val in WAIT_BODY:
            steps.append(("broker reads the WAIT", at))
        elif name == "sys_enter_fdatasync":
            steps.append(("fdatasync starts", at))
        elif name == "sys_exit_fdatasync":
            steps.append(("fdatasync ends", at))
        elif name == "sys_enter_sendmsg":
            steps.append(("broker sendmsg fd %d" % fd, at))
    else:
        if name == "sys_exit_readv" and val in DELIVERY_BODY:
            steps.append(("worker reads the delivery", at))
        elif name == "sys_exit_readv" and val in SUBMITTED_BODY:
            steps.append(("producer reads SUBMITTED", at))
        elif name == "sys_exit_readv" and val in INFO_BODY:
            steps.append(("producer reads the wait's answer", at))
        elif name == "sys_enter_sendmsg" and tid != driver:
            steps.append(("worker sendmsg", at))
rounds = [r for r in rounds if any(s[0] == "producer reads the wait's answer" for s in r["steps"])]
if not rounds:
    sys.exit("w3_timeline: no complete round in the trace")

# The n-th occurrence of each step, in the order of a typical round.
order, table = [], {}
for r in rounds:
    seen = {}
    for name, at in r["steps"]:
        seen[name] = seen.get(name, 0) + 1
        key = "%s #%d" % (name, seen[name]) if seen[name] > 1 else name
        if key not in table:
            table[key] = []
            order.append(key)
        table[key].append(at)
print("rounds traced: %d (times in us from the producer's SUBMIT sendmsg)" % len(rounds))
rows = [(statistics.median(v), k, v) for k, v in table.items() if len(v) >= len(rounds) // 2]
for med, key, v in sorted(rows):
    print("  %-40s p50 %6.0f  p90 %6.0f  (%d rounds)" % (key, med, sorted(v)[len(v) * 9 // 10], len(v)))
syncs = []
for r in rounds:
    start = None
    for name, at in r["steps"]:
        if name == "fdatasync starts":
            start = at
        elif name == "fdatasync ends" and start is not None:
            syncs.append(at - start)
            start = None
if syncs:
    syncs.sort()
    print("fdatasync duration: p50 %.0f p90 %.0f p99 %.0f us (%d)" % (
        syncs[len(syncs) // 2], syncs[len(syncs) * 9 // 10], syncs[len(syncs) * 99 // 100], len(syncs)))
print("slowest rounds:")
done = lambda r: max(at for n, at in r["steps"] if n == "producer reads the wait's answer")
for r in sorted(rounds, key=done, reverse=True)[:5]:
    print("  %.0f us: " % done(r) + ", ".join("%s %.0f" % s for s in r["steps"]))
