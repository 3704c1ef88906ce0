"""Disks served by a real qemu-nbd and fetched by a real qemu-img on loopback, plain
TCP and TLS (certificates the test makes); the description checked on the way in."""
import json
import os
import subprocess
import time

from nova import exception

from nova_common import disk_transfer
from tests.functional.nova_qmp_migration import tls
from tests.unit.nova_common import base

MiB = 1024 ** 2


def qemu_io(path, fmt, command):
    subprocess.run(["qemu-io", "-f", fmt, "-c", command, path], check=True,
                   capture_output=True)


def read(path, fmt, offset, length):
    """``length`` bytes at ``offset`` of the guest's view of a disk image."""
    raw = path + ".read"
    subprocess.run(["qemu-img", "convert", "-q", "-f", fmt, "-O", "raw", path, raw],
                   check=True)
    try:
        with open(raw, "rb") as f:
            f.seek(offset)
            return f.read(length)
    finally:
        os.unlink(raw)


class TestDiskTransfer(base.TestCase):

    def setUp(self):
        super().setUp()
        self.kept = os.path.join(self.instances, "u1_resize")
        self.dest = os.path.join(self.instances, "other", "u1")
        os.makedirs(self.kept)
        os.makedirs(self.dest)
        cache = os.path.join(self.instances, "_base")
        os.makedirs(cache)
        base_img = os.path.join(cache, "img")
        subprocess.run(["qemu-img", "create", "-q", "-f", "raw", base_img, "4M"],
                       check=True)
        qemu_io(base_img, "raw", "write -P 0x11 0 64k")           # from the image
        root = os.path.join(self.kept, "disk")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                        base_img, root, "8M"], check=True)
        qemu_io(root, "qcow2", "write -P 0x5a 6M 64k")            # written by the guest
        swap = os.path.join(self.kept, "disk.swap")
        with open(swap, "wb") as f:
            f.truncate(2 * MiB)
        qemu_io(swap, "raw", "write -P 0x33 1M 4k")
        self.addCleanup(disk_transfer.stop_exports, self.kept)

    def _check_copied(self):
        root = os.path.join(self.dest, "disk")
        info = json.loads(subprocess.run(
            ["qemu-img", "info", "--output=json", "-f", "qcow2", root], check=True,
            capture_output=True, text=True).stdout)
        self.assertNotIn("backing-filename", info)                # its own disk now
        self.assertEqual(8 * MiB, info["virtual-size"])
        self.assertEqual(b"\x11" * 4096, read(root, "qcow2", 0, 4096))
        self.assertEqual(b"\x5a" * 4096, read(root, "qcow2", 6 * MiB, 4096))
        swap = os.path.join(self.dest, "disk.swap")
        self.assertEqual(b"\x33" * 4096, read(swap, "raw", MiB, 4096))

    def _wait_gone(self):
        deadline = time.monotonic() + 30
        while self._servers():
            self.assertLess(time.monotonic(), deadline, "qemu-nbd still serves")
            time.sleep(0.05)

    def _servers(self):
        pids = []
        for name in os.listdir(self.kept):
            if name.startswith(disk_transfer.PID_PREFIX):
                with open(os.path.join(self.kept, name)) as f:
                    pid = int(f.read())
                if disk_transfer._alive_qemu_nbd(pid, self.kept):
                    pids.append(pid)
        return pids

    def test_plain_tcp_copy_and_the_servers_end_after_it(self):
        info = disk_transfer.export(self.kept, {"k": 1}, "127.0.0.1", None, "u1")
        self.assertEqual(2, len(self._servers()))
        parsed = disk_transfer.parse(json.dumps(info))
        self.assertFalse(disk_transfer.shared(parsed, os.path.join(self.dest + "_x")))
        self.assertTrue(disk_transfer.shared(parsed, self.kept))     # the probe is seen
        local = disk_transfer.pull(parsed, self.dest, None, "u1")
        self.assertEqual(["disk.swap"], local)
        self._check_copied()
        self._wait_gone()

    def test_tls_copy_and_a_plain_client_is_refused(self):
        tls_dir = tls.make(os.path.join(self.instances, "tls"), os.getgid())
        info = disk_transfer.parse(json.dumps(disk_transfer.export(
            self.kept, {}, "127.0.0.1", tls_dir, "u1")))
        self.assertTrue(info["tls"])
        # a client without the credentials gets nothing out of the server
        self.assertRaises(exception.MigrationError, disk_transfer.pull, info,
                          self.dest, None, "u1")
        plain = dict(info, tls=False)
        self.assertRaises(exception.MigrationError, disk_transfer.pull, plain, self.dest,
                          None, "u1")
        self.assertFalse(os.path.exists(os.path.join(self.dest, "disk.swap")))
        # a plain client's failed attempt ended the root disk's qemu-nbd: serve again
        disk_transfer.stop_exports(self.kept)
        info = disk_transfer.parse(json.dumps(disk_transfer.export(
            self.kept, {}, "127.0.0.1", tls_dir, "u1")))
        for name in os.listdir(self.dest):
            os.unlink(os.path.join(self.dest, name))
        disk_transfer.pull(info, self.dest, tls_dir, "u1")
        self._check_copied()
        self._wait_gone()

    def test_stop_exports_ends_servers_never_read_and_spares_other_pids(self):
        disk_transfer.export(self.kept, {}, "127.0.0.1", None, "u1")
        pids = self._servers()
        self.assertEqual(2, len(pids))
        other = subprocess.Popen(["sleep", "60"])
        self.addCleanup(other.wait)
        self.addCleanup(other.kill)
        with open(os.path.join(self.kept, disk_transfer.PID_PREFIX + "x.pid"), "w") as f:
            f.write(str(other.pid))                    # a PID reused by another process
        disk_transfer.stop_exports(self.kept)
        self.assertEqual([], self._servers())
        for pid in pids:
            self.assertFalse(os.path.exists("/proc/%d/cmdline" % pid) and
                             disk_transfer._alive_qemu_nbd(pid, self.kept))
        self.assertIsNone(other.poll())                # left alone
        self.assertEqual([], [n for n in os.listdir(self.kept)
                              if n.startswith(disk_transfer.PID_PREFIX)])

    def test_a_failed_export_leaves_nothing_running(self):
        # the root disk is served, then the config drive cannot be (a directory)
        os.mkdir(os.path.join(self.kept, "disk.config"))
        self.assertRaises(exception.MigrationError, disk_transfer.export, self.kept, {},
                          "127.0.0.1", None, "u1")
        self.assertEqual([], self._servers())
        self.assertEqual([], [n for n in os.listdir(self.kept)
                              if n.startswith(disk_transfer.PID_PREFIX)])

    def test_bad_descriptions_are_refused(self):
        good = {"version": 1, "address": "127.0.0.1", "tls": False,
                "probe": disk_transfer.PROBE_PREFIX + "ab12", "spec": {},
                "disks": [{"name": "disk", "format": "qcow2", "port": 10809}]}
        self.assertIsNone(disk_transfer.parse(""))
        self.assertEqual(good, disk_transfer.parse(json.dumps(good)))
        for bad in ({"address": "host;rm"}, {"address": "127.0.0.1,x=y"},
                    {"probe": "../disk"}, {"version": 2}, {"spec": None},
                    {"disks": [{"name": "../etc/passwd", "format": "raw", "port": 1}]},
                    {"disks": [{"name": "disk,driver=file", "format": "raw", "port": 1}]},
                    {"disks": [{"name": "disk", "format": "vmdk", "port": 1}]},
                    {"disks": [{"name": "disk", "format": "raw", "port": 70000}]},
                    {"disks": [{"name": "disk", "format": "raw", "port": "1"}]}):
            self.assertRaises(exception.InvalidInput, disk_transfer.parse,
                              json.dumps(dict(good, **bad)))
        self.assertRaises(exception.InvalidInput, disk_transfer.parse, "{not json")
        self.assertRaises(exception.MigrationPreCheckError, disk_transfer.export,
                          self.kept, {}, "compute2", None, "u1")
