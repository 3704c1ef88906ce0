"""Multi-queue interfaces through nova's services: a flavor with two vCPUs and
``hw:vif_multiqueue_enabled`` boots a real QEMU (TCG) guest whose virtio-net interfaces,
the boot one and a hot-plugged one, each have two queue pairs, as the guest's kernel
reports them; their taps are multi-queue."""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_qmp import base  # noqa: I001  isort:skip
import json
import os
import subprocess


def tap_info(dev):
    out = subprocess.run(["ip", "-d", "-j", "link", "show", "dev", dev], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)[0]["linkinfo"]["info_data"]


class TestMultiqueue(base.QMPServerTestBase):
    def test_two_vcpus_two_queue_pairs_per_interface(self):
        ports = self.tap_ports(2)
        taps = [("tap" + port["id"])[:14] for port in ports]
        flavor = self._create_flavor(memory_mb=256, vcpu=2, disk=1, ephemeral=0,
                                     extra_spec={"hw:vif_multiqueue_enabled": "true"})
        server = self.api.post_server({"server": self._build_server(
            image_uuid=self.images["qcow2"], flavor_id=flavor,
            networks=[{"port": ports[0]["id"]}])})
        server = self._wait_for_state_change(server, "ACTIVE")

        self.assertTrue(tap_info(taps[0])["multi_queue"])
        argv = self.qemu_argv(server)
        netdev = [a for a in argv if "ifname=" + taps[0] in a]
        self.assertEqual(1, len(netdev))
        self.assertIn(",queues=2", netdev[0])
        dev = [a for a in argv if a.startswith("virtio-net-pci,")]
        self.assertIn(",mq=on,vectors=6", dev[0])

        self.wait_console(server, self.guest.marker("ready"))
        conn = self.serial(server)
        # the guest's kernel made a queue of each direction per pair
        self.shell(conn, "echo Q$((1+1)):$(ls /sys/class/net/eth0/queues | tr '\\n' ,)",
                   "Q2:rx-0,rx-1,tx-0,tx-1,")

        before = len(self.console(server))
        self.api.attach_interface(server["id"], {"interfaceAttachment": {
            "port_id": ports[1]["id"]}})
        self.wait_console(server, "ADDED NIC eth1 mac=%s" % ports[1]["mac_address"],
                          since=before)
        self.assertTrue(tap_info(taps[1])["multi_queue"])
        self.shell(conn, "echo H$((1+1)):$(ls /sys/class/net/eth1/queues | tr '\\n' ,)",
                   "H2:rx-0,rx-1,tx-0,tx-1,")

        self._delete_server(server)
        self.assert_nothing_left(server)
        for tap in taps:
            self.assertFalse(os.path.exists("/sys/class/net/" + tap))
