"""A server booted through nova's API on a port that Neutron ML2/OVN bound as ``ovs``:
nova_qmp plugs it through os-vif into a real Open vSwitch (userspace datapath) run by OVN,
both started by the test (tests/common/ovs.py); OVN's DHCP answers the guest."""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_qmp import ovn  # noqa: I001  isort:skip
import os

from nova_qmp import qemu


class TestOVNServer(ovn.OVNServerTestBase):
    def test_server_on_an_ovn_port_gets_ovn_dhcp(self):
        port, ip = self.ovn_port()
        server = self.boot("qcow2", networks=[{"port": port["id"]}])
        tap = ("tap" + port["id"])[:14]
        self.assertEqual([{"name": tap}], self.ovs_interfaces(port["id"]))
        self.assertEqual("up", self.host.nbctl("lsp-get-up", port["id"]).strip())
        out = self.wait_console(server, self.guest.marker("ready"))
        self.assertIn("NIC eth0 mac=%s" % port["mac_address"], out)
        conn = self.serial(server)
        self.shell(conn, "ip link set eth0 up; udhcpc -i eth0 -n -q -t 20 -T 1 "
                   "-s /bin/true && echo leased-$((40+2))", "leased-42", timeout=120)
        self.assertIn("lease of %s obtained" % ip, self.console(server))

        self._delete_server(server)
        self.assert_nothing_left(server)
        self.assertEqual([], self.ovs_interfaces(port["id"]))
        self.assertFalse(os.path.exists("/sys/class/net/" + tap))

    def test_two_servers_on_one_switch_dhcp_ping_and_a_hot_plugged_port(self):
        switch = self.ovn_switch()
        a, a_ip = self.ovn_port(switch=switch, ip="192.168.1.51", mac="fa:16:3e:00:51:01")
        b, b_ip = self.ovn_port(switch=switch, ip="192.168.1.52", mac="fa:16:3e:00:52:01")
        c, c_ip = self.ovn_port(switch=switch, ip="192.168.1.53", mac="fa:16:3e:00:53:01")
        server_a = self.boot("qcow2", networks=[{"port": a["id"]}])
        server_b = self.boot("qcow2", networks=[{"port": b["id"]}])
        for port in (a, b):
            self.assertEqual("up", self.host.nbctl("lsp-get-up", port["id"]).strip())
        conn_a, conn_b = self.leased_and_pinging(server_a, a_ip, server_b, b_ip)

        # a third port hot-plugged into the running server A: plugged, claimed, leased
        self.attach_port(server_a, c)
        self.host.wait(lambda: self.host.nbctl("lsp-get-up", c["id"]).strip() == "up",
                       "OVN to claim the hot-plugged port", timeout=120)
        self.dhcp(conn_a, "eth1", c_ip)
        out = self.shell(conn_b, "ping -c 3 -W 5 %s && echo HCIGUEST PING-$((2+2))" % c_ip,
                         "HCIGUEST PING-4", timeout=120)
        self.assertIn(b"3 packets received", out)

        for server in (server_a, server_b):
            self._delete_server(server)
            self.assert_nothing_left(server)
            # no OVS row carries the server's id, no tap stays
            self.assertEqual([], self.host.find(self.host.vsctl, "Interface",
                                                "external_ids:vm-uuid=" + server["id"]))
        ports = self.host.vsctl("list-ports", "br-int").split()
        for port in (a, b, c):
            tap = ("tap" + port["id"])[:14]
            self.assertEqual([], self.ovs_interfaces(port["id"]))
            self.assertNotIn(tap, ports)
            self.assertFalse(os.path.exists("/sys/class/net/" + tap))

    def test_spawn_waits_for_network_vif_plugged_before_the_guest_runs(self):
        """A port Neutron has not reported active: the server stays in BUILD with no
        QEMU process, its port plugged and claimed by OVN, until Neutron's event."""
        port, ip = self.ovn_port(status="DOWN")
        self.flags(vif_plugging_timeout=300, vif_plugging_is_fatal=True)
        server = self.api.post_server({"server": self._build_server(
            image_uuid=self.images["qcow2"], networks=[{"port": port["id"]}])})
        self.host.wait(lambda: self.host.nbctl("lsp-get-up", port["id"]).strip() == "up",
                       "OVN to claim the port", timeout=120)
        # spawn is waiting for the event: no guest yet
        self.assertEqual("BUILD", self.api.get_server(server["id"])["status"])
        self.assertIsNone(self.qemu_pid(server))
        # what Neutron sends once OVN reports the port up
        self.api.api_post("/os-server-external-events", {"events": [{
            "name": "network-vif-plugged", "server_uuid": server["id"],
            "tag": port["id"], "status": "completed"}]})
        server = self._wait_for_state_change(server, "ACTIVE")
        self.assertIsNotNone(self.qemu_pid(server))
        self._delete_server(server)
        self.assert_nothing_left(server)
        self.assertEqual([], self.ovs_interfaces(port["id"]))

    def test_hard_reboot_waits_for_network_vif_plugged_when_configured(self):
        """With ``[workarounds]wait_for_vif_plugged_event_during_hard_reboot`` (as for
        libvirt): the port is unplugged (OVN sees it go) and plugged again, and the
        guest starts only after Neutron's event."""
        port, ip = self.ovn_port()
        server = self.boot("qcow2", networks=[{"port": port["id"]}])
        old_pid = self.qemu_pid(server)
        before = self.host.find(self.host.vsctl, "Interface",
                                "external_ids:iface-id=" + port["id"], columns=("_uuid",))
        self.assertEqual(1, len(before))
        self.flags(vif_plugging_timeout=300, vif_plugging_is_fatal=True)
        self.flags(group="workarounds",
                   wait_for_vif_plugged_event_during_hard_reboot=["normal"])
        self.api.post_server_action(server["id"], {"reboot": {"type": "HARD"}})

        def replugged():
            rows = self.host.find(self.host.vsctl, "Interface",
                                  "external_ids:iface-id=" + port["id"],
                                  columns=("_uuid",))
            return rows and rows != before and \
                self.host.nbctl("lsp-get-up", port["id"]).strip() == "up"
        try:
            self.host.wait(replugged, "the port plugged again and claimed by OVN",
                           timeout=120)
        except TimeoutError:
            self.fail("not replugged: %s; OVN: %s; vswitchd: %s" % (
                self.host.find(self.host.vsctl, "Interface",
                               "external_ids:iface-id=" + port["id"],
                               columns=("_uuid", "name", "ofport", "error")),
                self.host.nbctl("lsp-get-up", port["id"]),
                self.host.log_tail("ovs-vswitchd")))
        # waiting for the event: the old guest is gone, no new one yet
        self.assertEqual("HARD_REBOOT", self.api.get_server(server["id"])["status"])
        self.assertFalse(qemu.alive(self.qemu_pid(server), server["id"]))
        self.api.api_post("/os-server-external-events", {"events": [{
            "name": "network-vif-plugged", "server_uuid": server["id"],
            "tag": port["id"], "status": "completed"}]})
        server = self._wait_for_state_change(server, "ACTIVE")
        self.assertNotIn(self.qemu_pid(server), (None, old_pid))
        self._delete_server(server)
        self.assert_nothing_left(server)
        self.assertEqual([], self.ovs_interfaces(port["id"]))

    def test_no_event_in_time_fails_the_boot_and_leaves_nothing(self):
        port, ip = self.ovn_port(status="DOWN")
        self.flags(vif_plugging_timeout=3, vif_plugging_is_fatal=True)
        server = self.api.post_server({"server": self._build_server(
            image_uuid=self.images["qcow2"], networks=[{"port": port["id"]}])})
        # (plugging, the 3 s wait and the undo take longer than boot()'s 5 s under TCG)
        server = self._wait_for_state_change(server, "ERROR", max_retries=240)
        # nova-compute's words for VirtualInterfaceCreateException, as with libvirt
        self.assertIn("Failed to allocate the network(s)", server["fault"]["message"])
        self.assertIsNone(self.qemu_pid(server))
        self.assertEqual([], self.ovs_interfaces(port["id"]))
        self.assertFalse(os.path.exists("/sys/class/net/" + ("tap" + port["id"])[:14]))
        self.assertFalse(os.path.exists(os.path.join(self.instances, server["id"])))
