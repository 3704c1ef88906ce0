"""nova_qmp against nova's own libvirt driver (``virt_type=qemu``), side by side, in one run.

Both drivers are instantiated as nova-compute would (native-threads mode, a fake virtapi:
no database or conductor; images served from a local file instead of Glance) and boot the
project's tiny test guest from its raw disk image under TCG, same flavor (1 vCPU, 256 MiB,
1 GiB root), no network, no VNC. For each: ``spawn()`` until it returns with the instance
RUNNING, the time until the guest's userspace prints its ready marker, and ``destroy()``.
The floor is QEMU alone: the QMP driver's own command line run by hand, from exec to QMP
answering ``query-status`` with ``running``. The QMP driver also reports a QMP round trip
and ``update_provider_tree`` with 1 and 50 instances (defined, powered off: the cost is
reading the instance directories, not QEMU).

Each driver runs in a child process of its own; the parent prints a Markdown table with
medians and ratios (libvirt / QMP).

    python benchmarks/nova_qmp.py [-n 7]

Run as root: it starts libvirtd (benchmarks/start-libvirt.sh) for the libvirt side.
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
IMAGE_ID = "11111111-0000-4000-8000-000000000001"


def ms(values):
    return round(statistics.median(values) * 1000, 1)


# -- child side -----------------------------------------------------------------------------
def setup_nova(work, driver_name):
    """nova's configuration and the few stand-ins for services a driver calls."""
    os.environ["OS_NOVA_DISABLE_EVENTLET_PATCHING"] = "1"
    from nova import monkey_patch
    monkey_patch.patch(backend="threading")
    from nova import objects
    import nova.conf
    import nova.conf.devices
    import nova.conf.neutron
    from nova.virt import images
    from oslo_log import log as logging

    conf = nova.conf.CONF
    logging.register_options(conf)
    # a nova.conf of the run's own, as nova-compute has one: the driver's privsep daemons
    # read it (they check instance paths against its instances_path)
    conf_file = os.path.join(work, "nova.conf")
    with open(conf_file, "w") as f:
        f.write("[DEFAULT]\ninstances_path = %s\n" % os.path.join(work, "i"))
    conf(["--config-file", conf_file], project="nova", default_config_files=[])
    conf.set_override("log_file", os.path.join(work, "nova.log"))
    logging.setup(conf, "nova")
    objects.register_all()
    nova.conf.neutron.register_dynamic_opts(conf)
    nova.conf.devices.register_dynamic_opts(conf)
    for name, value in (("compute_driver", driver_name), ("host", "bench"),
                        ("my_ip", "127.0.0.1"), ("state_path", work),
                        ("instances_path", os.path.join(work, "i"))):
        conf.set_override(name, value)
    conf.set_override("lock_path", os.path.join(work, "locks"), group="oslo_concurrency")
    conf.set_override("enabled", False, group="vnc")

    class LocalImages:
        """Glance's image API for one image, a local raw file."""

        def get(self, context, image_id, **kw):
            return {"id": image_id, "name": "tiny", "disk_format": "raw",
                    "container_format": "bare", "status": "active", "properties": {},
                    "size": os.path.getsize(os.environ["BENCH_IMAGE"]),
                    "min_disk": 0, "min_ram": 0}

        def download(self, context, image_id, data=None, dest_path=None, **kw):
            shutil.copyfile(os.environ["BENCH_IMAGE"], dest_path)

    images.IMAGE_API = LocalImages()
    # no database or conductor behind the driver
    objects.Instance.save = lambda self, *a, **kw: None
    for cls in (objects.VirtualInterfaceList, objects.BlockDeviceMappingList,
                objects.ShareMappingList):
        cls.get_by_instance_uuid = classmethod(
            lambda c, ctx, uuid, **kw: c(objects=[]))
    return conf


def make_instance(ctx, n):
    from nova import objects
    from nova.network import model as network_model
    from nova.tests.unit import fake_instance
    flavor = objects.Flavor(id=1, name="tiny", memory_mb=256, vcpus=1, root_gb=1,
                            ephemeral_gb=0, flavorid="1", swap=0, rxtx_factor=1.0,
                            vcpu_weight=None, disabled=False, is_public=True,
                            extra_specs={}, projects=[])
    inst = fake_instance.fake_instance_obj(
        ctx, flavor=flavor, image_ref=IMAGE_ID, root_gb=1, ephemeral_gb=0, memory_mb=256,
        vcpus=1, display_name="b%d" % n, hostname="b%d" % n, host="bench", node="bench",
        config_drive="", os_type=None, kernel_id="", ramdisk_id="",
        expected_attrs=["system_metadata", "pci_devices", "numa_topology", "vcpu_model",
                        "device_metadata", "trusted_certs", "pci_requests", "info_cache"])
    inst.info_cache = objects.InstanceInfoCache(network_info=network_model.NetworkInfo([]))
    return inst


def image_meta():
    from nova import objects
    return objects.ImageMeta.from_dict({"id": IMAGE_ID, "name": "tiny", "disk_format": "raw",
                                        "container_format": "bare", "status": "active",
                                        "properties": {}})


