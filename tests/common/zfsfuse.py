"""ZFS in userspace (zfs-fuse) on this host: datasets, snapshots, clones; no zvols.

``shared_daemon()`` starts one ``zfs-fuse --no-daemon`` per test process (so the tox
env runs with concurrency 1: there is one daemon socket per machine) and stops it by PID
at exit; ``FusePool`` gives each test its own pool on a sparse file and destroys it.
"""
import os
import subprocess
import time
import uuid

import fixtures

from tests.common import process

SOCKET = "/var/run/zfs/zfs_socket"


class Daemon:
    def __init__(self):
        self.proc = None

    def start(self, timeout=30):
        if os.path.exists(SOCKET) and subprocess.run(
                ["zpool", "list"], capture_output=True).returncode == 0:
            raise RuntimeError("a zfs-fuse daemon not started by the tests is running; "
                               "stop it first (tests never touch foreign pools)")
        self.proc = subprocess.Popen(["zfs-fuse", "--no-daemon", "--no-kstat-mount"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL,
                                     preexec_fn=process.die_with_parent)  # noqa: PLW1509
        deadline = time.monotonic() + timeout
        while subprocess.run(["zpool", "list"], capture_output=True).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("zfs-fuse did not come up")
            time.sleep(0.1)
        return self

    def stop(self):
        if self.proc is not None:
            process.stop(self.proc, timeout=15)
        # mounts of a daemon that died with work in flight stay behind, disconnected
        with open("/proc/mounts") as f:
            stale = [line.split()[1] for line in f if line.split()[2] == "fuse.zfs"]
        for mountpoint in sorted(stale, reverse=True):
            subprocess.run(["umount", "-l", mountpoint], capture_output=True)


def shared_daemon():
    """The zfs-fuse daemon of this test process, started on first use."""
    return process.shared("zfs-fuse", lambda: Daemon().start())


def run(*argv):
    """Run a zfs/zpool command against zfs-fuse directly (for checks in tests)."""
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


class FusePool(fixtures.Fixture):
    """A zfs-fuse pool of its own on a sparse file; destroyed in cleanup."""

    def __init__(self, size=2 * 1024 ** 3, prefix="fp"):
        super().__init__()
        self.size = size
        self.name = prefix + uuid.uuid4().hex[:8]

    def _setUp(self):
        shared_daemon()
        tmp = self.useFixture(fixtures.TempDir()).path
        self.image = os.path.join(tmp, "pool.img")
        self.mountpoint = os.path.join(tmp, "mnt")
        with open(self.image, "wb") as f:
            f.truncate(self.size)
        # cachefile=none: a pool left behind by a killed run is not imported again by
        # the next daemon
        subprocess.run(["zpool", "create", "-o", "cachefile=none", "-m", self.mountpoint,
                        self.name, self.image], check=True, capture_output=True)
        self.addCleanup(destroy_pool, self.name)


def until_not_busy(argv, timeout=30):
    """Run a zfs/zpool command until it succeeds, waiting out zfs-fuse's "busy" right
    after I/O (usually about a second, longer when the machine is loaded)."""
    deadline, delay = time.monotonic() + timeout, 0.1
    while True:
        res = subprocess.run(argv, capture_output=True, text=True)
        if res.returncode == 0:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(delay)
        delay = min(delay * 2, 2)
    raise RuntimeError("%s failed for %d s: %s" % (" ".join(argv), timeout, res.stderr))


def destroy_pool(name, timeout=30):
    until_not_busy(["zpool", "destroy", "-f", name], timeout)
