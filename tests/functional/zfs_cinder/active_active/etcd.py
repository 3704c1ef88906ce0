"""A real etcd (Debian's etcd-server) for one test: loopback only, random ports, a data
directory of its own; stopped by PID in cleanup."""
import json
import os
import subprocess
import time
import urllib.error
import urllib.request

import fixtures

from tests.common import process
from tests.common import zfsguest


class Etcd(fixtures.Fixture):
    def __init__(self, workdir):
        super().__init__()
        self.workdir = workdir

    def _setUp(self):
        self.client_port, peer_port = zfsguest.free_port(), zfsguest.free_port()
        self.url = "http://127.0.0.1:%d" % self.client_port
        data = os.path.join(self.workdir, "etcd-data")
        self.log = os.path.join(self.workdir, "etcd.log")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(  # noqa: S603 (fixed argv)
                ["etcd", "--name", "aa-test", "--data-dir", data,
                 "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                 "--listen-peer-urls", "http://127.0.0.1:%d" % peer_port,
                 "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % peer_port,
                 "--initial-cluster", "aa-test=http://127.0.0.1:%d" % peer_port],
                stdout=log, stderr=subprocess.STDOUT, preexec_fn=process.die_with_parent)
        self.addCleanup(process.stop, self.proc)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:  # noqa: S310
                    if json.load(r).get("health") == "true":
                        return
            except (OSError, ValueError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                with open(self.log) as f:
                    raise RuntimeError("etcd did not start:\n" + f.read()[-2000:])
            time.sleep(0.2)

    def backend_url(self, lock_timeout=30):
        """cinder's ``[coordination]backend_url``: tooz's etcd3gw driver; a lock of a
        process that died is free after ``lock_timeout`` seconds (its lease's TTL)."""
        return "etcd3+http://127.0.0.1:%d?lock_timeout=%d" % (self.client_port, lock_timeout)
