"""Each guest's cloud-hypervisor runs under a uid of its own (not nova's), started by the
privileged launcher, and reaches only its own instance's files and its own volumes:
through the real nova services, on the stand-in VMM (started in place of the binary, so
under the guest uid too, with the QEMU running the guest) or a real cloud-hypervisor."""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_cloudhypervisor import base  # noqa: I001  isort:skip
import os
import subprocess

from nova_common import confine
from tests.common import loop as loop_dev
from tests.functional.nova_qmp.test_confinement import as_uid
from tests.functional.nova_qmp.test_confinement import proc_uid


class TestConfinement(base.CHServerTestBase):
    def test_vmms_run_as_their_own_uids_and_reach_only_their_own_things(self):
        a = self.boot(image=self.images["kernel"])
        b = self.boot(image=self.images["kernel"])
        for server in (a, b):
            self.wait_console(server, self.guest.marker("ready"))
        uid_a, uid_b = proc_uid(self.vmm_pid(a)), proc_uid(self.vmm_pid(b))
        self.assertNotEqual(uid_a, uid_b)
        for uid in (uid_a, uid_b):
            self.assertIn(uid, confine.uid_range())
            self.assertNotEqual(os.getuid(), uid)             # not nova's user
        # the guest's QEMU (the stand-in's child) is the guest uid's as well
        children = subprocess.run(["pgrep", "-P", str(self.vmm_pid(a))],
                                  capture_output=True, text=True).stdout.split()
        for child in children:
            self.assertEqual(uid_a, proc_uid(int(child)))

        disk_a = os.path.join(self.instances, a["id"], "disk")
        disk_b = os.path.join(self.instances, b["id"], "disk")
        self.assertEqual(0, as_uid(uid_a, "head", "-c", "1", disk_a).returncode)
        denied = as_uid(uid_a, "head", "-c", "1", disk_b)
        self.assertNotEqual(0, denied.returncode)
        self.assertIn(b"Permission denied", denied.stderr)

        # a volume (a loop block device, root:disk 0660) is its guest's only
        volume_id = "7c3e8d2b-0a5f-4b4e-9e7d-2a1f0b9c8d7e"
        backing = os.path.join(self.instances, volume_id + ".img")
        with open(backing, "wb") as f:
            f.write(b"volume data")
            f.truncate(16 * 1024 ** 2)
        loop = loop_dev.loop_device(self, backing)
        self.cinder.VOLUME_CONNECTION_INFO = dict(self.cinder.VOLUME_CONNECTION_INFO, **{
            volume_id: {"driver_volume_type": "local", "data": {"device_path": loop}}})
        read = ("dd", "if=" + loop, "bs=11", "count=1", "status=none")
        self.assertNotEqual(0, as_uid(uid_a, *read).returncode)
        before = len(self.console(a))
        self.api.post_server_volume(a["id"], {"volumeAttachment": {"volumeId": volume_id}})
        self.wait_console(a, "ADDED DISK vdb sectors=32768", since=before)
        self.assertEqual(b"volume data", as_uid(uid_a, *read).stdout)
        self.assertNotEqual(0, as_uid(uid_b, *read).returncode)
        before = len(self.console(a))
        self.api.delete_server_volume(a["id"], volume_id)
        self.wait_console(a, "REMOVED DISK vdb", since=before)
        self._wait_for_volume_detach(a["id"], volume_id)
        self.assertNotEqual(0, as_uid(uid_a, *read).returncode)
        for server in (a, b):
            self._delete_server(server)
            self.assert_nothing_left(server)
