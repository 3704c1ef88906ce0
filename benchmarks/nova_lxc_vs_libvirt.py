"""nova_lxc's LXCDriver against nova's own libvirt driver in ``virt_type=lxc`` (Debian's
libvirt LXC driver), side by side, in one run, on the same root filesystem.

Both drivers are instantiated as nova-compute would (native-threads mode, a fake virtapi:
no database or conductor; the image served from a local file instead of Glance; the
scaffolding of benchmarks/nova_qmp.py) and boot the busybox root filesystem of the LXC
tests (tests/common/lxc_rootfs) as a raw ext4 image, same flavor (1 vCPU, 256 MiB, 1 GiB
root), no network. For each: ``spawn()`` until it returns with the instance RUNNING, and
``destroy()``; first on the small image, then on the same tree grown by --grow-mb of files
(the image cached on first use by both: nova_lxc unpacks it once and overlays it; libvirt
with ``images_type=raw`` copies the cached base per instance, since qcow2 overlays need
NBD, which this kernel lacks).

The libvirt child runs in a mount namespace of its own with a libvirtd of its own
(started there and stopped by PID; libvirt's directories private to it) and, on a hybrid
cgroup host like this one, without the cgroup v2 ``unified`` mount, which libvirt 9.0's
LXC driver cannot start containers with (see ``namespace_prefix``; ``--keep-unified``
shows the failure). The LXC driver runs in the host's namespace as it is.

Run as root.

    python benchmarks/nova_lxc_vs_libvirt.py [-n 7] [--grow-mb 200]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from benchmarks import nova_qmp  # noqa: E402  (its nova scaffolding)


def spawn_destroy(drv, ctx, n, first=0):
    from nova.compute import power_state
    from nova.network import model as network_model
    result = {"spawn": [], "destroy": []}
    for i in range(first, first + n + 1):       # the first round is a warm-up
        inst = nova_qmp.make_instance(ctx, i)
        t0 = time.monotonic()
        drv.spawn(ctx, inst, nova_qmp.image_meta(), [], None, {},
                  network_info=network_model.NetworkInfo([]), block_device_info=None)
        state = drv.get_info(inst).state
        spawn = time.monotonic() - t0
        assert state == power_state.RUNNING, state
        t1 = time.monotonic()
        drv.destroy(ctx, inst, network_model.NetworkInfo([]), None, True)
        destroy = time.monotonic() - t1
        if i > first:
            result["spawn"].append(spawn)
            result["destroy"].append(destroy)
        print("  %s %d: spawn %.0f ms, destroy %.0f ms" % (
            type(drv).__name__, i, spawn * 1000, destroy * 1000), file=sys.stderr,
            flush=True)
    return result


def child_libvirt(work, n):
    conf = nova_qmp.setup_nova(work, "libvirt.LibvirtDriver")
    conf.set_override("virt_type", "lxc", group="libvirt")
    conf.set_override("images_type", "raw", group="libvirt")
    conf.set_override("use_cow_images", False)
    conf.set_override("helper_command", "%s --config-file %s" % (
        os.path.join(sys.prefix, "bin", "privsep-helper"),
        os.path.join(work, "nova.conf")), group="nova_sys_admin")
    from nova import context
    from nova.virt import fake
    from nova.virt.libvirt import driver

    from tests.common import process
    libvirtd = start_libvirtd(work)
    try:
        ctx = context.RequestContext("u", "p", is_admin=True)
        drv = driver.LibvirtDriver(fake.FakeVirtAPI(), read_only=False)
        drv.init_host("bench")
        return spawn_destroy(drv, ctx, n)
    finally:
        process.stop(libvirtd)


def child_lxc(work, n):
    conf = nova_qmp.setup_nova(work, "lxc.LXCDriver")
    from nova import context
    from nova.virt import fake

    from nova_lxc import driver
    conf.set_override("apparmor_profile", "unconfined", group="lxc_native")
    for group in ("nova_common_privileged", "nova_lxc_privileged"):
        conf.set_override("helper_command", "%s --config-file %s" % (
            os.path.join(sys.prefix, "bin", "privsep-helper"),
            os.path.join(work, "nova.conf")), group=group)
    ctx = context.RequestContext("u", "p", is_admin=True)
    drv = driver.LXCDriver(fake.FakeVirtAPI())
    drv.init_host("bench")
    return spawn_destroy(drv, ctx, n)


CHILDREN = {"libvirt": child_libvirt, "lxc": child_lxc}


def image(work, grow_mb):
    """The busybox tree as an ext4 image, with ``grow_mb`` MiB of extra files."""
    from tests.common import lxc_rootfs
    tree = os.path.join(work, "tree")
    if not os.path.isdir(tree):
        lxc_rootfs.build_tree(tree)
    if grow_mb:
        bulk = os.path.join(tree, "var", "bulk")
        os.makedirs(bulk, exist_ok=True)
        block = os.urandom(1024 * 1024)
        for i in range(grow_mb):
            with open(os.path.join(bulk, "f%05d" % i), "wb") as f:
                f.write(block)
    return lxc_rootfs.ext4_image(work, "rootfs-%d.ext4" % grow_mb,
                                 size_mb=32 + grow_mb * 11 // 10)


# libvirt's runtime and state of the LXC driver, private to the libvirt child's namespace
PRIVATE = ("/run/libvirt", "/var/lib/libvirt/lxc", "/etc/libvirt/lxc", "/var/log/libvirt/lxc")
UNIFIED = "/sys/fs/cgroup/unified"


def namespace_prefix(keep_unified):
    """The libvirt child's own mount namespace: libvirt's directories private and, on a
    hybrid cgroup host (v1 controllers plus a v2 ``unified`` mount), the ``unified``
    mount left out. With both backends detected, libvirt 9.0's libvirt_lxc cannot make
    the v2 backend's mount point inside the container (``virCgroupV2BindMount``): the
    container's start fails with "Unable to create directory /sys/fs/cgroup/unified".
    Without the v2 mount libvirt uses the v1 controllers alone (the ones this host's
    cgroups are managed with)."""
    steps = ["mkdir -p %s && mount -t tmpfs tmpfs %s" % (p, p) for p in PRIVATE]
    if not keep_unified:
        steps.append("if mountpoint -q %s; then umount %s; fi" % (UNIFIED, UNIFIED))
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
            " && ".join(steps) + ' && exec "$0" "$@"']


def start_libvirtd(work):
    """This namespace's libvirtd (under tini, a child subreaper): its Popen."""
    log = open(os.path.join(work, "libvirtd.log"), "ab")
    proc = subprocess.Popen(["tini", "-s", "--", "libvirtd"], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=log)
    log.close()
    for _ in range(200):
        if subprocess.run(["virsh", "-c", "lxc:///system", "uri"],
                          capture_output=True).returncode == 0:
            return proc
        time.sleep(0.1)
    from tests.common import process
    process.stop(proc)
    raise RuntimeError("libvirtd did not answer (log: %s)" % log.name)


