"""The tiny test guest boots for real under QEMU TCG and does what tests rely on."""
import json
import os
import subprocess
import tarfile

import fixtures
import testtools

from tests.common import guest_images
from tests.common import qemu

UUID = "5a3b6c8e-0d1f-4e2a-9b7c-1d2e3f4a5b6c"


class TestTinyGuest(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.Timeout(300, gentle=True))
        self.guest = guest_images.tiny_guest()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def boot(self, args, **kw):
        return self.useFixture(qemu.QemuGuest(args, **kw))

    def disk(self, path, fmt):
        return ["-drive", "file=%s,format=%s,if=virtio,snapshot=on" % (path, fmt)]

    def config_drive(self):
        src = os.path.join(self.tmp, "cd", "openstack", "latest")
        os.makedirs(src)
        with open(os.path.join(src, "meta_data.json"), "w") as f:
            json.dump({"uuid": UUID, "name": "test"}, f)
        iso = os.path.join(self.tmp, "config.iso")
        subprocess.run(["genisoimage", "-quiet", "-o", iso, "-V", "config-2", "-r", "-J",
                        os.path.join(self.tmp, "cd")], check=True)
        return ["-drive", "file=%s,format=raw,if=virtio,readonly=on" % iso]

    def test_qcow2_disk_boots_under_seabios(self):
        vm = self.boot(self.disk(self.guest.disk_qcow2, "qcow2"))
        log = vm.wait_for(self.guest.marker("ready"))
        self.assertIn("SYSLINUX", log)   # booted from the disk's own boot loader
        self.assertIn("HCIGUEST BOOTED mode=vm", log)
        self.assertIn("HCIGUEST DISK vda sectors=131072", log)
        self.assertIn("HCIGUEST CONFIGDRIVE uuid=none", log)

    def test_raw_disk_boots_on_q35_and_shows_nic(self):
        args = self.disk(self.guest.disk_raw, "raw") + [
            "-netdev", "user,id=n0,restrict=on",
            "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:aa:bb:cc"]
        vm = self.boot(args, machine="q35")
        log = vm.wait_for(self.guest.marker("ready"))
        self.assertIn("HCIGUEST NIC eth0 mac=52:54:00:aa:bb:cc", log)

    def test_kernel_boot_reads_config_drive(self):
        args = ["-kernel", self.guest.kernel, "-initrd", self.guest.initrd,
                "-append", self.guest.cmdline] + self.config_drive()
        vm = self.boot(args)
        log = vm.wait_for(self.guest.marker("ready"))
        self.assertIn("HCIGUEST CONFIGDRIVE uuid=%s" % UUID, log)

    def test_acpi_power_button_powers_off(self):
        vm = self.boot(self.disk(self.guest.disk_qcow2, "qcow2"))
        vm.wait_for(self.guest.marker("ready"))
        # pressed again every 10 s while the guest runs, as nova's clean shutdown does
        for _ in range(6):
            vm.qmp("system_powerdown")
            try:
                self.assertEqual(0, vm.wait_exit(10))
                break
            except subprocess.TimeoutExpired:
                continue
        self.assertIn(self.guest.marker("poweroff"), vm.console_text())

    def test_hotplugged_and_resized_disk_is_reported(self):
        vol = os.path.join(self.tmp, "vol.img")
        with open(vol, "wb") as f:
            f.truncate(32 * 1024 * 1024)
        vm = self.boot(self.disk(self.guest.disk_qcow2, "qcow2"))
        vm.wait_for(self.guest.marker("ready"))
        vm.qmp("blockdev-add", driver="raw", **{"node-name": "vol1"},
               file={"driver": "file", "filename": vol})
        vm.qmp("device_add", driver="virtio-blk-pci", drive="vol1", id="vol1dev")
        vm.wait_for("HCIGUEST ADDED DISK vdb sectors=65536", 60)
        vm.qmp("block_resize", **{"node-name": "vol1"}, size=64 * 1024 * 1024)
        vm.wait_for("HCIGUEST ADDED DISK vdb sectors=131072", 60)


class TestTinyGuestArtifacts(testtools.TestCase):
    def test_rootfs_tarball_holds_the_same_userland(self):
        guest = guest_images.tiny_guest()
        with tarfile.open(guest.rootfs_tar) as tar:
            members = {m.name: m for m in tar.getmembers()}
        self.assertTrue(members["./init"].isfile())
        self.assertEqual("../init", members["./sbin/init"].linkname)
        self.assertTrue(members["./bin/busybox"].mode & 0o111)
        self.assertEqual(0, members["./init"].uid)
        self.assertNotIn("./lib/modules/kernel", members)   # containers need no modules

    def test_images_have_their_formats(self):
        guest = guest_images.tiny_guest()
        for path, fmt in ((guest.disk_raw, "raw"), (guest.disk_qcow2, "qcow2")):
            info = json.loads(subprocess.run(
                ["qemu-img", "info", "--output=json", path],
                check=True, capture_output=True, text=True).stdout)
            self.assertEqual(fmt, info["format"])
        with open(guest.disk_raw, "rb") as f:
            mbr = f.read(512)
        self.assertEqual(b"\x55\xaa", mbr[510:])      # boot signature
        self.assertEqual(0x80, mbr[446])              # first partition bootable
