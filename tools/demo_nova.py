"""The project's main job: boot a server through the real nova services with the QMP driver.

nova's API, conductor, scheduler and a placement fixture run in this process (nova's own
functional framework, native-threads mode), nova-compute with ``compute_driver =
qmp.QMPDriver`` runs the project's tiny test guest under QEMU (TCG). The demo boots a
server, prints its status and the guest's console output as the API returns them, stops,
starts and deletes it, and checks nothing is left behind.
"""
import os
import sys
import time
import unittest

os.environ.setdefault("OS_NOVA_DISABLE_EVENTLET_PATCHING", "1")
from tests.functional.nova_qmp import base  # noqa: E402,I001  (patching first)

from nova_common import instance_dir  # noqa: E402

OUT = sys.__stdout__


def say(text):
    OUT.write(text + "\n")
    OUT.flush()


class Demo(base.QMPServerTestBase):
    def test_demo(self):
        say("nova services up; compute driver: %s"
            % type(self.compute.manager.driver).__name__)
        t0 = time.monotonic()
        server = self.boot("qcow2")
        say("server %s: %s on host %s after %.1f s" % (
            server["id"], server["status"], server["OS-EXT-SRV-ATTR:host"],
            time.monotonic() - t0))
        out = self.wait_console(server, self.guest.marker("ready"))
        say("guest userspace ready after %.1f s; console output from the API:"
            % (time.monotonic() - t0))
        say("-" * 72)
        say(out.replace("\x1b[6n", "").replace("[6n", "").rstrip())
        say("-" * 72)
        server = self._stop_server(server)
        say("stopped: %s" % server["status"])
        server = self._start_server(server)
        say("started: %s" % server["status"])
        self._delete_server(server)
        self.assertEqual([], instance_dir.list_uuids(self.instances))
        say("deleted; no instance, process or file left")


if __name__ == "__main__":
    result = unittest.TextTestRunner(stream=sys.__stderr__, verbosity=0).run(
        unittest.defaultTestLoader.loadTestsFromTestCase(Demo))
    say("demo %s" % ("done" if result.wasSuccessful() else "FAILED"))
    sys.exit(0 if result.wasSuccessful() else 1)
