"""Two hosts sharing one ``instances_path`` (as an NFS mount would be), each with its own
``[hci_guests]host_state_path``. Live migration moves the RAM only: the destination's
QEMU opens the very disk files the source's had, and a migration that fails leaves the
guest and its disks on the source and nothing of the destination's. Evacuation uses the
disks as they are, and the first host, back, removes only its own part."""
import os
import signal
import subprocess
import time

from nova import exception

from nova_common import record
from tests.functional.nova_qmp_migration import base


class SharedInstancesPathTest(base.TwoHostsTestBase):
    SHARED_INSTANCES_PATH = True

    def _uids_with_acl(self, path):
        out = subprocess.run(["getfacl", "-n", "-p", "-c", path], check=True,
                             capture_output=True, text=True).stdout
        return {int(line.split(":")[1]) for line in out.splitlines()
                if line.startswith("user:") and line.split(":")[1]}

    def _drivers(self):
        return {h: c.manager.driver for h, c in self.computes_by_host.items()}

    def test_only_the_ram_moves_and_the_guest_runs_on(self):
        server = self._counting_guest()
        disk = self.idir("compute", server).file("disk")
        inode = os.stat(disk).st_ino
        source_uid = record.read(self.idir("compute", server).host_path).uid
        self.assertIn(source_uid, self._uids_with_acl(disk))
        # each host lists only what it runs, though both see the directory
        self.assertEqual([server["id"]], self._drivers()["compute"].list_instance_uuids())
        self.assertEqual([], self._drivers()["compute2"].list_instance_uuids())
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
        self.assertEqual("running", states[-1])

        # RAM only: nova's record of the migration has no disk copy, and the guest
        # runs from the same file
        migration = self.migrations(server)[0]
        self.assertGreater(migration.memory_total, 0)
        self.assertFalse(migration.disk_total)
        self.assertEqual(inode, os.stat(disk).st_ino)
        self.assertTrue(self.running_on("compute2", server))
        # the source's part of it is gone (record, sockets, its uid's grants), the
        # disks are not
        self.assertFalse(os.path.exists(self.idir("compute", server).host_path))
        self.assertTrue(os.path.exists(disk))
        dest_uid = record.read(self.idir("compute2", server).host_path).uid
        self.assertEqual({dest_uid}, self._uids_with_acl(disk) - {os.getuid()})
        self.assertEqual([], self._drivers()["compute"].list_instance_uuids())
        self.assertEqual([server["id"]], self._drivers()["compute2"].list_instance_uuids())
        # the guest goes on: no reboot, its memory and its disk as they were
        out = self.wait_console(server, "tick-%d" % (before + 3))
        self.assertNotIn(self.guest.marker("ready"), out)
        conn = self.serial_on("compute2", server)
        self.shell(conn, "cat /run/mark", "mem-42")
        self.shell(conn, "dd if=/dev/vda bs=512 skip=%d count=1 2>/dev/null | head -c 12; "
                         "echo" % base.SECTOR, "disk-25-data")
        self.shell(conn, "echo disk-$((6*6))-data | dd of=/dev/vda bs=512 seek=%d "
                         "conv=fsync 2>/dev/null; echo written-$((2+1))" % base.SECTOR,
                   "written-3")
        with open(disk, "rb") as f:
            self.assertIn(b"disk-36-data", f.read())    # raw bytes of the qcow2 file

        # deleting the server on compute2 removes the shared directory too
        self._delete_server(server)
        self.assertFalse(os.path.exists(self.idir("compute2", server).path))
        self.assertFalse(os.path.exists(self.idir("compute2", server).host_path))

    def test_a_destination_dying_half_way_leaves_the_disks_and_the_guest(self):
        self.flags(live_migration_bandwidth=1, group="qmp")     # RAM at 1 MiB/s
        server = self._counting_guest()
        disk = self.idir("compute", server).file("disk")
        inode = os.stat(disk).st_ino
        self.api.post_server_action(server["id"], {"os-migrateLive": {
            "host": "compute2", "block_migration": "auto"}})
        self._wait_for_migration_status(server, ["running"])
        self.wait_until(lambda: self.running_on("compute2", server), "no QEMU on compute2")
        dest_uid = record.read(self.idir("compute2", server).host_path).uid
        self.assertIn(dest_uid, self._uids_with_acl(disk))
        time.sleep(2)                   # into the copy
        os.kill(self.pid_on("compute2", server), signal.SIGKILL)   # that one only
        self._wait_for_migration_status(server, ["error", "failed"])
        server = self._wait_for_state_change(server, "ACTIVE")
        self.assertEqual("compute", server["OS-EXT-SRV-ATTR:host"])
        # nova calls no rollback on a destination sharing instances_path: the
        # destination's own waiter removes its part, and only that
        self.wait_until(lambda: not os.path.exists(self.idir("compute2", server).host_path),
                        "compute2 kept its part")
        self.assertNotIn(dest_uid, self._uids_with_acl(disk))
        self.assertEqual(inode, os.stat(disk).st_ino)
        self.assertEqual([], self._drivers()["compute2"].list_instance_uuids())
        self.assertTrue(self.running_on("compute", server))
        before = max(self._ticks(self.console(server)))
        self.wait_console(server, "tick-%d" % (before + 2))
        conn = self.serial_on("compute", server)
        self.shell(conn, "cat /run/mark", "mem-42")
        self.shell(conn, "dd if=/dev/vda bs=512 skip=%d count=1 2>/dev/null | head -c 12; "
                         "echo" % base.SECTOR, "disk-25-data")

    def test_a_source_failing_before_it_sends_leaves_nothing_on_the_destination(self):
        # nova calls no rollback on a destination sharing instances_path: the
        # destination's waiter gives up once the source should have begun to send
        self.flags(vif_plugging_timeout=1)
        self.flags(qmp_timeout=5, group="qmp")
        server = self._counting_guest()
        disk = self.idir("compute", server).file("disk")
        hv = self.computes_by_host["compute"].manager.driver.hv

        def unreachable(*args, **kwargs):
            raise exception.MigrationError(reason="the destination is unreachable")
        hv.migrate = unreachable
        self.addCleanup(delattr, hv, "migrate")
        self.api.post_server_action(server["id"], {"os-migrateLive": {
            "host": "compute2", "block_migration": "auto"}})
        self._wait_for_migration_status(server, ["error", "failed"])
        server = self._wait_for_state_change(server, "ACTIVE")
        self.assertEqual("compute", server["OS-EXT-SRV-ATTR:host"])
        self.wait_until(lambda: not os.path.exists(self.idir("compute2", server).host_path),
                        "compute2 kept its part")
        self.assertEqual([], self._drivers()["compute2"].list_instance_uuids())
        self.assertTrue(os.path.exists(disk))
        self.assertTrue(self.running_on("compute", server))
        self.shell(self.serial_on("compute", server), "cat /run/mark", "mem-42")

    def test_evacuation_uses_the_disks_and_the_returning_host_keeps_them(self):
        server = self._counting_guest()
        disk = self.idir("compute", server).file("disk")
        inode = os.stat(disk).st_ino
        source = self.computes_by_host["compute"]
        source.stop()
        # the host is down for good, its guest with it (fenced: it no longer writes)
        os.kill(self.pid_on("compute", server), signal.SIGKILL)
        service = self.api.get_services(binary="nova-compute", host="compute")[0]
        self.api.put_service(service["id"], {"forced_down": True})
        self.api.post_server_action(server["id"], {"evacuate": {"host": "compute2"}})
        server = self._wait_for_server_parameter(
            server, {"OS-EXT-SRV-ATTR:host": "compute2", "status": "SHUTOFF"},
            max_retries=240)
        self.assertIn("disk on shared storage, evacuating using existing disk",
                      self.stdlog.logger.output)
        self.assertEqual(inode, os.stat(disk).st_ino)
        self.api.post_server_action(server["id"], {"os-start": None})
        server = self._wait_for_state_change(server, "ACTIVE")
        self.wait_console(server, self.guest.marker("ready"))
        # booted from its own disk: what it wrote before is there
        self.shell(self.serial_on("compute2", server),
                   "dd if=/dev/vda bs=512 skip=%d count=1 2>/dev/null | head -c 12; "
                   "echo" % base.SECTOR, "disk-25-data")
        # the first host comes back: nova finds the storage shared, and that host
        # removes only its record and runtime files, never the disks
        old_uid = record.read(self.idir("compute", server).host_path).uid
        new_uid = record.read(self.idir("compute2", server).host_path).uid
        self.assertNotEqual(old_uid, new_uid)     # picked apart from the old host's
        self.restart_compute_service(source)
        self.api.put_service(service["id"], {"forced_down": False})
        self.assertFalse(os.path.exists(self.idir("compute", server).host_path))
        self.assertEqual({new_uid}, self._uids_with_acl(disk) - {os.getuid()})
        self.assertEqual([], self._drivers()["compute"].list_instance_uuids())
        self.assertEqual(inode, os.stat(disk).st_ino)
        self.assertTrue(self.running_on("compute2", server))
        self.shell(self.serial_on("compute2", server),
                   "dd if=/dev/vda bs=512 skip=%d count=1 2>/dev/null | head -c 12; "
                   "echo" % base.SECTOR, "disk-25-data")
