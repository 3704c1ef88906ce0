"""Neutron-style ports plugged by nova_common.vifs (nova's os_vif_util conversion, os-vif's
ovs plugin) into a real Open vSwitch (userspace datapath) run by OVN, with QEMU (TCG) test
guests whose traffic that switch really carries.

The test plays Neutron ML2/OVN: it makes the logical switch with native DHCP and the
logical ports (named by the port ids, as Neutron does) and hands nova's VIF model, with the
binding details ML2/OVN gives a chassis without DPDK, to the plugging code. The guests'
command lines come from nova_qmp.qemu, the driver's own builder.
"""
import os
import uuid

import fixtures
from nova import exception
from nova import objects
import nova.conf
from nova.network import model as network_model
import testtools
from vif_plug_ovs import privsep as os_vif_privsep

from nova_common import privsep
from nova_common import vifs
from nova_qmp import qemu as qmp_qemu
from tests.common import guest_images
from tests.common import ovs
from tests.common import qemu

CONF = nova.conf.CONF
CIDR, ROUTER, MTU = "10.0.0.0/24", "10.0.0.1", 1400


def port_vif(port_id, mac, **details):
    """nova's VIF model of a port bound by ML2/OVN on this (netdev, no DPDK) chassis."""
    d = {"port_filter": True, "connectivity": "l2", "ovs_create_tap": True,
         "bridge_name": "br-int", "datapath_type": "netdev"}
    d.update(details)
    return network_model.VIF(
        id=port_id, address=mac, type=network_model.VIF_TYPE_OVS,
        devname=("tap" + port_id)[:14], ovs_interfaceid=port_id, vnic_type="normal",
        delegate_create=True, active=False, details=d,
        network=network_model.Network(id=str(uuid.uuid4()), bridge="br-int", label="net",
                                      subnets=[], meta={"mtu": MTU}))


