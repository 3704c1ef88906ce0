"""Spawn with one port: nova_qmp (a ``tap`` port, and an ``ovs`` port bound as Neutron
ML2/OVN binds it) against nova's own libvirt driver (``virt_type=qemu``, the same ``ovs``
port), on one real Open vSwitch (userspace datapath) and OVN, in one run.

The run gets a network and mount namespace of its own (its Open vSwitch's ``ovs-netdev``
and taps cannot meet another datapath's; libvirtd and virtlogd are started inside it on a
private ``/run/libvirt`` and stopped by PID at the end). tests/common/ovs.py starts OVS and
OVN; the parent plays Neutron: one logical switch with native DHCP, one logical port per
spawn, named by the port id. Each driver runs in a child process of its own, as
benchmarks/nova_qmp.py runs them (native threads, a fake virtapi, the tiny test guest's
raw image, 1 vCPU, 256 MiB), and times ``spawn()`` until it returns with the instance
RUNNING, then ``destroy()`` (which unplugs). The port is active, so no driver waits for
``network-vif-plugged``. Prints medians, the QMP driver's cost of an OVS port over a tap
port, and libvirt / QMP ratios.

    python benchmarks/nova_net.py [-n 5]

Run as root (tox -e bench-net). Ping round trips between two guests: nova_net_ping.py.
"""
import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
_spec = importlib.util.spec_from_file_location(
    "bench_nova_qmp", os.path.join(REPO, "benchmarks", "nova_qmp.py"))
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

OVN_DETAILS = {"port_filter": True, "connectivity": "l2", "ovs_create_tap": True,
               "bridge_name": "br-int", "datapath_type": "netdev"}


def port_vif(port_id, mac, kind):
    from nova.network import model as network_model
    return network_model.VIF(
        id=port_id, address=mac, type=kind, devname=("tap" + port_id)[:14],
        details=dict(OVN_DETAILS) if kind == "ovs" else {}, vnic_type="normal",
        ovs_interfaceid=port_id if kind == "ovs" else None, delegate_create=True,
        active=True, network=network_model.Network(
            id="2b9e5a0c-51f4-4d0e-9d38-3c4b1f1a0a01", bridge="br-int", label="bench",
            meta={"mtu": 1400}, subnets=[]))


def child(work, n, name):
    driver_name = "libvirt.LibvirtDriver" if name == "libvirt" else "qmp.QMPDriver"
    conf = bench.setup_nova(work, driver_name)
    from nova import context
    from nova.compute import power_state
    from nova.network import model as network_model
    from nova.virt import fake

    from tests.common import ovs
    helper = "%s --config-file %s" % (os.path.join(sys.prefix, "bin", "privsep-helper"),
                                      os.path.join(work, "nova.conf"))
    groups = ["vif_plug_ovs_privileged"]
    if name == "libvirt":
        conf.set_override("virt_type", "qemu", group="libvirt")
        groups.append("nova_sys_admin")
        from nova.virt.libvirt import driver
        drv = driver.LibvirtDriver(fake.FakeVirtAPI(), read_only=False)
    else:
        from nova_qmp import driver
        conf.set_override("accelerator", "tcg", group="qmp")
        groups += ["nova_common_privileged", "nova_common_guest_admin"]
        drv = driver.QMPDriver(fake.FakeVirtAPI())
    import vif_plug_ovs.privsep  # noqa: F401 - registers its group
    for group in groups:
        conf.set_override("helper_command", helper, group=group)

    class Host:         # what OsVif needs of the parent's OVNHost
        db_sock = os.environ["BENCH_OVS_DB"]
    os_vif = ovs.OsVif(Host())
    os_vif.setUp()
    ctx = context.RequestContext("u", "p", is_admin=True)
    drv.init_host("bench")
    kind = "tap" if name == "qmp-tap" else "ovs"
    ports = json.loads(os.environ["BENCH_PORTS"])
    out = {"spawn": [], "destroy": [], "plug": []}
    plugged = []

    def timed(call):
        def wrapper(*a, **kw):
            t = time.monotonic()
            try:
                return call(*a, **kw)
            finally:
                plugged.append(time.monotonic() - t)
        return wrapper
    # the plugging step inside spawn: the driver's host side of the port
    if name == "libvirt":
        drv.plug_vifs = timed(drv.plug_vifs)
    else:
        from nova_common import vifs
        vifs.plug = timed(vifs.plug)
    for i in range(n + 1):          # round 0 warms up (privsep daemons, image cache)
        port_id, mac = ports[i]
        nw = network_model.NetworkInfo([port_vif(port_id, mac, kind)])
        inst = bench.make_instance(ctx, i)
        del plugged[:]
        t0 = time.monotonic()
        drv.spawn(ctx, inst, bench.image_meta(), [], None, {}, network_info=nw,
                  block_device_info=None)
        state = drv.get_info(inst).state
        spawn = time.monotonic() - t0
        assert state == power_state.RUNNING, state
        plug = sum(plugged)
        t1 = time.monotonic()
        drv.destroy(ctx, inst, nw, None, True)
        destroy = time.monotonic() - t1
        if i:
            out["spawn"].append(spawn)
            out["destroy"].append(destroy)
            out["plug"].append(plug)
        print("  %s %d%s: spawn %.0f ms (plugging %.1f ms), destroy %.0f ms" % (
            name, i, " (warm-up)" if not i else "", spawn * 1000, plug * 1000,
            destroy * 1000), file=sys.stderr, flush=True)
    os_vif.cleanUp()
    return out


