"""``ovs`` ports bound by Neutron ML2/OVN, through nova's services: nova_lxc plugs them
through os-vif into a real Open vSwitch (userspace datapath) run by OVN, both started by
the test (tests/common/ovs.py, tests/common/ovn_neutron.py), as veth pairs whose
container end liblxc takes; the test plays Neutron (logical switch and ports, the
``network-vif-plugged`` event once OVN reports a port up)."""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_lxc import base  # noqa: I001  isort:skip
import time

from nova_common import privsep as nova_common_privsep
from nova_lxc import container
from nova_lxc import hypervisor
from tests.common import ovn_neutron

HOLD = 5    # seconds the server must stay in BUILD without Neutron's event
PING = "i=0; until ping -c 1 -W 2 %s; do i=$((i+1)); [ $i -lt 15 ] || exit 1; done"


class TestOVNPorts(ovn_neutron.OVNNeutron, base.LXCServerTestBase):
    def _setup_compute_service(self):
        self.start_ovn()
        return super()._setup_compute_service()

    def devices(self, port):
        tap = ("tap" + port["id"])[:14]
        return tap, hypervisor.peer_of({"tap": tap})

    def assert_in_container(self, server, nic, port, ip):
        self.assertEqual(0, self.run_in(
            server, "ip link show %s | grep -q '%s' && ip -4 addr show dev %s | "
            "grep -q '%s/24'" % (nic, port["mac_address"], nic, ip)))

    def assert_port_gone(self, port):
        for dev in self.devices(port):
            self.assertFalse(nova_common_privsep.device_exists(dev), dev)
        self.assertEqual([], self.ovs_interfaces(port["id"]))
        self.assertNotIn(self.devices(port)[0], self.host.vsctl("list-ports", "br-int").split())

    def test_boot_after_vif_plugged_ping_attach_detach_delete(self):
        switch = self.ovn_switch()
        a, a_ip = self.ovn_port(status="DOWN", switch=switch, ip="192.168.1.71",
                                mac="fa:16:3e:00:71:01")
        b, b_ip = self.ovn_port(switch=switch, ip="192.168.1.72", mac="fa:16:3e:00:72:01")
        c, c_ip = self.ovn_port(switch=switch, ip="192.168.1.73", mac="fa:16:3e:00:73:01")

        # A's port is not active yet: nova waits for Neutron's event, the port plugged
        # (os-vif's row on the veth's host end) and claimed by OVN, no container running
        self.flags(vif_plugging_timeout=300, vif_plugging_is_fatal=True)
        server_a = self.api.post_server({"server": self._build_server(
            image_uuid=self.images["tar"], networks=[{"port": a["id"]}])})
        self.wait_port_up(a["id"])
        tap_a = self.devices(a)[0]
        self.assertEqual([{"name": tap_a}], self.ovs_interfaces(a["id"]))
        # and stays so (a spawn that did not wait would have its container running within
        # a second or two: checked once, in eventlet mode the check could come first)
        deadline = time.monotonic() + HOLD
        while time.monotonic() < deadline:
            self.assertEqual("BUILD", self.api.get_server(server_a["id"])["status"])
            self.assertNotIn(server_a["id"], container.list_running(self.instances))
            time.sleep(0.5)
        self.vif_plugged(server_a, a["id"])
        server_a = self._wait_for_state_change(server_a, "ACTIVE")
        self.assertEqual("RUNNING", self.state(server_a)["state"])
        [row] = self.host.find(self.host.vsctl, "Interface",
                               "external_ids:iface-id=" + a["id"],
                               columns=("external_ids",))
        ids = dict(row["external_ids"][1])
        self.assertEqual((a["mac_address"], server_a["id"]),
                         (ids["attached-mac"], ids["vm-uuid"]))

        server_b = self.boot("tar", networks=[{"port": b["id"]}])
        self.wait_port_up(b["id"])
        self.wait_console(server_a, "HCILXC READY")
        self.wait_console(server_b, "HCILXC READY")
        self.assert_in_container(server_a, "eth0", a, a_ip)
        self.assert_in_container(server_b, "eth0", b, b_ip)
        self.assertEqual(0, self.run_in(server_a, PING % b_ip))

        # a second ovs port attached to the running B through the API, reached from A
        self.api.attach_interface(server_b["id"], {"interfaceAttachment": {
            "port_id": c["id"]}})
        self._wait_for_instance_action_event(server_b, "attach_interface",
                                             "compute_attach_interface", "success")
        self.wait_port_up(c["id"], "OVN to claim the attached port")
        self.assert_in_container(server_b, "eth1", c, c_ip)
        self.assertEqual(0, self.run_in(server_a, PING % c_ip))

        self.api.detach_interface(server_b["id"], c["id"])
        self._wait_for_instance_action_event(server_b, "detach_interface",
                                             "compute_detach_interface", "success")
        self.assertNotEqual(0, self.run_in(server_b, "ip link show eth1"))
        self.assert_port_gone(c)
        self.host.wait(lambda: not self.port_up(c["id"]), "OVN to see the port go")
        self.assertEqual(0, self.run_in(server_a, PING % b_ip))

        # deleted: no veth, OVS port or external id left
        for server, port in ((server_a, a), (server_b, b)):
            self._delete_server(server)
            self.assertEqual([], self.host.find(self.host.vsctl, "Interface",
                                                "external_ids:vm-uuid=" + server["id"]))
            self.assert_port_gone(port)
