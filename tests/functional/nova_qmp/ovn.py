"""What the tests of servers on OVN-bound ports share: a real Open vSwitch (userspace
datapath; Debian's DPDK build with ``DPDK = True``) run by OVN, both started by the test
(tests/common/ovs.py), os-vif pointed at it, and the test playing Neutron ML2/OVN
(tests/common/ovn_neutron.py, shared with nova_lxc's tests); for QEMU guests, DHCP from
their serial console."""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_qmp import base  # noqa: I001  isort:skip
from tests.common import ovn_neutron


class OVNServerTestBase(ovn_neutron.OVNNeutron, base.QMPServerTestBase):
    def _setup_compute_service(self):
        self.start_ovn()
        return super()._setup_compute_service()

    def dhcp(self, conn, nic, ip):
        """Ask OVN's DHCP for an address on ``nic`` in the guest, and configure it."""
        self.shell(conn, "printf '#!/bin/sh\\n[ \"$1\" = bound ] && ifconfig $interface $ip "
                   "netmask $subnet mtu $mtu && echo HCIGUEST LEASE $interface $ip\\n' "
                   "> /tmp/dhcp.sh; chmod +x /tmp/dhcp.sh; ip link set %s up; "
                   "udhcpc -i %s -n -q -t 20 -T 1 -s /tmp/dhcp.sh" % (nic, nic),
                   "HCIGUEST LEASE %s %s" % (nic, ip), timeout=120)

    def leased_and_pinging(self, server_a, a_ip, server_b, b_ip):
        """Both guests up, each leased its address on eth0 by OVN's DHCP, A pinging B;
        returns the two serial connections."""
        self.wait_console(server_a, self.guest.marker("ready"))
        self.wait_console(server_b, self.guest.marker("ready"))
        conn_a, conn_b = self.serial(server_a), self.serial(server_b)
        self.dhcp(conn_a, "eth0", a_ip)
        self.dhcp(conn_b, "eth0", b_ip)
        # "$((1+1))" is printed as 2 only when the command really ran (not its echo)
        out = self.shell(conn_a, "ping -c 3 -W 5 %s && echo HCIGUEST PING-$((1+1))" % b_ip,
                         "HCIGUEST PING-2", timeout=120)
        self.assertIn(b"3 packets received", out)
        return conn_a, conn_b

    def attach_port(self, server, port):
        """``port`` attached to the running server through the API; the guest sees it
        as eth1 with the port's MAC."""
        before = len(self.console(server))
        self.api.attach_interface(server["id"], {"interfaceAttachment": {
            "port_id": port["id"]}})
        self.wait_console(server, "ADDED NIC eth1 mac=%s" % port["mac_address"],
                          since=before)
