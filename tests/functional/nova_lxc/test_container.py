"""The container layer (nova_lxc.images, .config, .container) on real liblxc: images
unpacked into a cache, containers started unprivileged from overlays over it, their
console, freeze, limits, a port's veth end, shutdown and removal. Every container a test
starts is killed (by its own name and lxcpath) in cleanup, and every veth pair removed."""
import os
import shutil
import subprocess
import tempfile
import time
import uuid

import lxc
from nova import exception
import testtools

from nova_lxc import config
from nova_lxc import container
from nova_lxc import images
from tests.common import lxc_rootfs

IDMAP = (100000, 65536)
INCLUDES = ["/usr/share/lxc/config/common.conf"]


class ContainerTest(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.root = tempfile.mkdtemp(prefix="lxct", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.root, True)
        os.chmod(self.root, 0o711)
        self.lxcpath = os.path.join(self.root, "instances")
        self.cache = os.path.join(self.root, "cache")
        os.makedirs(self.lxcpath)
        self.work = os.path.join(self.root, "work")
        os.makedirs(self.work)

    def base(self, idmap=IDMAP, image="tar"):
        source = lxc_rootfs.tarball(self.work) if image == "tar" else \
            lxc_rootfs.ext4_image(self.work)
        image_id = str(uuid.uuid4())
        return images.unpack(source, self.cache, images.cache_key(image_id, idmap),
                             idmap, image_id)

    def define(self, base, privileged=False, limits=None, nics=(), mounts=()):
        name = str(uuid.uuid4())
        cdir = os.path.join(self.lxcpath, name)
        os.makedirs(cdir, mode=0o700)
        self.addCleanup(self._reap, name)
        items = config.container_config(
            name, "overlay:%s:%s" % (base, os.path.join(cdir, container.UPPER)),
            os.path.join(cdir, container.CONSOLE_LOG),
            limits if limits is not None else config.cgroup_limits(1, 128, 1, pids_max=64),
            includes=INCLUDES, privileged=privileged, idmap=None if privileged else IDMAP,
            apparmor_profile="unconfined", halt_signal=lxc_rootfs.HALT_SIGNAL, nics=nics,
            mounts=mounts)
        container.define(name, self.lxcpath, items, None if privileged else IDMAP[0])
        return name

    def _reap(self, name):
        st = container.state(name, self.lxcpath)
        if st["state"] != "STOPPED":
            try:
                container.kill(name, self.lxcpath, 10)
            except container.ContainerError:
                os.kill(st["init_pid"], 9)

    def console(self, name, text, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            out = container.console_log(name, self.lxcpath, 65536)
            if text in out:
                return out
            if time.monotonic() > deadline:
                self.fail("%r not on the console of %s: %r" % (text, name, out))
            time.sleep(0.1)

    def run_in(self, name, *argv):
        c = lxc.Container(name, self.lxcpath)
        return c.attach_wait(lxc.attach_run_command, list(argv)) >> 8

    def test_tarball_unprivileged_console_limits_freeze_shutdown_remove(self):
        base = self.base()
        self.assertEqual(IDMAP[0], os.stat(os.path.join(base, "bin", "busybox")).st_uid)
        name = self.define(base)
        pid = container.start(name, self.lxcpath, 30)
        out = self.console(name, "HCILXC READY")
        self.assertIn("HCILXC READY uid=0", out)
        # root in the container is uid 100000 on the host
        with open("/proc/%d/status" % pid) as f:
            uids = [line.split()[1:] for line in f if line.startswith("Uid:")][0]
        self.assertEqual(str(IDMAP[0]), uids[0])
        with open("/proc/%d/uid_map" % pid) as f:
            self.assertEqual(["0", "100000", "65536"], f.read().split())
        memory = container._cgroup_file(pid, "memory", "memory.max", "memory.limit_in_bytes")
        with open(memory) as f:
            self.assertEqual(128 * 1024 ** 2, int(f.read()))
        # resize: limits change on the running container
        container.set_cgroup_items(name, self.lxcpath, config.cgroup_limits(1, 256, 2))
        with open(memory) as f:
            self.assertEqual(256 * 1024 ** 2, int(f.read()))

        container.freeze(name, self.lxcpath, 10)
        self.assertEqual("FROZEN", container.state(name, self.lxcpath)["state"])
        container.thaw(name, self.lxcpath, 10)
        self.assertEqual("RUNNING", container.state(name, self.lxcpath)["state"])

        # a file written in the container goes to its overlay, not the shared base
        self.assertEqual(0, self.run_in(name, "/bin/sh", "-c", "echo hi > /etc/written"))
        self.assertFalse(os.path.exists(os.path.join(base, "etc", "written")))

        self.assertTrue(container.shutdown(name, self.lxcpath, 10))
        self.assertIn("HCILXC HALT", self.console(name, "HCILXC HALT"))
        self.assertEqual([], container.list_running(self.lxcpath))
        # started again, it keeps its files
        container.start(name, self.lxcpath, 30)
        self.assertEqual(0, self.run_in(name, "/bin/test", "-f", "/etc/written"))
        self.assertRaises(container.ContainerError, container.remove, name, self.lxcpath)
        container.kill(name, self.lxcpath, 10)
        container.remove(name, self.lxcpath)
        self.assertFalse(os.path.exists(os.path.join(self.lxcpath, name)))
        self.assertTrue(os.path.exists(os.path.join(base, "bin", "busybox")))

    def _write_host_file(self, privileged):
        host_dir = os.path.join(self.root, "host")
        os.makedirs(host_dir, exist_ok=True)
        target = os.path.join(host_dir, "owned-by-root")
        with open(target, "w") as f:
            f.write("host\n")
        os.chmod(target, 0o644)
        base = self.base(idmap=None if privileged else IDMAP)
        name = self.define(base, privileged=privileged,
                           mounts=[(host_dir, "/mnt/host", "rw")])
        container.start(name, self.lxcpath, 30)
        self.console(name, "HCILXC READY")
        rc = self.run_in(name, "/bin/sh", "-c", "echo container >> /mnt/host/owned-by-root")
        with open(target) as f:
            return rc, f.read()

    def test_root_in_an_unprivileged_container_cannot_write_a_root_file(self):
        rc, text = self._write_host_file(privileged=False)
        self.assertNotEqual(0, rc)
        self.assertEqual("host\n", text)

    def test_root_in_a_privileged_container_can_write_a_root_file(self):
        # the control of the test above: the same write works when privileged
        rc, text = self._write_host_file(privileged=True)
        self.assertEqual(0, rc)
        self.assertEqual("host\ncontainer\n", text)

    def test_ext4_raw_and_qcow2_images(self):
        raw = lxc_rootfs.ext4_image(self.work)
        qcow2 = os.path.join(self.work, "rootfs.qcow2")
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow2],
                       check=True)
        self.assertEqual(images.EXTFS, images.kind(raw))
        self.assertEqual(images.QCOW2, images.kind(qcow2))
        for source in (raw, qcow2):
            image_id = str(uuid.uuid4())
            base = images.unpack(source, self.cache, images.cache_key(image_id, IDMAP),
                                 IDMAP, image_id)
            self.assertEqual(IDMAP[0], os.lstat(os.path.join(base, "sbin", "init")).st_uid)
        self.assertFalse(any(os.path.ismount(os.path.join(self.cache, n, "mnt"))
                             for n in os.listdir(self.cache)))
        name = self.define(base)
        container.start(name, self.lxcpath, 30)
        self.console(name, "HCILXC READY uid=0")

    def test_bad_images_are_refused_and_leave_nothing(self):
        junk = os.path.join(self.work, "junk")
        with open(junk, "wb") as f:
            f.write(os.urandom(65536))
        empty_tree = os.path.join(self.work, "empty")
        os.makedirs(os.path.join(empty_tree, "etc"))
        no_init = os.path.join(self.work, "noinit.tar.gz")
        subprocess.run(["tar", "-czf", no_init, "-C", empty_tree, "."], check=True)
        for path in (junk, no_init):
            self.assertRaises(exception.ImageUnacceptable, images.unpack, path,
                              self.cache, "k" + os.path.basename(path)[:3], IDMAP, "img")
        self.assertEqual([], os.listdir(self.cache))

    def test_port_s_veth_end_with_address(self):
        # the pair as plugging makes it (nova_common.vifs): liblxc takes the container's
        # end as a physical interface, and gives it back at stop
        host_dev, peer = "vh" + uuid.uuid4().hex[:10], "vp" + uuid.uuid4().hex[:10]
        subprocess.run(["ip", "link", "add", host_dev, "mtu", "1400", "type", "veth",
                        "peer", "name", peer, "mtu", "1400"], check=True)
        self.addCleanup(subprocess.run, ["ip", "link", "del", host_dev])
        nics = config.nic_items(0, peer, "fa:16:3e:00:00:01", mtu=1400,
                                ipv4=[("192.0.2.2", 24, "192.0.2.255")],
                                gateway="192.0.2.1")
        name = self.define(self.base(), nics=nics)
        container.start(name, self.lxcpath, 30)
        self.console(name, "HCILXC NIC eth0")
        self.assertFalse(os.path.exists("/sys/class/net/" + peer))     # inside
        self.assertEqual(0, self.run_in(name, "/bin/sh", "-c",
                                        "ip -4 addr show dev eth0 | grep -q "
                                        "'192.0.2.2/24 brd 192.0.2.255' && "
                                        "grep -qx 1400 /sys/class/net/eth0/mtu"))
        self.assertEqual(0, self.run_in(name, "/bin/sh", "-c",
                                        "ip link show eth0 | grep -q fa:16:3e:00:00:01"))
        container.kill(name, self.lxcpath, 10)
        self.assertTrue(os.path.exists("/sys/class/net/" + peer))      # given back

    def test_a_container_that_cannot_start_is_reported(self):
        base = self.base()
        name = self.define(base)
        shutil.rmtree(base)             # its root's lower layer is gone
        err = self.assertRaises(container.ContainerError, container.start, name,
                                self.lxcpath, 30)
        self.assertIn("did not start", str(err))
        self.assertEqual("STOPPED", container.state(name, self.lxcpath)["state"])