class TestOVNPorts(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.Timeout(600, gentle=True))
        objects.register_all()
        self.host = self.useFixture(ovs.OVNHost())
        self.useFixture(ovs.OsVif(self.host))
        # the privileged calls (ours and os-vif's) in this root test process
        for context in (privsep.net_admin, os_vif_privsep.vif_plug):
            context.set_client_mode(False)
            self.addCleanup(context.set_client_mode, True)
        self.instance = objects.Instance(id=1, uuid=str(uuid.uuid4()), project_id="p1")
        # Neutron's part: a logical switch with native DHCP
        self.dhcp = self.host.nbctl(
            "create", "DHCP_Options", "cidr=" + CIDR,
            'options="lease_time"="3600" "router"="%s" "server_id"="%s" '
            '"server_mac"="c0:ff:ee:00:00:01" "mtu"="%d"' % (ROUTER, ROUTER, MTU)).strip()
        self.switch = "ls-" + self.id().rsplit(".", 1)[-1][5:30]
        self.host.nbctl("ls-add", self.switch)
        self.addCleanup(self.host.nbctl, "destroy", "DHCP_Options", self.dhcp)
        self.addCleanup(self.host.nbctl, "ls-del", self.switch)

    def logical_port(self, ip):
        port_id, mac = str(uuid.uuid4()), "fa:16:3e:00:00:%02x" % int(ip.split(".")[-1])
        self.host.nbctl("lsp-add", self.switch, port_id)
        self.host.nbctl("lsp-set-addresses", port_id, "%s %s" % (mac, ip))
        self.host.nbctl("lsp-set-dhcpv4-options", port_id, self.dhcp)
        return port_id, mac

    def plug(self, vif):
        tap = vifs.plug(self.instance, vif)
        self.addCleanup(self.unplug_quietly, vif)
        return tap

    def unplug_quietly(self, vif):
        if privsep.device_exists(vif["devname"]):
            vifs.unplug(self.instance, vif)

    def interfaces(self, port_id):
        return self.host.find(self.host.vsctl, "Interface", "external_ids:iface-id=" + port_id,
                              columns=("name", "external_ids", "ofport"))

    def assert_nothing_left(self, vif):
        self.assertFalse(privsep.device_exists(vif["devname"]))
        self.assertEqual([], self.interfaces(vif["id"]))
        self.assertNotIn(vif["devname"], self.host.vsctl("list-ports", "br-int").split())
        self.assertFalse(privsep.device_exists(("qbr" + vif["id"])[:14]))
        self.assertFalse(privsep.device_exists(("qvo" + vif["id"])[:14]))

    def wait_up(self, port_id):
        self.host.wait(lambda: self.host.nbctl("lsp-get-up", port_id).strip() == "up",
                       "OVN to report %s up" % port_id)

    def guest(self, vif, tap):
        image = guest_images.tiny_guest()
        args = ["-drive", "file=%s,format=qcow2,if=virtio,snapshot=on" % image.disk_qcow2]
        args += qmp_qemu.vif_args({vif["id"]: {"tap": tap, "mac": vif["address"]}})
        vm = self.useFixture(qemu.QemuGuest(args, interactive=True))
        vm.wait_for(image.marker("ready"))
        return vm

    def dhcp_address(self, vm):
        """Ask OVN's DHCP for an address on eth0; returns the console after the lease."""
        vm.type("printf '#!/bin/sh\\n[ \"$1\" = bound ] && ifconfig $interface $ip netmask "
                "$subnet mtu $mtu && echo HCIGUEST LEASE $ip\\n' > /tmp/dhcp.sh; "
                "chmod +x /tmp/dhcp.sh; ip link set eth0 up; "
                "udhcpc -i eth0 -n -q -t 20 -T 1 -s /tmp/dhcp.sh")
        return vm.wait_for("HCIGUEST LEASE 10.0.0.", timeout=120)

    def test_two_guests_on_ovn_ports_get_dhcp_and_ping(self):
        # A: the ML2/OVN default (os-vif's create_tap asked for); B: an ML2/OVS hybrid
        # plug (Linux bridge qbr + veth into br-int) bound by the same OVN logical switch
        a_id, a_mac = self.logical_port("10.0.0.11")
        b_id, b_mac = self.logical_port("10.0.0.12")
        a = port_vif(a_id, a_mac)
        b = port_vif(b_id, b_mac, ovs_create_tap=False, ovs_hybrid_plug=True)
        a_tap, b_tap = self.plug(a), self.plug(b)

        # what OVN and the OVS agent bind on, written by os-vif; tap owned by us, IPv6 off
        [row] = self.interfaces(a_id)
        ids = dict(row["external_ids"][1])
        self.assertEqual((a_tap, a_mac, self.instance.uuid, "active"),
                         (row["name"], ids["attached-mac"], ids["vm-uuid"],
                          ids["iface-status"]))
        self.assertGreater(row["ofport"], 0)
        with open("/sys/class/net/%s/owner" % a_tap) as f:
            self.assertEqual(os.getuid(), int(f.read()))
        with open("/proc/sys/net/ipv6/conf/%s/disable_ipv6" % a_tap) as f:
            self.assertEqual("1", f.read().strip())
        with open("/sys/class/net/%s/mtu" % a_tap) as f:
            self.assertEqual(MTU, int(f.read()))
        [row] = self.interfaces(b_id)
        self.assertEqual(("qvo" + b_id)[:14], row["name"])
        self.assertEqual("qbr" + b_id[:11],
                         os.path.basename(os.readlink("/sys/class/net/%s/master" % b_tap)))
        # ovn-controller claims both ports before any guest CPU runs
        self.wait_up(a_id)
        self.wait_up(b_id)

        vm_a, vm_b = self.guest(a, a_tap), self.guest(b, b_tap)
        self.assertIn("HCIGUEST LEASE 10.0.0.11", self.dhcp_address(vm_a))
        self.assertIn("HCIGUEST LEASE 10.0.0.12", self.dhcp_address(vm_b))
        # "$((1+1))" is printed as 2 only when the command really ran (not its echo)
        vm_a.type("ping -c 3 -W 5 10.0.0.12 && echo HCIGUEST PING-$((1+1))")
        log = vm_a.wait_for("HCIGUEST PING-2", timeout=120)
        self.assertIn("3 packets received", log)

        # delete: the guests go, then their ports; nothing left in OVS or on the host
        for vm, vif in ((vm_a, a), (vm_b, b)):
            vm.stop()
            vifs.unplug(self.instance, vif)
            self.assert_nothing_left(vif)
        self.host.wait(lambda: self.host.nbctl("lsp-get-up", a_id).strip() == "down",
                       "OVN to report the port down")

    def test_ml2_ovs_port_without_create_tap_plugs_idempotently(self):
        port_id, mac = self.logical_port("10.0.0.21")
        vif = port_vif(port_id, mac, ovs_create_tap=False, datapath_type="system")
        tap = self.plug(vif)
        self.wait_up(port_id)
        # plug_vifs at nova-compute start: the same port again changes nothing
        self.assertEqual(tap, vifs.plug(self.instance, vif))
        [row] = self.interfaces(port_id)
        self.assertEqual(tap, row["name"])
        self.assertEqual([tap], [p for p in self.host.vsctl("list-ports", "br-int").split()
                                 if p == tap])
        vifs.unplug(self.instance, vif)
        self.assert_nothing_left(vif)
        vifs.unplug(self.instance, vif)        # already gone: fine

    def test_refused_ports_leave_nothing_in_ovs(self):
        port_id, mac = self.logical_port("10.0.0.31")
        before = self.host.vsctl("list-ports", "br-int")
        vhu = port_vif(port_id, mac, vhostuser_mode="server", vhostuser_ovs_plug=True,
                       vhostuser_socket="/run/openvswitch/vhu" + port_id[:11])
        vhu["type"] = network_model.VIF_TYPE_VHOSTUSER
        e = self.assertRaises(exception.VirtualInterfacePlugException, vifs.plug,
                              self.instance, vhu)       # (a socket outside its directory)
        self.assertIn("vhostuser_socket_dir", str(e))
        for kind in ("bridge", "binding_failed", "unbound"):
            bad = port_vif(port_id, mac)
            bad["type"] = kind
            self.assertRaises(exception.VirtualInterfacePlugException, vifs.plug,
                              self.instance, bad)
        self.assertEqual(before, self.host.vsctl("list-ports", "br-int"))
        self.assert_nothing_left(vhu)
