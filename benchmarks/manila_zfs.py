"""zfs_manila against manila's in-tree ZFSonLinux driver, side by side, in one run.

Both drivers manage the same zfs-fuse pool on this host, each as deployed: the in-tree
driver runs every command through sudo + manila-rootwrap (``zfs_use_ssh = False``) and
copies snapshots with ``ssh | ssh`` to its own host; ours runs commands through its
oslo.privsep daemon (started with sudo privsep-helper). For each of 10 and 500 existing
shares it times create, snapshot, share from snapshot, delete and a stats update,
and prints medians and ratios (in-tree / ours) as a Markdown table.

    python benchmarks/manila_zfs.py [--repeat 7] [--counts 10,500] [--json out.json]

Needs root, zfs-fuse, sudo, openssh-server and nfs-kernel-server (exportfs); the script
starts its own zfs-fuse daemon and sshd on 127.0.0.1:22 and stops both by PID.
"""
import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from manila import context as manila_context  # noqa: E402
from manila.share import configuration  # noqa: E402
from manila.share import driver as share_driver  # noqa: E402
from manila.share import manager  # noqa: E402,F401 - manila's own options
from manila.share import share_types  # noqa: E402
from manila.share.drivers.zfsonlinux import driver as zol  # noqa: E402
from oslo_config import cfg  # noqa: E402

from tests.common import zfsfuse  # noqa: E402
from zfs_manila import driver as ours  # noqa: E402

CONF = cfg.CONF
GiB = 1024 ** 3


class MemoryPrivateStorage:
    """The in-tree driver keeps dataset names in manila's DB; a dict does it here."""

    def __init__(self):
        self.data = {}

    def get(self, entity_id, key=None, default=None):
        values = self.data.get(entity_id, {})
        return values.get(key, default) if key else values

    def update(self, entity_id, details, delete_existing=False):
        self.data.setdefault(entity_id, {}).update(details)

    def delete(self, entity_id, key=None):
        if key:
            self.data.get(entity_id, {}).pop(key, None)
        else:
            self.data.pop(entity_id, None)


