"""What the compute drivers' tests through nova's functional framework share: the
fixtures nova's harness needs around a real driver, a reaper of guest processes, and the
waits on a server's console and on uploaded snapshots."""
# nova's functional package applies (or poisons) eventlet patching: import it first
from nova.tests import functional as _nova_functional  # noqa: F401,I001  isort:skip
import os
import signal
import time

import fixtures

from nova_common import instance_dir
from nova_common import privsep as nova_common_privsep

# what cinder is told about this host: nova's harness forbids the host discovery behind
# os-brick's connector properties (/sys, network interfaces)
CONNECTOR = {"host": "compute", "ip": "127.0.0.1", "multipath": False,
             "platform": "x86_64", "os_type": "linux"}


def fix_connector_properties(test):
    test.useFixture(fixtures.MockPatch(
        "os_brick.initiator.connector.get_connector_properties",
        return_value=dict(CONNECTOR)))


def keep_uploaded_images(test):
    """nova's Glance fixture drops uploaded data: keep it, so snapshots can be booted."""
    glance = test.glance

    def update(_api, context, image_id, metadata, data=None, purge_props=False):
        if data is not None:
            glance._imagedata[image_id] = data.read()
        return glance.update(context, image_id, metadata, purge_props=purge_props)

    test.stub_out("nova.image.glance.API.update", update)


class GuestReaper(fixtures.Fixture):
    """Stops, by their pidfiles, any guest process (QEMU, a VMM) a test left running
    under ``root``, also after failures. ``read_pid(idir)`` and ``alive(pid, uuid)`` are
    the driver's own (its command-line match)."""

    def __init__(self, root, read_pid, alive):
        super().__init__()
        self.root, self.read_pid, self.alive = root, read_pid, alive

    def _setUp(self):
        self.addCleanup(self._reap)

    def _reap(self):
        for uuid in instance_dir.list_uuids(self.root):
            pid = self.read_pid(instance_dir.InstanceDir(uuid, root=self.root))
            if self.alive(pid, uuid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except PermissionError:       # a guest uid's, and this is not root
                    nova_common_privsep.signal_guest(uuid, signal.SIGKILL)


def file_volume(test, volume_id, path, size):
    """A sparse file of ``size`` bytes at ``path`` that nova's cinder fixture
    (``test.cinder``) gives as volume ``volume_id``'s ``local`` connection (os-brick's
    local connector); returns ``path``."""
    with open(path, "wb") as f:
        f.truncate(size)
    test.cinder.VOLUME_CONNECTION_INFO = dict(test.cinder.VOLUME_CONNECTION_INFO, **{
        volume_id: {"driver_volume_type": "local", "data": {"device_path": path}}})
    return path


class ServerWaits:
    """Waits of a test case on ``self.api`` and ``self.glance`` (nova's integrated test
    base), sized for a loaded 2-core machine."""

    POLL = 0.5

    def _wait_for_state_change(self, server, expected_status, max_retries=240, **kw):
        # nova's default (10 polls) is too short for a spawn on a loaded 2-core machine
        # (image fetch, privileged launch, the guest process started)
        return super()._wait_for_state_change(server, expected_status,
                                              max_retries=max_retries, **kw)

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
            time.sleep(self.POLL)

    def _wait_for_image(self, name, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for image in self.glance.images.values():
                if image["name"] == name and image["status"] == "active" \
                        and image["id"] in self.glance._imagedata:
                    return image
            time.sleep(self.POLL)
        self.fail("image %s was not uploaded" % name)
