"""zfs_manila against manila's in-tree ZFSonLinux driver, side by side, in one run.

Both drivers manage the same zfs-fuse pool on this host, each as deployed: manila-share
runs as an unprivileged service user; the in-tree driver runs every command through
``sudo manila-rootwrap`` (``zfs_use_ssh = False``) and copies snapshots with
``ssh | ssh`` to its own host; ours runs its commands through its oslo.privsep daemon
(started once with ``sudo privsep-helper``). For 10 and 500 existing shares (made in the
measured driver's root before it runs, removed after) it times create, snapshot, share
from snapshot, delete and stats updates (the first one after start, and later ones), and
prints medians and ratios (in-tree / ours) as Markdown tables.

    python benchmarks/manila_zfs.py [--repeat 5] [--counts 10,500] [--json out.json]

Run as root (it makes the pool, the service user, its sudoers entry and a loopback sshd,
and removes them again, stopping every process it started by PID). Needs zfs-fuse, sudo,
openssh-server and nfs-kernel-server (tools/bootstrap.sh installs them).
"""
import argparse
import contextlib
import json
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER = "hcibench"
HOME = "/var/lib/" + USER
# the service user's own virtualenv (Debian's python3: the tox venv's interpreter lives
# under /root), with manila and this project installed, as on a manila-share host
VENV = os.path.join(HOME, "venv")
GiB = 1024 ** 3
OPS = ("create", "snapshot", "share from snapshot", "delete", "stats update",
       "first stats update")


# -- the measuring side (runs as the service user) ----------------------------------------
def measure(config, pool, repeat, which):
    from manila import context as manila_context
    from manila.share import configuration
    from manila.share import driver as share_driver
    from manila.share import manager  # noqa: F401 - manila's own options
    from manila.share import share_types
    from manila.share.drivers.zfsonlinux import driver as zol
    from oslo_config import cfg

    from zfs_manila import driver as ours

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

    class SnapshotModel(dict):
        """The in-tree driver reads ``snapshot.share_instance`` as an attribute."""

        def __getattr__(self, name):
            return self[name]

    cfg.CONF(["--config-file", config], project="manila")
    share_types.get_extra_specs_from_share = lambda s: {}   # a DB lookup: no extra specs
    conf = configuration.Configuration(share_driver.share_opts, config_group=which)
    if which == "intree":
        drv = zol.ZFSonLinuxShareDriver(configuration=conf,
                                        private_storage=MemoryPrivateStorage())
    else:
        drv = ours.ZFSShareDriver(configuration=conf)
    ctx = manila_context.get_admin_context()
    drv.do_setup(ctx)
    drv.check_for_setup_error()

    def share(backend):
        return {"id": str(uuid.uuid4()), "share_id": str(uuid.uuid4()), "size": 1,
                "share_proto": "NFS", "share_type_id": None,
                "host": "bench@%s#%s" % (backend, pool), "share_network_id": None,
                "share_server_id": None}

    def snapshot(parent):
        snap_id = str(uuid.uuid4())
        return SnapshotModel(id=snap_id, snapshot_id=snap_id, share_instance_id=parent["id"],
                             share_id=parent["share_id"], share_instance=parent,
                             share=parent, size=1)

    def timed(func, *args):
        t0 = time.perf_counter()
        func(*args)
        return time.perf_counter() - t0

    t = {op: [] for op in OPS}
    # the first update after start: zfs_manila counts every share's refquota here (and
    # again every zfs_provisioned_recount_interval); later updates use the kept sum
    t["first stats update"].append(timed(drv.get_share_stats, True))
    for _ in range(repeat):
        parent = share(which)
        t["create"].append(timed(drv.create_share, ctx, parent))
        snap = snapshot(parent)
        t["snapshot"].append(timed(drv.create_snapshot, ctx, snap))
        child = share(which)
        t["share from snapshot"].append(timed(drv.create_share_from_snapshot, ctx, child,
                                              snap))
        t["stats update"].append(timed(drv.get_share_stats, True))
        drv.delete_share(ctx, child)
        drv.delete_snapshot(ctx, snap)
        t["delete"].append(timed(drv.delete_share, ctx, parent))
        # one JSON line per round: what a driver managed before it failed still counts
        print(json.dumps({op: statistics.median(v) for op, v in t.items()}), flush=True)


# -- the harness (runs as root) -----------------------------------------------------------
def run(*argv, **kw):
    return subprocess.run(argv, check=True, **kw)


