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

Run as root (tox -e bench-net). Ping round trips between two guests: nova_net_ping.py;
the set-up both share: nova_net_setup.py.
"""
import argparse
import json
import os
import statistics
import sys
import time

import nova_net_setup as setup  # benchmarks/: the script's directory

bench = setup.bench
DRIVERS = ("qmp-tap", "qmp-ovs", "libvirt")


def child(work, n, name):
    conf, drv, ctx, os_vif = setup.driver(work, name)
    from nova.compute import power_state
    from nova.network import model as network_model
    kind = "tap" if name == "qmp-tap" else "ovs"
    ports = json.loads(os.environ["BENCH_PORTS"])
    out = {"spawn": [], "destroy": [], "plug": [], "osvif": []}
    plugged, osvif = [], []

    def timed(call, into):
        def wrapper(*a, **kw):
            t = time.monotonic()
            try:
                return call(*a, **kw)
            finally:
                into.append(time.monotonic() - t)
        return wrapper
    # the plugging step inside spawn: the driver's host side of the port, and in it
    # os-vif's (the OVS row; for libvirt also its tap)
    if name == "libvirt":
        drv.plug_vifs = timed(drv.plug_vifs, plugged)
    else:
        from nova_common import vifs
        vifs.plug = timed(vifs.plug, plugged)
    import os_vif as os_vif_lib
    os_vif_lib.plug = timed(os_vif_lib.plug, osvif)
    for i in range(n + 1):          # round 0 warms up (privsep daemons, image cache)
        port_id, mac = ports[i]
        nw = network_model.NetworkInfo([setup.port_vif(port_id, mac, kind)])
        inst = bench.make_instance(ctx, i)
        del plugged[:], osvif[:]
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
            out["osvif"].append(sum(osvif))
        print("  %s %d%s: spawn %.0f ms (plugging %.1f ms, os-vif %.1f ms), destroy %.0f ms"
              % (name, i, " (warm-up)" if not i else "", spawn * 1000, plug * 1000,
                 sum(osvif) * 1000,
            destroy * 1000), file=sys.stderr, flush=True)
    os_vif.cleanUp()
    return out


def parent(n):
    with setup.Network() as network:
        results = {}
        for d, name in enumerate(DRIVERS):
            ports = []
            for i in range(n + 1):
                mac = "fa:16:3e:01:%02x:%02x" % (d, i)
                ports.append((network.port(mac, "192.168.1.%d" % (10 + 20 * d + i)), mac))
            results[name] = setup.run_child(__file__, name, ["-n", str(n)], ports, "nn-")
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
                        ("osvif", "of which os-vif's plug"),
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
    ap.add_argument("--child", choices=DRIVERS)
    ap.add_argument("--work")
    args = ap.parse_args()
    if args.child:
        result = child(args.work, args.n, args.child)
        print(json.dumps(result), flush=True)
        os._exit(0)     # libvirt's event thread never ends; do not wait for it
    setup.in_own_netns(__file__)    # (see the docstring)
    parent(args.n)


if __name__ == "__main__":
    main()
