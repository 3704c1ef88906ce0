"""What the tests of servers on OVN-bound ports share: a real Open vSwitch (userspace
datapath; Debian's DPDK build with ``DPDK = True``) run by OVN, both started by the test
(tests/common/ovs.py), os-vif pointed at it, and the test playing Neutron ML2/OVN (logical
switches with native DHCP, logical ports named by the port ids, the fake Neutron's ports
bound on this chassis)."""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_qmp import base  # noqa: I001  isort:skip
import copy
import uuid

from vif_plug_ovs import privsep as os_vif_privsep

from tests.common import ovs

OVN_DETAILS = {"port_filter": True, "connectivity": "l2", "ovs_create_tap": True,
               "bridge_name": "br-int", "datapath_type": "netdev"}


class OVNServerTestBase(base.QMPServerTestBase):
    DPDK = False

    def _setup_compute_service(self):
        self.host = self.useFixture(ovs.OVNHost(dpdk=self.DPDK))
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
                 mac="fa:16:3e:00:11:22", vif_type="ovs", details=None):
        """Play Neutron ML2/OVN: a port of its own (other tests run concurrently with the
        fixture's ports and taps named after them) bound as ``vif_type`` with
        ``details(port_id)`` (default: ``ovs``, what ML2/OVN gives) on this chassis, and
        its logical port (named by the port id) on a switch with native DHCP (a new one
        unless ``switch``, from :meth:`ovn_switch`, is given)."""
        port_id = str(uuid.uuid4())
        port = dict(copy.deepcopy(self.neutron.port_1), **{
            "id": port_id, "mac_address": mac, "status": status,
            "binding:vif_type": vif_type,
            "binding:vif_details": details(port_id) if details else dict(OVN_DETAILS)})
        port["fixed_ips"][0]["ip_address"] = ip
        self.neutron._ports[port["id"]] = port
        switch, dhcp = switch or self.ovn_switch()
        self.host.nbctl("lsp-add", switch, port["id"])
        self.host.nbctl("lsp-set-addresses", port["id"], "%s %s" % (port["mac_address"], ip))
        self.host.nbctl("lsp-set-dhcpv4-options", port["id"], dhcp)
        return port, ip

    def ovs_interfaces(self, port_id, columns=("name",)):
        return self.host.find(self.host.vsctl, "Interface",
                              "external_ids:iface-id=" + port_id, columns=columns)

    def port_up(self, port_id):
        return self.host.nbctl("lsp-get-up", port_id).strip() == "up"

    def dhcp(self, conn, nic, ip):
        """Ask OVN's DHCP for an address on ``nic`` in the guest, and configure it."""
        self.shell(conn, "printf '#!/bin/sh\\n[ \"$1\" = bound ] && ifconfig $interface $ip "
                   "netmask $subnet mtu $mtu && echo HCIGUEST LEASE $interface $ip\\n' "
                   "> /tmp/dhcp.sh; chmod +x /tmp/dhcp.sh; ip link set %s up; "
                   "udhcpc -i %s -n -q -t 20 -T 1 -s /tmp/dhcp.sh" % (nic, nic),
                   "HCIGUEST LEASE %s %s" % (nic, ip), timeout=120)