def run_child(name, n, image_path, keep_unified=False):
    work = tempfile.mkdtemp(prefix="lb-", dir="/tmp")
    os.chmod(work, 0o711)
    env = dict(os.environ, BENCH_IMAGE=image_path)
    # libvirt (its libvirtd with it) in a mount namespace of its own
    prefix = namespace_prefix(keep_unified) if name == "libvirt" else []
    proc = None
    try:
        proc = subprocess.run(prefix + [sys.executable, __file__, "--child", name, "-n",
                                        str(n), "--work", work], stdout=subprocess.PIPE,
                              timeout=3600, env=env)
        if proc.returncode:
            return {"error": "exit %d" % proc.returncode}
        return json.loads(proc.stdout.decode().strip().splitlines()[-1])
    finally:
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)


def ms(values):
    return statistics.median(values) * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=7, help="spawn/destroy rounds per driver")
    ap.add_argument("--grow-mb", type=int, default=200)
    ap.add_argument("--keep-unified", action="store_true",
                    help="leave libvirt the host's cgroup v2 'unified' mount (on this "
                         "hybrid host: libvirt-lxc starts no container)")
    ap.add_argument("--child", choices=CHILDREN)
    ap.add_argument("--work")
    args = ap.parse_args()
    if args.child:
        try:
            result = CHILDREN[args.child](args.work, args.n)
        except Exception as e:       # reported by the parent; the child must not hang
            import traceback
            traceback.print_exc()
            result = {"error": "%s: %s" % (type(e).__name__, str(e).splitlines()[-1])}
        print(json.dumps(result), flush=True)
        os._exit(0)     # libvirt's event thread never ends; do not wait for it

    work = tempfile.mkdtemp(prefix="lxcvs", dir="/tmp")
    try:
        subprocess.run([os.path.join(REPO, "benchmarks", "start-libvirt.sh")], check=True,
                       env=dict(os.environ, LIBVIRT_SETUP_ONLY="1"))
        results = {}
        for size in (0, args.grow_mb):
            path = image(work, size)
            for name in ("lxc", "libvirt"):
                results[(name, size)] = run_child(name, args.n, path, args.keep_unified)
        report(results, args.n, args.grow_mb)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(r, n, grow_mb):
    print("\nnova_lxc vs nova's libvirt driver (virt_type=lxc), medians of %d, ms\n" % n)
    print("| image | LXC driver spawn | libvirt-lxc spawn | libvirt / LXC | LXC driver "
          "destroy | libvirt-lxc destroy | libvirt / LXC |")
    print("|---|---|---|---|---|---|---|")

    def cell(res, key):
        return ms(res[key]) if "error" not in res else None

    for size in (0, grow_mb):
        lx, lv = r[("lxc", size)], r[("libvirt", size)]
        row = ["small" if not size else "grown by %d MiB" % size]
        for key in ("spawn", "destroy"):
            a, b = cell(lx, key), cell(lv, key)
            row += ["%.1f" % a if a else "failed", "%.1f" % b if b else "failed",
                    "%.1fx" % (b / a) if a and b else ""]
        print("| " + " | ".join(row) + " |")
    failed = ["%s, image grown by %d MiB: %s" % (k[0], k[1], v["error"])
              for k, v in r.items() if "error" in v]
    if failed:
        print("\nfailed:\n" + "\n".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
