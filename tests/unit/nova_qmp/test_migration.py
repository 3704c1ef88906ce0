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
    """QMP answers of one QEMU: NBD exports that a client holds for ``busy`` calls."""

    def __init__(self, exports, busy=0, status="paused"):
        self.exports, self.busy, self.status = dict.fromkeys(exports), busy, status
        self.calls = []

    def _qmp(self, guest, command, **args):
        self.calls.append(command)
        if command == "query-block-exports":
            return [{"id": e, "shutting-down": False} for e in self.exports]
        if command == "block-export-del":
            if args["id"] not in self.exports:
                raise exception.InternalError("Export '%s' is not found" % args["id"])
            if self.busy:
                self.busy -= 1
                raise exception.InternalError("export '%s' still in use" % args["id"])
            del self.exports[args["id"]]
        elif command == "query-status":
            return {"status": self.status}
        elif command == "cont":
            self.status = "running"
        elif command == "nbd-server-stop":
            self.exports.clear()              # QEMU ends every NBD export with it
        return {}


class TestIncomingFinish(test_driver.base.TestCase):
    def test_resumes_first_then_waits_for_the_source_to_let_go_of_the_exports(self):
        qemu = FakeQEMU(["hci-mig-root", "hci-mig-eph0"], busy=3)
        migration.Incoming(qemu).finish(None)
        self.assertEqual("cont", qemu.calls[0])       # one command after the RAM
        self.assertEqual({}, qemu.exports)
        self.assertEqual("running", qemu.status)
        self.assertEqual(3, qemu.calls.count("block-export-del") - 2)   # retried
        self.assertEqual("nbd-server-stop", qemu.calls[-1])

    def test_an_export_held_past_the_wait_is_ended_with_the_nbd_server(self):
        self.useFixture(fixtures.MonkeyPatch("nova_qmp.migration.EXPORT_RELEASE", 0.05))
        qemu = FakeQEMU(["hci-mig-root"], busy=10 ** 6)
        migration.Incoming(qemu).finish(None)
        self.assertEqual("running", qemu.status)
        self.assertEqual({}, qemu.exports)
        self.assertEqual("nbd-server-stop", qemu.calls[-1])

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
