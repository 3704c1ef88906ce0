"""The kernel-OpenZFS test host: a QEMU TCG guest built by tools/guest/build-zfs-guest.sh.

``shared_guest()`` boots one guest per test process (it serves the whole run) with scratch
virtio disks for pools; ``ZfsPool`` gives each test a pool of its own and destroys it in
cleanup, so tests never see each other's leftovers. Commands reach the guest over a
virtio-serial agent (``run``) or over SSH forwarded to 127.0.0.1 (``ssh_argv``), the way the
drivers' remote executor reaches a ZFS host. The guest's QEMU dies with the test process
(PR_SET_PDEATHSIG) and is otherwise stopped by PID at exit.
"""
import base64
import dataclasses
import functools
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import fixtures

from tests.common import guest_images
from tests.common import process
from tests.common import qemu

SCRATCH_DISKS = 4
SCRATCH_SIZE = 2 * 1024 ** 3


class GuestCommandError(Exception):
    def __init__(self, script, result):
        super().__init__("guest command failed (rc=%d): %s\nstdout: %s\nstderr: %s"
                         % (result.rc, script.strip()[:500], result.out[-2000:],
                            result.err[-2000:]))
        self.result = result


@dataclasses.dataclass
class Result:
    rc: int
    out: str
    err: str


@functools.cache
def artifacts():
    """Build (or find in the cache) the ZFS guest; return (directory, manifest)."""
    return guest_images.build("build-zfs-guest.sh", timeout=1800)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ZfsGuest:
    """A running ZFS test guest. Ports are forwarded from 127.0.0.1 only."""

    GUEST_PORTS = {"ssh": 22, "iscsi": 3260, "nfs": 2049, "nvme": 4420}

    def __init__(self, memory_mb=1536, smp=2, scratch_size=SCRATCH_SIZE):
        self.art, self.manifest = artifacts()
        self.workdir = tempfile.mkdtemp(prefix="zfsguest-")
        self.ports = {name: free_port() for name in self.GUEST_PORTS}
        self.disks = []
        args = ["-kernel", os.path.join(self.art, self.manifest["kernel"]),
                "-initrd", os.path.join(self.art, self.manifest["initrd"]),
                "-append", self.manifest["cmdline"],
                "-drive", "file=%s,if=virtio,format=raw,snapshot=on"
                % os.path.join(self.art, self.manifest["root"]),
                "-device", "virtio-rng-pci",
                "-device", "virtio-serial-pci",
                "-chardev", "socket,id=zctl,path=%s,server=on,wait=off"
                % os.path.join(self.workdir, "zctl.sock"),
                "-device", "virtserialport,chardev=zctl,name=zctl"]
        for i in range(SCRATCH_DISKS):
            disk = os.path.join(self.workdir, "scratch%d.img" % i)
            with open(disk, "wb") as f:
                f.truncate(scratch_size)
            self.disks.append("/dev/vd%s" % "bcdefgh"[i])
            args += ["-drive", "file=%s,if=virtio,format=raw,cache=unsafe,discard=unmap" % disk]
        fwd = ",".join("hostfwd=tcp:127.0.0.1:%d-:%d" % (self.ports[n], p)
                       for n, p in self.GUEST_PORTS.items())
        args += ["-netdev", "user,id=n0,restrict=on," + fwd,
                 "-device", "virtio-net-pci,netdev=n0"]
        self.vm = qemu.QemuGuest(args, machine="q35", memory_mb=memory_mb, smp=smp,
                                 accel="tcg,thread=multi", cpu="max")
        self._ids = itertools.count(1)
        self._sock = None
        self._buf = b""
        self._lock = threading.Lock()
        self._free_disks = list(self.disks)

    def start(self, timeout=300):
        self.vm.setUp()
        try:
            self.vm.wait_for(self.manifest["markers"]["ready"], timeout)
        except Exception:
            self.stop()
            raise
        if self.manifest["markers"]["failed"] in self.vm.console_text():
            self.stop()
            raise qemu.GuestFailed("zfs module did not load:\n" + self.vm.console_text())
        return self

    def stop(self):
        """Power the guest off (or kill it by PID) and delete its scratch disks."""
        if self.vm.proc is not None and self.vm.proc.poll() is None:
            try:
                self.run("sync; echo o > /proc/sysrq-trigger", timeout=5, check=False)
            except Exception:  # noqa: S110 - the PID-based stop below still runs
                pass
            try:
                self.vm.wait_exit(10)
            except subprocess.TimeoutExpired:
                pass
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self.vm.cleanUp()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- commands over the virtio-serial agent ------------------------------------------
    def run(self, script, timeout=120, check=True):
        """Run a bash script in the guest as root; returns a Result."""
        with self._lock:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self._sock.connect(os.path.join(self.workdir, "zctl.sock"))
            req = str(next(self._ids))
            self._sock.sendall(("%s %s\n" % (req, base64.b64encode(script.encode()).decode())
                                ).encode())
            self._sock.settimeout(timeout)
            while True:
                while b"\n" not in self._buf:
                    chunk = self._sock.recv(65536)
                    if not chunk:
                        raise qemu.GuestFailed("guest agent channel closed")
                    self._buf += chunk
                line, self._buf = self._buf.split(b"\n", 1)
                fields = line.decode().split(" ")
                if fields[0] == req:
                    break
        fields += ["", ""]
        result = Result(int(fields[1]), base64.b64decode(fields[2]).decode(errors="replace"),
                        base64.b64decode(fields[3]).decode(errors="replace"))
        if check and result.rc != 0:
            raise GuestCommandError(script, result)
        return result

    def wait_for_path(self, path, timeout=10.0):
        """Wait (bounded) until ``path`` exists in the guest, e.g. a /dev/zvol link."""
        deadline = time.monotonic() + timeout
        while True:
            if self.run("test -e '%s'" % path, check=False).rc == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("%s did not appear in the guest within %ss"
                                   % (path, timeout))
            time.sleep(0.1)

    # -- SSH, as the drivers' remote executor uses it ------------------------------------
    @property
    def ssh_key(self):
        return os.path.join(self.art, self.manifest["ssh_key"])

    def ssh_argv(self):
        return ["ssh", "-p", str(self.ports["ssh"]), "-i", self.ssh_key,
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "root@127.0.0.1"]

    # -- scratch disks for pools ---------------------------------------------------------
    def take_disk(self):
        with self._lock:
            if not self._free_disks:
                raise RuntimeError("all %d scratch disks are in use" % len(self.disks))
            return self._free_disks.pop(0)

    def give_back_disk(self, disk):
        with self._lock:
            self._free_disks.append(disk)


