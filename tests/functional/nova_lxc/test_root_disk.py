"""The flavor's root disk size enforced on a container through the real nova services: its
overlay's upper directory on an ext4 filesystem image of root_gb, mounted through a loop
device while it runs, gone with the server.

Runs in nova's eventlet mode by default and in native-threads mode with
OS_NOVA_DISABLE_EVENTLET_PATCHING=1 (tox runs both).
"""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_lxc import base  # noqa: I001  isort:skip
import json
import os
import subprocess

from nova_common import instance_dir
from nova_lxc import rootdisk

# written inside the container: 900 MiB reserved (fallocate writes no data), then 200 MiB
# really written; exits 28 (ENOSPC) when the write fails for want of space
FILL = ("/bin/busybox fallocate -l 900M /fill || exit 3; "
        "out=$(/bin/busybox dd if=/dev/zero of=/more bs=1M count=200 2>&1); rc=$?; "
        "/bin/busybox rm -f /fill /more; "
        "case \"$out\" in *'No space left on device'*) exit 28;; esac; exit $rc")


def loop_devices(image):
    """Loop devices backed by ``image`` (losetup's JSON listing)."""
    out = subprocess.run(["losetup", "--json", "--list", "--output", "NAME,BACK-FILE"],
                         capture_output=True, check=True, timeout=30).stdout
    devices = json.loads(out or b"{}").get("loopdevices", [])
    return [d["name"] for d in devices
            if (d.get("back-file") or "").removesuffix(" (deleted)") == image]


def mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f
                if line.split()[4].startswith(path.rstrip("/") + "/")]


class TestRootDisk(base.LXCServerTestBase):

    def boot_with(self, disk):
        flavor = self.api.post_flavor({"flavor": {
            "name": "lxc.disk%d" % disk, "ram": 256, "vcpus": 1, "disk": disk}})
        server = self._build_server(image_uuid=self.images["tar"],
                                    flavor_id=flavor["id"], networks="none")
        server = self._wait_for_state_change(self.api.post_server({"server": server}),
                                             "ACTIVE")
        self.wait_console(server, "HCILXC READY")
        return server

    def test_writing_past_root_gb_fails_and_delete_leaves_nothing(self):
        server = self.boot_with(1)
        idir = os.path.join(self.instances, server["id"])
        image = os.path.join(idir, rootdisk.IMAGE)
        mnt = os.path.join(idir, rootdisk.MOUNT)
        self.assertTrue(os.path.ismount(mnt))
        self.assertEqual(1, len(loop_devices(image)))
        self.assertEqual(28, self.run_in(server, FILL))
        # the space is back once the files are gone, and what is written stays over a
        # stop/start (the disk unmounted, its loop device freed, then mounted again)
        self.assertEqual(0, self.run_in(server, "echo kept > /root/file"))
        self.api.post_server_action(server["id"], {"os-stop": None})
        server = self._wait_for_state_change(server, "SHUTOFF")
        self.assertFalse(os.path.ismount(mnt))
        self.assertEqual([], loop_devices(image))
        # a snapshot of the stopped container holds what is on its (unmounted) disk
        self._snapshot_server(server, "stopped-snap")
        snap = self._wait_for_image("stopped-snap")
        self.assertFalse(os.path.ismount(mnt))
        copy = self.boot(snap["id"])
        self.wait_console(copy, "HCILXC READY")
        self.assertEqual(0, self.run_in(copy, "test \"$(cat /root/file)\" = kept"))
        self._delete_server(copy)
        self.api.post_server_action(server["id"], {"os-start": None})
        server = self._wait_for_state_change(server, "ACTIVE")
        self.wait_console(server, "HCILXC READY")
        self.assertTrue(os.path.ismount(mnt))
        self.assertEqual(0, self.run_in(server, "test \"$(cat /root/file)\" = kept"))
        self._delete_server(server)
        self.assertEqual([], loop_devices(image))
        self.assertEqual([], mounts_under(self.instances))
        self.assertFalse(os.path.exists(idir))
        self.assertEqual([], instance_dir.list_uuids(self.instances))

    def test_root_gb_0_is_unlimited_and_has_no_disk_of_its_own(self):
        server = self.boot_with(0)
        idir = os.path.join(self.instances, server["id"])
        self.assertFalse(os.path.exists(os.path.join(idir, rootdisk.IMAGE)))
        self.assertEqual([], mounts_under(self.instances))
        self.assertEqual(0, self.run_in(server, FILL))
        self._delete_server(server)
        self.assertFalse(os.path.exists(idir))
