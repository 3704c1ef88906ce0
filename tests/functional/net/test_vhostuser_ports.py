"""vhost-user ports: Neutron ``vhostuser`` bindings plugged by nova_common.vifs (nova's
os_vif_util conversion, os-vif's ovs plugin: a ``dpdkvhostuserclient`` port) into Debian's
DPDK build of Open vSwitch (no hugepages: ``tests.common.ovs``), run by OVN, with QEMU
(TCG) test guests as the vhost-user servers, their RAM shared with it.

The test plays Neutron ML2/OVN on a DPDK chassis: logical ports named by the port ids and
nova's VIF model with the binding details ML2/OVN gives there (``vhostuser_mode=server``,
``vhostuser_ovs_plug``, the socket in the configured directory). One guest gets its port
on the command line from nova_qmp's builder; the other boots without a NIC and gets its
port hot-plugged over QMP with the builder's ``chardev-add``/``netdev_add``/
``device_add`` arguments. They ping each other; after hot-unplug (``device_del``, then
``netdev_del``, which removes the chardev too) and unplug nothing is left in Open vSwitch
or in the socket directory.
"""
import os
import stat
import uuid

import fixtures
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
MEMORY_MB = 256


def vhostuser_vif(port_id, mac, sock_dir):
    """nova's VIF model of a port bound by ML2/OVN on a chassis with DPDK."""
    return network_model.VIF(
        id=port_id, address=mac, type=network_model.VIF_TYPE_VHOSTUSER,
        devname=("tap" + port_id)[:14], ovs_interfaceid=port_id, vnic_type="normal",
        active=False,
        details={"port_filter": False, "connectivity": "l2", "datapath_type": "netdev",
                 "vhostuser_mode": "server", "vhostuser_ovs_plug": True,
                 "vhostuser_socket": os.path.join(sock_dir, ("vhu" + port_id)[:14])},
        network=network_model.Network(id=str(uuid.uuid4()), bridge="br-int", label="net",
                                      subnets=[], meta={"mtu": 1500}))


@testtools.skipUnless(ovs.dpdk_available(),
                      "needs Open vSwitch with DPDK (Debian's openvswitch-switch-dpdk: "
                      "%s) and OVN" % ovs.DPDK_VSWITCHD)
