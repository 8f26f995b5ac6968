"""HTTPS through a real broker (--http with --tls-cert/--tls-key): a client
that trusts the CA gets answers, a plaintext HTTP client and one that
trusts another CA get none. Certificates (P-256) are made at test time
with openssl."""

import http.client
import os
import ssl
import subprocess
import tempfile
import unittest

from jmhttp import Broker

MAKE_CERTS = r"""set -e
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $1 2>/dev/null; }
ca() { key $1.key; openssl req -x509 -new -key $1.key -out $1.pem -days 2 -subj /CN=$1; }
ca ca; ca other-ca
key server.key
openssl req -new -key server.key -out server.csr -subj /CN=127.0.0.1
printf 'subjectAltName=DNS:127.0.0.1,IP:127.0.0.1\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
  -days 2 -extfile server.ext 2>/dev/null
"""


class HttpTls(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="jobmesh-http-tls-")
        subprocess.run(["/bin/sh", "-c", MAKE_CERTS], cwd=self.tmp, check=True, timeout=60)
        self.b = Broker(["--tls-cert", os.path.join(self.tmp, "server.pem"),
                         "--tls-key", os.path.join(self.tmp, "server.key")], tmp=self.tmp)
        self.b.owns_tmp = True  # removed with the broker

    def tearDown(self):
        self.assertIn(self.b.stop(), (0, None), "the broker must stop cleanly on SIGTERM")

    def https_get(self, ca, path):
        ctx = ssl.create_default_context(cafile=os.path.join(self.tmp, ca))
        conn = http.client.HTTPSConnection(self.b.host, self.b.port, context=ctx, timeout=10)
        try:
            conn.request("GET", path)
            res = conn.getresponse()
            return res.status, res.read()
        finally:
            conn.close()

    def test_https_answers_a_client_that_trusts_the_ca_and_no_other(self):
        self.assertTrue(self.b.url.startswith("https://127.0.0.1:"), self.b.url)
        self.assertEqual(self.https_get("ca.pem", "/healthz")[0], 200)
        status, body = self.https_get("ca.pem", "/v1/queues")
        self.assertEqual(status, 200, body)
        with self.assertRaises(ssl.SSLError):
            self.https_get("other-ca.pem", "/healthz")
        plain = http.client.HTTPConnection(self.b.host, self.b.port, timeout=5)
        try:
            with self.assertRaises((http.client.HTTPException, ConnectionError, OSError)):
                plain.request("GET", "/healthz")
                res = plain.getresponse()
                # A TLS server may answer plaintext with an alert or close;
                # it must never be an HTTP 200.
                self.assertNotEqual(res.status, 200)
                raise ConnectionError("no plaintext answer")
        finally:
            plain.close()


if __name__ == "__main__":
    unittest.main()
