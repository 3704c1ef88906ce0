"""QMPDriver through the real nova services (nova's own functional framework: API,
conductor, scheduler, placement fixture, nova-compute with this driver), booting real
QEMU guests under TCG from the project's tiny test guest, uploaded as qcow2 and as raw.

Runs in nova's eventlet mode by default and in native-threads mode with
OS_NOVA_DISABLE_EVENTLET_PATCHING=1 (tox runs both).
"""
# nova's functional package applies (or poisons) eventlet patching: import it first
from nova.tests import functional as _nova_functional  # noqa: F401,I001  isort:skip
import os
import shutil
import signal
import sys
import tempfile
import time

import fixtures
from nova import context as nova_context
from nova.tests import fixtures as nova_fixtures
from nova.tests.functional import integrated_helpers

from nova_common import instance_dir
from nova_qmp import driver  # noqa: F401 - registers [qmp] before self.flags()
from nova_qmp import qemu
from tests.common import guest_images


class QemuReaper(fixtures.Fixture):
    """Stops, by their pidfiles, any QEMU a test left running (also after failures)."""

    def __init__(self, root):
        super().__init__()
        self.root = root

    def _setUp(self):
        self.addCleanup(self._reap)

    def _reap(self):
        for uuid in instance_dir.list_uuids(self.root):
            idir = instance_dir.InstanceDir(uuid, root=self.root)
            pid = qemu.read_pid(idir)
            if qemu.alive(pid, uuid):
                os.kill(pid, signal.SIGKILL)


class TestServerLifecycle(integrated_helpers._IntegratedTestBase):
    ADMIN_API = True
    CAST_AS_CALL = False
    microversion = "latest"

    def _setup_compute_service(self):
        # short: UNIX socket paths (QMP, VNC) must stay under 108 bytes
        self.instances = tempfile.mkdtemp(prefix="q", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.instances, True)
        self.flags(compute_driver="qmp.QMPDriver", instances_path=self.instances,
                   shutdown_timeout=5, reboot_timeout=5, force_config_drive=False)
        self.flags(accelerator="tcg", machine_type="pc", group="qmp")
        self.flags(api_paste_config=os.path.join(sys.prefix, "etc", "nova", "api-paste.ini"),
                   group="wsgi")
        self.useFixture(nova_fixtures.PrivsepFixture())
        self.useFixture(QemuReaper(self.instances))
        self.guest = guest_images.tiny_guest()
        self.images = {}
        for fmt, path in (("qcow2", self.guest.disk_qcow2), ("raw", self.guest.disk_raw)):
            with open(path, "rb") as f:
                self.images[fmt] = self.glance.create(
                    nova_context.get_admin_context(),
                    {"name": "tiny-" + fmt, "disk_format": fmt, "container_format": "bare",
                     "visibility": "public", "status": "active"}, data=f)["id"]
        return self._start_compute("compute")

    def boot(self, fmt="qcow2", **kw):
        server = self._build_server(image_uuid=self.images[fmt], networks="none", **kw)
        server = self.api.post_server({"server": server})
        return self._wait_for_state_change(server, "ACTIVE")

    def console(self, server):
        return self.api.post_server_action(server["id"], {"os-getConsoleOutput": {}}
                                           )["output"]

    def wait_console(self, server, text, timeout=120, since=0):
        deadline = time.monotonic() + timeout
        while True:
            out = self.console(server)
            if text in out[since:]:
                return out
            if time.monotonic() > deadline:
                self.fail("%r not in the console of %s:\n%s" % (text, server["id"], out))
            time.sleep(0.5)

    def qemu_pid(self, server):
        return qemu.read_pid(instance_dir.InstanceDir(server["id"], root=self.instances))

    def test_boot_qcow2_reach_userspace_stop_start_reboot_pause_delete(self):
        server = self.boot("qcow2")
        self.wait_console(server, self.guest.marker("ready"))
        pid = self.qemu_pid(server)
        self.assertTrue(qemu.alive(pid, server["id"]))

        server = self._stop_server(server)
        self.assertFalse(qemu.alive(pid, server["id"]))
        server = self._start_server(server)
        self.assertTrue(qemu.alive(self.qemu_pid(server), server["id"]))

        self.api.post_server_action(server["id"], {"pause": None})
        server = self._wait_for_state_change(server, "PAUSED")
        self.api.post_server_action(server["id"], {"unpause": None})
        server = self._wait_for_state_change(server, "ACTIVE")

        before = len(self.console(server))
        self._reboot_server(server, hard=True)
        self.wait_console(server, self.guest.marker("ready"), since=before)

        self._delete_server(server)
        self.assertEqual([], instance_dir.list_uuids(self.instances))
        self.assertFalse(os.path.exists(os.path.join(self.instances, server["id"])))

    def test_boot_raw_and_a_killed_qemu_shows_shutoff(self):
        server = self.boot("raw")
        self.wait_console(server, self.guest.marker("ready"))
        os.kill(self.qemu_pid(server), signal.SIGKILL)
        # the lost QMP connection is a lifecycle event: no periodic task needed
        self._wait_for_state_change(server, "SHUTOFF")
        self._delete_server(server)
        self.assertFalse(os.path.exists(os.path.join(self.instances, server["id"])))
