"""Live migration checks of the QMP driver that need no second host (the migrations
themselves: tests/functional/nova_qmp_migration)."""
import os
import types

import fixtures
from nova import exception

from nova_common import instance_dir
from nova_qmp import migration
from tests.unit.nova_qmp import test_driver

QEMU = {"hypervisor_type": "qemu", "disk_available_least": 10}
GUEST = types.SimpleNamespace(uuid="6f1d9c2e-3b4a-4e8f-9a1b-2c3d4e5f6a7b")


class TestDowntimeSteps(test_driver.base.TestCase):
    def test_downtime_grows_to_the_limit_in_steps(self):
        steps = migration.downtime_steps(migration.Settings(
            downtime_ms=500, downtime_steps=10, downtime_delay=75), 2048)
        self.assertEqual(10, len(steps))
        self.assertEqual((0, 50), steps[0])
        self.assertEqual(500, steps[-1][1])
        self.assertEqual(150, steps[1][0])          # 75 s per GiB of 2 GiB RAM
        self.assertEqual(sorted(steps), steps)

    def test_local_disks_are_the_drives_copied(self):
        guest = types.SimpleNamespace(record=types.SimpleNamespace(spec={
            "root_disk": True, "local_disks": ["disk.eph0", "disk.swap"]}))
        self.assertEqual(["root", "eph0", "swap"], migration.drives(guest))
        guest.record.spec = {"root_disk": False}
        self.assertEqual([], migration.drives(guest))


class FakeQEMU:
    """QMP answers of one QEMU: NBD exports (a client holds them for ``busy`` safe
    removals), its run state and the migration's status."""

    def __init__(self, exports, busy=0, status="paused", migration=None):
        self.exports, self.busy, self.status = dict.fromkeys(exports), busy, status
        self.migration = migration
        self.calls = []

    def _qmp(self, guest, command, **args):
        self.calls.append(command)
        if command == "query-block-exports":
            return [{"id": e, "shutting-down": False} for e in self.exports]
        if command == "block-export-del":
            if args["id"] not in self.exports:
                raise exception.InternalError("Export '%s' is not found" % args["id"])
            if self.busy and args.get("mode") != "hard":
                self.busy -= 1
                raise exception.InternalError("export '%s' still in use" % args["id"])
            del self.exports[args["id"]]
        elif command == "query-status":
            return {"status": self.status}
        elif command == "query-migrate":      # none before the source connects
            return {"status": self.migration} if self.migration else {}
        elif command == "cont":
            self.status = "running"
        return {}

    def _qmp_wait(self, guest, command, arguments, event, match, timeout,
                  reply_match=None):
        reply = self._qmp(guest, command)
        if reply_match is not None and reply_match(reply):
            return reply
        return None            # no event comes


class TestIncomingFinish(test_driver.base.TestCase):
    def test_exports_closed_before_the_guest_resumes(self):
        # nothing writes to them any more (the source's mirrors ended before the
        # migration completed): a connection still open is cut, not waited for
        qemu = FakeQEMU(["hci-mig-root", "hci-mig-eph0"], busy=10 ** 6)
        migration.Incoming(qemu).finish(None, paused=True)
        self.assertEqual({}, qemu.exports)
        self.assertEqual("running", qemu.status)
        self.assertEqual(["query-block-exports", "block-export-del", "block-export-del",
                          "cont", "nbd-server-stop"], qemu.calls)

    def test_a_running_guest_gets_no_cont(self):
        # (QEMU would report a cont of a running guest as a stop and a resume)
        qemu = FakeQEMU([], status="running")
        migration.Incoming(qemu).finish(None)
        self.assertNotIn("cont", qemu.calls)

    def test_exports_removed_meanwhile_by_the_other_caller_are_fine(self):
        qemu = FakeQEMU(["hci-mig-root"])
        real = qemu._qmp

        def racing(guest, command, **args):
            if command == "block-export-del":
                qemu.exports.clear()          # nova's call got there first
            return real(guest, command, **args)
        qemu._qmp = racing
        migration.Incoming(qemu).finish(None)
        self.assertEqual("running", qemu.status)


class TestOutgoingRun(test_driver.base.TestCase):
    def _outgoing(self, status):
        qemu = FakeQEMU([], status="paused", migration=status)
        out = migration.Outgoing(qemu, GUEST, "127.0.0.1", 1, 0, [], None)

        def late_abort():
            raise exception.MigrationError(reason="aborted")
        out._mirror = lambda: None
        out._migrate = late_abort
        return qemu, out

    def test_an_abort_after_completion_is_a_success_and_nothing_resumes_here(self):
        qemu, out = self._outgoing("completed")
        out.run()
        self.assertNotIn("cont", qemu.calls)       # it runs on the destination only

    def test_a_failure_before_completion_resumes_the_guest_here(self):
        qemu, out = self._outgoing("cancelled")
        out._drop_mirrors = lambda: None
        self.assertRaises(exception.MigrationError, out.run)
        self.assertIn("cont", qemu.calls)