def wait_ready(path, since, timeout=120):
    marker = os.environ["BENCH_READY"].encode()
    while time.monotonic() - since < timeout:
        try:
            with open(path, "rb") as f:
                if marker in f.read():
                    return time.monotonic() - since
        except FileNotFoundError:
            pass
        time.sleep(0.01)
    return None


def spawn_destroy(drv, ctx, conf, n):
    from nova.compute import power_state
    from nova.network import model as network_model
    result = {"spawn": [], "ready": [], "destroy": []}
    for i in range(n):
        inst = make_instance(ctx, i)
        t0 = time.monotonic()
        drv.spawn(ctx, inst, image_meta(), [], None, {},
                  network_info=network_model.NetworkInfo([]), block_device_info=None)
        state = drv.get_info(inst).state
        result["spawn"].append(time.monotonic() - t0)
        assert state == power_state.RUNNING, state
        log = os.path.join(conf.instances_path, inst.uuid, "console.log")
        result["ready"].append(wait_ready(log, t0))
        t1 = time.monotonic()
        drv.destroy(ctx, inst, network_model.NetworkInfo([]), None, True)
        result["destroy"].append(time.monotonic() - t1)
        print("  %s %d: spawn %.0f ms, ready %.2f s, destroy %.0f ms" % (
            conf.compute_driver, i, result["spawn"][-1] * 1000, result["ready"][-1] or -1,
            result["destroy"][-1] * 1000), file=sys.stderr, flush=True)
    return result


def child_libvirt(work, n):
    conf = setup_nova(work, "libvirt.LibvirtDriver")
    conf.set_override("virt_type", "qemu", group="libvirt")
    conf.set_override("helper_command", os.path.join(sys.prefix, "bin", "privsep-helper"),
                      group="nova_sys_admin")
    from nova import context
    from nova.virt import fake
    from nova.virt.libvirt import driver
    ctx = context.RequestContext("u", "p", is_admin=True)
    drv = driver.LibvirtDriver(fake.FakeVirtAPI(), read_only=False)
    drv.init_host("bench")
    return spawn_destroy(drv, ctx, conf, n)


def child_qmp(work, n):
    conf = setup_nova(work, "qmp.QMPDriver")
    from nova import context
    from nova.compute import provider_tree
    from nova.network import model as network_model
    from nova.virt import fake

    from nova_qmp import driver
    conf.set_override("accelerator", "tcg", group="qmp")
    # the driver's privsep daemons (taps, confined guests) as root runs them here, with
    # the run's nova.conf (an explicit helper_command gets no --config-file by itself)
    for group in ("nova_common_privileged", "nova_common_guest_admin"):
        conf.set_override("helper_command", "%s --config-file %s" % (
            os.path.join(sys.prefix, "bin", "privsep-helper"),
            os.path.join(work, "nova.conf")), group=group)
    ctx = context.RequestContext("u", "p", is_admin=True)
    drv = driver.QMPDriver(fake.FakeVirtAPI())
    drv.init_host("bench")
    out = spawn_destroy(drv, ctx, conf, n)

    # QMP round trip on a running instance
    inst = make_instance(ctx, 100)
    drv.spawn(ctx, inst, image_meta(), [], None, {}, network_info=network_model.NetworkInfo([]))
    rtt = []
    for _ in range(200):
        t = time.monotonic()
        drv.hv._mon.execute(inst.uuid, "query-status")
        rtt.append(time.monotonic() - t)
    out["qmp_rtt"] = rtt
    drv.destroy(ctx, inst, network_model.NetworkInfo([]), None, True)

    # update_provider_tree with 1 and 50 defined instances
    defined = []
    for count in (1, 50):
        while len(defined) < count:
            inst = make_instance(ctx, 200 + len(defined))
            drv.spawn(ctx, inst, image_meta(), [], None, {},
                      network_info=network_model.NetworkInfo([]), power_on=False)
            defined.append(inst)
        times = []
        for _ in range(20):
            tree = provider_tree.ProviderTree()
            tree.new_root("bench", "11111111-0000-4000-8000-0000000000aa")
            t = time.monotonic()
            drv.update_provider_tree(tree, "bench")
            times.append(time.monotonic() - t)
        out["upt_%d" % count] = times
    for inst in defined:
        drv.destroy(ctx, inst, network_model.NetworkInfo([]), None, True)
    drv.cleanup_host("bench")
    return out