def shared_guest():
    """The guest serving this test process, booted on first use and stopped at exit."""
    return process.shared("zfs-guest", lambda: ZfsGuest().start())


def second_guest():
    """A second ZFS host for tests across two ZFS hosts, booted on first use and stopped
    at exit."""
    return process.shared("zfs-guest-b", lambda: ZfsGuest().start())


class ZfsPool(fixtures.Fixture):
    """A pool of its own for one test, on a scratch disk; destroyed and wiped in cleanup.

    Pools keep ``snapdev=hidden``: receiving a zvol while its snapshots are visible as
    devices can deadlock the guest kernel against udev.
    """

    def __init__(self, guest, prefix="tp"):
        super().__init__()
        self.guest = guest
        self.name = prefix + uuid.uuid4().hex[:8]

    def _setUp(self):
        self.disk = self.guest.take_disk()
        self.addCleanup(self.guest.give_back_disk, self.disk)
        self.addCleanup(self._destroy)
        self.guest.run("zpool create -f -o ashift=12 -O snapdev=hidden -O mountpoint=/%s %s %s"
                       % (self.name, self.name, self.disk))

    def _destroy(self):
        self.guest.run("zpool destroy -f %s 2>/dev/null; zpool labelclear -f %s; "
                       "udevadm settle -t 10" % (self.name, self.disk), timeout=60)


def install_cinder_rtstool(guest):
    """Make cinder's ``cinder-rtstool`` runnable in the guest, as on a remote ZFS host.

    The guest has LIO's rtslib and oslo.i18n from Debian; the tool and the one cinder
    module it imports are taken from the cinder installed here (nothing of cinder is
    stored in this repository), under an empty ``cinder`` package.
    """
    import cinder
    src = os.path.dirname(cinder.__file__)
    files = {"cinder/__init__.py": b"", "cinder/cmd/__init__.py": b""}
    for rel in ("i18n.py", "cmd/rtstool.py"):
        with open(os.path.join(src, rel), "rb") as f:
            files["cinder/" + rel] = f.read()
    lib = "/usr/local/lib/cinder-rtstool"
    script = ["mkdir -p %s/cinder/cmd /etc/target" % lib]
    for rel, data in files.items():
        script.append("echo %s | base64 -d > %s/%s"
                      % (base64.b64encode(data).decode(), lib, rel))
    script.append("printf '%s\\n' '#!/bin/sh' 'PYTHONPATH=" + lib + " exec python3 -c "
                  "\"import sys; from cinder.cmd import rtstool; sys.exit(rtstool.main())\" "
                  "\"$@\"' > /usr/local/bin/cinder-rtstool")
    script.append("chmod 755 /usr/local/bin/cinder-rtstool && /usr/local/bin/cinder-rtstool verify")
    guest.run("\n".join(script))
