"""Server diagnostics through nova's API (``GET /servers/{id}/diagnostics``, in the
2.48 format and the legacy one) for a running QEMU guest with a tap port on a bridge the
test made and a volume: vCPU time, memory, disk and interface counters that move with
what the guest does."""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_qmp import base  # noqa: I001  isort:skip
import os

from nova.tests.functional.api import client

from tests.common import nova_functional
from tests.functional.nova_qmp.test_server_lifecycle import ip


class TestDiagnostics(base.QMPServerTestBase):
    def diagnostics(self, server, microversion="latest"):
        saved, self.api.microversion = self.api.microversion, microversion
        try:
            return self.api.api_get("/servers/%s/diagnostics" % server["id"]).body
        finally:
            self.api.microversion = saved

    def test_counters_of_a_running_guest(self):
        bridge = "hcidg%d" % (os.getpid() % 100000)
        net = "10.253.%d" % (os.getpid() % 250)
        ip(["link", "add", bridge, "type", "bridge"])
        self.addCleanup(ip, ["link", "del", bridge], check=False)
        ip(["addr", "add", net + ".1/24", "dev", bridge])
        ip(["link", "set", bridge, "up"])
        port, = self.tap_ports(1)
        tap = "tap" + port["id"][:11]
        self.addCleanup(ip, ["link", "del", tap], check=False)
        volume_id = "5f2d8c1a-9b3e-4d7f-8a6c-1e0b9d2c4f73"
        nova_functional.file_volume(
            self, volume_id, os.path.join(self.instances, "volume.img"), 16 * 1024 ** 2)

        server = self.boot("qcow2", networks=[{"port": port["id"]}])
        self.wait_console(server, self.guest.marker("ready"))
        ip(["link", "set", tap, "master", bridge])
        before = len(self.console(server))
        self.api.post_server_volume(server["id"], {"volumeAttachment": {
            "volumeId": volume_id}})
        self.wait_console(server, "ADDED DISK vdb", since=before)

        first = self.diagnostics(server)
        self.assertEqual("running", first["state"])
        self.assertEqual("qemu", first["hypervisor"])
        self.assertEqual(server["flavor"]["vcpus"], first["num_cpus"])
        self.assertGreater(first["cpu_details"][0]["time"], 0)
        self.assertEqual(server["flavor"]["ram"], first["memory_details"]["maximum"])
        self.assertEqual([port["mac_address"]],
                         [n["mac_address"] for n in first["nic_details"]])
        self.assertEqual(2, first["num_disks"])            # root disk and the volume
        self.assertGreater(first["disk_details"][0]["read_bytes"], 0)  # it booted

        conn = self.serial(server)
        self.shell(conn, "ip addr add %s.2/24 dev eth0; ip link set eth0 up; "
                   "ping -c 3 -W 5 %s.1 >/dev/null && echo pinged-$((40+2))"
                   % (net, net), "pinged-42")
        self.shell(conn, "dd if=/dev/zero of=/dev/vdb bs=4096 count=64 conv=fsync "
                   "2>/dev/null; echo wrote-$((1+1))", "wrote-2")
        second = self.diagnostics(server)
        nic = second["nic_details"][0]
        self.assertGreaterEqual(nic["tx_packets"], 3)      # the guest's pings
        self.assertGreaterEqual(nic["rx_packets"], 3)      # the bridge's replies
        self.assertGreater(nic["tx_octets"], first["nic_details"][0]["tx_octets"] or 0)
        vol = second["disk_details"][1]
        self.assertGreaterEqual(vol["write_bytes"],
                                first["disk_details"][1]["write_bytes"] + 64 * 4096)
        self.assertGreaterEqual(vol["write_requests"], 1)
        self.assertGreaterEqual(second["cpu_details"][0]["time"],
                                first["cpu_details"][0]["time"])

        legacy = self.diagnostics(server, microversion="2.1")
        self.assertGreater(legacy["cpu0_time"], 0)
        self.assertGreaterEqual(legacy[tap + "_tx_packets"], 3)
        self.assertIn("root_read", legacy)
        self.assertIn("vol-%s_write" % volume_id, legacy)

        # nova's compute manager answers for a guest that does not run (409)
        self._stop_server(server)
        e = self.assertRaises(client.OpenStackApiException, self.diagnostics, server)
        self.assertEqual(409, e.response.status_code)
        self._delete_server(server)
