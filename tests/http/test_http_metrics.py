"""/metrics, /healthz and /readyz through a real broker and worker:
/metrics parsed by Prometheus's own text parser (Debian's
python3-prometheus-client), its numbers checked against the jobs run."""

import unittest

from prometheus_client.parser import text_string_to_metric_families

from jmhttp import Broker, wait_for


def samples(broker):
    status, headers, text = broker.get("/metrics")
    assert status == 200, status
    assert headers["content-type"].startswith("text/plain; version=0.0.4"), headers
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(m, name, **labels):
    return m[(name, tuple(sorted(labels.items())))]


class HttpMetrics(unittest.TestCase):
    def setUp(self):
        self.b = Broker()

    def tearDown(self):
        self.assertIn(self.b.stop(), (0, None), "the broker must stop cleanly on SIGTERM")

    def test_metrics_parse_and_count_the_jobs_that_ran(self):
        m = samples(self.b)
        self.assertEqual(value(m, "jobmesh_build_info", version="0.1.0"), 1)
        self.assertEqual(value(m, "jobmesh_jobs_submitted_total"), 0)
        # 6 complete, 2 fail for good, 1 fails once then completes, 1 waits.
        ok = self.b.post("/v1/queues/m/jobs", [{"type": "ok"} for _ in range(6)])[2]["ids"]
        bad = self.b.post("/v1/queues/m/jobs", [{"type": "bad"} for _ in range(2)])[2]["ids"]
        flaky = self.b.submit("m", {"type": "flaky", "max_attempts": 3})["id"]
        self.b.submit("idle", {"type": "t"})
        flag = self.b.tmp + "/flaky-ran"
        self.b.worker("m", ["ok=cat", "bad=exit 100",
                            "flaky=if [ -e %s ]; then echo fine; else touch %s; exit 1; fi"
                            % (flag, flag)], concurrency=2)
        for i in ok + bad + [flaky]:
            wait_for(lambda: self.b.job(i)["state"] in ("completed", "failed"), 60,
                     "job %s to finish" % i)
        m = samples(self.b)
        self.assertEqual(value(m, "jobmesh_jobs_submitted_total"), 10)
        self.assertEqual(value(m, "jobmesh_jobs_completed_total"), 7)
        self.assertEqual(value(m, "jobmesh_jobs_failed_total"), 2)
        self.assertEqual(value(m, "jobmesh_jobs_retried_total"), 1)
        self.assertEqual(value(m, "jobmesh_jobs", queue="m", state="completed"), 7)
        self.assertEqual(value(m, "jobmesh_jobs", queue="m", state="failed"), 2)
        self.assertEqual(value(m, "jobmesh_jobs", queue="idle", state="pending"), 1)
        self.assertEqual(value(m, "jobmesh_queue_depth", queue="idle"), 1)
        self.assertEqual(value(m, "jobmesh_queue_depth", queue="m"), 0)
        self.assertGreater(value(m, "jobmesh_queue_oldest_pending_age_seconds", queue="idle"), 0)
        self.assertEqual(value(m, "jobmesh_queue_oldest_pending_age_seconds", queue="m"), 0)
        # Ten runs (six ok, two bad, flaky twice) and ten leases.
        self.assertEqual(value(m, "jobmesh_job_run_seconds_count"), 10)
        self.assertEqual(value(m, "jobmesh_job_wait_seconds_count"), 10)
        self.assertEqual(value(m, "jobmesh_job_run_seconds_bucket", le="+Inf"), 10)
        self.assertGreater(value(m, "jobmesh_journal_syncs_total"), 0)
        self.assertGreaterEqual(value(m, "jobmesh_journal_records_synced_total"), 10 + 10 + 10)
        self.assertEqual(value(m, "jobmesh_journal_fsync_seconds_count"),
                         value(m, "jobmesh_journal_syncs_total"))
        self.assertEqual(value(m, "jobmesh_workers"), 1)
        self.assertEqual(value(m, "jobmesh_worker_slots"), 2)
        self.assertEqual(value(m, "jobmesh_worker_busy_slots"), 0)
        self.assertEqual(value(m, "jobmesh_event_subscribers"), 0)

    def test_healthz_and_readyz_answer_200_on_a_serving_broker(self):
        self.assertEqual(self.b.get("/healthz")[:1], (200,))
        status, _, body = self.b.get("/readyz")
        self.assertEqual((status, body), (200, {"status": "ready"}))
        self.assertEqual(self.b.request("POST", "/metrics")[0], 405)
        self.assertEqual(self.b.get("/metrics?x=1")[0], 400)


if __name__ == "__main__":
    unittest.main(verbosity=2)
