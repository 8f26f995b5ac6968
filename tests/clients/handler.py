"""A --serve handler for the tests (jobmesh.serve from client/python)."""
import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "client", "python"))
import jobmesh  # noqa: E402


def echo(job):
    return {"pid": os.getpid(), "payload": job.payload, "attempt": job.attempt}


def sleep(job):
    job.progress(0, 2, f"pid {os.getpid()}")
    time.sleep((job.data or {}).get("ms", 1000) / 1000)
    job.progress(2, 2, "slept")
    return {"pid": os.getpid(), "slept": True}


async def async_echo(job):
    await asyncio.sleep(0)
    return f"async {job.payload} {os.getpid()}"


def die(job):
    os._exit(3)


def die_once(job):
    if job.attempt == 1:
        time.sleep(0.5)  # the jobs behind it are in flight by then
        os._exit(3)
    return {"pid": os.getpid(), "payload": job.payload, "attempt": job.attempt}


def fail(job):
    raise jobmesh.PermanentError("refused for good")


def hex_(job):
    return job.payload_bytes.hex()


def noop(job):
    return ""


# In the command, JOBMESH_TEST_SERVE_BATCH=0: the hello asks for job lines;
# JOBMESH_TEST_SERVE_PIPELINE=N: it asks for N jobs at a time.
jobmesh.serve({"echo": echo, "sleep": sleep, "async.echo": async_echo, "die": die,
               "fail": fail, "noop": noop, "hex": hex_, "die.once": die_once},
              batch=os.environ.get("JOBMESH_TEST_SERVE_BATCH", "1") != "0",
              **({"pipeline": int(os.environ["JOBMESH_TEST_SERVE_PIPELINE"])}
                 if "JOBMESH_TEST_SERVE_PIPELINE" in os.environ else {}))