def child_floor(work, n):
    """The QMP driver's own QEMU command line, run by hand: exec -> QMP 'running'."""
    conf = setup_nova(work, "qmp.QMPDriver")      # before anything imports eventlet
    from oslo_utils import uuidutils
    from qemu.qmp.legacy import QEMUMonitorProtocol

    from nova_common import hypervisor
    from nova_common import instance_dir
    from nova_common import record
    from nova_qmp import opts
    from nova_qmp import qemu
    opts.register(conf)
    conf.set_override("accelerator", "tcg", group="qmp")
    out = {"floor": [], "ready": []}
    base = os.path.join(work, "base.raw")
    shutil.copyfile(os.environ["BENCH_IMAGE"], base)
    for _i in range(n):
        uuid = uuidutils.generate_uuid()
        idir = instance_dir.InstanceDir(uuid).create()
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", base,
                        idir.file(qemu.ROOT_DISK)], check=True)
        guest = hypervisor.Guest(uuid, idir, record.Record(
            name="floor", vcpus=1, memory_mb=256,
            spec={"machine": conf.qmp.machine_type, "root_disk": True}))
        argv = qemu.command_line(conf, guest)
        # the serial log straight into a file (the driver's supervisor reads a FIFO)
        argv = [a.replace(idir.file("console.fifo"), idir.file(qemu.CONSOLE_LOG))
                for a in argv]
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sock = idir.file(qemu.QMP_SOCKET)
        while True:                 # until QEMU listens (it never daemonizes now)
            try:
                qmp = QEMUMonitorProtocol(sock)
                qmp.connect()
                break
            except Exception:       # noqa: B902 - not there yet, or not listening yet
                if proc.poll() is not None or time.monotonic() - t0 > 60:
                    raise
                time.sleep(0.005)
        status = qmp.cmd("query-status")["status"]
        out["floor"].append(time.monotonic() - t0)
        assert status == "running", status
        out["ready"].append(wait_ready(idir.file(qemu.CONSOLE_LOG), t0))
        qmp.close()
        proc.kill()
        proc.wait()
        idir.remove()
    return out


CHILDREN = {"libvirt": child_libvirt, "qmp": child_qmp, "floor": child_floor}


# -- parent side ----------------------------------------------------------------------------
def run_script_child(script, name, args, prefix="nb-", env=None):
    """Run ``script --child name args --work DIR`` (DIR a new temporary directory, removed
    after unless ``BENCH_KEEP``); its last stdout line, as JSON."""
    work = tempfile.mkdtemp(prefix=prefix, dir="/tmp")     # short: UNIX socket paths
    os.chmod(work, 0o711)     # guests (their own uids) pass through to instances_path
    try:
        proc = subprocess.run([sys.executable, script, "--child", name, *args,
                               "--work", work], stdout=subprocess.PIPE, timeout=3600,
                              env=env)
        if proc.returncode:
            return {"error": "exit %d (log: %s)" % (proc.returncode, work)}
        return json.loads(proc.stdout.decode().strip().splitlines()[-1])
    finally:
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)


def run_child(name, n):
    return run_script_child(__file__, name, ["-n", str(n)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=7, help="spawn/destroy rounds per driver")
    ap.add_argument("--child", choices=CHILDREN)
    ap.add_argument("--work")
    args = ap.parse_args()
    if args.child:
        result = CHILDREN[args.child](args.work, args.n)
        print(json.dumps(result), flush=True)
        os._exit(0)     # libvirt's event thread never ends; do not wait for it

    from tests.common import guest_images
    guest = guest_images.tiny_guest()
    os.environ["BENCH_IMAGE"] = guest.disk_raw
    os.environ["BENCH_READY"] = guest.marker("ready")
    subprocess.run([os.path.join(REPO, "benchmarks", "start-libvirt.sh")], check=True)
    results = {name: run_child(name, args.n) for name in ("floor", "qmp", "libvirt")}
    print(json.dumps(results), file=sys.stderr)
    report(results, args.n)


def report(r, n):
    for name, res in r.items():
        if "error" in res:
            print("%s failed: %s" % (name, res["error"]))
    if any("error" in res for res in r.values()):
        sys.exit(1)
    q, lv, fl = r["qmp"], r["libvirt"], r["floor"]

    def row(what, qmp, libvirt, floor=None):
        ratio = "%.1fx" % (libvirt / qmp) if libvirt else ""
        print("| %s | %s | %s | %s | %s |" % (what, "%.1f" % qmp if qmp else "",
                                            "%.1f" % libvirt if libvirt else "",
                                            "%.1f" % floor if floor else "", ratio))

    print("\nnova_qmp vs nova's libvirt driver (virt_type=qemu, TCG), medians of %d, ms\n" % n)
    print("| | QMP driver | libvirt driver | bare QEMU (floor) | libvirt / QMP |")
    print("|---|---|---|---|---|")
    row("spawn -> RUNNING", ms(q["spawn"]), ms(lv["spawn"]), ms(fl["floor"]))
    row("spawn -> guest userspace", ms([x for x in q["ready"] if x]),
        ms([x for x in lv["ready"] if x]), ms([x for x in fl["ready"] if x]))
    row("destroy", ms(q["destroy"]), ms(lv["destroy"]))
    print("\nQMP driver spawn above the floor: %.1f ms" % (ms(q["spawn"]) - ms(fl["floor"])))
    print("QMP round trip (query-status, 200 calls): median %.2f ms"
          % (statistics.median(q["qmp_rtt"]) * 1000))
    print("update_provider_tree: 1 instance %.2f ms, 50 instances %.2f ms (medians of 20)"
          % (ms(q["upt_1"]), ms(q["upt_50"])))


if __name__ == "__main__":
    main()
