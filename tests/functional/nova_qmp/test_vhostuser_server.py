"""Servers on ports Neutron bound as ``vhostuser`` (Open vSwitch with DPDK), through nova's
API, conductor, scheduler and nova-compute with the QMP driver, its guests confined
(each QEMU under a uid of its own): Debian's DPDK build of Open vSwitch (no hugepages,
tests/common/ovs.py) run by OVN, the vif details those of Neutron's OVS mechanism driver
for a ``netdev`` datapath whose ``iface_types`` list ``dpdkvhostuserclient`` (neutron
29: ``vhostuser_mode=server``, ``vhostuser_ovs_plug``, ``vhostuser_socket`` =
``<vhostuser_socket_dir>/vhu<port id>``[:14]). Two servers ping each other over
OVN-leased addresses; a third vhost-user port is hot-plugged into one and detached
again; a server whose flavor does not share its RAM is refused a vhost-user hot-plug."""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_qmp import ovn  # noqa: I001  isort:skip
import os
import shutil
import stat
import tempfile

from nova.tests.functional.api import client
import testtools

from nova_common import confine
from tests.common import ovs


def proc_uid(pid):
    with open("/proc/%d/status" % pid) as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Uid:"))


@testtools.skipUnless(ovs.dpdk_available(),
                      "needs Open vSwitch with DPDK (Debian's openvswitch-switch-dpdk: "
                      "%s) and OVN" % ovs.DPDK_VSWITCHD)
class TestVhostUserServer(ovn.OVNServerTestBase):
    DPDK = True

    def _setup_compute_service(self):
        # the socket directory (made by the first plug) in one the guest uids may
        # traverse, as /var/lib/nova; short: UNIX socket paths stay under 108 bytes
        parent = tempfile.mkdtemp(prefix="v", dir="/tmp")
        self.addCleanup(shutil.rmtree, parent, True)
        os.chmod(parent, 0o711)
        self.sock_dir = os.path.join(parent, "vhu")
        self.flags(vhostuser_socket_dir=self.sock_dir, group="hci_guests")
        return super()._setup_compute_service()

    def vhostuser_details(self, port_id):
        """What neutron 29's OVS mechanism driver binds on a DPDK netdev host."""
        return {"port_filter": False, "ovs_hybrid_plug": False,
                "vhostuser_mode": "server", "vhostuser_ovs_plug": True,
                "vhostuser_socket": os.path.join(self.sock_dir, ("vhu" + port_id)[:14]),
                "datapath_type": "netdev", "bridge_name": "br-int"}

    def vhu_port(self, switch, n):
        return self.ovn_port(switch=switch, ip="192.168.1.%d" % n,
                             mac="fa:16:3e:00:%02d:01" % n, vif_type="vhostuser",
                             details=self.vhostuser_details)

    def connected(self, port_id):
        rows = self.ovs_interfaces(port_id, columns=("status",))
        return bool(rows) and dict(rows[0]["status"][1]).get("status") == "connected"

    def assert_port_gone(self, port):
        self.assertEqual([], self.ovs_interfaces(port["id"]))
        self.assertFalse(os.path.lexists(port["binding:vif_details"]["vhostuser_socket"]))

    def post(self, networks, flavor=None):
        server = self._build_server(image_uuid=self.images["qcow2"], networks=networks,
                                    flavor_id=flavor)
        return self.api.post_server({"server": server})

    def test_two_servers_ping_over_vhost_user_and_a_hot_plugged_port(self):
        switch = self.ovn_switch()
        a, a_ip = self.vhu_port(switch, 61)
        b, b_ip = self.vhu_port(switch, 62)
        c, c_ip = self.vhu_port(switch, 63)
        d, _d_ip = self.vhu_port(switch, 64)
        # (all three spawn at once; the third has no port and no shared RAM)
        server_a, server_b = self.post([{"port": a["id"]}]), self.post([{"port": b["id"]}])
        plain = self.post("none")
        server_a, server_b, plain = (self._wait_for_state_change(s, "ACTIVE")
                                     for s in (server_a, server_b, plain))

        uids = set()
        for server, port in ((server_a, a), (server_b, b)):
            uid = proc_uid(self.qemu_pid(server))
            self.assertIn(uid, confine.uid_range())         # confined: not nova's user
            uids.add(uid)
            sock = port["binding:vif_details"]["vhostuser_socket"]
            # QEMU (the guest uid) made the socket; os-vif's dpdkvhostuserclient port
            # connected to it; ovn-controller bound it
            self.assertEqual(uid, os.lstat(sock).st_uid)
            self.assertTrue(stat.S_ISSOCK(os.lstat(sock).st_mode))
            [row] = self.ovs_interfaces(port["id"], columns=("name", "type", "options"))
            self.assertEqual((("vhu" + port["id"])[:14], "dpdkvhostuserclient", sock),
                             (row["name"], row["type"],
                              dict(row["options"][1])["vhost-server-path"]))
            self.host.wait(lambda p=port: self.connected(p["id"]),
                           "Open vSwitch to connect to the socket")
            self.host.wait(lambda p=port: self.port_up(p["id"]), "OVN to claim the port")
            self.assertIn("share=on", " ".join(self.qemu_argv(server)))
        self.assertEqual(2, len(uids))

        conn_a, conn_b = self.leased_and_pinging(server_a, a_ip, server_b, b_ip)

        # a vhost-user port hot-plugged into B (its RAM is shared), leased, reached
        self.attach_port(server_b, c)
        self.host.wait(lambda: self.connected(c["id"]) and self.port_up(c["id"]),
                       "OVS and OVN to take the hot-plugged port", timeout=120)
        self.dhcp(conn_b, "eth1", c_ip)
        out = self.shell(conn_a, "ping -c 3 -W 5 %s && echo HCIGUEST PING-$((2+2))" % c_ip,
                         "HCIGUEST PING-4", timeout=120)
        self.assertIn(b"3 packets received", out)
        before = len(self.console(server_b))
        self.api.detach_interface(server_b["id"], c["id"])
        self.wait_console(server_b, "REMOVED NIC eth1", since=before)
        self.host.wait(lambda: not self.ovs_interfaces(c["id"]), "the port's OVS row to go")
        self.assertEqual([b["id"]], [i["port_id"] for i in
                                     self.api.get_port_interfaces(server_b["id"])])
        self.assert_port_gone(c)

        # the server without shared RAM: refused, nothing made
        ex = self.assertRaises(
            client.OpenStackApiException, self.api.attach_interface, plain["id"],
            {"interfaceAttachment": {"port_id": d["id"]}})
        self.assertEqual(500, ex.response.status_code)      # nova's InterfaceAttachFailed
        self.assertIn("Failed to attach network adapter device", ex.response.text)
        self.assertIn("its memory is not shared", self.stdlog.logger.output)
        self.assertEqual([], self.api.get_port_interfaces(plain["id"]))
        self.assert_port_gone(d)

        for server in (server_a, server_b, plain):
            self._delete_server(server)
            self.assert_nothing_left(server)
            self.assertEqual([], self.host.find(self.host.vsctl, "Interface",
                                                "external_ids:vm-uuid=" + server["id"]))
        for port in (a, b, c, d):
            self.assert_port_gone(port)
        self.assertEqual([], os.listdir(self.sock_dir))
        self.assertEqual([], [p for p in self.host.vsctl("list-ports", "br-int").split()
                              if p.startswith("vhu")])
