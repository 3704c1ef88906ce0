"""Playing Neutron ML2/OVN for tests on nova's functional framework: the real Open vSwitch
and OVN of ``tests.common.ovs.OVNHost`` (userspace datapath; Debian's DPDK build with
``DPDK = True``; one per machine: its lock may make a test wait), os-vif pointed at it,
and ports that nova's fake Neutron (``self.neutron``, nova's ``NeutronFixture``) binds on
this chassis (``ovs`` with ML2/OVN's VIF details by default), each with a logical port
named by its id on a logical switch with OVN's native DHCP.

Mixed into an ``integrated_helpers._IntegratedTestBase`` subclass (nova_qmp's and
nova_lxc's bases): ``start_ovn()`` from its ``_setup_compute_service``, before the compute
service starts (os-vif is initialized as nova-compute does)."""
import copy
import uuid

from vif_plug_ovs import privsep as os_vif_privsep

from tests.common import ovs

OVN_DETAILS = {"port_filter": True, "connectivity": "l2", "ovs_create_tap": True,
               "bridge_name": "br-int", "datapath_type": "netdev"}


class OVNNeutron:
    DPDK = False

    def start_ovn(self):
        self.host = self.useFixture(ovs.OVNHost(dpdk=self.DPDK))
        self.useFixture(ovs.OsVif(self.host))
        # os-vif's privileged calls in this (root) process, as nova's and ours are
        os_vif_privsep.vif_plug.set_client_mode(False)
        self.addCleanup(os_vif_privsep.vif_plug.set_client_mode, True)

    def ovn_switch(self):
        """A logical switch with native DHCP (192.168.1.0/24, nova's fake subnet)."""
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
        """A port of its own (other tests run concurrently with the fixture's ports and
        devices named after them) bound as ``vif_type`` with ``details(port_id)``
        (default: ``ovs``, what ML2/OVN gives) on this chassis, and its logical port
        (named by the port id) on a switch with native DHCP (a new one unless
        ``switch``, from :meth:`ovn_switch`, is given)."""
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

    def wait_port_up(self, port_id, what="OVN to claim the port", timeout=120):
        self.host.wait(lambda: self.port_up(port_id), what, timeout=timeout)

    def vif_plugged(self, server, port_id):
        """What Neutron sends once OVN reports the port up."""
        self.api.api_post("/os-server-external-events", {"events": [{
            "name": "network-vif-plugged", "server_uuid": server["id"],
            "tag": port_id, "status": "completed"}]})