class TestIncomingWait(test_driver.base.TestCase):
    def test_a_migration_that_never_starts_is_reported(self):
        qemu = FakeQEMU([])
        self.assertEqual("not-started",
                         migration.Incoming(qemu).wait_and_resume(GUEST, 60, 0.05))
        self.assertEqual("paused", qemu.status)

    def test_a_completion_seen_by_a_status_read_resumes_the_guest(self):
        # its MIGRATION event came before the wait
        qemu = FakeQEMU([], migration="completed")
        self.assertEqual("completed",
                         migration.Incoming(qemu).wait_and_resume(GUEST, 60, 0.05))
        self.assertEqual("running", qemu.status)

    def test_completed_stays_completed_when_resuming_fails(self):
        qemu = FakeQEMU([], migration="completed")
        real = qemu._qmp

        def failing(guest, command, **args):
            if command == "cont":
                raise exception.InternalError("cont failed")
            return real(guest, command, **args)
        qemu._qmp = failing
        self.assertEqual("completed", migration.Incoming(qemu).wait_and_resume(GUEST, 60))


class TestChecks(test_driver.DriverCase):
    def test_tls_by_default_needs_its_files(self):
        self.flags(live_migration_tls_dir=self.instances, group="qmp")
        e = self.assertRaises(exception.MigrationPreCheckError,
                              self.drv.check_can_live_migrate_destination, None,
                              self.inst, QEMU, QEMU)
        self.assertIn("ca-cert.pem, server-cert.pem, server-key.pem", str(e))
        self.assertEqual([], [n for n in os.listdir(self.instances)     # no probe left
                              if n.startswith("hci-shared-probe-")])
        for name in migration.TLS_FILES["server"]:
            open(os.path.join(self.instances, name), "w").close()
        data = self.drv.check_can_live_migrate_destination(None, self.inst, QEMU, QEMU)
        self.drv.cleanup_live_migration_destination_check(None, data)

    def test_destination_probe_and_refusals_at_the_source(self):
        self.flags(live_migration_inbound_addr="192.0.2.5", live_migration_plain_tcp=True,
                   group="qmp")
        data = self.drv.check_can_live_migrate_destination(None, self.inst, QEMU, QEMU)
        self.assertTrue(data.filename.startswith("hci-shared-probe-"))
        self.assertEqual("192.0.2.5", data.target_connect_addr)
        probe = os.path.join(self.instances, data.filename)
        self.assertTrue(os.path.exists(probe))
        # a guest that does not run is not migrated
        self.assertRaises(exception.MigrationPreCheckError,
                          self.drv.check_can_live_migrate_source, None, self.inst, data)
        # the probe seen from here: a shared instances_path, refused without a
        # host_state_path (both hosts' records and sockets would be in one directory)
        self.drv.hv.running = lambda guest: True
        e = self.assertRaises(exception.MigrationPreCheckError,
                              self.drv.check_can_live_migrate_source, None, self.inst, data)
        self.assertIn("[hci_guests]host_state_path", str(e))
        self.drv.cleanup_live_migration_destination_check(None, data)
        self.assertFalse(os.path.exists(probe))
        # not shared, no local disk (volume-backed): RAM only; block migration refused
        data = self.drv.check_can_live_migrate_destination(None, self.inst, QEMU, QEMU)
        self.drv.cleanup_live_migration_destination_check(None, data)
        checked = self.drv.check_can_live_migrate_source(None, self.inst, data)
        self.assertFalse(checked.block_migration)
        self.assertTrue(checked.is_shared_block_storage)
        data = self.drv.check_can_live_migrate_destination(
            None, self.inst, QEMU, QEMU, block_migration=True)
        self.drv.cleanup_live_migration_destination_check(None, data)
        self.assertRaises(exception.InvalidLocalStorage,
                          self.drv.check_can_live_migrate_source, None, self.inst, data)

    def test_a_shared_instances_path_with_host_state_moves_the_ram_only(self):
        state = self.useFixture(fixtures.TempDir()).path
        self.flags(host_state_path=state, group="hci_guests")
        self.flags(live_migration_inbound_addr="192.0.2.5", live_migration_plain_tcp=True,
                   group="qmp")
        idir = instance_dir.InstanceDir(self.inst.uuid)
        os.rename(self.idir.path, idir.host_path)      # the record: this host's
        os.makedirs(idir.path)
        open(idir.file(instance_dir.ROOT_DISK), "w").close()   # a local root disk
        self.drv.hv.running = lambda guest: True
        self.drv.hv.migration_drives = lambda guest: ["disk"]
        data = self.drv.check_can_live_migrate_destination(None, self.inst, QEMU, QEMU)
        checked = self.drv.check_can_live_migrate_source(None, self.inst, data)
        self.assertTrue(checked.is_shared_instance_path)
        self.assertTrue(checked.is_shared_block_storage)
        self.assertFalse(checked.block_migration)          # auto: RAM only
        data.block_migration = True                        # asked for: refused
        self.assertRaises(exception.InvalidLocalStorage,
                          self.drv.check_can_live_migrate_source, None, self.inst, data)
        self.drv.cleanup_live_migration_destination_check(None, data)
        self.assertEqual([self.inst.uuid], self.drv.list_instance_uuids())

    def test_other_hypervisor_types_are_refused(self):
        self.assertRaises(exception.MigrationPreCheckError,
                          self.drv.check_can_live_migrate_destination, None, self.inst,
                          {"hypervisor_type": "lxc"}, QEMU)
        self.assertEqual([self.inst.uuid], instance_dir.list_uuids())
