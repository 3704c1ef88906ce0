"""Ping round trip between two guests on one Open vSwitch (userspace ``netdev`` datapath)
run by OVN: nova_qmp against nova's libvirt driver (``virt_type=qemu``), same ``ovs``
ports bound as Neutron ML2/OVN binds them, in one run.

Set-up as benchmarks/nova_net.py (both use nova_net_setup.py): a network and mount
namespace of the run's own, Open vSwitch + OVN from tests/common/ovs.py, the run's own
libvirtd and virtlogd, the parent playing Neutron (one logical switch with native DHCP,
one logical port per guest). Each driver, in a child process of its own, spawns two
guests (the tiny test guest, TCG, 1 vCPU, 256 MiB) with one port each, waits for their
ready marker, and drives each guest's shell through the serial console endpoint the
driver gives nova's serial proxy (``get_serial_console``; ``[serial_console]`` enabled,
loopback, a port range of the run's own): DHCP from OVN on both, then ``ping`` from guest
A to guest B (a few warm-up packets left out). The round trips are the guest's own
``ping`` figures. Prints mean, p50 and p99 per driver and the libvirt / QMP ratios.

    python benchmarks/nova_net_ping.py [-c 200] [-i 0.05]

Run as root (tox -e bench-net-ping).
"""
import argparse
import json
import os
import random
import re
import socket
import statistics
import sys
import time

import nova_net_setup as setup  # benchmarks/: the script's directory

bench = setup.bench
WARMUP = 5
DRIVERS = ("qmp", "libvirt")
RTT = re.compile(rb"seq=(\d+) ttl=\d+ time=([0-9.]+) ms")


class Shell:
    """The guest's console shell over the driver's serial console TCP endpoint."""

    def __init__(self, host, port):
        self.conn = socket.create_connection((host, port), timeout=30)
        self.buf = b""

    def run(self, command, expect, timeout=180):
        self.conn.sendall(command.encode() + b"\n")
        deadline = time.monotonic() + timeout
        while expect.encode() not in self.buf:
            if time.monotonic() > deadline:
                raise RuntimeError("%r not seen after %r; got %r" % (
                    expect, command, self.buf[-2000:]))
            self.conn.settimeout(max(0.1, deadline - time.monotonic()))
            self.buf += self.conn.recv(65536)
        out, self.buf = self.buf.split(expect.encode(), 1)
        return out

    def close(self):
        self.conn.close()


def dhcp(shell, ip):
    """OVN's DHCP for eth0 in the guest (busybox udhcpc), the address configured."""
    # "$((40+2))"-style markers are printed only when the command ran (not in its echo)
    shell.run("printf '#!/bin/sh\\n[ \"$1\" = bound ] && ifconfig $interface $ip netmask "
              "$subnet mtu $mtu\\n' > /tmp/dhcp.sh; chmod +x /tmp/dhcp.sh; "
              "ip link set eth0 up; udhcpc -i eth0 -n -q -t 20 -T 1 -s /tmp/dhcp.sh; "
              "ip -4 -o addr show dev eth0 | grep -q %s && echo LEASE-$((40+2))" % ip,
              "LEASE-42")