class TestVhostUserPorts(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.Timeout(480, gentle=True))
        objects.register_all()
        self.host = self.useFixture(ovs.OVNHost(dpdk=True))
        self.useFixture(ovs.OsVif(self.host))
        for context in (privsep.net_admin, os_vif_privsep.vif_plug):
            context.set_client_mode(False)
            self.addCleanup(context.set_client_mode, True)
        # made by the plug (a directory of its own under the OVS host's: short paths)
        self.sock_dir = os.path.join(self.host.dir, "vhu")
        CONF.set_override("vhostuser_socket_dir", self.sock_dir, group="hci_guests")
        self.addCleanup(CONF.clear_override, "vhostuser_socket_dir", group="hci_guests")
        self.instance = objects.Instance(id=1, uuid=str(uuid.uuid4()), project_id="p1")
        self.switch = "ls-vhu"
        self.host.nbctl("ls-add", self.switch)
        self.addCleanup(self.host.nbctl, "ls-del", self.switch)

    def port(self, ip):
        port_id, mac = str(uuid.uuid4()), "fa:16:3e:00:01:%02x" % int(ip.split(".")[-1])
        self.host.nbctl("lsp-add", self.switch, port_id)
        self.host.nbctl("lsp-set-addresses", port_id, "%s %s" % (mac, ip))
        vif = vhostuser_vif(port_id, mac, self.sock_dir)
        path = vifs.plug(self.instance, vif)
        self.addCleanup(vifs.unplug, self.instance, vif)
        return vif, path

    def interfaces(self, port_id):
        return self.host.find(self.host.vsctl, "Interface", "external_ids:iface-id=" + port_id,
                              columns=("name", "type", "options", "external_ids", "status"))

    def guest(self, args):
        image = guest_images.tiny_guest()
        args = ["-object", qmp_qemu.memory_backend(MEMORY_MB),
                "-drive", "file=%s,format=qcow2,if=virtio,snapshot=on"
                % image.disk_qcow2] + args
        vm = self.useFixture(qemu.QemuGuest(
            args, machine="pc,memory-backend=" + qmp_qemu.GUEST_RAM, memory_mb=MEMORY_MB,
            interactive=True))
        vm.wait_for(image.marker("ready"))
        return vm

    @staticmethod
    def qmp(vm, command, **arguments):
        return vm.qmp(command, **arguments)     # (an error answer raises ExecuteError)

    def connected(self, port_id):
        [row] = self.interfaces(port_id)
        return dict(row["status"][1]).get("status") == "connected"

    def configure(self, vm, ip):
        # "$((1+1))" is printed as 2 only when the command really ran (not its echo)
        vm.type("ip link set eth0 up && ip addr add %s/24 dev eth0 && echo HCIGUEST "
                "ADDR-$((1+1))" % ip)
        vm.wait_for("HCIGUEST ADDR-2", timeout=60)

    def test_two_guests_ping_over_vhost_user_cold_and_hot_plugged(self):
        a, a_sock = self.port("10.0.1.11")
        b, b_sock = self.port("10.0.1.12")

        # what os-vif wrote: the DPDK client port QEMU serves, with Neutron's ids
        [row] = self.interfaces(a["id"])
        ids, options = dict(row["external_ids"][1]), dict(row["options"][1])
        self.assertEqual(("vhu" + a["id"])[:14], row["name"])
        self.assertEqual("dpdkvhostuserclient", row["type"])
        self.assertEqual(a_sock, options["vhost-server-path"])
        self.assertEqual((a["address"], self.instance.uuid),
                         (ids["attached-mac"], ids["vm-uuid"]))
        self.assertTrue(os.stat(self.sock_dir).st_mode & stat.S_ISVTX)
        self.assertFalse(os.path.exists(a_sock))        # QEMU makes it

        # A: the port on the command line, as nova_qmp's builder makes it under TCG
        vm_a = self.guest(qmp_qemu.vif_args(
            {a["id"]: {"vhostuser": a_sock, "mac": a["address"]}}, tcg=True))
        self.assertTrue(self.connected(a["id"]))
        self.host.wait(lambda: self.host.nbctl("lsp-get-up", a["id"]).strip() == "up",
                       "OVN to claim port A")

        # B: boots without a NIC (memory shared), the port hot-plugged over QMP
        vm_b = self.guest([])
        chardev = qmp_qemu.vif_chardev(b["id"], b_sock)
        self.qmp(vm_b, "chardev-add", **chardev)
        self.qmp(vm_b, "netdev_add", **qmp_qemu.vif_netdev(b["id"], None, vhostuser=b_sock))
        self.qmp(vm_b, "device_add", **qmp_qemu.vif_device(b["id"], b["address"], intx=True))
        self.host.wait(lambda: self.connected(b["id"]), "OVS to connect to B's socket")
        self.host.wait(lambda: self.host.nbctl("lsp-get-up", b["id"]).strip() == "up",
                       "OVN to claim port B")

        self.configure(vm_a, "10.0.1.11")
        self.configure(vm_b, "10.0.1.12")
        vm_a.type("ping -c 3 -W 5 10.0.1.12 && echo HCIGUEST PING-$((1+1))")
        log = vm_a.wait_for("HCIGUEST PING-2", timeout=90)
        self.assertIn("3 packets received", log)

        # hot-unplug B (the reverse), then delete both: nothing left
        netdev, dev = qmp_qemu.vif_ids(b["id"])
        self.qmp(vm_b, "device_del", id=dev)
        self.host.wait(lambda: not any(d["name"] == dev for d in
                                       self.qmp(vm_b, "qom-list",
                                                path="/machine/peripheral")),
                       "the guest to release B's NIC")
        self.qmp(vm_b, "netdev_del", id=netdev)
        # the vhost-user netdev took its chardev with it
        self.assertNotIn(chardev["id"], [c["label"] for c in self.qmp(vm_b, "query-chardev")])
        self.host.wait(lambda: not self.connected(b["id"]), "B's socket to close")
        for vm, vif in ((vm_a, a), (vm_b, b)):
            vm.stop()
            vifs.unplug(self.instance, vif)
            self.assertEqual([], self.interfaces(vif["id"]))
        self.assertEqual([], os.listdir(self.sock_dir))
        self.assertEqual([], [p for p in self.host.vsctl("list-ports", "br-int").split()
                              if p.startswith("vhu")])
