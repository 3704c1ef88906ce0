"""A server booted through nova's API on a port that Neutron ML2/OVN bound as ``ovs``:
nova_qmp plugs it through os-vif into a real Open vSwitch (userspace datapath) run by OVN,
both started by the test (tests/common/ovs.py); OVN's DHCP answers the guest."""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_qmp import base  # noqa: I001  isort:skip
import copy
import os
import uuid

from vif_plug_ovs import privsep as os_vif_privsep

from nova_qmp import qemu
from tests.common import ovs

OVN_DETAILS = {"port_filter": True, "connectivity": "l2", "ovs_create_tap": True,
               "bridge_name": "br-int", "datapath_type": "netdev"}


class TestOVNServer(base.QMPServerTestBase):
    def _setup_compute_service(self):
        self.host = self.useFixture(ovs.OVNHost())
        self.useFixture(ovs.OsVif(self.host))
        # os-vif's privileged calls in this (root) process, as nova's and ours are
        os_vif_privsep.vif_plug.set_client_mode(False)
        self.addCleanup(os_vif_privsep.vif_plug.set_client_mode, True)
        return super()._setup_compute_service()

    def ovn_switch(self):
        """Play Neutron ML2/OVN: a logical switch with native DHCP (192.168.1.0/24)."""
        switch = "ls-" + uuid.uuid4().hex[:8]
        dhcp = self.host.nbctl(
            "create", "DHCP_Options", "cidr=192.168.1.0/24",
            'options="lease_time"="3600" "router"="192.168.1.1" "server_id"="192.168.1.1" '
            '"server_mac"="c0:ff:ee:00:00:01" "mtu"="1400"').strip()
        self.addCleanup(self.host.nbctl, "destroy", "DHCP_Options", dhcp)
        self.host.nbctl("ls-add", switch)
        self.addCleanup(self.host.nbctl, "ls-del", switch)
        return switch, dhcp

    def ovn_port(self, status="ACTIVE", switch=None, ip="192.168.1.44",
                 mac="fa:16:3e:00:11:22"):
        """Play Neutron ML2/OVN: a port of its own (other tests run concurrently with the
        fixture's ports and taps named after them) bound as ``ovs`` on this chassis, and
        its logical port (named by the port id) on a switch with native DHCP (a new one
        unless ``switch``, from :meth:`ovn_switch`, is given)."""
        port = dict(copy.deepcopy(self.neutron.port_1), **{
            "id": str(uuid.uuid4()), "mac_address": mac, "status": status,
            "binding:vif_type": "ovs", "binding:vif_details": dict(OVN_DETAILS)})
        port["fixed_ips"][0]["ip_address"] = ip
        self.neutron._ports[port["id"]] = port
        switch, dhcp = switch or self.ovn_switch()
        self.host.nbctl("lsp-add", switch, port["id"])
        self.host.nbctl("lsp-set-addresses", port["id"], "%s %s" % (port["mac_address"], ip))
        self.host.nbctl("lsp-set-dhcpv4-options", port["id"], dhcp)
        return port, ip

    def ovs_interfaces(self, port_id):
        return self.host.find(self.host.vsctl, "Interface",
                              "external_ids:iface-id=" + port_id)

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

    def dhcp(self, conn, nic, ip):
        """Ask OVN's DHCP for an address on ``nic`` in the guest, and configure it."""
        self.shell(conn, "printf '#!/bin/sh\\n[ \"$1\" = bound ] && ifconfig $interface $ip "
                   "netmask $subnet mtu $mtu && echo HCIGUEST LEASE $interface $ip\\n' "
                   "> /tmp/dhcp.sh; chmod +x /tmp/dhcp.sh; ip link set %s up; "
                   "udhcpc -i %s -n -q -t 20 -T 1 -s /tmp/dhcp.sh" % (nic, nic),
                   "HCIGUEST LEASE %s %s" % (nic, ip), timeout=120)

    def test_two_servers_on_one_switch_dhcp_ping_and_a_hot_plugged_port(self):
        switch = self.ovn_switch()
        a, a_ip = self.ovn_port(switch=switch, ip="192.168.1.51", mac="fa:16:3e:00:51:01")
        b, b_ip = self.ovn_port(switch=switch, ip="192.168.1.52", mac="fa:16:3e:00:52:01")
        c, c_ip = self.ovn_port(switch=switch, ip="192.168.1.53", mac="fa:16:3e:00:53:01")
        server_a = self.boot("qcow2", networks=[{"port": a["id"]}])
        server_b = self.boot("qcow2", networks=[{"port": b["id"]}])
        for port in (a, b):
            self.assertEqual("up", self.host.nbctl("lsp-get-up", port["id"]).strip())
        self.wait_console(server_a, self.guest.marker("ready"))
        self.wait_console(server_b, self.guest.marker("ready"))
        conn_a, conn_b = self.serial(server_a), self.serial(server_b)
        self.dhcp(conn_a, "eth0", a_ip)
        self.dhcp(conn_b, "eth0", b_ip)
        # "$((1+1))" is printed as 2 only when the command really ran (not its echo)
        out = self.shell(conn_a, "ping -c 3 -W 5 %s && echo HCIGUEST PING-$((1+1))" % b_ip,
                         "HCIGUEST PING-2", timeout=120)
        self.assertIn(b"3 packets received", out)

        # a third port hot-plugged into the running server A: plugged, claimed, leased
        before = len(self.console(server_a))
        self.api.attach_interface(server_a["id"], {"interfaceAttachment": {
            "port_id": c["id"]}})
        self.wait_console(server_a, "ADDED NIC eth1 mac=%s" % c["mac_address"],
                          since=before)
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
