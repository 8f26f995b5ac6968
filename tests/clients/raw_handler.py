"""A --serve handler written against the protocol itself (no library), for
the worker's side of the batched form: it says hello with "batch", appends
every line it reads to the file named by argv[1], and answers each "jobs"
line with one "results" line (the result of a job is "r" + its payload).
With argv[2] == "bad" the first process's first answer is a refused
results line (an id that is not one), so the jobs of it are never
answered; the processes started after it (the file is not empty) answer.
With argv[2] == "chatty" each answer comes after 300 progress lines, all
in one write (more lines than the worker decodes per wake-up)."""
import json
import os
import sys

record = open(sys.argv[1], "a")
bad = len(sys.argv) > 2 and sys.argv[2] == "bad" and record.tell() == 0
chatty = len(sys.argv) > 2 and sys.argv[2] == "chatty"
out = os.fdopen(1, "w")
out.write(json.dumps({"op": "hello", "pipeline": 32, "batch": True}) + "\n")
out.flush()
for line in sys.stdin:
    record.write(line)
    record.flush()
    msg = json.loads(line)
    if msg["op"] == "stop":
        break
    if msg["op"] == "jobs":
        ids = [item[0] for item in msg["jobs"]]
        if bad:
            answer = {"op": "results", "ids": ids + ["not-an-id"]}
            bad = False
        else:
            answer = {"op": "results", "ids": ids, "results": ["r" + item[4] for item in msg["jobs"]]}
    elif msg["op"] == "job":  # before the worker read the hello
        answer = {"op": "result", "id": msg["id"], "result": "r" + msg["payload"]}
    else:
        continue
    if chatty:
        first = answer["ids"][0] if "ids" in answer else answer["id"]
        out.write("".join(json.dumps({"op": "progress", "id": first, "done": i, "total": 300}) + "\n"
                          for i in range(300)))
    out.write(json.dumps(answer) + "\n")
    out.flush()
