"""Live migration of a running QMP guest from one nova-compute host to another through
nova's API: its local disks copied (block migration), its RAM, and the guest going on
where it was (a counter on its serial console, a value in its memory, data on its disk);
an aborted migration leaves it running on the source and nothing on the destination."""
import os
import signal
import time

import nova.conf

from nova_common import record
from tests.common import nova_functional
from tests.functional.nova_qmp_migration import base
from tests.functional.nova_qmp_migration import tls

CONF = nova.conf.CONF

class LiveMigrationTest(base.TwoHostsTestBase):

    def test_block_migration_over_tls_keeps_the_guest_running(self):
        tls_dir = tls.make(os.path.join(self.instances, "_tls"), CONF.hci_guests.gid)
        self.flags(live_migration_plain_tcp=False, live_migration_tls_dir=tls_dir,
                   group="qmp")
        server = self._counting_guest()
        volume_id, volume = self._attached_volume(server)
        states = self._destination_state_at_completion(server, "compute", "compute2")
        before = max(self._ticks(self.console(server)))
        self.api.post_server_action(server["id"], {"os-migrateLive": {
            "host": "compute2", "block_migration": "auto"}})
        migration = self._wait_for_migration_status(server, ["completed", "error",
                                                             "failed"])
        self.assertEqual("completed", migration["status"])
        server = self._wait_for_server_parameter(
            server, {"OS-EXT-SRV-ATTR:host": "compute2", "status": "ACTIVE"},
            max_retries=240)

        # it ran on compute2 as soon as the migration had completed, before the source's
        # QEMU ended (whose NBD client had held the exports) and before nova's post step
        self.assertEqual("running", states[-1], "%d reads of the destination's state, "
                         "first %s" % (len(states), states[0]))
        # the guest runs on compute2 only; nothing of it is left on compute
        self.assertTrue(self.running_on("compute2", server))
        self.assertFalse(os.path.exists(self.idir("compute", server).path))
        # the counter goes on from where it was: no reboot, the same shell
        out = self.wait_console(server, "tick-%d" % (before + 3))
        self.assertNotIn(self.guest.marker("ready"), out)
        after = self._ticks(out)
        self.assertGreater(min(after), 0)
        conn = self.serial_on("compute2", server)
        self.shell(conn, "cat /run/mark", "mem-42")
        self.shell(conn, "head -c 8 /dev/vdb; echo", "before-4")
        self.shell(conn, "dd if=/dev/vda bs=512 skip=%d count=1 2>/dev/null | head -c 12; "
                         "echo" % base.SECTOR, "disk-25-data")
        # RAM and disks came over TLS (the destination's QEMU has the credentials)
        self.assertEqual("hci-mig-tls",
                         self.migration_parameters("compute2", server)["tls-creds"])
        # nova's migration record got the progress of the copy
        migration = self.migrations(server)[0]
        self.assertGreater(migration.memory_total, 0)
        self.assertGreater(migration.disk_total, 0)
        self.assertEqual(migration.disk_total, migration.disk_processed)
        # the volume (storage both hosts reach: not copied) was connected on compute2:
        # the guest reads what it wrote before, writes again, and it detaches there
        self.assertIn(volume_id, record.read(self.idir("compute2", server).path).volumes)
        self.shell(conn, "echo after-$((2+3)) > /dev/vdb; sync; echo synced-$((1+1))",
                   "synced-2")
        with open(volume, "rb") as f:
            self.assertEqual(b"after-5\n", f.read(8))
        before = len(self.console(server))
        self.api.delete_server_volume(server["id"], volume_id)
        self.wait_console(server, "REMOVED DISK vdb", since=before)
        self._wait_for_volume_detach(server["id"], volume_id)
        self.assertEqual({}, record.read(self.idir("compute2", server).path).volumes)

    def _attached_volume(self, server):
        """A file given as a ``local`` connection (shared block storage: both hosts of
        this machine open the same file), hot-plugged and written by the guest."""
        volume_id = "5d1c2b7e-8a34-4f0e-9b61-3e2a7c9d0f42"
        path = nova_functional.file_volume(
            self, volume_id, os.path.join(self.instances, "_volume.img"), 64 * 1024 ** 2)
        before = len(self.console(server))
        self.api.post_server_volume(server["id"], {"volumeAttachment": {
            "volumeId": volume_id}})
        self.wait_console(server, "ADDED DISK vdb", since=before)
        conn = self.serial_on("compute", server)
        self.shell(conn, "echo before-$((2+2)) > /dev/vdb; sync; echo synced-$((0+1))",
                   "synced-1")
        return volume_id, path

    def test_aborted_migration_leaves_the_guest_on_the_source(self):
        self.flags(live_migration_bandwidth=1, group="qmp")     # RAM at 1 MiB/s
        server = self._counting_guest()
        self.api.post_server_action(server["id"], {"os-migrateLive": {
            "host": "compute2", "block_migration": "auto"}})
        migration = self._wait_for_migration_status(server, ["running"])
        # the destination's QEMU is waiting for (receiving) the migration
        self.wait_until(lambda: self.running_on("compute2", server), "no QEMU on compute2")
        self.api.api_delete("/servers/%s/migrations/%s" % (server["id"], migration["id"]))
        self._wait_for_migration_status(server, ["cancelled"])
        server = self._wait_for_state_change(server, "ACTIVE")
        self.assertEqual("compute", server["OS-EXT-SRV-ATTR:host"])
        self.wait_until(lambda: not os.path.exists(self.idir("compute2", server).path),
                        "compute2 kept the instance")
        self.assertTrue(self.running_on("compute", server))
        before = max(self._ticks(self.console(server)))
        self.wait_console(server, "tick-%d" % (before + 2))
        conn = self.serial_on("compute", server)
        self.shell(conn, "cat /run/mark", "mem-42")

    def test_forced_completion_pauses_the_guest_and_it_runs_on_the_destination(self):
        self.flags(live_migration_bandwidth=2, group="qmp")     # RAM at 2 MiB/s
        server = self._counting_guest()
        before = max(self._ticks(self.console(server)))
        self.api.post_server_action(server["id"], {"os-migrateLive": {
            "host": "compute2", "block_migration": "auto"}})
        migration = self._wait_for_migration_status(server, ["running"])
        self.wait_until(lambda: self.running_on("compute2", server), "no QEMU on compute2")
        self.api.force_complete_migration(server["id"], migration["id"])
        migration = self._wait_for_migration_status(server, ["completed", "error",
                                                             "failed"])
        self.assertEqual("completed", migration["status"])
        server = self._wait_for_server_parameter(
            server, {"OS-EXT-SRV-ATTR:host": "compute2", "status": "ACTIVE"},
            max_retries=240)
        self.assertIn("paused so that the migration completes", self.stdlog.logger.output)
        out = self.wait_console(server, "tick-%d" % (before + 3))
        self.assertNotIn(self.guest.marker("ready"), out)
        self.shell(self.serial_on("compute2", server), "cat /run/mark", "mem-42")

    def test_destination_dying_half_way_leaves_the_guest_on_the_source(self):
        self.flags(live_migration_bandwidth=1, group="qmp")     # RAM at 1 MiB/s
        server = self._counting_guest()
        self.api.post_server_action(server["id"], {"os-migrateLive": {
            "host": "compute2", "block_migration": "auto"}})
        self._wait_for_migration_status(server, ["running"])
        self.wait_until(lambda: self.running_on("compute2", server), "no QEMU on compute2")
        time.sleep(2)                   # into the copy
        os.kill(self.pid_on("compute2", server), signal.SIGKILL)   # that one only
        self._wait_for_migration_status(server, ["error", "failed"])
        server = self._wait_for_state_change(server, "ACTIVE")
        self.assertEqual("compute", server["OS-EXT-SRV-ATTR:host"])
        self.wait_until(lambda: not os.path.exists(self.idir("compute2", server).path),
                        "compute2 kept the instance")
        self.assertTrue(self.running_on("compute", server))
        before = max(self._ticks(self.console(server)))
        self.wait_console(server, "tick-%d" % (before + 2))
        self.shell(self.serial_on("compute", server), "cat /run/mark", "mem-42")