@contextlib.contextmanager
def service_user(workdir):
    """The unprivileged user manila-share runs as, with the sudo rights deployments give
    it: manila-rootwrap (in-tree), privsep-helper (ours), zfs over SSH (in-tree copies)."""
    created = False
    try:
        pwd.getpwnam(USER)
    except KeyError:
        run("useradd", "--system", "--create-home", "--home-dir", "/var/lib/" + USER,
            "--shell", "/bin/bash", USER)
        created = True
    home = pwd.getpwnam(USER).pw_dir
    if not os.path.exists(os.path.join(VENV, "bin", "manila-rootwrap")):
        run("/usr/bin/python3", "-m", "venv", VENV)
        run(os.path.join(VENV, "bin", "pip"), "install", "-q", "manila==23.0.1", REPO)
    else:
        run(os.path.join(VENV, "bin", "pip"), "install", "-q", "--no-deps",
            "--force-reinstall", REPO)
    sudoers = "/etc/sudoers.d/" + USER
    with open(sudoers, "w") as f:
        # rootwrap is called by name, as on a manila host where it is on sudo's path
        f.write('Defaults:%s secure_path="%s:/usr/sbin:/usr/bin:/sbin:/bin"\n'
                % (USER, os.path.join(VENV, "bin")))
        f.write("%s ALL=(root) NOPASSWD: %s, %s, /usr/sbin/zfs\n" % (
            USER, os.path.join(VENV, "bin", "manila-rootwrap"),
            os.path.join(VENV, "bin", "privsep-helper")))
    os.chmod(sudoers, 0o440)
    ssh = os.path.join(home, ".ssh")
    os.makedirs(ssh, mode=0o700, exist_ok=True)
    key = os.path.join(ssh, "id_ed25519")
    if not os.path.exists(key):
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key)
    shutil.copy(key + ".pub", os.path.join(ssh, "authorized_keys"))
    run("chown", "-R", "%s:%s" % (USER, USER), home, workdir)
    try:
        yield ssh
    finally:
        os.unlink(sudoers)
        if created and os.environ.get("HCI_BENCH_KEEP_USER") != "1":
            run("userdel", "--remove", USER, stderr=subprocess.DEVNULL)


@contextlib.contextmanager
def loopback_sshd(workdir, ssh_dir):
    """sshd on 127.0.0.1:22 only: the in-tree driver ssh'es to its own host."""
    os.makedirs("/run/sshd", exist_ok=True)
    run("ssh-keygen", "-A")
    pidfile = os.path.join(workdir, "sshd.pid")
    run("/usr/sbin/sshd", "-o", "ListenAddress=127.0.0.1", "-o", "PidFile=" + pidfile)
    try:
        scan = subprocess.run(["ssh-keyscan", "-t", "ed25519", "127.0.0.1"],
                              capture_output=True, text=True).stdout
        with open(os.path.join(ssh_dir, "known_hosts"), "w") as f:
            f.write(scan)
        run("chown", "%s:%s" % (USER, USER), os.path.join(ssh_dir, "known_hosts"))
        yield
    finally:
        with open(pidfile) as f:
            os.kill(int(f.read()), 15)


def write_config(workdir, pool):
    rootwrap = os.path.join(workdir, "rootwrap.conf")
    with open(rootwrap, "w") as f:
        f.write("[DEFAULT]\nfilters_path=%s\nexec_dirs=/sbin,/usr/sbin,/bin,/usr/bin\n"
                "use_syslog=False\n" % os.path.join(VENV, "etc", "manila", "rootwrap.d"))
    conf = os.path.join(workdir, "manila.conf")
    values = dict(rootwrap=rootwrap, workdir=workdir, pool=pool, user=USER, conf=conf,
                  helper="sudo " + os.path.join(VENV, "bin", "privsep-helper"))
    with open(conf, "w") as f:
        f.write("""[DEFAULT]
# the in-tree driver registers its options in [DEFAULT], three of them required
zfs_share_export_ip = 127.0.0.1
zfs_service_ip = 127.0.0.1
zfs_zpool_list = {pool}/intree
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
zfs_ssh_username = {user}
zfs_dataset_creation_options = atime=off
[ours]
share_driver = zfs_manila.driver.ZFSShareDriver
driver_handles_share_servers = False
zfs_share_export_ip = 127.0.0.1
zfs_dataset_roots = {pool}/ours
zfs_dataset_creation_options = atime:off
[zfs_common_privileged]
helper_command = {helper} --config-file {conf}
""".format(**values))
    return conf


