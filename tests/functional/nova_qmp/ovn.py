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