def child(work, name, count, interval):
    def serial_console(conf):
        conf.set_override("enabled", True, group="serial_console")
        conf.set_override("port_range", os.environ["BENCH_SERIAL_PORTS"],
                          group="serial_console")
        conf.set_override("proxyclient_address", "127.0.0.1", group="serial_console")
    conf, drv, ctx, os_vif = setup.driver(work, name, configure=serial_console)
    from nova.compute import power_state
    from nova.network import model as network_model
    ports = json.loads(os.environ["BENCH_PORTS"])
    guests, shells = [], []
    try:
        for i, (port_id, mac, _ip) in enumerate(ports):
            nw = network_model.NetworkInfo([setup.port_vif(port_id, mac, "ovs")])
            inst = bench.make_instance(ctx, i)
            inst.id = 10 + i                # libvirt's domain names: instance-<id>
            drv.spawn(ctx, inst, bench.image_meta(), [], None, {}, network_info=nw,
                      block_device_info=None)
            guests.append((inst, nw))
            assert drv.get_info(inst).state == power_state.RUNNING
        for inst, _nw in guests:
            log = os.path.join(conf.instances_path, inst.uuid, "console.log")
            if bench.wait_ready(log, time.monotonic(), timeout=300) is None:
                raise RuntimeError("guest %s not ready (%s)" % (inst.uuid, log))
            endpoint = drv.get_serial_console(ctx, inst)
            shells.append(Shell(endpoint.host, int(endpoint.port)))
        for shell, (_port, _mac, ip) in zip(shells, ports, strict=True):
            dhcp(shell, ip)
        b_ip = ports[1][2]
        out = shells[0].run("ping -q -c 1 -W 10 %s >/dev/null; ping -c %d -i %s %s; "
                            "echo PING-$((1+1))" % (b_ip, count + WARMUP, interval, b_ip),
                            "PING-2", timeout=120 + count * (interval + 1))
        rtts = [float(t) for seq, t in RTT.findall(out) if int(seq) >= WARMUP]
        print("  %s: %d round trips (%d sent)" % (name, len(rtts), count),
              file=sys.stderr, flush=True)
        return {"rtt_ms": rtts, "sent": count}
    finally:
        for shell in shells:
            shell.close()
        for inst, nw in guests:
            drv.destroy(ctx, inst, nw, None, True)
        os_vif.cleanUp()


def parent(count, interval):
    first = random.randrange(20000, 60000, 100)
    os.environ["BENCH_SERIAL_PORTS"] = "%d:%d" % (first, first + 99)
    with setup.Network() as network:
        results = {}
        for d, name in enumerate(DRIVERS):
            ports = []
            for i in range(2):
                mac, ip = "fa:16:3e:02:%02x:%02x" % (d, i), "192.168.1.%d" % (100 + 10 * d + i)
                ports.append((network.port(mac, ip), mac, ip))
            results[name] = setup.run_child(
                __file__, name, ["-c", str(count), "-i", str(interval)], ports, "np-")
    print(json.dumps(results), file=sys.stderr)
    report(results, interval)


def summary(rtts):
    s = sorted(rtts)
    return {"mean": statistics.fmean(s), "p50": statistics.median(s),
            "p99": s[min(len(s) - 1, int(round(0.99 * (len(s) - 1))))]}


def report(r, interval):
    failed = [name for name, res in r.items() if "error" in res or not res["rtt_ms"]]
    for name in failed:
        print("%s failed: %s" % (name, r[name].get("error", "no round trip")))
    if failed:
        sys.exit(1)
    q, lv = summary(r["qmp"]["rtt_ms"]), summary(r["libvirt"]["rtt_ms"])
    print("\nPing between two guests on Open vSwitch (netdev datapath) + OVN, TCG, "
          "one packet every %s s, ms\n" % interval)
    print("| | QMP driver | libvirt driver | libvirt / QMP |")
    print("|---|---|---|---|")
    for key in ("mean", "p50", "p99"):
        print("| %s | %.3f | %.3f | %.2fx |" % (key, q[key], lv[key], lv[key] / q[key]))
    for name in DRIVERS:
        res = r[name]
        print("%s: %d of %d replies" % (name, len(res["rtt_ms"]), res["sent"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-c", type=int, default=200, help="measured pings per driver")
    ap.add_argument("-i", type=float, default=0.05, help="seconds between pings")
    ap.add_argument("--child", choices=DRIVERS)
    ap.add_argument("--work")
    args = ap.parse_args()
    if args.child:
        try:
            result = child(args.work, args.child, args.c, args.i)
        except Exception:       # noqa: B902 - reported, then the exit code says it
            import traceback
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(1)
        print(json.dumps(result), flush=True)
        os._exit(0)     # libvirt's event thread never ends; do not wait for it
    setup.in_own_netns(__file__)    # (see benchmarks/nova_net.py)
    parent(args.c, args.i)


if __name__ == "__main__":
    main()
