"""The set-up shared by the Open vSwitch + OVN benchmarks (nova_net.py: spawn with one
port; nova_net_ping.py: ping between two guests).

- ``in_own_netns``: the run re-executes itself in a network and mount namespace of its
  own (its Open vSwitch's ``ovs-netdev`` and taps cannot meet another datapath's).
- ``Network``: in the parent, Open vSwitch + OVN (tests/common/ovs.py), the run's own
  libvirtd and virtlogd (private ``/run/libvirt``, stopped by PID), and Neutron's part:
  one logical switch with native DHCP, logical ports named by the port ids.
- ``run_child``: each driver runs in a child process of its own (the script again, with
  ``--child``), which reports one JSON line.
- ``driver``: in the child, nova configured as benchmarks/nova_qmp.py does (native
  threads, a fake virtapi, the tiny test guest's raw image), os-vif pointed at the
  parent's OVSDB, the privsep daemons started through ``privsep-helper``, and the QMP or
  libvirt driver's ``init_host`` done.
- ``port_vif``: nova's VIF model of a port as ML2/OVN binds it (or a ``tap`` port).
"""
import contextlib
import importlib.util
import json
import os
import subprocess
import sys
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
MTU = 1400


def in_own_netns(script):
    """Re-execute ``script`` (with this process's arguments) in a network and mount
    namespace of its own, once."""
    if os.environ.get("BENCH_NET_NS") == "1":
        return
    os.execvp("unshare", ["unshare", "--net", "--mount", "--", "sh", "-c",
                          "mount -t sysfs sysfs /sys && ip link set lo up && "
                          'BENCH_NET_NS=1 exec "$0" "$@"', sys.executable, script]
              + sys.argv[1:])


def port_vif(port_id, mac, kind="ovs"):
    from nova.network import model as network_model
    return network_model.VIF(
        id=port_id, address=mac, type=kind, devname=("tap" + port_id)[:14],
        details=dict(OVN_DETAILS) if kind == "ovs" else {}, vnic_type="normal",
        ovs_interfaceid=port_id if kind == "ovs" else None, delegate_create=True,
        active=True, network=network_model.Network(
            id="2b9e5a0c-51f4-4d0e-9d38-3c4b1f1a0a01", bridge="br-int", label="bench",
            meta={"mtu": MTU}, subnets=[]))


def driver(work, name, configure=None):
    """(conf, driver, context, os-vif fixture) of the ``libvirt`` or a QMP child;
    ``configure(conf)`` runs before the driver is made."""
    driver_name = "libvirt.LibvirtDriver" if name == "libvirt" else "qmp.QMPDriver"
    conf = bench.setup_nova(work, driver_name)
    from nova import context
    from nova.virt import fake

    from tests.common import ovs
    if configure:
        configure(conf)
    helper = "%s --config-file %s" % (os.path.join(sys.prefix, "bin", "privsep-helper"),
                                      os.path.join(work, "nova.conf"))
    groups = ["vif_plug_ovs_privileged"]
    if name == "libvirt":
        conf.set_override("virt_type", "qemu", group="libvirt")
        groups.append("nova_sys_admin")
        from nova.virt.libvirt import driver as libvirt_driver
        drv = libvirt_driver.LibvirtDriver(fake.FakeVirtAPI(), read_only=False)
    else:
        from nova_qmp import driver as qmp_driver
        conf.set_override("accelerator", "tcg", group="qmp")
        groups += ["nova_common_privileged", "nova_common_guest_admin"]
        drv = qmp_driver.QMPDriver(fake.FakeVirtAPI())
    import vif_plug_ovs.privsep  # noqa: F401 - registers its group
    for group in groups:
        conf.set_override("helper_command", helper, group=group)

    class Host:         # what OsVif needs of the parent's OVNHost
        db_sock = os.environ["BENCH_OVS_DB"]
    os_vif = ovs.OsVif(Host())
    os_vif.setUp()
    ctx = context.RequestContext("u", "p", is_admin=True)
    drv.init_host("bench")
    return conf, drv, ctx, os_vif


def run_child(script, name, args, ports, prefix):
    """Run ``script --child name args`` with the ports; its last stdout line (JSON)."""
    return bench.run_script_child(script, name, args, prefix,
                                  env=dict(os.environ, BENCH_PORTS=json.dumps(ports)))


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


class Network(contextlib.ExitStack):
    """The parent's Open vSwitch + OVN, libvirtd, and logical switch ``bench`` with
    native DHCP on 192.168.1.0/24 (everything stopped on exit)."""

    def __enter__(self):
        super().__enter__()
        from tests.common import guest_images
        from tests.common import ovs
        guest = guest_images.tiny_guest()
        os.environ["BENCH_IMAGE"] = guest.disk_raw
        os.environ["BENCH_READY"] = guest.marker("ready")
        self.host = ovs.OVNHost()
        self.host.setUp()
        self.callback(self.host.cleanUp)
        os.environ["BENCH_OVS_DB"] = self.host.db_sock
        start_libvirt(self)
        self.dhcp = self.host.nbctl(
            "create", "DHCP_Options", "cidr=192.168.1.0/24",
            'options="lease_time"="3600" "router"="192.168.1.1" "server_id"="192.168.1.1" '
            '"server_mac"="c0:ff:ee:00:00:01" "mtu"="%d"' % MTU).strip()
        self.host.nbctl("ls-add", "bench")
        return self

    def port(self, mac, ip):
        """A logical port with DHCP (as Neutron makes one); returns its id."""
        port_id = str(uuid.uuid4())
        self.host.nbctl("lsp-add", "bench", port_id)
        self.host.nbctl("lsp-set-addresses", port_id, "%s %s" % (mac, ip))
        self.host.nbctl("lsp-set-dhcpv4-options", port_id, self.dhcp)
        return port_id
