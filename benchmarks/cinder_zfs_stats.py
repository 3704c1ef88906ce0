"""zfs_cinder's stats update with 10 and with 500 volumes: a flat cost.

Boots the kernel-OpenZFS test guest, makes two zpools and a backend with one pool on
each (``zfs_volume_roots``), then for each count creates that many sparse volumes on the
first pool (in the guest directly, to be quick) and times ``get_volume_stats(refresh)``
(median of ``--repeat``), next to what the driver did before: a ``zfs get -r`` of every
volume's ``type,volsize`` under the root to sum the provisioned size.

    python benchmarks/cinder_zfs_stats.py [--counts 10,500] [--repeat 5]

Run as root (as the other guest benchmarks); it stops the guest by PID at the end.
"""
import argparse
import contextlib
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from cinder import context  # noqa: E402
from cinder import objects  # noqa: E402
from cinder.volume import configuration  # noqa: E402
from cinder.volume import driver as cinder_driver  # noqa: E402
from oslo_config import cfg  # noqa: E402

from tests.common import zfsguest  # noqa: E402
from zfs_cinder import driver as zfs_driver  # noqa: E402

objects.register_all()
GiB = 1024 ** 3


def timed(func, *args):
    t0 = time.perf_counter()
    func(*args)
    return time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--counts", default="10,500")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    counts = sorted(int(c) for c in args.counts.split(","))
    guest = zfsguest.ZfsGuest(memory_mb=2048)
    rows = []
    with contextlib.ExitStack() as stack:
        guest.start()
        stack.callback(guest.stop)
        guest.run("zpool create -f -O snapdev=hidden one %s && zpool create -f "
                  "-O snapdev=hidden two %s" % (guest.take_disk(), guest.take_disk()))
        group = "zfsstats"
        conf = cfg.CONF
        conf.register_opts(cinder_driver.volume_opts, group=group)
        drv = zfs_driver.ZFSVolumeDriver(
            configuration=configuration.Configuration(cinder_driver.volume_opts,
                                                      config_group=group),
            host="bench@" + group)
        for name, value in dict(
                zfs_volume_roots=["one/cinder", "two/cinder"], zfs_ssh_host="127.0.0.1",
                zfs_ssh_port=guest.ports["ssh"], zfs_ssh_private_key=guest.ssh_key,
                zfs_ssh_known_hosts_file="/dev/null",
                zfs_ssh_strict_host_key_checking="no", target_helper="fake").items():
            conf.set_override(name, value, group=group)
        drv.do_setup(context.get_admin_context())
        drv.check_for_setup_error()
        stack.callback(drv.zfs.close)
        made = 0
        for count in counts:
            guest.run("for i in $(seq %d %d); do zfs create -s -V 1G "
                      "one/cinder/volume-bench-$i; done" % (made, count - 1), timeout=3600)
            made = count
            drv.get_volume_stats(refresh=True)     # the master connection is up
            new = statistics.median(timed(drv.get_volume_stats, True)
                                    for _ in range(args.repeat))
            old = statistics.median(
                timed(drv.zfs.get_tree, "one/cinder", ["type", "volsize"])
                for _ in range(args.repeat))
            rows.append((count, new, old))
            print("%d volumes: stats %.3fs, the former listing alone %.3fs"
                  % (count, new, old), file=sys.stderr, flush=True)
    print("\nMedian seconds of %d stats updates (SSH to the TCG guest, two pools)\n"
          % args.repeat)
    print("| volumes | stats update (now) | former listing of the root (alone) |")
    print("|---|---|---|")
    for count, new, old in rows:
        print("| %d | %.3f | %.3f |" % (count, new, old))


if __name__ == "__main__":
    main()
