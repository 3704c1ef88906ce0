"""Rescue/unrescue and cold resize on this host through the real nova services, on the
stand-in VMM (or a real cloud-hypervisor with HCI_CH_BINARY), the guest's console as the
proof: the rescue image boots (through the firmware) with the server's own disk second;
a resize boots the guest on the new flavor's CPUs, memory and grown disk, a revert on the
old ones again, a confirm keeps it running."""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_cloudhypervisor import base  # noqa: I001  isort:skip
import os
import time

from nova_cloudhypervisor import client
from nova_cloudhypervisor import process
from nova_cloudhypervisor import vmconfig
from nova_common import instance_dir


class TestRescueResize(base.CHServerTestBase):
    def vm_info(self, server):
        idir = instance_dir.InstanceDir(server["id"], root=self.instances)
        api = client.Client(idir.file(process.API_SOCKET))
        self.addCleanup(api.close)
        return api.info()

    def wait_boots(self, server, count, timeout=180):
        deadline = time.monotonic() + timeout
        while True:
            out = self.console(server)
            if out.count(self.guest.marker("ready")) >= count:
                return out
            if time.monotonic() > deadline:
                self.fail("%d boots not in the console of %s:\n%s"
                          % (count, server["id"], out))
            time.sleep(0.5)

    def test_rescue_and_unrescue(self):
        server = self.boot("raw")
        self.wait_boots(server, 1)
        idir = instance_dir.InstanceDir(server["id"], root=self.instances)
        self.api.post_server_action(server["id"], {"rescue": {
            "rescue_image_ref": self.images["raw"]}})
        server = self._wait_for_state_change(server, "RESCUE")
        out = self.wait_boots(server, 2)
        # the rescue boot sees the server's own disk as its second disk
        self.assertIn("DISK vdb sectors=", out.split(self.guest.marker("ready"))[1])
        disks = [d.path for d in self.vm_info(server).config.disks]
        self.assertEqual([idir.file(vmconfig.RESCUE_DISK), idir.file(vmconfig.ROOT_DISK)],
                         disks)
        self.api.post_server_action(server["id"], {"unrescue": None})
        server = self._wait_for_state_change(server, "ACTIVE")
        out = self.wait_boots(server, 3)
        self.assertNotIn("DISK vdb", out.split(self.guest.marker("ready"))[2])
        self.assertEqual([idir.file(vmconfig.ROOT_DISK)],
                         [d.path for d in self.vm_info(server).config.disks])
        self.assertFalse(os.path.exists(idir.file(vmconfig.RESCUE_DISK)))
        self._delete_server(server)
        self.assert_nothing_left(server)

    def test_resize_on_this_host_revert_and_confirm(self):
        self.flags(allow_resize_to_same_host=True)
        # booted before the bigger flavor exists: nova's helper takes the first flavor
        # listed, and a new flavor's random id may sort first
        server = self.boot(image=self.images["kernel"])
        bigger = self.api.post_flavor({"flavor": {
            "name": "bigger", "ram": 640, "vcpus": 2, "disk": 2}})
        out = self.wait_boots(server, 1)
        self.assertIn("DISK vda sectors=2097152", out)
        idir = instance_dir.InstanceDir(server["id"], root=self.instances)
        resized = idir.path + "_resize"
        boots = 1
        for finish in ("revertResize", "confirmResize"):
            self.api.post_server_action(server["id"], {"resize": {"flavorRef": bigger["id"]}})
            server = self._wait_for_state_change(server, "VERIFY_RESIZE")
            boots += 1
            out = self.wait_boots(server, boots)
            self.assertIn("DISK vda sectors=4194304",
                          out.split(self.guest.marker("ready"))[-2])   # 2 GiB now
            info = self.vm_info(server)
            self.assertEqual((2, 640 * 1024 ** 2),
                             (info.config.cpus.boot_vcpus, info.config.memory.size))
            self.assertTrue(os.path.isdir(resized))
            pid = self.vmm_pid(server)
            self.api.post_server_action(server["id"], {finish: None})
            server = self._wait_for_state_change(server, "ACTIVE")
            if finish == "revertResize":
                # the original directory is back (its disk, and its console log: the
                # first boot); the guest boots from it on the old flavor
                boots = 2
                out = self.wait_boots(server, boots)
                self.assertIn("DISK vda sectors=2097152",
                              out.split(self.guest.marker("ready"))[-2])
                info = self.vm_info(server)
                self.assertEqual((1, 512 * 1024 ** 2),
                                 (info.config.cpus.boot_vcpus, info.config.memory.size))
            else:
                self.assertEqual(pid, self.vmm_pid(server))     # keeps running
            self.assertFalse(os.path.exists(resized))
        self._delete_server(server)
        self.assert_nothing_left(server)
