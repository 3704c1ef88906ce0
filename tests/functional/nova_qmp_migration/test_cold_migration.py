"""Cold migration and resize of a QMP server to the other nova-compute host through
nova's API: its disks fetched by the destination over NBD (TLS with the migration
certificates, or plain TCP when configured), data written before read after; confirm
removes the source's copy, revert brings the server back on the source with its disks."""
import os
import time

import nova.conf

from nova_common import disk_transfer
from tests.functional.nova_qmp_migration import base
from tests.functional.nova_qmp_migration import tls

CONF = nova.conf.CONF

SECTOR = 1800000      # a sector of the 1 GiB root disk past what the image uses


class ColdMigrationTest(base.TwoHostsTestBase):

    def _server_with_data(self):
        server = self.boot()
        self.assertEqual("compute", server["OS-EXT-SRV-ATTR:host"])
        # qemu-nbd processes still serving the source's disks, stopped also on failure
        self.addCleanup(disk_transfer.stop_exports, self._kept("compute", server))
        self.wait_console(server, self.guest.marker("ready"))
        self._start_compute("compute2")
        conn = self.serial_on("compute", server)
        self.shell(conn, "echo disk-$((5*5))-data | dd of=/dev/vda bs=512 seek=%d "
                         "conv=fsync 2>/dev/null; echo written-$((1+1))" % SECTOR,
                   "written-2")
        return server

    def _read_back(self, host, server):
        self.wait_console(server, self.guest.marker("ready"))
        conn = self.serial_on(host, server)
        self.shell(conn, "dd if=/dev/vda bs=512 skip=%d count=1 2>/dev/null | head -c 12; "
                         "echo" % SECTOR, "disk-25-data")

    def _kept(self, host, server):
        return self.idir(host, server).path + "_resize"

    def _exporters(self, kept):
        """PIDs of qemu-nbd processes still serving a disk of ``kept``."""
        pids = []
        for name in os.listdir(kept) if os.path.isdir(kept) else ():
            if name.startswith(disk_transfer.PID_PREFIX):
                with open(os.path.join(kept, name)) as f:
                    pid = int(f.read().strip())
                if disk_transfer._alive_qemu_nbd(pid, kept):
                    pids.append(pid)
        return pids

    def _wait_no_exporters(self, kept):
        deadline = time.monotonic() + 30
        while self._exporters(kept):
            self.assertLess(time.monotonic(), deadline, "qemu-nbd still serves")
            time.sleep(0.2)

    def test_cold_migration_over_tls_then_confirm(self):
        tls_dir = tls.make(os.path.join(self.instances, "_tls"), CONF.hci_guests.gid)
        self.flags(live_migration_plain_tcp=False, live_migration_tls_dir=tls_dir,
                   group="qmp")
        server = self._server_with_data()
        self.api.post_server_action(server["id"], {"migrate": {"host": "compute2"}})
        server = self._wait_for_state_change(server, "VERIFY_RESIZE", max_retries=240)
        self.assertEqual("compute2", server["OS-EXT-SRV-ATTR:host"])
        self.assertTrue(self.running_on("compute2", server))
        # the source keeps its stopped copy until the confirm; its disks' servers have
        # ended once the destination read them
        kept = self._kept("compute", server)
        self.assertTrue(os.path.exists(os.path.join(kept, "disk")))
        self.assertFalse(os.path.exists(self.idir("compute", server).path))
        self._wait_no_exporters(kept)
        self._read_back("compute2", server)
        # the root disk on compute2 is its own (no backing file on the other host)
        self.assertTrue(os.path.exists(os.path.join(self.idir("compute2", server).path,
                                                    "disk")))
        self.api.post_server_action(server["id"], {"confirmResize": None})
        server = self._wait_for_state_change(server, "ACTIVE")
        deadline = time.monotonic() + 60
        while os.path.exists(kept):
            self.assertLess(time.monotonic(), deadline, "the source kept its copy")
            time.sleep(0.2)
        self.assertTrue(self.running_on("compute2", server))
        self._delete_server(server)
        self.assertFalse(os.path.exists(self.idir("compute2", server).path))

    def test_resize_to_the_other_host_then_revert(self):
        # plain TCP (the base's setting): a network kept for migrations
        server = self._server_with_data()
        bigger = self.api.post_flavor({"flavor": {
            "name": "bigger", "ram": 640, "vcpus": 2, "disk": 2}})
        self.api.post_server_action(server["id"], {"resize": {"flavorRef": bigger["id"]}})
        server = self._wait_for_state_change(server, "VERIFY_RESIZE", max_retries=240)
        self.assertEqual("compute2", server["OS-EXT-SRV-ATTR:host"])
        self.assertTrue(self.running_on("compute2", server))
        out = self.wait_console(server, self.guest.marker("ready"))
        self.assertIn("DISK vda sectors=4194304", out)               # 2 GiB now
        self._read_back("compute2", server)
        kept = self._kept("compute", server)
        self._wait_no_exporters(kept)

        self.api.post_server_action(server["id"], {"revertResize": None})
        server = self._wait_for_server_parameter(
            server, {"OS-EXT-SRV-ATTR:host": "compute", "status": "ACTIVE"},
            max_retries=240)
        self.assertTrue(self.running_on("compute", server))
        self.assertFalse(os.path.exists(kept))
        self.assertFalse(os.path.exists(self.idir("compute2", server).path))
        # the source's console log is back; the guest boots a second time from its own
        # 1 GiB disk
        ready = self.guest.marker("ready")
        deadline = time.monotonic() + 120
        while self.console(server).count(ready) < 2:
            self.assertLess(time.monotonic(), deadline, self.console(server))
            time.sleep(0.5)
        out = self.console(server)
        self.assertIn("DISK vda sectors=2097152", out[out.index(ready) + len(ready):])
        self._read_back("compute", server)
