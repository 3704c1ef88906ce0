"""A volume (a real block device: a loop device on an ext4 image file, given to nova as
a ``local`` connection) attached to a running unprivileged container through nova's
services, used inside it, and detached without a trace."""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_lxc import base  # noqa: I001  isort:skip
import os
import subprocess
import tempfile


class TestVolumes(base.LXCServerTestBase):
    VOLUME = "6b0d5c8e-3f21-4a8e-9a57-2c4d8e1f0a21"

    def loop_with_ext4(self, text):
        work = tempfile.mkdtemp(prefix="lxcvol", dir="/tmp")
        self.addCleanup(subprocess.run, ["rm", "-rf", work])
        tree = os.path.join(work, "tree")
        os.mkdir(tree)
        with open(os.path.join(tree, "marker"), "w") as f:
            f.write(text + "\n")
        image = os.path.join(work, "volume.ext4")
        subprocess.run(["mkfs.ext4", "-q", "-F", "-d", tree, image, "8M"], check=True,
                       capture_output=True)
        loop = subprocess.run(["losetup", "--find", "--show", image], check=True,
                              capture_output=True, text=True).stdout.strip()
        self.addCleanup(subprocess.run, ["losetup", "--detach", loop], check=False)
        # a loop device node keeps its ACL across uses: none from an earlier run, none after
        subprocess.run(["setfacl", "-b", loop], check=True)
        self.addCleanup(subprocess.run, ["setfacl", "-b", loop], check=False)
        return loop

    def wait_attached(self, server):
        # the attachment shows in the API before the driver has done it: its action event
        self._wait_for_instance_action_event(server, "attach_volume",
                                             "compute_attach_volume", "success")

    def acl(self, path):
        return subprocess.run(["getfacl", "-cp", path], check=True, capture_output=True,
                              text=True).stdout

    def host_mounts(self, pid):
        with open("/proc/%d/mountinfo" % pid) as f:
            return f.read()

    def test_attach_use_stop_start_detach_delete(self):
        loop = self.loop_with_ext4("HCILXC VOLUME DATA")
        self.cinder.VOLUME_CONNECTION_INFO = dict(self.cinder.VOLUME_CONNECTION_INFO, **{
            self.VOLUME: {"driver_volume_type": "local", "data": {"device_path": loop}}})
        server = self.boot("tar")
        self.wait_console(server, "HCILXC READY")
        mnt = "/mnt/volumes/" + self.VOLUME
        self.assertEqual(1, self.run_in(server, "test -e /dev/vdb"))

        self.api.post_server_volume(server["id"], {"volumeAttachment": {
            "volumeId": self.VOLUME}})
        self.wait_attached(server)
        # the node is the host's device, usable by the container's (unprivileged) root
        self.assertEqual(0, self.run_in(server, "test -b /dev/vdb"))
        self.assertEqual(0, self.run_in(server, "head -c 4096 /dev/vdb > /dev/null"))
        self.assertEqual(0, self.run_in(
            server, "grep -q 'HCILXC VOLUME DATA' %s/marker" % mnt))
        self.assertEqual(0, self.run_in(server, "echo from-the-container > %s/new" % mnt))
        self.assertIn("user:100000:rw-", self.acl(loop))
        pid = self.state(server)["init_pid"]
        self.assertIn(mnt, self.host_mounts(pid))

        # a stop and start: the volume is there again
        server = self._stop_server(server)
        server = self._start_server(server)
        self.wait_console(server, "HCILXC READY")
        self.assertEqual(0, self.run_in(server, "grep -q from-the-container %s/new" % mnt))

        self.api.delete_server_volume(server["id"], self.VOLUME)
        self._wait_for_volume_detach(server["id"], self.VOLUME)
        pid = self.state(server)["init_pid"]
        self.assertEqual(1, self.run_in(server, "test -e /dev/vdb"))
        self.assertEqual(1, self.run_in(server, "test -e %s" % mnt))
        self.assertNotIn(self.VOLUME, self.host_mounts(pid))
        self.assertNotIn("/dev/vdb", self.host_mounts(pid))
        self.assertNotIn("user:100000", self.acl(loop))
        # the data was written to the device itself
        out = subprocess.run(["debugfs", "-R", "cat /new", loop], check=True,
                             capture_output=True, text=True).stdout
        self.assertEqual("from-the-container\n", out)
        self._delete_server(server)

    def test_delete_with_a_volume_attached_releases_it(self):
        loop = self.loop_with_ext4("x")
        self.cinder.VOLUME_CONNECTION_INFO = dict(self.cinder.VOLUME_CONNECTION_INFO, **{
            self.VOLUME: {"driver_volume_type": "local", "data": {"device_path": loop}}})
        server = self.boot("tar")
        self.wait_console(server, "HCILXC READY")
        self.api.post_server_volume(server["id"], {"volumeAttachment": {
            "volumeId": self.VOLUME}})
        self.wait_attached(server)
        self.assertIn("user:100000:rw-", self.acl(loop))
        self._delete_server(server)
        self.assertNotIn("user:100000", self.acl(loop))
        self.assertEqual([], [n for n in os.listdir(self.instances) if not n.startswith("_")])
