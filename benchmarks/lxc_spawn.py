"""Benchmark: nova_lxc's container layer, spawn to RUNNING and destroy on a cached image,
for a small image and the same image grown by --grow-mb of files (spawn should stay flat:
the root is an overlay over the cache, nothing is copied).

Runs as root (liblxc's privileged side, in this process; containers are started by
lxc-start children). Every container it starts is killed and removed by name, also on
failure. The whole driver against nova's libvirt driver in virt_type=lxc:
benchmarks/nova_lxc_vs_libvirt.py (tox -e bench-lxc-libvirt).

    tox -e bench-lxc -- [--runs 20] [--grow-mb 200]
"""
import argparse
import os
import shutil
import statistics
import tempfile
import time
import uuid

from nova_lxc import config
from nova_lxc import container
from nova_lxc import images
from tests.common import lxc_rootfs

IDMAP = (100000, 65536)


def one(lxcpath, base):
    name = str(uuid.uuid4())
    cdir = os.path.join(lxcpath, name)
    os.makedirs(cdir, mode=0o700)
    items = config.container_config(
        name, "overlay:%s:%s" % (base, os.path.join(cdir, container.UPPER)),
        os.path.join(cdir, container.CONSOLE_LOG), config.cgroup_limits(
            config.host_cgroup_version(), 128, 1, pids_max=64),
        includes=["/usr/share/lxc/config/common.conf"], idmap=IDMAP,
        apparmor_profile="unconfined", halt_signal=lxc_rootfs.HALT_SIGNAL,
        cgroup_version=config.host_cgroup_version())
    try:
        t0 = time.perf_counter()
        container.define(name, lxcpath, items, IDMAP[0])
        container.start(name, lxcpath, 30)
        t1 = time.perf_counter()
        container.kill(name, lxcpath, 10)
        container.remove(name, lxcpath)
        t2 = time.perf_counter()
    finally:
        if container.state(name, lxcpath)["state"] != "STOPPED":
            container.kill(name, lxcpath, 10)
        shutil.rmtree(cdir, ignore_errors=True)
    return t1 - t0, t2 - t1


def grow(base, megabytes):
    """Add ``megabytes`` of files (1 MiB each, owned by the container's root)."""
    d = os.path.join(base, "var", "bulk")
    os.makedirs(d, exist_ok=True)
    os.chown(d, IDMAP[0], IDMAP[0])
    block = os.urandom(1024 * 1024)
    for i in range(megabytes):
        path = os.path.join(d, "f%05d" % i)
        with open(path, "wb") as f:
            f.write(block)
        os.chown(path, IDMAP[0], IDMAP[0])


def ms(values):
    return "median %.1f ms, min %.1f ms, max %.1f ms" % (
        statistics.median(values) * 1000, min(values) * 1000, max(values) * 1000)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--grow-mb", type=int, default=200)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="lxcbench", dir="/tmp")
    os.chmod(root, 0o711)
    try:
        work, cache, lxcpath = (os.path.join(root, n) for n in ("work", "cache", "inst"))
        for d in (work, lxcpath):
            os.makedirs(d)
        tarball = lxc_rootfs.tarball(work)
        t0 = time.perf_counter()
        base = images.unpack(tarball, cache, images.cache_key("bench", IDMAP), IDMAP,
                             "bench")
        print("unpack into the cache (once per image): %.0f ms"
              % ((time.perf_counter() - t0) * 1000))
        for label in ("small image", "image grown by %d MiB" % args.grow_mb):
            if label != "small image":
                grow(base, args.grow_mb)
            one(lxcpath, base)                       # warm-up
            spawn, destroy = zip(*(one(lxcpath, base) for _ in range(args.runs)),
                                 strict=True)
            print("%s, %d runs: spawn to RUNNING %s; destroy %s"
                  % (label, args.runs, ms(spawn), ms(destroy)))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
