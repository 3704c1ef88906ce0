"""Interface hot-plug through nova's services: a ``tap`` port attached to a running
unprivileged container (a veth pair, its host end named for the port, the container end
``eth<N>`` with the port's MAC and fixed IP), reachable from a network namespace the test
owns, and detached without a trace."""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_lxc import base  # noqa: I001  isort:skip
import copy
import os
import uuid

from tests.functional.nova_lxc.test_server_lifecycle import ip


class TestInterfaceHotplug(base.LXCServerTestBase):
    def test_attach_ping_detach(self):
        netns = "hcilxh%d" % (os.getpid() % 100000)
        ip(["netns", "add", netns])
        self.addCleanup(ip, ["netns", "del", netns], check=False)
        port = dict(copy.deepcopy(self.neutron.port_1), id=str(uuid.uuid4()),
                    **{"binding:vif_type": "tap"})
        self.neutron._ports[port["id"]] = port
        tap = "tap" + port["id"][:11]
        self.addCleanup(ip, ["link", "del", tap], check=False)
        server = self.boot("tar")
        self.wait_console(server, "HCILXC READY")
        self.assertNotEqual(0, self.run_in(server, "ip link show eth0"))

        self.api.attach_interface(server["id"], {"interfaceAttachment": {
            "port_id": port["id"]}})
        self._wait_for_instance_action_event(server, "attach_interface",
                                             "compute_attach_interface", "success")
        self.assertIn("veth", ip(["-d", "link", "show", tap]))
        self.assertEqual(0, self.run_in(
            server, "ip link show eth0 | grep -q %s && ip -4 addr show dev eth0 | grep -q "
            "'192.168.1.3/24 brd 192.168.1.255'" % port["mac_address"]))
        # the backend's part: the host end into the test's namespace, with the gateway
        ip(["link", "set", tap, "netns", netns])
        ip(["-n", netns, "addr", "add", "192.168.1.1/24", "dev", tap])
        ip(["-n", netns, "link", "set", tap, "up"])
        self.assertEqual(0, self.run_in(server, "ping -c 1 -W 5 192.168.1.1"))
        # the backend gives the host end back before the detach (as it unbinds), to this
        # process's network namespace (not PID 1's: the tests may run in one of their own)
        ip(["-n", netns, "link", "set", tap, "netns", str(os.getpid())])

        self.api.detach_interface(server["id"], port["id"])
        self._wait_for_instance_action_event(server, "detach_interface",
                                             "compute_detach_interface", "success")
        self.assertEqual("", ip(["link", "show", tap], check=False))
        self.assertNotEqual(0, self.run_in(server, "ip link show eth0"))
        self._delete_server(server)
