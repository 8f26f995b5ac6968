"""The worker side: jobmesh-worker --serve report.build='python3 handler.py'
keeps this interpreter (and anything it opened) warm between jobs."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                                "client", "python"))
import jobmesh  # noqa: E402

STEP_S = float(os.environ.get("EXAMPLE_STEP_MS", "50")) / 1000


def build(job):
    pages = (job.data or {}).get("pages")
    if not isinstance(pages, int) or pages < 1:
        raise jobmesh.PermanentError("pages must be a whole number >= 1")
    for page in range(pages):
        job.progress(page, pages, f"page {page + 1}")
        time.sleep(STEP_S)
    job.progress(pages, pages, "done")
    return {"pages": pages, "by": os.getpid()}


jobmesh.serve({"report.build": build})
