"""zfs_cinder against cinder's LVM driver (thick and thin), side by side, in one run.

Both drivers run here, unchanged, and execute every command in the kernel-OpenZFS test
guest over the same SSH transport (one ControlMaster connection per driver): the ZFS
driver through its SSH executor, the LVM driver through an ``execute`` function that
runs the same argument vectors there (its static LVM helpers, which call
``processutils.execute`` directly, are pointed at the guest too). So both manage a disk
of the same kind in the same guest kernel under the same CPU emulation: zvols on a zpool
on one virtio disk, logical volumes in a volume group on another of the same size.

For each volume size it creates a source volume, writes data onto it in the guest, takes
a snapshot, and times ``create_cloned_volume`` and ``create_volume_from_snapshot``; then
deletes everything. Prints medians and ratios (LVM / ZFS) as a Markdown table.

    python benchmarks/cinder_zfs.py [--sizes 1,4,16] [--fill-gib 1] [--repeat 3]

``--fill-gib`` is how much of each source volume is written (capped at its size; 0 fills
it whole). Run as root; it boots the guest and stops it by PID at the end.
"""
import argparse
import contextlib
import json
import os
import statistics
import sys
import time
import types
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from cinder import context  # noqa: E402
from cinder import objects  # noqa: E402
from cinder.brick.local_dev import lvm as brick_lvm  # noqa: E402
from cinder.tests.unit import fake_snapshot  # noqa: E402
from cinder.tests.unit import fake_volume  # noqa: E402
from cinder.volume import configuration  # noqa: E402
from cinder.volume import driver as cinder_driver  # noqa: E402
from cinder.volume.drivers import lvm  # noqa: E402
from oslo_concurrency import processutils  # noqa: E402
from oslo_config import cfg  # noqa: E402

from tests.common import zfsguest  # noqa: E402
from zfs_cinder import driver as zfs_driver  # noqa: E402
from zfs_common import executor as zfs_executor  # noqa: E402

objects.register_all()
GiB = 1024 ** 3
VG_THICK, VG_THIN = "cinder-thick", "cinder-thin"   # a thin pool takes its whole VG


def ssh_executor(guest):
    return zfs_executor.SSHExecutor("127.0.0.1", port=guest.ports["ssh"],
                                    private_key=guest.ssh_key, known_hosts="/dev/null",
                                    strict_host_key_checking="no")


def make_execute(executor):
    """A cinder/processutils-style ``execute`` that runs argv on the guest."""
    def execute(*cmd, **kwargs):
        argv = [str(c) for c in cmd]
        res = executor.run(argv, kwargs.get("process_input"), timeout=3600)
        ok = kwargs.get("check_exit_code", True)
        codes = ok if isinstance(ok, list) else [0]
        if ok is not False and res.exit_code not in codes:
            raise processutils.ProcessExecutionError(
                stdout=res.stdout, stderr=res.stderr, exit_code=res.exit_code,
                cmd=" ".join(argv))
        return res.stdout, res.stderr
    return execute


def backend(group, options, cls, **kwargs):
    conf = cfg.CONF
    conf.register_opts(cinder_driver.volume_opts, group=group)
    drv = cls(configuration=configuration.Configuration(cinder_driver.volume_opts,
                                                        config_group=group),
              host="bench@" + group, **kwargs)
    for name, value in options.items():
        conf.set_override(name, value, group=group)
    drv.do_setup(context.get_admin_context())
    drv.check_for_setup_error()
    return drv


