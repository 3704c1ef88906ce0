"""Each guest's QEMU runs under a uid of its own (not nova's), sandboxed, and reaches only
its own instance's files and its own volumes: through the real nova services, QEMU
under TCG, the privileged launcher in its detached-supervisor mode."""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_qmp import base  # noqa: I001  isort:skip
import os
import subprocess

from nova_common import confine
from tests.common import loop as loop_dev

GID = 1900000000


def proc_uid(pid):
    with open("/proc/%d/status" % pid) as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Uid:"))


def as_uid(uid, *argv):
    return subprocess.run(["setpriv", "--reuid", str(uid), "--regid", str(GID),
                           "--clear-groups", *argv], capture_output=True)


class TestConfinement(base.QMPServerTestBase):
    def test_guests_run_as_their_own_uids_and_reach_only_their_own_things(self):
        self.flags(launcher="detached", group="hci_guests")
        a, b = self.boot("qcow2"), self.boot("qcow2")
        for server in (a, b):
            self.wait_console(server, self.guest.marker("ready"))
        uid_a, uid_b = proc_uid(self.qemu_pid(a)), proc_uid(self.qemu_pid(b))
        self.assertNotEqual(uid_a, uid_b)
        for uid in (uid_a, uid_b):
            self.assertIn(uid, confine.uid_range())
            self.assertNotEqual(os.getuid(), uid)             # not nova's user
        sandbox = self.qemu_argv(a)[self.qemu_argv(a).index("-sandbox") + 1]
        self.assertIn("spawn=deny", sandbox)
        self.assertIn("elevateprivileges=deny", sandbox)

        disk_a = os.path.join(self.instances, a["id"], "disk")
        disk_b = os.path.join(self.instances, b["id"], "disk")
        self.assertEqual(0, as_uid(uid_a, "head", "-c", "1", disk_a).returncode)
        denied = as_uid(uid_a, "head", "-c", "1", disk_b)
        self.assertNotEqual(0, denied.returncode)
        self.assertIn(b"Permission denied", denied.stderr)

        # a volume (a loop block device, root:disk 0660) is its guest's only
        volume_id = "5e2d7c1a-9b4f-4a3e-8d6c-1f0e9a8b7c6d"
        backing = os.path.join(self.instances, volume_id + ".img")
        with open(backing, "wb") as f:
            f.write(b"volume data")
            f.truncate(16 * 1024 ** 2)
        loop = loop_dev.loop_device(self, backing)
        self.cinder.VOLUME_CONNECTION_INFO = dict(self.cinder.VOLUME_CONNECTION_INFO, **{
            volume_id: {"driver_volume_type": "local", "data": {"device_path": loop}}})
        read = ("dd", "if=" + loop, "bs=11", "count=1", "status=none")
        self.assertNotEqual(0, as_uid(uid_a, *read).returncode)
        self.api.post_server_volume(a["id"], {"volumeAttachment": {"volumeId": volume_id}})
        self.wait_console(a, "ADDED DISK vdb sectors=32768")
        self.assertEqual(b"volume data", as_uid(uid_a, *read).stdout)
        self.assertNotEqual(0, as_uid(uid_b, *read).returncode)
        self.api.delete_server_volume(a["id"], volume_id)
        self.wait_console(a, "REMOVED DISK vdb")
        self._wait_for_volume_detach(a["id"], volume_id)
        self.assertNotEqual(0, as_uid(uid_a, *read).returncode)
        for server in (a, b):
            self._delete_server(server)
            self.assert_nothing_left(server)