def fill(pool, root, count):
    """``count`` existing share-like datasets under a driver's root, made directly.

    Only the measured driver's root is filled: zfs-fuse mounts at most 1000 filesystems
    (measured: with 1000 mounted, a new dataset stays unmounted and cannot be destroyed,
    "dataset is busy"), so both roots at 500 at once cannot work.
    """
    for i in range(count):
        run("zfs", "create", "-o", "quota=1G", "%s/%s/fill-%04d" % (pool, root, i))


def clear(pool, root):
    """Destroy the fill datasets again."""
    from tests.common import zfsfuse

    names = subprocess.run(["zfs", "list", "-H", "-o", "name", "-r", "-d", "1",
                            "%s/%s" % (pool, root)], capture_output=True, text=True,
                           check=True).stdout.split()[1:]
    for name in names:
        zfsfuse.until_not_busy(["zfs", "destroy", "-r", name], timeout=60)


DRIVERS = ("intree", "ours")


def run_driver(which, config, pool, args):
    """Measure one driver as the service user; its medians, or the error it ended with."""
    script = os.path.join(HOME, "manila_zfs.py")
    shutil.copy(os.path.abspath(__file__), script)
    cmd = ["runuser", "-u", USER, "--", os.path.join(VENV, "bin", "python"), script,
           "--measure", config, pool, which, "--repeat", str(args.repeat)]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": HOME, "LANG": "C.UTF-8"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        out, err = proc.communicate(timeout=args.timeout)
        failure = None if proc.returncode == 0 else err.strip().splitlines()[-1]
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        failure = "no result within %d s" % args.timeout
    rounds = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    result = dict(rounds[-1]) if rounds else {}
    result["rounds"] = len(rounds)
    if failure:
        result["failed"] = failure
    return result


def print_table(count, results):
    theirs, mine = results["intree"], results["ours"]
    print("\n%d existing shares (zfs-fuse pool), median seconds over %d/%d rounds"
          % (count, theirs["rounds"], mine["rounds"]))
    print("| operation | in-tree ZFSonLinux | zfs_manila | in-tree / ours |")
    print("|---|---:|---:|---:|")
    for op in OPS:
        if op in theirs and op in mine:
            print("| %s | %.3f | %.3f | %.1fx |" % (op, theirs[op], mine[op],
                                                    theirs[op] / mine[op]))
        else:
            print("| %s | %s | %s | - |" % (op, "%.3f" % theirs[op] if op in theirs else "-",
                                            "%.3f" % mine[op] if op in mine else "-"))
    for name, res in (("in-tree ZFSonLinux", theirs), ("zfs_manila", mine)):
        if "failed" in res:
            print("\n%s failed: %s" % (name, res["failed"]))
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--counts", default="10,500")
    ap.add_argument("--json")
    ap.add_argument("--timeout", type=int, default=900,
                    help="seconds a driver may take for all rounds at one share count")
    ap.add_argument("--measure", nargs=3, metavar=("CONFIG", "POOL", "DRIVER"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        return measure(*args.measure[:2], args.repeat, args.measure[2])

    sys.path.insert(0, REPO)
    from tests.common import zfsfuse

    workdir = tempfile.mkdtemp(prefix="bench-manila-")
    os.chmod(workdir, 0o755)
    pool = "bench" + uuid.uuid4().hex[:6]
    daemon = zfsfuse.Daemon().start()
    image = os.path.join(workdir, "pool.img")
    with open(image, "wb") as f:
        f.truncate(8 * GiB)
    run("zpool", "create", "-o", "cachefile=none", "-m", "/" + pool, pool, image)
    report = {}
    try:
        for root in ("intree", "ours"):
            run("zfs", "create", "%s/%s" % (pool, root))
        config = write_config(workdir, pool)
        with service_user(workdir) as ssh_dir, loopback_sshd(workdir, ssh_dir):
            for count in [int(c) for c in args.counts.split(",")]:
                report[count] = {}
                for which in DRIVERS:
                    fill(pool, which, count)
                    report[count][which] = run_driver(which, config, pool, args)
                    clear(pool, which)
                print_table(count, report[count])
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=1)
    finally:
        try:
            zfsfuse.destroy_pool(pool)
        finally:
            daemon.stop()       # also unmounts what a failed destroy left mounted
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
