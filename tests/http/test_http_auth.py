"""The HTTP API with --auth through a real broker: a missing or unknown
token is 401 (and counted in /metrics), a role or tenant violation 403,
/healthz and /readyz stay open, /metrics needs a viewer or admin token,
?access_token= works only on GET /v1/events, an event stream shows only
the token's queues, another tenant's batch is not found and not listed, and
a tenant's /metrics holds only its queues (whole-broker figures are an
admin's). Each refused request leaves the stored jobs as they were."""

import hashlib
import os
import unittest

from jmhttp import Broker, EventStream


def sha(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


AUTH = """tokens:
  - {name: shop-api, sha256: %s, role: producer, queues: ["shop.*"]}
  - {name: billing-api, sha256: %s, role: producer, queues: ["billing.*"]}
  - {name: shop-dash, sha256: %s, role: viewer, queues: ["shop.*"]}
  - {name: ops, sha256: %s, role: admin}
  - {name: billing-dash, sha256: %s, role: viewer, queues: ["billing.*"]}
""" % (sha("shop-secret"), sha("billing-secret"), sha("dash-secret"), sha("ops-secret"),
       sha("billing-dash-secret"))


def bearer(token):
    return {"Authorization": "Bearer " + token}


class HttpAuth(unittest.TestCase):
    def setUp(self):
        import tempfile
        self.tmp = tempfile.mkdtemp(prefix="jobmesh-http-auth-")
        path = os.path.join(self.tmp, "auth.yaml")
        with open(path, "w") as f:
            f.write(AUTH)
        self.b = Broker(["--auth", path], tmp=self.tmp)
        self.b.owns_tmp = True  # removed with the broker

    def tearDown(self):
        self.assertIn(self.b.stop(), (0, None), "the broker must stop cleanly on SIGTERM")

    def queues(self, token):
        status, _, body = self.b.get("/v1/queues", headers=bearer(token))
        self.assertEqual(status, 200, body)
        return {q["name"]: q["counts"]["pending"] for q in body["queues"]}

    def failures(self):
        status, _, text = self.b.get("/metrics", headers=bearer("ops-secret"))
        self.assertEqual(status, 200, text)
        line = [l for l in text.splitlines() if l.startswith("jobmesh_auth_failures_total ")]
        return int(float(line[0].split()[1]))

    def test_missing_and_unknown_tokens_are_401_and_counted(self):
        self.b.post("/v1/queues/shop.a/jobs", {"type": "t"}, headers=bearer("shop-secret"))
        before = self.queues("ops-secret")
        failures = self.failures()
        status, _, body = self.b.post("/v1/queues/shop.a/jobs", {"type": "t"})
        self.assertEqual(status, 401, body)
        self.assertEqual(body["error"]["code"], "unauthorized")
        self.assertIn("Authorization: Bearer TOKEN", body["error"]["message"])
        status, _, body = self.b.post("/v1/queues/shop.a/jobs", {"type": "t"},
                                      headers=bearer("shop-secret-x"))
        self.assertEqual(status, 401, body)
        self.assertIn("token not recognised", body["error"]["message"])
        status, _, body = self.b.get("/v1/queues?access_token=shop-secret")
        self.assertEqual(status, 401, body)
        self.assertIn("only on GET /v1/events", body["error"]["message"])
        self.assertEqual(self.failures(), failures + 3)
        self.assertEqual(self.queues("ops-secret"), before)

    def test_probes_stay_open_and_metrics_need_a_viewer(self):
        self.assertEqual(self.b.get("/healthz")[0], 200)
        self.assertEqual(self.b.get("/readyz")[0], 200)
        self.assertEqual(self.b.get("/metrics")[0], 401)
        status, _, body = self.b.get("/metrics", headers=bearer("shop-secret"))
        self.assertEqual(status, 403, body)
        self.assertEqual(body["error"]["code"], "forbidden")
        self.assertEqual(self.b.get("/metrics", headers=bearer("dash-secret"))[0], 200)

    def test_only_the_admin_removes_dead_letters(self):
        status, _, body = self.b.request("DELETE", "/v1/queues/shop.a/dead",
                                         headers=bearer("shop-secret"))
        self.assertEqual(status, 403, body)
        self.assertIn("not dead-remove", body["error"]["message"])
        status, _, body = self.b.request("DELETE", "/v1/queues/shop.a/dead",
                                         headers=bearer("ops-secret"))
        self.assertEqual((status, body["removed"]), (200, 0), body)

    def test_a_tenant_is_403_outside_its_queues_and_sees_only_its_own(self):
        self.assertEqual(self.b.post("/v1/queues/billing.x/jobs", {"type": "t"},
                                     headers=bearer("billing-secret"))[0], 202)
        self.assertEqual(self.b.post("/v1/queues/shop.a/jobs", {"type": "t"},
                                     headers=bearer("shop-secret"))[0], 202)
        before = self.queues("ops-secret")
        self.assertEqual(before, {"billing.x": 1, "shop.a": 1})
        status, _, body = self.b.post("/v1/queues/billing.x/jobs", {"type": "t"},
                                      headers=bearer("shop-secret"))
        self.assertEqual(status, 403, body)
        self.assertEqual(body["error"]["code"], "forbidden")
        status, _, body = self.b.post("/v1/queues/shop.a/jobs", {"type": "t"},
                                      headers=bearer("dash-secret"))
        self.assertEqual(status, 403, body)
        self.assertEqual(self.queues("shop-secret"), {"shop.a": 1})
        self.assertEqual(self.queues("dash-secret"), {"shop.a": 1})
        status, _, body = self.b.get("/v1/jobs", headers=bearer("shop-secret"))
        self.assertEqual(status, 200, body)
        self.assertEqual({j["queue"] for j in body["jobs"]}, {"shop.a"})
        self.assertEqual(self.queues("ops-secret"), before)

    def test_an_event_stream_shows_only_the_tokens_queues(self):
        refused = EventStream(self.b, query="access_token=nope")
        self.assertIn("401", refused.status_line)
        refused.close()
        s = EventStream(self.b, query="access_token=shop-secret")
        self.assertIn("200", s.status_line)
        self.b.post("/v1/queues/billing.x/jobs", {"type": "t"}, headers=bearer("billing-secret"))
        self.b.post("/v1/queues/shop.a/jobs", {"type": "t"}, headers=bearer("shop-secret"))
        ev = s.next_event()
        # The billing job came first; the shop stream's first event is shop's.
        self.assertEqual(ev["data"]["queue"], "shop.a", ev)
        s.close()

    def test_whoami_names_the_token_its_role_queues_and_what_it_may_do(self):
        self.assertEqual(self.b.get("/v1/whoami")[0], 401)
        status, _, me = self.b.get("/v1/whoami", headers=bearer("dash-secret"))
        self.assertEqual(status, 200, me)
        self.assertEqual((me["auth"], me["name"], me["role"], me["queues"]),
                         (True, "shop-dash", "viewer", ["shop.*"]))
        self.assertEqual(me["can"], {"submit": False, "cancel": False, "retry": False,
                                     "read_jobs": True, "read_workers": True,
                                     "queue_settings": False, "schedule_add": False,
                                     "schedule_remove": False, "dead_remove": False})
        me = self.b.get("/v1/whoami", headers=bearer("shop-secret"))[2]
        self.assertEqual((me["role"], me["can"]["retry"], me["can"]["read_workers"],
                          me["can"]["queue_settings"], me["can"]["schedule_add"],
                          me["can"]["schedule_remove"], me["can"]["dead_remove"]),
                         ("producer", True, False, False, True, False, False))
        me = self.b.get("/v1/whoami", headers=bearer("ops-secret"))[2]
        self.assertEqual((me["role"], me["queues"], all(me["can"].values())),
                         ("admin", ["*"], True))
        # What whoami says a viewer may not do, the broker refuses.
        self.b.post("/v1/queues/shop.a/jobs", {"type": "t"}, headers=bearer("shop-secret"))
        before = self.queues("ops-secret")
        status, _, body = self.b.post("/v1/queues/shop.a/dead/retry", headers=bearer("dash-secret"))
        self.assertEqual((status, body["error"]["code"]), (403, "forbidden"))
        status, _, body = self.b.post("/v1/queues/billing.x/dead/retry",
                                      headers=bearer("shop-secret"))
        self.assertEqual((status, body["error"]["code"]), (403, "forbidden"))
        self.assertEqual(self.queues("ops-secret"), before)

    def test_a_token_lists_only_the_schedules_of_its_queues(self):
        for name, queue in (("shop-tick", "shop.a"), ("billing-tick", "billing.x")):
            status, _, body = self.b.request("PUT", f"/v1/schedules/{name}",
                                             {"every": "1h", "queue": queue, "type": "t"},
                                             headers=bearer("ops-secret"))
            self.assertEqual(status, 200, body)
        names = lambda token: sorted(s["name"] for s in self.b.get(  # noqa: E731
            "/v1/schedules", headers=bearer(token))[2]["schedules"])
        self.assertEqual(names("dash-secret"), ["shop-tick"])
        self.assertEqual(names("ops-secret"), ["billing-tick", "shop-tick"])
        # A viewer may neither put nor remove one (403), nothing changes.
        status, _, body = self.b.request("DELETE", "/v1/schedules/shop-tick",
                                         headers=bearer("dash-secret"))
        self.assertEqual((status, body["error"]["code"]), (403, "forbidden"))
        status, _, body = self.b.request("PUT", "/v1/schedules/x",
                                         {"every": "1h", "queue": "shop.a", "type": "t"},
                                         headers=bearer("dash-secret"))
        self.assertEqual((status, body["error"]["code"]), (403, "forbidden"))
        self.assertEqual(names("ops-secret"), ["billing-tick", "shop-tick"])
        for name in ("shop-tick", "billing-tick"):
            self.b.request("DELETE", f"/v1/schedules/{name}", headers=bearer("ops-secret"))


    def batch(self, token, queue):
        status, _, body = self.b.post(
            "/v1/batches", {"jobs": [{"queue": queue, "type": "t"}, {"queue": queue, "type": "t"}]},
            headers=bearer(token))
        self.assertEqual(status, 202, body)
        return body["id"]

    def batch_ids(self, token):
        status, _, body = self.b.get("/v1/batches", headers=bearer(token))
        self.assertEqual(status, 200, body)
        return sorted(b["id"] for b in body["batches"])

    def test_a_tenant_neither_finds_nor_lists_another_tenants_batch(self):
        shop = self.batch("shop-secret", "shop.a")
        billing = self.batch("billing-secret", "billing.x")
        self.assertEqual(self.batch_ids("shop-secret"), [shop])
        self.assertEqual(self.batch_ids("dash-secret"), [shop])
        self.assertEqual(self.batch_ids("billing-secret"), [billing])
        self.assertEqual(self.batch_ids("ops-secret"), sorted([shop, billing]))
        status, _, body = self.b.get("/v1/batches/" + shop, headers=bearer("shop-secret"))
        self.assertEqual(status, 200, body)
        self.assertEqual(body["total"], 2)
        # Another tenant's batch answers exactly as an id that does not exist.
        status, _, hidden = self.b.get("/v1/batches/" + billing, headers=bearer("shop-secret"))
        self.assertEqual(status, 404, hidden)
        status, _, missing = self.b.get("/v1/batches/999999", headers=bearer("shop-secret"))
        self.assertEqual(status, 404, missing)
        self.assertEqual(hidden["error"]["code"], missing["error"]["code"])
        self.assertEqual(self.b.get("/v1/batches/" + billing,
                                    headers=bearer("ops-secret"))[0], 200)

    def test_a_tenants_metrics_hold_only_its_queues(self):
        self.assertEqual(self.b.post("/v1/queues/billing.x/jobs", {"type": "t"},
                                     headers=bearer("billing-secret"))[0], 202)
        self.assertEqual(self.b.post("/v1/queues/shop.a/jobs", {"type": "t"},
                                     headers=bearer("shop-secret"))[0], 202)

        def metrics(token):
            status, _, text = self.b.get("/metrics", headers=bearer(token))
            self.assertEqual(status, 200, text)
            return text

        shop = metrics("dash-secret")
        self.assertIn('jobmesh_queue_depth{queue="shop.a"} 1', shop)
        self.assertNotIn("billing", shop)
        # Whole-broker figures are an admin's: they count every tenant.
        for name in ("jobmesh_auth_failures_total", "jobmesh_events_total",
                     "jobmesh_jobs_submitted_total"):
            self.assertNotIn(name, shop)
        billing = metrics("billing-dash-secret")
        self.assertIn('jobmesh_queue_depth{queue="billing.x"} 1', billing)
        self.assertNotIn("shop.a", billing)
        ops = metrics("ops-secret")
        self.assertIn('jobmesh_queue_depth{queue="shop.a"} 1', ops)
        self.assertIn('jobmesh_queue_depth{queue="billing.x"} 1', ops)
        self.assertIn("jobmesh_auth_failures_total", ops)
        self.assertIn("jobmesh_jobs_submitted_total", ops)


if __name__ == "__main__":
    unittest.main()