class Bench:
    def __init__(self, guest, fill_gib):
        self.guest = guest
        self.fill_gib = fill_gib
        self.ctx = context.get_admin_context()
        zfs_driver.volume_types.get_volume_type_extra_specs = lambda _id: {}
        zfs_disk, thick_disk, thin_disk = (guest.take_disk() for _ in range(3))
        # discards reach the host's sparse disk files, so deleted volumes free host space
        guest.run("sed -i 's/issue_discards = 0/issue_discards = 1/' /etc/lvm/lvm.conf; "
                  "pvcreate -q %s %s && vgcreate -q %s %s && vgcreate -q %s %s"
                  % (thick_disk, thin_disk, VG_THICK, thick_disk, VG_THIN, thin_disk))
        guest.run("zpool create -f -o ashift=12 -o autotrim=on -O snapdev=hidden "
                  "-O compression=off bench %s" % zfs_disk)
        execute = make_execute(ssh_executor(guest))
        # LVM's static helpers call processutils.execute directly: run them there too
        # (replacing the module's name only: processutils itself must stay local)
        brick_lvm.putils = types.SimpleNamespace(
            execute=execute, ProcessExecutionError=processutils.ProcessExecutionError)
        common = {"target_helper": "fake", "volume_clear": "none"}
        ssh = {"zfs_ssh_host": "127.0.0.1", "zfs_ssh_port": guest.ports["ssh"],
               "zfs_ssh_private_key": guest.ssh_key, "zfs_ssh_known_hosts_file": "/dev/null",
               "zfs_ssh_strict_host_key_checking": "no"}
        self.drivers = {
            "zfs_cinder": backend("zfs", dict(common, zfs_volume_root="bench/cinder",
                                              **ssh), zfs_driver.ZFSVolumeDriver),
            "LVM thick": backend("lvmthick", dict(common, volume_group=VG_THICK,
                                                  lvm_type="default"),
                                 lvm.LVMVolumeDriver, execute=execute),
            "LVM thin": backend("lvmthin", dict(common, volume_group=VG_THIN, lvm_type="thin"),
                                lvm.LVMVolumeDriver, execute=execute),
        }
        self.devices = {"zfs_cinder": "/dev/zvol/bench/cinder/%s",
                        "LVM thick": "/dev/%s/%%s" % VG_THICK,
                        "LVM thin": "/dev/%s/%%s" % VG_THIN}

    def volume(self, size):
        return fake_volume.fake_volume_obj(self.ctx, id=str(uuid.uuid4()), size=size,
                                           volume_type_id=None, host="bench@x#x")

    def one(self, name, size):
        drv = self.drivers[name]
        src = self.volume(size)
        drv.create_volume(src)
        fill = size if not self.fill_gib else min(size, self.fill_gib)
        dev = self.devices[name] % src.name
        self.guest.wait_for_path(dev, timeout=30)
        self.guest.run("head -c %d /dev/urandom > /tmp/chunk; for i in $(seq 0 %d); do "
                       "dd if=/tmp/chunk of=%s bs=1M seek=$((i * 64)) conv=notrunc "
                       "status=none; done; sync"
                       % (64 * 1024 ** 2, fill * 16 - 1, dev), timeout=3600)
        snap = fake_snapshot.fake_snapshot_obj(self.ctx, id=str(uuid.uuid4()), volume=src,
                                               volume_id=src.id, volume_size=size)
        drv.create_snapshot(snap)
        clone, from_snap = self.volume(size), self.volume(size)
        t0 = time.perf_counter()
        drv.create_cloned_volume(clone, src)
        t1 = time.perf_counter()
        drv.create_volume_from_snapshot(from_snap, snap)
        t2 = time.perf_counter()
        for v in (from_snap, clone):
            drv.delete_volume(v)
        drv.delete_snapshot(snap)
        drv.delete_volume(src)
        return t1 - t0, t2 - t1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,4,16")
    parser.add_argument("--fill-gib", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    guest = zfsguest.ZfsGuest(scratch_size=(max(sizes) * 4 + 8) * GiB, memory_mb=2048)
    results = {}
    with contextlib.ExitStack() as stack:
        guest.start()
        stack.callback(guest.stop)
        bench = Bench(guest, args.fill_gib)
        for size in sizes:
            for name in bench.drivers:
                runs = [bench.one(name, size) for _ in range(args.repeat)]
                results[(size, name)] = (statistics.median(r[0] for r in runs),
                                         statistics.median(r[1] for r in runs))
                print("%3d GiB %-10s clone %.3fs  from snapshot %.3fs"
                      % ((size, name) + results[(size, name)]), file=sys.stderr, flush=True)
    fill = "whole volume" if not args.fill_gib else "first %d GiB" % args.fill_gib
    print("\nMedian seconds of %d runs; data written: %s (random); LVM/ZFS ratios.\n"
          % (args.repeat, fill))
    print("| size | operation | zfs_cinder | LVM thick | LVM thin | thick/zfs | thin/zfs |")
    print("|---|---|---|---|---|---|---|")
    for size in sizes:
        for i, op in enumerate(("clone", "volume from snapshot")):
            z, k, n = (results[(size, d)][i] for d in ("zfs_cinder", "LVM thick", "LVM thin"))
            print("| %d GiB | %s | %.3f | %.3f | %.3f | %.1fx | %.1fx |"
                  % (size, op, z, k, n, k / z, n / z))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"%d:%s" % k: v for k, v in results.items()}, f, indent=1)


if __name__ == "__main__":
    main()