def run_child(name, n, ports):
    work = tempfile.mkdtemp(prefix="nn-", dir="/tmp")     # short: UNIX socket paths
    os.chmod(work, 0o711)
    try:
        proc = subprocess.run([sys.executable, __file__, "--child", name, "-n", str(n),
                               "--work", work], stdout=subprocess.PIPE, timeout=3600,
                              env=dict(os.environ, BENCH_PORTS=json.dumps(ports)))
        if proc.returncode:
            return {"error": "exit %d (log: %s)" % (proc.returncode, work)}
        return json.loads(proc.stdout.decode().strip().splitlines()[-1])
    finally:
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)


def start_libvirt(stack):
    """virtlogd and libvirtd of this namespace (private /run/libvirt), stopped by PID."""
    from tests.common import process
    for path in ("/run/libvirt", "/var/lib/libvirt/qemu"):
        os.makedirs(path, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", path], check=True)
    log = open(os.path.join(REPO, ".bench-net-libvirtd.log"), "ab")
    stack.callback(log.close)
    for argv in (["virtlogd"], ["tini", "-s", "--", "libvirtd"]):
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT)
        stack.callback(process.stop, proc)
    for _ in range(200):
        if subprocess.run(["virsh", "-c", "qemu:///system", "uri"],
                          capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError("libvirtd did not answer (see .bench-net-libvirtd.log)")


def parent(n):
    import contextlib

    from tests.common import guest_images
    from tests.common import ovs
    guest = guest_images.tiny_guest()
    os.environ["BENCH_IMAGE"] = guest.disk_raw
    os.environ["BENCH_READY"] = guest.marker("ready")
    with contextlib.ExitStack() as stack:
        host = ovs.OVNHost()
        host.setUp()
        stack.callback(host.cleanUp)
        os.environ["BENCH_OVS_DB"] = host.db_sock
        start_libvirt(stack)
        dhcp = host.nbctl("create", "DHCP_Options", "cidr=192.168.1.0/24",
                          'options="lease_time"="3600" "router"="192.168.1.1" '
                          '"server_id"="192.168.1.1" "server_mac"="c0:ff:ee:00:00:01"'
                          ).strip()
        host.nbctl("ls-add", "bench")
        results = {}
        for name in ("qmp-tap", "qmp-ovs", "libvirt"):
            ports = []
            for i in range(n + 1):
                port_id, mac = str(uuid.uuid4()), "fa:16:3e:01:%02x:%02x" % (len(results), i)
                host.nbctl("lsp-add", "bench", port_id)
                host.nbctl("lsp-set-addresses", port_id, "%s 192.168.1.%d" % (
                    mac, 10 + 20 * len(results) + i))
                host.nbctl("lsp-set-dhcpv4-options", port_id, dhcp)
                ports.append((port_id, mac))
            results[name] = run_child(name, n, ports)
    print(json.dumps(results), file=sys.stderr)
    report(results, n)


def ms(values):
    return statistics.median(values) * 1000


def report(r, n):
    failed = [name for name, res in r.items() if "error" in res]
    for name in failed:
        print("%s failed: %s" % (name, r[name]["error"]))
    if failed:
        sys.exit(1)
    tap, ovs_, lv = r["qmp-tap"], r["qmp-ovs"], r["libvirt"]
    print("\nSpawn with one port on Open vSwitch (netdev datapath) + OVN, TCG, medians of "
          "%d, ms\n" % n)
    print("| | QMP driver, tap port | QMP driver, OVS port | libvirt driver, OVS port "
          "| libvirt / QMP (OVS port) |")
    print("|---|---|---|---|---|")
    for what, label in (("spawn", "spawn -> RUNNING"),
                        ("plug", "of which plugging the port"),
                        ("destroy", "destroy (with unplug)")):
        print("| %s | %.1f | %.1f | %.1f | %.1fx |" % (
            label, ms(tap[what]), ms(ovs_[what]), ms(lv[what]),
            ms(lv[what]) / ms(ovs_[what])))
    print("\nQMP driver, OVS port over tap port: plugging %+.1f ms, whole spawn %+.1f ms "
          "(goal: <= 30 ms)" % (ms(ovs_["plug"]) - ms(tap["plug"]),
                                ms(ovs_["spawn"]) - ms(tap["spawn"])))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=5, help="spawn/destroy rounds per driver")
    ap.add_argument("--child", choices=("qmp-tap", "qmp-ovs", "libvirt"))
    ap.add_argument("--work")
    args = ap.parse_args()
    if args.child:
        result = child(args.work, args.n, args.child)
        print(json.dumps(result), flush=True)
        os._exit(0)     # libvirt's event thread never ends; do not wait for it
    if os.environ.get("BENCH_NET_NS") != "1":
        # a network and mount namespace of the run's own (see the docstring)
        os.execvp("unshare", ["unshare", "--net", "--mount", "--", "sh", "-c",
                              "mount -t sysfs sysfs /sys && ip link set lo up && "
                              'BENCH_NET_NS=1 exec "$0" "$@"', sys.executable, __file__]
                  + sys.argv[1:])
    parent(args.n)


if __name__ == "__main__":
    main()