@contextlib.contextmanager
def loopback_sshd(workdir):
    """sshd on 127.0.0.1:22 with a key for root: the in-tree driver ssh'es to itself."""
    key = os.path.expanduser("~/.ssh/id_ed25519")
    if not os.path.exists(key):
        os.makedirs(os.path.dirname(key), mode=0o700, exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    auth = os.path.expanduser("~/.ssh/authorized_keys")
    with open(key + ".pub") as f:
        pub = f.read()
    existing = open(auth).read() if os.path.exists(auth) else ""
    if pub not in existing:
        with open(auth, "a") as f:
            f.write(pub)
    os.makedirs("/run/sshd", exist_ok=True)
    subprocess.run(["ssh-keygen", "-A"], check=True)
    pidfile = os.path.join(workdir, "sshd.pid")
    subprocess.run(["/usr/sbin/sshd", "-o", "ListenAddress=127.0.0.1", "-o",
                    "PidFile=" + pidfile], check=True)
    known = os.path.expanduser("~/.ssh/known_hosts")
    scan = subprocess.run(["ssh-keyscan", "-t", "ed25519", "127.0.0.1"],
                          capture_output=True, text=True).stdout
    with open(known, "a") as f:
        f.write(scan)
    try:
        yield
    finally:
        with open(pidfile) as f:
            os.kill(int(f.read()), 15)


def write_config(workdir, pool):
    rootwrap = os.path.join(workdir, "rootwrap.conf")
    with open(rootwrap, "w") as f:
        f.write("[DEFAULT]\nfilters_path=%s\nexec_dirs=/sbin,/usr/sbin,/bin,/usr/bin\n"
                "use_syslog=False\n" % os.path.join(sys.prefix, "etc", "manila", "rootwrap.d"))
    helper = "sudo %s" % os.path.join(sys.prefix, "bin", "privsep-helper")
    conf = os.path.join(workdir, "manila.conf")
    with open(conf, "w") as f:
        f.write("""[DEFAULT]
rootwrap_config = {rootwrap}
enabled_share_backends = intree,ours
state_path = {workdir}
[oslo_concurrency]
lock_path = {workdir}
[intree]
share_driver = manila.share.drivers.zfsonlinux.driver.ZFSonLinuxShareDriver
driver_handles_share_servers = False
zfs_share_export_ip = 127.0.0.1
zfs_service_ip = 127.0.0.1
zfs_zpool_list = {pool}/intree
zfs_use_ssh = False
zfs_ssh_username = root
zfs_dataset_creation_options = []
[ours]
share_driver = zfs_manila.driver.ZFSShareDriver
driver_handles_share_servers = False
zfs_share_export_ip = 127.0.0.1
zfs_dataset_roots = {pool}/ours
[zfs_common_privileged]
helper_command = {helper} --config-file {conf}
""".format(rootwrap=rootwrap, workdir=workdir, pool=pool, helper=helper, conf=conf))  # noqa: UP032
    return conf


def make_drivers():
    group_conf = {}
    for name in ("intree", "ours"):
        group_conf[name] = configuration.Configuration(share_driver.share_opts,
                                                       config_group=name)
    intree = zol.ZFSonLinuxShareDriver(configuration=group_conf["intree"],
                                       private_storage=MemoryPrivateStorage())
    mine = ours.ZFSShareDriver(configuration=group_conf["ours"])
    ctx = manila_context.get_admin_context()
    for drv in (intree, mine):
        drv.do_setup(ctx)
        drv.check_for_setup_error()
    return {"in-tree ZFSonLinux": intree, "zfs_manila": mine}


def share(driver_name, pool):
    root = "intree" if driver_name.startswith("in-tree") else "ours"
    return {"id": str(uuid.uuid4()), "share_id": str(uuid.uuid4()), "size": 1,
            "share_proto": "NFS", "share_type_id": None,
            "host": "bench@%s#%s" % (root, pool), "share_network_id": None,
            "share_server_id": None}


def snapshot(for_share):
    snap_id = str(uuid.uuid4())
    return {"id": snap_id, "snapshot_id": snap_id, "share_instance_id": for_share["id"],
            "share_id": for_share["share_id"], "share_instance": for_share,
            "share": for_share, "size": 1}


class SnapshotModel(dict):
    """The in-tree driver reads ``snapshot.share_instance`` as an attribute."""

    def __getattr__(self, name):
        return self[name]


def timed(func, *args):
    t0 = time.perf_counter()
    func(*args)
    return time.perf_counter() - t0


def fill(pool, root, count):
    """``count`` existing share-like datasets, made directly (it is not what we time)."""
    have = len(subprocess.run(["zfs", "list", "-H", "-o", "name", "-r", "-d", "1",
                               "%s/%s" % (pool, root)], capture_output=True,
                              text=True).stdout.split()) - 1
    for i in range(have, count):
        subprocess.run(["zfs", "create", "-o", "quota=1G", "%s/%s/fill-%04d" % (pool, root, i)],
                       check=True)


def measure(drivers, pool, repeat):
    ctx = manila_context.get_admin_context()
    results = {}
    for name, drv in drivers.items():
        t = {k: [] for k in ("create", "snapshot", "share from snapshot", "delete",
                             "stats update")}
        for _ in range(repeat):
            parent = share(name, pool)
            t["create"].append(timed(drv.create_share, ctx, parent))
            snap = snapshot(parent)
            t["snapshot"].append(timed(drv.create_snapshot, ctx, snap))
            child = share(name, pool)
            t["share from snapshot"].append(timed(drv.create_share_from_snapshot, ctx, child,
                                                  SnapshotModel(snap)))
            t["stats update"].append(timed(drv.get_share_stats, True))
            drv.delete_share(ctx, child)
            drv.delete_snapshot(ctx, snap)
            t["delete"].append(timed(drv.delete_share, ctx, parent))
        results[name] = {k: statistics.median(v) for k, v in t.items()}
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--counts", default="10,500")
    ap.add_argument("--json")
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="bench-manila-")
    pool = "bench" + uuid.uuid4().hex[:6]
    daemon = zfsfuse.Daemon().start()
    image = os.path.join(workdir, "pool.img")
    with open(image, "wb") as f:
        f.truncate(8 * GiB)
    subprocess.run(["zpool", "create", "-m", "/" + pool, pool, image], check=True)
    try:
        for root in ("intree", "ours"):
            subprocess.run(["zfs", "create", "%s/%s" % (pool, root)], check=True)
        CONF(["--config-file", write_config(workdir, pool)], project="manila")
        share_types.get_extra_specs_from_share = lambda s: {}
        with loopback_sshd(workdir):
            drivers = make_drivers()
            report = {}
            for count in [int(c) for c in args.counts.split(",")]:
                for root in ("intree", "ours"):
                    fill(pool, root, count)
                report[count] = measure(drivers, pool, args.repeat)
                print_table(count, report[count])
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=1)
    finally:
        subprocess.run(["zpool", "destroy", "-f", pool], check=False)
        daemon.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def print_table(count, results):
    theirs, mine = results["in-tree ZFSonLinux"], results["zfs_manila"]
    print("\n%d existing shares, median seconds (%s)" % (count, "zfs-fuse pool"))
    print("| operation | in-tree ZFSonLinux | zfs_manila | ratio |")
    print("|---|---:|---:|---:|")
    for op in mine:
        print("| %s | %.3f | %.3f | %.1fx |" % (op, theirs[op], mine[op], theirs[op] / mine[op]))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
